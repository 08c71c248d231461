import SluiceRaft
import SluiceWire

// DescribeCluster (protocol.md, "Replication"): the cluster as this broker sees it, for
// `sluice cluster status`. Every broker answers from what it holds in memory — its Raft groups' published
// status, the metadata it applied, its peer connections — so the answer is cheap and never touches a file
// (it is built on the event loop). A broker knows lag figures only for the groups it leads; the CLI asks
// every broker and keeps each partition's row from its leader.

extension Broker {
    /// The cluster as this broker sees it. Alone (no `--cluster`): itself as the only broker and
    /// controller, each partition with one replica. Lists longer than `ClusterLimits` are cut, and the
    /// answer's message says so.
    func describeCluster(_ request: DescribeClusterRequest) -> DescribeClusterResponse {
        guard let manager = replicaManager else { return describeAlone(request) }
        let selfId = config.nodeId
        let heard = Self.recentlyHeard(manager)
        let brokers = manager.cluster.members.prefix(ClusterLimits.brokersMax).map { member in
            let up = member.id == selfId || heard.contains(NodeID(member.id)) || manager.transport.isConnected(to: NodeID(member.id))
            return DescribeClusterResponse.Broker(nodeId: member.id, host: member.host, port: Int32(clamping: member.port), isUp: up)
        }
        var rows = PartitionRows()
        let metadataStatus = metadataReplica?.group?.status
        let state = metadataReplica?.state ?? ClusterMetadata()
        // The metadata group sorts among the topics by its reserved name, before `__consumer_offsets`.
        var metadataPending = request.includeInternal && metadataStatus != nil
        for topic in registry.allTopics where request.includeInternal || !topic.isInternal {
            if metadataPending, GroupID.metadata.topic < topic.name, let metadataStatus {
                rows.add(Self.partitionRow(GroupID.metadata, metadataStatus, assigned: manager.cluster.ids, selfId: selfId))
                metadataPending = false
            }
            for partition in topic.partitions {
                guard let status = partition.replica?.status else { continue }
                // A partition the applied metadata does not name yet (its creation still applying) shows
                // the replicas its leader tracks, or this broker alone.
                let assigned = state.assignment(topic: topic.name, partition: partition.index)
                    ?? (status.replicas.isEmpty ? [selfId] : status.replicas.keys.map { Int32(truncatingIfNeeded: $0) }.sorted())
                rows.add(Self.partitionRow(GroupID(topic: topic.name, partition: partition.index), status, assigned: assigned, selfId: selfId))
            }
        }
        if metadataPending, let metadataStatus {
            rows.add(Self.partitionRow(GroupID.metadata, metadataStatus, assigned: manager.cluster.ids, selfId: selfId))
        }
        let controller = metadataStatus?.leader.map { Int32(truncatingIfNeeded: $0) } ?? -1
        return DescribeClusterResponse(errorMessage: rows.truncationMessage, controllerId: controller,
                                       brokers: Array(brokers), partitions: rows.partitions)
    }

    /// The peers a group this broker leads heard from within the last election timeout. A broker is
    /// up when it is in this set or the transport holds an open connection to it: the connection covers
    /// peers this broker only follows (a follower's groups know nothing of liveness). Its limits: a paused
    /// process keeps its sockets, so it still counts as up here (the CLI, which asks every broker itself,
    /// sees it down); and a broker that never had to send to a peer holds no connection to it.
    private static func recentlyHeard(_ manager: ReplicaManager) -> Set<NodeID> {
        var heard: Set<NodeID> = []
        for group in manager.allGroups {
            let status = group.status
            guard status.isLeader else { continue }
            for (node, progress) in status.replicas where progress.recentlyActive { heard.insert(node) }
        }
        return heard
    }

