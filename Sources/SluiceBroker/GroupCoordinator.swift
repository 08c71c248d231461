import Logging
import NIOConcurrencyHelpers
import NIOCore
import SluiceCompression
import SluiceCore
import SluiceLog
import SluiceWire

/// Consumer groups: membership and assignment (one `GroupStateMachine` per group) and committed
/// offsets, which live in the internal compacted topic `__consumer_offsets` and in memory.
///
/// Offset records (storage-format/protocol.md, "Committed offsets"): key = int16 version 0, string
/// group, string topic, int32 partition; value = int16 version 0, int64 offset, nullable string
/// metadata, int64 commit time (ms). A null value removes the offset. The topic is replayed at start.
final class GroupCoordinator: @unchecked Sendable {
    static let offsetsTopic = "__consumer_offsets"
    static let groupIdBytesMax = 255
    /// Most groups the broker tracks (members or committed offsets).
    static let groupsMax = 100_000
    /// Longest metadata string stored with a committed offset.
    static let commitMetadataBytesMax = 4096

    struct Committed: Hashable {
        var offset: Int64
        var metadata: String?
    }

    private let registry: TopicRegistry
    private let logger: Logger
    private let lock = NIOLock()
    /// Serialises offset writes so the in-memory map follows the log's order.
    private let commitLock = NIOLock()
    private var groups: [String: GroupStateMachine] = [:]
    private var offsets: [String: [GroupTopicPartition: Committed]] = [:]

    init(registry: TopicRegistry, logger: Logger) {
        self.registry = registry
        self.logger = logger
    }

    private static func nowMs() -> Int64 { SystemWallClock().nowMilliseconds() }

    // MARK: Loading

    /// Creates `__consumer_offsets` if missing and replays it into memory.
    func load(offsetsPartitions: Int32) throws {
        let topic = try InternalTopic.open(Self.offsetsTopic, partitions: offsetsPartitions, registry: registry)
        var loaded: [String: [GroupTopicPartition: Committed]] = [:]
        var records = 0
        for partition in topic.partitions {
            records += try InternalTopic.replay(partition) { key, value in
                guard let key, let (group, tp) = Self.decodeKey(key) else { return }
                if let value {
                    if let committed = Self.decodeValue(value) { loaded[group, default: [:]][tp] = committed }
                } else {
                    loaded[group]?[tp] = nil
                }
            }
        }
        lock.withLock { offsets = loaded.filter { !$0.value.isEmpty } }
        logger.info("loaded committed offsets", metadata: ["groups": "\(loaded.count)", "records": "\(records)"])
    }

    // MARK: Membership

    func heartbeat(_ request: GroupHeartbeatRequest, clientId: String, clientHost: String) throws -> SluiceWire.GroupHeartbeatResponse {
        try Self.validateGroupId(request.groupId)
        var assignor: GroupAssignorKind?
        if let name = request.assignor {
            guard let kind = GroupAssignorKind(rawValue: name) else {
                throw WireError(.invalidRequest, "unknown assignor '\(name)'; use range or sticky")
            }
            assignor = kind
        }
        let counts = registry.clientTopicPartitionCounts
        let input = GroupHeartbeat(
            memberId: request.memberId, memberEpoch: request.memberEpoch, clientId: clientId, clientHost: clientHost,
            sessionTimeoutMs: request.sessionTimeoutMs > 0 ? request.sessionTimeoutMs : nil,
            subscribedTopics: request.subscribedTopics, assignor: assignor,
            ownedPartitions: request.ownedPartitions.map(Self.flatten))
        let result: Result<GroupHeartbeatResponse, GroupError> = try lock.withLock {
            var group: GroupStateMachine
            if let existing = groups[request.groupId] {
                group = existing
            } else {
                guard request.memberEpoch == 0 else {
                    return .failure(.unknownMemberId(request.memberId))
                }
                guard groups.count + offsets.count < Self.groupsMax || offsets[request.groupId] != nil else {
                    throw WireError(.groupFull, "the broker tracks \(Self.groupsMax) groups, its limit")
                }
                group = GroupStateMachine(groupId: request.groupId, memberIdSequenceStart: UInt64(max(0, Self.nowMs())))
            }
            let result = group.heartbeat(input, nowMs: Self.nowMs(), topicPartitionCounts: counts)
            groups[request.groupId] = group
            return result
        }
        switch result {
        case .success(let response):
            return SluiceWire.GroupHeartbeatResponse(
                memberId: response.memberId, memberEpoch: response.memberEpoch, heartbeatIntervalMs: response.heartbeatIntervalMs,
                assignment: response.assignment.map(Self.group))
        case .failure(let error):
            throw Self.wireError(error)
        }
    }

