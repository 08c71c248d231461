// The keyed window store of one task (issue 4, section 2: EMIT FINAL / EMIT CHANGES, bounded memory).
//
// Layout: window → group key → one accumulator per aggregate of the query, plus a min-heap of window ends
// (lazy: a window merged away or already emitted is skipped when popped) and, for session windows, each key's
// open sessions. `advance(to:)` pops every window whose end the watermark has reached, emits its groups and
// frees them. Every byte of state is charged to `stateBytes`; an `add` that could push it past
// `stateBytesMax` throws `StateLimitExceeded` and changes nothing, so the runtime can pause the task.
//
// A processor task adds several rows per input record (a HOP covers several windows, UNNEST makes several
// rows) and must refuse the record as a whole or not at all. It therefore uses the two halves separately:
// `growthBound`/`worstCaseGrowth` to check the limit for all rows first, then `addUnchecked` /
// `addToSessionUnchecked` to apply them (WindowState+Task, ProcessorTask).
//
// The store does not decide lateness: the caller drops records `WatermarkTracker.isLate` reports. Adding to a
// window the watermark has already closed is therefore a programmer error and traps.

/// When results leave the store.
public enum EmitMode: Hashable, Sendable {
    /// One result per (group, window), when the watermark reaches the window's end.
    case final
    /// An updated result on every change; `advance(to:)` only frees closed windows.
    case changes
    /// As `.final`, and the store also remembers which groups changed, so that `takeEarlyResults()` can return
    /// their current results (EMIT EVERY).
    case periodic
}

/// One result: a group's aggregates over a window.
public struct WindowResult: Hashable, Sendable, CustomStringConvertible {
    /// The group key (the value itself for one GROUP BY column, an array for several, `.null` for none).
    public var key: JSONValue
    public var window: Window
    /// One value per aggregate, in the order of `WindowState.functions`.
    public var values: [JSONValue]

    public init(key: JSONValue, window: Window, values: [JSONValue]) {
        self.key = key
        self.window = window
        self.values = values
    }

    public var description: String { "\(key) \(window) \(values)" }
}

/// Thrown by `WindowState.add` when the state limit would be exceeded. The state is unchanged.
public struct StateLimitExceeded: Error, Hashable, Sendable, CustomStringConvertible {
    /// The state size when the row was refused.
    public var stateBytes: Int
    /// The bound the row could have pushed it past.
    public var stateBytesMax: Int
    /// What the row could have added.
    public var requestedBytes: Int

    public var description: String {
        "processor state limit reached: \(stateBytes) of \(stateBytesMax) bytes in use, a row needs up to \(requestedBytes) more"
    }
}

/// Per-task window state. A value type owned by the task; not shared between threads.
public struct WindowState: Sendable {
    /// The aggregates of the query, in SELECT order.
    public let functions: [AggregateFunction]
    public let mode: EmitMode
    /// The bound on `stateBytes`.
    public let stateBytesMax: Int

    /// Approximate bytes held by all open windows, groups, accumulators and sessions.
    /// Invariant: `stateBytes <= stateBytesMax`, and 0 when nothing is open.
    public internal(set) var stateBytes = 0
    /// The watermark of the last `advance(to:)`: every window ending at or before it has been emitted and freed.
    public internal(set) var watermark = WatermarkTracker.none

    /// Bytes charged per (window, key) entry on top of the key and accumulators (hash slot, array header).
    public static let entryOverheadBytes = 64
    /// Bytes charged per open window on top of its entries.
    public static let windowOverheadBytes = 96
    /// Bytes charged per open session of a key, and per key with open sessions.
    public static let sessionOverheadBytes = 16
    public static let sessionKeyOverheadBytes = 64

    // Internal, not private: the checkpoint code (WindowState+Checkpoint.swift) reads and rebuilds them.
    var windows: [Window: [JSONValue: [Accumulator]]] = [:]
    var ends = WindowHeap()
    var sessions: [JSONValue: SessionWindows] = [:]
    /// `.periodic` only: the groups changed since `takeEarlyResults()` last returned them.
    /// Invariant: every member names an open group.
    var changed: Set<GroupID> = []

