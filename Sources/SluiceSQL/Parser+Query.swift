// The query: INSERT INTO … SELECT … FROM … [WHERE] [GROUP BY] [HAVING] [EMIT] [WITH], in that order.

extension Query {
    /// Parses one processor query. Throws an `SQLError` naming the line, column, what was expected and
    /// what was found; never traps, whatever the input.
    public static func parse(_ text: String) throws(SQLError) -> Query {
        var parser = try Parser(text)
        return try parser.parseQuery()
    }

    /// Parses one processor query (same as `Query.parse`).
    public init(parsing text: String) throws(SQLError) {
        self = try Query.parse(text)
    }
}

extension Expr {
    /// Parses a standalone expression (for tests and tools); window functions are refused as in SELECT.
    public static func parse(_ text: String) throws(SQLError) -> Expr {
        var parser = try Parser(text)
        let expr = try parser.parseExpression()
        guard parser.current.isEnd else { throw parser.unexpected("an operator or the end of the expression") }
        return expr
    }
}

extension Parser {
    /// The optional clauses after FROM, in the order they must appear.
    private enum Clause: Int, CaseIterable {
        case filter, groupBy, having, emit, with

        var keyword: String {
            switch self {
            case .filter: return "WHERE"
            case .groupBy: return "GROUP BY"
            case .having: return "HAVING"
            case .emit: return "EMIT"
            case .with: return "WITH"
            }
        }

        var firstWord: String { String(keyword.prefix { $0 != " " }) }

        /// How the clause is named in "after …".
        var ending: String {
            switch self {
            case .filter: return "the WHERE condition"
            case .groupBy: return "GROUP BY"
            case .having: return "the HAVING condition"
            case .emit: return "the EMIT clause"
            case .with: return "the WITH options"
            }
        }

        /// Whether the clause ends with an expression, so AND / OR could also have come next.
        var endsWithCondition: Bool { self == .filter || self == .having }
    }

    mutating func parseQuery() throws(SQLError) -> Query {
        let insert = try expect("INSERT", "at the start of the query")
        _ = try expect("INTO", "after INSERT")
        let sink = try parseTopic("the sink topic after INSERT INTO")
        _ = try expect("SELECT", "after the sink topic")
        let select = try parseSelectList()
        _ = try expect("FROM", "after the select list")
        let source = try parseTopic("the source topic after FROM")
        var query = Query(sink: sink, select: select, source: source, at: insert.position)
        if acceptSymbol(",") != nil { query.unnest = try parseUnnest() }
        var last: Clause?
        for clause in Clause.allCases {
            guard current.isWord(clause.firstWord) else { continue }
            try parseClause(clause, into: &query)
            last = clause
        }
        if acceptSymbol(";") != nil, !current.isEnd { throw unexpected("end of query after ';'") }
        guard current.isEnd else { throw unexpectedAfterClauses(last, hadUnnest: query.unnest != nil) }
        return query
    }

    private mutating func parseClause(_ clause: Clause, into query: inout Query) throws(SQLError) {
        let token = advance()
        switch clause {
        case .filter: query.filter = try parseExpression()
        case .groupBy:
            _ = try expect("BY", "after GROUP")
            query.groupBy = try parseGroupBy(at: token.position)
        case .having: query.having = try parseExpression()
        case .emit: query.emit = try parseEmit(at: token.position)
        case .with: query.options = try parseOptions()
        }
    }

    /// The error for text left after the last clause: lists the clauses that could still come.
    private func unexpectedAfterClauses(_ last: Clause?, hadUnnest: Bool) -> SQLError {
        let remaining = Clause.allCases.filter { $0.rawValue > (last?.rawValue ?? -1) }
        let options = remaining.map(\.keyword)
        var suggestions = remaining.map(\.firstWord)
        if last?.endsWithCondition == true { suggestions += ["AND", "OR"] }
        if last == .groupBy { suggestions += ["TUMBLE", "HOP", "SESSION"] }
        let after = last?.ending ?? (hadUnnest ? "UNNEST" : "the source topic")
        var error = unexpected((options + ["end of query"]).joinedAsAlternatives() + " after \(after)",
                               suggesting: suggestions)
        if let word = current.upperWord, let misplaced = Clause.allCases.first(where: { $0.firstWord == word }),
           misplaced.rawValue <= (last?.rawValue ?? -1) {
            error.message += " (clauses go in the order WHERE, GROUP BY, HAVING, EMIT, WITH, each at most once)"
        }
        return error
    }

    private mutating func parseSelectList() throws(SQLError) -> [SelectItem] {
        var items: [SelectItem] = []
        repeat {
            if current.isWord("FROM") || current.isEnd { throw unexpected("a select item (an expression or *)") }
            items.append(try parseSelectItem())
        } while acceptSymbol(",") != nil
        guard current.isWord("FROM") else {
            throw unexpected("',' or FROM after select item", suggesting: items.last?.alias == nil ? ["FROM", "AS"] : ["FROM"])
        }
        return items
    }

