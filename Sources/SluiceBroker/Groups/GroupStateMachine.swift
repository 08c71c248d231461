/// # Consumer-group coordination, broker side (Kafka KIP-848 style)
///
/// `GroupStateMachine` is one consumer group's coordinator as a pure value: no I/O, no clock, no
/// threads. The broker feeds it heartbeats with the current time and topic metadata, and schedules
/// `expireMembers` at `nextExpiryMs()`. The owner serialises calls (one actor per group is enough).
///
/// ## Protocol
/// Members send periodic heartbeats carrying their subscription and the partitions they consume
/// (their *owned* set); the coordinator computes the assignment and returns it.
/// - **Join**: epoch 0. With memberId "" the machine makes up an id (`<clientId>-<sequence>`); with
///   an unknown id the client's own id is kept (as Kafka 4 clients send a UUID); with the id of an
///   existing member it is a *rejoin*: the id is kept and everything the member held counts as
///   revoked, released as soon as the join's owned set does not contain it (a restarted client
///   owns nothing).
/// - **Leave**: epoch -1. The member is removed and its partitions are free at once.
/// - **Heartbeat**: epoch > 0 must equal the member's current epoch. Any other epoch is
///   `fencedMemberEpoch` (the request is stale: the client releases everything and rejoins); an
///   id the group does not know gets `unknownMemberId`. One heartbeat per member is in flight at
///   a time, as Kafka clients do.
///
/// ## Epochs
/// - The *group epoch* increases whenever membership changes, and whenever a subscription or a
///   topic's partition count changes in a way that changes the *target assignment*. The target is
///   recomputed by the group's assignor over all members' subscriptions (see `GroupAssignor`).
/// - A member's epoch becomes the group epoch in every response (when it receives its assignment
///   for the current target). So a response that revokes partitions always carries a new epoch —
///   a revocation only happens after the target changed, which bumped the group epoch — and any
///   later heartbeat the machine accepts from that member was sent after the member saw the
///   revocation. That is what makes its owned set trustworthy as an acknowledgement.
///
/// ## Safe hand-over: no partition is consumed by two members at once
/// Each member has an *assigned* set (what it may consume now: its last returned assignment) and a
/// *pending revocation* set (taken away in a response, release not yet confirmed). A partition is
/// *held* by at most one member, in one of those two sets.
/// - A partition in member B's target that another member A holds is withheld from B. A's response
///   drops it from A's assignment first; it stays pending until A heartbeats with an owned set that
///   no longer contains it (nil = the owned set A sent last). Only then can B receive it.
/// - When A leaves or expires, everything it held is free at once.
/// - Hand-over takes three heartbeat rounds in the worst case: A learns of the revocation, A
///   confirms it, B (if it heartbeated before A's confirmation) receives the partition.
///
/// ## Sessions
/// A member expires once `nowMs >= its last heartbeat + its session timeout` (`expireMembers`).
/// The broker times a session from when it *handled* a heartbeat, so a client that times its own
/// session from when it *sent* one, and stops consuming when that lapses (also when the answer
/// arrives too late), never consumes a partition the machine has freed.
///
/// ## Limits
/// Every collection is bounded by `GroupLimits`; requests beyond a limit are refused with a typed
/// error before anything changes. Joins and subscription changes stop `epochHeadroom` short of
/// `Int32.max` so that the group epoch can never wrap (the group must be emptied and recreated).
struct GroupStateMachine: Sendable {
    /// The member epoch that asks to join (or rejoin, keeping the member id).
    static let joinEpoch: Int32 = 0
    /// The member epoch that asks to leave.
    static let leaveEpoch: Int32 = -1
    /// Joins and subscription changes are refused once the group epoch is this close to
    /// `Int32.max`, so the epochs that leaves, expiries and topic changes still need never overflow.
    static let epochHeadroom: Int32 = 1_000_000

    /// One member's state.
    private struct Member: Sendable {
        let id: String
        var clientId = ""
        var clientHost = ""
        /// Sorted, without duplicates.
        var subscribedTopics: [String] = []
        var sessionTimeoutMs: Int32 = 0
        var lastHeartbeatMs: Int64 = 0
        /// The epoch of its last response. Invariant: `epoch <= groupEpoch`.
        var epoch: Int32 = 0
        /// What it may consume now. Invariant: disjoint from `pendingRevocation`.
        var assigned: Set<GroupTopicPartition> = []
        /// Taken away from it; held until it reports an owned set without them.
        var pendingRevocation: Set<GroupTopicPartition> = []
        /// The owned set it reported last (so that a heartbeat's nil means "unchanged").
        var reportedOwned: Set<GroupTopicPartition> = []

