import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SluiceCore
import SluiceLog
import SluiceSQL
import SluiceStreams
import SluiceWire

/// The processors of this broker: their definitions (the compacted internal topic `__processors`), their
/// checkpoints (`__processor_checkpoints`) and one running task per source partition.
///
/// Threads: admin calls block on file I/O and run on the I/O pool, one at a time (`adminLock`); tasks run
/// on the processor pool.
final class ProcessorManager: @unchecked Sendable {
    static let registryTopic = "__processors"
    static let checkpointsTopic = "__processor_checkpoints"
    /// The checkpoints topic's settings beyond an internal topic's: small segments, because checkpoints are
    /// large and rewritten every second and small segments let compaction reclaim them soon; batches up to
    /// the log's own ceiling, because an engine checkpoint may take `TaskCheckpoint.engineBytesMax` (48 MiB)
    /// and in a cluster it is produced (BrokerProduce), which applies `max.message.bytes`.
    static let checkpointsOverrides = [
        ConfigEntry(key: "segment.bytes", value: "\(64 << 20)"),
        ConfigEntry(key: "max.message.bytes", value: "\(TopicConfig.maxMessageBytesCeiling)"),
    ]
    /// The repartition topic's settings: fsynced before a router goes on (an aggregator may only read what
    /// a crash cannot take back).
    static let repartitionConfigs = [ConfigEntry(key: "flush.policy", value: "always")]
    /// Most processors a broker holds.
    static let processorsMax = 1_000
    /// Sample records per source partition read to learn its column names for did-you-mean errors.
    static let sampleRecordsPerPartition: Int64 = 64

    /// One processor: its stored definition and what runs it.
    ///
    /// Threads: changed under the manager's `adminLock` (one writer at a time); read from anywhere (list on
    /// an event loop, describe on the I/O pool), so every field is read and written under its own lock —
    /// a reader never sees a value half-written, and a writer's change of several fields is not atomic.
    final class Entry: @unchecked Sendable {
        private struct Fields {
            var definition: ProcessorDefinition
            var plan: ProcessorPlan?
            var runners: [ProcessorTaskRunner] = []
            var error: String?
        }

        private let lock = NIOLock()
        private var fields: Fields

        init(definition: ProcessorDefinition) { fields = Fields(definition: definition) }

        var definition: ProcessorDefinition {
            get { lock.withLock { fields.definition } }
            set { lock.withLock { fields.definition = newValue } }
        }

        var plan: ProcessorPlan? {
            get { lock.withLock { fields.plan } }
            set { lock.withLock { fields.plan = newValue } }
        }

        var runners: [ProcessorTaskRunner] {
            get { lock.withLock { fields.runners } }
            set { lock.withLock { fields.runners = newValue } }
        }

        /// Why the processor could not start (its SQL no longer binds, its source is gone).
        var error: String? {
            get { lock.withLock { fields.error } }
            set { lock.withLock { fields.error = newValue } }
        }
    }

    let registry: TopicRegistry
    private let producerIds: ProducerIdAllocator
    let pool: NIOThreadPool
    let eventLoopGroup: any EventLoopGroup
    let logger: Logger
    private let settings: ProcessorTaskRunner.Settings
    let adminLock = NIOLock()
    let lock = NIOLock()
    var entries: [String: Entry] = [:]
    private var registryPartition: Partition?
    private var checkpointPartition: Partition?
    /// Set in a cluster (`startCluster`): how tasks write, and the timer that moves tasks with leadership.
    var cluster: ClusterState?

    init(registry: TopicRegistry, producerIds: ProducerIdAllocator, config: BrokerConfig, eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.registry = registry
        self.producerIds = producerIds
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.pool = NIOThreadPool(numberOfThreads: config.processorThreads)
        self.settings = .init(limits: TaskLimits(stateBytesMax: config.processorStateBytesMax),
                              checkpointIntervalMs: config.processorCheckpointIntervalMs, idleTickMs: 200,
                              readBytesMax: 1 << 20)
    }

    // MARK: Lifecycle

