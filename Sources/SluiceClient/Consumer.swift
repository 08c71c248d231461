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
    /// Fetch every partition from the broker the client is connected to (its own replica, which serves
    /// committed records only) instead of from each partition's leader: for checking one replica.
    public var fetchFromConnectedBroker = false

    public init(groupId: String? = nil) { self.groupId = groupId }
}

/// Reads records from assigned partitions, as a group member or from partitions given explicitly.
///
/// Group membership runs inside `poll`: it heartbeats when due, takes the assignment the broker
/// computes, commits positions of partitions it gives up before reporting them released, and rejoins
/// when fenced. Call `poll` at least every session timeout.
///
/// In a cluster each partition is fetched from its leader, over a connection of the consumer's own to
/// that broker; a broker running alone is fetched from over the client's fetch connection.
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

    deinit {
        // A consumer dropped without `close` still lets go of its own connections (those whose event
        // loops were shut down are closed already).
        for connection in fetchConnections.values where connection.isActive { connection.channel.close(promise: nil) }
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
    ///
    /// In a cluster each partition is fetched from its leader, one request per leader broker, all at
    /// once. A partition whose leader moved or cannot be reached is skipped by this poll (its leader is
    /// asked for again by the next one) while the others' records are returned.
    public func pollBatches() async throws -> FetchedRecords {
        if config.groupId != nil && Self.nowMs() >= nextHeartbeatMs { try await heartbeat() }
        if config.autoCommit && config.groupId != nil && Self.nowMs() - lastCommitMs >= config.autoCommitIntervalMs {
            try await commit()
        }
        guard !positions.isEmpty else {
            try await Task.sleep(nanoseconds: UInt64(min(heartbeatIntervalMs, 200)) * 1_000_000)
            return FetchedRecords(chunks: [])
        }
        let sentFor = positions
        var outcome = FetchOutcome()
        let fetches = try await nextFetches(for: sentFor, into: &outcome)
        for fetch in fetches { try await collect(fetch, sentFor: sentFor, into: &outcome) }
        for key in outcome.rerouted { client.forgetLeader(of: key) }
        // The actor may have been re-entered (seek, assign, rewind) while answers were awaited: only a
        // partition still at the offset it was fetched from takes its answer, so nothing is returned twice.
        for key in outcome.outOfRange where positions[key] == sentFor[key] { try await resolve(key, config.start) }
        var chunks: [FetchedRecords.Chunk] = []
        for answer in outcome.answers where positions[answer.chunk.key] == answer.chunk.from {
            highWatermarks[answer.chunk.key] = answer.highWatermark
            // Positions move by batch headers alone, so the next fetch can be on its way while these
            // records are decoded.
            positions[answer.chunk.key] = answer.next
            chunks.append(answer.chunk)
        }
        if outcome.answeredCount == 0 {
            try await backOff(outcome.lastFailure)
        } else {
            unreachableSinceMs = nil
            if outcome.rerouted.isEmpty { prefetch(over: fetches) }
        }
        return FetchedRecords(chunks: chunks)
    }

    /// Pause of a poll that reached no partition (every leader unknown or unreachable).
    static let unreachableBackoffMs: UInt64 = 100

    /// When polls began to reach no partition at all; nil while some partition answers.
    private var unreachableSinceMs: Int64?

    /// After a poll that reached no partition: pauses (no long poll waited, so the leaders are not asked
    /// in a spin), or throws `failure` once nothing has answered for the client's request timeout, so
    /// that an outage of every leader is reported rather than waited out in silence. A partition or
    /// two without a leader never throws: the others' records keep coming.
    private func backOff(_ failure: SluiceClientError?) async throws {
        let now = Self.nowMs()
        let since = unreachableSinceMs ?? now
        unreachableSinceMs = since
        if let failure, now - since >= client.requestTimeoutMs {
            unreachableSinceMs = nil
            throw SluiceClientError(failure.kind, "no partition's leader answered for \(now - since) ms: \(failure.message)")
        }
        try await Task.sleep(nanoseconds: Self.unreachableBackoffMs * 1_000_000)
    }

    /// One fetch request on its way: the partitions it asks for, the connection it went over, its answer.
    private struct PendingFetch: Sendable {
        var keys: [TopicPartitionKey]
        var connection: BrokerConnection
        var answer: EventLoopFuture<ResponseFrame>
    }

    /// What one poll's answers hold, before anything of it is applied.
    private struct FetchOutcome {
        struct Answer {
            var chunk: FetchedRecords.Chunk
            var highWatermark: Int64
            /// The position after the chunk's whole batches.
            var next: Int64
        }

        var answers: [Answer] = []
        var outOfRange: [TopicPartitionKey] = []
        /// Partitions whose leader is to be asked for again: it moved, or its broker could not be reached.
        var rerouted: [TopicPartitionKey] = []
        /// The last retriable failure seen (reported if nothing answers for long).
        var lastFailure: SluiceClientError?
        /// Partitions answered with records, none, or out of range (0: the poll reached nothing).
        var answeredCount = 0
    }

    /// The fetches already sent for exactly these positions (one per leader connection), if any.
    private var prefetched: (positions: [TopicPartitionKey: Int64], fetches: [PendingFetch])?

    /// Connections of this consumer's own to the brokers of a cluster, by address, over which it
    /// fetches (at most one per broker of the cluster).
    private var fetchConnections: [BrokerAddress: BrokerConnection] = [:]

    /// This poll's fetches: the prefetched ones when they were sent for exactly `wanted`, else one new
    /// request per leader connection. Partitions whose leader cannot be found now go to `outcome`.
    private func nextFetches(for wanted: [TopicPartitionKey: Int64], into outcome: inout FetchOutcome) async throws -> [PendingFetch] {
        if let (sentFor, fetches) = prefetched {
            prefetched = nil
            if sentFor == wanted { return fetches }
            // Stale answers: drain them, keeping each connection's order.
            for fetch in fetches { _ = try? await fetch.answer.get() }
        }
        let routes = try await route(wanted.keys.sorted(), into: &outcome)
        return routes.map { startFetch($0.keys, at: wanted, on: $0.connection) }
    }

    /// Groups `keys` by the connection their leader is fetched over. Keys whose leader cannot be found
    /// or reached now (an election, a broker down) are rerouted in `outcome`, skipped by this poll.
    private func route(_ keys: [TopicPartitionKey], into outcome: inout FetchOutcome) async throws
        -> [(connection: BrokerConnection, keys: [TopicPartitionKey])] {
        var routes: [(connection: BrokerConnection, keys: [TopicPartitionKey])] = []
        let now = Self.nowMs()
        for key in keys {
            // A partition whose leader could not be found a moment ago waits (an election takes a few
            // hundred milliseconds): asking metadata and its replicas at every poll would only add load.
            if let at = leaderRetryAtMs[key], now < at {
                outcome.lastFailure = outcome.lastFailure ?? lastRoutingFailure
                continue
            }
            do {
                let connection = config.fetchFromConnectedBroker
                    ? try await client.connection(.fetch)
                    : try await fetchConnection(toLeaderOf: key)
                if let index = routes.firstIndex(where: { $0.connection === connection }) {
                    routes[index].keys.append(key)
                } else {
                    routes.append((connection, [key]))
                }
                leaderRetryAtMs[key] = nil
            } catch let error as SluiceClientError where error.isRetriable {
                outcome.rerouted.append(key)
                outcome.lastFailure = error
                lastRoutingFailure = error
                if leaderRetryAtMs.count < Self.leaderRetriesMax { leaderRetryAtMs[key] = now + Self.leaderRetryMs }
            }
        }
        return routes
    }

    /// Pause before a partition whose leader could not be found or reached is looked up again.
    static let leaderRetryMs: Int64 = 200
    /// Partitions remembered as waiting for a leader at most (beyond, they are simply looked up again).
    static let leaderRetriesMax = 100_000
    /// When each partition whose leader could not be found may be looked up again (epoch ms).
    private var leaderRetryAtMs: [TopicPartitionKey: Int64] = [:]
    /// Why the last lookup failed, reported if nothing answers for the request timeout.
    private var lastRoutingFailure: SluiceClientError?

    /// The connection to fetch from the broker leading `key` over. Answers come back in request order and a
    /// fetch may be held for its max wait, so fetches never share a connection with produce or group
    /// requests (see `ConnectionPurpose`): a broker alone is fetched from over the client's fetch
    /// connection, a cluster's brokers over connections of this consumer's own.
    private func fetchConnection(toLeaderOf key: TopicPartitionKey) async throws -> BrokerConnection {
        guard let leader = try await client.leader(of: key) else { return try await client.connection(.fetch) }
        let address = try await client.address(ofNode: leader)
        if let open = fetchConnections[address], open.isActive { return open }
        try client.checkOpen()
        let fresh = try await client.openConnection(to: address)
        // Another poll may have connected meanwhile (the actor is re-entered at each await): keep one.
        if let raced = fetchConnections[address], raced.isActive {
            await fresh.close()
            return raced
        }
        fetchConnections[address] = fresh
        return fresh
    }

    /// Sends the fetch for `keys` at their positions in `wanted` over `connection`; its answer is
    /// awaited later, so the requests to different leaders wait out their long polls at the same time.
    private func startFetch(_ keys: [TopicPartitionKey], at wanted: [TopicPartitionKey: Int64],
                            on connection: BrokerConnection) -> PendingFetch {
        let request = fetchRequest(keys, at: wanted)
        let answer = connection.start(.fetch, request, timeoutMs: client.requestTimeoutMs + Int64(request.maxWaitMs))
        return PendingFetch(keys: keys, connection: connection, answer: answer)
    }

    /// Adds what `fetch`'s answer holds to `outcome`. A lost connection or a moved leader reroutes its
    /// partitions and other retriable codes skip theirs; any other error is thrown, nothing applied.
    private func collect(_ fetch: PendingFetch, sentFor: [TopicPartitionKey: Int64], into outcome: inout FetchOutcome) async throws {
        let response: FetchResponse
        do {
            response = try BrokerConnection.decode(try await fetch.answer.get(), .fetch, as: FetchResponse.self)
        } catch let error as SluiceClientError where error.isRetriable {
            outcome.rerouted += fetch.keys
            outcome.lastFailure = error
            return
        }
        for topic in response.topics {
            for partition in topic.partitions {
                let key = TopicPartitionKey(topic: topic.name, partition: partition.head.partition)
                guard let position = sentFor[key] else { continue }  // not asked for
                switch partition.head.error {
                case .none: break
                case .offsetOutOfRange:
                    outcome.outOfRange.append(key)
                    outcome.answeredCount += 1
                    continue
                case let code where code.isRetriable:
                    // This partition is retried by the next poll (where its leader is now, if it moved);
                    // the others go on.
                    if code == .notLeader { outcome.rerouted.append(key) }
                    outcome.lastFailure = SluiceClientError(WireError(code, "\(key): \(partition.head.errorMessage ?? "")"))
                    continue
                default:
                    throw SluiceClientError(WireError(partition.head.error, "\(key): \(partition.head.errorMessage ?? "")"))
                }
                outcome.answeredCount += 1
                let next = max(position, Self.nextOffset(after: partition.records) ?? position)
                outcome.answers.append(.init(chunk: .init(key: key, from: position, bytes: partition.records),
                                             highWatermark: partition.head.highWatermark, next: next))
            }
        }
    }

    /// The fetch request for `keys` at their positions in `wanted`, bounded as configured.
    private func fetchRequest(_ keys: [TopicPartitionKey], at wanted: [TopicPartitionKey: Int64]) -> FetchRequest {
        var byTopic: [String: [FetchRequest.Partition]] = [:]
        for key in keys.sorted() {
            guard let position = wanted[key] else { continue }
            byTopic[key.topic, default: []].append(.init(partition: key.partition, fetchOffset: position, partitionMaxBytes: config.partitionFetchMaxBytes))
        }
        let waitMs = min(Int64(config.fetchMaxWaitMs), config.groupId == nil ? Int64.max : max(0, nextHeartbeatMs - Self.nowMs()))
        return FetchRequest(maxWaitMs: Int32(waitMs), minBytes: config.fetchMinBytes, maxBytes: config.fetchMaxBytes,
                            topics: byTopic.sorted { $0.key < $1.key }.map { .init(name: $0.key, partitions: $0.value) })
    }

    /// Starts the next fetches now, over the connections this poll used, so they are on their way while
    /// the caller decodes. Only when this poll's requests covered every position: otherwise the next
    /// poll routes afresh.
    private func prefetch(over fetches: [PendingFetch]) {
        guard config.groupId == nil || Self.nowMs() + Int64(config.fetchMaxWaitMs) < nextHeartbeatMs,
              !positions.isEmpty, fetches.allSatisfy({ $0.connection.isActive }),
              fetches.reduce(0, { $0 + $1.keys.count }) == positions.count,
              fetches.allSatisfy({ $0.keys.allSatisfy { positions[$0] != nil } }) else { return }
        let wanted = positions
        prefetched = (wanted, fetches.map { startFetch($0.keys, at: wanted, on: $0.connection) })
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

    /// Closes the connections this consumer fetched over in a cluster; in a group, also commits (with
    /// auto-commit) and leaves the group.
    public func close() async {
        prefetched = nil
        let own = fetchConnections.values
        fetchConnections = [:]
        for connection in own { await connection.close() }
        guard let groupId = config.groupId, joined else { return }
        if config.autoCommit { try? await commit() }
        _ = try? await client.groupHeartbeat(GroupHeartbeatRequest(
            groupId: groupId, memberId: memberId, memberEpoch: -1, sessionTimeoutMs: config.sessionTimeoutMs,
            subscribedTopics: nil, assignor: nil, ownedPartitions: nil))
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
            response = try await client.groupHeartbeat(request)
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