        /// When the session expires if no heartbeat arrives (saturating: a clock near `Int64.max`
        /// means "never", not a trap).
        var expiryMs: Int64 {
            let (sum, overflow) = lastHeartbeatMs.addingReportingOverflow(Int64(sessionTimeoutMs))
            return overflow ? Int64.max : sum
        }
    }

    /// The group's id, as the broker validated it with `GroupLimits.validateGroupId`.
    let groupId: String
    /// The bounds on this group.
    let limits: GroupLimits
    /// Increases whenever the target assignment (or membership) changes. Invariant: >= every member's epoch.
    private(set) var groupEpoch: Int32 = 0
    /// The assignor computing the target; set by the first member that joins an empty group.
    private(set) var assignorKind: GroupAssignorKind = .sticky

    /// Invariant: `members.count <= limits.membersMax`.
    private var members: [String: Member] = [:]
    /// The assignor's output for the current group epoch. Invariant: one key per member, values disjoint.
    private var targetAssignment: [String: Set<GroupTopicPartition>] = [:]
    /// Who holds each partition. Invariant: `holders[p] == m` exactly when `p` is in `m.assigned` or
    /// `m.pendingRevocation`, so no partition is held (consumable) by two members.
    private var holders: [GroupTopicPartition: String] = [:]
    /// Members subscribed to each topic (only topics with at least one subscriber).
    private var topicSubscriberCounts: [String: Int] = [:]
    /// Partition counts of subscribed topics (those with partitions) used for the current target.
    private var partitionCounts: [String: Int32] = [:]
    /// The sequence number behind the last generated member id.
    private var memberIdSequence: UInt64

    /// An empty group. `memberIdSequenceStart` lets the broker start generated ids somewhere an
    /// earlier run of the group did not use (for example at its start time), so an old client's id
    /// cannot name a new member.
    init(groupId: String, limits: GroupLimits = .init(), memberIdSequenceStart: UInt64 = 0) {
        precondition(limits.validateGroupId(groupId) == nil, "the broker must check validateGroupId first")
        self.groupId = groupId
        self.limits = limits
        self.memberIdSequence = memberIdSequenceStart
    }

    /// `empty`, `stable`, or `reconciling` while some member has not reached its target.
    var state: GroupState {
        if members.isEmpty { return .empty }
        return members.values.allSatisfy(isReconciled) ? .stable : .reconciling
    }

    /// Number of members.
    var memberCount: Int { members.count }

    private func isReconciled(_ member: Member) -> Bool {
        member.epoch == groupEpoch && member.pendingRevocation.isEmpty
            && member.assigned == (targetAssignment[member.id] ?? [])
    }

    private var epochExhausted: Bool { groupEpoch >= Int32.max - Self.epochHeadroom }

    private static let epochExhaustedError = GroupError.invalidRequest(
        "the group epoch is exhausted; remove all members so the broker can recreate the group")

    // MARK: - Heartbeats

    /// Handles one heartbeat: join (epoch 0), leave (epoch -1) or a member's periodic heartbeat.
    /// `topicPartitionCounts` gives the partitions per existing topic; topics it does not name have
    /// none and are ignored. A refused request changes nothing.
    mutating func heartbeat(
        _ request: GroupHeartbeat, nowMs: Int64, topicPartitionCounts: [String: Int32]
    ) -> Result<GroupHeartbeatResponse, GroupError> {
        let result: Result<GroupHeartbeatResponse, GroupError>
        switch request.memberEpoch {
        case Self.leaveEpoch: result = leave(request, topicPartitionCounts)
        case Self.joinEpoch: result = join(request, nowMs, topicPartitionCounts)
        case 1...: result = memberHeartbeat(request, nowMs, topicPartitionCounts)
        default:
            result = .failure(.invalidRequest(
                "member epoch \(request.memberEpoch): send 0 to join, -1 to leave, or the epoch of the last response"))
        }
        assert(invariantViolation() == nil, invariantViolation() ?? "")
        return result
    }

