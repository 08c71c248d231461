import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SluiceCore
import SluiceRaft
import SluiceWire

/// Sends requests to the other brokers and waits for their answers: the broker-to-broker counterpart of
/// the client library's `BrokerConnection`, for processor tasks that produce to (or query) the broker
/// leading a partition. `PeerTransport` carries Raft traffic and drops answers; this one returns them.
///
/// One TCP connection per peer, made on the first send and again on the first send after it is lost;
/// requests are pipelined on it. The broker answers strictly in request order (protocol.md, "Pipelining
/// and order"), so each answer belongs to the oldest request still on the connection; its correlation id
/// is checked and a mismatch closes the connection.
///
/// Failures, always as a `WireError`:
/// - the broker cannot be reached, or the connection is lost before the answer: `unreachableCode`
///   (retriable; after a loss the outcome of the request is unknown);
/// - no answer within the request's timeout: `requestTimedOut` (the request keeps its place on the
///   connection, so its late answer is read and dropped in order);
/// - more than `pendingRequestsMax` requests outstanding for the peer: `requestTimedOut`, not sent;
/// - a request-level error in the answer: that error; a body `decode` cannot read: `unknownServerError`;
/// - after `shutdown`: `brokerShuttingDown`.
///
/// Threads: `send` and `shutdown` from any thread. A peer's connection state lives on its event loop;
/// futures complete there, so a caller off the event loop may `wait()` on them (never on the loop).
final class PeerClient: @unchecked Sendable {
    /// Requests outstanding for one peer at most: waiting for the connection, on the wire, or timed out
    /// and still owed an answer. Beyond it a send fails at once rather than queueing without bound.
    static let pendingRequestsMax = 1024
    /// How long one connection attempt may take.
    static let connectTimeoutMs: Int64 = 1000
    /// The code for an unreachable broker or a lost connection. The protocol has no code of its own for
    /// it; `notLeader` carries the right advice (retriable: refresh metadata and retry at the leader,
    /// which a dead broker soon no longer is) and keeps `brokerShuttingDown` meaning this broker stops.
    static let unreachableCode: ErrorCode = .notLeader

    private let peers: [NodeID: PeerClientPeer]
    private let clientId: String
    private let frameBytesMax: Int
    private let logger: Logger
    /// Fails sends for unknown peers, which have no event loop of their own.
    private let fallbackLoop: any EventLoop
    private let stoppedFlag = NIOLockedValueBox(false)

    /// `addresses`: the brokers this one may talk to (an entry for `selfId` is ignored).
    /// `frameBytesMax`: the largest answer frame accepted; a larger one closes the connection unread.
    /// `group` must outlive `shutdown`: outstanding requests are failed on its event loops.
    init(selfId: NodeID, addresses: [NodeID: (host: String, port: Int)], group: any EventLoopGroup, logger: Logger, frameBytesMax: Int) {
        var peers: [NodeID: PeerClientPeer] = [:]
        for (id, address) in addresses where id != selfId {
            peers[id] = PeerClientPeer(id: id, host: address.host, port: address.port, eventLoop: group.next())
        }
        self.peers = peers
        self.clientId = "sluiced-\(selfId)"
        self.frameBytesMax = frameBytesMax
        self.logger = logger
        self.fallbackLoop = group.next()
    }

    /// Sends `request` as `api` version `version` to broker `node` and completes with the answer's body
    /// read by `decode`, or fails with a `WireError` (see the type's summary). Every request must be
    /// answered: a produce with `acks = none` is refused.
    func send<Request: WireMessage, Response: Sendable>(
        _ api: ApiKey, version: Int16 = 0, _ request: Request, to node: NodeID, timeoutMs: Int64,
        decode: @escaping @Sendable (ByteBuffer) throws -> Response
    ) -> EventLoopFuture<Response> {
        if let refusal = refusal(request, to: node) { return fallbackLoop.makeFailedFuture(refusal) }
        guard let peer = peers[node] else {
            return fallbackLoop.makeFailedFuture(WireError(Self.unreachableCode, "no address is known for broker \(node)"))
        }
        let pending = PeerRequest(api: api, correlationId: peer.nextCorrelationId(),
                                  promise: peer.eventLoop.makePromise(of: ResponseFrame.self))
        pending.frame = encode(request, api: api, version: version, correlationId: pending.correlationId)
        peer.eventLoop.execute { [self] in enqueue(pending, on: peer, timeoutMs: timeoutMs) }
        return pending.promise.futureResult.flatMapThrowing { frame in
            try Self.read(frame, api: api, from: node, decode: decode)
        }
    }

