import NIOCore
import SluiceCompression
import SluiceCore
import SluiceWire

/// A consumed record.
public struct ConsumerRecord: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var timestamp: Int64
    public var key: [UInt8]?
    public var value: [UInt8]?
    public var headers: [RecordHeader]
}

extension ConsumerRecord {
    /// A copy of the record seen in place in a fetched batch of `partition`.
    init(_ partition: TopicPartitionKey, _ view: RecordView) {
        self.init(topic: partition.topic, partition: partition.partition, offset: view.offset, timestamp: view.timestamp,
                  key: view.key.map { [UInt8]($0) }, value: view.value.map { [UInt8]($0) },
                  headers: view.headerCount == 0 ? [] : view.headers())
    }
}

/// Where a partition without a committed offset starts.
public enum StartPosition: Sendable, Hashable {
    case earliest
    case latest
    case offset(Int64)
    /// N records before the end.
    case fromEnd(Int64)
    /// The first record at or after this epoch-millisecond time.
    case timestamp(Int64)
}

public struct ConsumerConfig: Sendable {
    /// Consume as a member of this group (broker-side assignment, committed offsets); nil = the
    /// partitions given to `assign`.
    public var groupId: String?
    /// Where partitions without a committed offset start (and where an out-of-range position resets).
    public var start: StartPosition = .earliest
    /// Commit consumed positions every `autoCommitIntervalMs`, at rebalances and at close.
    public var autoCommit = true
    public var autoCommitIntervalMs: Int64 = 5000
    public var sessionTimeoutMs: Int32 = 10_000
    /// `range` or `sticky`.
    public var assignor: String? = nil
    public var fetchMaxWaitMs: Int32 = 500
    public var fetchMinBytes: Int32 = 1
    public var fetchMaxBytes: Int32 = 50 * 1024 * 1024
    public var partitionFetchMaxBytes: Int32 = 8 * 1024 * 1024

    public init(groupId: String? = nil) { self.groupId = groupId }
}

