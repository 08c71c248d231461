
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SluiceWire

#if canImport(Glibc)
import Glibc
#endif

/// One TCP connection to a broker. Requests are pipelined: many may be outstanding, and responses
/// arrive in request order, so each is matched to the oldest outstanding request (and its
/// correlation id checked).
///
/// Thread-safe; `send` may be called from any task.
public final class BrokerConnection: @unchecked Sendable {
    public let host: String
    public let port: Int
    let channel: any Channel
    private let handler: ResponseHandler
    private let lock = NIOLock()
    private var nextCorrelationId: Int32 = 1
    let clientId: String

    private init(host: String, port: Int, channel: any Channel, handler: ResponseHandler, clientId: String) {
        self.host = host
        self.port = port
        self.channel = channel
        self.handler = handler
        self.clientId = clientId
    }

    /// Connects, or fails with a message naming the address and what to check.
    public static func connect(host: String, port: Int, clientId: String, group: any EventLoopGroup,
                               connectTimeoutMs: Int64 = 5000, frameBytesMax: Int = 1 << 30) async throws -> BrokerConnection {
        let handler = ResponseHandler()
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.milliseconds(connectTimeoutMs))
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            // Fetch answers are megabytes: read them in large pieces rather than NIO's default 64 KiB.
            .channelOption(ChannelOptions.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 256 * 1024, maximum: 4 * 1024 * 1024))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(ResponseFrameDecoder(frameBytesMax: frameBytesMax)))
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        do {
            let channel = try await bootstrap.connect(host: host, port: port).get()
            return BrokerConnection(host: host, port: port, channel: channel, handler: handler, clientId: clientId)
        } catch {
            throw SluiceClientError(.unreachable,
                "cannot connect to a broker at \(host):\(port) (\(Self.describe(error))). Is sluiced running there? Check --brokers or SLUICE_BROKERS.")
        }
    }

    /// "connection refused" rather than NIO's nested error values.
    static func describe(_ error: any Error) -> String {
        if let connection = error as? NIOConnectionError {
            if let first = connection.connectionErrors.first { return describe(first.error) }
            if let dns = connection.dnsAError ?? connection.dnsAAAAError { return "cannot resolve the host name: \(dns)" }
            return "no address to connect to"
        }
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)).lowercased() }
        if let channel = error as? ChannelError, case .connectTimeout(let amount) = channel {
            return "no answer within \(amount.nanoseconds / 1_000_000) ms"
        }
        return "\(error)"
    }

    /// Sends a request and returns its decoded response; a request-level error is thrown.
    public func send<Request: WireMessage, Response: WireMessage>(
        _ api: ApiKey, _ request: Request, expecting: Response.Type, timeoutMs: Int64 = 30_000
    ) async throws -> Response {
        try Self.decode(try await sendRaw(api, request, timeoutMs: timeoutMs), api, as: Response.self)
    }

    /// Sends a request that gets no response (produce with acks=none); returns once it is written.
    public func sendWithoutResponse<Request: WireMessage>(_ api: ApiKey, _ request: Request) async throws {
        let future: EventLoopFuture<Void> = lock.withLock {
            let buffer = encode(api, request).1
            return channel.writeAndFlush(buffer)
        }
        do { try await future.get() } catch {
            throw SluiceClientError(.connectionClosed, "lost the connection to \(host):\(port) while sending: \(error)")
        }
    }

    /// Assigns the next correlation id and encodes the frame. Caller holds `lock`.
    private func encode<Request: WireMessage>(_ api: ApiKey, _ request: Request) -> (Int32, ByteBuffer) {
        let correlationId = nextCorrelationId
        nextCorrelationId = nextCorrelationId == Int32.max ? 1 : nextCorrelationId + 1
        var buffer = channel.allocator.buffer(capacity: 256)
        FrameEncoder.encodeRequest(request, header: RequestHeader(apiKey: api, apiVersion: 0, correlationId: correlationId, clientId: clientId), into: &buffer)
        return (correlationId, buffer)
    }

    func sendRaw<Request: WireMessage>(_ api: ApiKey, _ request: Request, timeoutMs: Int64) async throws -> ResponseFrame {
        try await start(api, request, timeoutMs: timeoutMs).get()
    }

    /// Writes the request now (so requests started one after another reach the broker in that order)
    /// and returns the future answer.
    public func start<Request: WireMessage>(_ api: ApiKey, _ request: Request, timeoutMs: Int64) -> EventLoopFuture<ResponseFrame> {
        let promise = channel.eventLoop.makePromise(of: ResponseFrame.self)
        // Encode and enqueue under one lock so correlation ids reach the socket in order.
        lock.withLock {
            let (correlationId, buffer) = encode(api, request)
            handler.enqueue(correlationId: correlationId, promise: promise, on: channel)
            channel.writeAndFlush(buffer, promise: nil)
        }
        let timeout = channel.eventLoop.scheduleTask(in: .milliseconds(timeoutMs)) { [host, port] in
            promise.fail(SluiceClientError(.timeout, "no answer from \(host):\(port) to \(api) within \(timeoutMs) ms"))
        }
        promise.futureResult.whenComplete { _ in timeout.cancel() }
        return promise.futureResult
    }

    /// Decodes a response frame started with `start`.
    public static func decode<Response: WireMessage>(_ frame: ResponseFrame, _ api: ApiKey, as: Response.Type) throws -> Response {
        if let error = frame.error { throw SluiceClientError(error) }
        do {
            return try Response.decode(frame.body, version: 0)
        } catch {
            throw SluiceClientError(.protocolViolation, "the broker's \(api) response does not parse: \(error)")
        }
    }

    public var isActive: Bool { channel.isActive }

    public func close() async {
        try? await channel.close()
    }
}