    /// Opens (creating if needed) the two internal topics, reads every definition and the latest
    /// checkpoint of every task, and starts the processors that are not paused.
    func load() throws {
        pool.start()
        let definitionsTopic = try InternalTopic.open(Self.registryTopic, partitions: 1, registry: registry)
        let checkpointsTopic = try InternalTopic.open(Self.checkpointsTopic, partitions: 1, registry: registry,
                                                      extra: Self.checkpointsOverrides)
        registryPartition = definitionsTopic.partitions[0]
        checkpointPartition = checkpointsTopic.partitions[0]
        var definitions: [String: ProcessorDefinition] = [:]
        try InternalTopic.replay(definitionsTopic.partitions[0]) { key, value in
            guard let key, let name = String(validating: key, as: UTF8.self) else { return }
            guard let value else { definitions[name] = nil; return }
            if let definition = ProcessorDefinition.decode(name: name, value: value) {
                definitions[name] = definition
            } else {
                logger.warning("skipping an unreadable processor definition", metadata: ["processor": "\(name)"])
            }
        }
        // Only the latest value of each key counts: keep the bytes while replaying, decode once at the end.
        var latest: [String: [Int32: [UInt8]?]] = [:]
        try InternalTopic.replay(checkpointsTopic.partitions[0]) { key, value in
            guard let key, let (name, partition) = TaskCheckpoint.decodeKey(key), definitions[name] != nil else { return }
            latest[name, default: [:]][partition] = .some(value)
        }
        let checkpoints = latest.mapValues { tasks in tasks.compactMapValues { $0.flatMap(TaskCheckpoint.decode) } }
        for (name, definition) in definitions.sorted(by: { $0.key < $1.key }) {
            let entry = Entry(definition: definition)
            lock.withLock { entries[name] = entry }
            start(entry, checkpoints: checkpoints[name] ?? [:])
        }
        logger.info("loaded processors", metadata: ["processors": "\(definitions.count)"])
    }

    /// Stops every task, writing a final checkpoint for each, then stops the pool. Call before the logs close.
    func shutdown() async {
        stopCluster()
        adminLock.withLock {
            // In a cluster a final checkpoint would go through a leader that may be going away too; the
            // next leader replays from the last one instead.
            for entry in lock.withLock({ Array(entries.values) }) {
                for runner in entry.runners { runner.stop(becoming: .stopped, checkpoint: cluster == nil) }
            }
        }
        try? await pool.shutdownGracefully()
    }

    /// What a processor's tasks read and write, worked out from its definition.
    struct TaskSetup {
        var plan: ProcessorPlan
        var source: Topic
        var results: ProcessorTaskRunner.Outputs
        var repartition: Topic?
    }

    /// One task a processor needs: what it does, the partition it reads and where it starts without a checkpoint.
    struct TaskSpec {
        var role: ProcessorTaskRunner.Role
        var input: Partition
        var startOffsets: [Int64]
        var outputs: ProcessorTaskRunner.Outputs
    }

    /// Binds the definition's SQL and finds its topics. A broker alone creates missing output topics; in a
    /// cluster the controller created them before the definition was stored, so a missing one is an error
    /// (tried again at the next reconcile).
    func setup(_ definition: ProcessorDefinition) throws -> TaskSetup {
        let plan = try Self.bind(definition.sql, options: BindOptions())
        let source = try sourceTopic(plan)
        let count = Int32(source.partitions.count)
        let sink = try outputTopic(plan.sink, partitions: count)
        let late = try plan.lateRecordsTopic.map { try outputTopic($0, partitions: count) }
        let repartition = try Self.repartitions(plan, partitionCount: count) ? repartitionTopic(definition.name, partitions: count) : nil
        return TaskSetup(plan: plan, source: source, results: .init(sink: sink, late: late, repartition: nil), repartition: repartition)
    }

    /// One task per source partition, or, when the query groups by something other than the source key
    /// over several partitions, a router per source partition and an aggregator per repartition partition.
    static func tasks(_ setup: TaskSetup, _ definition: ProcessorDefinition) -> [TaskSpec] {
        let count = Int32(setup.source.partitions.count)
        guard let repartition = setup.repartition else {
            return setup.source.partitions.map { TaskSpec(role: .query, input: $0, startOffsets: definition.startOffsets, outputs: setup.results) }
        }
        let routed = ProcessorTaskRunner.Outputs(sink: setup.results.sink, late: nil, repartition: repartition)
        return setup.source.partitions.map { TaskSpec(role: .router, input: $0, startOffsets: definition.startOffsets, outputs: routed) }
            + repartition.partitions.map {
                TaskSpec(role: .aggregator(sourcePartitions: count), input: $0, startOffsets: definition.repartitionStartOffsets, outputs: setup.results)
            }
    }