    private mutating func join(
        _ request: GroupHeartbeat, _ nowMs: Int64, _ topicPartitionCounts: [String: Int32]
    ) -> Result<GroupHeartbeatResponse, GroupError> {
        let fields: GroupValidatedHeartbeat
        switch limits.validate(request, isJoin: true) {
        case .success(let valid): fields = valid
        case .failure(let error): return .failure(error)
        }
        let topics = fields.subscribedTopics ?? []
        let memberId: String
        let isRejoin = members[request.memberId] != nil
        if let existing = members[request.memberId] {
            guard !epochExhausted || existing.subscribedTopics == topics else { return .failure(Self.epochExhaustedError) }
            memberId = existing.id
            revokeEverything(of: memberId)
        } else {
            guard members.count < limits.membersMax else { return .failure(.groupFull(limits.membersMax)) }
            guard !epochExhausted else { return .failure(Self.epochExhaustedError) }
            memberId = request.memberId.isEmpty ? nextMemberId(clientId: request.clientId) : request.memberId
            if members.isEmpty, let kind = request.assignor { assignorKind = kind }
            members[memberId] = Member(id: memberId)
        }
        let subscriptionChanged = setSubscription(of: memberId, to: topics)
        members[memberId]?.clientId = request.clientId
        members[memberId]?.clientHost = request.clientHost
        members[memberId]?.sessionTimeoutMs = fields.sessionTimeoutMs ?? limits.sessionTimeoutMsDefault
        members[memberId]?.lastHeartbeatMs = nowMs
        refreshTarget(topicPartitionCounts, membershipChanged: !isRejoin, subscriptionChanged: subscriptionChanged)
        return .success(reconcile(memberId, owned: fields.ownedPartitions ?? [], sendAssignment: true))
    }

    private mutating func memberHeartbeat(
        _ request: GroupHeartbeat, _ nowMs: Int64, _ topicPartitionCounts: [String: Int32]
    ) -> Result<GroupHeartbeatResponse, GroupError> {
        guard !request.memberId.isEmpty else {
            return .failure(.invalidRequest(
                "member epoch \(request.memberEpoch) without a member id; join with epoch 0 first"))
        }
        guard let member = members[request.memberId] else { return .failure(.unknownMemberId(request.memberId)) }
        guard request.memberEpoch == member.epoch else {
            return .failure(.fencedMemberEpoch(member: member.id, sent: request.memberEpoch, current: member.epoch))
        }
        let fields: GroupValidatedHeartbeat
        switch limits.validate(request, isJoin: false) {
        case .success(let valid): fields = valid
        case .failure(let error): return .failure(error)
        }
        var subscriptionChanged = false
        if let topics = fields.subscribedTopics, topics != member.subscribedTopics {
            guard !epochExhausted else { return .failure(Self.epochExhaustedError) }
            subscriptionChanged = setSubscription(of: member.id, to: topics)
        }
        members[member.id]?.lastHeartbeatMs = nowMs
        if let timeout = fields.sessionTimeoutMs { members[member.id]?.sessionTimeoutMs = timeout }
        refreshTarget(topicPartitionCounts, membershipChanged: false, subscriptionChanged: subscriptionChanged)
        return .success(reconcile(member.id, owned: fields.ownedPartitions, sendAssignment: false))
    }

    private mutating func leave(
        _ request: GroupHeartbeat, _ topicPartitionCounts: [String: Int32]
    ) -> Result<GroupHeartbeatResponse, GroupError> {
        guard !request.memberId.isEmpty else {
            return .failure(.invalidRequest("a leave (member epoch -1) needs the member id"))
        }
        guard let member = members[request.memberId] else { return .failure(.unknownMemberId(request.memberId)) }
        removeMember(member.id)
        refreshTarget(topicPartitionCounts, membershipChanged: true, subscriptionChanged: false)
        return .success(GroupHeartbeatResponse(
            memberId: member.id, memberEpoch: Self.leaveEpoch,
            heartbeatIntervalMs: limits.heartbeatIntervalMs(sessionTimeoutMs: member.sessionTimeoutMs),
            assignment: []))
    }