    /// A single broker: every partition is led here, by the only replica, which is always in sync.
    private func describeAlone(_ request: DescribeClusterRequest) -> DescribeClusterResponse {
        let selfId = config.nodeId
        let broker = DescribeClusterResponse.Broker(nodeId: selfId, host: config.host, port: Int32(clamping: boundPort), isUp: true)
        var rows = PartitionRows()
        for topic in registry.allTopics where request.includeInternal || !topic.isInternal {
            for partition in topic.partitions {
                let log = partition.log
                let replica = DescribeClusterResponse.Replica(nodeId: selfId, logEndOffset: log.logEndOffset, lag: 0, inSync: true)
                rows.add(DescribeClusterResponse.Partition(topic: topic.name, partition: partition.index, leader: selfId, term: 0,
                                                           highWatermark: log.highWatermark, replicas: [replica]))
            }
        }
        return DescribeClusterResponse(errorMessage: rows.truncationMessage, controllerId: selfId, brokers: [broker],
                                       partitions: rows.partitions)
    }

    /// One group's row from its published status: leader, term, high watermark, and a replica row per
    /// assigned member (at most `ClusterLimits.replicasPerPartitionMax`).
    static func partitionRow(_ id: GroupID, _ status: RaftGroup.Status, assigned: [Int32], selfId: Int32) -> DescribeClusterResponse.Partition {
        DescribeClusterResponse.Partition(
            topic: id.topic, partition: id.partition,
            leader: status.leader.map { Int32(truncatingIfNeeded: $0) } ?? -1,
            term: Int64(truncatingIfNeeded: status.term), highWatermark: status.highWatermark,
            replicas: assigned.prefix(ClusterLimits.replicasPerPartitionMax).map { replicaRow($0, status, selfId: selfId) })
    }

    /// One member's replica row. Only a leader knows how far each member has got (Raft's match index)
    /// and whether it answered lately; a follower knows its own log end and nothing about the others.
    static func replicaRow(_ node: Int32, _ status: RaftGroup.Status, selfId: Int32) -> DescribeClusterResponse.Replica {
        let unknown: Int64 = -1
        guard status.isLeader else {
            let end = node == selfId ? status.endOffset : unknown
            return DescribeClusterResponse.Replica(nodeId: node, logEndOffset: end, lag: unknown, inSync: false)
        }
        if node == selfId {
            return DescribeClusterResponse.Replica(nodeId: node, logEndOffset: status.endOffset, lag: 0, inSync: true)
        }
        // A member missing from the progress map is one the leader has not matched yet (or only through a
        // snapshot below its log start): its position is unknown.
        guard let progress = status.replicas[NodeID(UInt32(bitPattern: node))] else {
            return DescribeClusterResponse.Replica(nodeId: node, logEndOffset: unknown, lag: unknown, inSync: false)
        }
        // Both ends come from one published status, so the follower's is never ahead; clamp regardless.
        let lag = max(0, status.endOffset - progress.endOffset)
        return DescribeClusterResponse.Replica(nodeId: node, logEndOffset: progress.endOffset, lag: lag, inSync: progress.recentlyActive)
    }
}

/// The partition rows of one answer, cut at a bound (`ClusterLimits.partitionsMax`, what one answer may
/// carry): rows past it are counted, not built, so the answer can say how many it left out.
struct PartitionRows {
    /// Most rows kept. Invariant: `partitions.count <= limit`.
    let limit: Int
    /// The rows kept, in the order added.
    private(set) var partitions: [DescribeClusterResponse.Partition] = []
    /// Rows left out because the bound was reached.
    private(set) var omitted = 0

    /// An empty list keeping at most `limit` rows (tests use a small one).
    init(limit: Int = ClusterLimits.partitionsMax) {
        precondition(limit >= 0 && limit <= ClusterLimits.partitionsMax, "limit \(limit) outside 0...ClusterLimits.partitionsMax")
        self.limit = limit
    }

    /// Keeps `row` unless the bound is reached; then only counts it.
    mutating func add(_ row: @autoclosure () -> DescribeClusterResponse.Partition) {
        guard partitions.count < limit else {
            omitted += 1
            return
        }
        partitions.append(row())
    }

    /// Why the list is short, or nil when nothing was left out.
    var truncationMessage: String? {
        guard omitted > 0 else { return nil }
        return "showing the first \(partitions.count) of \(partitions.count + omitted) partitions, "
            + "the most one answer carries (\(limit))"
    }
}
