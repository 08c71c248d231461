import NIOCore
import SluiceCompression
import SluiceCore
import SluiceWire

/// A record to produce. Without a partition it is placed by its key (Kafka's murmur2 hash, so the
/// same key lands on the same partition as with Kafka clients) or, without a key, on a sticky
/// partition that changes when a batch fills.
public struct ProducerRecord: Sendable {
    public var topic: String
    public var key: [UInt8]?
    public var value: [UInt8]?
    public var headers: [RecordHeader]
    public var partition: Int32?
    /// Epoch milliseconds; nil = now.
    public var timestamp: Int64?

    public init(topic: String, key: [UInt8]? = nil, value: [UInt8]?, headers: [RecordHeader] = [], partition: Int32? = nil,
                timestamp: Int64? = nil) {
        self.topic = topic
        self.key = key
        self.value = value
        self.headers = headers
        self.partition = partition
        self.timestamp = timestamp
    }
}

/// Where a produced record was stored.
public struct RecordMetadata: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    /// −1 with acks=none (the broker does not answer).
    public var offset: Int64
}

public struct ProducerConfig: Sendable {
    public var acks: Acks = .all
    /// How long a batch waits for more records before it is sent.
    public var lingerMs: Int64 = 5
    /// A partition's batch is sent once its records reach this many bytes (before compression).
    public var batchBytes = 256 * 1024
    public var codec: CompressionCodec = .none
    /// Producer id and sequence numbers, so retries are stored once. Off for acks=none.
    public var idempotent = true
    /// Batches per partition sent but not yet answered.
    public var inFlightPerPartitionMax = 5
    /// Records buffered but not yet acknowledged, over all partitions; `send` waits beyond this.
    public var bufferedRecordsMax = 1_000_000
    /// Retries of a batch after retriable errors, with `retryBackoffMs` between them: 5 s in all by
    /// default, more than a leader election takes with the default Raft timeouts.
    public var retriesMax = 50
    public var retryBackoffMs: Int64 = 100

    public init() {}
}

