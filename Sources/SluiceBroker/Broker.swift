import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SluiceCore
import SluiceLog
import SluiceRaft
import SluiceWire

/// The broker: listens for clients, routes their requests to topics, partitions and groups, and owns
/// the data directory while it runs.
///
/// Threads: requests arrive on NIO event loops; everything that touches a file runs on `ioPool`, so
/// event loops never block on disk. Lifecycle: `start` (lock the data directory, open every log,
/// bind), `shutdown` (stop accepting, finish in-flight requests, flush and close every log cleanly,
/// release the lock).
public final class Broker: @unchecked Sendable {
    public let config: BrokerConfig
    let logger: Logger
    let registry: TopicRegistry
    let groups: GroupCoordinator
    let producerIds: ProducerIdAllocator
    let processors: ProcessorManager
    /// With `--cluster`: this broker's Raft groups and the transport between brokers; nil alone.
    let replicaManager: ReplicaManager?
    /// With `--cluster`: this broker's copy of the cluster metadata.
    let metadataReplica: MetadataReplica?
    let ioPool: NIOThreadPool
    let eventLoopGroup: any EventLoopGroup
    let lock = NIOLock()
    private var serverChannel: (any Channel)?
    private var dataLock: DataDirectoryLock?
    private var state = State.created

    /// True once shutdown has begun: long polls return at once.
    var isStopping: Bool { lock.withLock { state != .running } }
    private var requestsInFlight = 0
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []
    private var maintenanceTask: RepeatedTask?
    private var groupTimerTask: RepeatedTask?
    static let software = "sluiced 0.3.0"

    enum State { case created, running, stopping, stopped }

    /// The frame limits this broker enforces.
    var frameLimits: FrameLimits { FrameLimits(frameBytesMax: config.frameBytesMax) }

    public init(config: BrokerConfig, eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.config = config
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
        self.registry = TopicRegistry(dataDirectory: config.dataDirectory, defaults: config.defaults, topicsMax: config.topicsMax,
                                      partitionsPerTopicMax: config.partitionsPerTopicMax, logger: logger)
        self.groups = GroupCoordinator(registry: registry, logger: logger)
        self.producerIds = ProducerIdAllocator(directory: config.dataDirectory + "/meta",
                                               spaceIndex: config.cluster == nil ? 0 : Int(config.nodeId))
        self.ioPool = NIOThreadPool(numberOfThreads: config.ioThreads)
        self.processors = ProcessorManager(registry: registry, producerIds: producerIds, config: config,
                                           eventLoopGroup: eventLoopGroup, logger: logger)
        if let cluster = config.cluster {
            let settings = ReplicaManager.Settings(tickMs: config.raftTickMs, electionTicks: config.raftElectionTicks,
                                                   heartbeatTicks: config.raftHeartbeatTicks, appendBytesMax: config.raftAppendBytesMax,
                                                   threads: config.ioThreads)
            replicaManager = ReplicaManager(nodeId: NodeID(config.nodeId), cluster: cluster, settings: settings,
                                            group: eventLoopGroup, logger: logger)
            let box = WeakBroker()
            metadataReplica = MetadataReplica(directory: config.dataDirectory + "/meta/cluster", logger: logger,
                                              onApplied: { command, state in try box.broker?.applied(command, state: state) },
                                              onLeadershipChanged: { _ in box.broker?.groups.forgetMembers() })
            box.broker = self
        } else {
            replicaManager = nil
            metadataReplica = nil
        }
    }

    /// The port actually bound (differs from the configured one when that was 0).
    public private(set) var boundPort: Int = 0

