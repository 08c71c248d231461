// Expressions: a precedence-climbing parser, two stack frames per nesting level.
// OR < AND < NOT < comparison (= != <> < <= > >=, IS [NOT] NULL, [NOT] IN, [NOT] LIKE) < + - < * / % < unary -.

extension Parser {
    static let intervalUnits: [(names: [String], milliseconds: Int64)] = [
        (["MILLISECOND", "MILLISECONDS"], 1), (["SECOND", "SECONDS"], 1_000), (["MINUTE", "MINUTES"], 60_000),
        (["HOUR", "HOURS"], 3_600_000), (["DAY", "DAYS"], 86_400_000),
    ]
    static let unitList = "MILLISECOND, SECOND, MINUTE, HOUR or DAY"

    func tooDeep(_ position: SourcePosition) -> SQLError {
        SQLError(at: position, "expression is nested too deeply: more than \(SQLLimits.expressionDepthMax) "
            + "levels (SQLLimits.expressionDepthMax)")
    }

    /// A node, refused when the tree under it is higher than the limit.
    func node(_ kind: Expr.Kind, at position: SourcePosition) throws(SQLError) -> Expr {
        let expr = Expr(kind, at: position)
        guard expr.height <= SQLLimits.expressionDepthMax else { throw tooDeep(position) }
        return expr
    }

    func binaryOperator(_ token: Token) -> BinaryOperator? {
        switch token.kind {
        case .word(_, "OR"): return .or
        case .word(_, "AND"): return .and
        case .symbol(let text):
            switch text {
            case "=": return .equal
            case "!=", "<>": return .notEqual
            case "<": return .less
            case "<=": return .lessOrEqual
            case ">": return .greater
            case ">=": return .greaterOrEqual
            case "+": return .add
            case "-": return .subtract
            case "*": return .multiply
            case "/": return .divide
            case "%": return .modulo
            default: return nil
            }
        default: return nil
        }
    }

    /// An expression whose operators all bind at least as tightly as `minimum`.
    mutating func parseExpression(_ minimum: Precedence = .or) throws(SQLError) -> Expr {
        depth += 1
        defer { depth -= 1 }
        guard depth <= SQLLimits.expressionDepthMax else { throw tooDeep(current.position) }
        var left = try parsePrefix(minimum)
        while true {
            let token = current
            if let op = binaryOperator(token), op.precedence >= minimum {
                advance()
                let right = try parseExpression(op.precedence.next)
                left = try node(.binary(op, left, right), at: token.position)
                continue
            }
            guard minimum <= .comparison, let postfix = try parsePostfix(left) else { return left }
            left = postfix
        }
    }

    /// NOT x (when NOT may appear at this precedence), -x, or a primary.
    private mutating func parsePrefix(_ minimum: Precedence) throws(SQLError) -> Expr {
        let token = current
        if token.isWord("NOT"), minimum <= .not {
            advance()
            return try node(.unary(.not, try parseExpression(.not)), at: token.position)
        }
        if token.isSymbol("-") {
            advance()
            return try node(.unary(.negate, try parseExpression(.unary)), at: token.position)
        }
        return try parsePrimary()
    }

    /// IS [NOT] NULL, [NOT] IN (…), [NOT] LIKE p after `left`; nil when none follows.
    private mutating func parsePostfix(_ left: Expr) throws(SQLError) -> Expr? {
        let token = current
        if token.isWord("IS") {
            advance()
            let negated = accept("NOT") != nil
            _ = try expect("NULL", negated ? "after IS NOT" : "or NOT NULL after IS")
            return try node(.isNull(left, negated: negated), at: token.position)
        }
        var negated = false
        if token.isWord("NOT") {
            guard peek().isWord("IN") || peek().isWord("LIKE") else {
                advance()
                throw unexpected("IN or LIKE after NOT", suggesting: ["IN", "LIKE"])
            }
            advance()
            negated = true
        }
        if accept("IN") != nil {
            try expectSymbol("(", "to open the list after IN")
            let list = try parseList(closing: "the IN list")
            return try node(.inList(left, list, negated: negated), at: token.position)
        }
        if accept("LIKE") != nil {
            let pattern = try parseExpression(.additive)
            return try node(.like(left, pattern: pattern, negated: negated), at: token.position)
        }
        return nil
    }