    /// A runner for `spec`, not yet scheduled.
    func runner(_ spec: TaskSpec, _ entry: Entry, _ setup: TaskSetup, checkpoint: TaskCheckpoint?, output: any TaskOutput) -> ProcessorTaskRunner {
        let count = Int32(setup.source.partitions.count)
        let index = Int(spec.input.index)
        let startOffset = index < spec.startOffsets.count ? spec.startOffsets[index] : spec.input.log.logStartOffset
        return ProcessorTaskRunner(processor: entry.definition.name, role: spec.role, source: spec.input, startOffset: startOffset, taskCount: count,
                                   definition: entry.definition, plan: setup.plan, settings: settings, outputs: spec.outputs,
                                   output: output, checkpoint: checkpoint, pool: pool, eventLoop: eventLoopGroup.next(), logger: logger)
    }

    /// Starts every task of a processor (a broker alone). On failure records why on the entry.
    private func start(_ entry: Entry, checkpoints: [Int32: TaskCheckpoint]) {
        do {
            let setup = try setup(entry.definition)
            guard let checkpointPartition else { throw WireError(.unknownServerError, "processor checkpoints are not loaded") }
            // One output for all the processor's tasks: every topic any of them writes.
            let written = ProcessorTaskRunner.Outputs(sink: setup.results.sink, late: setup.results.late, repartition: setup.repartition)
            let output = LocalTaskOutput(topics: written.topics, checkpoints: checkpointPartition)
            let count = Int32(setup.source.partitions.count)
            entry.runners = Self.tasks(setup, entry.definition).map { spec in
                runner(spec, entry, setup, checkpoint: checkpoints[ProcessorTaskRunner.taskId(spec.role, partition: spec.input.index, taskCount: count)],
                       output: output)
            }
            entry.plan = setup.plan
            entry.error = nil
            for runner in entry.runners { runner.schedule() }
        } catch {
            entry.error = Self.message(error)
            logger.error("processor could not start", metadata: ["processor": "\(entry.definition.name)", "error": "\(entry.error ?? "")"])
        }
    }

    func sourceTopic(_ plan: ProcessorPlan) throws -> Topic {
        guard let source = registry.topic(plan.source) else {
            throw WireError(.unknownTopicOrPartition, "source topic '\(plan.source)' does not exist; create it first (sluice topic create \(plan.source))")
        }
        return source
    }

    /// True when the query's groups are not already together in one source partition.
    static func repartitions(_ plan: ProcessorPlan, partitionCount: Int32) -> Bool {
        (plan.aggregation?.needsRepartition ?? false) && partitionCount > 1
    }

    /// What every repartition topic's name starts with.
    static let repartitionTopicPrefix = "__repartition."

    static func repartitionTopicName(_ processor: String) -> String { repartitionTopicPrefix + processor }

    /// The internal topics processor tasks write to, and so the only ones BrokerProduce accepts.
    static func writtenByTasks(_ topic: String) -> Bool {
        topic == checkpointsTopic || topic.hasPrefix(repartitionTopicPrefix)
    }

    /// The processor's repartition topic, created if missing: as many partitions as the source, fsynced
    /// before a router goes on (an aggregator may only read what a crash cannot take back).
    private func repartitionTopic(_ processor: String, partitions: Int32) throws -> Topic {
        let name = Self.repartitionTopicName(processor)
        if let topic = registry.topic(name) { return topic }
        if cluster != nil { throw WireError(.unknownTopicOrPartition, "repartition topic '\(name)' is not known to this broker yet") }
        return try registry.create(name: name, partitions: partitions,
                                   configs: Self.repartitionConfigs, allowInternal: true)
    }

    /// Where the aggregators of a new generation start: the repartition topic's end now.
    private func repartitionStartOffsets(_ processor: String, _ plan: ProcessorPlan, _ source: Topic) throws -> [Int64] {
        guard Self.repartitions(plan, partitionCount: Int32(source.partitions.count)) else { return [] }
        return try repartitionTopic(processor, partitions: Int32(source.partitions.count)).partitions.map { $0.log.logEndOffset }
    }

