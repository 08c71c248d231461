// Writing the window store into a processor checkpoint and reading it back
// (storage-format/processor-checkpoint.md, "Window state").
//
// Only windows, groups and accumulators are written. Session lists, the heap of window ends and
// `stateBytes` are derived from them on restore, so a checkpoint cannot hold them inconsistently: every
// session of a key is exactly a window holding a group of that key, and the byte count is recomputed with
// the same charges the live store uses (the tests check that the two agree).

extension WindowState {
    /// Writes the store: watermark, then windows in (end, start) order, each with its groups in key order.
    func write(to writer: inout CheckpointWriter) {
        writer.i64(watermark)
        writer.count(windows.count)
        for window in windows.keys.sorted() {
            let groups = windows[window] ?? [:]
            writer.i64(window.start)
            writer.i64(window.end)
            writer.count(groups.count)
            for key in groups.keys.sorted(by: { JSONValue.compare($0, $1) < 0 }) {
                writer.u8(changed.contains(GroupID(window: window, key: key)) ? 1 : 0)
                writer.value(key)
                for accumulator in groups[key] ?? [] { writer.accumulator(accumulator) }
            }
        }
    }

    /// Reads a store written by `write(to:)` for a task with these `functions`, `mode` and session gap.
    /// - Parameter onlyWindow: when set (non-windowed queries), the one window allowed.
    static func read(from reader: inout CheckpointReader, functions: [AggregateFunction], mode: EmitMode,
                     sessionGapMs: Int64?, onlyWindow: Window?, stateBytesMax: Int) throws(TaskError) -> WindowState {
        var state = WindowState(functions: functions, mode: mode, stateBytesMax: stateBytesMax)
        state.watermark = try reader.i64("store watermark")
        // A window takes at least 20 bytes (start, end, group count).
        let windowCount = try reader.count("window count", minimumBytes: 20)
        for _ in 0..<windowCount {
            let start = try reader.i64("window start"), end = try reader.i64("window end")
            guard start < end else { throw CheckpointReader.corrupt("window [\(start), \(end)) is empty") }
            let window = Window(start: start, end: end)
            guard state.windows[window] == nil else { throw CheckpointReader.corrupt("window \(window) repeats") }
            if let onlyWindow, window != onlyWindow {
                throw CheckpointReader.corrupt("window \(window) in the checkpoint of a query without windows")
            }
            // A group takes at least 2 bytes (flags, key tag) plus one per accumulator.
            let groupCount = try reader.count("group count", minimumBytes: 2 + functions.count)
            guard groupCount > 0 else { throw CheckpointReader.corrupt("window \(window) has no groups") }
            var groups: [JSONValue: [Accumulator]] = [:]
            groups.reserveCapacity(groupCount)
            for _ in 0..<groupCount {
                let flags = try reader.u8("group flags")
                guard flags & ~1 == 0, flags == 0 || mode == .periodic else {
                    throw CheckpointReader.corrupt("group flags \(flags) are not valid here")
                }
                let key = try reader.value("group key")
                var accumulators: [Accumulator] = []
                accumulators.reserveCapacity(functions.count)
                for function in functions { accumulators.append(try reader.accumulator(function)) }
                guard groups.updateValue(accumulators, forKey: key) == nil else {
                    throw CheckpointReader.corrupt("group \(key) repeats in window \(window)")
                }
                if flags == 1 { state.changed.insert(GroupID(window: window, key: key)) }
            }
            state.windows[window] = groups
            state.ends.push(window)
        }
        if let sessionGapMs { try state.rebuildSessions(gapMs: sessionGapMs) }
        state.stateBytes = state.computedStateBytes()
        return state
    }

    /// Derives each key's sessions from the windows that hold a group of that key.
    private mutating func rebuildSessions(gapMs: Int64) throws(TaskError) {
        var windowsByKey: [JSONValue: [Window]] = [:]
        for (window, groups) in windows {
            for key in groups.keys { windowsByKey[key, default: []].append(window) }
        }
        for (key, keyWindows) in windowsByKey {
            guard let keySessions = SessionWindows(gapMs: gapMs, sessions: keyWindows.sorted()) else {
                throw CheckpointReader.corrupt("the sessions of key \(key) overlap or are shorter than the gap")
            }
            sessions[key] = keySessions
        }
    }

    /// The bytes the live store would have charged for what it holds now.
    func computedStateBytes() -> Int {
        var bytes = 0
        for groups in windows.values {
            bytes += Self.windowOverheadBytes
            for (key, accumulators) in groups { bytes += Self.entryBytes(key: key, accumulators: accumulators) }
        }
        for (key, keySessions) in sessions {
            bytes += Self.sessionKeyOverheadBytes + key.approximateBytes + keySessions.sessions.count * Self.sessionOverheadBytes
        }
        return bytes
    }
}