/// Matches responses to outstanding requests in order.
final class ResponseHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ResponseFrame

    private let lock = NIOLock()
    private var pending = CircularBuffer<(Int32, EventLoopPromise<ResponseFrame>)>()
    private var closedError: SluiceClientError?

    func enqueue(correlationId: Int32, promise: EventLoopPromise<ResponseFrame>, on channel: any Channel) {
        let failure: SluiceClientError? = lock.withLock {
            if let closedError { return closedError }
            pending.append((correlationId, promise))
            return nil
        }
        if let failure { promise.fail(failure) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let head = lock.withLock { pending.popFirst() }
        guard let (correlationId, promise) = head else {
            if frame.correlationId == -1, let error = frame.error {
                failAll(SluiceClientError(error), context: context)
            } else {
                failAll(SluiceClientError(.protocolViolation, "the broker sent a response (correlation id \(frame.correlationId)) to no request"), context: context)
            }
            return
        }
        guard correlationId == frame.correlationId else {
            let error = frame.error.map { SluiceClientError($0) }
                ?? SluiceClientError(.protocolViolation, "response correlation id \(frame.correlationId) does not match the oldest request's \(correlationId)")
            promise.fail(error)
            failAll(error, context: context)
            return
        }
        promise.succeed(frame)
    }

    private func failAll(_ error: SluiceClientError, context: ChannelHandlerContext) {
        let all: [(Int32, EventLoopPromise<ResponseFrame>)] = lock.withLock {
            closedError = closedError ?? error
            defer { pending.removeAll() }
            return Array(pending)
        }
        for (_, promise) in all { promise.fail(error) }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let address = context.channel.remoteAddress.map { "\($0)" } ?? "the broker"
        let all: [(Int32, EventLoopPromise<ResponseFrame>)] = lock.withLock {
            closedError = closedError ?? SluiceClientError(.connectionClosed, "the connection to \(address) closed")
            defer { pending.removeAll() }
            return Array(pending)
        }
        for (_, promise) in all { promise.fail(closedError ?? SluiceClientError(.connectionClosed, "connection closed")) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset or other socket error is a lost connection (retriable: a broker died or restarted);
        // only bytes that do not decode are the broker breaking the protocol.
        if error is IOError || error is ChannelError {
            failAll(SluiceClientError(.connectionClosed, "the connection to the broker failed: \(error)"), context: context)
        } else {
            failAll(SluiceClientError(.protocolViolation, "unreadable data from the broker: \(error)"), context: context)
        }
    }
}
