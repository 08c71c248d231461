// Expressions: columns, functions, aggregates and the result-expression rewrite of aggregating queries.
// Recursion depth is the tree height, bounded by SQLLimits.expressionDepthMax (checked in QueryBinder.bind).

/// Where an expression is bound, which decides what its names and aggregates mean.
enum Scope {
    /// Per row: WHERE, UNNEST, GROUP BY, the window's time, aggregate arguments, a stateless SELECT. The
    /// clause is named in "aggregate COUNT is not allowed in <clause>".
    case row(String)
    /// A result expression of an aggregating query (SELECT, HAVING): built from GROUP BY keys, aggregates,
    /// the window's bounds, constants and scalar functions, never from a bare per-row column. `aliases`: a
    /// single name may also be a SELECT alias (HAVING).
    case result(aliases: Bool)
}

/// The aggregate functions by name, and how COUNT's forms map onto `AggregateKind`.
enum AggregateName {
    static let names = ["COUNT", "SUM", "AVG", "MIN", "MAX", "FIRST_VALUE", "LAST_VALUE"]

    static func kind(of call: FunctionCall) -> AggregateKind? {
        switch call.name {
        case "COUNT": return call.isStar ? .countStar : call.isDistinct ? .countDistinct : .count
        case "SUM": return .sum
        case "AVG": return .avg
        case "MIN": return .min
        case "MAX": return .max
        case "FIRST_VALUE": return .firstValue
        case "LAST_VALUE": return .lastValue
        default: return nil
        }
    }
}

extension QueryBinder {
    /// Binds `expr` in `scope`. In result scope a subexpression equal to a GROUP BY key (positions aside)
    /// becomes that key before anything else is looked at.
    mutating func bindExpr(_ expr: Expr, in scope: Scope) throws(SQLError) -> BoundExpr {
        if case .result(let aliases) = scope {
            if aliases, case .column(let path) = expr.kind, path.count == 1, let bound = selectAliases[path[0]] {
                return bound  // the alias wins over a column of the same name (see Binder.swift)
            }
            if let key = groupKeyIndex(of: expr) { return .groupKey(key) }
        }
        switch expr.kind {
        case .literal(let literal): return .literal(literal)
        case .interval(let milliseconds): return .literal(.integer(milliseconds))
        case .column(let path): return try bindColumn(path, at: expr.position, in: scope)
        case .call(let call): return try bindCall(call, at: expr.position, in: scope)
        case .unary(let op, let operand):
            if op == .negate { try requireNumber(operand, for: "'-'") }
            return .unary(op, try bindExpr(operand, in: scope))
        case .binary(let op, let left, let right):
            return .binary(op, try bindExpr(left, in: scope), try bindExpr(right, in: scope))
        case .isNull(let operand, let negated):
            return .isNull(try bindExpr(operand, in: scope), negated: negated)
        case .inList(let operand, let list, let negated):
            if list.count > SQLLimits.functionArgumentsMax {
                throw SQLError(at: expr.position, "IN list has \(list.count) items; the limit is "
                    + "\(SQLLimits.functionArgumentsMax) (SQLLimits.functionArgumentsMax)")
            }
            return .inList(try bindExpr(operand, in: scope), try bindAll(list, in: scope), negated: negated)
        case .like(let operand, let pattern, let negated):
            if case .literal(let literal) = pattern.kind, !literal.isString, literal != .null {
                throw SQLError(at: pattern.position, "LIKE needs a string pattern, found \(literal.described)")
            }
            return .like(try bindExpr(operand, in: scope), pattern: try bindExpr(pattern, in: scope), negated: negated)
        case .caseWhen(let operand, let branches, let otherwise):
            return try bindCase(operand: operand, branches: branches, otherwise: otherwise, in: scope)
        case .cast(let operand, let type):
            return .cast(try bindExpr(operand, in: scope), type)
        }
    }

    mutating func bindAll(_ exprs: [Expr], in scope: Scope) throws(SQLError) -> [BoundExpr] {
        var bound: [BoundExpr] = []
        bound.reserveCapacity(exprs.count)
        for expr in exprs { bound.append(try bindExpr(expr, in: scope)) }
        return bound
    }

    /// The GROUP BY key equal to `expr`, positions aside. Heights are compared first: cheap, and most
    /// subexpressions differ in height from every key.
    func groupKeyIndex(of expr: Expr) -> Int? {
        guard !groupKeys.isEmpty, groupKeys.contains(where: { $0.height == expr.height }) else { return nil }
        let plain = expr.withoutPositions()
        return groupKeys.firstIndex(of: plain)
    }