    /// Moves `memberId` toward its target and builds its response. First its owned set confirms
    /// earlier revocations; then partitions outside its target become pending revocation and free
    /// target partitions are added. Partitions another member holds are withheld.
    private mutating func reconcile(
        _ memberId: String, owned: Set<GroupTopicPartition>?, sendAssignment: Bool
    ) -> GroupHeartbeatResponse {
        guard var member = members[memberId] else { preconditionFailure("reconcile of unknown member \(memberId)") }
        if let owned { member.reportedOwned = owned }
        // Safe to trust: this heartbeat was sent after the response that revoked them (see Epochs).
        let released = member.pendingRevocation.subtracting(member.reportedOwned)
        member.pendingRevocation.subtract(released)
        for partition in released { holders[partition] = nil }

        let target = targetAssignment[memberId] ?? []
        let before = member.assigned
        let revoked = member.assigned.subtracting(target)
        member.assigned.subtract(revoked)
        member.pendingRevocation.formUnion(revoked)  // still held by this member until confirmed
        for partition in target.subtracting(member.assigned) {
            switch holders[partition] {
            case nil:
                holders[partition] = memberId
                member.assigned.insert(partition)
            case memberId?:  // taken back before its revocation was confirmed: it never left this member
                member.pendingRevocation.remove(partition)
                member.assigned.insert(partition)
            default:
                continue  // withheld: another member still holds it
            }
        }
        member.epoch = groupEpoch
        members[memberId] = member
        // Resent when the member's view differs from ours, so a lost response cannot strand it.
        let send = sendAssignment || member.assigned != before || (owned.map { $0 != member.assigned } ?? false)
        return GroupHeartbeatResponse(
            memberId: memberId, memberEpoch: member.epoch,
            heartbeatIntervalMs: limits.heartbeatIntervalMs(sessionTimeoutMs: member.sessionTimeoutMs),
            assignment: send ? member.assigned.sorted() : nil)
    }

    // MARK: - Sessions and metadata

    /// Removes members whose last heartbeat is at least their session timeout before `nowMs` and
    /// returns their ids, sorted. Their partitions are free at once; the target is recomputed.
    mutating func expireMembers(nowMs: Int64, topicPartitionCounts: [String: Int32]) -> [String] {
        let expired = members.values.filter { nowMs >= $0.expiryMs }.map(\.id).sorted()
        for memberId in expired { removeMember(memberId) }
        refreshTarget(topicPartitionCounts, membershipChanged: !expired.isEmpty, subscriptionChanged: false)
        assert(invariantViolation() == nil, invariantViolation() ?? "")
        return expired
    }

    /// The earliest time at which some member expires (the broker schedules one timer for it), nil
    /// when the group is empty. `expireMembers(nowMs:)` at that time removes that member.
    func nextExpiryMs() -> Int64? {
        members.values.map(\.expiryMs).min()
    }

    /// Call when topics are created, deleted or grow: recomputes the target (and bumps the group
    /// epoch) if the change affects it. Members learn of it on their next heartbeat.
    mutating func topicsChanged(topicPartitionCounts: [String: Int32]) {
        refreshTarget(topicPartitionCounts, membershipChanged: false, subscriptionChanged: false)
        assert(invariantViolation() == nil, invariantViolation() ?? "")
    }

    /// Offset-commit fencing: nil when the commit may proceed. memberId "" with epoch -1 is a
    /// standalone commit, allowed only while the group has no members (like
    /// `kafka-consumer-groups --reset-offsets`); otherwise the member must exist and `memberEpoch`
    /// must be its current epoch.
    func validateCommit(memberId: String, memberEpoch: Int32) -> GroupError? {
        if memberId.isEmpty && memberEpoch == Self.leaveEpoch {
            return members.isEmpty ? nil : .unknownMemberId("")
        }
        guard let member = members[memberId] else { return .unknownMemberId(memberId) }
        guard member.epoch == memberEpoch else {
            return .fencedMemberEpoch(member: memberId, sent: memberEpoch, current: member.epoch)
        }
        return nil
    }

    /// Every member with what it may consume now, sorted by member id.
    func describeMembers() -> [GroupMemberDescription] {
        members.values.sorted { $0.id < $1.id }.map { member in
            GroupMemberDescription(
                memberId: member.id, clientId: member.clientId, clientHost: member.clientHost,
                memberEpoch: member.epoch, subscribedTopics: member.subscribedTopics,
                assignedPartitions: member.assigned.sorted(),
                targetPartitions: (targetAssignment[member.id] ?? []).sorted(),
                pendingRevocationPartitions: member.pendingRevocation.sorted())
        }
    }

    // MARK: - Membership bookkeeping

