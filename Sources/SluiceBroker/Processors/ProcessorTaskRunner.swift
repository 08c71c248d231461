import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SluiceCompression
import SluiceCore
import SluiceLog
import SluiceSQL
import SluiceStreams
import SluiceWire

/// Runs one processor task: reads one partition (of the source, or for an aggregator of the repartition
/// topic) from the task's input offset up to the high watermark, feeds the records to its `TaskLogic`
/// (the query, or routing), writes what that produces (results to the sink, late records to the late
/// topic, routed records to the repartition topic) and checkpoints the logic's state with the input offset.
///
/// Exactly once (storage-format/processors.md): output is written with the task's own producer id, and
/// record *n* the task writes to an output partition in this generation carries sequence *n*.
/// The engine is deterministic, so after a crash the task restores its last checkpoint, replays the input
/// after it, and regenerates exactly the records it wrote before; the ones the output partition already
/// holds (its producer state says how many) are skipped, the rest written. Checkpoints are taken only
/// after every output they count is durable.
///
/// Threads: steps run on the processor thread pool, one at a time per task (`stepLock`); `schedule` may be
/// called from anywhere (append wake-ups, timers, admin requests).
final class ProcessorTaskRunner: @unchecked Sendable {
    enum Status: Sendable, Hashable {
        case running
        case paused
        /// Stopped by its state limit (issue 4: the task pauses, the broker goes on); `resume` retries.
        case pausedAtLimit(String)
        case failed(String)
        case stopped
    }

    struct Settings: Sendable {
        var limits: TaskLimits
        var checkpointIntervalMs: Int64
        var idleTickMs: Int64
        var readBytesMax: Int
        /// Most records per output batch.
        var batchRecordsMax: Int = 10_000
        /// Most bytes of record values per output batch (kept well under `max.message.bytes`).
        var batchBytesMax: Int = 512 * 1024
        /// Pause before a task whose output was unavailable tries again (a stop during the final checkpoint
        /// waits at most this long, too).
        var retryDelayMs: Int64 = 500
    }

    /// What the task does.
    enum Role: Sendable, Hashable {
        /// Runs the query on source partition `partition` (no repartition).
        case query
        /// Routes source partition `partition` into the repartition topic.
        case router
        /// Runs the query on repartition partition `partition`, over records of `sourcePartitions` partitions.
        case aggregator(sourcePartitions: Int32)
    }

    /// The topics a task writes to.
    struct Outputs: Sendable {
        var sink: Topic
        var late: Topic?
        var repartition: Topic?

        /// The topics present, sink first.
        var topics: [Topic] { [sink] + (late.map { [$0] } ?? []) + (repartition.map { [$0] } ?? []) }
    }

    let processor: String
    /// The partition read: of the source, or (aggregators) of the repartition topic.
    let partition: Int32
    let role: Role
    /// The checkpoint key's task number: the partition, plus the partition count for routers.
    let taskId: Int32
    let generation: Int32
    /// Where this generation's task starts without a checkpoint.
    let startOffset: Int64
    let producerId: Int64
    let plan: ProcessorPlan
    let settings: Settings
    private let source: Partition
    private let outputs: Outputs
    private let output: any TaskOutput
    private let pool: NIOThreadPool
    private let eventLoop: any EventLoop
    private let logger: Logger

    /// Guards the fields below `stepLock`'s; never held across I/O.
    private let lock = NIOLock()
    /// Held for the whole of a step, so steps never overlap and `stop` can wait for one to end.
    private let stepLock = NIOLock()
    private var status: Status
    private var scheduled = false
    private var waiterId: UInt64?
    private var timer: Scheduled<Void>?

    // Step state: touched only under `stepLock`.
    private var logic: (any TaskLogic)?
    private var inputOffset: Int64
    private var written: [TaskCheckpoint.OutputPosition: Int64] = [:]
    private var floors: [TaskCheckpoint.OutputPosition: Int64] = [:]
    private var lastCheckpoint: TaskCheckpoint?
    /// A step failed for want of a leader (`TaskOutputUnavailable`): the state built since the last
    /// checkpoint is gone, and the task waits to start again from that checkpoint.
    private var awaitingRetry = false
    /// The furthest input offset a step read to: output for input up to here may be stored already.
    private var furthestRead: Int64
    private var lastCheckpointMs: Int64 = 0
    private var dirty = false
    private var pending: [RoutedRecord] = []

