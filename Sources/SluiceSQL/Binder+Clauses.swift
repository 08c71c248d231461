// The clauses of a query: UNNEST, GROUP BY and its window, the SELECT list, EMIT and WITH.

extension QueryBinder {
    /// The UNNEST array, bound per row before the alias comes into scope (so `UNNEST(w) AS w` reads the
    /// field `w`); afterwards the alias names the element.
    mutating func bindUnnest(_ unnest: Unnest) throws(SQLError) -> BoundExpr {
        let alias = unnest.alias.text
        if PseudoColumn(rawValue: alias) != nil {
            throw SQLError(at: unnest.alias.position, "UNNEST alias '\(alias)' is the name of a pseudo-column; "
                + "choose another name")
        }
        // A literal is never an array (the dialect has no array literals), so it would yield no rows at all.
        if case .literal(let literal) = unnest.array.kind {
            throw SQLError(at: unnest.array.position, "UNNEST needs an array, such as SPLIT(line, ' '), "
                + "found \(literal.described)")
        }
        let array = try bindExpr(unnest.array, in: .row("UNNEST"))
        elementAlias = alias
        return array
    }

    /// GROUP BY, the window, then the SELECT list and HAVING as result expressions.
    mutating func bindAggregation(projection: inout Projection) throws(SQLError) -> Aggregation {
        var keys: [BoundExpr] = []
        var window: WindowPlan?
        if let group = query.groupBy {
            keys = try bindGroupKeys(group.keys)
            if let spec = group.window {
                window = try bindWindow(spec)
                isWindowed = true
            }
        }
        projection = try bindProjection(in: .result(aliases: false))
        var having: BoundExpr?
        if let condition = query.having { having = try bindExpr(condition, in: .result(aliases: true)) }
        // Rows grouped by the record key are already in the partition of their group. Without keys there is
        // nothing to re-key by (Aggregation.needsRepartition's definition); any other key needs a shuffle.
        let needsRepartition = !keys.isEmpty && keys != [.pseudo(.key)]
        return Aggregation(keys: keys, window: window, aggregates: aggregates, having: having,
                           needsRepartition: needsRepartition)
    }

    /// The keys, per row; each remembered without positions for matching in SELECT and HAVING.
    mutating func bindGroupKeys(_ keys: [Expr]) throws(SQLError) -> [BoundExpr] {
        var bound: [BoundExpr] = []
        for (index, key) in keys.enumerated() {
            if index == SQLLimits.columnsMax {
                throw SQLError(at: key.firstPosition, "too many GROUP BY keys: the limit is "
                    + "\(SQLLimits.columnsMax) (SQLLimits.columnsMax)")
            }
            if case .literal(let literal) = key.kind {
                throw SQLError(at: key.position, "GROUP BY key \(SQLPrinter.literal(literal)) is a constant "
                    + "(positions such as GROUP BY 1 are not supported): write the expression itself")
            }
            let plain = key.withoutPositions()
            // groupKeys holds the earlier keys, already without positions: one erasure per key, not per pair.
            if let earlier = groupKeys.firstIndex(of: plain) {
                throw SQLError(at: key.firstPosition, "'\(plain)' appears twice in GROUP BY (first at "
                    + "\(keys[earlier].firstPosition))")
            }
            bound.append(try bindExpr(key, in: .row("GROUP BY")))
            groupKeys.append(plain)
        }
        return bound
    }

    /// The window: its time source and checked intervals.
    mutating func bindWindow(_ spec: WindowSpec) throws(SQLError) -> WindowPlan {
        let name = spec.kind.functionName
        let time = try bindTimeSource(spec.time, of: name)
        switch spec.kind {
        case .tumble(let size):
            try checkDuration(size, "\(name) size")
            return WindowPlan(kind: .tumble(sizeMs: size.milliseconds), time: time)
        case .session(let gap):
            try checkDuration(gap, "\(name) gap")
            return WindowPlan(kind: .session(gapMs: gap.milliseconds), time: time)
        case .hop(let slide, let size):
            try checkDuration(slide, "\(name) slide")
            try checkDuration(size, "\(name) size")
            guard slide.milliseconds <= size.milliseconds else {
                throw SQLError(at: slide.position, "HOP slide \(slide) is longer than its size \(size): records "
                    + "between windows would be dropped; use a slide no longer than the size")
            }
            // Both are at most durationMaxMs (2^60), so the sum cannot overflow. Same rounding as the engine.
            let windows = (size.milliseconds + slide.milliseconds - 1) / slide.milliseconds
            guard windows <= SQLLimits.windowsPerRecordMax else {
                throw SQLError(at: spec.position, "HOP puts each record in \(windows) windows (size / slide); the "
                    + "limit is \(SQLLimits.windowsPerRecordMax) (SQLLimits.windowsPerRecordMax)")
            }
            return WindowPlan(kind: .hop(slideMs: slide.milliseconds, sizeMs: size.milliseconds), time: time)
        }
    }