    static func wireError(_ error: GroupError) -> WireError {
        switch error {
        case .unknownMemberId: WireError(.unknownMemberId, error.message)
        case .fencedMemberEpoch: WireError(.fencedMemberEpoch, error.message)
        case .invalidRequest: WireError(.invalidRequest, error.message)
        case .groupFull: WireError(.groupFull, error.message)
        }
    }

    func expireMembers() {
        let now = Self.nowMs()
        // Runs every 200 ms: the topic counts are gathered only when some group is due.
        guard lock.withLock({ groups.values.contains { $0.nextExpiryMs().map { $0 <= now } ?? true } }) else { return }
        let counts = registry.clientTopicPartitionCounts
        lock.withLock {
            for (id, var group) in groups where group.nextExpiryMs().map({ $0 <= now }) ?? true {
                let expired = group.expireMembers(nowMs: now, topicPartitionCounts: counts)
                if !expired.isEmpty {
                    logger.info("group members expired", metadata: ["group": "\(id)", "members": "\(expired)"])
                }
                groups[id] = group.state == .empty ? nil : group
            }
        }
    }

    func topicsChanged() {
        let counts = registry.clientTopicPartitionCounts
        lock.withLock {
            for (id, var group) in groups {
                group.topicsChanged(topicPartitionCounts: counts)
                groups[id] = group
            }
        }
    }


    // MARK: Offsets

    /// An offset commit checked against the group and the topics: the answer per partition, and the
    /// offsets to store.
    struct CheckedCommit {
        var results: [PartitionErrorsResponse.Topic]
        var accepted: [CommittedOffset]
        var timeMs: Int64
    }

    /// Checks the committer's membership and each partition; the partitions refused are answered in
    /// `results` and left out of `accepted`.
    func check(_ request: OffsetCommitRequest) throws -> CheckedCommit {
        try Self.validateGroupId(request.groupId)
        try validateCommitter(request)
        var checked = CheckedCommit(results: [], accepted: [], timeMs: Self.nowMs())
        for topic in request.topics {
            var partitions: [PartitionErrorsResponse.Partition] = []
            for p in topic.partitions {
                if let problem = checkCommit(topic.name, p) {
                    partitions.append(.init(partition: p.partition, error: problem.code, errorMessage: problem.message))
                    continue
                }
                checked.accepted.append(CommittedOffset(topic: topic.name, partition: p.partition, offset: p.offset, metadata: p.metadata))
                partitions.append(.init(partition: p.partition))
            }
            checked.results.append(.init(name: topic.name, partitions: partitions))
        }
        return checked
    }

    /// Commits on a broker running alone: stores the offsets at once.
    func commit(_ request: OffsetCommitRequest) throws -> PartitionErrorsResponse {
        let checked = try check(request)
        guard !checked.accepted.isEmpty else { return PartitionErrorsResponse(topics: checked.results) }
        try commitLock.withLock {
            // Checked again right before the write, so a member fenced meanwhile cannot still land a commit.
            try validateCommitter(request)
            try store(group: request.groupId, checked.accepted, timeMs: checked.timeMs)
        }
        return PartitionErrorsResponse(topics: checked.results)
    }

    /// Stores offsets the metadata group committed (every broker of a cluster keeps every group's offsets,
    /// so whichever becomes controller has them). Runs on the metadata group's thread, in log order.
    func storeCommitted(group: String, _ committed: [CommittedOffset], timeMs: Int64) throws {
        try commitLock.withLock { try store(group: group, committed, timeMs: timeMs) }
    }