    /// `expr, expr, … )` — at least one expression, then the closing parenthesis.
    private mutating func parseList(closing what: String) throws(SQLError) -> [Expr] {
        var list = [try parseExpression()]
        while acceptSymbol(",") != nil { list.append(try parseExpression()) }
        guard acceptSymbol(")") != nil else { throw unexpected("',' or ')' in \(what)") }
        return list
    }

    private mutating func parsePrimary() throws(SQLError) -> Expr {
        let token = current
        switch token.kind {
        case .integer(let value):
            advance()
            return Expr(.literal(.integer(value)), at: token.position)
        case .decimal(let value):
            advance()
            return Expr(.literal(.decimal(value)), at: token.position)
        case .string(let value):
            advance()
            return Expr(.literal(.string(value)), at: token.position)
        case .symbol("("):
            advance()
            let inner = try parseExpression()
            guard acceptSymbol(")") != nil else {
                throw unexpected("')' to close the '(' at \(token.position)")
            }
            return inner
        case .quotedIdentifier:
            return try parseColumn()
        case .word(let text, let upper):
            switch upper {
            case "TRUE", "FALSE":
                advance()
                return Expr(.literal(.boolean(upper == "TRUE")), at: token.position)
            case "NULL":
                advance()
                return Expr(.literal(.null), at: token.position)
            case "CASE": return try parseCase()
            case "CAST": return try parseCast()
            case "INTERVAL":
                let interval = try parseInterval("")
                return Expr(.interval(milliseconds: interval.milliseconds), at: interval.position)
            default:
                if SQLKeywords.reserved.contains(upper) {
                    throw SQLError(at: token.position, "expected an expression, found '\(text)'")
                }
                if peek().isSymbol("(") { return try parseCall() }
                return try parseColumn()
            }
        default:
            throw unexpected("an expression")
        }
    }

    /// A field path: `name`, `"quoted name"`, `order.customer.id`.
    private mutating func parseColumn() throws(SQLError) -> Expr {
        let start = current.position
        var path = [try parseName("a column name").text]
        while acceptSymbol(".") != nil {
            switch current.kind {
            case .word(let text, _), .quotedIdentifier(let text):
                advance()
                path.append(text)
            default:
                throw unexpected("a field name after '.'")
            }
        }
        return Expr(.column(path), at: start)
    }

    /// `name(args)`, `COUNT(*)`, `name(DISTINCT x, …)`. Window functions are refused here: they belong in GROUP BY.
    private mutating func parseCall() throws(SQLError) -> Expr {
        let token = advance()
        guard case .word(_, let name) = token.kind else { preconditionFailure("parseCall: not at a word") }
        if WindowSpec.functionNames.contains(name) {
            throw SQLError(at: token.position, "window function \(name) is only allowed as an item of GROUP BY")
        }
        advance()  // (
        if let star = acceptSymbol("*") {
            guard name == "COUNT" else { throw SQLError(at: star.position, "expected an argument of \(name), found '*' (only COUNT(*) takes '*')") }
            try expectSymbol(")", "after COUNT(*")
            return try node(.call(FunctionCall(name: name, arguments: [], isStar: true)), at: token.position)
        }
        if acceptSymbol(")") != nil {
            return try node(.call(FunctionCall(name: name, arguments: [])), at: token.position)
        }
        let distinct = accept("DISTINCT") != nil
        let arguments = try parseList(closing: "the arguments of \(name)")
        return try node(.call(FunctionCall(name: name, arguments: arguments, isDistinct: distinct)), at: token.position)
    }

