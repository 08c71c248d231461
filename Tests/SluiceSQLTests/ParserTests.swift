import SluiceSQL
import SluiceTestSupport
import Testing

/// The dialect of issue 4 §1, clause by clause: what each parses to, ignoring positions unless a test is
/// about positions.
@Suite("SQL parser")
struct ParserTests {
    static func parse(_ text: String) throws -> Query { try Query.parse(text).withoutPositions() }
    static func expr(_ text: String) throws -> Expr { try Expr.parse(text).withoutPositions() }

    static func col(_ path: String...) -> Expr { Expr(.column(path)) }
    static func int(_ value: Int64) -> Expr { Expr(.literal(.integer(value))) }
    static func str(_ value: String) -> Expr { Expr(.literal(.string(value))) }
    static func bin(_ op: BinaryOperator, _ l: Expr, _ r: Expr) -> Expr { Expr(.binary(op, l, r)) }
    static func call(_ name: String, _ args: Expr..., distinct: Bool = false) -> Expr {
        Expr(.call(FunctionCall(name: name, arguments: args, isDistinct: distinct)))
    }
    static let countStar = Expr(.call(FunctionCall(name: "COUNT", arguments: [], isStar: true)))

    @Test("the example query of ARCHITECTURE.md")
    func architectureExample() throws {
        let query = try Query.parse(architectureExampleQuery)
        let expected = Query(
            sink: Name("clicks_per_user"),
            select: [
                .expression(Self.col("user")),
                .expression(Self.countStar, alias: Name("clicks")),
                .expression(Self.call("SUM", Self.col("amount")), alias: Name("total")),
            ],
            source: Name("clicks"),
            filter: Self.bin(.equal, Self.col("action"), Self.str("click")),
            groupBy: GroupBy(keys: [Self.col("user")],
                             window: WindowSpec(.tumble(size: Interval(milliseconds: 10_000)), time: Self.col("ts"))),
            emit: Emit(.final))
        #expect(query.withoutPositions() == expected)
        // Positions: every node points at its first token (operators at the operator).
        #expect(query.position == SourcePosition(line: 1, column: 1))
        #expect(query.sink.position == SourcePosition(line: 1, column: 13))
        #expect(query.select[1].position == SourcePosition(line: 2, column: 14))
        #expect(query.select[1].alias?.position == SourcePosition(line: 2, column: 26))
        #expect(query.source.position == SourcePosition(line: 3, column: 6))
        #expect(query.filter?.position == SourcePosition(line: 4, column: 14))
        #expect(query.groupBy?.position == SourcePosition(line: 5, column: 1))
        #expect(query.groupBy?.window?.position == SourcePosition(line: 5, column: 16))
        if case .tumble(let size) = query.groupBy?.window?.kind {
            #expect(size.position == SourcePosition(line: 5, column: 27))
        }
        #expect(query.emit?.position == SourcePosition(line: 6, column: 1))
    }

    @Test("word count: UNNEST(SPLIT(_value, ' ')) AS word GROUP BY word")
    func wordCount() throws {
        let query = try Self.parse("""
            insert into word_counts
            select word, count(*) as n
            from lines, unnest(split(_value, ' ')) as word
            group by word
            emit changes
            """)
        #expect(query.unnest == Unnest(array: Self.call("SPLIT", Self.col("_value"), Self.str(" ")), alias: Name("word")))
        #expect(query.groupBy == GroupBy(keys: [Self.col("word")]))
        #expect(query.emit == Emit(.changes))
        #expect(query.select[1] == .expression(Self.countStar, alias: Name("n")))
    }

