// Watermarks (issue 4, section 2): how far event time has progressed, so windows can close.
//
// Per input partition: the highest event time seen among all its records (before WHERE filters them, and
// including late ones) minus the allowed lateness. Per task: the minimum over its input partitions, skipping
// partitions that have been idle for longer than `idleTimeoutMs` — otherwise one quiet partition would hold
// every window open forever. When every partition is idle the task watermark is the maximum of theirs, and
// from then on it moves forward with processing time (by the time elapsed since the last record arrived,
// minus the idle timeout): a stream that has stopped still gets its last windows closed, which is what
// users of single-partition sources need ("windows that close when a partition goes idle"). The task
// watermark never moves backwards, even when an idle partition wakes up behind it (its older records are
// then late).
//
// Processing time is passed in by the caller (`nowMs`); there is no clock in here.

/// Tracks the watermarks of one task's input partitions.
///
/// A value type; the task owns it. Call order per record: `isLate(_:)` (against the watermark as it was when
/// the record arrived), then `observe`; call `advance(nowMs:)` after each batch (and on idle ticks) to
/// recompute the task watermark.
public struct WatermarkTracker: Hashable, Sendable {
    /// Sentinel for "no watermark yet": every window is still open, no record is late.
    public static let none = Int64.min

    /// Subtracted from each partition's highest event time.
    public let allowedLatenessMs: Int64
    /// A partition silent for longer than this no longer holds the task watermark back; nil: never.
    public let idleTimeoutMs: Int64?

    /// Internal so that checkpoints (ProcessorTask+Checkpoint.swift) can write and restore it.
    struct PartitionState: Hashable, Sendable {
        var maxEventTimeMs: Int64?
        var lastActivityMs: Int64
    }

    /// The input partitions, in the order given, with their state.
    private(set) var partitionIDs: [Int32]
    private(set) var states: [PartitionState]

    /// The task watermark as of the last `advance(nowMs:)`.
    /// Invariant: never decreases.
    public private(set) var current: Int64 = WatermarkTracker.none

    /// - Parameters:
    ///   - partitions: the task's input partitions (unique).
    ///   - nowMs: processing time at start; a partition that never receives a record counts as idle
    ///     `idleTimeoutMs` after this.
    public init(partitions: [Int32], allowedLatenessMs: Int64 = 0, idleTimeoutMs: Int64? = nil, nowMs: Int64) {
        precondition(!partitions.isEmpty && Set(partitions).count == partitions.count, "partitions must be unique")
        precondition(allowedLatenessMs >= 0, "allowed lateness is not negative")
        precondition(idleTimeoutMs.map { $0 >= 0 } ?? true, "idle timeout is not negative")
        partitionIDs = partitions
        states = Array(repeating: PartitionState(maxEventTimeMs: nil, lastActivityMs: nowMs), count: partitions.count)
        self.allowedLatenessMs = allowedLatenessMs
        self.idleTimeoutMs = idleTimeoutMs
    }

    /// A tracker in a state read back from a checkpoint. The caller validated `partitions` (unique, not empty,
    /// one state each).
    init(partitions: [Int32], states: [PartitionState], current: Int64, allowedLatenessMs: Int64, idleTimeoutMs: Int64?) {
        precondition(!partitions.isEmpty && Set(partitions).count == partitions.count, "partitions must be unique")
        precondition(partitions.count == states.count, "one state per partition")
        partitionIDs = partitions
        self.states = states
        self.current = current
        self.allowedLatenessMs = max(0, allowedLatenessMs)
        self.idleTimeoutMs = idleTimeoutMs.map { max(0, $0) }
    }

    private func slot(_ partition: Int32) -> Int {
        guard let index = partitionIDs.firstIndex(of: partition) else {
            preconditionFailure("partition \(partition) is not an input of this task")
        }
        return index
    }

    /// True when a record with this event time arrives behind the task watermark: it is not aggregated.
    public func isLate(_ eventTimeMs: Int64) -> Bool { eventTimeMs < current }

    /// Records that `partition` delivered a record with `eventTimeMs` at processing time `nowMs`.
    public mutating func observe(partition: Int32, eventTimeMs: Int64, nowMs: Int64) {
        let index = slot(partition)
        states[index].maxEventTimeMs = max(states[index].maxEventTimeMs ?? eventTimeMs, eventTimeMs)
        states[index].lastActivityMs = max(states[index].lastActivityMs, nowMs)
    }

    /// Resets the idle timer of `partition` without an event time (for example on a control record).
    public mutating func touch(partition: Int32, nowMs: Int64) {
        let index = slot(partition)
        states[index].lastActivityMs = max(states[index].lastActivityMs, nowMs)
    }

    /// The watermark of one partition: its highest event time minus the allowed lateness, or `none`.
    public func watermark(of partition: Int32) -> Int64 {
        partitionWatermark(states[slot(partition)])
    }

    private func partitionWatermark(_ state: PartitionState) -> Int64 {
        guard let maxEventTime = state.maxEventTimeMs else { return Self.none }
        let (value, overflow) = maxEventTime.subtractingReportingOverflow(allowedLatenessMs)
        return overflow ? Self.none : value
    }

    /// All partitions idle: `watermark` plus the processing time elapsed since the idle timeout ran out after
    /// the last activity (saturating; `none` stays `none`: with no event time seen there is nothing to move).
    static func movedOn(_ watermark: Int64, idleSince lastActivityMs: Int64, timeoutMs: Int64, nowMs: Int64) -> Int64 {
        guard watermark != none else { return none }
        let (idleFrom, overflowA) = lastActivityMs.addingReportingOverflow(timeoutMs)
        let (elapsed, overflowB) = nowMs.subtractingReportingOverflow(idleFrom)
        guard !overflowA, !overflowB, elapsed > 0 else { return watermark }
        let (moved, overflow) = watermark.addingReportingOverflow(elapsed)
        return overflow ? Int64.max : moved
    }

    /// True when `partition` has been silent for longer than the idle timeout at `nowMs`.
    public func isIdle(_ partition: Int32, nowMs: Int64) -> Bool {
        isIdle(states[slot(partition)], nowMs: nowMs)
    }

    private func isIdle(_ state: PartitionState, nowMs: Int64) -> Bool {
        guard let idleTimeoutMs else { return false }
        let (elapsed, overflow) = nowMs.subtractingReportingOverflow(state.lastActivityMs)
        return overflow ? nowMs > state.lastActivityMs : elapsed > idleTimeoutMs
    }

    /// Recomputes the task watermark at processing time `nowMs` and returns it.
    @discardableResult
    public mutating func advance(nowMs: Int64) -> Int64 {
        var activeMin: Int64? = nil
        var overallMax = Self.none
        var lastActivityMs = Int64.min
        for state in states {
            let watermark = partitionWatermark(state)
            overallMax = max(overallMax, watermark)
            lastActivityMs = max(lastActivityMs, state.lastActivityMs)
            if !isIdle(state, nowMs: nowMs) { activeMin = min(activeMin ?? watermark, watermark) }
        }
        let computed = activeMin ?? Self.movedOn(overallMax, idleSince: lastActivityMs, timeoutMs: idleTimeoutMs ?? 0, nowMs: nowMs)
        let previous = current
        current = max(current, computed)
        assert(current >= previous)
        return current
    }
}
