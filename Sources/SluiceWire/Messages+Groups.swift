import NIOCore

// Bodies of the consumer-group APIs (protocol.md, "Consumer groups").

/// Partitions of one topic, as in assignments and owned sets: `topic string, partitions [int32]`.
public struct TopicPartitions: WireEntry, Hashable {
    public var topic: String
    public var partitions: [Int32]

    public init(topic: String, partitions: [Int32]) {
        self.topic = topic
        self.partitions = partitions
    }

    public init(from reader: inout WireReader) throws {
        topic = try reader.readString("topic")
        partitions = try reader.readArray("partitions") { try $0.readInt32("partition") }
    }

    public func encode(to writer: inout WireWriter) {
        writer.write(topic)
        writer.write(partitions) { $0.write($1) }
    }
}

extension WireReader {
    mutating func readTopicPartitionsList(_ field: StaticString) throws -> [TopicPartitions]? {
        try readNullableArray(field) { try TopicPartitions(from: &$0) }
    }
}

extension WireWriter {
    mutating func write(topicPartitions: [TopicPartitions]?) {
        write(topicPartitions) { w, tp in tp.encode(to: &w) }
    }
}

/// Join (epoch 0), heartbeat (epoch > 0) or leave (epoch −1). The broker assigns partitions.
public struct GroupHeartbeatRequest: WireMessage, Hashable {
    public var groupId: String
    /// Empty on a first join: the broker picks one.
    public var memberId: String
    public var memberEpoch: Int32
    public var sessionTimeoutMs: Int32
    /// Null when unchanged since the last heartbeat.
    public var subscribedTopics: [String]?
    /// `range` or `sticky`; null = the group's current choice (sticky for a new group).
    public var assignor: String?
    /// The partitions the member consumes now; null when unchanged.
    public var ownedPartitions: [TopicPartitions]?

    public init(groupId: String, memberId: String, memberEpoch: Int32, sessionTimeoutMs: Int32,
                subscribedTopics: [String]?, assignor: String?, ownedPartitions: [TopicPartitions]?) {
        self.groupId = groupId
        self.memberId = memberId
        self.memberEpoch = memberEpoch
        self.sessionTimeoutMs = sessionTimeoutMs
        self.subscribedTopics = subscribedTopics
        self.assignor = assignor
        self.ownedPartitions = ownedPartitions
    }

    public init(from reader: inout WireReader, version: Int16) throws {
        groupId = try reader.readString("group_id")
        memberId = try reader.readString("member_id")
        memberEpoch = try reader.readInt32("member_epoch")
        sessionTimeoutMs = try reader.readInt32("session_timeout_ms")
        subscribedTopics = try reader.readNullableArray("subscribed_topics") { try $0.readString("topic") }
        assignor = try reader.readNullableString("assignor")
        ownedPartitions = try reader.readTopicPartitionsList("owned_partitions")
    }

    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(groupId)
        writer.write(memberId)
        writer.write(memberEpoch)
        writer.write(sessionTimeoutMs)
        writer.write(subscribedTopics) { $0.write($1) }
        writer.write(assignor)
        writer.write(topicPartitions: ownedPartitions)
    }
}

public struct GroupHeartbeatResponse: WireMessage, Hashable {
    public var memberId: String
    public var memberEpoch: Int32
    public var heartbeatIntervalMs: Int32
    /// What the member may consume now; null when unchanged since its last response.
    public var assignment: [TopicPartitions]?

    public init(memberId: String, memberEpoch: Int32, heartbeatIntervalMs: Int32, assignment: [TopicPartitions]?) {
        self.memberId = memberId
        self.memberEpoch = memberEpoch
        self.heartbeatIntervalMs = heartbeatIntervalMs
        self.assignment = assignment
    }

    public init(from reader: inout WireReader, version: Int16) throws {
        memberId = try reader.readString("member_id")
        memberEpoch = try reader.readInt32("member_epoch")
        heartbeatIntervalMs = try reader.readInt32("heartbeat_interval_ms")
        assignment = try reader.readTopicPartitionsList("assignment")
    }

    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(memberId)
        writer.write(memberEpoch)
        writer.write(heartbeatIntervalMs)
        writer.write(topicPartitions: assignment)
    }
}