    /// `_timestamp` and `PROCTIME()` have sources of their own; anything else is a per-row expression.
    mutating func bindTimeSource(_ time: Expr, of window: String) throws(SQLError) -> TimeSource {
        switch time.kind {
        case .column(let path) where path == [PseudoColumn.timestamp.rawValue]:
            return .recordTimestamp
        case .call(let call) where call.name == "PROCTIME" && call.arguments.isEmpty && !call.isStar:
            return .processingTime
        case .literal(let literal):
            throw SQLError(at: time.position, "the time argument of \(window) is a constant (\(literal.described)): "
                + "use a field, _timestamp or PROCTIME()")
        default:
            return .expression(try bindExpr(time, in: .row("the time argument of \(window)")))
        }
    }

    /// An interval used as a duration: more than zero and at most `SQLLimits.durationMaxMs`.
    func checkDuration(_ interval: Interval, _ what: String) throws(SQLError) {
        guard interval.milliseconds > 0 else {
            throw SQLError(at: interval.position, "\(what) must be greater than 0")
        }
        guard interval.milliseconds <= SQLLimits.durationMaxMs else {
            throw SQLError(at: interval.position, "\(what) is too long: at most \(SQLLimits.durationMaxMs) "
                + "milliseconds (SQLLimits.durationMaxMs)")
        }
    }

    /// The SELECT list: `*`, or named columns bound in `scope` (per row, or as result expressions).
    mutating func bindProjection(in scope: Scope) throws(SQLError) -> Projection {
        // checkWildcard has made sure `*` stands alone where it appears.
        if query.select.count == 1, query.select[0].kind == .wildcard { return .wildcard }
        var columns: [OutputColumn] = []
        var seen: [String: SourcePosition] = [:]
        for (index, item) in query.select.enumerated() {
            guard case .expression(let expr) = item.kind else { continue }
            let bound = try bindExpr(expr, in: scope)
            let name = Self.outputName(of: expr, alias: item.alias?.text, index: index)
            let position = item.alias?.position ?? item.position
            if isWindowed, name == "window_start" || name == "window_end" {
                throw SQLError(at: position, "\(name) is added to every windowed result: leave it out, or name "
                    + "this column differently with AS")
            }
            if let earlier = seen[name] {
                throw SQLError(at: position, "duplicate output column '\(name)': the select item at \(earlier) has "
                    + "the same name (rename one with AS)")
            }
            seen[name] = position
            if let alias = item.alias { selectAliases[alias.text] = bound }
            columns.append(OutputColumn(name: name, expr: bound))
        }
        return .columns(columns)
    }

    /// The output name of a select item; see the top of Binder.swift.
    static func outputName(of expr: Expr, alias: String?, index: Int) -> String {
        if let alias { return alias }
        switch expr.kind {
        case .column(let path): return path.last ?? "col\(index + 1)"
        case .call(let call): return call.name.lowercased()
        default: return "col\(index + 1)"
        }
    }

    /// EMIT: only for aggregating queries; FINAL and EVERY only with a window (without one a group never
    /// closes). Defaults: FINAL with a window, CHANGES without.
    func bindEmit(aggregating: Bool) throws(SQLError) -> EmitPolicy {
        guard aggregating else {
            if let emit = query.emit { throw SQLError(at: emit.position, "EMIT applies to GROUP BY queries") }
            return .changes
        }
        guard let emit = query.emit else { return isWindowed ? .final : .changes }
        switch emit.mode {
        case .changes:
            return .changes
        case .final where isWindowed:
            return .final
        case .every(let interval) where isWindowed:
            try checkDuration(interval, "EMIT EVERY interval")
            return .every(intervalMs: interval.milliseconds)
        case .final, .every:
            let mode = emit.mode == .final ? "FINAL" : "EVERY"
            throw SQLError(at: emit.position, "EMIT \(mode) needs a window: without TUMBLE, HOP or SESSION in "
                + "GROUP BY a group never closes; use EMIT CHANGES")
        }
    }

    /// WITH options: they tune the watermark, so they need a window; late records go to a third topic.
    func bindOptions(into plan: inout ProcessorPlan) throws(SQLError) {
        let options = query.options
        let needsWindow = "applies to windowed queries (GROUP BY with TUMBLE, HOP or SESSION)"
        if let lateness = options.allowedLateness {
            guard isWindowed else { throw SQLError(at: lateness.position, "allowed_lateness \(needsWindow)") }
            guard lateness.milliseconds <= SQLLimits.durationMaxMs else {
                throw SQLError(at: lateness.position, "allowed_lateness is too long: at most "
                    + "\(SQLLimits.durationMaxMs) milliseconds (SQLLimits.durationMaxMs)")
            }
            plan.allowedLatenessMs = lateness.milliseconds
        }
        if let timeout = options.idleTimeout {
            guard isWindowed else { throw SQLError(at: timeout.position, "idle_timeout \(needsWindow)") }
            try checkDuration(timeout, "idle_timeout")
            plan.idleTimeoutMs = timeout.milliseconds
        }
        if let late = options.lateRecords {
            guard isWindowed else { throw SQLError(at: late.position, "late_records \(needsWindow)") }
            for (role, topic) in [("sink", query.sink.text), ("source", query.source.text)] where late.text == topic {
                throw SQLError(at: late.position, "late_records topic '\(late.text)' is the \(role) topic; "
                    + "late records need a topic of their own")
            }
            plan.lateRecordsTopic = late.text
        }
    }
}