    // Describe figures, under `lock`.
    private var published = TaskStatistics()
    private var publishedOffset: Int64
    private var rateSamples: [(timeMs: Int64, stats: TaskStatistics)] = []

    init(processor: String, role: Role, source: Partition, startOffset: Int64, taskCount: Int32, definition: ProcessorDefinition,
         plan: ProcessorPlan, settings: Settings, outputs: Outputs, output: any TaskOutput, checkpoint: TaskCheckpoint?,
         pool: NIOThreadPool, eventLoop: any EventLoop, logger: Logger) {
        self.processor = processor
        self.partition = source.index
        self.role = role
        self.taskId = Self.taskId(role, partition: source.index, taskCount: taskCount)
        self.generation = definition.generation
        self.startOffset = startOffset
        // One producer id per task: tasks of one processor write to the same output partitions, and
        // each numbers its own records there.
        self.producerId = definition.producerId + Int64(taskId)
        self.plan = plan
        self.settings = settings
        self.source = source
        self.outputs = outputs
        self.output = output
        self.pool = pool
        self.eventLoop = eventLoop
        self.logger = logger
        self.status = definition.state == .paused ? .paused : .running
        let usable = checkpoint.flatMap { $0.generation == definition.generation ? $0 : nil }
        self.lastCheckpoint = usable
        self.inputOffset = usable?.inputOffset ?? startOffset
        self.furthestRead = self.inputOffset
        self.publishedOffset = self.inputOffset
    }

    static func nowMs() -> Int64 { SystemWallClock().nowMilliseconds() }

    /// The task number (checkpoint key, producer id offset): routers come after the other tasks.
    static func taskId(_ role: Role, partition: Int32, taskCount: Int32) -> Int32 {
        role == .router ? taskCount + partition : partition
    }

    // MARK: Control

    /// Runs a step soon unless one is queued already.
    func schedule() {
        let submit: Bool = lock.withLock {
            guard status == .running, !scheduled else { return false }
            scheduled = true
            timer?.cancel()
            timer = nil
            return true
        }
        guard submit else { return }
        pool.submit { [self] state in
            guard state == .active else {
                lock.withLock { scheduled = false }
                return
            }
            runStep()
        }
    }

    /// Stops the task (for pause, delete, shutdown or a leadership move): waits for a running step, then
    /// writes a final checkpoint when `checkpoint` is true, so a restart does not replay. Where tasks take
    /// over from predecessors (`TaskOutput.takesOverTasks`), that checkpoint first reads on to the input's
    /// end when `toInputEnd`; otherwise it covers only what this task stored. The checkpoint's work stops
    /// at `checkpointDeadlineMs` (`nowMs()` time; by default `finalCheckpointWaitMs` from now), which a
    /// caller stopping many tasks shares among them.
    func stop(becoming newStatus: Status, checkpoint: Bool, toInputEnd: Bool = true, checkpointDeadlineMs: Int64? = nil) {
        let previous: Status = lock.withLock {
            defer {
                status = newStatus
                timer?.cancel()
                timer = nil
            }
            return status
        }
        dropWaiter()
        stepLock.withLock {
            // A task that failed is not run again here; one that has not run yet has state to build only
            // where it may have taken over from a predecessor (`TaskOutput.takesOverTasks`).
            let failed: Bool
            switch previous {
            case .failed, .pausedAtLimit: failed = true
            case .running, .paused, .stopped: failed = false
            }
            let readsOn = output.takesOverTasks && toInputEnd
            guard checkpoint, logic != nil || awaitingRetry || (readsOn && !failed) else { return }
            storeFinalCheckpoint(target: readsOn ? max(furthestRead, source.log.highWatermark) : furthestRead,
                                 deadline: checkpointDeadlineMs ?? Self.nowMs() + Self.finalCheckpointWaitMs)
        }
    }

