import NIOCore
import SluiceCore
import SluiceSQL
import SluiceWire

// Processor administration in a cluster (storage-format/processors.md, "In a cluster"): the controller
// checks a change, creates the topics it needs through the metadata group, and stores the definition as a
// metadata command; every broker then runs the tasks whose input partition it leads. Any broker lists the
// processors (every broker holds the definitions); a describe shows the tasks the answering broker runs.
//
// These calls block on proposals and on other brokers: they run on the I/O pool, never on an event loop.

extension Broker {
    /// Creates processor `request.name` on the controller (this broker must be it).
    func createProcessorInCluster(_ request: CreateProcessorRequest) throws {
        try processors.clusterAdminLock.withLock { try createProcessorSerially(request) }
    }

    /// Pauses, resumes, resets, replaces or deletes a processor on the controller. One admin change at a
    /// time: each reads the definition it changes and the applied index its generation comes from, and a
    /// pause must not be undone by a replace that read the definition before it.
    func alterProcessorInCluster(_ request: AlterProcessorRequest) throws {
        try processors.clusterAdminLock.withLock { try alterProcessorSerially(request) }
    }

    private func createProcessorSerially(_ request: CreateProcessorRequest) throws {
        let metadata = try controllerForProcessors()
        let calls = try leaderCalls()
        try ProcessorManager.validateName(request.name)
        guard request.sql.utf8.count <= ProcessorDefinition.sqlBytesMax else {
            throw WireError(.invalidQuery, "the query is \(request.sql.utf8.count) bytes; the limit is \(ProcessorDefinition.sqlBytesMax)")
        }
        guard metadata.state.processors[request.name] == nil else {
            throw WireError(.processorAlreadyExists, "processor '\(request.name)' already exists; use 'sluice processor replace' to change its query")
        }
        let plan = try processors.plan(request.sql)
        let count = try sourcePartitionCount(metadata, plan)
        let outputs = [plan.sink] + (plan.lateRecordsTopic.map { [$0] } ?? [])
        for output in outputs where metadata.state.topics[output] == nil { try TopicRegistry.validateName(output) }
        guard !request.validateOnly else { return }
        // Output topics first: a name the cluster refuses fails the create, not the stored processor.
        for output in outputs { try ensureTopicInCluster(metadata, name: output, partitions: count, configs: [], isInternal: false) }
        try ensureTopicInCluster(metadata, name: ProcessorManager.checkpointsTopic, partitions: 1,
                                 configs: InternalTopic.configs + ProcessorManager.checkpointsOverrides, isInternal: true, everyBroker: true)
        var definition = ProcessorDefinition(name: request.name, sql: request.sql, state: .running, generation: 0, producerId: -1,
                                             createdMs: ProcessorTaskRunner.nowMs(),
                                             startOffsets: try offsets(plan.source, count: count, position: request.startFrom, calls: calls))
        try startGeneration(metadata, &definition, plan: plan, count: count, isNew: true)
        logger.info("processor created", metadata: ["processor": "\(request.name)", "source": "\(plan.source)", "sink": "\(plan.sink)"])
    }