    private mutating func parseSelectItem() throws(SQLError) -> SelectItem {
        let start = current.position
        if acceptSymbol("*") != nil {
            if current.isWord("AS") { throw SQLError(at: current.position, "expected ',' or FROM after '*', found 'AS' (* cannot have an alias)") }
            return SelectItem(.wildcard, at: start)
        }
        let expr = try parseExpression()
        let alias = accept("AS") != nil ? try parseName("a name after AS") : nil
        return SelectItem(.expression(expr), alias: alias, at: start)
    }

    /// `UNNEST(array) AS name`, after the comma that follows the source.
    private mutating func parseUnnest() throws(SQLError) -> Unnest {
        let token = try expect("UNNEST", "after ',' in FROM")
        try expectSymbol("(", "after UNNEST")
        let array = try parseExpression()
        try expectSymbol(")", "after the UNNEST expression")
        _ = try expect("AS", "and a name after UNNEST(…)")
        let alias = try parseName("a name after AS")
        return Unnest(array: array, alias: alias, at: token.position)
    }

    private mutating func parseGroupBy(at position: SourcePosition) throws(SQLError) -> GroupBy {
        var group = GroupBy(keys: [], at: position)
        repeat {
            if let name = current.upperWord, WindowSpec.functionNames.contains(name), peek().isSymbol("(") {
                if let first = group.window {
                    throw SQLError(at: current.position, "GROUP BY takes at most one window function; found \(name) "
                        + "after \(first.kind.functionName) at \(first.position)")
                }
                group.window = try parseWindow()
            } else {
                group.keys.append(try parseExpression())
            }
        } while acceptSymbol(",") != nil
        return group
    }

    /// TUMBLE(time, size) | HOP(time, slide, size) | SESSION(time, gap).
    private mutating func parseWindow() throws(SQLError) -> WindowSpec {
        let token = advance()
        let name = token.upperWord!
        advance()  // (
        let time = try parseExpression()
        let signature: String
        switch name {
        case "TUMBLE": signature = "TUMBLE(time, size)"
        case "HOP": signature = "HOP(time, slide, size)"
        default: signature = "SESSION(time, gap)"
        }
        var intervals: [Interval] = []
        let names = name == "TUMBLE" ? ["size"] : name == "HOP" ? ["slide", "size"] : ["gap"]
        for argument in names {
            try expectSymbol(",", "and the \(argument) argument of \(signature)")
            intervals.append(try parseInterval("for the \(argument) of \(name)"))
        }
        try expectSymbol(")", "after the last argument of \(signature)")
        let kind: WindowSpec.Kind
        switch name {
        case "TUMBLE": kind = .tumble(size: intervals[0])
        case "HOP": kind = .hop(slide: intervals[0], size: intervals[1])
        default: kind = .session(gap: intervals[0])
        }
        return WindowSpec(kind, time: time, at: token.position)
    }

    private mutating func parseEmit(at position: SourcePosition) throws(SQLError) -> Emit {
        if accept("FINAL") != nil { return Emit(.final, at: position) }
        if accept("CHANGES") != nil { return Emit(.changes, at: position) }
        if accept("EVERY") != nil { return Emit(.every(try parseInterval("after EMIT EVERY")), at: position) }
        throw unexpected("FINAL, CHANGES or EVERY after EMIT", suggesting: ["FINAL", "CHANGES", "EVERY"])
    }

    /// `(name = value, …)` with each option at most once.
    private mutating func parseOptions() throws(SQLError) -> QueryOptions {
        try expectSymbol("(", "after WITH")
        var options = QueryOptions()
        var seen: [String: SourcePosition] = [:]
        repeat {
            let token = current
            guard case .word(let text, _) = token.kind else {
                throw unexpected("an option name (\(QueryOptions.names.joinedAsAlternatives()))")
            }
            let name = text.lowercased()
            guard QueryOptions.names.contains(name) else {
                throw SQLError(at: token.position, "unknown option '\(Token.clip(text))'"
                    + Suggestion.suffix(for: text, among: QueryOptions.names)
                    + ": expected \(QueryOptions.names.joinedAsAlternatives())")
            }
            if let earlier = seen[name] {
                throw SQLError(at: token.position, "duplicate option '\(name)': it is already set at \(earlier)")
            }
            seen[name] = token.position
            advance()
            try expectSymbol("=", "after \(name)")
            switch name {
            case "allowed_lateness": options.allowedLateness = try parseInterval("after allowed_lateness =")
            case "idle_timeout": options.idleTimeout = try parseInterval("after idle_timeout =")
            default:
                let value = current
                guard case .string(let topic) = value.kind else {
                    throw unexpected("a topic name in quotes after late_records =, as in late_records = 'late-clicks'")
                }
                advance()
                let name = Name(topic, at: value.position)
                try validateTopic(name)
                options.lateRecords = name
            }
        } while acceptSymbol(",") != nil
        try expectSymbol(")", "or ',' after the option's value")
        return options
    }
}

extension Array where Element == String {
    /// `A`, `A or B`, `A, B or C`.
    func joinedAsAlternatives() -> String {
        guard count > 1 else { return first ?? "" }
        return dropLast().joined(separator: ", ") + " or " + last!
    }
}