    /// Fails everything outstanding with `brokerShuttingDown` and closes every connection; later sends
    /// fail at once. Returns before the connections have closed.
    func shutdown() {
        stoppedFlag.withLockedValue { $0 = true }
        for peer in peers.values {
            peer.eventLoop.execute { [self] in stop(peer) }
        }
    }

    private var isStopped: Bool { stoppedFlag.withLockedValue { $0 } }

    private static func shuttingDown() -> WireError {
        WireError(.brokerShuttingDown, "this broker is shutting down; it sends no more requests to other brokers")
    }

    /// Why `request` cannot be sent at all, checked before anything is queued.
    private func refusal<Request: WireMessage>(_ request: Request, to node: NodeID) -> WireError? {
        if isStopped { return Self.shuttingDown() }
        // The broker sends nothing back for acks=none, which would leave the request's slot owed forever.
        if let produce = request as? ProduceRequest, produce.acks == Acks.none {
            return WireError(.invalidRequest, "a produce to broker \(node) with acks=none gets no answer; send it with acks=leader or acks=all")
        }
        return nil
    }

    private func encode<Request: WireMessage>(_ request: Request, api: ApiKey, version: Int16, correlationId: Int32) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 256)
        let header = RequestHeader(apiKey: api, apiVersion: version, correlationId: correlationId, clientId: clientId)
        FrameEncoder.encodeRequest(request, header: header, into: &buffer)
        return buffer
    }

    /// The answer's body decoded, or the error it carries. A `WireError` thrown by `decode` passes as it is.
    private static func read<Response>(_ frame: ResponseFrame, api: ApiKey, from node: NodeID,
                                       decode: (ByteBuffer) throws -> Response) throws -> Response {
        if let error = frame.error { throw error }
        do {
            return try decode(frame.body)
        } catch let error as WireError {
            throw error
        } catch {
            throw WireError(.unknownServerError, "broker \(node)'s answer to \(api) does not parse: \(error)")
        }
    }

    // MARK: On the peer's event loop

    /// Queues `pending` behind the connection, or writes it when the connection is up.
    private func enqueue(_ pending: PeerRequest, on peer: PeerClientPeer, timeoutMs: Int64) {
        peer.eventLoop.assertInEventLoop()
        guard !isStopped else { return pending.fail(Self.shuttingDown()) }
        guard peer.pendingCount < Self.pendingRequestsMax else { return refuseOverflow(pending, on: peer) }
        pending.timeout = peer.eventLoop.scheduleTask(in: .milliseconds(max(0, timeoutMs))) { [self, api = pending.api, id = peer.id] in
            pending.expire(WireError(.requestTimedOut, "no answer from broker \(id) to \(api) within \(timeoutMs) ms"))
            closeIfStuck(peer)
        }
        if let connection = peer.connection {
            connection.handler.write([pending], on: connection.channel)
            return
        }
        peer.waiting.append(pending)
        if !peer.connecting { connect(peer) }
    }

    /// Fails a request beyond `pendingRequestsMax`.
    private func refuseOverflow(_ pending: PeerRequest, on peer: PeerClientPeer) {
        pending.fail(WireError(.requestTimedOut,
            "not sent: \(Self.pendingRequestsMax) requests already wait for broker \(peer.id) (pendingRequestsMax); it is slow or stuck, retry later"))
        closeIfStuck(peer)
    }

    /// Closes the connection when its oldest request timed out: answers come in order, so the broker has
    /// answered nothing for that long and is stuck (a paused process keeps its connections open). The
    /// requests behind it fail as unreachable, so callers move on to another replica, and the next send
    /// connects afresh. Callers give timeouts above any wait the broker itself may take before answering.
    private func closeIfStuck(_ peer: PeerClientPeer) {
        guard let connection = peer.connection, connection.handler.oldestTimedOut else { return }
        logger.warning("closing a connection to a broker that stopped answering", metadata: ["peer": "\(peer.id)"])
        connection.handler.failAll(WireError(Self.unreachableCode, "broker \(peer.id) stopped answering; the connection was closed"))
        connection.channel.close(promise: nil)
        peer.connection = nil
    }

    private func connect(_ peer: PeerClientPeer) {
        peer.connecting = true
        let handler = PeerAnswerHandler(peer: peer.id, logger: logger)
        let frameBytesMax = self.frameBytesMax
        ClientBootstrap(group: peer.eventLoop)
            .connectTimeout(.milliseconds(Self.connectTimeoutMs))
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(ResponseFrameDecoder(frameBytesMax: frameBytesMax)))
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: peer.host, port: peer.port)
            .whenComplete { [self] result in
                peer.connecting = false
                switch result {
                case .success(let channel): connected(peer, channel: channel, handler: handler)
                case .failure(let error): connectFailed(peer, error: error)
                }
            }
    }

    private func connected(_ peer: PeerClientPeer, channel: any Channel, handler: PeerAnswerHandler) {
        guard !isStopped else {
            channel.close(promise: nil)
            return peer.failWaiting(Self.shuttingDown())
        }
        logger.debug("connected to peer", metadata: ["peer": "\(peer.id)", "address": "\(peer.host):\(peer.port)"])
        peer.connection = (channel, handler)
        // Registered after `connection` is set, so a channel that closed already is forgotten at once.
        channel.closeFuture.whenComplete { _ in
            if peer.connection?.channel === channel { peer.connection = nil }
        }
        // Requests that timed out while waiting are not sent: nobody wants their answers.
        let ready = peer.waiting.filter { !$0.isDone }
        peer.waiting.removeAll()
        handler.write(ready, on: channel)
    }

    private func connectFailed(_ peer: PeerClientPeer, error: any Error) {
        logger.debug("cannot reach peer", metadata: ["peer": "\(peer.id)", "address": "\(peer.host):\(peer.port)", "error": "\(error)"])
        guard !isStopped else { return peer.failWaiting(Self.shuttingDown()) }
        peer.failWaiting(WireError(Self.unreachableCode,
            "cannot connect to broker \(peer.id) at \(peer.host):\(peer.port) (\(error)); it may be down: refresh metadata and retry"))
    }

    private func stop(_ peer: PeerClientPeer) {
        peer.failWaiting(Self.shuttingDown())
        guard let connection = peer.connection else { return }
        connection.handler.failAll(Self.shuttingDown())
        connection.channel.close(promise: nil)
        peer.connection = nil
    }
}