    /// Most time a stop spends on its final checkpoint: catching up after a lost step and waiting for a leader.
    static let finalCheckpointWaitMs: Int64 = 10_000

    /// Writes the checkpoint a stop leaves (a replace in a cluster goes on from it), having read up to
    /// `target`. A task waiting to retry first rebuilds its state: it restores its last checkpoint and reads
    /// again, storing only what is not stored yet, so that the checkpoint covers every output already
    /// written. Where tasks take over from predecessors on other brokers, whose progress after their last
    /// checkpoint is not known here, the target is the input's end as the stop found it. Either way it
    /// stops reading at `deadline` and checkpoints where it got. Writes that find no leader are tried
    /// again until then; what fails for good leaves the last checkpoint (the task then replays from there).
    /// With the deadline passed it tries nothing (each try may wait for a leader).
    private func storeFinalCheckpoint(target: Int64, deadline: Int64) {
        var failure: (any Error)?
        while Self.nowMs() < deadline {
            do {
                if logic == nil { try start(nowMs: Self.nowMs()) }
                while inputOffset < target && Self.nowMs() < deadline { _ = try step() }
                awaitingRetry = false
                if inputOffset < target {
                    logger.warning("processor checkpoint at stop is short of its target: no time left", metadata: [
                        "processor": "\(processor)", "partition": "\(partition)", "offset": "\(inputOffset)", "target": "\(target)",
                    ])
                }
                if dirty { try writeCheckpoint(nowMs: Self.nowMs()) }
                return
            } catch let error as TaskOutputUnavailable {
                logic = nil
                failure = error
                let pauseMs = min(settings.retryDelayMs, max(0, deadline - Self.nowMs()))
                try? eventLoop.scheduleTask(in: .milliseconds(pauseMs)) {}.futureResult.wait()
            } catch {
                failure = error
                break
            }
        }
        logger.warning("processor checkpoint at stop failed", metadata: [
            "processor": "\(processor)", "partition": "\(partition)", "error": "\(failure.map { "\($0)" } ?? "no time left before the deadline")",
        ])
    }

    /// Starts again after a pause or a failure, from the last checkpoint (any later output is found in the
    /// sink and not written twice).
    func resume() {
        stepLock.withLock {
            logic = nil
            lock.withLock { status = .running }
        }
        schedule()
    }

    var currentStatus: Status { lock.withLock { status } }

    /// Figures for `describe`.
    func snapshot() -> (status: Status, inputOffset: Int64, endOffset: Int64, statistics: TaskStatistics, rates: (Double, Double, Double)) {
        let end = source.log.highWatermark
        return lock.withLock {
            var rates = (0.0, 0.0, 0.0)
            if let first = rateSamples.first, let last = rateSamples.last, last.timeMs > first.timeMs {
                let seconds = Double(last.timeMs - first.timeMs) / 1000
                rates = (Double(last.stats.recordsIn - first.stats.recordsIn) / seconds,
                         Double(last.stats.recordsOut - first.stats.recordsOut) / seconds,
                         Double(last.stats.recordsLate - first.stats.recordsLate) / seconds)
            }
            return (status, publishedOffset, end, published, rates)
        }
    }

    // MARK: Steps

    private func runStep() {
        let (again, offset, retry): (Bool, Int64, Bool) = stepLock.withLock {
            lock.withLock { scheduled = false }
            guard lock.withLock({ status == .running }) else { return (false, inputOffset, false) }
            do {
                let more = try step()
                awaitingRetry = false
                return (more, inputOffset, false)
            } catch let error as TaskOutputUnavailable {
                logger.warning("processor task output unavailable; retrying from its last checkpoint",
                               metadata: ["processor": "\(processor)", "partition": "\(partition)", "error": "\(error)"])
                // The in-memory state may be ahead of what was stored: start again from the last checkpoint.
                logic = nil
                awaitingRetry = true
                return (false, inputOffset, true)
            } catch {
                fail(error)
                return (false, inputOffset, false)
            }
        }
        if retry {
            retryLater()
        } else if again {
            schedule()
        } else {
            waitForInput(readTo: offset)
        }
    }