    /// An output topic: in a cluster it must exist already (the controller creates it); alone it is created.
    private func outputTopic(_ name: String, partitions: Int32) throws -> Topic {
        if cluster == nil { return try ensureTopic(name, partitions: partitions) }
        guard let topic = registry.topic(name) else {
            throw WireError(.unknownTopicOrPartition, "output topic '\(name)' is not known to this broker yet")
        }
        return topic
    }

    /// The topic `name`, created with `partitions` partitions and default settings when missing.
    private func ensureTopic(_ name: String, partitions: Int32) throws -> Topic {
        if let topic = registry.topic(name) { return topic }
        do {
            return try registry.create(name: name, partitions: partitions, configs: [])
        } catch let error as WireError where error.code == .topicAlreadyExists {
            guard let topic = registry.topic(name) else { throw error }
            return topic
        }
    }

    static func bind(_ sql: String, options: BindOptions) throws -> ProcessorPlan {
        do {
            return try Binder.plan(sql: sql, options: options)
        } catch {
            throw WireError(.invalidQuery, "\(error)")
        }
    }

    static func message(_ error: any Error) -> String {
        switch error {
        case let error as WireError: return error.message
        case let error as LogError: return Broker.wireError(for: error).message
        default: return "\(error)"
        }
    }

    // MARK: Admin

    static func validateName(_ name: String) throws {
        if let problem = ProcessorLimits.nameProblem(name) { throw WireError(.invalidProcessorName, problem) }
    }

    /// Validates and plans `sql`, creates the sink (and late-records topic) if missing, stores the
    /// definition durably and starts it.
    func create(name: String, sql: String, from position: ProcessorStartPosition, validateOnly: Bool) throws {
        try Self.validateName(name)
        guard sql.utf8.count <= ProcessorDefinition.sqlBytesMax else {
            throw WireError(.invalidQuery, "the query is \(sql.utf8.count) bytes; the limit is \(ProcessorDefinition.sqlBytesMax)")
        }
        try adminLock.withLock {
            guard lock.withLock({ entries[name] }) == nil else {
                throw WireError(.processorAlreadyExists, "processor '\(name)' already exists; use 'sluice processor replace' to change its query")
            }
            guard lock.withLock({ entries.count }) < Self.processorsMax else {
                throw WireError(.invalidRequest, "the broker holds \(Self.processorsMax) processors, its limit")
            }
            let plan = try plan(sql)
            let source = try sourceTopic(plan)
            for output in [plan.sink] + (plan.lateRecordsTopic.map { [$0] } ?? []) where registry.topic(output) == nil {
                try TopicRegistry.validateName(output)
            }
            guard !validateOnly else { return }
            // Output topics first: a name the registry refuses fails the create, not the stored processor.
            let count = Int32(source.partitions.count)
            _ = try ensureTopic(plan.sink, partitions: count)
            _ = try plan.lateRecordsTopic.map { try ensureTopic($0, partitions: count) }
            let offsets = try startOffsets(source, position)
            let producerId = try producerIds.allocateRange(count: 2 * Int64(source.partitions.count)).lowerBound
            let definition = ProcessorDefinition(name: name, sql: sql, state: .running, generation: 0, producerId: producerId,
                                                 createdMs: ProcessorTaskRunner.nowMs(), startOffsets: offsets,
                                                 repartitionStartOffsets: try repartitionStartOffsets(name, plan, source))
            try store(definition)
            let entry = Entry(definition: definition)
            lock.withLock { entries[name] = entry }
            start(entry, checkpoints: [:])
            logger.info("processor created", metadata: ["processor": "\(name)", "source": "\(plan.source)", "sink": "\(plan.sink)"])
        }
    }

    /// Binds `sql` against the column names seen in the last records of its source, so a misspelt column
    /// is caught with a suggestion.
    func plan(_ sql: String) throws -> ProcessorPlan {
        let sourceName = try Self.bind(sql, options: BindOptions()).source
        let columns = registry.topic(sourceName).map(sampleColumns) ?? []
        return try Self.bind(sql, options: BindOptions(knownColumns: columns.isEmpty ? nil : columns))
    }

