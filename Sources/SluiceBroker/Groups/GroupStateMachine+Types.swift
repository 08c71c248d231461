// The values that go in and out of `GroupStateMachine`: requests, responses, errors, limits.
// None of them performs I/O; the broker translates them to and from the wire.

/// One partition of one topic: the unit the assignors hand out and members consume.
struct GroupTopicPartition: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The topic's name.
    var topic: String
    /// The partition index inside the topic, `0..<partitionCount`.
    var partition: Int32

    /// A partition of `topic`.
    init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    /// Orders by topic name, then partition index: the order of every list the machine returns.
    static func < (lhs: GroupTopicPartition, rhs: GroupTopicPartition) -> Bool {
        (lhs.topic, lhs.partition) < (rhs.topic, rhs.partition)
    }

    /// `topic-partition`, as Kafka's tools print it.
    var description: String { "\(topic)-\(partition)" }
}

/// Which assignor computes a group's target assignment.
enum GroupAssignorKind: String, Sendable, CaseIterable {
    /// Kafka's RangeAssignor: per topic, contiguous ranges in member-id order.
    case range
    /// Keeps previous assignments where valid and moves as few partitions as balance requires.
    case sticky
}

/// Named bounds on everything a group holds or a request may carry.
///
/// A request beyond a bound gets `GroupError.invalidRequest` (or `.groupFull`), never an allocation
/// sized by the client. Partition counts come from the broker's own metadata and are trusted up to
/// `partitionsPerTopicMax` (a precondition: the broker's topic limits must stay below it).
/// Together the bounds limit every collection: at most `membersMax` members, each subscribed to at
/// most `subscribedTopicsMax` topics of at most `partitionsPerTopicMax` partitions.
struct GroupLimits: Sendable, Hashable {
    /// Most members one group holds; a join beyond it gets `GroupError.groupFull`.
    let membersMax: Int
    /// Longest group id, in UTF-8 bytes.
    let groupIdBytesMax: Int
    /// Longest member id a client may choose when it joins with its own id, in UTF-8 bytes.
    let memberIdBytesMax: Int
    /// Longest client id and client host kept for `describeMembers`, in UTF-8 bytes.
    let clientIdBytesMax: Int
    /// Longest topic name in a subscription or an owned-partition list, in UTF-8 bytes (Kafka's 249).
    let topicNameBytesMax: Int
    /// Most topics one member may subscribe to.
    let subscribedTopicsMax: Int
    /// Most owned partitions one heartbeat may report.
    let ownedPartitionsMax: Int
    /// Largest partition count the broker may report for one topic.
    let partitionsPerTopicMax: Int32
    /// Shortest session timeout a member may ask for.
    let sessionTimeoutMsMin: Int32
    /// Longest session timeout a member may ask for.
    let sessionTimeoutMsMax: Int32
    /// Session timeout of a member that joins without asking for one.
    let sessionTimeoutMsDefault: Int32
    /// How often members should heartbeat; a member's interval is capped at half its session
    /// timeout (see `heartbeatIntervalMs(sessionTimeoutMs:)`).
    let heartbeatIntervalMs: Int32

    /// Limits with Kafka-like defaults; preconditions catch an inconsistent configuration.
    init(
        membersMax: Int = 1000,
        groupIdBytesMax: Int = 255,
        memberIdBytesMax: Int = 255,
        clientIdBytesMax: Int = 255,
        topicNameBytesMax: Int = 249,
        subscribedTopicsMax: Int = 1000,
        ownedPartitionsMax: Int = 100_000,
        partitionsPerTopicMax: Int32 = 100_000,
        sessionTimeoutMsMin: Int32 = 1000,
        sessionTimeoutMsMax: Int32 = 300_000,
        sessionTimeoutMsDefault: Int32 = 10_000,
        heartbeatIntervalMs: Int32 = 1000
    ) {
        precondition(membersMax > 0 && groupIdBytesMax > 0 && memberIdBytesMax > 0 && clientIdBytesMax > 0)
        precondition(topicNameBytesMax > 0 && subscribedTopicsMax >= 0 && ownedPartitionsMax >= 0)
        precondition(partitionsPerTopicMax >= 0)
        precondition(sessionTimeoutMsMin > 0 && sessionTimeoutMsMin <= sessionTimeoutMsMax, "session timeout bounds")
        precondition((sessionTimeoutMsMin...sessionTimeoutMsMax).contains(sessionTimeoutMsDefault), "default session timeout")
        precondition(heartbeatIntervalMs > 0 && heartbeatIntervalMs < sessionTimeoutMsDefault, "heartbeat interval")
        self.membersMax = membersMax
        self.groupIdBytesMax = groupIdBytesMax
        self.memberIdBytesMax = memberIdBytesMax
        self.clientIdBytesMax = clientIdBytesMax
        self.topicNameBytesMax = topicNameBytesMax
        self.subscribedTopicsMax = subscribedTopicsMax
        self.ownedPartitionsMax = ownedPartitionsMax
        self.partitionsPerTopicMax = partitionsPerTopicMax
        self.sessionTimeoutMsMin = sessionTimeoutMsMin
        self.sessionTimeoutMsMax = sessionTimeoutMsMax
        self.sessionTimeoutMsDefault = sessionTimeoutMsDefault
        self.heartbeatIntervalMs = heartbeatIntervalMs
    }