    @Test("every clause at once, and the canonical print of it")
    func everyClause() throws {
        let text = """
            INSERT INTO "out-topic"
            SELECT *, order.customer.id AS customer, "with spaces", _key, _timestamp
            FROM "in-topic", UNNEST(items) AS item
            WHERE amount > 10 AND NOT deleted
            GROUP BY order.customer.id, HOP(_timestamp, INTERVAL '1' MINUTE, INTERVAL '5' MINUTES)
            HAVING COUNT(DISTINCT item) >= 2
            EMIT EVERY INTERVAL '500' MILLISECONDS
            WITH (allowed_lateness = INTERVAL '2' SECOND, idle_timeout = INTERVAL '1' HOUR, late_records = 'late')
            """
        // The canonical print differs only in topic quoting (names with '-' are always quoted).
        let query = try Self.parse(text)
        #expect(query.sink == Name("out-topic"))
        #expect(query.select[0].kind == .wildcard)
        #expect(query.select[1] == .expression(Self.col("order", "customer", "id"), alias: Name("customer")))
        #expect(query.select[2] == .expression(Self.col("with spaces")))
        #expect(query.source == Name("in-topic"))
        #expect(query.groupBy?.window?.kind == .hop(slide: Interval(milliseconds: 60_000), size: Interval(milliseconds: 300_000)))
        #expect(query.emit == Emit(.every(Interval(milliseconds: 500))))
        #expect(query.options == QueryOptions(allowedLateness: Interval(milliseconds: 2_000),
                                              idleTimeout: Interval(milliseconds: 3_600_000), lateRecords: Name("late")))
        #expect(query.having == Self.bin(.greaterOrEqual, Self.call("COUNT", Self.col("item"), distinct: true), Self.int(2)))
        #expect(query.description == """
            INSERT INTO "out-topic"
            SELECT *, order.customer.id AS customer, "with spaces", _key, _timestamp
            FROM "in-topic", UNNEST(items) AS item
            WHERE amount > 10 AND NOT deleted
            GROUP BY order.customer.id, HOP(_timestamp, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE)
            HAVING COUNT(DISTINCT item) >= 2
            EMIT EVERY INTERVAL '500' MILLISECOND
            WITH (allowed_lateness = INTERVAL '2' SECOND, idle_timeout = INTERVAL '1' HOUR, late_records = 'late')
            """)
    }

    @Test("the smallest query; bare topic names with '-' and '.'; trailing ';' and comments")
    func minimal() throws {
        let query = try Self.parse("""
            -- a stateless filter
            INSERT INTO errors-v2.eu SELECT * FROM logs.app-1 -- everything
            WHERE level = 'ERROR';
            """)
        #expect(query.sink == Name("errors-v2.eu"))
        #expect(query.source == Name("logs.app-1"))
        #expect(query.groupBy == nil && query.having == nil && query.emit == nil && query.options.isEmpty)
    }

    @Test("windows: TUMBLE, HOP, SESSION, PROCTIME(), anywhere in the GROUP BY list")
    func windows() throws {
        let tumble = try Self.parse("INSERT INTO o SELECT COUNT(*) FROM i GROUP BY TUMBLE(PROCTIME(), INTERVAL '1' DAY)")
        #expect(tumble.groupBy == GroupBy(keys: [], window: WindowSpec(.tumble(size: Interval(milliseconds: 86_400_000)),
                                                                        time: Self.call("PROCTIME"))))
        let session = try Self.parse("INSERT INTO o SELECT k FROM i GROUP BY session(ts, interval 30 seconds), k, j")
        #expect(session.groupBy == GroupBy(keys: [Self.col("k"), Self.col("j")],
                                           window: WindowSpec(.session(gap: Interval(milliseconds: 30_000)), time: Self.col("ts"))))
        // Not followed by '(' these are ordinary names.
        let names = try Self.parse("INSERT INTO o SELECT tumble, hop FROM i GROUP BY session")
        #expect(names.groupBy == GroupBy(keys: [Self.col("session")]))
    }

    @Test("keywords are case-insensitive; identifiers keep their case")
    func caseInsensitive() throws {
        let a = try Self.parse("InSeRt InTo Out SeLeCt UsEr As U fRoM In_ wHeRe X iS nOt NuLl EmIt FiNaL")
        let b = try Self.parse("INSERT INTO Out SELECT UsEr AS U FROM In_ WHERE X IS NOT NULL EMIT FINAL")
        #expect(a == b)
        #expect(a.select[0] == .expression(Self.col("UsEr"), alias: Name("U")))
    }

    @Test("literals: strings with '' escapes and newlines, integers, decimals, booleans, NULL")
    func literals() throws {
        #expect(try Self.expr("'it''s'") == Self.str("it's"))
        #expect(try Self.expr("'a\nb'") == Self.str("a\nb"))
        #expect(try Self.expr("''") == Self.str(""))
        #expect(try Self.expr("9223372036854775807") == Self.int(Int64.max))
        #expect(try Self.expr("1.5") == Expr(.literal(.decimal(1.5))))
        #expect(try Self.expr("2e3") == Expr(.literal(.decimal(2000))))
        #expect(try Self.expr("2.5E-1") == Expr(.literal(.decimal(0.25))))
        #expect(try Self.expr("true") == Expr(.literal(.boolean(true))))
        #expect(try Self.expr("FALSE") == Expr(.literal(.boolean(false))))
        #expect(try Self.expr("null") == Expr(.literal(.null)))
        #expect(try Self.expr("-5") == Expr(.unary(.negate, Self.int(5))))
        #expect(try Self.expr("\"a \"\"b\"\"\".c") == Self.col("a \"b\"", "c"))
        #expect(try Self.expr("\"select\"") == Self.col("select"))
    }

    @Test("intervals in milliseconds, every unit, singular and plural", arguments: [
        ("INTERVAL '7' MILLISECOND", 7), ("INTERVAL '7' MILLISECONDS", 7), ("interval '10' second", 10_000),
        ("INTERVAL '2' SECONDS", 2_000), ("INTERVAL '3' MINUTE", 180_000), ("INTERVAL 3 MINUTES", 180_000),
        ("INTERVAL '1' HOUR", 3_600_000), ("INTERVAL '2' HOURS", 7_200_000), ("INTERVAL '1' DAY", 86_400_000),
        ("INTERVAL '0' DAYS", 0),
    ] as [(String, Int64)])
    func intervals(text: String, milliseconds: Int64) throws {
        #expect(try Self.expr(text) == Expr(.interval(milliseconds: milliseconds)))
    }

    @Test("CASE (searched and simple), CAST with every type spelling, calls")
    func caseCastCalls() throws {
        #expect(try Self.expr("CASE WHEN a > 1 THEN 'big' WHEN a > 0 THEN 'small' ELSE 'none' END")
            == Expr(.caseWhen(operand: nil, branches: [
                CaseBranch(when: Self.bin(.greater, Self.col("a"), Self.int(1)), then: Self.str("big")),
                CaseBranch(when: Self.bin(.greater, Self.col("a"), Self.int(0)), then: Self.str("small")),
            ], otherwise: Self.str("none"))))
        #expect(try Self.expr("case x when 1 then 'one' end")
            == Expr(.caseWhen(operand: Self.col("x"), branches: [CaseBranch(when: Self.int(1), then: Self.str("one"))],
                              otherwise: nil)))
        for (spelling, type) in [("STRING", SQLType.string), ("varchar", .string), ("BIGINT", .bigint), ("int", .bigint),
                                 ("DOUBLE", .double), ("Boolean", .boolean), ("TIMESTAMP", .timestamp)] {
            #expect(try Self.expr("CAST(x AS \(spelling))") == Expr(.cast(Self.col("x"), type)))
        }
        #expect(try Self.expr("coalesce(a, LOWER(b), 'x')")
            == Self.call("COALESCE", Self.col("a"), Self.call("LOWER", Self.col("b")), Self.str("x")))
        #expect(try Self.expr("count(*)") == Self.countStar)
        #expect(try Self.expr("PROCTIME()") == Self.call("PROCTIME"))
        #expect(try Self.expr("SUBSTRING(s, 1, 3)") == Self.call("SUBSTRING", Self.col("s"), Self.int(1), Self.int(3)))
    }

    @Test("IS [NOT] NULL, [NOT] IN, [NOT] LIKE")
    func predicates() throws {
        #expect(try Self.expr("a IS NULL") == Expr(.isNull(Self.col("a"), negated: false)))
        #expect(try Self.expr("a IS NOT NULL") == Expr(.isNull(Self.col("a"), negated: true)))
        #expect(try Self.expr("a IN (1, 2)") == Expr(.inList(Self.col("a"), [Self.int(1), Self.int(2)], negated: false)))
        #expect(try Self.expr("a NOT IN ('x')") == Expr(.inList(Self.col("a"), [Self.str("x")], negated: true)))
        #expect(try Self.expr("a LIKE 'x%'") == Expr(.like(Self.col("a"), pattern: Self.str("x%"), negated: false)))
        #expect(try Self.expr("a NOT LIKE 'x%'") == Expr(.like(Self.col("a"), pattern: Self.str("x%"), negated: true)))
        #expect(try Self.expr("a <> b") == Self.bin(.notEqual, Self.col("a"), Self.col("b")))
        #expect(try Self.expr("a != b") == Self.bin(.notEqual, Self.col("a"), Self.col("b")))
    }

    /// Each row: input, and the same with the parentheses the precedence implies; both must parse alike,
    /// and the canonical print is the third column.
    @Test("precedence and associativity", arguments: [
        ("a OR b AND c", "a OR (b AND c)", "a OR b AND c"),
        ("a AND b OR c", "(a AND b) OR c", "a AND b OR c"),
        ("NOT a AND b", "(NOT a) AND b", "NOT a AND b"),
        ("NOT a = b", "NOT (a = b)", "NOT a = b"),
        ("NOT NOT a", "NOT (NOT a)", "NOT NOT a"),
        ("a = b AND c < d", "(a = b) AND (c < d)", "a = b AND c < d"),
        ("a + b = c * d", "(a + b) = (c * d)", "a + b = c * d"),
        ("a + b * c", "a + (b * c)", "a + b * c"),
        ("a * b + c", "(a * b) + c", "a * b + c"),
        ("a - b - c", "(a - b) - c", "a - b - c"),
        ("a - (b - c)", "a - (b - c)", "a - (b - c)"),
        ("a / b * c % d", "((a / b) * c) % d", "a / b * c % d"),
        ("-a * b", "(-a) * b", "-a * b"),
        ("-(a * b)", "-(a * b)", "-(a * b)"),
        ("- -a", "-(-a)", "- -a"),
        ("a + b IS NULL", "(a + b) IS NULL", "a + b IS NULL"),
        ("NOT a IS NULL", "NOT (a IS NULL)", "NOT a IS NULL"),
        ("a || b", "", ""),
        ("a IN (1) AND b LIKE 'x' || c", "", ""),
        ("a + 1 IN (1, 2 + 3)", "(a + 1) IN (1, (2 + 3))", "a + 1 IN (1, 2 + 3)"),
        ("a LIKE b || 'x'", "", ""),
        ("a LIKE b + 'x'", "a LIKE (b + 'x')", "a LIKE b + 'x'"),
        ("a = (b = c)", "a = (b = c)", "a = (b = c)"),
        ("a = b = c", "(a = b) = c", "a = b = c"),
        ("(a OR b) AND c", "(a OR b) AND c", "(a OR b) AND c"),
        ("a * (b + c)", "a * (b + c)", "a * (b + c)"),
        ("a < b OR c >= d AND e <> f", "(a < b) OR ((c >= d) AND (e <> f))", "a < b OR c >= d AND e != f"),
    ])
    func precedence(input: String, parenthesized: String, canonical: String) throws {
        guard !parenthesized.isEmpty else {
            // `||` is not an operator of the dialect: a clear error, not a crash.
            #expect(throws: SQLError.self) { try Expr.parse(input) }
            return
        }
        let parsed = try Self.expr(input)
        #expect(parsed == (try Self.expr(parenthesized)))
        #expect(parsed.description == canonical)
    }

    @Test("positions count lines and characters (not bytes); operators point at the operator")
    func positions() throws {
        let expr = try Expr.parse("'héllo' = \n  -- comment\n  x + y")
        guard case .binary(.equal, let left, let right) = expr.kind else { Issue.record("not =: \(expr)"); return }
        #expect(expr.position == SourcePosition(line: 1, column: 9))
        #expect(left.position == SourcePosition(line: 1, column: 1))
        #expect(right.position == SourcePosition(line: 3, column: 5))
        guard case .binary(.add, let x, _) = right.kind else { Issue.record("not +"); return }
        #expect(x.position == SourcePosition(line: 3, column: 3))
    }
}
