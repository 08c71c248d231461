/// The bound, checked form of a query that the streams engine runs (`ProcessorPlan`), produced by
/// `Binder.bind(_:)` from a parsed `Query`.
///
/// Binding resolves every name once, so that the engine never looks anything up by string per record:
/// - JSON fields of the record value become *slots*: `ProcessorPlan.fields[i]` is the path of slot `i`, and
///   the engine extracts all of them in one pass over the value's bytes.
/// - Pseudo-columns (`_key`, `_value`, `_timestamp`, `_partition`, `_offset`) become `PseudoColumn` cases.
/// - Functions become `ScalarFunction` cases with their arity checked; aggregates are pulled out into
///   `Aggregation.aggregates` and referred to by index from the SELECT list and HAVING.
///
/// The plan is a plain value: it can be printed, compared in tests and rebuilt from the stored SQL text.

/// A pseudo-column: a property of the record rather than a field of its JSON value.
public enum PseudoColumn: String, Sendable, Hashable, CaseIterable {
    /// The record key as a UTF-8 string (NULL without a key).
    case key = "_key"
    /// The record value as a UTF-8 string, for input that is not JSON (NULL without a value).
    case value = "_value"
    /// The record timestamp, epoch milliseconds.
    case timestamp = "_timestamp"
    /// The source partition.
    case partition = "_partition"
    /// The source offset.
    case offset = "_offset"
}

/// Scalar (per-row) functions, with the arities they accept.
public enum ScalarFunction: String, Sendable, Hashable, CaseIterable {
    case lower = "LOWER"
    case upper = "UPPER"
    case concat = "CONCAT"
    case substring = "SUBSTRING"
    case split = "SPLIT"
    case length = "LENGTH"
    case trim = "TRIM"
    case abs = "ABS"
    case round = "ROUND"
    case floor = "FLOOR"
    case ceil = "CEIL"
    case coalesce = "COALESCE"

    /// Argument counts accepted. CONCAT and COALESCE take one or more; SUBSTRING(s, start[, length]) is
    /// 1-based like SQL; ROUND(x[, digits]).
    public var arity: ClosedRange<Int> {
        switch self {
        case .lower, .upper, .length, .trim, .abs, .floor, .ceil: return 1...1
        case .split: return 2...2
        case .substring: return 2...3
        case .round: return 1...2
        case .concat, .coalesce: return 1...SQLLimits.functionArgumentsMax
        }
    }
}

/// Aggregate functions as the plan names them (the streams engine maps them onto its accumulators).
public enum AggregateKind: String, Sendable, Hashable, CaseIterable {
    /// `COUNT(*)`: rows.
    case countStar = "COUNT(*)"
    /// `COUNT(x)`: rows where x is not NULL.
    case count = "COUNT"
    /// `COUNT(DISTINCT x)`: distinct non-NULL values.
    case countDistinct = "COUNT(DISTINCT)"
    case sum = "SUM"
    case avg = "AVG"
    case min = "MIN"
    case max = "MAX"
    /// The value of the row with the smallest event time (ties: the first that arrived).
    case firstValue = "FIRST_VALUE"
    /// The value of the row with the largest event time (ties: the last that arrived).
    case lastValue = "LAST_VALUE"
}

/// An aggregate call: what to compute and over which per-row expression.
public struct AggregateCall: Sendable, Hashable {
    /// The function.
    public var kind: AggregateKind
    /// The argument, evaluated per input row. Invariant: nil exactly for `countStar`. It never contains
    /// an aggregate (nesting is a bind error).
    public var argument: BoundExpr?

    /// Creates a call.
    public init(_ kind: AggregateKind, _ argument: BoundExpr? = nil) {
        precondition((kind == .countStar) == (argument == nil), "AggregateCall: only COUNT(*) has no argument")
        self.kind = kind
        self.argument = argument
    }
}

