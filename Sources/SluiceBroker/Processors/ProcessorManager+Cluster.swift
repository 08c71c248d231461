import NIOConcurrencyHelpers
import NIOCore
import SluiceCore
import SluiceLog
import SluiceWire

// Processors in a cluster (storage-format/processors.md, "In a cluster"): the definitions live in the
// metadata group, and each broker runs the tasks whose input partition it leads. A reconcile, on every
// definition change and every `reconcileIntervalMs`, starts the tasks of partitions this broker has come
// to lead and stops those of partitions it no longer leads. A task started here resumes from the latest
// checkpoint this broker's replica of `__processor_checkpoints` holds; what its predecessor wrote after that
// checkpoint is found in the output partitions and not written again.

extension ProcessorManager {
    /// How often leadership is looked at again, at most: a task starts at most this long after its
    /// partition's leader is caught up.
    static let reconcileIntervalMs: Int64 = 250

    /// Serialises the controller's processor admin changes (`Broker+ProcessorsCluster.swift`).
    var clusterAdminLock: NIOLock {
        guard let cluster else { preconditionFailure("clusterAdminLock outside cluster mode") }
        return cluster.adminLock
    }

    /// What the cluster mode keeps.
    final class ClusterState: @unchecked Sendable {
        /// Writes through the partitions' leaders.
        let output: any TaskOutput
        /// Calls to partition leaders, for the controller's admin work.
        let calls: LeaderCalls
        /// One processor admin change at a time on the controller.
        let adminLock = NIOLock()
        /// Guards the fields below.
        let lock = NIOLock()
        var timer: RepeatedTask?
        /// A reconcile is queued on the pool.
        var queued = false
        /// The newest definitions not yet acted on, and the names stored again meanwhile.
        var pending: [ProcessorDefinition]?
        var touched: Set<String> = []

        init(output: any TaskOutput, calls: LeaderCalls) {
            self.output = output
            self.calls = calls
        }
    }