/// Reads records from assigned partitions, as a group member or from partitions given explicitly.
///
/// Group membership runs inside `poll`: it heartbeats when due, takes the assignment the broker
/// computes, commits positions of partitions it gives up before reporting them released, and rejoins
/// when fenced. Call `poll` at least every session timeout.
public actor Consumer {
    public let client: SluiceClient
    public let config: ConsumerConfig
    private var topics: [String] = []
    private var positions: [TopicPartitionKey: Int64] = [:]
    private var highWatermarks: [TopicPartitionKey: Int64] = [:]
    private var memberId = ""
    private var memberEpoch: Int32 = 0
    private var heartbeatIntervalMs: Int64 = 1000
    private var nextHeartbeatMs: Int64 = 0
    private var lastCommitMs: Int64 = 0
    private var committedPositions: [TopicPartitionKey: Int64] = [:]
    private var joined = false
    private var subscriptionSent = false

    public init(client: SluiceClient, config: ConsumerConfig) {
        self.client = client
        self.config = config
    }

    private static func nowMs() -> Int64 { SystemWallClock().nowMilliseconds() }

    /// Joins the group (config.groupId) subscribed to `topics`.
    public func subscribe(_ topics: [String]) async throws {
        guard config.groupId != nil else {
            throw SluiceClientError(.invalidArgument, "subscribe needs a group id; use assign without one")
        }
        self.topics = topics
        subscriptionSent = false
        try await heartbeat()
    }

    /// Consumes exactly these partitions from the given starting points (no group membership).
    public func assign(_ partitions: [TopicPartitionKey: StartPosition]) async throws {
        positions = [:]
        for (key, start) in partitions { try await resolve(key, start) }
    }

    /// The partitions being consumed and their positions (the next offset to read).
    public var assignment: [TopicPartitionKey: Int64] { positions }

    /// True when every assigned partition's position has reached its high watermark as of the last
    /// fetch (and at least one partition is assigned).
    public var reachedEnd: Bool {
        !positions.isEmpty && positions.allSatisfy { key, position in highWatermarks[key].map { position >= $0 } ?? false }
    }

    public var isJoined: Bool { joined }

    public func seek(_ key: TopicPartitionKey, to start: StartPosition) async throws {
        try await resolve(key, start)
    }

    /// Fetches what is available (waiting up to `fetchMaxWaitMs`) and returns the records in order per
    /// partition. Control batches are skipped: positions move past them, but no record of theirs is returned.
    public func poll() async throws -> [ConsumerRecord] {
        let fetched = try await pollBatches()
        var records: [ConsumerRecord] = []
        records.reserveCapacity(fetched.recordCountEstimate)
        do {
            try decodeAll(fetched, into: &records)
        } catch {
            rewind(fetched)
            throw error
        }
        return records
    }

    /// Puts the positions back to where `fetched` started (after its records could not be processed),
    /// so nothing in it is skipped.
    public func rewind(_ fetched: FetchedRecords) {
        for chunk in fetched.chunks where positions[chunk.key] != nil { positions[chunk.key] = chunk.from }
        prefetched = nil
    }

    private func decodeAll(_ fetched: FetchedRecords, into records: inout [ConsumerRecord]) throws {
        try fetched.forEach { key, view in
            records.append(ConsumerRecord(key, view))
        }
    }

    /// Like `poll`, but hands back the fetched batches undecoded: `FetchedRecords.forEach` then shows
    /// each record in place, without copying keys and values (the fast path for high-volume readers).
    /// Positions already point past these batches; call `rewind` if they cannot be processed.
    public func pollBatches() async throws -> FetchedRecords {
        if config.groupId != nil && Self.nowMs() >= nextHeartbeatMs { try await heartbeat() }
        if config.autoCommit && config.groupId != nil && Self.nowMs() - lastCommitMs >= config.autoCommitIntervalMs {
            try await commit()
        }
        guard !positions.isEmpty else {
            try await Task.sleep(nanoseconds: UInt64(min(heartbeatIntervalMs, 200)) * 1_000_000)
            return FetchedRecords(chunks: [])
        }
        let response = try await nextFetch()
        var chunks: [FetchedRecords.Chunk] = []
        var advanced: [TopicPartitionKey: Int64] = [:]
        var outOfRange: [TopicPartitionKey] = []
        for topic in response.topics {
            for partition in topic.partitions {
                let key = TopicPartitionKey(topic: topic.name, partition: partition.head.partition)
                guard let position = positions[key] else { continue }  // revoked meanwhile
                switch partition.head.error {
                case .none: break
                case .offsetOutOfRange:
                    outOfRange.append(key)
                    continue
                case let code where code.isRetriable:
                    continue  // this partition is retried by the next poll; the others go on
                default:
                    // Nothing of this response is applied: positions stay where they were.
                    throw SluiceClientError(WireError(partition.head.error, "\(key): \(partition.head.errorMessage ?? "")"))
                }
                highWatermarks[key] = partition.head.highWatermark
                // Positions move by batch headers alone, so the next fetch can be on its way while these
                // records are decoded.
                advanced[key] = max(position, Self.nextOffset(after: partition.records) ?? position)
                chunks.append(FetchedRecords.Chunk(key: key, from: position, bytes: partition.records))
            }
        }
        for key in outOfRange { try await resolve(key, config.start) }
        for (key, next) in advanced where positions[key] != nil { positions[key] = next }
        prefetch()
        return FetchedRecords(chunks: chunks)
    }

    /// The fetch request for the current positions.
    private func fetchRequest() -> FetchRequest {
        var byTopic: [String: [FetchRequest.Partition]] = [:]
        for (key, position) in positions.sorted(by: { $0.key < $1.key }) {
            byTopic[key.topic, default: []].append(.init(partition: key.partition, fetchOffset: position, partitionMaxBytes: config.partitionFetchMaxBytes))
        }
        let waitMs = min(Int64(config.fetchMaxWaitMs), config.groupId == nil ? Int64.max : max(0, nextHeartbeatMs - Self.nowMs()))
        return FetchRequest(maxWaitMs: Int32(waitMs), minBytes: config.fetchMinBytes, maxBytes: config.fetchMaxBytes,
                            topics: byTopic.sorted { $0.key < $1.key }.map { .init(name: $0.key, partitions: $0.value) })
    }

    /// A fetch already sent for exactly these positions, if any.
    private var prefetched: (positions: [TopicPartitionKey: Int64], answer: EventLoopFuture<ResponseFrame>)?

    /// Starts the next fetch now (used while the previous answer is decoded).
    private func prefetch() {
        guard config.groupId == nil || Self.nowMs() + Int64(config.fetchMaxWaitMs) < nextHeartbeatMs,
              let connection = client.currentConnection(.fetch), !positions.isEmpty else { return }
        let request = fetchRequest()
        prefetched = (positions, connection.start(.fetch, request, timeoutMs: client.requestTimeoutMs + Int64(request.maxWaitMs)))
    }

    /// The answer of the prefetched request when it still matches the positions, else a new fetch.
    private func nextFetch() async throws -> FetchResponse {
        if let (sentFor, answer) = prefetched {
            prefetched = nil
            if sentFor == positions {
                return try BrokerConnection.decode(try await answer.get(), .fetch, as: FetchResponse.self)
            }
            _ = try? await answer.get()  // a stale answer: drain it, keep the connection's order
        }
        let request = fetchRequest()
        return try await client.send(.fetch, request, expecting: FetchResponse.self, timeoutMs: client.requestTimeoutMs + Int64(request.maxWaitMs))
    }

    /// The offset after the last whole batch in `buffer`, from headers alone.
    static func nextOffset(after buffer: ByteBuffer) -> Int64? {
        var index = buffer.readerIndex
        let end = buffer.writerIndex
        var next: Int64?
        while end - index >= RecordBatchHeader.size,
              let base = buffer.getInteger(at: index + RecordBatchHeader.Field.baseOffset, endianness: .big, as: Int64.self),
              let length = buffer.getInteger(at: index + RecordBatchHeader.Field.batchLength, endianness: .big, as: Int32.self),
              let delta = buffer.getInteger(at: index + RecordBatchHeader.Field.lastOffsetDelta, endianness: .big, as: Int32.self) {
            let size = Int(length) + RecordBatchHeader.logOverhead
            guard size >= RecordBatchHeader.size, index + size <= end else { break }
            next = base + Int64(delta) + 1
            index += size
        }
        return next
    }

    /// Decodes whole batches into records at or after `position`; returns the next position.
    public static func decode(_ buffer: ByteBuffer, key: TopicPartitionKey, from position: Int64, into records: inout [ConsumerRecord]) throws -> Int64 {
        try FetchedRecords(chunks: [.init(key: key, from: position, bytes: buffer)]).forEach { key, view in
            records.append(ConsumerRecord(key, view))
        }
        return max(position, nextOffset(after: buffer) ?? position)
    }

    /// Commits the current positions (group mode).
    public func commit() async throws {
        guard let groupId = config.groupId else { return }
        lastCommitMs = Self.nowMs()
        let changed = positions.filter { committedPositions[$0.key] != $0.value }
        guard !changed.isEmpty, joined else { return }
        do {
            try await client.commitOffsets(group: groupId, memberId: memberId, memberEpoch: memberEpoch, offsets: changed)
            for (key, value) in changed { committedPositions[key] = value }
        } catch let error as SluiceClientError where error.code == .fencedMemberEpoch || error.code == .unknownMemberId {
            resetMembership()
        }
    }

    /// Commits specific offsets (manual commit).
    public func commit(_ offsets: [TopicPartitionKey: Int64]) async throws {
        guard let groupId = config.groupId else {
            throw SluiceClientError(.invalidArgument, "committing offsets needs a group id")
        }
        try await client.commitOffsets(group: groupId, memberId: memberId, memberEpoch: joined ? memberEpoch : -1, offsets: offsets)
        for (key, value) in offsets { committedPositions[key] = value }
    }

    /// Commits (with auto-commit) and leaves the group.
    public func close() async {
        guard let groupId = config.groupId, joined else { return }
        if config.autoCommit { try? await commit() }
        _ = try? await client.send(.groupHeartbeat, GroupHeartbeatRequest(
            groupId: groupId, memberId: memberId, memberEpoch: -1, sessionTimeoutMs: config.sessionTimeoutMs,
            subscribedTopics: nil, assignor: nil, ownedPartitions: nil), expecting: GroupHeartbeatResponse.self)
        joined = false
        positions = [:]
    }

    private func resetMembership() {
        memberEpoch = 0
        joined = false
        subscriptionSent = false
        positions = [:]
        nextHeartbeatMs = 0
    }

    private func heartbeat() async throws {
        guard let groupId = config.groupId else { return }
        let owned = Dictionary(grouping: positions.keys, by: \.topic).sorted { $0.key < $1.key }
            .map { TopicPartitions(topic: $0.key, partitions: $0.value.map(\.partition).sorted()) }
        let request = GroupHeartbeatRequest(
            groupId: groupId, memberId: memberId, memberEpoch: memberEpoch, sessionTimeoutMs: config.sessionTimeoutMs,
            subscribedTopics: subscriptionSent && memberEpoch > 0 ? nil : topics, assignor: memberEpoch == 0 ? config.assignor : nil,
            ownedPartitions: owned)
        let response: GroupHeartbeatResponse
        do {
            response = try await client.send(.groupHeartbeat, request, expecting: GroupHeartbeatResponse.self)
        } catch let error as SluiceClientError where error.code == .fencedMemberEpoch || error.code == .unknownMemberId {
            resetMembership()
            return
        }
        memberId = response.memberId
        memberEpoch = response.memberEpoch
        joined = true
        subscriptionSent = true
        heartbeatIntervalMs = Int64(max(response.heartbeatIntervalMs, 100))
        nextHeartbeatMs = Self.nowMs() + heartbeatIntervalMs
        if let assignment = response.assignment { try await apply(assignment, group: groupId) }
    }

    /// Moves to a new assignment: commits and drops revoked partitions, starts new ones from their
    /// committed offset (or the start position).
    private func apply(_ assignment: [TopicPartitions], group: String) async throws {
        let target = Set(assignment.flatMap { tp in tp.partitions.map { TopicPartitionKey(topic: tp.topic, partition: $0) } })
        let revoked = positions.filter { !target.contains($0.key) }
        if config.autoCommit, !revoked.isEmpty {
            let changed = revoked.filter { committedPositions[$0.key] != $0.value }
            if !changed.isEmpty {
                try? await client.commitOffsets(group: group, memberId: memberId, memberEpoch: memberEpoch, offsets: changed)
            }
        }
        for key in revoked.keys {
            positions[key] = nil
            highWatermarks[key] = nil
        }
        let added = target.filter { positions[$0] == nil }
        guard !added.isEmpty else { return }
        let committed = try await client.fetchOffsets(group: group, topics: Dictionary(grouping: added, by: \.topic)
            .map { TopicPartitions(topic: $0.key, partitions: $0.value.map(\.partition).sorted()) })
        for key in added.sorted() {
            if let offset = committed[key], offset >= 0 {
                positions[key] = offset
                committedPositions[key] = offset
            } else {
                try await resolve(key, config.start)
            }
        }
    }

    /// Turns a start position into an offset.
    private func resolve(_ key: TopicPartitionKey, _ start: StartPosition) async throws {
        let offset: Int64
        switch start {
        case .offset(let value):
            offset = value
        case .earliest:
            offset = try await client.listOffsets(topic: key.topic, partitions: [key.partition], timestamp: ListOffsetsRequest.earliestTimestamp)[key.partition] ?? 0
        case .latest:
            offset = try await client.listOffsets(topic: key.topic, partitions: [key.partition], timestamp: ListOffsetsRequest.latestTimestamp)[key.partition] ?? 0
        case .fromEnd(let count):
            let end = try await client.listOffsets(topic: key.topic, partitions: [key.partition], timestamp: ListOffsetsRequest.latestTimestamp)[key.partition] ?? 0
            let begin = try await client.listOffsets(topic: key.topic, partitions: [key.partition], timestamp: ListOffsetsRequest.earliestTimestamp)[key.partition] ?? 0
            offset = max(begin, end - count)
        case .timestamp(let time):
            offset = try await client.listOffsets(topic: key.topic, partitions: [key.partition], timestamp: time)[key.partition] ?? 0
        }
        positions[key] = offset
    }
}