    /// A simple CASE (`CASE x WHEN v …`) becomes the searched form `CASE WHEN x = v …`; the operand is bound
    /// once and shared by every comparison.
    mutating func bindCase(operand: Expr?, branches: [CaseBranch], otherwise: Expr?,
                           in scope: Scope) throws(SQLError) -> BoundExpr {
        var subject: BoundExpr?
        if let operand { subject = try bindExpr(operand, in: scope) }
        var bound: [BoundBranch] = []
        for branch in branches {
            var condition = try bindExpr(branch.when, in: scope)
            if let subject { condition = .binary(.equal, subject, condition) }
            bound.append(BoundBranch(when: condition, then: try bindExpr(branch.then, in: scope)))
        }
        var elseValue: BoundExpr?
        if let otherwise { elseValue = try bindExpr(otherwise, in: scope) }
        return .caseWhen(branches: bound, otherwise: elseValue)
    }

    // MARK: Columns

    /// A column per row, or in result scope the window's bounds; a result expression never reads a bare
    /// per-row column.
    mutating func bindColumn(_ path: [String], at position: SourcePosition,
                             in scope: Scope) throws(SQLError) -> BoundExpr {
        guard case .result(let aliases) = scope else { return try bindRowColumn(path, at: position) }
        if isWindowed, path == ["window_start"] { return .windowStart }
        if isWindowed, path == ["window_end"] { return .windowEnd }
        // Bound per row first so that a misspelt column is reported as unknown, with a suggestion.
        _ = try bindRowColumn(path, at: position, suggestingAliases: aliases)
        throw SQLError(at: position, "column '\(path.joined(separator: "."))' must appear in GROUP BY or be used "
            + "in an aggregate")
    }

    /// A pseudo-column, the UNNEST element (or a path inside it), or a JSON field slot. `suggestingAliases`:
    /// SELECT aliases are in scope (HAVING), so an unknown name may be a misspelt alias.
    mutating func bindRowColumn(_ path: [String], at position: SourcePosition,
                                suggestingAliases: Bool = false) throws(SQLError) -> BoundExpr {
        guard let first = path.first else { throw SQLError(at: position, "a column name is empty") }
        if let pseudo = PseudoColumn(rawValue: first) {
            guard path.count == 1 else {
                throw SQLError(at: position, "pseudo-column '\(first)' has no fields: "
                    + "'\(path.joined(separator: "."))' cannot be read")
            }
            return .pseudo(pseudo)
        }
        if let elementAlias, first == elementAlias { return .element(Array(path.dropFirst())) }
        if let known, !known.contains(path) {
            let name = path.joined(separator: ".")
            var candidates = known.candidates + PseudoColumn.allCases.map(\.rawValue)
            if let elementAlias { candidates.append(elementAlias) }
            if suggestingAliases { candidates += selectAliases.keys.sorted() }
            throw SQLError(at: position, "unknown column '\(name)'"
                + ColumnSuggestion.suffix(for: name, among: candidates))
        }
        if let slot = fieldSlots[path] { return .field(slot) }
        guard fields.count < SQLLimits.columnsMax else {
            throw SQLError(at: position, "too many distinct fields: the limit is \(SQLLimits.columnsMax) "
                + "(SQLLimits.columnsMax)")
        }
        fieldSlots[path] = fields.count
        fields.append(path)
        return .field(fields.count - 1)
    }

    // MARK: Functions

    /// An aggregate (result scope only), `PROCTIME()`, or a scalar function with its arity checked.
    mutating func bindCall(_ call: FunctionCall, at position: SourcePosition,
                           in scope: Scope) throws(SQLError) -> BoundExpr {
        if call.isStar, call.name != "COUNT" {
            throw SQLError(at: position, "only COUNT takes '*', found \(call.name)(*)")
        }
        if AggregateName.names.contains(call.name) {
            if case .row(let clause) = scope {
                throw SQLError(at: position, "aggregate \(call.name) is not allowed in \(clause)")
            }
            return .aggregate(try bindAggregate(call, at: position))
        }
        if call.isDistinct {
            throw Self.distinctOutsideCount(call.name, at: position)
        }
        if call.name == "PROCTIME" {
            guard call.arguments.isEmpty else {
                throw SQLError(at: position, "PROCTIME takes no arguments, found \(call.arguments.count)")
            }
            // The processing time of which row? A result has none of its own.
            if case .result = scope {
                throw SQLError(at: position, "PROCTIME() must appear in GROUP BY or be used in an aggregate")
            }
            return .proctime
        }
        guard let function = ScalarFunction(rawValue: call.name) else {
            let names = ScalarFunction.allCases.map(\.rawValue) + AggregateName.names + ["PROCTIME"]
            throw SQLError(at: position, "unknown function '\(call.name)'"
                + Suggestion.suffix(for: call.name, among: names))
        }
        try checkArity(function, call.arguments.count, at: position)
        try checkArgumentTypes(function, call.arguments)
        return .function(function, try bindAll(call.arguments, in: scope))
    }