/// `partition int32, offset int64, metadata string?`: an offset to commit (OffsetCommit) or the one
/// committed (OffsetFetch), with the consumer's free-form metadata. Kafka's `OffsetAndMetadata`.
public struct OffsetAndMetadata: WireEntry, Hashable {
    public var partition: Int32
    /// The next offset to consume; in OffsetFetch answers −1 when the group has no committed offset
    /// for the partition.
    public var offset: Int64
    public var metadata: String?

    public init(partition: Int32, offset: Int64, metadata: String? = nil) {
        self.partition = partition
        self.offset = offset
        self.metadata = metadata
    }

    public init(from reader: inout WireReader) throws {
        partition = try reader.readInt32("partition")
        offset = try reader.readInt64("offset")
        metadata = try reader.readNullableString("metadata")
    }

    public func encode(to writer: inout WireWriter) {
        writer.write(partition)
        writer.write(offset)
        writer.write(metadata)
    }
}

public struct OffsetCommitRequest: WireMessage, Hashable {
    /// The offset to commit for one partition.
    public typealias Partition = OffsetAndMetadata
    /// A topic and the offsets to commit for its partitions.
    public typealias Topic = TopicEntries<Partition>

    public var groupId: String
    /// Empty with epoch −1 for a standalone commit (only allowed while the group has no members).
    public var memberId: String
    public var memberEpoch: Int32
    public var topics: [Topic]

    public init(groupId: String, memberId: String, memberEpoch: Int32, topics: [Topic]) {
        self.groupId = groupId
        self.memberId = memberId
        self.memberEpoch = memberEpoch
        self.topics = topics
    }

    public init(from reader: inout WireReader, version: Int16) throws {
        groupId = try reader.readString("group_id")
        memberId = try reader.readString("member_id")
        memberEpoch = try reader.readInt32("member_epoch")
        topics = try reader.readEntries("topics")
    }

    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(groupId)
        writer.write(memberId)
        writer.write(memberEpoch)
        writer.write(entries: topics)
    }
}

/// Per-partition errors of OffsetCommit.
public struct PartitionErrorsResponse: TopicsMessage, Hashable {
    /// `partition int32, error int16, message string?`.
    public struct Partition: WireEntry, WireErrorCarrying, Hashable {
        public var partition: Int32
        public var error: ErrorCode
        public var errorMessage: String?

        public init(partition: Int32, error: ErrorCode = .none, errorMessage: String? = nil) {
            self.partition = partition
            self.error = error
            self.errorMessage = errorMessage
        }

        public init(from reader: inout WireReader) throws {
            partition = try reader.readInt32("partition")
            (error, errorMessage) = try reader.readErrorPair()
        }

        public func encode(to writer: inout WireWriter) {
            writer.write(partition)
            writer.write(error: error, message: errorMessage)
        }
    }

    /// A topic and the outcome for each of its partitions.
    public typealias Topic = TopicEntries<Partition>

    public var topics: [Topic]

    public init(topics: [Topic]) { self.topics = topics }
}

public struct OffsetFetchRequest: WireMessage, Hashable {
    public var groupId: String
    /// Null asks for every partition the group has committed.
    public var topics: [TopicPartitions]?

    public init(groupId: String, topics: [TopicPartitions]?) {
        self.groupId = groupId
        self.topics = topics
    }

    public init(from reader: inout WireReader, version: Int16) throws {
        groupId = try reader.readString("group_id")
        topics = try reader.readTopicPartitionsList("topics")
    }

    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(groupId)
        writer.write(topicPartitions: topics)
    }
}

public struct OffsetFetchResponse: TopicsMessage, Hashable {
    /// The committed offset of one partition (−1 when there is none).
    public typealias Partition = OffsetAndMetadata
    /// A topic and the committed offsets of its partitions.
    public typealias Topic = TopicEntries<Partition>

    public var topics: [Topic]

    public init(topics: [Topic]) { self.topics = topics }
}

