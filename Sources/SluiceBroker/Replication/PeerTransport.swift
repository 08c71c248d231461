import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SluiceCore
import SluiceRaft
import SluiceWire

/// Carries Raft messages to the other brokers: one TCP connection per peer, RaftMessages requests
/// (API 19) pipelined on it, answers read and dropped.
///
/// Sending never blocks: messages are queued per peer (at most `queuedMessagesMax`; more are dropped,
/// which Raft tolerates) and flushed on the peer's event loop, where everything queued meanwhile
/// travels in one request. A peer that cannot be reached loses what was queued for it; a reconnect is
/// tried on the next flush, at most every `reconnectIntervalMs`.
///
/// Threads: `send` from any thread; connection state lives on each peer's event loop.
final class PeerTransport: RaftTransport, @unchecked Sendable {
    /// Messages queued for one peer at most.
    static let queuedMessagesMax = 20_000
    /// Least time between two connection attempts to one peer.
    static let reconnectIntervalMs: Int64 = 100

    private final class Peer: @unchecked Sendable {
        let id: NodeID
        let host: String
        let port: Int
        let eventLoop: any EventLoop
        let lock = NIOLock()
        var queue: [GroupID: [Message]] = [:]
        var order: [GroupID] = []
        var queued = 0
        var flushScheduled = false
        /// The connection last made, for readers off the event loop (`isConnected`); guarded by `lock`.
        /// `Channel.isActive` itself is safe to read from any thread.
        var published: (any Channel)?
        // Event-loop owned.
        var channel: (any Channel)?
        var connecting = false
        var lastAttemptNanos: UInt64 = 0
        var correlationId: Int32 = 0

        init(id: NodeID, host: String, port: Int, eventLoop: any EventLoop) {
            self.id = id
            self.host = host
            self.port = port
            self.eventLoop = eventLoop
        }
    }

    private let selfId: NodeID
    /// `ClusterConfig.votersChecksum`, sent with every request.
    private let votersChecksum: UInt32
    private let peers: [NodeID: Peer]
    private let logger: Logger
    private let stoppedFlag = NIOLockedValueBox(false)

    /// `addresses`: every other broker's host and port.
    init(selfId: NodeID, votersChecksum: UInt32, addresses: [NodeID: (host: String, port: Int)], group: any EventLoopGroup, logger: Logger) {
        self.selfId = selfId
        self.votersChecksum = votersChecksum
        var peers: [NodeID: Peer] = [:]
        for (id, address) in addresses where id != selfId {
            peers[id] = Peer(id: id, host: address.host, port: address.port, eventLoop: group.next())
        }
        self.peers = peers
        self.logger = logger
    }

    func send(_ messages: [Message], group: GroupID) {
        for message in messages {
            guard let peer = peers[message.to] else { continue }
            let schedule: Bool = peer.lock.withLock {
                guard peer.queued < Self.queuedMessagesMax else { return false }
                if peer.queue[group] == nil { peer.order.append(group) }
                peer.queue[group, default: []].append(message)
                peer.queued += 1
                if peer.flushScheduled { return false }
                peer.flushScheduled = true
                return true
            }
            if schedule { peer.eventLoop.execute { [self] in flush(peer) } }
        }
    }

    /// Whether a connection to `node` is open now (false for this broker itself and unknown nodes).
    /// Any thread: reads the connection published under the peer's lock.
    func isConnected(to node: NodeID) -> Bool {
        guard let peer = peers[node] else { return false }
        return peer.lock.withLock { peer.published }?.isActive ?? false
    }

    /// Closes every connection; later sends are dropped.
    func shutdown() {
        stoppedFlag.withLockedValue { $0 = true }
        for peer in peers.values {
            peer.eventLoop.execute {
                peer.channel?.close(promise: nil)
                peer.channel = nil
            }
        }
    }

    private func flush(_ peer: Peer) {
        let (groups, order): ([GroupID: [Message]], [GroupID]) = peer.lock.withLock {
            defer {
                peer.queue = [:]
                peer.order = []
                peer.queued = 0
                peer.flushScheduled = false
            }
            return (peer.queue, peer.order)
        }
        guard !stoppedFlag.withLockedValue({ $0 }) else { return }
        guard let channel = peer.channel, channel.isActive else {
            // What was queued is dropped: Raft resends what matters on its next heartbeat or append.
            connect(peer)
            return
        }
        let wireGroups = order.compactMap { id in
            groups[id].map { RaftMessagesRequest.Group(topic: id.topic, partition: id.partition, incarnation: id.incarnation, messages: $0) }
        }
        var buffer = channel.allocator.buffer(capacity: 0)
        for request in RaftMessagesRequest.batched(fromNode: Int32(truncatingIfNeeded: selfId), votersChecksum: votersChecksum, groups: wireGroups) {
            peer.correlationId &+= 1
            let header = RequestHeader(apiKey: .raftMessages, apiVersion: 0, correlationId: peer.correlationId, clientId: "sluiced-\(selfId)")
            FrameEncoder.encodeRequest(request, header: header, into: &buffer)
        }
        channel.writeAndFlush(buffer, promise: nil)
    }

    private func connect(_ peer: Peer) {
        let now = MonotonicClock.nowNanoseconds()
        guard !peer.connecting, now &- peer.lastAttemptNanos >= UInt64(Self.reconnectIntervalMs) * 1_000_000 else { return }
        peer.connecting = true
        peer.lastAttemptNanos = now
        let logger = self.logger
        ClientBootstrap(group: peer.eventLoop)
            .connectTimeout(.milliseconds(1000))
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(ResponseFrameDecoder(frameBytesMax: 1 << 20)))
                    try channel.pipeline.syncOperations.addHandler(AnswerDropper(peer: peer.id, logger: logger))
                }
            }
            .connect(host: peer.host, port: peer.port)
            .whenComplete { result in
                peer.connecting = false
                switch result {
                case .success(let channel):
                    peer.channel = channel
                    peer.lock.withLock { peer.published = channel }
                    logger.debug("connected to peer", metadata: ["peer": "\(peer.id)", "address": "\(peer.host):\(peer.port)"])
                case .failure(let error):
                    logger.debug("cannot reach peer", metadata: ["peer": "\(peer.id)", "address": "\(peer.host):\(peer.port)", "error": "\(error)"])
                }
            }
    }
}

/// Reads the peer's answers to RaftMessages: they only report errors, which are logged.
private final class AnswerDropper: ChannelInboundHandler, Sendable {
    typealias InboundIn = ResponseFrame
    let peer: NodeID
    let logger: Logger

    init(peer: NodeID, logger: Logger) {
        self.peer = peer
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if let error = frame.error, error.code != .none {
            logger.debug("peer answered RaftMessages with an error", metadata: ["peer": "\(peer)", "error": "\(error)"])
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