    /// Locks the data directory, opens (and if needed recovers) every topic, and starts listening.
    public func start() async throws {
        precondition(lock.withLock { state } == .created, "a broker starts once")
        ioPool.start()
        try await ioPool.runIfActive { [self] in
            try FileSystem.createDirectory(config.dataDirectory)
            dataLock = try DataDirectoryLock(directory: config.dataDirectory)
            do {
                try registry.load()
                try groups.load(offsetsPartitions: config.offsetsTopicPartitions)
                // Before the server listens, so no processor request finds the registry unread. Not in a
                // cluster: a task's output would bypass the sink partitions' Raft groups.
                if replicaManager == nil { try processors.load() }
                if let replicaManager, let metadataReplica {
                    // Before the metadata replays: applying a processor definition reaches the manager.
                    let calls = LeaderCalls(broker: self, peers: replicaManager.peers, selfId: config.nodeId)
                    processors.startCluster(output: ClusterTaskOutput(calls: calls), calls: calls)
                    try startReplication(replicaManager, metadata: metadataReplica, on: eventLoopGroup.next())
                }
            } catch {
                // A refused start (a corrupt file, other cluster members) leaves the directory closed and
                // unlocked at once, not whenever this object is freed: it can be opened again right away.
                closeStorage()
                throw error
            }
        }
        let bootstrap = ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RequestFrameDecoder(limits: frameLimits)))
                    try channel.pipeline.syncOperations.addHandler(
                        ConnectionHandler(broker: self, requestsInFlightMax: config.connectionRequestsInFlightMax, logger: logger))
                }
            }
        let channel = try await bootstrap.bind(host: config.host, port: config.port).get()
        boundPort = channel.localAddress?.port ?? config.port
        let loop = eventLoopGroup.next()
        lock.withLock {
            serverChannel = channel
            state = .running
            groupTimerTask = loop.scheduleRepeatedTask(initialDelay: .milliseconds(200), delay: .milliseconds(200)) { [self] _ in
                groups.expireMembers()
            }
            let interval = TimeAmount.milliseconds(config.retentionCheckIntervalMs)
            maintenanceTask = loop.scheduleRepeatedAsyncTask(initialDelay: interval, delay: interval) { [self] _ in
                ioPool.runIfActive(eventLoop: loop) { self.runMaintenance() }
            }
        }
        logger.info("sluiced listening", metadata: ["listen": "\(config.host):\(boundPort)", "data": "\(config.dataDirectory)"])
    }

    /// Stops accepting connections, answers requests already received, closes every log cleanly (the
    /// next start skips recovery) and releases the data directory.
    public func shutdown() async {
        let channel: (any Channel)? = lock.withLock {
            guard state == .running else { return nil }
            state = .stopping
            groupTimerTask?.cancel()
            maintenanceTask?.cancel()
            return serverChannel
        }
        guard let channel else { return }
        try? await channel.close()
        registry.wakeAllWaiters()
        // Requests already received get their answers; a request stuck past the bound does not keep
        // the broker from closing its logs cleanly.
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForIdle() }
            group.addTask {
                try? await Task.sleep(nanoseconds: Self.shutdownWaitNanos)
                self.releaseIdleWaiters()
            }
            await group.next()
            group.cancelAll()
            self.releaseIdleWaiters()
        }
        // Calls to other brokers fail from now on, so a task waiting on one ends its step at once instead
        // of holding the shutdown for up to `LeaderCalls.attemptTimeoutMs` per replica it tries.
        replicaManager?.peers.shutdown()
        await processors.shutdown()
        let replicaGroups = await replicaManager?.shutdown() ?? []
        try? await ioPool.runIfActive { [self] in
            // Keep each replica's commit index for the next start (term and vote are always on disk).
            for group in replicaGroups { try? group.storage.writeState() }
            closeStorage()
        }
        try? await ioPool.shutdownGracefully()
        lock.withLock { state = .stopped }
        logger.info("sluiced stopped cleanly", metadata: ["data": "\(config.dataDirectory)"])
    }

    /// Closes the metadata group's log (in a cluster), every topic's log, and releases the data directory.
    private func closeStorage() {
        if let log = metadataReplica?.group?.storage.log { try? log.close() }
        registry.closeAll()
        dataLock?.release()
    }

    private func waitForIdle() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let idle = lock.withLock {
                if requestsInFlight == 0 { return true }
                idleWaiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }

    /// Longest shutdown waits for in-flight requests.
    static let shutdownWaitNanos: UInt64 = 10_000_000_000

    private func releaseIdleWaiters() {
        let waiters: [CheckedContinuation<Void, Never>] = lock.withLock {
            defer { idleWaiters.removeAll() }
            return idleWaiters
        }
        for waiter in waiters { waiter.resume() }
    }


    /// Retention and compaction for every partition.
    func runMaintenance() {
        for topic in registry.allTopics {
            for partition in topic.partitions {
                let log = partition.log
                guard !log.isClosed else { continue }  // replaced by an alter meanwhile
                // A replica's log is its Raft log: retention runs on the group's thread, which moves the Raft
                // anchor before it deletes; compaction keeps every batch (empty if need be), so Raft indexes
                // stay, and looks only at committed records, which no leader change can replace.
                if let replica = partition.replica {
                    replica.enforceRetention()
                    do {
                        // Segments below the Raft anchor (moved by an earlier pass) are no longer needed.
                        try log.deleteSegments(before: replica.status.anchorOffset)
                        if log.config.cleanupPolicy.contains(.compact) {
                            _ = try log.compact(keepingEmptyBatches: true, through: replica.status.highWatermark)
                        }
                    } catch {
                        logger.error("compaction failed", metadata: ["partition": "\(topic.name)-\(partition.index)", "error": "\(error)"])
                    }
                    continue
                }
                do {
                    let deleted = try log.enforceRetention()
                    if !deleted.isEmpty {
                        logger.info("retention deleted segments", metadata: ["partition": "\(topic.name)-\(partition.index)", "segments": "\(deleted.count)"])
                    }
                    if log.config.cleanupPolicy.contains(.compact) { _ = try log.compact() }
                } catch {
                    logger.error("maintenance failed", metadata: ["partition": "\(topic.name)-\(partition.index)", "error": "\(error)"])
                }
            }
        }
    }

    // MARK: Requests

    /// Handles one request; the future always succeeds with something to send (errors become error
    /// responses) unless the connection must close.
    func handle(_ frame: RequestFrame, connection: ConnectionState, eventLoop: any EventLoop) -> EventLoopFuture<BrokerResponse> {
        let header = frame.header
        let accepted: Bool = lock.withLock {
            guard state == .running else { return false }
            requestsInFlight += 1
            return true
        }
        guard accepted else {
            return eventLoop.makeSucceededFuture(errorResponse(WireError(.brokerShuttingDown, "the broker is shutting down; retry against another broker or after it restarts"), header))
        }
        let future = route(frame, connection: connection, eventLoop: eventLoop).flatMapErrorThrowing { [self] error in
            errorResponse(wireError(for: error, api: header.apiKey), header)
        }
        future.whenComplete { [self] _ in requestDone() }
        return future
    }

    private func requestDone() {
        let waiters: [CheckedContinuation<Void, Never>] = lock.withLock {
            requestsInFlight -= 1
            guard requestsInFlight == 0 else { return [] }
            defer { idleWaiters.removeAll() }
            return idleWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func errorResponse(_ error: WireError, _ header: RequestHeader) -> BrokerResponse {
        var buffer = ByteBufferAllocator().buffer(capacity: 64 + error.message.utf8.count)
        FrameEncoder.encodeError(error.bounded, correlationId: header.correlationId, into: &buffer)
        return .buffer(buffer)
    }

    func response<M: WireMessage>(_ message: M, _ header: RequestHeader) -> BrokerResponse {
        var buffer = ByteBufferAllocator().buffer(capacity: 256)
        FrameEncoder.encodeResponse(message, correlationId: header.correlationId, version: header.apiVersion, into: &buffer)
        return .buffer(buffer)
    }

    /// The requests of consumer groups: in a cluster only the controller serves them (`requireCoordinator`).
    private static let coordinatorAPIs: Set<ApiKey> = [.groupHeartbeat, .offsetCommit, .offsetFetch, .listGroups, .describeGroups]

    private func route(_ frame: RequestFrame, connection: ConnectionState, eventLoop: any EventLoop) -> EventLoopFuture<BrokerResponse> {
        let header = frame.header
        guard let api = header.apiKey else {
            return eventLoop.makeSucceededFuture(errorResponse(WireError(.unknownApi,
                "API key \(header.apiKeyRaw) is unknown to this broker (\(Self.software)); known keys are 0...\(ApiKey.allCases.count - 1)"), header))
        }
        guard api.supportedVersions.contains(header.apiVersion) else {
            return eventLoop.makeSucceededFuture(errorResponse(WireError(.unsupportedVersion,
                "\(api) version \(header.apiVersion) is not supported; this broker speaks \(api.supportedVersions.lowerBound)...\(api.supportedVersions.upperBound)"), header))
        }
        do {
            if Self.coordinatorAPIs.contains(api) { try requireCoordinator() }
            switch api {
            case .apiVersions:
                _ = try ApiVersionsRequest.decode(frame.body, version: header.apiVersion)
                let apis = ApiKey.allCases.map { ApiVersionRange(apiKey: $0.rawValue, minVersion: $0.supportedVersions.lowerBound, maxVersion: $0.supportedVersions.upperBound) }
                return eventLoop.makeSucceededFuture(response(ApiVersionsResponse(apis: apis, brokerSoftware: Self.software), header))
            case .metadata:
                let request = try MetadataRequest.decode(frame.body, version: header.apiVersion)
                return eventLoop.makeSucceededFuture(response(metadata(request), header))
            case .produce:
                let request = try ProduceRequest.decode(frame.body, version: header.apiVersion)
                // Writes happen in arrival order per connection; durability waits overlap.
                let previous = connection.produceTail ?? eventLoop.makeSucceededVoidFuture()
                let written = previous.flatMap { [self] in
                    ioPool.runIfActive(eventLoop: eventLoop) { [self] in writeProduce(request, allowInternal: false, eventLoop: eventLoop) }
                }
                connection.produceTail = written.map { _ in () }.recover { _ in () }
                return written.flatMap { [self] written in answerProduce(written, api: .produce, eventLoop: eventLoop) }
                    .map { [self] answer in request.acks == .none ? .none : response(answer, header) }
            case .brokerProduce:
                // Only brokers of a cluster forward writes; alone, tasks write their partitions directly.
                guard replicaManager != nil else {
                    throw WireError(.invalidRequest, "BrokerProduce is for brokers started with --cluster; this broker runs alone (use Produce)")
                }
                let request = try ProduceRequest.decode(frame.body, version: header.apiVersion)
                return produceInternally(request, eventLoop: eventLoop)
                    .map { [self] answer in request.acks == .none ? .none : response(answer, header) }
            case .describeProducers:
                let request = try DescribeProducersRequest.decode(frame.body, version: header.apiVersion)
                return describeProducers(request, eventLoop: eventLoop).map { [self] in response($0, header) }
            case .fetch:
                let request = try FetchRequest.decode(frame.body, version: header.apiVersion)
                return fetch(request, header: header, eventLoop: eventLoop)
            case .listOffsets:
                let request = try ListOffsetsRequest.decode(frame.body, version: header.apiVersion)
                return onPool(eventLoop) { [self] in response(listOffsets(request), header) }
            case .createTopics:
                let request = try CreateTopicsRequest.decode(frame.body, version: header.apiVersion)
                if replicaManager != nil {
                    return createTopicsInCluster(request, eventLoop: eventLoop).map { [self] in response($0, header) }
                }
                return onPool(eventLoop) { [self] in response(createTopics(request), header) }
            case .deleteTopics:
                let request = try DeleteTopicsRequest.decode(frame.body, version: header.apiVersion)
                if replicaManager != nil {
                    return deleteTopicsInCluster(request, eventLoop: eventLoop).map { [self] in response($0, header) }
                }
                return onPool(eventLoop) { [self] in response(deleteTopics(request), header) }
            case .describeConfigs:
                let request = try DescribeConfigsRequest.decode(frame.body, version: header.apiVersion)
                return eventLoop.makeSucceededFuture(response(describeConfigs(request), header))
            case .alterConfigs:
                let request = try AlterConfigsRequest.decode(frame.body, version: header.apiVersion)
                if replicaManager != nil {
                    return alterConfigsInCluster(request, eventLoop: eventLoop).map { [self] in response($0, header) }
                }
                return onPool(eventLoop) { [self] in response(alterConfigs(request), header) }
            case .initProducerId:
                let request = try InitProducerIdRequest.decode(frame.body, version: header.apiVersion)
                return onPool(eventLoop) { [self] in
                    let (id, epoch) = try producerIds.allocate(existing: request.producerId, epoch: request.producerEpoch)
                    return response(InitProducerIdResponse(producerId: id, producerEpoch: epoch), header)
                }
            case .groupHeartbeat:
                let request = try GroupHeartbeatRequest.decode(frame.body, version: header.apiVersion)
                let answer = try groups.heartbeat(request, clientId: header.clientId ?? "", clientHost: connection.clientHost)
                return eventLoop.makeSucceededFuture(response(answer, header))
            case .offsetCommit:
                let request = try OffsetCommitRequest.decode(frame.body, version: header.apiVersion)
                if replicaManager != nil {
                    return commitOffsetsInCluster(request, eventLoop: eventLoop).map { [self] in response($0, header) }
                }
                return onPool(eventLoop) { [self] in response(try groups.commit(request), header) }
            case .offsetFetch:
                let request = try OffsetFetchRequest.decode(frame.body, version: header.apiVersion)
                return eventLoop.makeSucceededFuture(response(try groups.fetchOffsets(request), header))
            case .listGroups:
                _ = try ListGroupsRequest.decode(frame.body, version: header.apiVersion)
                return eventLoop.makeSucceededFuture(response(groups.list(), header))
            case .describeGroups:
                let request = try DescribeGroupsRequest.decode(frame.body, version: header.apiVersion)
                return eventLoop.makeSucceededFuture(response(groups.describe(request), header))
            case .createProcessor, .listProcessors, .describeProcessor, .alterProcessor:
                return try routeProcessor(api, frame, eventLoop: eventLoop)
            case .raftMessages:
                guard let replicaManager else {
                    throw WireError(.invalidRequest, "RaftMessages is for brokers started with --cluster; this broker runs alone")
                }
                let request = try RaftMessagesRequest.decode(frame.body, version: header.apiVersion)
                return eventLoop.makeSucceededFuture(response(replicaManager.deliver(request), header))
            case .describeCluster:
                let request = try DescribeClusterRequest.decode(frame.body, version: header.apiVersion)
                return eventLoop.makeSucceededFuture(response(describeCluster(request), header))
            }
        } catch {
            return eventLoop.makeSucceededFuture(errorResponse(wireError(for: error, api: api), header))
        }
    }

    func onPool(_ eventLoop: any EventLoop, _ work: @escaping @Sendable () throws -> BrokerResponse) -> EventLoopFuture<BrokerResponse> {
        ioPool.runIfActive(eventLoop: eventLoop, work)
    }

    /// Maps any error to what the client is told.
    func wireError(for error: any Error, api: ApiKey?) -> WireError {
        switch error {
        case let error as WireError: return error
        case let error as WireDecodingError:
            return WireError(.invalidRequest, "malformed \(api.map { "\($0)" } ?? "") request: \(error.reason)")
        case let error as LogError: return Self.wireError(for: error)
        default:
            logger.error("unexpected error", metadata: ["api": "\(api.map { "\($0)" } ?? "?")", "error": "\(error)"])
            return WireError(.unknownServerError, "unexpected broker error: \(error)")
        }
    }

    static func wireError(for error: LogError) -> WireError {
        switch error {
        case .offsetOutOfRange(let requested, let start, let end):
            return WireError(.offsetOutOfRange, "offset \(requested) is outside the partition's range \(start)...\(end)")
        case .invalidBatch(let reason):
            return WireError(.corruptMessage, "record batch rejected: \(reason)")
        case .unacceptableBatch(let reason):
            return WireError(.invalidRecord, "record batch rejected: \(reason)")
        case .diskFull:
            return WireError(.diskFull, "the broker's disk is full; nothing was written. Free space or raise retention limits.")
        case .closed:
            return WireError(.brokerShuttingDown, "the partition is closing; retry")
        default:
            return WireError(.storageError, "storage error: \(error)")
        }
    }
}

/// Holds an exclusive `flock` on `<data>/.lock` so two brokers never share a data directory.
final class DataDirectoryLock: @unchecked Sendable {
    private var descriptor: Int32

    init(directory: String) throws {
        let path = directory + "/.lock"
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw BrokerError.io(path: path, reason: String(cString: strerror(errno))) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw BrokerError.dataDirectoryLocked(path: directory)
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = pid.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
    }

    func release() {
        guard descriptor >= 0 else { return }
        close(descriptor)
        descriptor = -1
    }

    deinit { release() }
}

/// Lets the metadata replica call back into the broker that owns it without a reference cycle.
final class WeakBroker: @unchecked Sendable {
    weak var broker: Broker?
}