/// A bound expression. Per-row expressions (WHERE, UNNEST, GROUP BY keys, aggregate arguments, SELECT of a
/// stateless query) use `field`, `pseudo`, `element` and `proctime`. Result expressions of an aggregating
/// query (its SELECT list and HAVING) use `groupKey`, `aggregate`, `windowStart` and `windowEnd` instead, and
/// never a per-row column: the binder reports a column that is neither grouped nor aggregated.
public indirect enum BoundExpr: Sendable, Hashable {
    /// A constant.
    case literal(Literal)
    /// JSON field slot `i` of the record value: `ProcessorPlan.fields[i]`. A missing field is NULL.
    case field(Int)
    /// A pseudo-column.
    case pseudo(PseudoColumn)
    /// The current UNNEST element, or a path inside it (`w` is `[]`, `w.name` is `["name"]`).
    case element([String])
    /// `PROCTIME()`: the processing time, epoch milliseconds.
    case proctime
    /// `-x`, `NOT x`.
    case unary(UnaryOperator, BoundExpr)
    /// `x op y`. Arithmetic on integers stays integral (division too, truncating like SQL); with a double it
    /// is double; NULL in, NULL out; comparisons between incomparable types are NULL.
    case binary(BinaryOperator, BoundExpr, BoundExpr)
    /// `x IS [NOT] NULL`.
    case isNull(BoundExpr, negated: Bool)
    /// `x [NOT] IN (…)`.
    case inList(BoundExpr, [BoundExpr], negated: Bool)
    /// `x [NOT] LIKE pattern`, with `%` and `_` wildcards.
    case like(BoundExpr, pattern: BoundExpr, negated: Bool)
    /// Searched CASE: the first branch whose condition is TRUE. A simple CASE is bound to this form by
    /// turning `CASE x WHEN v` into `WHEN x = v`.
    case caseWhen(branches: [BoundBranch], otherwise: BoundExpr?)
    /// `CAST(x AS type)`; a value that does not convert is NULL.
    case cast(BoundExpr, SQLType)
    /// A scalar function.
    case function(ScalarFunction, [BoundExpr])
    /// Group key `i` of an aggregating query: `Aggregation.keys[i]`.
    case groupKey(Int)
    /// The result of aggregate `i` of an aggregating query: `Aggregation.aggregates[i]`.
    case aggregate(Int)
    /// The start of the window of the result, epoch milliseconds.
    case windowStart
    /// The end (exclusive) of the window of the result, epoch milliseconds.
    case windowEnd
}

/// One WHEN … THEN … of a bound CASE.
public struct BoundBranch: Sendable, Hashable {
    public var when: BoundExpr
    public var then: BoundExpr

    public init(when: BoundExpr, then: BoundExpr) {
        self.when = when
        self.then = then
    }
}

/// Where a window takes its event time from.
public enum TimeSource: Sendable, Hashable {
    /// A per-row expression: a JSON field holding epoch milliseconds (an integer) or an ISO-8601 string,
    /// or any expression yielding one. A row whose time is NULL or does not convert is dropped and counted.
    case expression(BoundExpr)
    /// The record timestamp (`_timestamp`).
    case recordTimestamp
    /// `PROCTIME()`: the time the task processes the row.
    case processingTime
}

/// A window of GROUP BY, with its sizes in milliseconds.
public struct WindowPlan: Sendable, Hashable {
    /// The kinds of window.
    public enum Kind: Sendable, Hashable {
        /// Fixed windows of `sizeMs`. Invariant: sizeMs > 0.
        case tumble(sizeMs: Int64)
        /// Windows of `sizeMs` every `slideMs`. Invariant: 0 < slideMs <= sizeMs.
        case hop(slideMs: Int64, sizeMs: Int64)
        /// Per-key sessions closed `gapMs` after their last row. Invariant: gapMs > 0.
        case session(gapMs: Int64)
    }

    public var kind: Kind
    public var time: TimeSource

    public init(kind: Kind, time: TimeSource) {
        self.kind = kind
        self.time = time
    }
}

