import NIOConcurrencyHelpers
import NIOCore
import SluiceCore
import SluiceRaft
import SluiceWire

/// Sends a broker's own requests about one partition to that partition's leader, wherever it is: this
/// broker (answered in process) or another one (`PeerClient`). Processor tasks write their output and
/// checkpoints this way; the controller asks leaders for a new processor's start offsets.
///
/// The leader is looked for among the partition's replicas: the one this broker's replica names, then the
/// one that answered last time, then the assigned replicas with the preferred leader first. A replica that
/// answers `not_leader` or cannot be reached sends the call on to the next; when none leads, the call
/// fails with `TaskOutputUnavailable` (the caller tries again later).
///
/// Threads: the calls block until answered and must run off the event loops (the processor or I/O pool).
final class LeaderCalls: @unchecked Sendable {
    /// How long one attempt at one broker may take before the next replica is tried.
    static let attemptTimeoutMs: Int64 = 12_000
    /// The timeout a write asks the leader for: longer than an election, shorter than `attemptTimeoutMs`.
    static let writeTimeoutMs: Int32 = 10_000
    /// Most bytes of record batches one write request carries; more go in further requests, in order.
    static let requestBytesMax = 1 << 20

    private weak var broker: Broker?
    private let peers: PeerClient
    private let selfId: Int32
    private let lock = NIOLock()
    /// The broker that answered last, per partition: at most one entry per partition of the cluster
    /// (`MetadataLimits.partitionsMax`).
    private var lastLeaders: [TaskCheckpoint.OutputPosition: Int32] = [:]

    init(broker: Broker, peers: PeerClient, selfId: Int32) {
        self.broker = broker
        self.peers = peers
        self.selfId = selfId
    }

    // MARK: Calls

    /// Appends `batches` to a partition through its leader, acks=all, in order (several requests when
    /// they are large); returns once the leader has them committed, with the offset of the last
    /// request's first record.
    @discardableResult
    func append(_ batches: [RecordBatch], to position: TaskCheckpoint.OutputPosition) throws -> Int64 {
        var start = 0
        var baseOffset: Int64 = -1
        while start < batches.count {
            var end = start
            var bytes = 0
            while end < batches.count && (end == start || bytes + batches[end].bytes.count <= Self.requestBytesMax) {
                bytes += batches[end].bytes.count
                end += 1
            }
            let request = Self.produceRequest(batches[start..<end], bytes: bytes, to: position)
            let answer = try call(position, api: .brokerProduce, request,
                                  local: { broker, loop in broker.produceInternally(request, eventLoop: loop) },
                                  decode: Self.decodeProduce, error: Self.produceError)
            baseOffset = answer.topics.first?.partitions.first?.baseOffset ?? -1
            start = end
        }
        return baseOffset
    }

    /// Appends to several partitions at once: each partition whose batches fit one request is sent to its
    /// likely leader right away, all before any answer is awaited, so a step costs one round of commits
    /// rather than one per partition. A partition whose first try fails (not the leader, unreachable),
    /// and one needing several requests, then goes the ordinary way, replica by replica. Resending a batch
    /// is safe: it carries its producer id and sequence, and the leader answers a repeat as a duplicate.
    func append(_ all: [(TaskCheckpoint.OutputPosition, [RecordBatch])]) throws {
        guard let broker else { throw TaskOutputUnavailable(message: "the broker is shutting down") }
        var started: [(position: TaskCheckpoint.OutputPosition, node: Int32, answer: EventLoopFuture<ProduceResponse>)] = []
        var later: [TaskCheckpoint.OutputPosition] = []
        for (position, batches) in all {
            let bytes = batches.reduce(0) { $0 + $1.bytes.count }
            guard batches.count == 1 || bytes <= Self.requestBytesMax, let node = candidates(position, broker).first else {
                later.append(position)
                continue
            }
            let request = Self.produceRequest(batches[...], bytes: bytes, to: position)
            started.append((position, node, attempt(node, api: .brokerProduce, request, broker: broker, decode: Self.decodeProduce,
                                                    local: { broker, loop in broker.produceInternally(request, eventLoop: loop) })))
        }
        for (position, node, answer) in started {
            switch try settle(answer, from: node, for: position, error: Self.produceError) {
            case .success: break
            case .failure: later.append(position)
            }
        }
        let batches = Dictionary(all, uniquingKeysWith: { first, _ in first })
        for position in later { try append(batches[position] ?? [], to: position) }
    }