/// Batches records per partition, compresses and sends them, retries, and reports each record's
/// offset. With idempotence (the default), every batch carries the producer id, epoch and its first
/// sequence number, so a batch retried after a lost answer is stored exactly once.
public actor Producer {
    public typealias Completion = @Sendable (Result<RecordMetadata, SluiceClientError>) -> Void

    private struct Pending {
        var records: [Record] = []
        var completions: [Completion?] = []
        var bytes = 0
        var lingerScheduled = false
    }

    private struct Sealed {
        var key: TopicPartitionKey
        var batch: RecordBatch
        var completions: [Completion?]
        var attempts = 0
    }

    private struct PartitionState {
        var pending = Pending()
        var nextSequence: Int32 = 0
        var inFlight = 0
        var waiting: [Sealed] = []
    }

    public let client: SluiceClient
    public let config: ProducerConfig
    private var partitions: [TopicPartitionKey: PartitionState] = [:]
    private var partitionCounts: [String: Int32] = [:]
    private var sticky: [String: StickyPartitioner] = [:]
    private var producerId: Int64 = -1
    private var producerEpoch: Int16 = -1
    /// Partitions whose pending batch waits for a new producer id.
    private var sealAfterIdentity: Set<TopicPartitionKey> = []
    /// Producer ids given up after a permanent failure (see `abandonIdentity`).
    private var abandonedProducerIds: Set<Int64> = []
    /// Per partition, the connection to its leader; requests started on one keep their order.
    private var leaderConnections: [TopicPartitionKey: BrokerConnection] = [:]
    /// Partitions whose leader connection is being made; their batches wait for it.
    private var connectingLeaders: Set<TopicPartitionKey> = []
    private var buffered = 0
    private var spaceWaiters: [CheckedContinuation<Void, Never>] = []
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []

    public init(client: SluiceClient, config: ProducerConfig = ProducerConfig()) {
        self.client = client
        self.config = config
    }

    /// Sends one record and waits for its acknowledgement.
    public func send(_ record: ProducerRecord) async throws -> RecordMetadata {
        try await withCheckedThrowingContinuation { continuation in
            Task { await self.enqueueOrFail(record) { continuation.resume(with: $0.mapError { $0 as any Error }) } }
        }
    }

    private func enqueueOrFail(_ record: ProducerRecord, completion: @escaping Completion) async {
        do { try await enqueue(record, completion: completion) } catch let error as SluiceClientError {
            completion(.failure(error))
        } catch {
            completion(.failure(SluiceClientError(.invalidArgument, "\(error)")))
        }
    }

    /// Buffers a record; `completion` is called when it is acknowledged or has failed for good.
    /// Waits while `bufferedRecordsMax` records are outstanding.
    public func enqueue(_ record: ProducerRecord, completion: Completion? = nil) async throws {
        while buffered >= config.bufferedRecordsMax {
            await withCheckedContinuation { spaceWaiters.append($0) }
        }
        try await prepare(topic: record.topic)
        let key = try add(record, completion: completion)
        sendIfIdle(key)
    }

    /// Seals a partition's pending batch at once when nothing of it is in flight: at low rates records
    /// go out without waiting for the linger, at high rates they gather while earlier batches travel.
    private func sendIfIdle(_ key: TopicPartitionKey) {
        guard let state = partitions[key], state.inFlight == 0, state.waiting.isEmpty, !state.pending.records.isEmpty else { return }
        seal(key)
    }

    /// Buffers many records with one call (far cheaper per record than `enqueue(_:)`); `completion`
    /// gets each record's index in `records` and its result.
    public func enqueue(contentsOf records: [ProducerRecord],
                        completion: (@Sendable (Int, Result<RecordMetadata, SluiceClientError>) -> Void)? = nil) async throws {
        while buffered > 0 && buffered + records.count > config.bufferedRecordsMax {
            await withCheckedContinuation { spaceWaiters.append($0) }
        }
        var prepared: Set<String> = []
        for record in records where !prepared.contains(record.topic) {
            try await prepare(topic: record.topic)
            prepared.insert(record.topic)
        }
        var touched: Set<TopicPartitionKey> = []
        for (index, record) in records.enumerated() {
            if let completion {
                touched.insert(try add(record, completion: { result in completion(index, result) }))
            } else {
                touched.insert(try add(record, completion: nil))
            }
        }
        for key in touched { sendIfIdle(key) }
    }

    /// Gets what adding records to `topic` needs: a producer id and the partition count.
    private func prepare(topic: String) async throws {
        if config.idempotent && config.acks != .none && producerId < 0 {
            (producerId, producerEpoch) = try await client.initProducerId()
        }
        if partitionCounts[topic] == nil {
            let metadata = try await client.topicMetadata(topic)
            let count = Int32(metadata.partitions.count)
            guard count > 0 else { throw SluiceClientError(.broker(.unknownTopicOrPartition), "topic '\(topic)' has no partitions") }
            partitionCounts[topic] = count
        }
    }

    /// Adds a record to its partition's pending batch, in place (no copy of the batch's records).
    @discardableResult
    private func add(_ record: ProducerRecord, completion: Completion?) throws -> TopicPartitionKey {
        let partition = try choosePartition(record)
        let key = TopicPartitionKey(topic: record.topic, partition: partition)
        let timestamp = record.timestamp ?? SystemWallClock().nowMilliseconds()
        let size = 21 + (record.key?.count ?? 0) + (record.value?.count ?? 0)
            + record.headers.reduce(0) { $0 + $1.key.utf8.count + ($1.value?.count ?? 0) + 4 }
        // One in-place access: copying the state out and back would copy the pending records.
        let (full, needsLinger) = Self.append(&partitions[key, default: PartitionState()].pending, record: record,
                                              timestamp: timestamp, size: size, completion: completion,
                                              batchBytes: config.batchBytes)
        buffered += 1
        if full {
            seal(key)
        } else if needsLinger {
            let linger = config.lingerMs
            Task {
                try? await Task.sleep(nanoseconds: UInt64(max(linger, 0)) * 1_000_000)
                self.lingerExpired(key)
            }
        }
        return key
    }

    private static func append(_ pending: inout Pending, record: ProducerRecord, timestamp: Int64, size: Int,
                               completion: Completion?, batchBytes: Int) -> (full: Bool, needsLinger: Bool) {
        pending.records.append(Record(offset: Int64(pending.records.count), timestamp: timestamp, key: record.key,
                                      value: record.value, headers: record.headers))
        pending.completions.append(completion)
        pending.bytes += size
        let full = pending.bytes >= batchBytes
        let needsLinger = !full && !pending.lingerScheduled
        if needsLinger { pending.lingerScheduled = true }
        return (full, needsLinger)
    }

    /// Sends everything buffered and waits until every record is acknowledged or failed (failures
    /// are reported through each record's completion).
    public func flush() async {
        for key in partitions.keys { seal(key) }
        while buffered > 0 {
            await withCheckedContinuation { idleWaiters.append($0) }
        }
    }

    private func lingerExpired(_ key: TopicPartitionKey) {
        guard partitions[key]?.pending.lingerScheduled == true else { return }
        seal(key)
    }

    private func choosePartition(_ record: ProducerRecord) throws -> Int32 {
        guard let count = partitionCounts[record.topic] else {
            preconditionFailure("prepare(topic:) runs before add")
        }
        if let partition = record.partition {
            guard partition >= 0 && partition < count else {
                throw SluiceClientError(.broker(.unknownTopicOrPartition),
                    "topic '\(record.topic)' has partitions 0...\(count - 1); partition \(partition) does not exist")
            }
            return partition
        }
        if let key = record.key { return Partitioner.partition(forKey: key, partitionCount: count) }
        if sticky[record.topic] == nil {
            sticky[record.topic] = StickyPartitioner(partitionCount: count, seed: UInt64.random(in: 0...UInt64(UInt32.max)))
        }
        return sticky[record.topic]?.partition() ?? 0
    }

    /// Turns a partition's pending records into a batch and sends it (or queues it behind in-flight ones).
    private func seal(_ key: TopicPartitionKey) {
        guard var state = partitions[key], !state.pending.records.isEmpty else { return }
        // Keyless records move to the next partition whenever the sticky one's batch leaves (full,
        // lingered or sent while idle), as Kafka's sticky partitioner does.
        if sticky[key.topic]?.partition() == key.partition { sticky[key.topic]?.batchFull() }
        if config.idempotent && config.acks != .none && producerId < 0 {
            // Waiting for a new producer id (after one was abandoned); sealed once it arrives.
            sealAfterIdentity.insert(key)
            return
        }
        let pending = state.pending
        state.pending = Pending()
        let sequence = state.nextSequence
        let idempotent = producerId >= 0
        if idempotent {
            let next = Int64(sequence) + Int64(pending.records.count)
            state.nextSequence = next > Int64(Int32.max) ? Int32(next - Int64(Int32.max) - 1) : Int32(next)
        }
        do {
            let batch = try RecordBatch.build(records: pending.records, codec: config.codec,
                                              producerId: idempotent ? producerId : -1, producerEpoch: idempotent ? producerEpoch : -1,
                                              baseSequence: idempotent ? sequence : -1)
            state.waiting.append(Sealed(key: key, batch: batch, completions: pending.completions))
        } catch {
            partitions[key] = state
            finish(pending.completions, .failure(SluiceClientError(.invalidArgument, "cannot encode a batch for \(key): \(error)")))
            return
        }
        partitions[key] = state
        pump(key)
    }

    /// Sends waiting batches while the in-flight bound allows. Requests are written to the connection
    /// here, in sequence order, before any suspension, so a partition's batches reach the broker in the
    /// order of their sequence numbers.
    private func pump(_ key: TopicPartitionKey) {
        guard var state = partitions[key] else { return }
        guard state.waiting.isEmpty || leaderConnections[key]?.isActive == true else {
            // No batch leaves before the connection exists: sent from racing tasks they could reach the
            // broker out of sequence order, and a broker takes a new producer's first batch at any sequence.
            connectLeader(key)
            return
        }
        while state.inFlight < config.inFlightPerPartitionMax && !state.waiting.isEmpty {
            let sealed = state.waiting.removeFirst()
            state.inFlight += 1
            transmit(sealed)
        }
        partitions[key] = state
    }

    /// Finds the partition's leader and connects to it, then sends what waits; after `retriesMax`
    /// failed attempts the waiting batches fail with the last error. One attempt chain per partition:
    /// the key stays in `connectingLeaders` through the pauses, so new batches cannot restart the count.
    private func connectLeader(_ key: TopicPartitionKey) {
        guard !connectingLeaders.contains(key) else { return }
        connectingLeaders.insert(key)
        Task {
            var attempt = 0
            while true {
                do {
                    leaderConnections[key] = try await client.leaderConnection(for: key)
                    connectingLeaders.remove(key)
                    pump(key)
                    return
                } catch {
                    let failure = (error as? SluiceClientError) ?? SluiceClientError(.connectionClosed, "\(error)")
                    client.forgetLeader(of: key)
                    attempt += 1
                    guard failure.isRetriable, attempt <= config.retriesMax else {
                        connectingLeaders.remove(key)
                        failWaiting(key, failure)
                        return
                    }
                    try? await Task.sleep(nanoseconds: UInt64(config.retryBackoffMs) * 1_000_000)
                }
            }
        }
    }

    /// Fails every batch waiting for `key`'s leader.
    private func failWaiting(_ key: TopicPartitionKey, _ error: SluiceClientError) {
        guard var state = partitions[key] else { return }
        let waiting = state.waiting
        state.waiting = []
        partitions[key] = state
        for sealed in waiting {
            finish(sealed.completions, .failure(error))
            let producer = sealed.batch.header.producerId
            if producer >= 0 { abandonIdentity(producer) }
        }
    }

    private func transmit(_ sealed: Sealed) {
        let request = ProduceRequest(acks: config.acks, timeoutMs: brokerTimeoutMs, topics: [
            .init(name: sealed.key.topic, partitions: [.init(partition: sealed.key.partition, records: ByteBuffer(bytes: sealed.batch.bytes))]),
        ])
        guard let connection = leaderConnections[sealed.key] else {
            preconditionFailure("pump transmits only over an open leader connection")
        }
        guard config.acks != .none else {
            Task {
                let outcome: Result<Int64, SluiceClientError>
                do {
                    try await connection.sendWithoutResponse(.produce, request)
                    outcome = .success(-1)
                } catch {
                    outcome = .failure((error as? SluiceClientError) ?? SluiceClientError(.connectionClosed, "\(error)"))
                }
                await self.completed(sealed, outcome)
            }
            return
        }
        // Written now, in order; a closed connection fails the answer at once and the retry path runs.
        let answer = connection.start(.produce, request, timeoutMs: client.requestTimeoutMs)
        Task { await self.completed(sealed, await Self.outcome(of: answer)) }
    }

    /// The broker's wait for acknowledgements: a second below the client's own timeout, so that the
    /// broker's answer (`not_enough_replicas`) arrives before the client gives up on the request.
    private var brokerTimeoutMs: Int32 { Int32(clamping: max(1, client.requestTimeoutMs - 1000)) }

    /// Puts a batch back among the waiting ones in sequence order (a retry goes before later batches).
    private func requeue(_ sealed: Sealed) {
        partitions[sealed.key]?.inFlight -= 1
        guard var state = partitions[sealed.key] else { return }
        let sequence = sealed.batch.header.baseSequence
        let position = state.waiting.firstIndex { $0.batch.header.baseSequence > sequence } ?? state.waiting.endIndex
        state.waiting.insert(sealed, at: position)
        partitions[sealed.key] = state
    }

    private static func outcome(of answer: EventLoopFuture<ResponseFrame>) async -> Result<Int64, SluiceClientError> {
        do {
            let response = try BrokerConnection.decode(try await answer.get(), .produce, as: ProduceResponse.self)
            guard let partition = response.topics.first?.partitions.first else {
                throw SluiceClientError(.protocolViolation, "the produce answer names no partition")
            }
            if let error = partition.wireError { throw SluiceClientError(error) }
            return .success(partition.baseOffset)
        } catch let error as SluiceClientError {
            return .failure(error)
        } catch {
            return .failure(SluiceClientError(.connectionClosed, "\(error)"))
        }
    }

    private func completed(_ sealed: Sealed, _ outcome: Result<Int64, SluiceClientError>) async {
        switch outcome {
        case .success(let base):
            partitions[sealed.key]?.inFlight -= 1
            for (index, completion) in sealed.completions.enumerated() {
                completion?(.success(RecordMetadata(topic: sealed.key.topic, partition: sealed.key.partition,
                                                    offset: base < 0 ? -1 : base + Int64(index))))
            }
            release(sealed.completions.count)
        case .failure(let error):
            let batchProducer = sealed.batch.header.producerId
            // An out-of-order answer usually means an earlier batch of the partition failed and is being
            // retried; resending in order resolves it. Not when an earlier batch of this producer id
            // failed for good: its sequence gap can never close.
            let gapForever = batchProducer >= 0 && abandonedProducerIds.contains(batchProducer)
            let retriable = error.isRetriable || (error.code == .outOfOrderSequence && !gapForever)
            if error.code == .notLeader || error.kind == .unreachable || error.kind == .connectionClosed || error.kind == .timeout {
                // Leadership moved, or its broker went away or stalled: ask the cluster again before the retry.
                leaderConnections[sealed.key] = nil
                client.forgetLeader(of: sealed.key)
            }
            if retriable && sealed.attempts < config.retriesMax {
                var again = sealed
                again.attempts += 1
                // Back in line in sequence order before the pause, so nothing later overtakes it.
                requeue(again)
                try? await Task.sleep(nanoseconds: UInt64(config.retryBackoffMs) * 1_000_000)
                pump(sealed.key)
                return
            }
            partitions[sealed.key]?.inFlight -= 1
            finish(sealed.completions, .failure(error))
            if batchProducer >= 0 { abandonIdentity(batchProducer) }
        }
        pump(sealed.key)
    }

    /// After a batch failed for good, its producer id has a sequence gap the broker will never accept
    /// past. Later records get a new producer id (sequences from 0 on every partition), as Kafka's
    /// producer bumps its epoch; batches already sealed with the old id fail with the reason.
    private func abandonIdentity(_ id: Int64) {
        guard !abandonedProducerIds.contains(id) else { return }
        abandonedProducerIds.insert(id)
        if producerId == id {
            producerId = -1
            producerEpoch = -1
            Task { await self.refreshIdentity(attempt: 0) }
        }
        for key in partitions.keys {
            partitions[key]?.nextSequence = 0
            let stale = partitions[key]?.waiting.filter { $0.batch.header.producerId == id } ?? []
            partitions[key]?.waiting.removeAll { $0.batch.header.producerId == id }
            for sealed in stale {
                finish(sealed.completions, .failure(SluiceClientError(.broker(.outOfOrderSequence),
                    "\(sealed.key): an earlier batch of this producer failed for good, so this one cannot follow it; send it again")))
            }
        }
    }

    private func refreshIdentity(attempt: Int) async {
        guard producerId < 0 else { return }
        do {
            (producerId, producerEpoch) = try await client.initProducerId()
        } catch {
            guard attempt < config.retriesMax else {
                let failure = (error as? SluiceClientError) ?? SluiceClientError(.connectionClosed, "\(error)")
                for key in sealAfterIdentity {
                    guard let pending = partitions[key]?.pending else { continue }
                    partitions[key]?.pending = Pending()
                    finish(pending.completions, .failure(failure))
                }
                sealAfterIdentity.removeAll()
                return
            }
            try? await Task.sleep(nanoseconds: UInt64(config.retryBackoffMs) * 1_000_000)
            await refreshIdentity(attempt: attempt + 1)
            return
        }
        let keys = sealAfterIdentity
        sealAfterIdentity.removeAll()
        for key in keys { seal(key) }
    }

    private func finish(_ completions: [Completion?], _ result: Result<RecordMetadata, SluiceClientError>) {
        for completion in completions { completion?(result) }
        release(completions.count)
    }

    private func release(_ count: Int) {
        buffered -= count
        if buffered < config.bufferedRecordsMax {
            let waiters = spaceWaiters
            spaceWaiters.removeAll()
            for waiter in waiters { waiter.resume() }
        }
        if buffered == 0 {
            let waiters = idleWaiters
            idleWaiters.removeAll()
            for waiter in waiters { waiter.resume() }
        }
    }
}
