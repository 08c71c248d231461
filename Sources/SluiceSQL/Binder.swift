// The binder: from a parsed `Query` to the `ProcessorPlan` the streams engine runs (see Plan.swift).
//
// Binding resolves every name once and checks everything that can be checked before a record arrives:
// columns (against sample fields when the caller has them), functions and their arities, where aggregates
// may appear, what an aggregating query may select, windows, EMIT and the WITH options. Each error points
// at the line and column of the offending text, like the parser's.
//
// Order of work (it also fixes the order of `ProcessorPlan.fields`, slots being numbered as first seen):
// UNNEST, WHERE, GROUP BY keys, the window's time argument, SELECT, HAVING, then EMIT and WITH.
//
// Choices made here, beyond what Plan.swift states:
// - Output names: the alias; else a column's last path component (`order.id` → `id`, `_key` → `_key`,
//   an UNNEST element `w` → `w`); else a function's name in lower case, for aggregates too
//   (`COUNT(*)`, `COUNT(x)` and `COUNT(DISTINCT x)` are all `count`, `PROCTIME()` is `proctime`); else
//   `col<N>` with N the 1-based position of the item. Names are never made unique by renaming: a
//   duplicate is an error at the second item, so the output never has a surprising member name.
// - HAVING may name a SELECT alias; the alias wins over a column of the same name (as in MySQL), so that
//   `HAVING clicks > 5` means the selected `COUNT(*) AS clicks` even if records also have a `clicks` field.
//   Inside an aggregate's argument names are always per-row columns.
// - The UNNEST alias shadows a JSON field of the same name everywhere after UNNEST (but not inside the
//   UNNEST expression itself).
// - `window_start` / `window_end` in the result expressions of a windowed query are the window's bounds,
//   unless a GROUP BY key is that very column; everywhere else they are ordinary JSON fields (a processor
//   may read the output of another windowed processor).
// - `INTERVAL '1' SECOND` in an expression is the integer 1000 (milliseconds), so that
//   `_timestamp - INTERVAL '1' HOUR` works on epoch-millisecond values.
// - The WITH options are about the watermark, which only closes windows: they are errors on queries
//   without a window, not only on stateless ones.
// - A stateless query's `emit` is `.changes` (each row leaves at once), per `ProcessorPlan.emit`'s doc.

/// What the binder may know about the source beyond the query text.
public struct BindOptions: Sendable, Hashable {
    /// Dotted field paths seen in sample records of the source (`"user"`, `"order.customer.id"`). When
    /// non-nil and non-empty, a column path is accepted only if it is in the set, is an object on the way to
    /// one (`"order"`, `"order.customer"`), or extends one (known `"payload"` accepts `"payload.x"`, since the
    /// sample may have had `payload` NULL); any other path is an error with a did-you-mean suggestion.
    /// Nil or empty: every path is accepted (a missing field reads as NULL).
    public var knownColumns: Set<String>?

    /// Creates options.
    public init(knownColumns: Set<String>? = nil) {
        self.knownColumns = knownColumns
    }
}

/// Binds parsed queries into `ProcessorPlan`s.
public enum Binder {
    /// Binds `query`: resolves names into field slots, pseudo-columns and functions, pulls aggregates out,
    /// and checks every rule of the dialect. Throws an `SQLError` at the offending line and column; never
    /// traps, whatever the query (parsed or built in code).
    public static func bind(_ query: Query, options: BindOptions = BindOptions()) throws(SQLError) -> ProcessorPlan {
        var binder = QueryBinder(query: query, options: options)
        return try binder.bind()
    }

    /// Parses `sql` and binds it: `bind(Query.parse(sql), options:)`.
    public static func plan(sql: String, options: BindOptions = BindOptions()) throws(SQLError) -> ProcessorPlan {
        try bind(Query.parse(sql), options: options)
    }
}

extension SQLLimits {
    /// The longest window size, hop slide, session gap, EMIT EVERY interval, allowed lateness or idle
    /// timeout: 2^60 ms (about 36 million years). Equal to the engine's `windowSizeMaxMs`, and small enough
    /// that event time ± any of them cannot overflow within the engine's event-time range (±2^62 ms).
    public static let durationMaxMs: Int64 = 1 << 60
    /// The most hopping windows one record may fall in (`size / slide`, rounded up): the engine's
    /// `HoppingWindows.windowsPerRecordMax`, a bound on per-record work and output.
    public static let windowsPerRecordMax: Int64 = 1_000
}

