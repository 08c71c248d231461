// Window assignment (issue 4, section 2: "Windows"). Pure functions over event time in epoch milliseconds.
//
// All windows are half-open, `[start, end)`, and aligned to the epoch: tumbling windows start at multiples
// of their size, hopping windows at multiples of their slide. Arithmetic uses floor division, so times
// before 1970 fall in the right window too.

import SluiceSQL

/// The event times window arithmetic accepts: ±2^62 ms (about ±146 million years), so that `start + size`
/// can never overflow. Callers reject records outside it as malformed.
public let eventTimeRangeMs: ClosedRange<Int64> = -(1 << 62)...(1 << 62)

/// The largest window size or session gap: 2^60 ms (about 36 million years); the binder's bound on every
/// duration, so a bound plan always fits.
public let windowSizeMaxMs: Int64 = SQLLimits.durationMaxMs

/// A half-open time window `[start, end)` in epoch milliseconds.
///
/// Ordered by end, then start: the order in which EMIT FINAL closes windows.
/// Invariant: `start < end`.
public struct Window: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let start: Int64
    public let end: Int64

    public init(start: Int64, end: Int64) {
        precondition(start < end, "a window is non-empty: [\(start), \(end))")
        self.start = start
        self.end = end
    }

    /// True when `time` lies in `[start, end)`.
    public func contains(_ time: Int64) -> Bool { start <= time && time < end }

    public static func < (lhs: Window, rhs: Window) -> Bool {
        lhs.end != rhs.end ? lhs.end < rhs.end : lhs.start < rhs.start
    }

    public var description: String { "[\(start), \(end))" }
}

/// `a / b` rounded towards negative infinity (`b > 0`).
@inline(__always)
func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
    let quotient = a / b
    return (a % b != 0 && a < 0) ? quotient - 1 : quotient
}

/// `TUMBLE(time, size)`: consecutive, non-overlapping windows of one size.
public struct TumblingWindows: Hashable, Sendable {
    public let sizeMs: Int64

    public init(sizeMs: Int64) {
        precondition(sizeMs > 0 && sizeMs <= windowSizeMaxMs, "tumbling window size out of range: \(sizeMs)")
        self.sizeMs = sizeMs
    }

    /// The one window that covers `timeMs`.
    public func window(containing timeMs: Int64) -> Window {
        precondition(eventTimeRangeMs.contains(timeMs), "event time out of range: \(timeMs)")
        let start = floorDivide(timeMs, sizeMs) * sizeMs
        return Window(start: start, end: start + sizeMs)
    }
}

/// `HOP(time, slide, size)`: windows of `size` starting every `slide`; a record belongs to every window that
/// covers it (`size / slide` of them when the slide divides the size; none when the slide exceeds the size and
/// the record falls in a gap).
public struct HoppingWindows: Hashable, Sendable {
    public let sizeMs: Int64
    public let slideMs: Int64

    /// The most windows one record may fall in. A bound on per-record work and output.
    public static let windowsPerRecordMax: Int64 = SQLLimits.windowsPerRecordMax

    public init(sizeMs: Int64, slideMs: Int64) {
        precondition(sizeMs > 0 && sizeMs <= windowSizeMaxMs, "hopping window size out of range: \(sizeMs)")
        precondition(slideMs > 0 && slideMs <= windowSizeMaxMs, "hopping window slide out of range: \(slideMs)")
        precondition((sizeMs + slideMs - 1) / slideMs <= Self.windowsPerRecordMax,
                     "size / slide exceeds \(Self.windowsPerRecordMax) windows per record")
        self.sizeMs = sizeMs
        self.slideMs = slideMs
    }

    /// Calls `body` with every window covering `timeMs`, oldest start first. Allocation-free.
    public func forEachWindow(containing timeMs: Int64, _ body: (Window) throws -> Void) rethrows {
        precondition(eventTimeRangeMs.contains(timeMs), "event time out of range: \(timeMs)")
        // start = k·slide covers t when k·slide <= t < k·slide + size.
        let last = floorDivide(timeMs, slideMs)
        let first = floorDivide(timeMs - sizeMs, slideMs) + 1
        guard first <= last else { return }
        for k in first...last {
            let start = k * slideMs
            try body(Window(start: start, end: start + sizeMs))
        }
    }