/// One broker `PeerClient` talks to. Only the correlation id counter is touched off the event loop.
private final class PeerClientPeer: @unchecked Sendable {
    let id: NodeID
    let host: String
    let port: Int
    let eventLoop: any EventLoop
    private let correlationIds = NIOLockedValueBox<Int32>(0)

    // Event-loop owned.
    /// The open connection and the handler holding its requests; nil while there is none.
    var connection: (channel: any Channel, handler: PeerAnswerHandler)?
    var connecting = false
    /// Requests waiting for the connection being made.
    var waiting: [PeerRequest] = []

    init(id: NodeID, host: String, port: Int, eventLoop: any EventLoop) {
        self.id = id
        self.host = host
        self.port = port
        self.eventLoop = eventLoop
    }

    /// Ids only need to be unique among the requests on one connection; the handler checks each answer
    /// against the request it belongs to, so the order in which callers draw them does not matter.
    /// Never -1, which a broker answers with when it could not read a request's id.
    func nextCorrelationId() -> Int32 {
        correlationIds.withLockedValue { next in
            defer { next = next == Int32.max ? 0 : next + 1 }
            return next
        }
    }

    /// Requests counted against `PeerClient.pendingRequestsMax`.
    var pendingCount: Int { waiting.count + (connection?.handler.inFlightCount ?? 0) }

    func failWaiting(_ error: WireError) {
        let failed = waiting
        waiting.removeAll()
        for pending in failed { pending.fail(error) }
    }
}