    /// Column paths of the last `sampleRecordsPerPartition` records of each partition.
    private func sampleColumns(_ topic: Topic) -> Set<String> {
        var columns = KnownColumns()
        for partition in topic.partitions {
            let log = partition.log
            let end = log.highWatermark
            let from = max(log.logStartOffset, end - Self.sampleRecordsPerPartition)
            guard from < end, let result = try? log.read(from: from, maxBytes: 1 << 20, maxOffset: end) else { continue }
            // A sample: what cannot be read is simply not sampled.
            try? result.bytes.withUnsafeBytes { raw in
                try RecordBatch.forEachBatch(in: raw, limits: log.config.limits) { header, batch in
                    // Control batches are not user data: their values would add made-up columns.
                    guard !header.isControl else { return }
                    for record in (try? RecordBatch.records(in: batch, limits: log.config.limits)) ?? [] where record.offset >= from {
                        if let value = record.value { columns.add(value: value) }
                    }
                }
            }
        }
        return columns.paths
    }

    private func startOffsets(_ source: Topic, _ start: ProcessorStartPosition) throws -> [Int64] {
        try source.partitions.map { try $0.log.offset(of: start) }
    }

    private func store(_ definition: ProcessorDefinition) throws {
        guard let registryPartition else { throw WireError(.unknownServerError, "the processor registry is not loaded") }
        try InternalTopic.write(registryPartition, key: Array(definition.name.utf8), value: definition.encodeValue(),
                                timestampMs: ProcessorTaskRunner.nowMs())
    }

    private func entry(_ name: String) throws -> Entry {
        guard let entry = lock.withLock({ entries[name] }) else {
            throw WireError(.unknownProcessor, "processor '\(name)' does not exist; 'sluice processor list' shows those that do")
        }
        return entry
    }

    func pause(_ name: String) throws {
        try adminLock.withLock {
            let entry = try entry(name)
            var definition = entry.definition
            definition.state = .paused
            try store(definition)
            entry.definition = definition
            for runner in entry.runners { runner.stop(becoming: .paused, checkpoint: true) }
        }
    }

    func resume(_ name: String) throws {
        try adminLock.withLock {
            let entry = try entry(name)
            var definition = entry.definition
            definition.state = .running
            try store(definition)
            entry.definition = definition
            if entry.runners.isEmpty {
                start(entry, checkpoints: [:])
                if let error = entry.error { throw WireError(.invalidQuery, error) }
            } else {
                for runner in entry.runners { runner.resume() }
            }
        }
    }

    /// Starts a new generation from `position` (reset) or with new SQL over the same sink (replace): the
    /// old tasks stop, their checkpoints stop counting, and the new generation writes with a producer id
    /// of its own.
    func restart(_ name: String, from position: ProcessorStartPosition?, sql newSQL: String?) throws {
        try adminLock.withLock {
            let entry = try entry(name)
            var definition = entry.definition
            if let newSQL {
                let plan = try plan(newSQL)
                if let old = entry.plan, old.sink != plan.sink {
                    throw WireError(.invalidQuery, "the new query writes to '\(plan.sink)' but the processor's sink is '\(old.sink)'; replace keeps the sink — create a new processor for another one")
                }
                definition.sql = newSQL
            }
            let plan = try Self.bind(definition.sql, options: BindOptions())
            let source = try sourceTopic(plan)
            for runner in entry.runners { runner.stop(becoming: .stopped, checkpoint: false) }
            if let position { definition.startOffsets = try startOffsets(source, position) } else if entry.plan?.source != plan.source {
                definition.startOffsets = try startOffsets(source, .earliest)
            } else {
                // replace: the new query continues from where the old one had read to (read from the
                // stopped runners, so before they are dropped)
                definition.startOffsets = startOffsets(continuing: entry, source: source)
            }
            entry.runners = []
            definition.generation &+= 1
            definition.repartitionStartOffsets = try repartitionStartOffsets(name, plan, source)
            definition.producerId = try producerIds.allocateRange(count: 2 * Int64(source.partitions.count)).lowerBound
            definition.state = .running
            try store(definition)
            entry.definition = definition
            start(entry, checkpoints: [:])
        }
    }

    private func startOffsets(continuing entry: Entry, source: Topic) -> [Int64] {
        source.partitions.map { partition in
            entry.runners.first { $0.partition == partition.index && $0.role != .aggregator(sourcePartitions: Int32(source.partitions.count)) }?
                .snapshot().inputOffset ?? partition.log.logStartOffset
        }
    }