    /// The interval told to a member with this session timeout: the configured interval, capped at
    /// half the timeout so that even a member with the shortest allowed timeout gets two chances to
    /// heartbeat before it expires (with the defaults, 1000 ms would equal the 1000 ms minimum).
    func heartbeatIntervalMs(sessionTimeoutMs: Int32) -> Int32 {
        min(heartbeatIntervalMs, max(1, sessionTimeoutMs / 2))
    }
}

/// One heartbeat, as the broker decoded it from a member's request.
struct GroupHeartbeat: Sendable, Equatable {
    /// "" = a new member joining (the machine makes up an id); otherwise the member's id.
    var memberId: String
    /// 0 = join, -1 = leave, >0 = the epoch of the member's last response.
    var memberEpoch: Int32
    /// The client's `client.id`, kept for `describeMembers`.
    var clientId: String
    /// The client's address, kept for `describeMembers`.
    var clientHost: String
    /// The member's session timeout; read on join (nil = the default) and whenever present.
    var sessionTimeoutMs: Int32?
    /// The topics the member consumes; nil = unchanged since the last heartbeat (required on join).
    var subscribedTopics: [String]?
    /// The assignor the member asks for on join; the group keeps the first member's choice.
    var assignor: GroupAssignorKind?
    /// The partitions the member consumes right now; nil = unchanged since the last heartbeat.
    var ownedPartitions: [GroupTopicPartition]?

    /// A heartbeat; the optional fields default to "not sent".
    init(
        memberId: String,
        memberEpoch: Int32,
        clientId: String = "",
        clientHost: String = "",
        sessionTimeoutMs: Int32? = nil,
        subscribedTopics: [String]? = nil,
        assignor: GroupAssignorKind? = nil,
        ownedPartitions: [GroupTopicPartition]? = nil
    ) {
        self.memberId = memberId
        self.memberEpoch = memberEpoch
        self.clientId = clientId
        self.clientHost = clientHost
        self.sessionTimeoutMs = sessionTimeoutMs
        self.subscribedTopics = subscribedTopics
        self.assignor = assignor
        self.ownedPartitions = ownedPartitions
    }
}

/// The answer to an accepted heartbeat.
struct GroupHeartbeatResponse: Equatable, Sendable {
    /// The member's id (made up by the machine when the member joined with "").
    var memberId: String
    /// The epoch the member sends with its next heartbeat and its offset commits; -1 after a leave.
    var memberEpoch: Int32
    /// When to heartbeat next.
    var heartbeatIntervalMs: Int32
    /// The partitions the member may consume now, sorted; nil when unchanged since the member's last
    /// response. Sent in full on join, on change, and whenever the member reports an owned set that
    /// differs from it (so a member that missed a response learns its assignment again).
    var assignment: [GroupTopicPartition]?
}

/// Where a group stands.
enum GroupState: String, Sendable, Equatable {
    /// No members.
    case empty
    /// Every member consumes exactly its target assignment at the current group epoch.
    case stable
    /// Some member has not yet received its target, or has not acknowledged a revocation.
    case reconciling
}

/// One member, as `describeMembers` reports it (the `kafka-consumer-groups --describe` view).
struct GroupMemberDescription: Equatable, Sendable {
    /// The member's id.
    var memberId: String
    /// The client id it joined with.
    var clientId: String
    /// The client host it joined with.
    var clientHost: String
    /// The epoch of its last response.
    var memberEpoch: Int32
    /// Its subscription, sorted.
    var subscribedTopics: [String]
    /// What it may consume now (its last returned assignment), sorted.
    var assignedPartitions: [GroupTopicPartition]
    /// What the assignor wants it to have, sorted.
    var targetPartitions: [GroupTopicPartition]
    /// Partitions taken from it whose release it has not yet confirmed, sorted.
    var pendingRevocationPartitions: [GroupTopicPartition]
}

/// Operating errors of a group: bad or stale client requests. Each says what the client must do.
enum GroupError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The member was removed (left or session expired) or never existed: it must rejoin with epoch 0.
    /// An empty id here means a standalone commit (no member id) to a group that has members.
    case unknownMemberId(String)
    /// The request carries an epoch other than the member's current one: it is stale.
    case fencedMemberEpoch(member: String, sent: Int32, current: Int32)
    /// The request is malformed or outside the group's limits.
    case invalidRequest(String)
    /// The group already holds `membersMax` members.
    case groupFull(Int)

    /// What went wrong and what to do about it.
    var message: String {
        switch self {
        case .unknownMemberId(let id) where id.isEmpty:
            return "a commit without a member id is accepted only while the group has no members; "
                + "stop the group's consumers first (as `kafka-consumer-groups --reset-offsets` requires) "
                + "or commit as a member"
        case .unknownMemberId(let id):
            return "member '\(id)' is not in the group (it left, its session expired, or it never joined); "
                + "release its partitions and rejoin with member epoch 0"
        case .fencedMemberEpoch(let member, let sent, let current):
            return "member '\(member)' sent epoch \(sent) but its current epoch is \(current); the request is stale: "
                + "use the epoch of the latest heartbeat response, or release all partitions and rejoin with epoch 0"
        case .invalidRequest(let detail):
            return "invalid group request: \(detail)"
        case .groupFull(let membersMax):
            return "the group already has \(membersMax) members, its limit; stop a consumer or raise membersMax"
        }
    }

    var description: String { message }
}
