import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SluiceCore
import SluiceRaft
import SluiceWire

/// This broker's Raft groups (the metadata group and one per hosted partition), the transport between
/// brokers, the thread pool the groups run on and the clock that ticks them.
///
/// Threads: any; groups are looked up under a lock and do their own work on `pool`.
final class ReplicaManager: @unchecked Sendable {
    /// Most groups one broker runs.
    static let groupsMax = 100_000

    let nodeId: NodeID
    let cluster: ClusterConfig
    /// `cluster.votersChecksum`, worked out once: every RaftMessages request is checked against it.
    private let votersChecksum: UInt32
    let transport: PeerTransport
    /// Request/response calls to the other brokers (processor output, start offsets).
    let peers: PeerClient
    /// Largest answer frame a peer may send this broker's own calls (they are small: produce
    /// acknowledgements, offsets, producer counts).
    static let peerAnswerBytesMax = 1 << 20
    private let pool: NIOThreadPool
    private let settings: Settings
    private let logger: Logger
    /// Senders already reported for a different member list (logged once each, not at every heartbeat).
    private let mismatchLogged = NIOLockedValueBox<Set<Int32>>([])
    private let lock = NIOLock()
    private var groups: [GroupID: RaftGroup] = [:]
    private var tickTask: RepeatedTask?
    private var seed: UInt64

    /// Raft timing, from the broker's `raft-*` settings.
    struct Settings: Sendable {
        var tickMs: Int64
        var electionTicks: Int
        var heartbeatTicks: Int
        var appendBytesMax: Int
        var threads: Int
    }

    init(nodeId: NodeID, cluster: ClusterConfig, settings: Settings, group: any EventLoopGroup, logger: Logger) {
        self.nodeId = nodeId
        self.cluster = cluster
        self.settings = settings
        self.logger = logger
        var addresses: [NodeID: (host: String, port: Int)] = [:]
        for member in cluster.members { addresses[NodeID(member.id)] = (member.host, member.port) }
        votersChecksum = cluster.votersChecksum
        transport = PeerTransport(selfId: nodeId, votersChecksum: votersChecksum, addresses: addresses, group: group, logger: logger)
        peers = PeerClient(selfId: nodeId, addresses: addresses, group: group, logger: logger, frameBytesMax: Self.peerAnswerBytesMax)
        pool = NIOThreadPool(numberOfThreads: settings.threads)
        // Election timeouts are random per node: seed from the node id and the clock, printed for replay.
        seed = UInt64(nodeId) &* 0x9E37_79B9_7F4A_7C15 ^ MonotonicClock.nowNanoseconds()
    }