    private func alterProcessorSerially(_ request: AlterProcessorRequest) throws {
        let metadata = try controllerForProcessors()
        guard let bytes = metadata.state.processors[request.name],
              var definition = ProcessorDefinition.decode(name: request.name, value: bytes) else {
            throw WireError(.unknownProcessor, "processor '\(request.name)' does not exist; 'sluice processor list' shows those that do")
        }
        switch request.action {
        case .pause, .resume:
            if case .pause = request.action { definition.state = .paused } else { definition.state = .running }
            // Stored even when unchanged: applying it resumes failed tasks wherever they run.
            try proposeAndWait(metadata, .putProcessor(name: request.name, definition: definition.encodeValue(), isNew: false))
        case .delete(let deleteOutput):
            try proposeAndWait(metadata, .deleteProcessor(name: request.name))
            var doomed = [ProcessorManager.repartitionTopicName(request.name)]
            if deleteOutput, let plan = try? ProcessorManager.bind(definition.sql, options: BindOptions()) {
                doomed += [plan.sink] + (plan.lateRecordsTopic.map { [$0] } ?? [])
            }
            for topic in doomed where metadata.state.topics[topic] != nil {
                try proposeAndWait(metadata, .deleteTopic(name: topic))
            }
        case .reset(let position):
            let plan = try ProcessorManager.bind(definition.sql, options: BindOptions())
            let count = try sourcePartitionCount(metadata, plan)
            definition.startOffsets = try offsets(plan.source, count: count, position: position, calls: try leaderCalls())
            try startGeneration(metadata, &definition, plan: plan, count: count)
        case .replace(let sql):
            let old = try ProcessorManager.bind(definition.sql, options: BindOptions())
            let plan = try processors.plan(sql)
            guard plan.sink == old.sink else {
                throw WireError(.invalidQuery, "the new query writes to '\(plan.sink)' but the processor's sink is '\(old.sink)'; replace keeps the sink — create a new processor for another one")
            }
            let count = try sourcePartitionCount(metadata, plan)
            if plan.source == old.source {
                // The new query goes on from where the old one had read to: its tasks stop first, each
                // with a final checkpoint, which are read back once committed here.
                let routed = ProcessorManager.repartitions(old, partitionCount: count)
                definition.startOffsets = try stoppedPositions(metadata, definition, count: count, routed: routed)
            } else {
                definition.startOffsets = try offsets(plan.source, count: count, position: .earliest, calls: try leaderCalls())
            }
            definition.sql = sql
            try startGeneration(metadata, &definition, plan: plan, count: count)
        }
    }

    private func sourcePartitionCount(_ metadata: MetadataReplica, _ plan: ProcessorPlan) throws -> Int32 {
        guard let source = metadata.state.topics[plan.source] else {
            throw WireError(.unknownTopicOrPartition, "source topic '\(plan.source)' does not exist; create it first (sluice topic create \(plan.source))")
        }
        return Int32(source.partitionCount)
    }

    /// Stores `definition` as a new generation (its start offsets already set): a new generation number,
    /// a new producer id range, running; aggregators start at the repartition topic's end (created if
    /// missing). `isNew`: a create, refused when the name is taken meanwhile.
    private func startGeneration(_ metadata: MetadataReplica, _ definition: inout ProcessorDefinition, plan: ProcessorPlan, count: Int32,
                                 isNew: Bool = false) throws {
        let repartitionName = ProcessorManager.repartitionTopicName(definition.name)
        let repartitions = ProcessorManager.repartitions(plan, partitionCount: count)
        if repartitions {
            try ensureTopicInCluster(metadata, name: repartitionName, partitions: count, configs: ProcessorManager.repartitionConfigs, isInternal: true)
        }
        definition.repartitionStartOffsets = repartitions ? try offsets(repartitionName, count: count, position: .latest, calls: try leaderCalls()) : []
        definition.generation = Self.newGeneration(metadata)
        definition.producerId = try producerIds.allocateRange(count: 2 * Int64(count)).lowerBound
        definition.state = .running
        try proposeAndWait(metadata, .putProcessor(name: definition.name, definition: definition.encodeValue(), isNew: isNew))
    }

    /// Most time a replace waits for the old tasks to stop and their last checkpoints to arrive.
    static let processorStopWaitMs: Int64 = 30_000

