/// # Assignors: who should consume which partition
///
/// Pure functions from (members with their subscriptions, partitions per topic, previous target) to
/// a target assignment. Both assignors:
/// - assign every partition of every topic some member subscribes to, to exactly one subscriber;
/// - give nothing from topics that do not exist (absent from `partitionCounts` or 0 partitions);
/// - return a key for every member (an empty set when it gets nothing);
/// - are deterministic: members and topics are processed in sorted order, never dictionary order.
///
/// `range` is Kafka's RangeAssignor. `sticky` (in `GroupAssignor+Sticky.swift`) keeps previous
/// assignments and moves as few partitions as balance needs.
enum GroupAssignor {
    /// Runs the assignor of `kind`. `previous` is the last target (only `sticky` reads it).
    static func assign(
        _ kind: GroupAssignorKind,
        members: [GroupAssignorMember],
        partitionCounts: [String: Int32],
        previous: [String: Set<GroupTopicPartition>]
    ) -> [String: Set<GroupTopicPartition>] {
        switch kind {
        case .range: return range(members: members, partitionCounts: partitionCounts)
        case .sticky: return sticky(members: members, partitionCounts: partitionCounts, previous: previous)
        }
    }

    /// Kafka's RangeAssignor, topic by topic: the topic's subscribers sorted by member id split its
    /// partitions into contiguous ranges; with `n` partitions and `k` subscribers each gets `n / k`
    /// and the first `n % k` get one more. Balanced per topic, not across topics.
    static func range(
        members: [GroupAssignorMember], partitionCounts: [String: Int32]
    ) -> [String: Set<GroupTopicPartition>] {
        let sorted = sortedUnique(members)
        var result: [String: Set<GroupTopicPartition>] = [:]
        var subscribers: [String: [String]] = [:]
        for member in sorted {
            result[member.memberId] = []
            for topic in Set(member.subscribedTopics) { subscribers[topic, default: []].append(member.memberId) }
        }
        for (topic, memberIds) in subscribers {
            let count = Int(partitionCounts[topic] ?? 0)
            guard count > 0 else { continue }
            let base = count / memberIds.count
            let extra = count % memberIds.count
            var next = 0
            for (rank, memberId) in memberIds.enumerated() {  // in member-id order: built from `sorted`
                let length = base + (rank < extra ? 1 : 0)
                for partition in next..<(next + length) {
                    result[memberId, default: []].insert(GroupTopicPartition(topic: topic, partition: Int32(partition)))
                }
                next += length
            }
        }
        return result
    }

    /// `members` sorted by id; duplicate ids are a programmer error.
    static func sortedUnique(_ members: [GroupAssignorMember]) -> [GroupAssignorMember] {
        let sorted = members.sorted { $0.memberId < $1.memberId }
        for (previous, next) in zip(sorted, sorted.dropFirst()) {
            precondition(previous.memberId != next.memberId, "duplicate member id \(next.memberId)")
        }
        return sorted
    }
}

/// An assignor's view of one member.
struct GroupAssignorMember: Hashable, Sendable {
    /// The member's id; unique in one call.
    var memberId: String
    /// The topics it subscribes to (order and duplicates do not matter).
    var subscribedTopics: [String]

    /// A member subscribed to `subscribedTopics`.
    init(memberId: String, subscribedTopics: [String]) {
        self.memberId = memberId
        self.subscribedTopics = subscribedTopics
    }
}
