import SluiceSQL

// The engine that runs one processor plan over one task's input partitions (issue 4, section 2).
//
// ## Determinism
// The broker gets exactly-once output by replaying input from a checkpoint and relying on the task to produce
// byte-identical outputs in identical order (it derives idempotent sequence numbers from output positions).
// So the task reads no clock (processing time is the `nowMs` argument), uses no randomness, and never lets
// hash order reach its output: results that leave together are sorted by window end, key, window start
// (`WindowState.emissionOrder`); the checkpoint writes windows and keys sorted too.
//
// ## One record, step by step (`process`)
// 1. Extract every JSON field the plan reads in one pass. A value that is not JSON when the plan reads fields
//    counts in `recordsInvalid` and is skipped; an absent value (a tombstone) has every field NULL.
// 2. Rows: the record, or one row per element of the UNNEST array.
// 3. Stateless plans: each row that passes WHERE becomes an output (key and timestamp of the input).
// 4. Aggregating plans: per row, the event time (before WHERE: the watermark counts every row), then WHERE,
//    then lateness (`time < watermark` as of the previous step: not aggregated, counted once per record in
//    `recordsLate`, the input copied to `late_records` if set), then the group key and aggregate arguments.
//    A row that passes WHERE but whose time is NULL or unreadable counts the record in `recordsInvalid`.
// 5. All the rows' effects are checked before any is applied: more than `outputsPerRecordMax` window
//    updates throws `tooManyOutputs`, state that would pass `stateBytesMax` throws `stateLimit`. A throw
//    leaves the task and `output` exactly as they were, so the runtime can retry the record later (for
//    example in a task restored from this task's checkpoint with higher limits).
// 6. Apply the rows (EMIT CHANGES appends an updated result per row and window), then move the watermark
//    (closing windows: EMIT FINAL / EVERY results) and fire the EMIT EVERY timer.
//
// Outputs of one call are in this order: the record's own results, its late copy, results of windows the
// watermark closed, early results.

/// Runs a `ProcessorPlan` over the records of one task's input partitions. A deterministic value type: see
/// the notes at the top of ProcessorTask.swift. Not thread-safe; one owner drives it.
public struct ProcessorTask: Sendable {
    let compiled: TaskPlan
    let limits: TaskLimits
    let inputPartitions: [Int32]
    var tracker: WatermarkTracker
    var state: WindowState
    /// EMIT EVERY: the processing time at which early results are next due. Invariant: a multiple of the
    /// interval (timers are aligned to the epoch, so they do not depend on when the task started).
    var nextEarlyEmitMs: Int64
    /// Arrival order of aggregated rows, for FIRST_VALUE / LAST_VALUE ties.
    var sequence: Int64 = 0
    /// The counters; `stateBytes` and `watermarkMs` are filled in by `statistics`.
    var counters = TaskStatistics()
    /// After a repartition: the share of groups this task aggregates (ProcessorTask+Routing.swift); rows of
    /// other groups are skipped without a trace. Not part of the checkpoint: the runtime sets it on restore.
    public var ownership: Ownership?

    // Scratch buffers reused across records so the hot path does not allocate. Not part of the checkpoint.
    var fieldValues: [JSONValue] = []
    var pending: [PendingRow] = []
    var pendingValues: [JSONValue] = []

    /// One aggregated row waiting to be applied: its key, its arguments in `pendingValues`, its event time.
    struct PendingRow {
        var key: JSONValue
        var valuesStart: Int
        var eventTimeMs: Int64
    }

    /// A task at the start of its input.
    /// - Parameters:
    ///   - plan: a plan from `Binder.bind` (its invariants are preconditions here).
    ///   - inputPartitions: the partitions this task reads (unique, not empty); records of others are refused.
    ///   - nowMs: processing time now; idle timeouts and EMIT EVERY timers count from it.
    public init(plan: ProcessorPlan, inputPartitions: [Int32], limits: TaskLimits = TaskLimits(), nowMs: Int64) {
        let compiled = TaskPlan(plan)
        self.compiled = compiled
        self.limits = limits
        self.inputPartitions = inputPartitions
        tracker = WatermarkTracker(partitions: inputPartitions, allowedLatenessMs: plan.allowedLatenessMs,
                                   idleTimeoutMs: plan.idleTimeoutMs, nowMs: nowMs)
        state = WindowState(functions: compiled.functions, mode: compiled.mode,
                            stateBytesMax: max(1, limits.stateBytesMax))
        nextEarlyEmitMs = compiled.earlyIntervalMs.map { Self.nextBoundary(after: nowMs, intervalMs: $0) } ?? 0
    }

    /// The counters, the state size and the watermark (`WatermarkTracker.none` for queries without windows).
    public var statistics: TaskStatistics {
        var statistics = counters
        statistics.stateBytes = state.stateBytes
        statistics.watermarkMs = compiled.isWindowed ? state.watermark : WatermarkTracker.none
        return statistics
    }

