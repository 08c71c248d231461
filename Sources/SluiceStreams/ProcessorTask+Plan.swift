import SluiceSQL

/// The parts of a `ProcessorPlan` the task consults per record, resolved once at start: the field extractor,
/// the window assigner, the accumulator functions, the output column prefixes as JSON bytes.
///
/// A class, immutable: the task copies its reference per record instead of the dozen arrays inside.
final class TaskPlan: Sendable {
    /// How rows are assigned to windows.
    enum Assigner: Sendable, Hashable {
        /// Non-windowed GROUP BY: every group lives in `TaskPlan.unboundedWindow`, forever.
        case none
        case tumbling(TumblingWindows)
        case hopping(HoppingWindows)
        case session(gapMs: Int64)
    }

    /// The one window of a non-windowed aggregation. It never closes: the task never advances its store.
    static let unboundedWindow = Window(start: .min, end: .max)

    let plan: ProcessorPlan
    /// nil when the plan reads no JSON field (then any value, JSON or not, is accepted).
    let extractor: JSONFieldExtractor?
    let functions: [AggregateFunction]
    let assigner: Assigner
    let time: TimeSource?
    /// The store's emit mode (non-windowed queries always run as `.changes`).
    let mode: EmitMode
    /// EMIT EVERY's interval (windowed queries only).
    let earlyIntervalMs: Int64?
    /// Per output column: `{"name":` for the first, `,"name":` for the rest.
    let columnPrefixes: [[UInt8]]

    // Flags derived once (reading them through `aggregation != nil` would copy the aggregation per record).
    let isAggregating: Bool
    let isWindowed: Bool
    /// True when the watermark comes from event times seen per partition (not from processing time).
    let usesEventTimeWatermark: Bool
    let isSession: Bool
    /// `plan.filter`, `plan.unnest`, `aggregation.keys`, `aggregation.having`.
    let filter: BoundExpr?
    let unnest: BoundExpr?
    let keys: [BoundExpr]
    let having: BoundExpr?
    /// The group keys, aggregate arguments and event time as `ValueAccess`: per-record reads of plain fields
    /// skip the expression walk.
    let keyAccess: [ValueAccess]
    let argumentAccess: [ValueAccess]
    let timeAccess: ValueAccess?

    /// Resolves `plan`. Trips a precondition on a plan that breaks the binder's invariants (a programmer
    /// error: plans come from `Binder.bind`).
    init(_ plan: ProcessorPlan) {
        precondition(plan.fields.allSatisfy { !$0.isEmpty }, "a field path has at least one component")
        precondition(plan.allowedLatenessMs >= 0 && (plan.idleTimeoutMs ?? 0) >= 0, "durations are not negative")
        self.plan = plan
        extractor = plan.fields.isEmpty ? nil : JSONFieldExtractor(paths: plan.fields.map { JSONPath(components: $0) })
        functions = plan.aggregation?.aggregates.map { Self.function($0.kind) } ?? []
        let arguments = plan.aggregation?.aggregates.map(\.argument) ?? []
        let window = plan.aggregation?.window
        time = window?.time
        switch window?.kind {
        case nil: assigner = .none
        case .tumble(let sizeMs)?: assigner = .tumbling(TumblingWindows(sizeMs: sizeMs))
        case .hop(let slideMs, let sizeMs)?: assigner = .hopping(HoppingWindows(sizeMs: sizeMs, slideMs: slideMs))
        case .session(let gapMs)?:
            precondition(gapMs > 0 && gapMs <= windowSizeMaxMs, "session gap out of range: \(gapMs)")
            assigner = .session(gapMs: gapMs)
        }
        switch (window == nil, plan.emit) {
        case (true, _): (mode, earlyIntervalMs) = (.changes, nil)
        case (false, .final): (mode, earlyIntervalMs) = (.final, nil)
        case (false, .changes): (mode, earlyIntervalMs) = (.changes, nil)
        case (false, .every(let intervalMs)):
            precondition(intervalMs > 0, "EMIT EVERY needs a positive interval")
            (mode, earlyIntervalMs) = (.periodic, intervalMs)
        }
        columnPrefixes = Self.prefixes(plan.projection)
        isAggregating = plan.aggregation != nil
        isWindowed = window != nil
        usesEventTimeWatermark = window != nil && window?.time != .processingTime
        if case .session = window?.kind { isSession = true } else { isSession = false }
        filter = plan.filter
        unnest = plan.unnest
        keys = plan.aggregation?.keys ?? []
        having = plan.aggregation?.having
        keyAccess = keys.map(ValueAccess.init)
        argumentAccess = arguments.map { $0.map(ValueAccess.init) ?? .null }
        if case .expression(let expr)? = window?.time { timeAccess = ValueAccess(expr) } else { timeAccess = nil }
    }