    /// One (window, key) group.
    struct GroupID: Hashable, Sendable {
        var window: Window
        var key: JSONValue
    }

    /// The bytes of one empty accumulator per function: part of every new entry's bound.
    private let emptyAccumulatorsBytes: Int
    /// The functions whose state can grow with a row (COUNT DISTINCT, MIN, MAX, FIRST/LAST_VALUE), by index.
    private let growingFunctionIndices: [Int]

    public init(functions: [AggregateFunction], mode: EmitMode = .final, stateBytesMax: Int = 256 << 20) {
        precondition(stateBytesMax > 0, "the state limit is positive")
        self.functions = functions
        emptyAccumulatorsBytes = functions.reduce(0) { $0 + Accumulator($1).approximateBytes }
        growingFunctionIndices = functions.indices.filter { Accumulator(functions[$0]).growthBound(adding: "x") > 0 }
        self.mode = mode
        self.stateBytesMax = stateBytesMax
    }

    /// The number of open windows.
    public var windowCount: Int { windows.count }
    /// The number of open (window, key) groups.
    public var groupCount: Int { windows.values.reduce(0) { $0 + $1.count } }

    // MARK: Adding rows

    /// Adds one row to `key`'s group in `window` (a tumbling or hopping window).
    /// - Parameter values: one argument value per aggregate, in the order of `functions`.
    /// - Returns: the group's updated result in `.changes` mode; nil in `.final` mode.
    @discardableResult
    public mutating func add(key: JSONValue, window: Window, values: [JSONValue], eventTimeMs: Int64,
                             sequence: Int64 = 0) throws(StateLimitExceeded) -> WindowResult? {
        try reserve(upTo: growthBound(key: key, window: window, values: values[...]))
        return addUnchecked(key: key, window: window, values: values[...], eventTimeMs: eventTimeMs, sequence: sequence)
    }

    /// `add` without the state limit check: the caller checked `growthBound` (or `worstCaseGrowth`) first.
    mutating func addUnchecked(key: JSONValue, window: Window, values: ArraySlice<JSONValue>, eventTimeMs: Int64,
                               sequence: Int64) -> WindowResult? {
        precondition(values.count == functions.count, "one argument per aggregate")
        precondition(window.end > watermark, "window \(window) was closed by watermark \(watermark)")
        apply(key: key, window: window, values: values, eventTimeMs: eventTimeMs, sequence: sequence)
        return changeResult(key: key, window: window)
    }

    /// Adds one row to `key`'s session window with `gapMs`, merging sessions the row bridges.
    /// - Returns: the updated result of the (possibly merged) session in `.changes` mode; nil in `.final` mode.
    @discardableResult
    public mutating func addToSession(key: JSONValue, eventTimeMs: Int64, gapMs: Int64, values: [JSONValue],
                                      sequence: Int64 = 0) throws(StateLimitExceeded) -> WindowResult? {
        try reserve(upTo: sessionGrowthBound(key: key, eventTimeMs: eventTimeMs, gapMs: gapMs, values: values[...]))
        return addToSessionUnchecked(key: key, eventTimeMs: eventTimeMs, gapMs: gapMs, values: values[...],
                                     sequence: sequence)
    }