    /// Starts the pool and the tick clock.
    func start(on eventLoop: any EventLoop) {
        pool.start()
        let interval = TimeAmount.milliseconds(settings.tickMs)
        let task = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [self] _ in
            for group in lock.withLock({ Array(groups.values) }) { group.tick() }
        }
        lock.withLock { tickTask = task }
        logger.info("replication started", metadata: ["node": "\(nodeId)", "cluster": "\(cluster)", "seed": "\(seed)"])
    }

    /// The Raft settings for a group with these replicas.
    func raftConfig(peers: [NodeID], noopPayload: @escaping @Sendable () -> [UInt8], deliversCommittedEntries: Bool) -> RaftConfig {
        RaftConfig(id: nodeId, peers: peers, electionTimeoutTicks: settings.electionTicks, heartbeatTicks: settings.heartbeatTicks,
                   preVote: true, checkQuorum: true, maxEntriesPerAppend: 256, noopPayload: noopPayload,
                   deliversCommittedEntries: deliversCommittedEntries)
    }

    /// Starts a group for `storage` (opened by the caller).
    func addGroup(_ id: GroupID, peers: [NodeID], storage: PartitionRaftStorage, delegate: any RaftGroupDelegate,
                  deliversCommittedEntries: Bool, preferredLeader: NodeID? = nil) throws -> RaftGroup {
        let leader = Int32(truncatingIfNeeded: nodeId)
        let config = raftConfig(peers: peers, noopPayload: {
            RecordBatch.leaderChangeMarker(leader: leader, term: 0, timestamp: SystemWallClock().nowMilliseconds()).bytes
        }, deliversCommittedEntries: deliversCommittedEntries)
        let pool = self.pool
        let groupSeed: UInt64 = lock.withLock {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return seed
        }
        let group = RaftGroup(id: id, config: config, storage: storage, transport: transport, delegate: delegate,
                              random: SplitMix64(seed: groupSeed),
                              schedule: { work in pool.submit { _ in work() } },
                              validatePayload: { bytes in
                                  (try? bytes.withUnsafeBytes { try RecordBatch.validate($0) })?.totalSize == bytes.count
                              },
                              logger: logger, preferredLeader: preferredLeader)
        try lock.withLock {
            guard groups.count < Self.groupsMax else { throw ReplicationError.tooManyGroups(limit: Self.groupsMax) }
            precondition(groups[id] == nil, "a second Raft group for \(id)")
            groups[id] = group
        }
        return group
    }

    func group(_ id: GroupID) -> RaftGroup? { lock.withLock { groups[id] } }

    var allGroups: [RaftGroup] { lock.withLock { Array(groups.values) } }

    /// Stops and forgets a group (its storage stays open: the caller closes it).
    @discardableResult
    func removeGroup(_ id: GroupID) -> RaftGroup? {
        let group = lock.withLock { groups.removeValue(forKey: id) }
        group?.stop()
        return group
    }

    /// Hands each message of a RaftMessages request to its group; groups this broker does not run are
    /// named in the answer (their messages are dropped).
    func deliver(_ request: RaftMessagesRequest) -> RaftMessagesResponse {
        guard request.fromNode > 0, cluster.member(request.fromNode) != nil else {
            return RaftMessagesResponse(error: .invalidRequest, errorMessage: "node \(request.fromNode) is not a member of this cluster")
        }
        guard request.votersChecksum == votersChecksum else {
            // Two member lists could elect two leaders in one term: nothing of it is delivered.
            let problem = "broker \(request.fromNode) was started with a different --cluster member list than broker \(nodeId) (\(cluster.ids.map { "\($0)" }.joined(separator: ",")) here); give every broker the same list and restart the odd one"
            if mismatchLogged.withLockedValue({ $0.insert(request.fromNode).inserted }) { logger.error("\(problem)") }
            return RaftMessagesResponse(error: .invalidRequest, errorMessage: problem)
        }
        let from = NodeID(request.fromNode)
        var unknown: [String] = []
        for wireGroup in request.groups {
            let id = GroupID(topic: wireGroup.topic, partition: wireGroup.partition, incarnation: wireGroup.incarnation)
            guard let group = group(id) else {
                if unknown.count < 10 { unknown.append(id.description) }
                continue
            }
            // Node ids are broker ids: a message claiming another sender than the request's is dropped.
            for message in wireGroup.messages where message.to == nodeId && message.from == from {
                group.deliver(message)
            }
        }
        guard unknown.isEmpty else {
            return RaftMessagesResponse(error: .unknownTopicOrPartition,
                                        errorMessage: "broker \(nodeId) runs no replica of \(unknown.joined(separator: ", "))")
        }
        return RaftMessagesResponse()
    }

    /// Stops ticking, stops every group and closes the connections; then the pool, once the groups'
    /// running work is done. Returns the groups, whose storage the caller closes.
    func shutdown() async -> [RaftGroup] {
        let (task, all): (RepeatedTask?, [RaftGroup]) = lock.withLock {
            defer { groups = [:] }
            return (tickTask, Array(groups.values))
        }
        task?.cancel()
        for group in all { group.stop() }
        transport.shutdown()
        peers.shutdown()
        try? await pool.shutdownGracefully()
        return all
    }
}