/// One request from the moment it is sent until it is answered, failed or timed out. Confined to its
/// peer's event loop after creation. Completing twice is harmless: the first outcome wins, so a late
/// answer to a timed-out request is dropped here.
private final class PeerRequest: @unchecked Sendable {
    let api: ApiKey
    let correlationId: Int32
    let promise: EventLoopPromise<ResponseFrame>
    /// The encoded frame until it is written.
    var frame: ByteBuffer?
    var timeout: Scheduled<Void>?
    private(set) var isDone = false
    /// Whether the timeout (rather than an answer or a failure) ended the request.
    private(set) var timedOut = false

    init(api: ApiKey, correlationId: Int32, promise: EventLoopPromise<ResponseFrame>) {
        self.api = api
        self.correlationId = correlationId
        self.promise = promise
    }

    func succeed(_ frame: ResponseFrame) {
        guard finish() else { return }
        promise.succeed(frame)
    }

    func fail(_ error: WireError) {
        guard finish() else { return }
        promise.fail(error)
    }

    /// Fails the request because its time is up; its slot on the connection stays until the answer comes.
    func expire(_ error: WireError) {
        guard finish() else { return }
        timedOut = true
        promise.fail(error)
    }

    /// Marks the request done; false when it already was.
    private func finish() -> Bool {
        guard !isDone else { return false }
        isDone = true
        frame = nil
        timeout?.cancel()
        timeout = nil
        return true
    }
}

/// Holds the requests written on one connection, oldest first, and matches each answer to the oldest.
/// Confined to the connection's event loop.
private final class PeerAnswerHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ResponseFrame

    private let peer: NodeID
    private let logger: Logger
    /// Written and not answered yet, including timed-out requests whose answers are still owed.
    private var inFlight = CircularBuffer<PeerRequest>()
    /// Set once the connection is unusable; later writes fail with it at once.
    private var closedError: WireError?

    init(peer: NodeID, logger: Logger) {
        self.peer = peer
        self.logger = logger
    }

    var inFlightCount: Int { inFlight.count }
    var oldestTimedOut: Bool { inFlight.first?.timedOut ?? false }

    /// Writes `requests` in order and keeps their slots; on a closed connection fails them instead.
    func write(_ requests: [PeerRequest], on channel: any Channel) {
        guard !requests.isEmpty else { return }
        if let closedError {
            for request in requests { request.fail(closedError) }
            return
        }
        for request in requests {
            guard let frame = request.frame else { continue }
            request.frame = nil
            inFlight.append(request)
            channel.write(frame, promise: nil)
        }
        channel.flush()
    }

    /// Fails every request on the connection; the caller closes it.
    func failAll(_ error: WireError) {
        closedError = closedError ?? error
        let failed = inFlight
        inFlight.removeAll()
        for request in failed { request.fail(error) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard let oldest = inFlight.popFirst() else {
            return failConnection("an answer (correlation id \(frame.correlationId)) to no request", context: context)
        }
        guard oldest.correlationId == frame.correlationId else {
            inFlight.prepend(oldest)
            let carried = frame.error.map { ": \($0)" } ?? ""
            return failConnection("an answer with correlation id \(frame.correlationId) where \(oldest.correlationId) was due\(carried)", context: context)
        }
        oldest.succeed(frame)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(WireError(PeerClient.unreachableCode,
            "lost the connection to broker \(peer) before its answer; the request may or may not have taken effect: retry"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset is a broker dying or restarting; anything else (a frame that does not decode, one above
        // frameBytesMax) is the broker breaking the protocol. Either way this connection is done.
        if error is IOError || error is ChannelError {
            logger.debug("connection to peer failed", metadata: ["peer": "\(peer)", "error": "\(error)"])
            failAll(WireError(PeerClient.unreachableCode, "the connection to broker \(peer) failed (\(error)); retry"))
            context.close(promise: nil)
        } else {
            failConnection("bytes that do not decode (\(error))", context: context)
        }
    }

    private func failConnection(_ what: String, context: ChannelHandlerContext) {
        logger.warning("peer broke the protocol; closing the connection", metadata: ["peer": "\(peer)", "problem": "\(what)"])
        failAll(WireError(PeerClient.unreachableCode, "broker \(peer) sent \(what); the connection was closed, retry"))
        context.close(promise: nil)
    }
}