    func delete(_ name: String, deleteOutput: Bool) throws {
        try adminLock.withLock {
            let entry = try entry(name)
            for runner in entry.runners { runner.stop(becoming: .stopped, checkpoint: false) }
            guard let registryPartition else { return }
            try InternalTopic.write(registryPartition, key: Array(name.utf8), value: nil, timestampMs: ProcessorTaskRunner.nowMs())
            lock.withLock { entries[name] = nil }
            if let checkpointPartition {
                for runner in entry.runners {
                    try InternalTopic.write(checkpointPartition, key: TaskCheckpoint.key(processor: name, partition: runner.taskId),
                                            value: nil, timestampMs: ProcessorTaskRunner.nowMs())
                }
            }
            if registry.topic(Self.repartitionTopicName(name)) != nil {
                try registry.delete(name: Self.repartitionTopicName(name), allowInternal: true)
            }
            if deleteOutput, let plan = entry.plan {
                for topic in [plan.sink] + (plan.lateRecordsTopic.map { [$0] } ?? []) where registry.topic(topic) != nil {
                    try registry.delete(name: topic)
                }
            }
        }
    }

    // MARK: Reading

    struct Summary: Sendable, Hashable {
        var name: String
        var state: String
        var source: String
        var sink: String
    }

    struct TaskDescription: Sendable {
        var partition: Int32
        var inputOffset: Int64
        var endOffset: Int64
        var statistics: TaskStatistics
        var rates: (inPerSecond: Double, outPerSecond: Double, latePerSecond: Double)
        var state: String
        var lastError: String?
    }

    private static func describe(_ runner: ProcessorTaskRunner) -> TaskDescription {
        let snapshot = runner.snapshot()
        var error: String?
        let state: String
        switch snapshot.status {
        case .running: state = "running"
        case .paused: state = "paused"
        case .stopped: state = "stopped"
        case .pausedAtLimit(let message):
            state = "paused"
            error = message
        case .failed(let message):
            state = "failed"
            error = message
        }
        return TaskDescription(partition: runner.partition, inputOffset: snapshot.inputOffset, endOffset: snapshot.endOffset,
                               statistics: snapshot.statistics, rates: snapshot.rates, state: state, lastError: error)
    }

    struct Description: Sendable {
        var summary: Summary
        var sql: String
        var createdMs: Int64
        var lastError: String?
        var tasks: [TaskDescription]
    }

    func list() -> [Summary] {
        lock.withLock { Array(entries.values) }.map(summary).sorted { $0.name < $1.name }
    }

    private func summary(_ entry: Entry) -> Summary {
        let statuses = entry.runners.map(\.currentStatus)
        let state: String
        if entry.error != nil || statuses.contains(where: { if case .failed = $0 { true } else { false } }) {
            state = "failed"
        } else if entry.definition.state == .paused
                    || statuses.contains(where: { if case .pausedAtLimit = $0 { true } else { false } }) {
            state = "paused"
        } else {
            state = "running"
        }
        let plan = entry.plan ?? (try? Self.bind(entry.definition.sql, options: BindOptions()))
        return Summary(name: entry.definition.name, state: state, source: plan?.source ?? "?", sink: plan?.sink ?? "?")
    }

    /// One row per source partition. After a repartition the row joins the router of that partition (input
    /// offset, lag, records in) with the aggregator of the same-numbered repartition partition (results,
    /// late and invalid records, state, watermark).
    func describe(_ name: String) throws -> Description {
        let entry = try entry(name)
        let routers = Dictionary(entry.runners.filter { $0.role == .router }.map { ($0.partition, $0) }, uniquingKeysWith: { first, _ in first })
        let tasks = entry.runners.filter { $0.role != .router }.map { runner -> TaskDescription in
            var row = Self.describe(runner)
            if let router = routers[runner.partition] {
                let input = Self.describe(router)
                row.inputOffset = input.inputOffset
                row.endOffset = input.endOffset
                row.statistics.recordsIn = input.statistics.recordsIn
                row.rates.inPerSecond = input.rates.inPerSecond
                if input.state != "running" { row.state = input.state }
                row.lastError = row.lastError ?? input.lastError
            }
            return row
        }
        return Description(summary: summary(entry), sql: entry.definition.sql, createdMs: entry.definition.createdMs,
                           lastError: entry.error ?? tasks.compactMap(\.lastError).first, tasks: tasks)
    }
}
