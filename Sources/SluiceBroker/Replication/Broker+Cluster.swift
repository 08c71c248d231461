import Logging
import NIOCore
import SluiceCore
import SluiceLog
import SluiceRaft
import SluiceWire

// Cluster mode (`--cluster`): the metadata group decides which topics exist and where their replicas
// live; each hosted partition runs its own Raft group; admin requests become metadata commands.

extension Broker {
    /// Where the metadata group keeps its log and its applied-state snapshot.
    var clusterDirectory: String { config.dataDirectory + "/meta/cluster" }

    /// Opens the metadata group and a replica of every hosted partition the saved metadata names, then
    /// starts ticking. Runs on the I/O pool during `start`, before the broker listens.
    func startReplication(_ manager: ReplicaManager, metadata: MetadataReplica, on loop: any EventLoop) throws {
        try checkMembers(manager.cluster)
        try metadata.load()
        // Definitions in the loaded snapshot reach no `applied` call.
        processors.definitionsChanged(metadata.state.processorDefinitions)
        for hosted in metadata.state.partitions(hostedBy: config.nodeId) {
            try ensureLocalTopic(hosted.topic, metadata.state)
            try startReplica(GroupID(topic: hosted.topic, partition: hosted.partition, incarnation: hosted.topicCreatedAtIndex),
                             replicas: hosted.replicas, manager: manager)
        }
        let directory = clusterDirectory + "/log"
        let log = try PartitionLog.open(directory: directory, config: LogConfig(segmentBytes: 64 << 20), logger: logger)
        let storage = try PartitionRaftStorage(directory: directory, log: log, readBytesMax: config.raftAppendBytesMax)
        let group = try manager.addGroup(.metadata, peers: manager.cluster.ids.map { NodeID($0) }, storage: storage,
                                         delegate: metadata, deliversCommittedEntries: true)
        metadata.group = group
        manager.start(on: loop)
    }

