// Aggregate accumulators (issue 4, section 1: "Aggregates").
//
// Each accumulator is a small value type with `add` (one input row), `merge` (another accumulator of the same
// function, for session windows that merge) and `result`. `merge` must agree with adding all rows to one
// accumulator — the tests check that against an add-all oracle.
//
// NULL handling follows SQL: every function but COUNT(*) ignores NULL inputs, and so (until the binder
// type-checks arguments) SUM and AVG ignore non-numbers. FIRST_VALUE and LAST_VALUE ignore NULL, like Flink's
// and ksqlDB's. An aggregate over no (non-null) input is NULL, except the counts, which are 0.

/// `a + b` clamped to Int64's range. Counts cannot realistically overflow, but one restored from a damaged
/// checkpoint could start anywhere, and a count must never trap.
@inline(__always)
func saturatingAdd(_ a: Int64, _ b: Int64) -> Int64 {
    let (sum, overflow) = a.addingReportingOverflow(b)
    return overflow ? (b < 0 ? .min : .max) : sum
}

/// The aggregate functions of the dialect.
public enum AggregateFunction: Hashable, Sendable, CaseIterable {
    /// `COUNT(*)`: rows.
    case countAll
    /// `COUNT(x)`: non-null values.
    case count
    /// `COUNT(DISTINCT x)`: distinct non-null values; numerically equal integers and doubles count once.
    case countDistinct
    /// `SUM(x)`: an integer while every input is an integer and the sum fits in Int64, a double otherwise.
    case sum
    /// `AVG(x)`: a double.
    case avg
    /// `MIN(x)` in `JSONValue.compare` order.
    case min
    /// `MAX(x)` in `JSONValue.compare` order.
    case max
    /// `FIRST_VALUE(x)`: the value with the lowest event time; among equal times the first to arrive.
    case firstValue
    /// `LAST_VALUE(x)`: the value with the highest event time; among equal times the last to arrive.
    case lastValue
}

/// The running state of one aggregate over one group and window.
public struct Accumulator: Hashable, Sendable {
    /// Exact integer part and floating part of a sum, kept apart so merges of integer sums stay exact.
    struct Sum: Hashable, Sendable {
        var integer: Int64 = 0
        var floating: Double = 0
        /// True once a double was added or the integer part overflowed.
        var isFloating = false
        var count: Int64 = 0

        mutating func add(_ value: JSONValue) {
            switch value {
            case .int(let v): addInteger(v)
            case .number(let v):
                floating += v
                isFloating = true
            default: return
            }
            count = saturatingAdd(count, 1)
        }

        mutating func addInteger(_ v: Int64) {
            let (total, overflow) = integer.addingReportingOverflow(v)
            if overflow {
                floating += Double(integer) + Double(v)
                integer = 0
                isFloating = true
            } else {
                integer = total
            }
        }

        mutating func merge(_ other: Sum) {
            addInteger(other.integer)
            floating += other.floating
            isFloating = isFloating || other.isFloating
            count = saturatingAdd(count, other.count)
        }

        var total: Double { Double(integer) + floating }
    }

    /// A value with the position that decides FIRST_VALUE / LAST_VALUE.
    struct Positioned: Hashable, Sendable {
        var value: JSONValue
        var eventTimeMs: Int64
        var sequence: Int64

        /// True when `self` comes before `other` in (event time, arrival) order.
        func precedes(_ other: Positioned) -> Bool {
            eventTimeMs != other.eventTimeMs ? eventTimeMs < other.eventTimeMs : sequence < other.sequence
        }
    }

    enum State: Hashable, Sendable {
        case count(Int64)
        case distinct(Set<JSONValue>, bytes: Int)
        case sum(Sum)
        case extreme(JSONValue?)
        case positioned(Positioned?)
    }

    /// The function this accumulator computes.
    public let function: AggregateFunction
    // Internal, not private: checkpoints (Checkpoint+Values.swift) write and restore it.
    var state: State

    /// Bytes charged per distinct value on top of the value itself (hash table slot and load factor).
    public static let distinctEntryOverheadBytes = 16

    /// An empty accumulator for `function`.
    public init(_ function: AggregateFunction) {
        self.function = function
        switch function {
        case .countAll, .count: state = .count(0)
        case .countDistinct: state = .distinct([], bytes: 0)
        case .sum, .avg: state = .sum(Sum())
        case .min, .max: state = .extreme(nil)
        case .firstValue, .lastValue: state = .positioned(nil)
        }
    }