    private static func produceRequest(_ batches: ArraySlice<RecordBatch>, bytes: Int, to position: TaskCheckpoint.OutputPosition) -> ProduceRequest {
        var records = ByteBuffer()
        records.reserveCapacity(bytes)
        for batch in batches { records.writeBytes(batch.bytes) }
        return ProduceRequest(acks: .all, timeoutMs: writeTimeoutMs,
                              topics: [.init(name: position.topic, partitions: [.init(partition: position.partition, records: records)])])
    }

    private static let decodeProduce: @Sendable (ByteBuffer) throws -> ProduceResponse = { try ProduceResponse.decode($0, version: 0) }

    private static func produceError(_ response: ProduceResponse) -> WireError? {
        response.topics.first?.partitions.first?.wireError
    }

    /// Broker `node`'s answer to a DescribeProcessor for `name` (this broker answered in process).
    func describeProcessor(_ name: String, at node: Int32) throws -> DescribeProcessorResponse {
        guard let broker else { throw TaskOutputUnavailable(message: "the broker is shutting down") }
        let request = DescribeProcessorRequest(name: name)
        if node == selfId { return broker.describeProcessorResponse(name) }
        return try peers.send(.describeProcessor, request, to: NodeID(node), timeoutMs: Self.attemptTimeoutMs,
                              decode: { try DescribeProcessorResponse.decode($0, version: 0) }).wait()
    }

    /// How many records `producerId` has stored (committed) in the partition at epoch 0.
    func recordsWritten(producerId: Int64, in position: TaskCheckpoint.OutputPosition) throws -> Int64 {
        let request = DescribeProducersRequest(timeoutMs: Self.writeTimeoutMs, partitions: [
            .init(topic: position.topic, partition: position.partition, producerId: producerId),
        ])
        let answer = try call(position, api: .describeProducers, request,
                              local: { broker, loop in broker.describeProducers(request, eventLoop: loop) },
                              decode: { try DescribeProducersResponse.decode($0, version: 0) },
                              error: { $0.partitions.first?.wireError })
        guard let entry = answer.partitions.first else { throw TaskOutputUnavailable(message: "DescribeProducers answered no partition") }
        return entry.producerEpoch == 0 ? entry.recordsWritten : 0
    }

    /// The offset the partition's leader gives for `timestamp` (ListOffsets: −1 latest, −2 earliest).
    func offset(_ position: TaskCheckpoint.OutputPosition, timestamp: Int64) throws -> Int64 {
        let request = ListOffsetsRequest(topics: [.init(name: position.topic, partitions: [.init(partition: position.partition, timestamp: timestamp)])])
        let answer = try call(position, api: .listOffsets, request,
                              local: { broker, loop in loop.makeSucceededFuture(broker.listOffsets(request)) },
                              decode: { try ListOffsetsResponse.decode($0, version: 0) },
                              error: { $0.topics.first?.partitions.first?.wireError })
        guard let offset = answer.topics.first?.partitions.first?.offset, offset >= 0 else {
            throw TaskOutputUnavailable(message: "ListOffsets answered no offset for \(position.topic)-\(position.partition)")
        }
        return offset
    }

    // MARK: Routing

    /// Tries the candidates in turn until one answers as the leader; a `not_leader` answer or an
    /// unreachable broker moves on, any other error is thrown as it is (retriable ones as
    /// `TaskOutputUnavailable`).
    private func call<Request: WireMessage, Response: Sendable>(
        _ position: TaskCheckpoint.OutputPosition, api: ApiKey, _ request: Request,
        local: @escaping @Sendable (Broker, any EventLoop) -> EventLoopFuture<Response>,
        decode: @escaping @Sendable (ByteBuffer) throws -> Response,
        error: (Response) -> WireError?
    ) throws -> Response {
        guard let broker else { throw TaskOutputUnavailable(message: "the broker is shutting down") }
        var last: WireError?
        for node in candidates(position, broker) {
            switch try settle(attempt(node, api: api, request, broker: broker, decode: decode, local: local), from: node, for: position, error: error) {
            case .success(let response): return response
            case .failure(let failure): last = failure
            }
        }
        // Every replica refused. A topic the metadata no longer holds was deleted: that is for good.
        if broker.metadataReplica?.state.topics[position.topic] == nil {
            throw WireError(.unknownTopicOrPartition, "topic '\(position.topic)' does not exist any more")
        }
        throw TaskOutputUnavailable(message: "no broker leads \(position.topic)-\(position.partition) now: \(last?.message ?? "no replica is known")")
    }