    /// Switches to cluster mode before the metadata group replays (which calls `definitionsChanged`).
    func startCluster(output: any TaskOutput, calls: LeaderCalls) {
        pool.start()
        let state = ClusterState(output: output, calls: calls)
        cluster = state
        let interval = TimeAmount.milliseconds(Self.reconcileIntervalMs)
        let timer = eventLoopGroup.next().scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] _ in
            self?.scheduleReconcile()
        }
        state.lock.withLock { state.timer = timer }
    }

    /// The definitions the metadata now holds. Called on the metadata group's thread, which must not wait
    /// for tasks to stop: the newest definitions are kept and the reconcile acts on them. `touched` names a
    /// definition that was stored again (a resume), whose failed tasks start again even when it is unchanged.
    func definitionsChanged(_ definitions: [ProcessorDefinition], touched: String? = nil) {
        guard let cluster else { return }
        cluster.lock.withLock {
            cluster.pending = definitions
            if let touched { cluster.touched.insert(touched) }
        }
        scheduleReconcile()
    }

    /// Brings the entries to the newest definitions: processors that are new, changed or gone stop their
    /// tasks here (the reconcile starts what this broker should run). Under `adminLock`.
    private func applyDefinitions(_ definitions: [ProcessorDefinition], touched: Set<String>) {
        var current = lock.withLock { entries }
        let wanted = Dictionary(definitions.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
        for name in touched {
            guard let entry = current[name], wanted[name] == entry.definition else { continue }
            for runner in entry.runners {
                switch runner.currentStatus {
                case .failed, .pausedAtLimit: runner.resume()
                case .running, .paused, .stopped: break
                }
            }
        }
        for (name, entry) in current where wanted[name] != entry.definition {
            // Paused: a final checkpoint, so a resume does not replay. Replaced or deleted: none, its
            // checkpoints no longer count.
            let pausing = wanted[name].map { $0.generation == entry.definition.generation && $0.state == .paused } ?? false
            // Each pausing task has its own `finalCheckpointWaitMs` to read on to its input's end: a
            // replace goes on from where it got.
            for runner in entry.runners { runner.stop(becoming: pausing ? .paused : .stopped, checkpoint: pausing) }
            entry.runners = []
            if let definition = wanted[name] {
                entry.definition = definition
                entry.plan = nil
                entry.error = nil
            } else {
                current[name] = nil
            }
        }
        for (name, definition) in wanted where current[name] == nil { current[name] = Entry(definition: definition) }
        lock.withLock { entries = current }
    }

    private func scheduleReconcile() {
        guard let cluster else { return }
        let submit: Bool = cluster.lock.withLock {
            guard !cluster.queued else { return false }
            cluster.queued = true
            return true
        }
        guard submit else { return }
        pool.submit { [weak self] state in
            cluster.lock.withLock { cluster.queued = false }
            guard state == .active, let self else { return }
            reconcile(cluster)
        }
    }

    /// Starts the tasks of running processors whose input this broker leads (caught up), and stops the
    /// rest. Runs on the processor pool. The final checkpoints of the tasks it stops because leadership
    /// moved share `ProcessorTaskRunner.finalCheckpointWaitMs`: where the leaders cannot be reached (this
    /// broker cut off), a hundred stopping tasks must not hold the reconcile for a hundred times that.
    private func reconcile(_ cluster: ClusterState) {
        adminLock.withLock {
            let checkpointDeadlineMs = ProcessorTaskRunner.nowMs() + ProcessorTaskRunner.finalCheckpointWaitMs
            let (definitions, touched) = cluster.lock.withLock {
                defer {
                    cluster.pending = nil
                    cluster.touched = []
                }
                return (cluster.pending, cluster.touched)
            }
            if let definitions { applyDefinitions(definitions, touched: touched) }
            var starting: [(Entry, TaskSetup, [TaskSpec])] = []
            for entry in lock.withLock({ Array(entries.values) }) {
                let keep = entry.definition.state == .running
                let setup: TaskSetup?
                do {
                    setup = keep ? try self.setup(entry.definition) : nil
                    entry.error = nil
                } catch {
                    setup = nil
                    entry.error = Self.message(error)
                }
                if let setup { entry.plan = setup.plan }
                let led = setup.map { setup in Self.tasks(setup, entry.definition).filter { $0.input.replica?.leadsCaughtUp ?? false } } ?? []
                let ledIds = Set(led.map { Self.taskKey($0.role, $0.input.index) })
                for runner in entry.runners where !ledIds.contains(Self.taskKey(runner.role, runner.partition)) {
                    // Leadership moved: a final checkpoint (its writes go through the new leaders) covers
                    // what this task wrote after its last one, no further: the new leader's task reads on.
                    // A replace that pauses before that task has run goes on from there rather than from
                    // an older checkpoint.
                    runner.stop(becoming: .stopped, checkpoint: setup != nil, toInputEnd: false, checkpointDeadlineMs: checkpointDeadlineMs)
                }
                entry.runners.removeAll { !ledIds.contains(Self.taskKey($0.role, $0.partition)) }
                let running = Set(entry.runners.map { Self.taskKey($0.role, $0.partition) })
                let new = led.filter { !running.contains(Self.taskKey($0.role, $0.input.index)) }
                if let setup, !new.isEmpty { starting.append((entry, setup, new)) }
            }
            guard !starting.isEmpty else { return }
            let checkpoints = latestCheckpoints(Set(starting.map { $0.0.definition.name }))
            for (entry, setup, specs) in starting {
                let count = Int32(setup.source.partitions.count)
                for spec in specs {
                    let taskId = ProcessorTaskRunner.taskId(spec.role, partition: spec.input.index, taskCount: count)
                    let runner = runner(spec, entry, setup, checkpoint: checkpoints[entry.definition.name]?[taskId], output: cluster.output)
                    entry.runners.append(runner)
                    logger.info("processor task started here", metadata: [
                        "processor": "\(entry.definition.name)", "partition": "\(spec.input.topic)-\(spec.input.index)",
                    ])
                    runner.schedule()
                }
            }
        }
    }

    /// A task's identity within its processor: routers and aggregators may read equally numbered partitions.
    private static func taskKey(_ role: ProcessorTaskRunner.Role, _ partition: Int32) -> String {
        "\(role == .router ? "r" : "q")\(partition)"
    }

    /// The latest checkpoint of every task of `names`, from this broker's replica of
    /// `__processor_checkpoints` up to its high watermark (only committed checkpoints). A replica a little
    /// behind gives an older checkpoint, which is as good: the task replays more input and skips the output
    /// already stored.
    func latestCheckpoints(_ names: Set<String>) -> [String: [Int32: TaskCheckpoint]] {
        var latest: [String: [Int32: [UInt8]?]] = [:]
        do {
            try replayCommittedCheckpoints { name, task, value in
                if names.contains(name) { latest[name, default: [:]][task] = .some(value) }
            }
        } catch {
            // Starting from older checkpoints (or the generation's start) is safe, only slower.
            logger.warning("cannot read processor checkpoints; tasks start from their generation's start",
                           metadata: ["error": "\(error)"])
        }
        return latest.mapValues { tasks in tasks.compactMapValues { $0.flatMap(TaskCheckpoint.decode) } }
    }

    /// The furthest input offset any checkpoint of `name`'s `generation` reached, per task, from this
    /// broker's replica of `__processor_checkpoints` up to its high watermark. Each checkpoint covers the
    /// output its task stored; when leadership moves, two tasks of one partition may briefly run and write
    /// checkpoints out of order, so the furthest one, not the last, covers everything stored.
    func furthestPositions(_ name: String, generation: Int32) throws -> [Int32: Int64] {
        var furthest: [Int32: Int64] = [:]
        try replayCommittedCheckpoints { processor, task, value in
            guard processor == name, let value, let position = TaskCheckpoint.decodePosition(value),
                  position.generation == generation else { return }
            furthest[task] = max(furthest[task] ?? 0, position.inputOffset)
        }
        return furthest
    }

    /// Every checkpoint record in this broker's replica of `__processor_checkpoints` up to its high
    /// watermark, in log order: processor, task and value (nil: deleted). Keys that are not checkpoint
    /// keys (the replace marker) are skipped.
    private func replayCommittedCheckpoints(_ body: (_ processor: String, _ task: Int32, _ value: [UInt8]?) -> Void) throws {
        guard let topic = registry.topic(Self.checkpointsTopic), let partition = topic.partitions.first else { return }
        try InternalTopic.replay(partition, through: partition.log.highWatermark) { key, value in
            guard let key, let (processor, task) = TaskCheckpoint.decodeKey(key) else { return }
            body(processor, task, value)
        }
    }

    /// Stops the reconcile timer (shutdown).
    func stopCluster() {
        guard let cluster else { return }
        cluster.lock.withLock {
            cluster.timer?.cancel()
            cluster.timer = nil
        }
    }
}
