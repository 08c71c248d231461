extension GroupAssignor {
    /// The sticky assignor: keep what can be kept, then balance with as few moves as possible.
    ///
    /// 1. **Keep**: each member keeps the partitions of its previous target that still exist and
    ///    that it still subscribes to.
    /// 2. **Place**: every partition without an owner goes to the least-loaded eligible member
    ///    (topics with the fewest eligible members first, ties to the lowest member id).
    /// 3. **Balance within a class**: members with identical subscriptions (restricted to existing
    ///    topics) form a class. In a class of `n` members holding `t` partitions, the `t % n` members
    ///    holding the most get `t / n + 1`, the rest `t / n`; only the surplus above those quotas
    ///    moves. This is the minimum number of moves, and when every member subscribes to the same
    ///    topics it makes the whole group balanced to ±1.
    /// 4. **Balance across classes** (best effort): while a class's most-loaded member holds a
    ///    partition that a member of another class, holding at least two fewer, subscribes to, move
    ///    it. Each move keeps both classes within ±1.
    static func sticky(
        members: [GroupAssignorMember],
        partitionCounts: [String: Int32],
        previous: [String: Set<GroupTopicPartition>]
    ) -> [String: Set<GroupTopicPartition>] {
        var plan = GroupStickyPlan(members: sortedUnique(members), partitionCounts: partitionCounts)
        plan.keep(previous)
        plan.placeUnowned()
        for classIndex in plan.classes.indices { plan.balance(classIndex) }
        plan.balanceAcrossClasses()
        return plan.result()
    }
}