    /// Waits for one try's answer: the answer (and `node` remembered as the leader), or the error after
    /// which the next replica is tried (`movesOn`); any other error is thrown, classified.
    private func settle<Response>(_ future: EventLoopFuture<Response>, from node: Int32, for position: TaskCheckpoint.OutputPosition,
                                  error: (Response) -> WireError?) throws -> Result<Response, WireError> {
        let failure: WireError
        do {
            let response = try future.wait()
            guard let refused = error(response) else {
                lock.withLock { lastLeaders[position] = node }
                return .success(response)
            }
            failure = refused
        } catch let thrown as WireError {
            failure = thrown
        }
        guard Self.movesOn(failure) else { throw Self.classified(failure) }
        return .failure(failure)
    }

    /// One try at broker `node`: in process for this broker (bounded in time), else over `PeerClient`.
    private func attempt<Request: WireMessage, Response: Sendable>(
        _ node: Int32, api: ApiKey, _ request: Request, broker: Broker, decode: @escaping @Sendable (ByteBuffer) throws -> Response,
        local: @escaping @Sendable (Broker, any EventLoop) -> EventLoopFuture<Response>
    ) -> EventLoopFuture<Response> {
        guard node == selfId else { return peers.send(api, request, to: NodeID(node), timeoutMs: Self.attemptTimeoutMs, decode: decode) }
        let loop = broker.eventLoopGroup.next()
        return Self.bounded(loop.flatSubmit { local(broker, loop) }, on: loop, api: api)
    }

    /// Answers after which the next replica is tried: not the leader, unreachable (PeerClient's code), no
    /// answer in time (a stuck broker), or a broker that has not applied the topic's creation yet.
    private static func movesOn(_ error: WireError) -> Bool {
        [.notLeader, .requestTimedOut, .unknownTopicOrPartition].contains(error.code)
    }

    /// `future`, failed with `request_timed_out` when it has not completed within `attemptTimeoutMs`:
    /// an in-process call waits on this broker's own pools, which are bounded.
    private static func bounded<Response>(_ future: EventLoopFuture<Response>, on loop: any EventLoop, api: ApiKey) -> EventLoopFuture<Response> {
        let promise = loop.makePromise(of: Response.self)
        let timer = loop.scheduleTask(in: .milliseconds(attemptTimeoutMs)) {
            promise.fail(WireError(.requestTimedOut, "this broker did not answer its own \(api) within \(attemptTimeoutMs) ms"))
        }
        future.whenComplete { result in
            timer.cancel()
            promise.completeWith(result)
        }
        return promise.futureResult
    }

    /// Errors that time or a new leader may mend become `TaskOutputUnavailable`; the rest stay as they are.
    private static func classified(_ error: WireError) -> any Error {
        switch error.code {
        case .notEnoughReplicas, .requestTimedOut, .brokerShuttingDown, .outOfOrderSequence:
            // Out of order: a predecessor of this task on another broker wrote meanwhile, or the floors were
            // read from a leader that then lost its last entries; both mend by starting from the checkpoint.
            return TaskOutputUnavailable(message: error.message)
        default:
            return error
        }
    }

    /// Where to look for the leader, best guess first, each broker once.
    private func candidates(_ position: TaskCheckpoint.OutputPosition, _ broker: Broker) -> [Int32] {
        var list: [Int32] = []
        if let partition = try? broker.registry.partition(position.topic, position.partition),
           let leader = partition.replica?.status.leader {
            list.append(Int32(truncatingIfNeeded: leader))
        }
        if let last = lock.withLock({ lastLeaders[position] }) { list.append(last) }
        list += broker.metadataReplica?.state.assignment(topic: position.topic, partition: position.partition) ?? []
        var seen = Set<Int32>()
        return list.filter { seen.insert($0).inserted }
    }
}