    /// Recomputes the target when its inputs changed; bumps the group epoch when membership changed
    /// or the target differs.
    private mutating func refreshTarget(
        _ topicPartitionCounts: [String: Int32], membershipChanged: Bool, subscriptionChanged: Bool
    ) {
        let counts = subscribedPartitionCounts(topicPartitionCounts)
        guard membershipChanged || subscriptionChanged || counts != partitionCounts else { return }
        partitionCounts = counts
        let inputs = members.values.sorted { $0.id < $1.id }.map {
            GroupAssignorMember(memberId: $0.id, subscribedTopics: $0.subscribedTopics)
        }
        let target = GroupAssignor.assign(
            assignorKind, members: inputs, partitionCounts: counts, previous: targetAssignment)
        guard membershipChanged || target != targetAssignment else { return }
        targetAssignment = target
        precondition(groupEpoch < Int32.max, "group epoch overflow despite epochHeadroom")
        groupEpoch += 1
    }

    /// The partition counts of the topics some member subscribes to, without empty topics.
    private func subscribedPartitionCounts(_ topicPartitionCounts: [String: Int32]) -> [String: Int32] {
        var counts: [String: Int32] = [:]
        for topic in topicSubscriberCounts.keys {
            let count = topicPartitionCounts[topic] ?? 0
            precondition((0...limits.partitionsPerTopicMax).contains(count), "topic \(topic) has \(count) partitions")
            if count > 0 { counts[topic] = count }
        }
        return counts
    }

    /// Replaces the subscription of `memberId`; true when it changed.
    private mutating func setSubscription(of memberId: String, to topics: [String]) -> Bool {
        guard let old = members[memberId]?.subscribedTopics else { preconditionFailure("unknown member \(memberId)") }
        guard old != topics else { return false }
        for topic in old {
            let remaining = (topicSubscriberCounts[topic] ?? 0) - 1
            topicSubscriberCounts[topic] = remaining > 0 ? remaining : nil
        }
        for topic in topics { topicSubscriberCounts[topic, default: 0] += 1 }
        members[memberId]?.subscribedTopics = topics
        return true
    }

    /// A rejoining member restarts: all it held becomes pending, released by its join's owned set.
    private mutating func revokeEverything(of memberId: String) {
        guard var member = members[memberId] else { preconditionFailure("unknown member \(memberId)") }
        member.pendingRevocation.formUnion(member.assigned)
        member.assigned = []
        members[memberId] = member
    }

    private mutating func removeMember(_ memberId: String) {
        _ = setSubscription(of: memberId, to: [])
        guard let member = members.removeValue(forKey: memberId) else { preconditionFailure("unknown member \(memberId)") }
        for partition in member.assigned.union(member.pendingRevocation) { holders[partition] = nil }
        targetAssignment[memberId] = nil
    }

    /// `<clientId>-<sequence>`: unique among generated ids because the sequence (the part after the
    /// last "-") never repeats; the loop only skips ids a client chose for itself.
    private mutating func nextMemberId(clientId: String) -> String {
        let prefix = clientId.isEmpty ? "member" : clientId
        // At most `members.count` ids are taken, so one of `members.count + 1` candidates is free.
        for _ in 0...members.count {
            memberIdSequence &+= 1
            let candidate = "\(prefix)-\(memberIdSequence)"
            if members[candidate] == nil { return candidate }
        }
        preconditionFailure("more member ids taken than members")
    }

    // MARK: - Invariants

    /// nil when every invariant holds, otherwise the first broken one. Asserted after each event in
    /// debug builds; tests call it after every step.
    func invariantViolation() -> String? {
        if members.count > limits.membersMax { return "\(members.count) members exceed membersMax" }
        if Set(targetAssignment.keys) != Set(members.keys) { return "target keys differ from members" }
        var heldCount = 0
        var targetSeen: Set<GroupTopicPartition> = []
        for member in members.values {
            if member.epoch > groupEpoch { return "member \(member.id) epoch \(member.epoch) > group epoch \(groupEpoch)" }
            if !member.assigned.isDisjoint(with: member.pendingRevocation) { return "\(member.id) assigned ∩ pending" }
            for partition in member.assigned.union(member.pendingRevocation) where holders[partition] != member.id {
                return "\(partition) held by \(member.id) but holders says \(holders[partition] ?? "nil")"
            }
            heldCount += member.assigned.count + member.pendingRevocation.count
            for partition in targetAssignment[member.id] ?? [] {
                if !targetSeen.insert(partition).inserted { return "\(partition) in two targets" }
            }
        }
        if heldCount != holders.count { return "holders has \(holders.count) entries, members hold \(heldCount)" }
        return nil
    }
}