    /// Feeds one record and appends what it produced to `output`: results for the sink, the record itself for
    /// `late_records`, and results of windows the watermark closed, in that order (deterministic).
    ///
    /// - Throws: `TaskError.stateLimit` or `.tooManyOutputs`, leaving the task and `output` unchanged.
    /// - Precondition: `record.partition` is one of the task's input partitions.
    public mutating func process(_ record: InputRecordView, nowMs: Int64,
                                 into output: inout [OutputRecord]) throws(TaskError) {
        precondition(inputPartitions.contains(record.partition),
                     "partition \(record.partition) is not an input of this task (\(inputPartitions))")
        if extractFields(record) {
            if compiled.isAggregating {
                try processAggregating(record, nowMs: nowMs, into: &output)
            } else {
                try processStateless(record, nowMs: nowMs, into: &output)
            }
        } else {
            counters.recordsIn += 1
            counters.recordsInvalid += 1
            if compiled.usesEventTimeWatermark { tracker.touch(partition: record.partition, nowMs: nowMs) }
        }
        advanceTime(nowMs: nowMs, into: &output)
    }

    /// Lets processing time pass without a record: idle partitions stop holding the watermark back
    /// (`idle_timeout`), PROCTIME windows close, EMIT EVERY early results fall due. Appends the results.
    public mutating func advance(nowMs: Int64, into output: inout [OutputRecord]) throws(TaskError) {
        advanceTime(nowMs: nowMs, into: &output)
    }

    /// End of input (`sluice processor test`): closes every open window and appends its final result
    /// (EMIT FINAL and EVERY; under EMIT CHANGES every result has already left). Later records are late.
    public mutating func finish(into output: inout [OutputRecord]) {
        guard compiled.isWindowed else { return }
        for result in state.advance(to: .max) {
            appendResult(result, timestampMs: result.window.end - 1, into: &output)
        }
    }

    /// Extracts the plan's fields into `fieldValues`; false when the value is not JSON.
    mutating func extractFields(_ record: InputRecordView) -> Bool {
        guard let extractor = compiled.extractor else { return true }
        guard let value = record.value else {  // no value (a tombstone): every field is missing, so NULL
            if fieldValues.count != extractor.paths.count { fieldValues = Array(repeating: .null, count: extractor.paths.count) }
            for index in fieldValues.indices { fieldValues[index] = .null }
            return true
        }
        do {
            try extractor.extract(from: value, into: &fieldValues)
            return true
        } catch {
            return false
        }
    }

    /// Calls `body` with each row of the record: the record itself, or one row per UNNEST element (none when
    /// the UNNEST value is not an array).
    static func forEachRow(_ compiled: TaskPlan, fields: [JSONValue], record: InputRecordView, nowMs: Int64,
                           _ body: (RowContext) throws(TaskError) -> Void) throws(TaskError) {
        var row = RowContext(fields: fields, record: record, element: Optional.none, nowMs: nowMs)
        guard let unnest = compiled.unnest else {
            try body(row)
            return
        }
        guard case .array(let elements) = Evaluator.evaluate(unnest, in: row) else { return }
        for element in elements {
            row.element = element
            try body(row)
        }
    }

    // MARK: Stateless

    private mutating func processStateless(_ record: InputRecordView, nowMs: Int64,
                                           into output: inout [OutputRecord]) throws(TaskError) {
        let start = output.count
        var produced = 0
        let compiled = self.compiled
        let limit = limits.outputsPerRecordMax
        do {
            try Self.forEachRow(compiled, fields: fieldValues, record: record, nowMs: nowMs) { row throws(TaskError) in
                if let filter = compiled.filter, !Evaluator.isTrue(filter, in: row) { return }
                produced += 1
                guard produced <= limit else {
                    throw .tooManyOutputs(partition: record.partition, offset: record.offset, limit: limit)
                }
                output.append(compiled.statelessOutput(record, row: row))
            }
        } catch {
            output.removeSubrange(start...)
            throw error
        }
        counters.recordsIn += 1
        counters.recordsOut += Int64(produced)
    }

    // MARK: Time

    /// Moves the watermark to where it is at `nowMs`, closes the windows it passed, fires the EMIT EVERY timer.
    private mutating func advanceTime(nowMs: Int64, into output: inout [OutputRecord]) {
        guard compiled.isWindowed else { return }
        let watermark = compiled.usesEventTimeWatermark ? tracker.advance(nowMs: nowMs) : nowMs
        if watermark > state.watermark {
            for result in state.advance(to: watermark) {
                appendResult(result, timestampMs: result.window.end - 1, into: &output)
            }
        }
        if let intervalMs = compiled.earlyIntervalMs, nowMs >= nextEarlyEmitMs {
            for result in state.takeEarlyResults() {
                appendResult(result, timestampMs: result.window.end - 1, into: &output)
            }
            nextEarlyEmitMs = Self.nextBoundary(after: nowMs, intervalMs: intervalMs)
        }
    }

    /// The first multiple of `intervalMs` after `nowMs` (Int64.max when there is none).
    static func nextBoundary(after nowMs: Int64, intervalMs: Int64) -> Int64 {
        let (next, overflowed) = floorDivide(nowMs, intervalMs).addingReportingOverflow(1)
        let (boundary, overflow) = next.multipliedReportingOverflow(by: intervalMs)
        return overflowed || overflow ? .max : boundary
    }

    /// Appends a result that passes HAVING, as the sink record.
    mutating func appendResult(_ result: WindowResult, timestampMs: Int64, into output: inout [OutputRecord]) {
        guard let record = compiled.resultOutput(result, timestampMs: timestampMs) else { return }
        output.append(record)
        counters.recordsOut += 1
    }
}