    private func retryLater() {
        lock.withLock {
            guard status == .running else { return }
            timer?.cancel()
            timer = eventLoop.scheduleTask(in: .milliseconds(settings.retryDelayMs)) { [weak self] in self?.schedule() }
        }
    }

    /// One round: input up to `readBytesMax`, or a processing-time tick when there is none. Returns true
    /// when there may be more input right away.
    private func step() throws -> Bool {
        let now = Self.nowMs()
        if logic == nil { try start(nowMs: now) }
        guard var logic = self.logic else { return false }
        self.logic = nil  // so a throw below leaves no half-updated state behind
        let log = source.log
        let end = log.highWatermark
        if inputOffset < log.logStartOffset { inputOffset = log.logStartOffset }
        pending.removeAll(keepingCapacity: true)
        var more = false
        if inputOffset < end {
            let result = try log.read(from: inputOffset, maxBytes: settings.readBytesMax, maxOffset: end)
            do {
                try feed(result.bytes, to: &logic, nowMs: now)
            } catch {
                // What the task had got to when it stopped (its state size at a limit) is worth showing.
                publish(logic.statistics, nowMs: now)
                throw error
            }
            inputOffset = max(inputOffset, result.nextOffset)
            furthestRead = max(furthestRead, inputOffset)
            more = inputOffset < end
        } else {
            try logic.advance(nowMs: now, into: &pending)
        }
        try write(pending)
        let statistics = logic.statistics
        dirty = dirty || !pending.isEmpty || more || statistics != lock.withLock({ published })
        self.logic = logic
        publish(statistics, nowMs: now)
        if dirty && now - lastCheckpointMs >= settings.checkpointIntervalMs { try writeCheckpoint(nowMs: now) }
        return more
    }

    /// Restores the logic from the last checkpoint of this generation, or starts it fresh at the
    /// generation's start offset, and learns how much output each output partition already holds.
    private func start(nowMs: Int64) throws {
        if let checkpoint = lastCheckpoint {
            logic = try makeLogic(restoring: checkpoint.engine, nowMs: nowMs)
            inputOffset = checkpoint.inputOffset
            written = checkpoint.written
        } else {
            // From the very start again (also after a failure), so no input is missed by the new state.
            logic = try makeLogic(restoring: nil, nowMs: nowMs)
            inputOffset = startOffset
            written = [:]
        }
        let positions = outputs.topics.flatMap { topic in topic.partitions.map { TaskCheckpoint.OutputPosition(topic: topic.name, partition: $0.index) } }
        floors = try output.recordsWritten(producerId: producerId, in: positions).filter { $0.value > 0 }
        lastCheckpointMs = nowMs
        dirty = false
    }

    private func makeLogic(restoring bytes: [UInt8]?, nowMs: Int64) throws -> any TaskLogic {
        switch role {
        case .query, .aggregator:
            var inputs: [Int32] = [partition]
            if case .aggregator(let count) = role { inputs = Array(0..<count) }
            var task = try bytes.map { try ProcessorTask(plan: plan, restoring: $0, limits: settings.limits) }
                ?? ProcessorTask(plan: plan, inputPartitions: inputs, limits: settings.limits, nowMs: nowMs)
            if case .aggregator(let count) = role {
                // Records of other groups reach this partition too (a record whose rows belong to groups
                // in several partitions is sent to each); only this partition's groups are aggregated here.
                task.ownership = .init(partition: partition, partitionCount: count)
            }
            return QueryLogic(task: task, afterRepartition: role != .query)
        case .router:
            let task = ProcessorTask(plan: plan, inputPartitions: [partition], limits: settings.limits, nowMs: nowMs)
            guard let repartition = outputs.repartition else { throw WireError(.unknownServerError, "a router task without a repartition topic") }
            let count = Int32(repartition.partitions.count)
            guard let bytes else { return RouterLogic(task: task, partitionCount: count, sourcePartition: partition) }
            guard let restored = RouterLogic(task: task, partitionCount: count, sourcePartition: partition, restoring: bytes) else {
                throw TaskError.corruptCheckpoint("the routing checkpoint of partition \(partition) does not decode")
            }
            return restored
        }
    }