    /// `addToSession` without the state limit check: the caller checked `sessionGrowthBound` first.
    mutating func addToSessionUnchecked(key: JSONValue, eventTimeMs: Int64, gapMs: Int64, values: ArraySlice<JSONValue>,
                                        sequence: Int64) -> WindowResult? {
        precondition(values.count == functions.count, "one argument per aggregate")
        precondition(eventTimeMs >= watermark, "record at \(eventTimeMs) is late for watermark \(watermark)")
        let isNewKey = sessions[key] == nil
        let sessionCountBefore = sessions[key]?.sessions.count ?? 0
        let update = sessions[key, default: SessionWindows(gapMs: gapMs)].add(eventTimeMs)
        let sessionCountAfter = sessions[key]?.sessions.count ?? 0
        stateBytes += (sessionCountAfter - sessionCountBefore) * Self.sessionOverheadBytes
        if isNewKey { stateBytes += Self.sessionKeyOverheadBytes + key.approximateBytes }

        if !update.merged.isEmpty {
            var combined: [Accumulator]? = nil
            for old in update.merged {
                guard let accumulators = removeEntry(key: key, window: old) else { continue }
                combined = Self.merging(combined, accumulators)
            }
            if let combined { insertMerged(key: key, window: update.window, accumulators: combined) }
        }
        apply(key: key, window: update.window, values: values, eventTimeMs: eventTimeMs, sequence: sequence)
        return changeResult(key: key, window: update.window)
    }

    private func changeResult(key: JSONValue, window: Window) -> WindowResult? {
        guard mode == .changes, let accumulators = windows[window]?[key] else { return nil }
        return WindowResult(key: key, window: window, values: accumulators.map(\.result))
    }

    /// The most one row can add to `window` (a tumbling or hopping window): a new window, a new entry, and each
    /// accumulator's growth. Two lookups; see `worstCaseGrowth` for a bound without any.
    func growthBound(key: JSONValue, window: Window, values: ArraySlice<JSONValue>) -> Int {
        var bound = 0
        let group = windows[window]
        if group == nil { bound += Self.windowOverheadBytes }
        if let accumulators = group?[key] {
            for (index, accumulator) in accumulators.enumerated() {
                bound += accumulator.growthBound(adding: values[values.startIndex + index])
            }
        } else {
            bound += newEntryBound(key: key, values: values)
        }
        return bound
    }

    /// The most one row can add to `key`'s sessions.
    func sessionGrowthBound(key: JSONValue, eventTimeMs: Int64, gapMs: Int64, values: ArraySlice<JSONValue>) -> Int {
        let isNewKey = sessions[key] == nil
        let sessionBytes = Self.sessionOverheadBytes + (isNewKey ? Self.sessionKeyOverheadBytes + key.approximateBytes : 0)
        let provisional = Window(start: eventTimeMs, end: eventTimeMs + gapMs)
        return sessionBytes + growthBound(key: key, window: provisional, values: values)
    }

    /// An upper bound on `growthBound` / `sessionGrowthBound` for any window, without looking anything up:
    /// the hot path checks this first and needs the exact bounds only near the limit.
    func worstCaseGrowth(key: JSONValue, values: ArraySlice<JSONValue>, session: Bool) -> Int {
        let sessionBytes = session ? Self.sessionOverheadBytes + Self.sessionKeyOverheadBytes + key.approximateBytes : 0
        return sessionBytes + Self.windowOverheadBytes + newEntryBound(key: key, values: values)
    }

    private func newEntryBound(key: JSONValue, values: ArraySlice<JSONValue>) -> Int {
        var bound = Self.entryOverheadBytes + key.approximateBytes + emptyAccumulatorsBytes
        for index in growingFunctionIndices {
            bound += Accumulator(functions[index]).growthBound(adding: values[values.startIndex + index])
        }
        return bound
    }

    private func reserve(upTo bytes: Int) throws(StateLimitExceeded) {
        guard stateBytes + bytes <= stateBytesMax else {
            throw StateLimitExceeded(stateBytes: stateBytes, stateBytesMax: stateBytesMax, requestedBytes: bytes)
        }
    }