    /// Appends the offsets to `__consumer_offsets` (durably) and then to memory. Caller holds commitLock.
    private func store(group: String, _ committed: [CommittedOffset], timeMs: Int64) throws {
        let records = committed.enumerated().map { index, entry in
            Record(offset: Int64(index), timestamp: timeMs,
                   key: Self.encodeKey(group, GroupTopicPartition(topic: entry.topic, partition: entry.partition)),
                   value: Self.encodeValue(Committed(offset: entry.offset, metadata: entry.metadata), now: timeMs))
        }
        let batch = try RecordBatch.build(records: records, codec: .none)
        _ = try offsetsPartition(for: group).appendInternal(batch)
        lock.withLock {
            for entry in committed {
                offsets[group, default: [:]][GroupTopicPartition(topic: entry.topic, partition: entry.partition)] =
                    Committed(offset: entry.offset, metadata: entry.metadata)
            }
        }
    }

    /// Forgets every group's members (this broker stopped or started coordinating groups): they rejoin
    /// when they next heartbeat. Committed offsets stay.
    func forgetMembers() {
        lock.withLock { groups = [:] }
    }

    private func validateCommitter(_ request: OffsetCommitRequest) throws {
        try lock.withLock {
            if let group = groups[request.groupId] {
                let members = group.memberCount
                if request.memberEpoch == -1 && request.memberId.isEmpty && members > 0 {
                    throw WireError(.groupNotEmpty,
                        "group '\(request.groupId)' has \(members) active member(s); stop its consumers before changing its offsets")
                }
                if let error = group.validateCommit(memberId: request.memberId, memberEpoch: request.memberEpoch) {
                    throw Self.wireError(error)
                }
            } else if request.memberEpoch != -1 {
                throw WireError(.unknownMemberId, "member '\(request.memberId)' is not in group '\(request.groupId)'; rejoin before committing")
            }
        }
    }

    private func checkCommit(_ topic: String, _ p: OffsetCommitRequest.Partition) -> WireError? {
        do { _ = try registry.partition(topic, p.partition) } catch let error as WireError { return error } catch { return WireError(.unknownServerError, "\(error)") }
        guard p.offset >= 0 else { return WireError(.invalidCommitOffset, "offset \(p.offset) is negative") }
        if let metadata = p.metadata, metadata.utf8.count > Self.commitMetadataBytesMax {
            return WireError(.invalidCommitOffset, "commit metadata is \(metadata.utf8.count) bytes; the limit is \(Self.commitMetadataBytesMax)")
        }
        return nil
    }

    private func offsetsPartition(for group: String) throws -> Partition {
        guard let topic = registry.topic(Self.offsetsTopic), !topic.partitions.isEmpty else {
            throw WireError(.storageError, "the internal topic \(Self.offsetsTopic) is missing")
        }
        let index = Int(Partitioning.stableHash(Array(group.utf8)) % UInt32(topic.partitions.count))
        return topic.partitions[index]
    }

    func fetchOffsets(_ request: OffsetFetchRequest) throws -> OffsetFetchResponse {
        try Self.validateGroupId(request.groupId)
        let committed = lock.withLock { offsets[request.groupId] ?? [:] }
        let wanted: [TopicPartitions]
        if let topics = request.topics {
            wanted = topics
        } else {
            wanted = Self.group(committed.keys.sorted())
        }
        return OffsetFetchResponse(topics: wanted.map { topic in
            OffsetFetchResponse.Topic(name: topic.topic, partitions: topic.partitions.map { p in
                let entry = committed[GroupTopicPartition(topic: topic.topic, partition: p)]
                return .init(partition: p, offset: entry?.offset ?? -1, metadata: entry?.metadata)
            })
        })
    }

    func list() -> ListGroupsResponse {
        lock.withLock {
            let ids = Set(groups.keys).union(offsets.keys).sorted()
            return ListGroupsResponse(groups: ids.map { id in
                let group = groups[id]
                return .init(groupId: id, state: group.map { "\($0.state)" } ?? "empty", memberCount: Int32(group?.memberCount ?? 0))
            })
        }
    }