public struct ListGroupsRequest: WireMessage, Hashable {
    public init() {}
    public init(from reader: inout WireReader, version: Int16) throws {}
    public func encode(to writer: inout WireWriter, version: Int16) {}
}

public struct ListGroupsResponse: WireMessage, Hashable {
    public struct Group: Sendable, Hashable {
        public var groupId: String
        /// `empty`, `stable` or `reconciling`.
        public var state: String
        public var memberCount: Int32

        public init(groupId: String, state: String, memberCount: Int32) {
            self.groupId = groupId
            self.state = state
            self.memberCount = memberCount
        }
    }

    public var groups: [Group]

    public init(groups: [Group]) { self.groups = groups }

    public init(from reader: inout WireReader, version: Int16) throws {
        groups = try reader.readArray("groups") { r in
            Group(groupId: try r.readString("group_id"), state: try r.readString("state"), memberCount: try r.readInt32("member_count"))
        }
    }

    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(groups) { w, g in
            w.write(g.groupId)
            w.write(g.state)
            w.write(g.memberCount)
        }
    }
}

public struct DescribeGroupsRequest: WireMessage, Hashable {
    public var groupIds: [String]

    public init(groupIds: [String]) { self.groupIds = groupIds }

    public init(from reader: inout WireReader, version: Int16) throws {
        groupIds = try reader.readArray("group_ids") { try $0.readString("group_id") }
    }

    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(groupIds) { $0.write($1) }
    }
}

public struct DescribeGroupsResponse: WireMessage, Hashable {
    public struct Member: Sendable, Hashable {
        public var memberId: String
        public var clientId: String
        public var clientHost: String
        public var memberEpoch: Int32
        public var subscribedTopics: [String]
        public var assignment: [TopicPartitions]

        public init(memberId: String, clientId: String, clientHost: String, memberEpoch: Int32, subscribedTopics: [String],
                    assignment: [TopicPartitions]) {
            self.memberId = memberId
            self.clientId = clientId
            self.clientHost = clientHost
            self.memberEpoch = memberEpoch
            self.subscribedTopics = subscribedTopics
            self.assignment = assignment
        }
    }

    public struct Group: WireErrorCarrying, Sendable, Hashable {
        public var groupId: String
        public var error: ErrorCode
        public var errorMessage: String?
        public var state: String
        public var groupEpoch: Int32
        public var assignor: String
        public var members: [Member]

        public init(groupId: String, error: ErrorCode = .none, errorMessage: String? = nil, state: String, groupEpoch: Int32,
                    assignor: String, members: [Member]) {
            self.groupId = groupId
            self.error = error
            self.errorMessage = errorMessage
            self.state = state
            self.groupEpoch = groupEpoch
            self.assignor = assignor
            self.members = members
        }
    }

    public var groups: [Group]

    public init(groups: [Group]) { self.groups = groups }

    public init(from reader: inout WireReader, version: Int16) throws {
        groups = try reader.readArray("groups") { r in
            let groupId = try r.readString("group_id")
            let (error, errorMessage) = try r.readErrorPair()
            return Group(groupId: groupId, error: error, errorMessage: errorMessage, state: try r.readString("state"),
                         groupEpoch: try r.readInt32("group_epoch"), assignor: try r.readString("assignor"),
                         members: try r.readArray("members") { m in
                             Member(memberId: try m.readString("member_id"), clientId: try m.readString("client_id"),
                                    clientHost: try m.readString("client_host"), memberEpoch: try m.readInt32("member_epoch"),
                                    subscribedTopics: try m.readArray("subscribed_topics") { try $0.readString("topic") },
                                    assignment: try m.readTopicPartitionsList("assignment") ?? [])
                         })
        }
    }

    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(groups) { w, g in
            w.write(g.groupId)
            w.write(error: g.error, message: g.errorMessage)
            w.write(g.state)
            w.write(g.groupEpoch)
            w.write(g.assignor)
            w.write(g.members) { w, m in
                w.write(m.memberId)
                w.write(m.clientId)
                w.write(m.clientHost)
                w.write(m.memberEpoch)
                w.write(m.subscribedTopics) { $0.write($1) }
                w.write(topicPartitions: m.assignment)
            }
        }
    }
}