    /// Walks the CRC-checked batches of `bytes` and processes each record at or after `inputOffset`;
    /// control batches are passed over (`step` still moves `inputOffset` past them).
    private func feed(_ bytes: [UInt8], to logic: inout any TaskLogic, nowMs: Int64) throws {
        let limits = source.log.config.limits
        let first = inputOffset
        let partition = self.partition
        try bytes.withUnsafeBytes { raw in
            try RecordBatch.forEachBatch(in: raw, limits: limits) { header, body in
                // A control batch (a leader's no-op entry) is not input: neither its record nor its end
                // reaches the logic, so the output is the same whether or not leadership changed.
                guard !header.isControl else { return }
                if header.codec == CompressionCodec.none {
                    try RecordBatch.visitRecords(section: UnsafeRawBufferPointer(rebasing: body[RecordBatchHeader.size...]),
                                                 header: header, limits: limits) { record in
                        guard record.offset >= first else { return }
                        try logic.process(record, partition: partition, nowMs: nowMs, into: &pending)
                    }
                } else {
                    let section = try RecordBatch.uncompressedSection(body, limits: limits)
                    try section.withUnsafeBytes { section in
                        try RecordBatch.visitRecords(section: section, header: header, limits: limits) { record in
                            guard record.offset >= first else { return }
                            try logic.process(record, partition: partition, nowMs: nowMs, into: &pending)
                        }
                    }
                }
                if header.lastOffset >= first { logic.batchEnded(nowMs: nowMs, into: &pending) }
            }
        }
    }

    private func publish(_ statistics: TaskStatistics, nowMs: Int64) {
        lock.withLock {
            published = statistics
            publishedOffset = inputOffset
            if rateSamples.last.map({ nowMs - $0.timeMs >= Self.rateSampleMs }) ?? true {
                rateSamples.append((nowMs, statistics))
                if rateSamples.count > Self.rateSamplesMax { rateSamples.removeFirst() }
            }
        }
    }

    /// Rates are averaged over the last `rateSamplesMax - 1` sample intervals.
    static let rateSampleMs: Int64 = 1000
    static let rateSamplesMax = 6

    /// Sleeps until the source grows or the idle tick fires. Input that arrived after the step looked
    /// (and before the waiter was registered) would wake no one: checked once more after registering.
    private func waitForInput(readTo offset: Int64) {
        let register: Bool = lock.withLock { status == .running && waiterId == nil }
        guard register else { return }
        defer {
            if source.log.highWatermark > offset {
                dropWaiter()
                schedule()
            }
        }
        let id = source.addWaiter { [weak self] in
            guard let self else { return }
            lock.withLock { waiterId = nil }
            schedule()
        }
        lock.withLock {
            if waiterId == nil { waiterId = id }
            guard status == .running else { return }
            timer?.cancel()
            timer = eventLoop.scheduleTask(in: .milliseconds(settings.idleTickMs)) { [weak self] in
                guard let self else { return }
                dropWaiter()
                schedule()
            }
        }
    }

    /// Unregisters the append waiter, if one is registered.
    private func dropWaiter() {
        let stale: UInt64? = lock.withLock {
            defer { waiterId = nil }
            return waiterId
        }
        if let stale { source.removeWaiter(stale) }
    }

    private func fail(_ error: any Error) {
        let message: String
        let atLimit: Bool
        if case TaskError.stateLimit(let limit) = error {
            message = "\(limit); the task is paused. Raise the broker setting processor-state-bytes-max and restart the broker, or shorten the windows with 'sluice processor replace'"
            atLimit = true
        } else {
            message = ProcessorManager.message(error)
            atLimit = false
        }
        logger.error("processor task stopped", metadata: ["processor": "\(processor)", "partition": "\(partition)", "error": "\(message)"])
        // The in-memory state may be ahead of what was written; resuming restores the last checkpoint.
        logic = nil
        awaitingRetry = false
        lock.withLock { status = atLimit ? .pausedAtLimit(message) : .failed(message) }
    }