    /// Where each source partition's task of `definition`'s generation stopped: the processor is paused
    /// (its tasks write a final checkpoint, as does a task that stopped when leadership moved), every
    /// reachable broker is asked until it runs none of its tasks, a marker written through the
    /// checkpoints' leader shows when this broker's replica holds everything committed before it, and the
    /// furthest checkpoint of the generation is read from that replica. A partition without a checkpoint
    /// of the generation starts where the generation did.
    private func stoppedPositions(_ metadata: MetadataReplica, _ definition: ProcessorDefinition, count: Int32, routed: Bool) throws -> [Int64] {
        let calls = try leaderCalls()
        let deadline = MonotonicClock.nowNanoseconds() + UInt64(Self.processorStopWaitMs) * 1_000_000
        if definition.state == .running {
            try awaitTasksRunning(definition, count: count, calls: calls, deadline: deadline)
            var paused = definition
            paused.state = .paused
            try proposeAndWait(metadata, .putProcessor(name: definition.name, definition: paused.encodeValue(), isNew: false))
        }
        // The metadata group's leader clears a follower's "recently active" at each check-quorum round and
        // sets it on the follower's next message: a live broker shows it within any two election timeouts.
        let silenceNs = UInt64(2 * config.raftElectionTicks) * UInt64(config.raftTickMs) * 1_000_000
        for node in replicaManager?.cluster.ids ?? [] {
            var silentSince: UInt64?
            while true {
                // "paused" means the broker applied the pause, whose application stopped its tasks (routers
                // too, which describe does not list) after their final checkpoints. An unknown processor
                // has no tasks. A broker that does not answer may be down, and then runs nothing another
                // broker leads; but one the metadata group still hears from is up (slow, or its
                // connection was lost) and may still be writing: it is asked again.
                if let answer = try? calls.describeProcessor(definition.name, at: node) {
                    guard answer.error == .none, answer.state != "paused" else { break }
                } else if metadata.group?.status.replicas[UInt64(node)]?.recentlyActive ?? false {
                    silentSince = nil
                } else {
                    let now = MonotonicClock.nowNanoseconds()
                    if now - (silentSince ?? now) >= silenceNs { break }
                    silentSince = silentSince ?? now
                }
                // Another broker's tasks announce nothing when they stop: ask again shortly.
                try askAgainShortly(until: deadline, "broker \(node) still runs tasks of '\(definition.name)' or does not say")
            }
        }
        let checkpoints = ProcessorManager.checkpointsTopic
        let marker = try InternalTopic.batch(key: Array("replace-marker".utf8), value: nil, timestampMs: ProcessorTaskRunner.nowMs())
        let markerOffset = try calls.append([marker], to: .init(topic: checkpoints, partition: 0))
        let replica = try registry.partition(checkpoints, 0)
        guard replica.waitForHighWatermark(above: markerOffset, until: deadline, on: eventLoopGroup.next()) else {
            throw WireError(.requestTimedOut, "this broker's copy of \(checkpoints) did not catch up; retry the replace")
        }
        let furthest = try processors.furthestPositions(definition.name, generation: definition.generation)
        return (0..<count).map { partition in
            // A router's checkpoint when the old query repartitioned (task number count + p; task p is then
            // the aggregator, whose offsets are in the repartition topic), else the query task's.
            let start = Int(partition) < definition.startOffsets.count ? definition.startOffsets[Int(partition)] : 0
            return furthest[routed ? count + partition : partition] ?? start
        }
    }

    /// Waits until some broker runs the task of each of `count` partitions, as `describe` lists them (the
    /// query tasks, or after a repartition the aggregators; routers are not listed). A task stops with a
    /// final checkpoint that covers what its predecessors stored, since it reads on to its input's end
    /// first. A partition whose leader just stopped or died has no task until the next leader starts one,
    /// and a pause before that would leave only the dead task's older checkpoint.
    private func awaitTasksRunning(_ definition: ProcessorDefinition, count: Int32, calls: LeaderCalls, deadline: UInt64) throws {
        var missing = Set(0..<count)
        while true {
            for node in replicaManager?.cluster.ids ?? [] where !missing.isEmpty {
                guard let answer = try? calls.describeProcessor(definition.name, at: node), answer.error == .none else { continue }
                // Any state: a failed task or one paused at its state limit was started on a live broker
                // too, and leaves what it can (a replace is the remedy the state limit's message names).
                for task in answer.tasks { missing.remove(task.partition) }
            }
            guard let partition = missing.min() else { return }
            try askAgainShortly(until: deadline, "no broker runs the task of partition \(partition) of '\(definition.name)' (its leader may be down)")
        }
    }

    /// How long a replace waits before it asks the brokers again.
    static let processorPollMs: Int64 = 50

    /// Waits `processorPollMs` before a replace asks again, or fails it as timed out with `what` once
    /// `deadline` has passed.
    private func askAgainShortly(until deadline: UInt64, _ what: @autoclosure () -> String) throws {
        guard MonotonicClock.nowNanoseconds() < deadline else {
            throw WireError(.requestTimedOut, "\(what()); retry the replace")
        }
        try? eventLoopGroup.next().scheduleTask(in: .milliseconds(Self.processorPollMs)) {}.futureResult.wait()
    }