    static func function(_ kind: AggregateKind) -> AggregateFunction {
        switch kind {
        case .countStar: return .countAll
        case .count: return .count
        case .countDistinct: return .countDistinct
        case .sum: return .sum
        case .avg: return .avg
        case .min: return .min
        case .max: return .max
        case .firstValue: return .firstValue
        case .lastValue: return .lastValue
        }
    }

    private static func prefixes(_ projection: Projection) -> [[UInt8]] {
        guard case .columns(let columns) = projection else { return [] }
        return columns.enumerated().map { index, column in
            var prefix: [UInt8] = [index == 0 ? UInt8(ascii: "{") : UInt8(ascii: ",")]
            JSONValue.writeString(column.name, to: &prefix)
            prefix.append(UInt8(ascii: ":"))
            return prefix
        }
    }

    /// The number of windows a row at `timeMs` is added to (0 for a HOP gap).
    func windowCount(at timeMs: Int64) -> Int {
        guard case .hopping(let hopping) = assigner else { return 1 }
        let last = floorDivide(timeMs, hopping.slideMs)
        let first = floorDivide(timeMs - hopping.sizeMs, hopping.slideMs) + 1
        return Int(max(0, last - first + 1))
    }
}

// MARK: Evaluation contexts

/// How to read a per-row value: a plain field slot directly (the common case: `GROUP BY user`,
/// `SUM(amount)`, `TUMBLE(ts, …)`), anything else through the evaluator.
enum ValueAccess: Sendable {
    case field(Int)
    /// `_key` (`GROUP BY _key` is how a source keyed by user is aggregated per user).
    case recordKey
    case null
    case expression(BoundExpr)

    init(_ expr: BoundExpr) {
        switch expr {
        case .field(let slot): self = .field(slot)
        case .pseudo(.key): self = .recordKey
        case .literal(.null): self = .null
        default: self = .expression(expr)
        }
    }

    @inline(__always)
    func value(in row: RowContext) -> JSONValue {
        switch self {
        case .field(let slot): return row.fields.indices.contains(slot) ? row.fields[slot] : .null
        case .recordKey: return RowContext.keyValue(row.record)
        case .null: return .null
        case .expression(let expr): return Evaluator.evaluate(expr, in: row)
        }
    }
}

/// A row: the record's extracted fields and pseudo-columns, and the current UNNEST element.
struct RowContext: EvaluationContext {
    let fields: [JSONValue]
    let record: InputRecordView
    /// The UNNEST element, or nil outside UNNEST.
    var element: JSONValue?
    let nowMs: Int64

    func leaf(_ expr: BoundExpr) -> JSONValue {
        switch expr {
        case .field(let slot):
            return fields.indices.contains(slot) ? fields[slot] : .null
        case .pseudo(let column):
            return pseudo(column)
        case .element(let path):
            guard let element else { return .null }
            return path.isEmpty ? element : element.lookup(path[...])
        case .proctime:
            return .int(nowMs)
        default:
            return .null  // result columns do not exist per row
        }
    }

    /// `_key`: the record key as a string (invalid UTF-8 repaired), NULL when there is none.
    static func keyValue(_ record: InputRecordView) -> JSONValue {
        record.key.map { .string(String(decoding: $0, as: UTF8.self)) } ?? .null
    }

    private func pseudo(_ column: PseudoColumn) -> JSONValue {
        switch column {
        case .key: return Self.keyValue(record)
        case .value: return record.value.map { .string(String(decoding: $0, as: UTF8.self)) } ?? .null
        case .timestamp: return .int(record.timestampMs)
        case .partition: return .int(Int64(record.partition))
        case .offset: return .int(record.offset)
        }
    }
}

/// A result of an aggregating query: its group key, aggregate values and window.
struct ResultContext: EvaluationContext {
    /// The group key as the store keeps it: the value itself for one key, an array for several.
    let key: JSONValue
    let keyCount: Int
    let values: [JSONValue]
    /// nil for non-windowed queries.
    let window: Window?

    func leaf(_ expr: BoundExpr) -> JSONValue {
        switch expr {
        case .groupKey(let index):
            if keyCount == 1 { return index == 0 ? key : .null }
            guard case .array(let keys) = key, keys.indices.contains(index) else { return .null }
            return keys[index]
        case .aggregate(let index):
            return values.indices.contains(index) ? values[index] : .null
        case .windowStart:
            return window.map { .int($0.start) } ?? .null
        case .windowEnd:
            return window.map { .int($0.end) } ?? .null
        default:
            return .null  // per-row columns do not exist in results
        }
    }
}