    // MARK: Output

    /// Writes `records` in order, per output partition, numbering them from `written`; records an earlier
    /// run of this generation already wrote (below the partition's floor) are skipped. Returns once all
    /// are durable, so a checkpoint taken afterwards never counts output a crash could lose.
    private func write(_ records: [RoutedRecord]) throws {
        guard !records.isEmpty else { return }
        var routed: [TaskCheckpoint.OutputPosition: [RoutedRecord]] = [:]
        for record in records {
            let topic: Topic
            let target: Int32
            switch record.target {
            case .sink, .late:
                guard let chosen = record.target == .sink ? outputs.sink : outputs.late else { continue }
                topic = chosen
                let count = Int32(topic.partitions.count)
                target = record.key.map { key in key.withUnsafeBytes { KeyHash.partition(forKey: $0, partitionCount: count) } }
                    ?? partition % count
            case .repartition(let index):
                guard let repartition = outputs.repartition, index >= 0, Int(index) < repartition.partitions.count else { continue }
                topic = repartition
                target = index
            }
            routed[.init(topic: topic.name, partition: target), default: []].append(record)
        }
        var batches: [(TaskCheckpoint.OutputPosition, [RecordBatch])] = []
        var counts: [TaskCheckpoint.OutputPosition: Int64] = [:]
        for (position, list) in routed.sorted(by: { $0.key < $1.key }) {
            let first = written[position] ?? 0
            let skip = Int(max(0, min(Int64(list.count), (floors[position] ?? 0) - first)))
            var sequence = first + Int64(skip)
            var index = skip
            var built: [RecordBatch] = []
            while index < list.count {
                let (batch, count) = try Self.batch(list, from: index, sequence: sequence, producerId: producerId, settings: settings)
                built.append(batch)
                index += count
                sequence += Int64(count)
            }
            if !built.isEmpty { batches.append((position, built)) }
            counts[position] = first + Int64(list.count)
        }
        try output.append(batches)
        // Counted only once stored: after a failed append the step is redone from the last checkpoint.
        for (position, count) in counts { written[position] = count }
    }

    /// One idempotent batch of `list[index...]`, as many records as the batch bounds allow.
    private static func batch(_ list: [RoutedRecord], from index: Int, sequence: Int64, producerId: Int64,
                              settings: Settings) throws -> (RecordBatch, Int) {
        guard sequence + Int64(list.count) <= Int64(Int32.max) else {
            throw WireError(.outOfOrderSequence, "the processor generation has written 2^31 records to one output partition; reset it to start a new generation")
        }
        var records: [Record] = []
        var bytes = 0
        var end = index
        while end < list.count && records.count < settings.batchRecordsMax && (records.isEmpty || bytes < settings.batchBytesMax) {
            let record = list[end]
            bytes += (record.value?.count ?? 0) + (record.key?.count ?? 0)
            records.append(Record(offset: Int64(records.count), timestamp: record.timestampMs, key: record.key, value: record.value,
                                  headers: record.headers))
            end += 1
        }
        let batch = try RecordBatch.build(records: records, producerId: producerId, producerEpoch: 0, baseSequence: Int32(sequence))
        return (batch, records.count)
    }

    private func writeCheckpoint(nowMs: Int64) throws {
        guard let logic else { return }
        let checkpoint = TaskCheckpoint(generation: generation, inputOffset: inputOffset, written: written, engine: logic.checkpoint())
        guard checkpoint.engine.count <= TaskCheckpoint.engineBytesMax else {
            throw WireError(.messageTooLarge, "the task's state checkpoint is \(checkpoint.engine.count) bytes, above the \(TaskCheckpoint.engineBytesMax)-byte limit; lower the state limit or shorten the windows, then reset")
        }
        try output.storeCheckpoint(key: TaskCheckpoint.key(processor: processor, partition: taskId),
                                   value: checkpoint.encodeValue(), timestampMs: nowMs)
        lastCheckpoint = checkpoint
        lastCheckpointMs = nowMs
        dirty = false
    }
}