    func describe(_ request: DescribeGroupsRequest) -> DescribeGroupsResponse {
        lock.withLock {
            DescribeGroupsResponse(groups: request.groupIds.map { id in
                guard let group = groups[id] else {
                    if offsets[id] != nil {
                        return .init(groupId: id, state: "empty", groupEpoch: 0, assignor: "sticky", members: [])
                    }
                    return .init(groupId: id, error: .unknownGroup, errorMessage: "group '\(id)' has no members and no committed offsets",
                                 state: "dead", groupEpoch: 0, assignor: "", members: [])
                }
                return .init(groupId: id, state: "\(group.state)", groupEpoch: group.groupEpoch, assignor: group.assignorKind.rawValue,
                             members: group.describeMembers().map { m in
                                 .init(memberId: m.memberId, clientId: m.clientId, clientHost: m.clientHost, memberEpoch: m.memberEpoch,
                                       subscribedTopics: m.subscribedTopics, assignment: Self.group(m.assignedPartitions))
                             })
            })
        }
    }

    // MARK: Encoding

    static func validateGroupId(_ id: String) throws {
        guard !id.isEmpty, id.utf8.count <= groupIdBytesMax else {
            throw WireError(.invalidGroupId, "group id must be 1...\(groupIdBytesMax) bytes, got \(id.utf8.count)")
        }
    }

    static func flatten(_ list: [TopicPartitions]) -> [GroupTopicPartition] {
        list.flatMap { tp in tp.partitions.map { GroupTopicPartition(topic: tp.topic, partition: $0) } }
    }

    static func group(_ list: [GroupTopicPartition]) -> [TopicPartitions] {
        var result: [TopicPartitions] = []
        for tp in list.sorted() {
            if result.last?.topic == tp.topic { result[result.count - 1].partitions.append(tp.partition) } else {
                result.append(TopicPartitions(topic: tp.topic, partitions: [tp.partition]))
            }
        }
        return result
    }

    static func encodeKey(_ group: String, _ tp: GroupTopicPartition) -> [UInt8] {
        var writer = WireWriter(ByteBufferAllocator().buffer(capacity: 64))
        writer.write(Int16(0))
        writer.write(group)
        writer.write(tp.topic)
        writer.write(tp.partition)
        return Array(writer.buffer.readableBytesView)
    }

    static func decodeKey(_ bytes: [UInt8]) -> (String, GroupTopicPartition)? {
        var reader = WireReader(ByteBuffer(bytes: bytes))
        do {
            guard try reader.readInt16("version") == 0 else { return nil }
            let group = try reader.readString("group")
            let topic = try reader.readString("topic")
            let partition = try reader.readInt32("partition")
            return (group, GroupTopicPartition(topic: topic, partition: partition))
        } catch {
            return nil
        }
    }

    static func encodeValue(_ committed: Committed, now: Int64) -> [UInt8] {
        var writer = WireWriter(ByteBufferAllocator().buffer(capacity: 32))
        writer.write(Int16(0))
        writer.write(committed.offset)
        writer.write(committed.metadata)
        writer.write(now)
        return Array(writer.buffer.readableBytesView)
    }

    /// nil for an unreadable value (a newer version): skipped, not treated as a deletion.
    static func decodeValue(_ bytes: [UInt8]) -> Committed? {
        var reader = WireReader(ByteBuffer(bytes: bytes))
        do {
            guard try reader.readInt16("version") == 0 else { return nil }
            let offset = try reader.readInt64("offset")
            // (`try?` would flatten a null metadata string into a failure.)
            let metadata = try reader.readNullableString("metadata")
            return Committed(offset: offset, metadata: metadata)
        } catch {
            return nil
        }
    }
}

/// A hash that is the same in every process and version (FNV-1a), for placing groups on
/// `__consumer_offsets` partitions. Swift's `Hasher` is seeded per process and must not be used.
enum Partitioning {
    static func stableHash(_ bytes: [UInt8]) -> UInt32 {
        var hash: UInt32 = 2_166_136_261
        for byte in bytes { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return hash
    }
}