/// The batches one poll fetched, not yet decoded.
public struct FetchedRecords: Sendable {
    struct Chunk: Sendable {
        var key: TopicPartitionKey
        /// Records below this offset (the start of the first batch) are skipped.
        var from: Int64
        var bytes: ByteBuffer
    }

    var chunks: [Chunk]

    public var isEmpty: Bool { chunks.allSatisfy { $0.bytes.readableBytes == 0 } }

    /// Records in these batches according to their headers (a capacity hint).
    var recordCountEstimate: Int {
        chunks.reduce(0) { $0 + $1.bytes.readableBytes / 64 }
    }

    /// Calls `body` with every record at or after the fetched positions, partition by partition in
    /// offset order. Each batch's CRC is checked and compressed batches are decompressed (bounded by
    /// `Limits.batchDecompressedBytesMax`); the views are valid only during the call. Records of control
    /// batches are never shown, so the offsets of the records shown can skip the ones they take.
    public func forEach(_ body: (TopicPartitionKey, RecordView) throws -> Void) throws {
        for chunk in chunks {
            try chunk.bytes.withUnsafeReadableBytes { raw in
                var index = 0
                while raw.count - index >= RecordBatchHeader.size {
                    let rest = UnsafeRawBufferPointer(rebasing: raw[index...])
                    let length: Int32 = rest.getBigEndian(at: RecordBatchHeader.Field.batchLength)
                    let size = Int(length) + RecordBatchHeader.logOverhead
                    guard size >= RecordBatchHeader.size, size <= rest.count else { break }
                    let batch = UnsafeRawBufferPointer(rebasing: rest[0..<size])
                    do {
                        try Self.visit(batch, from: chunk.from, key: chunk.key, body)
                    } catch let error as BatchFormatError {
                        throw SluiceClientError(.protocolViolation, "\(chunk.key): a fetched batch is corrupt: \(error)")
                    }
                    index += size
                }
            }
        }
    }

    private static func visit(_ batch: UnsafeRawBufferPointer, from: Int64, key: TopicPartitionKey,
                              _ body: (TopicPartitionKey, RecordView) throws -> Void) throws {
        let limits = Limits(batchBytesMax: batch.count)
        let header = try RecordBatch.validate(batch, limits: limits)
        // A control batch (a leader's no-op entry) is not user data: its offset is passed over, and the
        // position already moved past it by header (`nextOffset(after:)`), so offsets seen here can jump.
        guard header.lastOffset >= from, !header.isControl else { return }
        try withoutActuallyEscaping(body) { body in
            let emit: (RecordView) throws -> Void = { view in
                if view.offset >= from { try body(key, view) }
            }
            if header.codec == CompressionCodec.none {
                try RecordBatch.visitRecords(section: UnsafeRawBufferPointer(rebasing: batch[RecordBatchHeader.size...]), header: header,
                                             limits: limits, emit)
            } else {
                let section = try RecordBatch.uncompressedSection(batch, limits: limits)
                try section.withUnsafeBytes { try RecordBatch.visitRecords(section: $0, header: header, limits: limits, emit) }
            }
        }
    }
}