    /// Adds the row in place and charges the actual growth.
    private mutating func apply(key: JSONValue, window: Window, values: ArraySlice<JSONValue>, eventTimeMs: Int64,
                                sequence: Int64) {
        // The hot path: one hash of the window, one of the key, accumulators updated in place.
        var windowIndex = windows.index(forKey: window)
        if windowIndex == nil {
            windows[window] = [:]
            ends.push(window)
            stateBytes += Self.windowOverheadBytes
            windowIndex = windows.index(forKey: window)
        }
        guard let windowIndex else { preconditionFailure("window \(window) was just inserted") }
        var delta = 0
        let functions = self.functions
        windows.values[windowIndex][key, default: []].updateCreatingIfEmpty(functions: functions) { accumulators, created in
            if created { delta += Self.entryOverheadBytes + key.approximateBytes }
            for index in accumulators.indices {
                let before = created ? 0 : accumulators[index].approximateBytes
                accumulators[index].add(values[values.startIndex + index], eventTimeMs: eventTimeMs, sequence: sequence)
                delta += accumulators[index].approximateBytes - before
            }
        }
        stateBytes += delta
        if mode == .periodic { changed.insert(GroupID(window: window, key: key)) }
        assert(stateBytes <= stateBytesMax, "growth bound underestimated")
    }

    /// Removes one entry and uncharges it; drops the window when it empties.
    private mutating func removeEntry(key: JSONValue, window: Window) -> [Accumulator]? {
        guard let accumulators = windows[window]?.removeValue(forKey: key) else { return nil }
        stateBytes -= Self.entryBytes(key: key, accumulators: accumulators)
        if mode == .periodic { changed.remove(GroupID(window: window, key: key)) }
        if windows[window]!.isEmpty {
            windows[window] = nil
            stateBytes -= Self.windowOverheadBytes
        }
        return accumulators
    }

    /// Puts merged session state under its new window (merging with what is already there).
    private mutating func insertMerged(key: JSONValue, window: Window, accumulators: [Accumulator]) {
        let existing = removeEntry(key: key, window: window)
        let combined = Self.merging(existing, accumulators)
        if windows[window] == nil {
            windows[window] = [:]
            ends.push(window)
            stateBytes += Self.windowOverheadBytes
        }
        windows[window]![key] = combined
        stateBytes += Self.entryBytes(key: key, accumulators: combined)
    }

    private static func merging(_ base: [Accumulator]?, _ other: [Accumulator]) -> [Accumulator] {
        guard var base else { return other }
        for index in base.indices { base[index].merge(other[index]) }
        return base
    }

    static func entryBytes(key: JSONValue, accumulators: [Accumulator]) -> Int {
        accumulators.reduce(entryOverheadBytes + key.approximateBytes) { $0 + $1.approximateBytes }
    }

    // MARK: Closing windows

    /// Moves the store's watermark to `watermark` (ignored if lower) and closes every window that ends at or
    /// before it, freeing its state.
    /// - Returns: in `.final` and `.periodic` mode, one result per closed (window, key), ordered by window end, then key
    ///   (`JSONValue.compare`), then window start — deterministic, so replay after a crash emits the same
    ///   sequence. In `.changes` mode, nothing (every change was already returned by `add`).
    public mutating func advance(to watermark: Int64) -> [WindowResult] {
        guard watermark > self.watermark else { return [] }
        self.watermark = watermark
        var results: [WindowResult] = []
        while let window = ends.peek(), window.end <= watermark {
            _ = ends.pop()
            guard let groups = windows.removeValue(forKey: window) else { continue }  // merged away or emitted
            stateBytes -= Self.windowOverheadBytes
            for (key, accumulators) in groups {
                stateBytes -= Self.entryBytes(key: key, accumulators: accumulators)
                if mode != .changes {
                    results.append(WindowResult(key: key, window: window, values: accumulators.map(\.result)))
                }
                if mode == .periodic { changed.remove(GroupID(window: window, key: key)) }
                closeSession(key: key, window: window)
            }
        }
        Self.sortForEmission(&results)
        assert(!windows.isEmpty || stateBytes == 0, "state bytes leaked: \(stateBytes)")
        return results
    }

