// The keyed window store of one task (issue 4, section 2: EMIT FINAL / EMIT CHANGES, bounded memory).
//
// Layout: window → group key → one accumulator per aggregate of the query, plus a min-heap of window ends
// (lazy: a window merged away or already emitted is skipped when popped) and, for session windows, each key's
// open sessions. `advance(to:)` pops every window whose end the watermark has reached, emits its groups and
// frees them. Every byte of state is charged to `stateBytes`; an `add` that could push it past
// `stateBytesMax` throws `StateLimitExceeded` and changes nothing, so the runtime can pause the task.
//
// The store does not decide lateness: the caller drops records `WatermarkTracker.isLate` reports. Adding to a
// window the watermark has already closed is therefore a programmer error and traps.

/// When results leave the store.
public enum EmitMode: Hashable, Sendable {
    /// One result per (group, window), when the watermark reaches the window's end.
    case final
    /// An updated result on every change; `advance(to:)` only frees closed windows.
    case changes
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
    public private(set) var stateBytes = 0
    /// The watermark of the last `advance(to:)`: every window ending at or before it has been emitted and freed.
    public private(set) var watermark = WatermarkTracker.none

    /// Bytes charged per (window, key) entry on top of the key and accumulators (hash slot, array header).
    public static let entryOverheadBytes = 64
    /// Bytes charged per open window on top of its entries.
    public static let windowOverheadBytes = 96
    /// Bytes charged per open session of a key, and per key with open sessions.
    public static let sessionOverheadBytes = 16
    public static let sessionKeyOverheadBytes = 64

    private var windows: [Window: [JSONValue: [Accumulator]]] = [:]
    private var ends = WindowHeap()
    private var sessions: [JSONValue: SessionWindows] = [:]

    public init(functions: [AggregateFunction], mode: EmitMode = .final, stateBytesMax: Int = 256 << 20) {
        precondition(stateBytesMax > 0, "the state limit is positive")
        self.functions = functions
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
        precondition(values.count == functions.count, "one argument per aggregate")
        precondition(window.end > watermark, "window \(window) was closed by watermark \(watermark)")
        try reserve(upTo: growthBound(key: key, window: window, values: values, sessionBytes: 0))
        apply(key: key, window: window, values: values, eventTimeMs: eventTimeMs, sequence: sequence)
        return changeResult(key: key, window: window)
    }

    /// Adds one row to `key`'s session window with `gapMs`, merging sessions the row bridges.
    /// - Returns: the updated result of the (possibly merged) session in `.changes` mode; nil in `.final` mode.
    @discardableResult
    public mutating func addToSession(key: JSONValue, eventTimeMs: Int64, gapMs: Int64, values: [JSONValue],
                                      sequence: Int64 = 0) throws(StateLimitExceeded) -> WindowResult? {
        precondition(values.count == functions.count, "one argument per aggregate")
        precondition(eventTimeMs >= watermark, "record at \(eventTimeMs) is late for watermark \(watermark)")
        let isNewKey = sessions[key] == nil
        let sessionBytes = Self.sessionOverheadBytes + (isNewKey ? Self.sessionKeyOverheadBytes + key.approximateBytes : 0)
        let provisional = Window(start: eventTimeMs, end: eventTimeMs + gapMs)
        try reserve(upTo: growthBound(key: key, window: provisional, values: values, sessionBytes: sessionBytes))

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

    /// The most one row can add: a new window, a new entry, and each accumulator's growth.
    private func growthBound(key: JSONValue, window: Window, values: [JSONValue], sessionBytes: Int) -> Int {
        var bound = sessionBytes
        let group = windows[window]
        if group == nil { bound += Self.windowOverheadBytes }
        if let accumulators = group?[key] {
            for (index, accumulator) in accumulators.enumerated() { bound += accumulator.growthBound(adding: values[index]) }
        } else {
            bound += Self.entryOverheadBytes + key.approximateBytes
            for (index, function) in functions.enumerated() {
                let empty = Accumulator(function)
                bound += empty.approximateBytes + empty.growthBound(adding: values[index])
            }
        }
        return bound
    }

    private func reserve(upTo bytes: Int) throws(StateLimitExceeded) {
        guard stateBytes + bytes <= stateBytesMax else {
            throw StateLimitExceeded(stateBytes: stateBytes, stateBytesMax: stateBytesMax, requestedBytes: bytes)
        }
    }

    /// Adds the row in place and charges the actual growth.
    private mutating func apply(key: JSONValue, window: Window, values: [JSONValue], eventTimeMs: Int64, sequence: Int64) {
        if windows[window] == nil {
            windows[window] = [:]
            ends.push(window)
            stateBytes += Self.windowOverheadBytes
        }
        var delta = 0
        let functions = self.functions
        windows[window]![key, default: []].updateCreatingIfEmpty(functions: functions) { accumulators, created in
            if created { delta += Self.entryOverheadBytes + key.approximateBytes }
            for index in accumulators.indices {
                let before = created ? 0 : accumulators[index].approximateBytes
                accumulators[index].add(values[index], eventTimeMs: eventTimeMs, sequence: sequence)
                delta += accumulators[index].approximateBytes - before
            }
        }
        stateBytes += delta
        assert(stateBytes <= stateBytesMax, "growth bound underestimated")
    }

    /// Removes one entry and uncharges it; drops the window when it empties.
    private mutating func removeEntry(key: JSONValue, window: Window) -> [Accumulator]? {
        guard let accumulators = windows[window]?.removeValue(forKey: key) else { return nil }
        stateBytes -= Self.entryBytes(key: key, accumulators: accumulators)
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

    private static func entryBytes(key: JSONValue, accumulators: [Accumulator]) -> Int {
        accumulators.reduce(entryOverheadBytes + key.approximateBytes) { $0 + $1.approximateBytes }
    }

    // MARK: Closing windows

    /// Moves the store's watermark to `watermark` (ignored if lower) and closes every window that ends at or
    /// before it, freeing its state.
    /// - Returns: in `.final` mode, one result per closed (window, key), ordered by window end, then key
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
                if mode == .final { results.append(WindowResult(key: key, window: window, values: accumulators.map(\.result))) }
                closeSession(key: key, window: window)
            }
        }
        results.sort { a, b in
            if a.window.end != b.window.end { return a.window.end < b.window.end }
            let order = JSONValue.compare(a.key, b.key)
            return order != 0 ? order < 0 : a.window.start < b.window.start
        }
        assert(!windows.isEmpty || stateBytes == 0, "state bytes leaked: \(stateBytes)")
        return results
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