    /// `CASE [operand] WHEN a THEN b … [ELSE c] END`.
    private mutating func parseCase() throws(SQLError) -> Expr {
        let token = advance()
        // Words that cannot start an operand: report the missing WHEN rather than a missing expression.
        if current.isEnd || ["THEN", "ELSE", "END"].contains(current.upperWord ?? "") {
            throw unexpected("WHEN after CASE", suggesting: ["WHEN"])
        }
        let operand = current.isWord("WHEN") ? nil : try parseExpression()
        var branches: [CaseBranch] = []
        while accept("WHEN") != nil {
            let when = try parseExpression()
            _ = try expect("THEN", "after the WHEN expression")
            branches.append(CaseBranch(when: when, then: try parseExpression()))
        }
        guard !branches.isEmpty else {
            throw unexpected(operand == nil ? "WHEN after CASE" : "WHEN after the CASE operand", suggesting: ["WHEN"])
        }
        let otherwise = accept("ELSE") != nil ? try parseExpression() : nil
        guard accept("END") != nil else {
            throw unexpected(otherwise == nil ? "WHEN, ELSE or END in CASE" : "END after the ELSE expression",
                             suggesting: otherwise == nil ? ["WHEN", "ELSE", "END"] : ["END"])
        }
        return try node(.caseWhen(operand: operand, branches: branches, otherwise: otherwise), at: token.position)
    }

    /// `CAST(x AS type)`.
    private mutating func parseCast() throws(SQLError) -> Expr {
        let token = advance()
        try expectSymbol("(", "after CAST")
        let operand = try parseExpression()
        _ = try expect("AS", "and a type in CAST")
        let names = SQLType.spellings.map(\.0)
        let expected = names.dropLast().joined(separator: ", ") + " or " + names.last!
        guard case .word(let text, let upper) = current.kind else { throw unexpected("a type (\(expected)) after AS") }
        guard let type = SQLType.spellings.first(where: { $0.0 == upper })?.1 else {
            throw SQLError(at: current.position, "unknown type '\(Token.clip(text))'"
                + Suggestion.suffix(for: text, among: names) + ": expected \(expected)")
        }
        advance()
        try expectSymbol(")", "after the type in CAST")
        return try node(.cast(operand, type), at: token.position)
    }

    /// `INTERVAL '10' SECOND` (also `INTERVAL 10 SECONDS`). `context` ends "expected INTERVAL … <context>".
    mutating func parseInterval(_ context: String) throws(SQLError) -> Interval {
        guard let keyword = accept("INTERVAL") else {
            throw unexpected("INTERVAL '<n>' <unit>" + (context.isEmpty ? "" : " \(context)"), suggesting: ["INTERVAL"])
        }
        let valueToken = current
        let count: Int64
        switch valueToken.kind {
        case .integer(let value):
            count = value
        case .string(let text):
            guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = Int64(text) else {
                throw SQLError(at: valueToken.position, "expected a whole number of units in quotes after INTERVAL, "
                    + "as in INTERVAL '10' SECOND, found \(valueToken.described)")
            }
            count = value
        default:
            throw unexpected("a whole number of units in quotes after INTERVAL, as in INTERVAL '10' SECOND")
        }
        advance()
        guard case .word(let text, let upper) = current.kind else {
            throw unexpected("an interval unit (\(Parser.unitList)) after INTERVAL '\(count)'")
        }
        guard let unit = Parser.intervalUnits.first(where: { $0.names.contains(upper) }) else {
            throw SQLError(at: current.position, "unknown interval unit '\(Token.clip(text))'"
                + Suggestion.suffix(for: text, among: Parser.intervalUnits.map { $0.names[0] })
                + ": expected \(Parser.unitList)")
        }
        let (milliseconds, overflow) = count.multipliedReportingOverflow(by: unit.milliseconds)
        guard !overflow else {
            throw SQLError(at: valueToken.position, "interval is out of range: at most \(Int64.max) milliseconds")
        }
        advance()
        return Interval(milliseconds: milliseconds, at: keyword.position)
    }
}
