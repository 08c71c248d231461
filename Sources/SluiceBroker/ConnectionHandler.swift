import Logging
import NIOCore
import SluiceWire

/// A response ready to be written: nothing (acks=none), one buffer, or buffers and file regions whose
/// file handles are closed once written.
enum BrokerResponse: Sendable {
    case none
    case buffer(ByteBuffer)
    case parts([IOData], cleanup: @Sendable () -> Void)
}

/// Per-connection state the broker's request routing needs. Used only on the connection's event loop.
final class ConnectionState: @unchecked Sendable {
    var clientHost = "unknown"
    /// Completes when this connection's latest produce request has written its batches: the next one
    /// writes after it, so pipelined batches of an idempotent producer keep their order.
    var produceTail: EventLoopFuture<Void>?
}

/// Handles one connection: hands each request to the broker and writes the answers in request order,
/// even though they finish out of order (a long-polling fetch does not block a produce behind it in
/// the broker, only in the reply stream, as the protocol demands).
///
/// At most `requestsInFlightMax` requests are being worked on or waiting to be written; beyond that
/// the handler stops reading from the socket until answers drain (backpressure instead of an
/// unbounded queue).
final class ConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = InboundRequest
    typealias OutboundOut = IOData

    private let broker: Broker
    private let requestsInFlightMax: Int
    private let logger: Logger
    private var nextSequence: UInt64 = 0
    private var nextToWrite: UInt64 = 0
    private var finished: [UInt64: BrokerResponse] = [:]
    private var readPaused = false
    private let state = ConnectionState()

    init(broker: Broker, requestsInFlightMax: Int, logger: Logger) {
        self.broker = broker
        self.requestsInFlightMax = requestsInFlightMax
        self.logger = logger
    }

    private var inFlight: Int { Int(nextSequence - nextToWrite) }

    func channelActive(context: ChannelHandlerContext) {
        state.clientHost = context.channel.remoteAddress?.ipAddress ?? "unknown"
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        for (_, response) in finished { if case .parts(_, let cleanup) = response { cleanup() } }
        finished.removeAll()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let sequence = nextSequence
        nextSequence += 1
        let future: EventLoopFuture<BrokerResponse>
        switch unwrapInboundIn(data) {
        case .request(let frame):
            future = broker.handle(frame, connection: state, eventLoop: context.eventLoop)
        case .tooLarge(let header, let size):
            let error = WireError(.frameTooLarge, "request of \(size) bytes exceeds the broker's frame-bytes-max of \(broker.config.frameBytesMax); it was discarded unread. Send smaller batches or raise frame-bytes-max.")
            var buffer = context.channel.allocator.buffer(capacity: 256)
            FrameEncoder.encodeError(error, correlationId: header?.correlationId ?? -1, into: &buffer)
            future = context.eventLoop.makeSucceededFuture(.buffer(buffer))
        }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        future.whenComplete { result in
            let (handler, context) = loopBound.value
            switch result {
            case .success(let response): handler.complete(sequence, response, context: context)
            case .failure(let error):
                handler.logger.error("request failed without a response", metadata: ["error": "\(error)"])
                context.close(promise: nil)
            }
        }
        if inFlight >= requestsInFlightMax && !readPaused {
            readPaused = true
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        }
    }

    private func complete(_ sequence: UInt64, _ response: BrokerResponse, context: ChannelHandlerContext) {
        finished[sequence] = response
        var wrote = false
        while let next = finished.removeValue(forKey: nextToWrite) {
            nextToWrite += 1
            switch next {
            case .none: continue
            case .buffer(let buffer):
                context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: nil)
            case .parts(let parts, let cleanup):
                let promise = context.eventLoop.makePromise(of: Void.self)
                for (index, part) in parts.enumerated() {
                    context.write(wrapOutboundOut(part), promise: index == parts.count - 1 ? promise : nil)
                }
                promise.futureResult.whenComplete { _ in cleanup() }
            }
            wrote = true
        }
        if wrote { context.flush() }
        if readPaused && inFlight < requestsInFlightMax / 2 {
            readPaused = false
            context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
            context.read()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // An unframeable stream (or a socket error) ends this connection only.
        logger.notice("closing connection", metadata: ["client": "\(state.clientHost)", "reason": "\(error)"])
        if let decoding = error as? WireDecodingError {
            var buffer = context.channel.allocator.buffer(capacity: 256)
            FrameEncoder.encodeError(WireError(.invalidRequest, "unreadable frame: \(decoding.reason); closing the connection").bounded,
                                     correlationId: -1, into: &buffer)
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(buffer))).whenComplete { _ in bound.value.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }
}