    /// `.periodic` mode: the current results of the groups that changed since the last call, in emission order
    /// (window end, key, window start); they count as unchanged afterwards. Closed groups are not included:
    /// `advance(to:)` returned their final results.
    public mutating func takeEarlyResults() -> [WindowResult] {
        guard !changed.isEmpty else { return [] }
        var results: [WindowResult] = []
        results.reserveCapacity(changed.count)
        for group in changed {
            guard let accumulators = windows[group.window]?[group.key] else { continue }
            results.append(WindowResult(key: group.key, window: group.window, values: accumulators.map(\.result)))
        }
        changed.removeAll(keepingCapacity: true)
        Self.sortForEmission(&results)
        return results
    }

    /// The order results leave in: window end, then key (`JSONValue.compare`), then window start. A total order
    /// over distinct groups, so output never depends on hash order.
    static func emissionOrder(_ a: WindowResult, _ b: WindowResult) -> Bool {
        if a.window.end != b.window.end { return a.window.end < b.window.end }
        let order = JSONValue.compare(a.key, b.key)
        return order != 0 ? order < 0 : a.window.start < b.window.start
    }

    /// Sorts `results` into `emissionOrder`: exactly what `results.sort(by: Self.emissionOrder)` gives, for
    /// less. Closing a window sorts all its groups, and comparing whole results (string keys through their
    /// UTF-8 views) dominated; here most comparisons are of two integers on a small table: the window end
    /// and, for string keys, their first 8 bytes as a big-endian word. Only when those tie does it compare
    /// the results themselves. Stable (ties keep input order), like `sort`.
    static func sortForEmission(_ results: inout [WindowResult]) {
        guard results.count > 1 else { return }
        var entries = results.indices.map { EmissionSortEntry(results[$0], index: $0) }
        let original = results
        entries.sort { a, b in
            if a.end != b.end { return a.end < b.end }
            if a.isString, b.isString, a.prefix != b.prefix { return a.prefix < b.prefix }
            return emissionOrder(original[a.index], original[b.index])
        }
        for (position, entry) in entries.enumerated() { results[position] = original[entry.index] }
    }

    /// A result's sort key as `sortForEmission` compares it first.
    struct EmissionSortEntry {
        var end: Int64
        /// A string key's first 8 UTF-8 bytes, big-endian, zero-padded. Where two prefixes differ, they order
        /// the keys as `JSONValue.compare` does (a zero pad sorts before any byte, like a shorter string;
        /// equal prefixes, padded or not, defer to the full comparison).
        var prefix: UInt64 = 0
        var isString = false
        var index: Int

        init(_ result: WindowResult, index: Int) {
            end = result.window.end
            self.index = index
            guard case .string(let text) = result.key else { return }
            isString = true
            var shift: UInt64 = 56
            for byte in text.utf8.prefix(8) {
                prefix |= UInt64(byte) << shift
                shift &-= 8
            }
        }
    }

    private mutating func closeSession(key: JSONValue, window: Window) {
        guard sessions[key] != nil, sessions[key]!.remove(window) else { return }
        stateBytes -= Self.sessionOverheadBytes
        if sessions[key]!.isEmpty {
            sessions[key] = nil
            stateBytes -= Self.sessionKeyOverheadBytes + key.approximateBytes
        }
    }
}

extension Array where Element == Accumulator {
    /// Runs `body` over the accumulators, creating them first (`created` = true) when the array is empty.
    fileprivate mutating func updateCreatingIfEmpty(
        functions: [AggregateFunction], _ body: (inout [Accumulator], Bool) -> Void
    ) {
        let created = isEmpty
        if created { self = functions.map(Accumulator.init) }
        body(&self, created)
    }
}

/// A binary min-heap of windows ordered by (end, start). Duplicates allowed; the store skips stale ones.
struct WindowHeap: Sendable {
    private var items: [Window] = []

    var count: Int { items.count }

    func peek() -> Window? { items.first }

    mutating func push(_ window: Window) {
        items.append(window)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child] < items[parent] else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Window? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < items.count, items[left] < items[smallest] { smallest = left }
            if right < items.count, items[right] < items[smallest] { smallest = right }
            if smallest == parent { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}