    /// An aggregate call: its argument bound per row (where a nested aggregate is an error), shared with an
    /// identical call made earlier.
    mutating func bindAggregate(_ call: FunctionCall, at position: SourcePosition) throws(SQLError) -> Int {
        guard let kind = AggregateName.kind(of: call) else {
            throw SQLError(at: position, "unknown aggregate '\(call.name)'")  // unreachable: names are checked
        }
        if call.isDistinct, call.name != "COUNT" {
            throw Self.distinctOutsideCount(call.name, at: position)
        }
        var argument: BoundExpr?
        if kind != .countStar {
            guard call.arguments.count == 1 else {
                let expected = call.name == "COUNT" ? "one argument or *" : "1 argument"
                throw SQLError(at: position, "\(call.name) takes \(expected), found \(call.arguments.count)")
            }
            if kind == .sum || kind == .avg { try requireNumber(call.arguments[0], for: call.name) }
            argument = try bindExpr(call.arguments[0], in: .row("the argument of \(call.name)"))
        }
        let aggregate = AggregateCall(kind, argument)
        if let index = aggregateSlots[aggregate] { return index }
        guard aggregates.count < SQLLimits.columnsMax else {
            throw SQLError(at: position, "too many distinct aggregates: the limit is \(SQLLimits.columnsMax) "
                + "(SQLLimits.columnsMax)")
        }
        aggregateSlots[aggregate] = aggregates.count
        aggregates.append(aggregate)
        return aggregates.count - 1
    }

    static func distinctOutsideCount(_ name: String, at position: SourcePosition) -> SQLError {
        SQLError(at: position, "DISTINCT is only allowed in COUNT(DISTINCT …), found \(name)(DISTINCT …)")
    }

    /// `<NAME> takes <expected>, found <count>` unless `count` is within the function's arity.
    func checkArity(_ function: ScalarFunction, _ count: Int, at position: SourcePosition) throws(SQLError) {
        let arity = function.arity
        guard !arity.contains(count) else { return }
        let name = function.rawValue
        let expected: String
        if arity.lowerBound == arity.upperBound {
            expected = arity.lowerBound == 1 ? "1 argument" : "\(arity.lowerBound) arguments"
        } else if arity.upperBound == SQLLimits.functionArgumentsMax {
            expected = count < arity.lowerBound
                ? "at least \(arity.lowerBound) argument" + (arity.lowerBound == 1 ? "" : "s")
                : "at most \(arity.upperBound) arguments (SQLLimits.functionArgumentsMax)"
        } else if arity.count == 2 {
            expected = "\(arity.lowerBound) or \(arity.upperBound) arguments"
        } else {
            expected = "\(arity.lowerBound) to \(arity.upperBound) arguments"
        }
        throw SQLError(at: position, "\(name) takes \(expected), found \(count)")
    }

    /// Literal arguments that can never work: numeric functions of a string or boolean constant.
    func checkArgumentTypes(_ function: ScalarFunction, _ arguments: [Expr]) throws(SQLError) {
        switch function {
        case .abs, .round, .floor, .ceil, .substring:
            // SUBSTRING's string is its first argument; its start and length are numbers.
            let numeric = function == .substring ? arguments.dropFirst() : arguments[...]
            for argument in numeric { try requireNumber(argument, for: function.rawValue) }
        default:
            break
        }
    }

    /// An error when `expr` is a string or boolean literal where only a number makes sense.
    func requireNumber(_ expr: Expr, for what: String) throws(SQLError) {
        guard case .literal(let literal) = expr.kind else { return }
        switch literal {
        case .string, .boolean:
            throw SQLError(at: expr.position, "\(what) needs a number, found \(literal.described)")
        case .integer, .decimal, .null:
            return
        }
    }
}