/// The state of binding one query. Value type; one use per query.
struct QueryBinder {
    let query: Query
    /// The sample fields, or nil when columns are not checked.
    let known: KnownColumns?
    /// JSON paths read from the record value, in the order first bound; becomes `ProcessorPlan.fields`.
    var fields: [[String]] = []
    /// The slot of each path in `fields`. Invariant: `fieldSlots[fields[i]] == i`.
    var fieldSlots: [[String]: Int] = [:]
    /// The UNNEST alias, once in scope (nil while the UNNEST expression itself is bound).
    var elementAlias: String?
    /// The aggregates of the query, each once; becomes `Aggregation.aggregates`.
    var aggregates: [AggregateCall] = []
    /// The index of each call in `aggregates`. Invariant: `aggregateSlots[aggregates[i]] == i`.
    var aggregateSlots: [AggregateCall: Int] = [:]
    /// The GROUP BY keys without positions, compared with SELECT and HAVING subexpressions.
    var groupKeys: [Expr] = []
    /// True once a window has been bound.
    var isWindowed = false
    /// SELECT aliases and their result expressions, for HAVING.
    var selectAliases: [String: BoundExpr] = [:]

    init(query: Query, options: BindOptions) {
        self.query = query
        if let columns = options.knownColumns, !columns.isEmpty {
            known = KnownColumns(columns)
        } else {
            known = nil
        }
    }

    /// Binds the whole query; the parent of the clause binders, in the order documented at the top.
    mutating func bind() throws(SQLError) -> ProcessorPlan {
        try checkDepth()
        try checkSelectList()
        if query.source.text == query.sink.text {
            throw SQLError(at: query.source.position, "source topic '\(query.source.text)' is also the sink: "
                + "a processor cannot read the topic it writes to")
        }
        let aggregating = isAggregating
        try checkWildcard(aggregating: aggregating)
        var plan = ProcessorPlan(sink: query.sink.text, source: query.source.text, fields: [], projection: .wildcard)
        if let unnest = query.unnest {
            plan.unnest = try bindUnnest(unnest)
            plan.unnestAlias = unnest.alias.text
        }
        if let filter = query.filter { plan.filter = try bindExpr(filter, in: .row("WHERE")) }
        if aggregating {
            let aggregation = try bindAggregation(projection: &plan.projection)
            plan.aggregation = aggregation
        } else {
            if let having = query.having {
                throw SQLError(at: having.firstPosition, "HAVING applies to GROUP BY queries; use WHERE to filter rows")
            }
            plan.projection = try bindProjection(in: .row("SELECT"))
        }
        plan.emit = try bindEmit(aggregating: aggregating)
        try bindOptions(into: &plan)
        plan.fields = fields
        return plan
    }

    /// True when the query has GROUP BY or an aggregate in SELECT or HAVING.
    var isAggregating: Bool {
        if query.groupBy != nil { return true }
        for item in query.select {
            if case .expression(let expr) = item.kind, expr.containsAggregate { return true }
        }
        return query.having?.containsAggregate == true
    }

    /// Every expression of the query must be within `SQLLimits.expressionDepthMax`, so that the recursive
    /// binder stays within the stack. Parsed queries always are; queries built in code may not be.
    func checkDepth() throws(SQLError) {
        var expressions: [Expr] = []
        for item in query.select { if case .expression(let expr) = item.kind { expressions.append(expr) } }
        if let unnest = query.unnest { expressions.append(unnest.array) }
        if let filter = query.filter { expressions.append(filter) }
        if let group = query.groupBy { expressions += group.keys + (group.window.map { [$0.time] } ?? []) }
        if let having = query.having { expressions.append(having) }
        for expr in expressions where expr.height > SQLLimits.expressionDepthMax {
            throw SQLError(at: expr.position, "expression is nested too deeply: more than "
                + "\(SQLLimits.expressionDepthMax) levels (SQLLimits.expressionDepthMax)")
        }
    }

    /// The SELECT list is not empty and within `SQLLimits.columnsMax`.
    func checkSelectList() throws(SQLError) {
        guard !query.select.isEmpty else { throw SQLError(at: query.position, "the SELECT list is empty") }
        if query.select.count > SQLLimits.columnsMax {
            throw SQLError(at: query.select[SQLLimits.columnsMax].position, "too many select items: the limit is "
                + "\(SQLLimits.columnsMax) (SQLLimits.columnsMax)")
        }
    }

    /// `SELECT *` passes the record through unchanged, so it must stand alone, and only where a row is a
    /// record: not with aggregation (a row is a group) nor with UNNEST (a row is an element).
    func checkWildcard(aggregating: Bool) throws(SQLError) {
        guard let star = query.select.first(where: { $0.kind == .wildcard }) else { return }
        if aggregating {
            throw SQLError(at: star.position, "SELECT * is not allowed in a GROUP BY or aggregate query: a result "
                + "is a group, not a record; name the columns")
        }
        if query.unnest != nil {
            throw SQLError(at: star.position, "SELECT * is not allowed with UNNEST: it would repeat the whole record "
                + "for every element; name the element and the fields to keep")
        }
        if query.select.count > 1 {
            throw SQLError(at: star.position, "* must be the only select item: it outputs the record value unchanged")
        }
    }
}