    /// Adds one row's argument value. `eventTimeMs` and `sequence` (a number that grows in arrival order, such
    /// as the input offset) matter only to FIRST_VALUE and LAST_VALUE; COUNT(*) ignores `value`.
    public mutating func add(_ value: JSONValue, eventTimeMs: Int64 = 0, sequence: Int64 = 0) {
        if function != .countAll, value.isNull { return }
        switch state {
        case .count(let count):
            state = .count(saturatingAdd(count, 1))
        case .distinct(var set, let bytes):
            state = .count(0)  // drop the reference so `set` is uniquely owned and inserts in place
            let key = Self.distinctKey(value)
            let added = set.insert(key).inserted ? key.approximateBytes + Self.distinctEntryOverheadBytes : 0
            state = .distinct(set, bytes: bytes + added)
        case .sum(var sum):
            sum.add(value)
            state = .sum(sum)
        case .extreme(let current):
            guard let current else {
                state = .extreme(value)
                return
            }
            let order = JSONValue.compare(value, current)
            if function == .min ? order < 0 : order > 0 { state = .extreme(value) }
        case .positioned(let current):
            let candidate = Positioned(value: value, eventTimeMs: eventTimeMs, sequence: sequence)
            state = .positioned(choose(current, candidate))
        }
    }

    /// Folds in another accumulator of the same function (the rows of a merged session).
    public mutating func merge(_ other: Accumulator) {
        precondition(function == other.function, "merging \(other.function) into \(function)")
        switch (state, other.state) {
        case (.count(let a), .count(let b)):
            state = .count(saturatingAdd(a, b))
        case (.distinct(var set, var bytes), .distinct(let otherSet, _)):
            state = .count(0)
            for value in otherSet where set.insert(value).inserted {
                bytes += value.approximateBytes + Self.distinctEntryOverheadBytes
            }
            state = .distinct(set, bytes: bytes)
        case (.sum(var a), .sum(let b)):
            a.merge(b)
            state = .sum(a)
        case (.extreme(let a), .extreme(let b)):
            guard let b else { return }
            guard let a else {
                state = .extreme(b)
                return
            }
            let order = JSONValue.compare(b, a)
            if function == .min ? order < 0 : order > 0 { state = .extreme(b) }
        case (.positioned(let a), .positioned(let b)):
            guard let b else { return }
            state = .positioned(choose(a, b))
        default:
            preconditionFailure("accumulator states of one function always match")
        }
    }

    private func choose(_ current: Positioned?, _ candidate: Positioned) -> Positioned {
        guard let current else { return candidate }
        if function == .firstValue { return candidate.precedes(current) ? candidate : current }
        return current.precedes(candidate) ? candidate : current
    }

    /// The aggregate's value now.
    public var result: JSONValue {
        switch state {
        case .count(let count):
            return .int(count)
        case .distinct(let set, _):
            return .int(Int64(set.count))
        case .sum(let sum):
            guard sum.count > 0 else { return .null }
            if function == .avg { return .number(sum.total / Double(sum.count)) }
            return sum.isFloating ? .number(sum.total) : .int(sum.integer)
        case .extreme(let value):
            return value ?? .null
        case .positioned(let positioned):
            return positioned?.value ?? .null
        }
    }

    /// Approximate memory held, in bytes: the inline accumulator plus any heap state.
    public var approximateBytes: Int {
        let inline = MemoryLayout<Accumulator>.stride
        switch state {
        case .count, .sum: return inline
        case .distinct(_, let bytes): return inline + 32 + bytes
        case .extreme(let value): return inline + (value.map { $0.approximateBytes } ?? 0)
        case .positioned(let positioned): return inline + (positioned.map { $0.value.approximateBytes } ?? 0)
        }
    }

    /// An upper bound on how much `add(value)` can grow `approximateBytes`: what a state limit checks before
    /// it lets a row in.
    public func growthBound(adding value: JSONValue) -> Int {
        switch function {
        case .countAll, .count, .sum, .avg: return 0
        case .countDistinct: return Self.distinctKey(value).approximateBytes + Self.distinctEntryOverheadBytes
        case .min, .max, .firstValue, .lastValue: return value.approximateBytes
        }
    }

    /// The set key of a value: integral doubles that fit become integers, so `1` and `1.0` count once.
    static func distinctKey(_ value: JSONValue) -> JSONValue {
        if case .number(let v) = value, v.rounded() == v, v >= -9.2e18, v <= 9.2e18 { return .int(Int64(v)) }
        return value
    }
}