    /// The member ids this data directory's Raft groups vote with: saved at the first start, and a later
    /// start with other ids is refused (changing the voter set of a Raft group needs joint consensus,
    /// which Sluice does not do). Addresses may change.
    private func checkMembers(_ cluster: ClusterConfig) throws {
        try FileSystem.createDirectory(clusterDirectory)
        let path = clusterDirectory + "/members"
        let given = cluster.ids.map { "\($0)" }.joined(separator: ",")
        guard let bytes = try FileSystem.readSmallFile(path, limit: 4096) else {
            try FileSystem.writeAtomically(Array((given + "\n").utf8), to: path, directory: clusterDirectory)
            return
        }
        let saved = String(decoding: bytes.filter { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        guard saved == given else { throw BrokerError.membersChanged(path: path, saved: saved, given: given) }
    }

    /// Acts on a command the metadata group applied: opens the replicas this broker hosts of a new topic,
    /// removes a deleted one, stores committed offsets. Runs on the metadata group's thread. Throws only
    /// when offsets could not be stored: they must not be skipped (the others are logged).
    func applied(_ command: MetadataCommand, state: ClusterMetadata) throws {
        guard let manager = replicaManager else { return }
        if case .commitOffsets(let group, let timeMs, let offsets) = command {
            try groups.storeCommitted(group: group, offsets, timeMs: timeMs)
            return
        }
        do {
            switch command {
            case .createTopic(let name, let replicas, _, _):
                try ensureLocalTopic(name, state)
                let incarnation = state.topics[name]?.createdAtIndex ?? 0
                for (index, members) in replicas.enumerated() where members.contains(config.nodeId) {
                    try startReplica(GroupID(topic: name, partition: Int32(index), incarnation: incarnation), replicas: members, manager: manager)
                }
            case .deleteTopic(let name):
                if let topic = registry.topic(name) {
                    for partition in topic.partitions { if let replica = partition.replica { manager.removeGroup(replica.id) } }
                    try registry.delete(name: name, allowInternal: true)
                }
            case .commitOffsets:
                return  // stored above
            case .alterTopicConfig(let name, _, _):
                try reconfigureLocalTopic(name, state)
            case .createPartitions:
                logger.warning("metadata command not acted on locally yet", metadata: ["command": "\(command)"])
            case .putProcessor(let name, _, _):
                processors.definitionsChanged(state.processorDefinitions, touched: name)
                return
            case .deleteProcessor:
                processors.definitionsChanged(state.processorDefinitions)
                return
            }
            groups.topicsChanged()
        } catch {
            logger.error("cannot act on a metadata command", metadata: ["command": "\(command)", "error": "\(error)"])
        }
    }

    /// Gives the local topic the settings the metadata now holds. Replicas reopen their logs on their Raft
    /// group's thread, where nothing appends meanwhile; the other partitions (no replica here) at once.
    private func reconfigureLocalTopic(_ name: String, _ state: ClusterMetadata) throws {
        guard let wanted = state.topics[name]?.configs, let current = registry.topic(name)?.config.overrides else { return }
        let entries = wanted.sorted { $0.key < $1.key }.map { ConfigEntry(key: $0.key, value: $0.value) }
            + current.keys.filter { wanted[$0] == nil }.sorted().map { ConfigEntry(key: $0, value: nil) }
        let (topic, logConfig) = try registry.alterSettings(name: name, configs: entries, validateOnly: false)
        for partition in topic.partitions {
            guard let replica = partition.replica else {
                if partition.log.config != logConfig { try partition.reopen(config: logConfig, logger: logger) }
                continue
            }
            // Reopens queue up behind each other: each takes the settings current when it runs, so a quick
            // A→B→A ends at A whatever the order the group gets to them.
            let (registry, logger) = (self.registry, self.logger)
            let queued = replica.reopenLog { committedEnd in
                guard let latest = try? registry.topic(name)?.config.logConfig(defaults: registry.defaults),
                      partition.log.config != latest else { return partition.log }
                do {
                    try partition.reopen(config: latest, logger: logger) { $0.setReplicatedHighWatermark(committedEnd) }
                } catch {
                    logger.error("cannot reopen the log with new settings; it keeps the old ones",
                                 metadata: ["partition": "\(partition.topic)-\(partition.index)", "error": "\(error)"])
                }
                return partition.log
            }
            if !queued {
                logger.error("the log was not reopened with the topic's new settings (its Raft group is stopped or busy); they apply at the next start",
                             metadata: ["partition": "\(partition.topic)-\(partition.index)"])
            }
        }
    }

    /// Creates the topic's directories here unless they exist.
    private func ensureLocalTopic(_ name: String, _ state: ClusterMetadata) throws {
        guard registry.topic(name) == nil, let assignment = state.topics[name] else { return }
        let configs = assignment.configs.sorted { $0.key < $1.key }.map { ConfigEntry(key: $0.key, value: $0.value) }
        try registry.create(name: name, partitions: Int32(assignment.replicas.count), configs: configs, allowInternal: true)
    }

    private func startReplica(_ id: GroupID, replicas: [Int32], manager: ReplicaManager) throws {
        let partition = try registry.partition(id.topic, id.partition)
        guard partition.replica == nil else { return }
        let storage = try PartitionRaftStorage(directory: partition.directory, log: partition.log, readBytesMax: config.raftAppendBytesMax)
        // Readers stop at what is known committed before the group says more.
        partition.log.setReplicatedHighWatermark(storage.endOffset(of: storage.initialState().commit))
        partition.replica = try manager.addGroup(id, peers: replicas.map { NodeID($0) },
                                                 storage: storage, delegate: partition, deliversCommittedEntries: false,
                                                 preferredLeader: replicas.first.map { NodeID($0) })
    }

    // MARK: Admin in a cluster

    /// The metadata group's leader ("controller"), or an error naming it for the client to go there.
    func requireController() throws -> MetadataReplica {
        guard let metadata = metadataReplica, let status = metadata.group?.status else {
            throw WireError(.brokerShuttingDown, "the metadata group is not running")
        }
        guard status.isLeader else {
            let leader = status.leader.flatMap { id in replicaManager?.cluster.member(Int32(truncatingIfNeeded: id)) }
            throw WireError(.notLeader, leader.map { "broker \(config.nodeId) is not the controller; broker \($0.id) at \($0.address) is" }
                ?? "broker \(config.nodeId) is not the controller and no controller is elected yet; retry shortly")
        }
        return metadata
    }

    func createTopicsInCluster(_ request: CreateTopicsRequest, eventLoop: any EventLoop) -> EventLoopFuture<TopicResultsResponse> {
        proposePerTopic(request.topics, name: \.name, validateOnly: request.validateOnly, api: .createTopics, eventLoop: eventLoop) { topic, metadata in
            try topicCommand(name: topic.name, partitions: topic.partitions, replicationFactor: Int(topic.replicationFactor),
                             configs: topic.configs, isInternal: false, state: metadata.state)
        }
    }

    /// The command creating a topic: replicas placed across the brokers (`replicationFactor` −1: the
    /// default, at most 3), every setting spelt out.
    func topicCommand(name: String, partitions: Int32, replicationFactor: Int, configs entries: [ConfigEntry], isInternal: Bool,
                      state: ClusterMetadata) throws -> MetadataCommand {
        let brokers = replicaManager?.cluster.ids ?? []
        let factor = replicationFactor == -1 ? min(3, brokers.count) : replicationFactor
        let replicas: [[Int32]]
        do {
            replicas = try ClusterMetadata.place(partitions: Int(partitions), replicationFactor: factor, brokers: brokers, existing: state)
        } catch {
            throw WireError(factor < 1 || factor > brokers.count ? .invalidReplicationFactor : .invalidPartitions, "\(error)")
        }
        // Every setting travels with the command, defaults included: each broker fills unset keys
        // from its own [topic-defaults], which need not match, and replicas must not differ (a
        // different retention or cleanup policy would make their logs differ).
        let chosen = try TopicConfig.validated([:], applying: entries, defaults: registry.defaults)
        var configs: [String: String] = [:]
        for entry in chosen.effective(defaults: registry.defaults) { configs[entry.key] = entry.value }
        return .createTopic(name: name, replicas: replicas, configs: configs, isInternal: isInternal)
    }

    func deleteTopicsInCluster(_ request: DeleteTopicsRequest, eventLoop: any EventLoop) -> EventLoopFuture<TopicResultsResponse> {
        proposePerTopic(request.names, name: { $0 }, validateOnly: false, api: .deleteTopics, eventLoop: eventLoop) { name, metadata in
            if metadata.state.topics[name]?.isInternal == true {
                throw WireError(.invalidTopic, "'\(name)' is an internal topic and cannot be deleted")
            }
            return .deleteTopic(name: name)
        }
    }

    /// A config change becomes a metadata command that every broker applies. A reset key (no value) is
    /// set to the controller's default rather than removed: replicas must not each fill it from their own
    /// `[topic-defaults]`, which need not match (the same reason a create carries every setting).
    func alterConfigsInCluster(_ request: AlterConfigsRequest, eventLoop: any EventLoop) -> EventLoopFuture<TopicResultsResponse> {
        proposePerTopic(request.topics, name: \.name, validateOnly: request.validateOnly, api: .alterConfigs, eventLoop: eventLoop) { topic, metadata in
            guard let assignment = metadata.state.topics[topic.name] else {
                throw WireError(.unknownTopicOrPartition, "topic '\(topic.name)' does not exist")
            }
            if assignment.isInternal { throw WireError(.invalidTopic, "'\(topic.name)' is an internal topic; its settings are fixed") }
            // The message a broker alone would give, against this broker's defaults.
            _ = try TopicConfig.validated(assignment.configs, applying: topic.configs, defaults: registry.defaults)
            var set: [String: String] = [:]
            for entry in topic.configs { set[entry.key] = entry.value ?? registry.defaults.value(for: entry.key) }
            return .alterTopicConfig(name: topic.name, set: set, remove: [])
        }
    }

    /// Each topic of an admin request as a metadata command the controller checks and proposes; the answer
    /// lists each topic's outcome once its command is applied (or checked only, with `validateOnly`).
    private func proposePerTopic<Item>(_ items: [Item], name: (Item) -> String, validateOnly: Bool, api: ApiKey, eventLoop: any EventLoop,
                                       command: (Item, MetadataReplica) throws -> MetadataCommand) -> EventLoopFuture<TopicResultsResponse> {
        let futures: [EventLoopFuture<TopicResult>] = items.map { item in
            do {
                let metadata = try requireController()
                let command = try command(item, metadata)
                if let rejection = metadata.state.check(command) { throw WireError(rejection.errorCode, rejection.message) }
                if validateOnly { return eventLoop.makeSucceededFuture(TopicResult(name: name(item))) }
                return outcome(metadata.propose(command, on: eventLoop), name: name(item), api: api)
            } catch {
                return eventLoop.makeSucceededFuture(topicFailure(name(item), error, api: api))
            }
        }
        return EventLoopFuture.whenAllSucceed(futures, on: eventLoop).map { TopicResultsResponse(topics: $0) }
    }

    private func outcome(_ future: EventLoopFuture<MetadataOutcome>, name: String, api: ApiKey) -> EventLoopFuture<TopicResult> {
        future.map { outcome in
            switch outcome {
            case .applied: return TopicResult(name: name)
            case .rejected(let rejection): return TopicResult(name: name, error: rejection.errorCode, errorMessage: rejection.message)
            }
        }.recover { [self] error in topicFailure(name, error, api: api) }
    }

    private func topicFailure(_ name: String, _ error: any Error, api: ApiKey) -> TopicResult {
        let wire = wireError(for: error, api: api)
        return TopicResult(name: name, error: wire.code, errorMessage: wire.message)
    }

    // MARK: Consumer groups in a cluster

    /// In a cluster the controller coordinates consumer groups, once it has committed an entry of its own
    /// term: it has then applied every committed offset. Any other broker answers `not_coordinator`. A
    /// broker running alone coordinates its own.
    func requireCoordinator() throws {
        guard replicaManager != nil else { return }
        _ = try requireCaughtUpController(coordinating: "consumer groups")
    }

    /// The metadata group when this broker is the controller and has committed an entry of its own term
    /// (so it has applied every earlier change); else `not_coordinator` naming the controller, for the
    /// client to go there. `what` names what the controller coordinates, for the message.
    func requireCaughtUpController(coordinating what: String) throws -> MetadataReplica {
        guard let metadata = metadataReplica, let group = metadata.group else {
            throw WireError(.brokerShuttingDown, "the metadata group is not running")
        }
        let status = group.status
        if status.leadsCaughtUp { return metadata }
        if status.isLeader {
            throw WireError(.notCoordinator, "broker \(config.nodeId) was just elected controller and is catching up with the metadata log; retry shortly")
        }
        let leader = status.leader.flatMap { id in replicaManager?.cluster.member(Int32(truncatingIfNeeded: id)) }
        throw WireError(.notCoordinator, leader.map { "broker \(config.nodeId) does not coordinate \(what); the controller, broker \($0.id) at \($0.address), does" }
            ?? "broker \(config.nodeId) does not coordinate \(what) and no controller is elected yet; retry shortly")
    }

    /// An offset commit becomes a metadata command, answered once every broker can apply it (committed).
    func commitOffsetsInCluster(_ request: OffsetCommitRequest, eventLoop: any EventLoop) -> EventLoopFuture<PartitionErrorsResponse> {
        do {
            // `route` checked that this broker coordinates groups.
            guard let metadata = metadataReplica else { throw WireError(.brokerShuttingDown, "the metadata group is not running") }
            let checked = try groups.check(request)
            guard !checked.accepted.isEmpty else { return eventLoop.makeSucceededFuture(PartitionErrorsResponse(topics: checked.results)) }
            // A partition named twice: the last one counts, as on a broker alone (the command lists each once).
            var latest: [GroupTopicPartition: CommittedOffset] = [:]
            for entry in checked.accepted { latest[GroupTopicPartition(topic: entry.topic, partition: entry.partition)] = entry }
            let command = MetadataCommand.commitOffsets(group: request.groupId, commitTimeMs: checked.timeMs,
                                                        offsets: ClusterMetadata.sortedOffsets(Array(latest.values)))
            if let rejection = metadata.state.check(command) { throw WireError(rejection.errorCode, rejection.message) }
            return metadata.propose(command, on: eventLoop).flatMapThrowing { outcome in
                if case .rejected(let rejection) = outcome { throw WireError(rejection.errorCode, rejection.message) }
                return PartitionErrorsResponse(topics: checked.results)
            }.flatMapErrorThrowing { error in
                if case ProposalError.notLeader = error {
                    throw WireError(.notCoordinator, "the controller changed before the commit was stored; retry at the new one")
                }
                throw error
            }
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
    }

    // MARK: Metadata and status

    /// Every member as a broker; per partition the leader this broker knows and the assigned replicas.
    func clusterMetadata(_ request: MetadataRequest, manager: ReplicaManager) -> MetadataResponse {
        let brokers = manager.cluster.members.map { BrokerMetadata(nodeId: $0.id, host: $0.host, port: Int32($0.port)) }
        let state = metadataReplica?.state ?? ClusterMetadata()
        let controller = metadataReplica?.group?.status.leader.map { Int32(truncatingIfNeeded: $0) } ?? -1
        let topics = topicsMetadata(request) { topic, partition in
            guard let assignment = state.topics[topic.name] else { return (config.nodeId, [config.nodeId]) }
            let index = Int(partition.index)
            let leader = partition.replica?.status.leader.map { Int32(truncatingIfNeeded: $0) } ?? -1
            return (leader, index < assignment.replicas.count ? assignment.replicas[index] : [])
        }
        return MetadataResponse(brokers: brokers, controllerId: controller, topics: topics)
    }

    /// The leader's view for errors: which broker leads `partition`, to tell a client where to go.
    func notLeaderError(_ partition: Partition, leader: NodeID?) -> WireError {
        let member = leader.flatMap { replicaManager?.cluster.member(Int32(truncatingIfNeeded: $0)) }
        let target = member.map { "broker \($0.id) at \($0.address) leads it" } ?? "no leader is elected yet"
        return WireError(.notLeader, "broker \(config.nodeId) does not lead \(partition.topic)-\(partition.index); \(target). Refresh metadata and retry")
    }
}