/// The GROUP BY part of an aggregating query.
public struct Aggregation: Sendable, Hashable {
    /// The group key expressions (per row); may be empty (one group per window).
    public var keys: [BoundExpr]
    /// The window, if any. Without one the query must use EMIT CHANGES (results update forever).
    public var window: WindowPlan?
    /// The aggregates used by the SELECT list and HAVING, each once (identical calls are shared).
    public var aggregates: [AggregateCall]
    /// Keep only result rows where this is TRUE; uses result expressions.
    public var having: BoundExpr?
    /// True when the keys are not the source record key (exactly `[.pseudo(.key)]` or empty), so that rows
    /// must be re-keyed through a repartition topic before aggregation when the source has several
    /// partitions.
    public var needsRepartition: Bool

    public init(keys: [BoundExpr], window: WindowPlan?, aggregates: [AggregateCall], having: BoundExpr?,
                needsRepartition: Bool) {
        self.keys = keys
        self.window = window
        self.aggregates = aggregates
        self.having = having
        self.needsRepartition = needsRepartition
    }
}

/// One column of the output value.
public struct OutputColumn: Sendable, Hashable {
    /// The member name in the output JSON object: the alias, else the column's last path component
    /// (`order.id` → `id`), else the function name in lower case (`count`), else `col<N>` (1-based).
    /// Invariant: names are unique within a plan (the binder reports duplicates) and never `window_start`
    /// or `window_end` in windowed queries.
    public var name: String
    /// The value: a per-row expression for stateless queries, a result expression for aggregating ones.
    public var expr: BoundExpr

    public init(name: String, expr: BoundExpr) {
        self.name = name
        self.expr = expr
    }
}

/// What a processor outputs per row (stateless) or per result (aggregating).
public enum Projection: Sendable, Hashable {
    /// `SELECT *`: the input value unchanged (stateless queries only; with UNNEST it is an error).
    case wildcard
    /// Named columns, in SELECT order.
    case columns([OutputColumn])
}

/// When results of an aggregating query leave (ignored by stateless queries).
public enum EmitPolicy: Sendable, Hashable {
    case final
    case changes
    /// Early results every `intervalMs` of processing time, then the final one. Invariant: intervalMs > 0.
    case every(intervalMs: Int64)
}

/// A bound query: everything the engine needs to run it.
public struct ProcessorPlan: Sendable, Hashable {
    /// The derived topic written to.
    public var sink: String
    /// The topic read from.
    public var source: String
    /// JSON paths extracted from each record value; `BoundExpr.field(i)` reads `fields[i]`. No duplicates.
    public var fields: [[String]]
    /// Flat-map: each row becomes one row per element of this array (a non-array or NULL gives no rows).
    public var unnest: BoundExpr?
    /// The name the UNNEST element is bound to (for printing).
    public var unnestAlias: String?
    /// Keep only rows where this is TRUE (evaluated after UNNEST, so it may use the element).
    public var filter: BoundExpr?
    /// The output columns.
    public var projection: Projection
    /// The aggregation, or nil for a stateless map/filter.
    public var aggregation: Aggregation?
    /// When aggregating results leave. `.changes` when the query has no window.
    public var emit: EmitPolicy
    /// `allowed_lateness`, default 0.
    public var allowedLatenessMs: Int64
    /// `idle_timeout`, default none (an idle partition holds the watermark back).
    public var idleTimeoutMs: Int64?
    /// `late_records`: the topic late rows are written to, or nil to drop (and count) them.
    public var lateRecordsTopic: String?

    public init(sink: String, source: String, fields: [[String]], unnest: BoundExpr? = nil, unnestAlias: String? = nil,
                filter: BoundExpr? = nil, projection: Projection, aggregation: Aggregation? = nil,
                emit: EmitPolicy = .final, allowedLatenessMs: Int64 = 0, idleTimeoutMs: Int64? = nil,
                lateRecordsTopic: String? = nil) {
        self.sink = sink
        self.source = source
        self.fields = fields
        self.unnest = unnest
        self.unnestAlias = unnestAlias
        self.filter = filter
        self.projection = projection
        self.aggregation = aggregation
        self.emit = emit
        self.allowedLatenessMs = allowedLatenessMs
        self.idleTimeoutMs = idleTimeoutMs
        self.lateRecordsTopic = lateRecordsTopic
    }

    /// True for windowed queries: outputs carry `window_start` and `window_end`.
    public var isWindowed: Bool { aggregation?.window != nil }
}
