import SluiceSQL

// Aggregating queries: one record in three phases (see ProcessorTask.swift, steps 4–6). Collect and check
// touch only scratch buffers, so a throw leaves the task unchanged; apply cannot fail.

extension ProcessorTask {
    /// What the collect phase learnt about a record.
    struct RecordScan {
        /// The highest readable event time among the record's rows, before WHERE (for the watermark).
        var maxEventTimeMs: Int64? = nil
        /// A row passed WHERE but had no readable event time.
        var invalid = false
        /// A row passed WHERE but was behind the watermark.
        var late = false
        /// Window updates the rows will make (the `outputsPerRecordMax` bound).
        var updates = 0
    }

    mutating func processAggregating(_ record: InputRecordView, nowMs: Int64,
                                     into output: inout [OutputRecord]) throws(TaskError) {
        let scan = try collectRows(record, nowMs: nowMs)
        try checkStateLimit()
        counters.recordsIn += 1
        if scan.invalid { counters.recordsInvalid += 1 }
        if compiled.usesEventTimeWatermark {
            if let maxEventTimeMs = scan.maxEventTimeMs {
                tracker.observe(partition: record.partition, eventTimeMs: maxEventTimeMs, nowMs: nowMs)
            } else {
                tracker.touch(partition: record.partition, nowMs: nowMs)
            }
        }
        applyPendingRows(record, into: &output)
        if scan.late {
            counters.recordsLate += 1
            if compiled.plan.lateRecordsTopic != nil { output.append(Self.lateCopy(of: record)) }
        }
    }

    /// Phase 1: evaluates every row into `pending` / `pendingValues`.
    private mutating func collectRows(_ record: InputRecordView, nowMs: Int64) throws(TaskError) -> RecordScan {
        pending.removeAll(keepingCapacity: true)
        pendingValues.removeAll(keepingCapacity: true)
        var scan = RecordScan()
        let compiled = self.compiled
        let watermark = state.watermark
        let limit = limits.outputsPerRecordMax
        try Self.forEachRow(compiled, fields: fieldValues, record: record, nowMs: nowMs) { row throws(TaskError) in
            let eventTimeMs = compiled.isWindowed ? compiled.eventTime(of: row) : 0
            if let eventTimeMs { scan.maxEventTimeMs = max(scan.maxEventTimeMs ?? eventTimeMs, eventTimeMs) }
            if let filter = compiled.filter, !Evaluator.isTrue(filter, in: row) { return }
            let key = compiled.groupKey(of: row)
            guard owns(key) else { return }
            guard let eventTimeMs else {
                scan.invalid = true
                return
            }
            if compiled.isWindowed, eventTimeMs < watermark {
                scan.late = true
                return
            }
            scan.updates += compiled.windowCount(at: eventTimeMs)
            guard scan.updates <= limit else {
                throw .tooManyOutputs(partition: record.partition, offset: record.offset, limit: limit)
            }
            let valuesStart = pendingValues.count
            for argument in compiled.argumentAccess { pendingValues.append(argument.value(in: row)) }
            pending.append(PendingRow(key: key, valuesStart: valuesStart, eventTimeMs: eventTimeMs))
        }
        return scan
    }

    private func values(of row: PendingRow) -> ArraySlice<JSONValue> {
        pendingValues[row.valuesStart..<(row.valuesStart + compiled.functions.count)]
    }

    /// Phase 2: throws `stateLimit` when the pending rows could push the state past its bound. Checks a
    /// lookup-free worst case first; only near the limit does it look at which windows and groups exist.
    private func checkStateLimit() throws(TaskError) {
        guard !pending.isEmpty else { return }
        var worstCase = 0
        for row in pending {
            let perWindow = state.worstCaseGrowth(key: row.key, values: values(of: row), session: compiled.isSession)
            worstCase += perWindow * compiled.windowCount(at: row.eventTimeMs)
        }
        if state.stateBytes + worstCase <= state.stateBytesMax { return }
        var bound = 0
        for row in pending {
            let values = values(of: row)
            switch compiled.assigner {
            case .none:
                bound += state.growthBound(key: row.key, window: TaskPlan.unboundedWindow, values: values)
            case .tumbling(let tumbling):
                bound += state.growthBound(key: row.key, window: tumbling.window(containing: row.eventTimeMs), values: values)
            case .hopping(let hopping):
                hopping.forEachWindow(containing: row.eventTimeMs) { window in
                    bound += state.growthBound(key: row.key, window: window, values: values)
                }
            case .session(let gapMs):
                bound += state.sessionGrowthBound(key: row.key, eventTimeMs: row.eventTimeMs, gapMs: gapMs, values: values)
            }
        }
        guard state.stateBytes + bound <= state.stateBytesMax else {
            throw .stateLimit(StateLimitExceeded(stateBytes: state.stateBytes, stateBytesMax: state.stateBytesMax,
                                                 requestedBytes: bound))
        }
    }

    /// Phase 3: adds the pending rows to the store; under EMIT CHANGES appends each updated result.
    private mutating func applyPendingRows(_ record: InputRecordView, into output: inout [OutputRecord]) {
        for index in pending.indices {
            let row = pending[index]
            let values = values(of: row)
            sequence += 1
            switch compiled.assigner {
            case .none:
                // Non-windowed results carry the time of the record that changed them.
                let change = state.addUnchecked(key: row.key, window: TaskPlan.unboundedWindow, values: values,
                                                eventTimeMs: 0, sequence: sequence)
                if let change { appendResult(change, timestampMs: record.timestampMs, into: &output) }
            case .tumbling(let tumbling):
                addToWindow(row, tumbling.window(containing: row.eventTimeMs), values, into: &output)
            case .hopping(let hopping):
                hopping.forEachWindow(containing: row.eventTimeMs) { window in
                    addToWindow(row, window, values, into: &output)
                }
            case .session(let gapMs):
                let change = state.addToSessionUnchecked(key: row.key, eventTimeMs: row.eventTimeMs, gapMs: gapMs,
                                                         values: values, sequence: sequence)
                if let change { appendResult(change, timestampMs: change.window.end - 1, into: &output) }
            }
        }
    }

    private mutating func addToWindow(_ row: PendingRow, _ window: Window, _ values: ArraySlice<JSONValue>,
                                      into output: inout [OutputRecord]) {
        let change = state.addUnchecked(key: row.key, window: window, values: values, eventTimeMs: row.eventTimeMs,
                                        sequence: sequence)
        if let change { appendResult(change, timestampMs: window.end - 1, into: &output) }
    }
}

extension TaskPlan {
    /// The row's event time in `eventTimeRangeMs`, or nil when it is NULL, unreadable or out of range.
    func eventTime(of row: RowContext) -> Int64? {
        switch time {
        case .expression?:
            return timeAccess.flatMap { EventTime.milliseconds(from: $0.value(in: row)) }
        case .recordTimestamp?:
            return eventTimeRangeMs.contains(row.record.timestampMs) ? row.record.timestampMs : nil
        case .processingTime?:
            return eventTimeRangeMs.contains(row.nowMs) ? row.nowMs : nil
        case nil:
            return 0
        }
    }

    /// The group key as the store keeps it: `.null` without keys, the value itself for one, an array for several.
    func groupKey(of row: RowContext) -> JSONValue {
        if keyAccess.isEmpty { return .null }
        if keyAccess.count == 1 { return keyAccess[0].value(in: row) }
        return .array(keyAccess.map { $0.value(in: row) })
    }
}