    /// Every window covering `timeMs`, oldest start first.
    public func windows(containing timeMs: Int64) -> [Window] {
        var windows: [Window] = []
        forEachWindow(containing: timeMs) { windows.append($0) }
        return windows
    }
}

/// The session windows of one group key: `SESSION(time, gap)`.
///
/// A record at `t` opens the window `[t, t + gap)`; a session ends `gap` after its last record. Windows that
/// overlap merge, so a record that falls within `gap` of two sessions bridges them into one. Overlap is strict:
/// a record exactly `gap` after the last one starts a new session — at that instant the old session has ended
/// and EMIT FINAL may already have emitted it.
///
/// Invariant: `sessions` is sorted by start and pairwise disjoint (so also sorted by end).
public struct SessionWindows: Hashable, Sendable {
    public let gapMs: Int64
    /// The open sessions, oldest first.
    public private(set) var sessions: [Window] = []

    public init(gapMs: Int64) {
        precondition(gapMs > 0 && gapMs <= windowSizeMaxMs, "session gap out of range: \(gapMs)")
        self.gapMs = gapMs
    }

    /// Sessions read back from a checkpoint, or nil when they are not sorted, disjoint and at least one gap long
    /// (every session is: it ends `gap` after its last record).
    init?(gapMs: Int64, sessions: [Window]) {
        self.init(gapMs: gapMs)
        self.sessions = sessions
        let longEnough = sessions.allSatisfy { window in
            let (length, overflow) = window.end.subtractingReportingOverflow(window.start)
            return overflow || length >= gapMs
        }
        guard isSortedAndDisjoint, longEnough else { return nil }
    }

    /// The outcome of adding one record.
    public struct Update: Hashable, Sendable {
        /// The session that now holds the record.
        public var window: Window
        /// The sessions that existed before and were replaced by `window` (absorbed or extended); their state
        /// must be merged into `window`'s. Empty when the record fell inside an existing session or opened a
        /// new one.
        public var merged: [Window]

        public init(window: Window, merged: [Window]) {
            self.window = window
            self.merged = merged
        }
    }

    /// Adds a record at `timeMs`.
    public mutating func add(_ timeMs: Int64) -> Update {
        precondition(eventTimeRangeMs.contains(timeMs), "event time out of range: \(timeMs)")
        let own = Window(start: timeMs, end: timeMs + gapMs)
        // The first session ending after t; from there on, those starting before t + gap overlap.
        var low = 0
        var high = sessions.count
        while low < high {
            let middle = (low + high) / 2
            if sessions[middle].end <= timeMs { low = middle + 1 } else { high = middle }
        }
        var last = low
        while last < sessions.count, sessions[last].start < own.end { last += 1 }
        guard low < last else {
            sessions.insert(own, at: low)
            return Update(window: own, merged: [])
        }
        let combined = Window(start: min(sessions[low].start, own.start), end: max(sessions[last - 1].end, own.end))
        if last - low == 1, combined == sessions[low] { return Update(window: combined, merged: []) }
        let merged = Array(sessions[low..<last])
        sessions.replaceSubrange(low..<last, with: [combined])
        assert(isSortedAndDisjoint)
        return Update(window: combined, merged: merged)
    }

    /// Removes a session (after it was emitted). Returns false when it is not open.
    @discardableResult
    public mutating func remove(_ window: Window) -> Bool {
        guard let index = sessions.firstIndex(of: window) else { return false }
        sessions.remove(at: index)
        return true
    }

    /// True when no session is open.
    public var isEmpty: Bool { sessions.isEmpty }

    var isSortedAndDisjoint: Bool {
        zip(sessions, sessions.dropFirst()).allSatisfy { $0.end <= $1.start }
    }
}