    /// The controller's metadata group, or `not_coordinator` naming the controller (the client follows it).
    /// Only a controller that has committed an entry of its term has applied every earlier change: the
    /// definition it reads is current and the generation it takes from its applied index is new.
    private func controllerForProcessors() throws -> MetadataReplica {
        try requireCaughtUpController(coordinating: "processors")
    }

    private func leaderCalls() throws -> LeaderCalls {
        guard let calls = processors.cluster?.calls else { throw WireError(.brokerShuttingDown, "the processor runtime is not running") }
        return calls
    }

    /// A generation no earlier incarnation of a processor of the same name had: the metadata index the
    /// definition will be applied after. Checkpoints of a deleted processor of the same name never count.
    private static func newGeneration(_ metadata: MetadataReplica) -> Int32 {
        Int32(truncatingIfNeeded: (metadata.state.appliedIndex + 1) & 0x7fff_ffff)
    }

    /// Each partition's offset for `position`, asked of its leader.
    private func offsets(_ topic: String, count: Int32, position: ProcessorStartPosition, calls: LeaderCalls) throws -> [Int64] {
        let timestamp: Int64
        switch position {
        case .earliest: timestamp = ListOffsetsRequest.earliestTimestamp
        case .latest: timestamp = ListOffsetsRequest.latestTimestamp
        case .timestamp(let ms): timestamp = ms
        }
        do {
            return try (0..<count).map { try calls.offset(.init(topic: topic, partition: $0), timestamp: timestamp) }
        } catch let error as TaskOutputUnavailable {
            throw WireError(.notEnoughReplicas, "cannot find where the processor starts: \(error.message); retry when the partitions have leaders")
        }
    }

    /// Creates `name` through the metadata group unless it exists: placed like a client's topic with the
    /// default replication factor, or on every broker (`everyBroker`: the checkpoints, which any broker
    /// may need to read when it takes a task over).
    private func ensureTopicInCluster(_ metadata: MetadataReplica, name: String, partitions: Int32, configs: [ConfigEntry],
                                      isInternal: Bool, everyBroker: Bool = false) throws {
        guard metadata.state.topics[name] == nil else { return }
        let brokers = replicaManager?.cluster.ids ?? []
        let command = try topicCommand(name: name, partitions: partitions, replicationFactor: everyBroker ? brokers.count : -1,
                                       configs: configs, isInternal: isInternal, state: metadata.state)
        do {
            try proposeAndWait(metadata, command)
        } catch let error as WireError where error.code == .topicAlreadyExists {
            // Created meanwhile by another request: as good.
        }
    }

    /// Proposes `command` and waits until it is applied; a rejection is thrown as the client's error.
    private func proposeAndWait(_ metadata: MetadataReplica, _ command: MetadataCommand) throws {
        if let rejection = metadata.state.check(command) { throw WireError(rejection.errorCode, rejection.message) }
        let outcome: MetadataOutcome
        do {
            outcome = try metadata.propose(command, on: eventLoopGroup.next()).wait()
        } catch ProposalError.notLeader {
            throw WireError(.notCoordinator, "the controller changed before the change was stored; retry at the new one")
        }
        if case .rejected(let rejection) = outcome { throw WireError(rejection.errorCode, rejection.message) }
    }
}

extension Partition {
    /// Blocks, off the event loops, until this replica's high watermark is above `offset` (true) or the
    /// monotonic `deadline` passes (false). Woken by each commit, not by polling.
    func waitForHighWatermark(above offset: Int64, until deadline: UInt64, on loop: any EventLoop) -> Bool {
        while log.highWatermark <= offset {
            let now = MonotonicClock.nowNanoseconds()
            guard now < deadline else { return false }
            // A promise takes its first result and ignores later ones: the wake-up or the timer.
            let promise = loop.makePromise(of: Void.self)
            guard let id = addWaiter({ promise.succeed(()) }) else { return false }
            defer { removeWaiter(id) }
            // A commit between the check and the registration woke nobody.
            if log.highWatermark > offset { return true }
            let timer = loop.scheduleTask(in: .nanoseconds(Int64(deadline - now))) { promise.succeed(()) }
            try? promise.futureResult.wait()
            timer.cancel()
        }
        return true
    }
}