/// The working state of one sticky assignment; members are referred to by their index in
/// `memberIds` (sorted), so every tie breaks the same way on every run.
fileprivate struct GroupStickyPlan {
    /// Member ids, sorted.
    let memberIds: [String]
    /// Per member: the subscribed topics that exist (have partitions).
    let eligibleTopics: [Set<String>]
    /// Members with identical `eligibleTopics`, ascending, classes ordered by their first member.
    let classes: [[Int]]
    /// The eligible topics of each class.
    let classTopics: [Set<String>]
    /// Partition counts of the topics some member is eligible for.
    let topicCounts: [String: Int32]
    /// Per member: the partitions it holds in this plan. Invariant: disjoint; matches `owner`.
    private(set) var owned: [Set<GroupTopicPartition>]
    /// The member holding each partition.
    private var owner: [GroupTopicPartition: Int] = [:]

    /// An empty plan; `members` must be sorted by id without duplicates.
    init(members: [GroupAssignorMember], partitionCounts: [String: Int32]) {
        memberIds = members.map(\.memberId)
        eligibleTopics = members.map { member in
            Set(member.subscribedTopics.filter { (partitionCounts[$0] ?? 0) > 0 })
        }
        var classIndex: [Set<String>: Int] = [:]
        var classes: [[Int]] = []
        var classTopics: [Set<String>] = []
        for (member, topics) in eligibleTopics.enumerated() {
            if let index = classIndex[topics] {
                classes[index].append(member)
            } else {
                classIndex[topics] = classes.count
                classes.append([member])
                classTopics.append(topics)
            }
        }
        var topicCounts: [String: Int32] = [:]
        for topics in classTopics {
            for topic in topics { topicCounts[topic] = partitionCounts[topic] }
        }
        self.classes = classes
        self.classTopics = classTopics
        self.topicCounts = topicCounts
        self.owned = Array(repeating: [], count: memberIds.count)
    }

    /// Step 1: members (in id order, so a partition two previous targets name goes to the first)
    /// keep the previous partitions they are still eligible for.
    mutating func keep(_ previous: [String: Set<GroupTopicPartition>]) {
        for member in memberIds.indices {
            for partition in previous[memberIds[member]] ?? [] where owner[partition] == nil {
                let count = topicCounts[partition.topic] ?? 0
                if eligibleTopics[member].contains(partition.topic) && (0..<count).contains(partition.partition) {
                    take(partition, by: member)
                }
            }
        }
    }

    /// Step 2: each unowned partition to the least-loaded eligible member. Topics with the fewest
    /// eligible members go first: they have the fewest homes, so they are placed while loads are
    /// still even (as Kafka's uniform assignor does). One min-heap of loads per class.
    mutating func placeUnowned() {
        var classesByTopic: [String: [Int]] = [:]
        var eligibleMembers: [String: Int] = [:]
        for (classIndex, topics) in classTopics.enumerated() {
            for topic in topics {
                classesByTopic[topic, default: []].append(classIndex)
                eligibleMembers[topic, default: 0] += classes[classIndex].count
            }
        }
        let order = classesByTopic.keys.sorted { ((eligibleMembers[$0] ?? 0), $0) < ((eligibleMembers[$1] ?? 0), $1) }
        var heaps = classes.map { group in
            GroupLoadHeap(group.map { GroupLoadHeap.Load(count: owned[$0].count, member: $0) })
        }
        for topic in order {
            let candidates = classesByTopic[topic] ?? []
            for index in 0..<(topicCounts[topic] ?? 0) {
                let partition = GroupTopicPartition(topic: topic, partition: index)
                guard owner[partition] == nil,
                    let best = candidates.min(by: { heaps[$0].min < heaps[$1].min })
                else { continue }
                let load = heaps[best].min
                take(partition, by: load.member)
                heaps[best].replaceMin(with: GroupLoadHeap.Load(count: load.count + 1, member: load.member))
            }
        }
    }

    /// Step 3 for one class: quotas `t / n` or `t / n + 1`, the larger ones to the members holding
    /// the most (ties to the lower id); only partitions above a quota move. Any class member may
    /// take any partition the class holds, so the surplus exactly fills the deficits.
    mutating func balance(_ classIndex: Int) {
        let group = classes[classIndex]
        let total = group.reduce(0) { $0 + owned[$1].count }
        let byLoad = group.sorted { a, b in
            owned[a].count != owned[b].count ? owned[a].count > owned[b].count : a < b
        }
        var quota: [Int: Int] = [:]
        for (rank, member) in byLoad.enumerated() {
            quota[member] = total / group.count + (rank < total % group.count ? 1 : 0)
        }
        var surplus: [GroupTopicPartition] = []
        for member in group {
            let excess = owned[member].count - (quota[member] ?? 0)
            guard excess > 0 else { continue }
            for partition in owned[member].sorted().suffix(excess) {
                release(partition)
                surplus.append(partition)
            }
        }
        surplus.reverse()  // hand out in ascending order: popLast takes from the end
        for member in group {
            while owned[member].count < (quota[member] ?? 0), let partition = surplus.popLast() {
                take(partition, by: member)
            }
        }
        precondition(surplus.isEmpty, "quotas sum to the class total")
    }

    /// Step 4: moves across classes until none narrows a gap of two or more. Every move lowers the
    /// sum of squared loads, so the loop ends on its own; `movesMax` only caps the work on
    /// pathological inputs (the assignment is complete and valid at every step).
    mutating func balanceAcrossClasses() {
        guard classes.count > 1 else { return }
        let movesMax = 2 * owner.count
        for _ in 0..<movesMax {
            guard let move = nextCrossClassMove() else { return }
            release(move.partition)
            take(move.partition, by: move.member)
        }
    }

    /// The next cross-class move, largest gap first: a partition of a most-loaded member of one
    /// class, for a least-loaded member of another class that is eligible for it. Taking from a
    /// class maximum and giving to a class minimum keeps each class within ±1.
    private func nextCrossClassMove() -> (partition: GroupTopicPartition, member: Int)? {
        let loads = classes.map { group in group.map { owned[$0].count } }
        let maxes = loads.map { $0.max() ?? 0 }
        let mins = loads.map { $0.min() ?? 0 }
        var pairs: [(gap: Int, from: Int, to: Int)] = []
        for from in classes.indices {
            for to in classes.indices where to != from && maxes[from] - mins[to] >= 2 {
                if !classTopics[from].isDisjoint(with: classTopics[to]) {
                    pairs.append((maxes[from] - mins[to], from, to))
                }
            }
        }
        pairs.sort { ($0.gap, $1.from, $1.to) > ($1.gap, $0.from, $0.to) }
        for pair in pairs {
            guard let receiver = classes[pair.to].first(where: { owned[$0].count == mins[pair.to] }) else { continue }
            for giver in classes[pair.from] where owned[giver].count == maxes[pair.from] {
                if let partition = owned[giver].filter({ classTopics[pair.to].contains($0.topic) }).max() {
                    return (partition, receiver)
                }
            }
        }
        return nil
    }

    /// The plan as an assignment: every member's id with its partitions.
    func result() -> [String: Set<GroupTopicPartition>] {
        Dictionary(uniqueKeysWithValues: zip(memberIds, owned))
    }

    private mutating func take(_ partition: GroupTopicPartition, by member: Int) {
        precondition(owner[partition] == nil, "\(partition) already owned")
        owner[partition] = member
        owned[member].insert(partition)
    }

    private mutating func release(_ partition: GroupTopicPartition) {
        guard let member = owner.removeValue(forKey: partition) else { return }
        owned[member].remove(partition)
    }
}

/// A binary min-heap of member loads, for placing partitions on the least-loaded member.
fileprivate struct GroupLoadHeap {
    /// A member and how many partitions it holds; ordered by count, then member index.
    struct Load: Comparable {
        var count: Int
        var member: Int

        static func < (lhs: Load, rhs: Load) -> Bool { (lhs.count, lhs.member) < (rhs.count, rhs.member) }
    }

    private var items: [Load]

    /// A heap of `loads`, which must not be empty (every class has a member).
    init(_ loads: [Load]) {
        precondition(!loads.isEmpty, "a heap of no loads")
        items = loads
        for index in stride(from: items.count / 2 - 1, through: 0, by: -1) { siftDown(index) }
    }

    /// The least-loaded member.
    var min: Load { items[0] }

    /// Replaces the least-loaded entry (after giving that member one more partition).
    mutating func replaceMin(with load: Load) {
        items[0] = load
        siftDown(0)
    }

    private mutating func siftDown(_ start: Int) {
        var index = start
        while 2 * index + 1 < items.count {  // the index at least doubles: at most log2(count) passes
            let left = 2 * index + 1
            let right = left + 1
            var smallest = items[left] < items[index] ? left : index
            if right < items.count && items[right] < items[smallest] { smallest = right }
            if smallest == index { return }
            items.swapAt(index, smallest)
            index = smallest
        }
    }
}
