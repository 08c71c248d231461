import SluiceSQL
import SluiceTestSupport
import Testing

/// The binder: queries that bind, compared as whole plans or by the parts a test is about; every error path
/// with its exact line, column and message; random queries that must give a plan meeting the plan's
/// invariants or an `SQLError`, never a crash.
@Suite("SQL binder")
struct BinderTests {
    static func plan(_ sql: String, known: Set<String>? = nil) throws -> ProcessorPlan {
        try Binder.plan(sql: sql, options: BindOptions(knownColumns: known))
    }

    static func error(_ sql: String, known: Set<String>? = nil) -> SQLError? {
        do {
            _ = try Binder.plan(sql: sql, options: BindOptions(knownColumns: known))
            return nil
        } catch {  // typed throws: `error` is an SQLError
            return error
        }
    }

    static func str(_ text: String) -> BoundExpr { .literal(.string(text)) }
    static func int(_ value: Int64) -> BoundExpr { .literal(.integer(value)) }

    // MARK: Whole plans

    @Test("the example query of ARCHITECTURE.md")
    func architectureExample() throws {
        let plan = try Self.plan(architectureExampleQuery)
        // Slots are numbered as first seen: WHERE, GROUP BY keys, the window's time, SELECT, HAVING.
        let expected = ProcessorPlan(
            sink: "clicks_per_user", source: "clicks",
            fields: [["action"], ["user"], ["ts"], ["amount"]],
            filter: .binary(.equal, .field(0), Self.str("click")),
            projection: .columns([
                OutputColumn(name: "user", expr: .groupKey(0)),
                OutputColumn(name: "clicks", expr: .aggregate(0)),
                OutputColumn(name: "total", expr: .aggregate(1)),
            ]),
            aggregation: Aggregation(
                keys: [.field(1)],
                window: WindowPlan(kind: .tumble(sizeMs: 10_000), time: .expression(.field(2))),
                aggregates: [AggregateCall(.countStar), AggregateCall(.sum, .field(3))],
                having: nil, needsRepartition: true),
            emit: .final)
        #expect(plan == expected)
        #expect(plan.isWindowed)
    }

    @Test("word count: UNNEST before WHERE, the element as GROUP BY key")
    func wordCount() throws {
        let plan = try Self.plan("""
            INSERT INTO counts SELECT w AS word, COUNT(*) AS n FROM lines, UNNEST(SPLIT(LOWER(line), ' ')) AS w
            WHERE w != '' GROUP BY w, TUMBLE(_timestamp, INTERVAL '1' MINUTE) EMIT FINAL
            """)
        let expected = ProcessorPlan(
            sink: "counts", source: "lines", fields: [["line"]],
            unnest: .function(.split, [.function(.lower, [.field(0)]), Self.str(" ")]), unnestAlias: "w",
            filter: .binary(.notEqual, .element([]), Self.str("")),
            projection: .columns([OutputColumn(name: "word", expr: .groupKey(0)), OutputColumn(name: "n", expr: .aggregate(0))]),
            aggregation: Aggregation(
                keys: [.element([])], window: WindowPlan(kind: .tumble(sizeMs: 60_000), time: .recordTimestamp),
                aggregates: [AggregateCall(.countStar)], having: nil, needsRepartition: true),
            emit: .final)
        #expect(plan == expected)
    }

    @Test("stateless: SELECT * is the wildcard; emit is .changes; no WITH options")
    func statelessWildcard() throws {
        let plan = try Self.plan("INSERT INTO errors SELECT * FROM logs WHERE level = 'ERROR' AND _partition IN (0, 1)")
        let expected = ProcessorPlan(
            sink: "errors", source: "logs", fields: [["level"]],
            filter: .binary(.and, .binary(.equal, .field(0), Self.str("ERROR")),
                            .inList(.pseudo(.partition), [Self.int(0), Self.int(1)], negated: false)),
            projection: .wildcard, emit: .changes)
        #expect(plan == expected)
        #expect(!plan.isWindowed)
    }

    @Test("stateless map: pseudo-columns, nested paths, element paths, CASE, CAST, intervals, PROCTIME()")
    func statelessMap() throws {
        let plan = try Self.plan("""
            INSERT INTO o
            SELECT _key, order.customer.id, item.sku AS sku, CASE status WHEN 1 THEN 'new' WHEN 2 THEN 'old' END AS s,
                   CAST(amount AS DOUBLE) AS amount, _timestamp - INTERVAL '1' HOUR AS hour_ago, PROCTIME(),
                   COALESCE(order.customer.id, 'none') AS cid, -amount AS neg
            FROM orders, UNNEST(order.items) AS item
            WHERE item.qty > 0 AND order.customer.id IS NOT NULL AND sku LIKE 'A%'
            """)
        #expect(plan.fields == [["order", "items"], ["order", "customer", "id"], ["sku"], ["status"], ["amount"]])
        #expect(plan.unnest == .field(0))
        #expect(plan.unnestAlias == "item")
        #expect(plan.filter == .binary(.and,
            .binary(.and, .binary(.greater, .element(["qty"]), Self.int(0)), .isNull(.field(1), negated: true)),
            .like(.field(2), pattern: Self.str("A%"), negated: false)))
        #expect(plan.projection == .columns([
            OutputColumn(name: "_key", expr: .pseudo(.key)),
            OutputColumn(name: "id", expr: .field(1)),
            OutputColumn(name: "sku", expr: .element(["sku"])),
            OutputColumn(name: "s", expr: .caseWhen(branches: [
                BoundBranch(when: .binary(.equal, .field(3), Self.int(1)), then: Self.str("new")),
                BoundBranch(when: .binary(.equal, .field(3), Self.int(2)), then: Self.str("old")),
            ], otherwise: nil)),
            OutputColumn(name: "amount", expr: .cast(.field(4), .double)),
            OutputColumn(name: "hour_ago", expr: .binary(.subtract, .pseudo(.timestamp), Self.int(3_600_000))),
            OutputColumn(name: "proctime", expr: .proctime),
            OutputColumn(name: "cid", expr: .function(.coalesce, [.field(1), Self.str("none")])),
            OutputColumn(name: "neg", expr: .unary(.negate, .field(4))),
        ]))
        #expect(plan.aggregation == nil && plan.emit == .changes)
    }

    @Test("HOP on PROCTIME(), EMIT EVERY, WITH options, HAVING through an alias, shared aggregates")
    func hopWithOptions() throws {
        let plan = try Self.plan("""
            INSERT INTO o
            SELECT LOWER(country) AS c, COUNT(*) AS clicks, COUNT(*) * 2 AS double_clicks, window_start AS ws,
                   window_end AS we, MAX(amount) - MIN(amount) AS spread
            FROM i
            GROUP BY LOWER(country), HOP(PROCTIME(), INTERVAL '1' MINUTE, INTERVAL '5' MINUTE)
            HAVING clicks > 5 AND MAX(amount) > 10 AND c != 'x'
            EMIT EVERY INTERVAL '10' SECOND
            WITH (allowed_lateness = INTERVAL '2' SECOND, idle_timeout = INTERVAL '1' MINUTE, late_records = 'late')
            """)
        #expect(plan.fields == [["country"], ["amount"]])
        #expect(plan.projection == .columns([
            OutputColumn(name: "c", expr: .groupKey(0)),
            OutputColumn(name: "clicks", expr: .aggregate(0)),
            OutputColumn(name: "double_clicks", expr: .binary(.multiply, .aggregate(0), Self.int(2))),
            OutputColumn(name: "ws", expr: .windowStart),
            OutputColumn(name: "we", expr: .windowEnd),
            OutputColumn(name: "spread", expr: .binary(.subtract, .aggregate(1), .aggregate(2))),
        ]))
        let aggregation = try #require(plan.aggregation)
        #expect(aggregation.keys == [.function(.lower, [.field(0)])])
        #expect(aggregation.window == WindowPlan(kind: .hop(slideMs: 60_000, sizeMs: 300_000), time: .processingTime))
        #expect(aggregation.aggregates == [AggregateCall(.countStar), AggregateCall(.max, .field(1)), AggregateCall(.min, .field(1))])
        #expect(aggregation.having == .binary(.and,
            .binary(.and, .binary(.greater, .aggregate(0), Self.int(5)), .binary(.greater, .aggregate(1), Self.int(10))),
            .binary(.notEqual, .groupKey(0), Self.str("x"))))
        #expect(aggregation.needsRepartition)
        #expect(plan.emit == .every(intervalMs: 10_000))
        #expect(plan.allowedLatenessMs == 2_000 && plan.idleTimeoutMs == 60_000 && plan.lateRecordsTopic == "late")
    }

    @Test("a HAVING alias wins over a GROUP BY column of the same name")
    func havingAliasWins() throws {
        let plan = try Self.plan("""
            INSERT INTO o SELECT COUNT(*) AS user, user AS name FROM i GROUP BY user HAVING user > 1 EMIT CHANGES
            """)
        #expect(plan.aggregation?.having == .binary(.greater, .aggregate(0), Self.int(1)))
    }

    @Test("grouping shapes: emit defaults and needsRepartition", arguments: [
        // Global aggregate: one group, no keys, nothing to re-key; without a window results update forever.
        ("INSERT INTO o SELECT COUNT(*) FROM i", [BoundExpr](), false, EmitPolicy.changes),
        ("INSERT INTO o SELECT COUNT(*) FROM i GROUP BY TUMBLE(_timestamp, INTERVAL '1' SECOND)", [], false, .final),
        ("INSERT INTO o SELECT _key, COUNT(*) FROM i GROUP BY _key", [.pseudo(.key)], false, .changes),
        ("INSERT INTO o SELECT _key, COUNT(*) FROM i GROUP BY _key EMIT CHANGES", [.pseudo(.key)], false, .changes),
        ("INSERT INTO o SELECT _key, COUNT(*) FROM i GROUP BY _key, _partition", [.pseudo(.key), .pseudo(.partition)], true, .changes),
        ("INSERT INTO o SELECT user FROM i GROUP BY user", [.field(0)], true, .changes),
        ("INSERT INTO o SELECT user FROM i GROUP BY user, SESSION(ts, INTERVAL '30' MINUTE) EMIT CHANGES",
         [.field(0)], true, .changes),
    ] as [(String, [BoundExpr], Bool, EmitPolicy)])
    func groupingShapes(sql: String, keys: [BoundExpr], repartition: Bool, emit: EmitPolicy) throws {
        let plan = try Self.plan(sql)
        #expect(plan.aggregation?.keys == keys, "\(sql)")
        #expect(plan.aggregation?.needsRepartition == repartition, "\(sql)")
        #expect(plan.emit == emit, "\(sql)")
    }

    @Test("aggregate kinds; identical calls share one index, positions and case aside")
    func aggregateKinds() throws {
        let plan = try Self.plan("""
            INSERT INTO o SELECT COUNT(*) AS a, COUNT(x) AS b, COUNT(DISTINCT x) AS c, SUM(x) AS d, AVG(x) AS e,
              MIN(x) AS f, MAX(x) AS g, FIRST_VALUE(x) AS h, last_value(x) AS i2, count(  *  ) + Sum(x) AS j
            FROM t
            """)
        #expect(plan.aggregation?.aggregates == [
            AggregateCall(.countStar), AggregateCall(.count, .field(0)), AggregateCall(.countDistinct, .field(0)),
            AggregateCall(.sum, .field(0)), AggregateCall(.avg, .field(0)), AggregateCall(.min, .field(0)),
            AggregateCall(.max, .field(0)), AggregateCall(.firstValue, .field(0)), AggregateCall(.lastValue, .field(0)),
        ])
        guard case .columns(let columns) = plan.projection else { Issue.record("not columns"); return }
        #expect(columns.last?.expr == .binary(.add, .aggregate(0), .aggregate(3)))
    }

    @Test("GROUP BY expressions match SELECT subexpressions by structure, not position")
    func groupKeyMatching() throws {
        let plan = try Self.plan("""
            INSERT INTO o SELECT UPPER(a.b) AS x, CONCAT(upper( a . b ), '!') AS y, COUNT(*) AS n
            FROM t GROUP BY UPPER(a.b)
            """)
        #expect(plan.projection == .columns([
            OutputColumn(name: "x", expr: .groupKey(0)),
            OutputColumn(name: "y", expr: .function(.concat, [.groupKey(0), Self.str("!")])),
            OutputColumn(name: "n", expr: .aggregate(0)),
        ]))
    }

    @Test("output names: alias, last path component, pseudo-column, lower-cased function, col<N>", arguments: [
        ("SELECT a AS x FROM i", ["x"]),
        ("SELECT order.customer.id FROM i", ["id"]),
        ("SELECT \"with space\".\"b c\" FROM i", ["b c"]),
        ("SELECT _key, _value, _timestamp, _partition, _offset FROM i", ["_key", "_value", "_timestamp", "_partition", "_offset"]),
        ("SELECT LOWER(a), a + 1, 'x', CAST(a AS STRING), PROCTIME() FROM i", ["lower", "col2", "col3", "col4", "proctime"]),
        ("SELECT w, w.name FROM i, UNNEST(a) AS w", ["w", "name"]),
        ("SELECT COUNT(*) FROM i", ["count"]),
        ("SELECT COUNT(DISTINCT a), SUM(b), avg(b) FROM i", ["count", "sum", "avg"]),
        ("SELECT window_start AS s, window_end AS e, COUNT(*) AS n FROM i GROUP BY TUMBLE(_timestamp, INTERVAL '1' SECOND)",
         ["s", "e", "n"]),
        // Not windowed: window_start is an ordinary field.
        ("SELECT window_start FROM i", ["window_start"]),
    ] as [(String, [String])])
    func outputNames(select: String, names: [String]) throws {
        let plan = try Self.plan("INSERT INTO o " + select)
        guard case .columns(let columns) = plan.projection else { Issue.record("not columns"); return }
        #expect(columns.map(\.name) == names, "\(select)")
    }

    @Test("known columns: exact paths, objects on the way, extensions of a known path, pseudo-columns, the element")
    func knownColumnsAccepted() throws {
        let known: Set<String> = ["user", "order.customer.id", "payload"]
        let plan = try Self.plan("""
            INSERT INTO o SELECT user, order, order.customer, order.customer.id, payload.x.y, _key, w
            FROM i, UNNEST(payload.items) AS w
            """, known: known)
        #expect(plan.fields == [["payload", "items"], ["user"], ["order"], ["order", "customer"],
                                ["order", "customer", "id"], ["payload", "x", "y"]])
        // Empty means "no sample": nothing is checked.
        _ = try Self.plan("INSERT INTO o SELECT anything FROM i", known: [])
    }

    @Test("limits at their bounds bind")
    func limitsAtBounds() throws {
        let items = (0..<SQLLimits.columnsMax).map { "f\($0)" }.joined(separator: ", ")
        let plan = try Self.plan("INSERT INTO o SELECT \(items) FROM i")
        #expect(plan.fields.count == SQLLimits.columnsMax)
        let keys = try Self.plan("INSERT INTO o SELECT COUNT(*) FROM i GROUP BY \(items)")
        #expect(keys.aggregation?.keys.count == SQLLimits.columnsMax)
        let hop = try Self.plan("""
            INSERT INTO o SELECT COUNT(*) FROM i GROUP BY HOP(_timestamp, INTERVAL '1' SECOND, INTERVAL '1000' SECOND)
            """)
        #expect(hop.aggregation?.window?.kind == .hop(slideMs: 1_000, sizeMs: 1_000_000))
    }

    // MARK: Errors

    static let known: Set<String> = ["user", "action", "amount", "ts", "order.customer.id", "Country"]

    @Test("column errors, with sample columns", arguments: [
        ("INSERT INTO o\nSELECT user, action\nFROM i WHERE usr = 'x'", 3, 14, "unknown column 'usr' (did you mean 'user'?)"),
        ("INSERT INTO o SELECT zzzzzz FROM i", 1, 22, "unknown column 'zzzzzz'"),
        ("INSERT INTO o SELECT country FROM i", 1, 22, "unknown column 'country' (did you mean 'Country'?)"),
        ("INSERT INTO o SELECT _kye FROM i", 1, 22, "unknown column '_kye' (did you mean '_key'?)"),
        ("INSERT INTO o SELECT order.custmer FROM i", 1, 22, "unknown column 'order.custmer' (did you mean 'order.customer'?)"),
        ("INSERT INTO o SELECT order.customer.id.x, user.name, orders FROM i", 1, 54, "unknown column 'orders' (did you mean 'order'?)"),
        ("INSERT INTO o SELECT wrd FROM i, UNNEST(user) AS word", 1, 22, "unknown column 'wrd' (did you mean 'word'?)"),
        // The UNNEST alias is not in scope inside UNNEST itself.
        ("INSERT INTO o SELECT w FROM i, UNNEST(w) AS w", 1, 39, "unknown column 'w'"),
        // In an aggregating query an unknown column is reported as unknown, not as ungrouped.
        ("INSERT INTO o SELECT usr, COUNT(*) FROM i GROUP BY user", 1, 22, "unknown column 'usr' (did you mean 'user'?)"),
        // HAVING may name a SELECT alias, so a misspelt alias is suggested there.
        ("INSERT INTO o SELECT user, COUNT(*) AS clicks FROM i GROUP BY user HAVING clikcs > 5", 1, 75,
         "unknown column 'clikcs' (did you mean 'clicks'?)"),
    ] as [(String, Int, Int, String)])
    func columnErrors(sql: String, line: Int, column: Int, message: String) {
        #expect(Self.error(sql, known: Self.known) == SQLError(line: line, column: column, message: message), "\(sql)")
    }

    @Test("errors", arguments: [
        // Topics.
        ("INSERT INTO t SELECT a FROM t", 1, 29, "source topic 't' is also the sink: a processor cannot read the topic it writes to"),
        // Pseudo-columns and UNNEST.
        ("INSERT INTO o SELECT _key.id FROM i", 1, 22, "pseudo-column '_key' has no fields: '_key.id' cannot be read"),
        ("INSERT INTO o SELECT a FROM i, UNNEST(a) AS _value", 1, 45, "UNNEST alias '_value' is the name of a pseudo-column; choose another name"),
        ("INSERT INTO o SELECT a FROM i, UNNEST('a b') AS w", 1, 39, "UNNEST needs an array, such as SPLIT(line, ' '), found string 'a b'"),
        // Functions.
        ("INSERT INTO o SELECT LOWR(a) FROM i", 1, 22, "unknown function 'LOWR' (did you mean LOWER?)"),
        ("INSERT INTO o SELECT cuont(a) FROM i", 1, 22, "unknown function 'CUONT' (did you mean COUNT?)"),
        ("INSERT INTO o SELECT frobnicate(a) FROM i", 1, 22, "unknown function 'FROBNICATE'"),
        ("INSERT INTO o SELECT LOWER(a, b) FROM i", 1, 22, "LOWER takes 1 argument, found 2"),
        ("INSERT INTO o SELECT SPLIT(a) FROM i", 1, 22, "SPLIT takes 2 arguments, found 1"),
        ("INSERT INTO o SELECT SUBSTRING(a) FROM i", 1, 22, "SUBSTRING takes 2 or 3 arguments, found 1"),
        ("INSERT INTO o SELECT ROUND(a, 1, 2) FROM i", 1, 22, "ROUND takes 1 or 2 arguments, found 3"),
        ("INSERT INTO o SELECT CONCAT() FROM i", 1, 22, "CONCAT takes at least 1 argument, found 0"),
        ("INSERT INTO o SELECT PROCTIME(a) FROM i", 1, 22, "PROCTIME takes no arguments, found 1"),
        ("INSERT INTO o SELECT LOWER(DISTINCT a) FROM i", 1, 22, "DISTINCT is only allowed in COUNT(DISTINCT …), found LOWER(DISTINCT …)"),
        ("INSERT INTO o SELECT SUM(DISTINCT a) FROM i", 1, 22, "DISTINCT is only allowed in COUNT(DISTINCT …), found SUM(DISTINCT …)"),
        ("INSERT INTO o SELECT COUNT() FROM i", 1, 22, "COUNT takes one argument or *, found 0"),
        ("INSERT INTO o SELECT MAX(a, b) FROM i", 1, 22, "MAX takes 1 argument, found 2"),
        // Literal types that can never work.
        ("INSERT INTO o SELECT SUM('abc') FROM i", 1, 26, "SUM needs a number, found string 'abc'"),
        ("INSERT INTO o SELECT AVG(TRUE) FROM i", 1, 26, "AVG needs a number, found TRUE"),
        ("INSERT INTO o SELECT ABS('x') FROM i", 1, 26, "ABS needs a number, found string 'x'"),
        ("INSERT INTO o SELECT SUBSTRING(a, 'x') FROM i", 1, 35, "SUBSTRING needs a number, found string 'x'"),
        ("INSERT INTO o SELECT -'a' FROM i", 1, 23, "'-' needs a number, found string 'a'"),
        ("INSERT INTO o SELECT a FROM i WHERE a LIKE 5", 1, 44, "LIKE needs a string pattern, found number 5"),
        // Where aggregates may appear.
        ("INSERT INTO o SELECT a FROM i WHERE COUNT(*) > 1", 1, 37, "aggregate COUNT is not allowed in WHERE"),
        ("INSERT INTO o SELECT COUNT(*) FROM i GROUP BY SUM(a)", 1, 47, "aggregate SUM is not allowed in GROUP BY"),
        ("INSERT INTO o SELECT COUNT(*) FROM i, UNNEST(MAX(a)) AS w", 1, 46, "aggregate MAX is not allowed in UNNEST"),
        ("INSERT INTO o SELECT COUNT(*) FROM i GROUP BY TUMBLE(MAX(ts), INTERVAL '1' SECOND)", 1, 54,
         "aggregate MAX is not allowed in the time argument of TUMBLE"),
        ("INSERT INTO o SELECT SUM(COUNT(*)) FROM i", 1, 26, "aggregate COUNT is not allowed in the argument of SUM"),
        // Aggregating queries.
        ("INSERT INTO o SELECT user, COUNT(*) FROM i", 1, 22, "column 'user' must appear in GROUP BY or be used in an aggregate"),
        ("INSERT INTO o SELECT a.b + 1 FROM i GROUP BY a", 1, 22, "column 'a.b' must appear in GROUP BY or be used in an aggregate"),
        ("INSERT INTO o SELECT _key FROM i GROUP BY a", 1, 22, "column '_key' must appear in GROUP BY or be used in an aggregate"),
        ("INSERT INTO o SELECT w FROM i, UNNEST(a) AS w GROUP BY a", 1, 22, "column 'w' must appear in GROUP BY or be used in an aggregate"),
        ("INSERT INTO o SELECT PROCTIME() FROM i GROUP BY a", 1, 22, "PROCTIME() must appear in GROUP BY or be used in an aggregate"),
        ("INSERT INTO o SELECT a FROM i GROUP BY a HAVING b > 1", 1, 49, "column 'b' must appear in GROUP BY or be used in an aggregate"),
        ("INSERT INTO o SELECT COUNT(*) FROM i HAVING window_start > 0", 1, 45,
         "column 'window_start' must appear in GROUP BY or be used in an aggregate"),
        ("INSERT INTO o SELECT a FROM i HAVING a > 1", 1, 38, "HAVING applies to GROUP BY queries; use WHERE to filter rows"),
        ("INSERT INTO o SELECT COUNT(*) FROM i GROUP BY 1", 1, 47,
         "GROUP BY key 1 is a constant (positions such as GROUP BY 1 are not supported): write the expression itself"),
        ("INSERT INTO o SELECT COUNT(*) FROM i GROUP BY a + 1, b,\n  a+1", 2, 3, "'a + 1' appears twice in GROUP BY (first at line 1, column 47)"),
        // SELECT *.
        ("INSERT INTO o SELECT * FROM i GROUP BY a", 1, 22,
         "SELECT * is not allowed in a GROUP BY or aggregate query: a result is a group, not a record; name the columns"),
        ("INSERT INTO o SELECT *, COUNT(*) FROM i", 1, 22,
         "SELECT * is not allowed in a GROUP BY or aggregate query: a result is a group, not a record; name the columns"),
        ("INSERT INTO o SELECT * FROM i, UNNEST(a) AS w", 1, 22,
         "SELECT * is not allowed with UNNEST: it would repeat the whole record for every element; name the element and the fields to keep"),
        ("INSERT INTO o SELECT a, * FROM i", 1, 25, "* must be the only select item: it outputs the record value unchanged"),
        // Output names.
        ("INSERT INTO o SELECT a, b AS a FROM i", 1, 30, "duplicate output column 'a': the select item at line 1, column 22 has the same name (rename one with AS)"),
        ("INSERT INTO o SELECT x.id,\n  y.id FROM i", 2, 3, "duplicate output column 'id': the select item at line 1, column 22 has the same name (rename one with AS)"),
        ("INSERT INTO o SELECT COUNT(*), COUNT(a) FROM i", 1, 32,
         "duplicate output column 'count': the select item at line 1, column 22 has the same name (rename one with AS)"),
        ("INSERT INTO o SELECT window_start, COUNT(*) FROM i GROUP BY TUMBLE(ts, INTERVAL '1' SECOND)", 1, 22,
         "window_start is added to every windowed result: leave it out, or name this column differently with AS"),
        ("INSERT INTO o SELECT COUNT(*) AS window_end FROM i GROUP BY TUMBLE(ts, INTERVAL '1' SECOND)", 1, 34,
         "window_end is added to every windowed result: leave it out, or name this column differently with AS"),
        // Windows.
        ("INSERT INTO o SELECT COUNT(*) FROM i GROUP BY TUMBLE(ts, INTERVAL '0' SECOND)", 1, 58, "TUMBLE size must be greater than 0"),
        ("INSERT INTO o SELECT COUNT(*) FROM i GROUP BY SESSION(ts, INTERVAL '0' SECOND)", 1, 59, "SESSION gap must be greater than 0"),
        ("INSERT INTO o SELECT COUNT(*) FROM i GROUP BY HOP(ts, INTERVAL '0' SECOND, INTERVAL '1' SECOND)", 1, 55,
         "HOP slide must be greater than 0"),
        ("INSERT INTO o SELECT COUNT(*) FROM i GROUP BY HOP(ts, INTERVAL '1' SECOND, INTERVAL '0' SECOND)", 1, 76,
         "HOP size must be greater than 0"),
        ("INSERT INTO o SELECT COUNT(*) FROM i GROUP BY HOP(ts, INTERVAL '2' MINUTE, INTERVAL '1' MINUTE)", 1, 55,
         "HOP slide INTERVAL '2' MINUTE is longer than its size INTERVAL '1' MINUTE: records between windows would be dropped; use a slide no longer than the size"),
        ("INSERT INTO o SELECT COUNT(*) FROM i GROUP BY HOP(ts, INTERVAL '1' SECOND, INTERVAL '1' HOUR)", 1, 47,
         "HOP puts each record in 3600 windows (size / slide); the limit is 1000 (SQLLimits.windowsPerRecordMax)"),
        ("INSERT INTO o SELECT COUNT(*) FROM i GROUP BY TUMBLE(ts, INTERVAL '20000000000' DAY)", 1, 58,
         "TUMBLE size is too long: at most 1152921504606846976 milliseconds (SQLLimits.durationMaxMs)"),
        ("INSERT INTO o SELECT COUNT(*) FROM i GROUP BY TUMBLE(5, INTERVAL '1' SECOND)", 1, 54,
         "the time argument of TUMBLE is a constant (number 5): use a field, _timestamp or PROCTIME()"),
        // EMIT.
        ("INSERT INTO o SELECT a FROM i\nEMIT CHANGES", 2, 1, "EMIT applies to GROUP BY queries"),
        ("INSERT INTO o SELECT a FROM i GROUP BY a EMIT FINAL", 1, 42,
         "EMIT FINAL needs a window: without TUMBLE, HOP or SESSION in GROUP BY a group never closes; use EMIT CHANGES"),
        ("INSERT INTO o SELECT COUNT(*) FROM i EMIT EVERY INTERVAL '1' SECOND", 1, 38,
         "EMIT EVERY needs a window: without TUMBLE, HOP or SESSION in GROUP BY a group never closes; use EMIT CHANGES"),
        ("INSERT INTO o SELECT COUNT(*) FROM i GROUP BY TUMBLE(ts, INTERVAL '1' SECOND) EMIT EVERY INTERVAL '0' SECOND", 1, 90,
         "EMIT EVERY interval must be greater than 0"),
        // WITH.
        ("INSERT INTO o SELECT a FROM i WITH (late_records = 'late')", 1, 52,
         "late_records applies to windowed queries (GROUP BY with TUMBLE, HOP or SESSION)"),
        ("INSERT INTO o SELECT a, COUNT(*) FROM i GROUP BY a WITH (allowed_lateness = INTERVAL '1' SECOND)", 1, 77,
         "allowed_lateness applies to windowed queries (GROUP BY with TUMBLE, HOP or SESSION)"),
        ("INSERT INTO o SELECT a FROM i WITH (idle_timeout = INTERVAL '1' SECOND)", 1, 52,
         "idle_timeout applies to windowed queries (GROUP BY with TUMBLE, HOP or SESSION)"),
        ("INSERT INTO o SELECT COUNT(*) FROM i GROUP BY TUMBLE(ts, INTERVAL '1' SECOND) WITH (idle_timeout = INTERVAL '0' SECOND)",
         1, 100, "idle_timeout must be greater than 0"),
        ("INSERT INTO o SELECT COUNT(*) FROM i GROUP BY TUMBLE(ts, INTERVAL '1' SECOND) WITH (allowed_lateness = INTERVAL '20000000000' DAY)",
         1, 104, "allowed_lateness is too long: at most 1152921504606846976 milliseconds (SQLLimits.durationMaxMs)"),
        ("INSERT INTO o SELECT COUNT(*) FROM i GROUP BY TUMBLE(ts, INTERVAL '1' SECOND) WITH (late_records = 'o')", 1, 100,
         "late_records topic 'o' is the sink topic; late records need a topic of their own"),
        ("INSERT INTO o SELECT COUNT(*) FROM i GROUP BY TUMBLE(ts, INTERVAL '1' SECOND) WITH (late_records = 'i')", 1, 100,
         "late_records topic 'i' is the source topic; late records need a topic of their own"),
    ] as [(String, Int, Int, String)])
    func errors(sql: String, line: Int, column: Int, message: String) {
        #expect(Self.error(sql) == SQLError(line: line, column: column, message: message), "\(sql)")
    }

    @Test("limits: fields, select items, GROUP BY keys, aggregates, arguments and IN lists are bounded")
    func limits() {
        let max = SQLLimits.columnsMax
        // 1025 distinct fields over 513 items: the error is at the first field past the limit.
        let pairs = (0...max / 2).map { "f\($0) + g\($0)" }.joined(separator: ", ")
        let fieldsSQL = "INSERT INTO o SELECT \(pairs) FROM i"
        #expect(Self.error(fieldsSQL) == SQLError(line: 1, column: Self.column(of: "f512", in: fieldsSQL),
            message: "too many distinct fields: the limit is 1024 (SQLLimits.columnsMax)"))

        let items = (0...max).map { "f\($0)" }.joined(separator: ", ")
        let itemsSQL = "INSERT INTO o SELECT \(items) FROM i"
        #expect(Self.error(itemsSQL) == SQLError(line: 1, column: Self.column(of: "f1024", in: itemsSQL),
            message: "too many select items: the limit is 1024 (SQLLimits.columnsMax)"))

        let keysSQL = "INSERT INTO o SELECT COUNT(*) FROM i GROUP BY \(items)"
        #expect(Self.error(keysSQL) == SQLError(line: 1, column: Self.column(of: "f1024", in: keysSQL),
            message: "too many GROUP BY keys: the limit is 1024 (SQLLimits.columnsMax)"))

        let sums = (0..<max).map { "SUM(a + \($0)) AS s\($0)" }.joined(separator: ", ")
        let aggregatesSQL = "INSERT INTO o SELECT \(sums) FROM i HAVING SUM(a + \(max)) > 0"
        #expect(Self.error(aggregatesSQL) == SQLError(line: 1, column: Self.column(of: "SUM(a + 1024)", in: aggregatesSQL),
            message: "too many distinct aggregates: the limit is 1024 (SQLLimits.columnsMax)"))

        let arguments = (0...SQLLimits.functionArgumentsMax).map { _ in "a" }.joined(separator: ", ")
        #expect(Self.error("INSERT INTO o SELECT CONCAT(\(arguments)) FROM i") == SQLError(line: 1, column: 22,
            message: "CONCAT takes at most 1024 arguments (SQLLimits.functionArgumentsMax), found 1025"))
        #expect(Self.error("INSERT INTO o SELECT a FROM i WHERE a IN (\(arguments))") == SQLError(line: 1, column: 39,
            message: "IN list has 1025 items; the limit is 1024 (SQLLimits.functionArgumentsMax)"))
    }

    /// The 1-based column of the first occurrence of `needle` in the one-line `text`.
    static func column(of needle: String, in text: String) -> Int {
        let haystack = Array(text.unicodeScalars), pattern = Array(needle.unicodeScalars)
        guard haystack.count >= pattern.count else { return 0 }
        for start in 0...(haystack.count - pattern.count) where Array(haystack[start..<start + pattern.count]) == pattern {
            return start + 1
        }
        return 0
    }

    @Test("queries built in code: too deep, empty SELECT list, empty column path")
    func builtInCode() {
        var deep = Expr.column("a")
        for _ in 0..<SQLLimits.expressionDepthMax { deep = Expr(.unary(.not, deep)) }
        let tooDeep = Query(sink: Name("o"), select: [.expression(deep)], source: Name("i"))
        #expect(throws: SQLError(line: 0, column: 0, message: "expression is nested too deeply: more than 256 levels "
            + "(SQLLimits.expressionDepthMax)")) { try Binder.bind(tooDeep) }
        let empty = Query(sink: Name("o"), select: [], source: Name("i"), at: SourcePosition(line: 1, column: 1))
        #expect(throws: SQLError(line: 1, column: 1, message: "the SELECT list is empty")) { try Binder.bind(empty) }
        let noPath = Query(sink: Name("o"), select: [.expression(Expr(.column([])))], source: Name("i"))
        #expect(throws: SQLError(line: 0, column: 0, message: "a column name is empty")) { try Binder.bind(noPath) }
        let star = Query(sink: Name("o"), select: [.expression(Expr(.call(FunctionCall(name: "LOWER", arguments: [], isStar: true))))],
                         source: Name("i"))
        #expect(throws: SQLError(line: 0, column: 0, message: "only COUNT takes '*', found LOWER(*)")) { try Binder.bind(star) }
    }

    // MARK: Random queries

    @Test("random queries: a plan that meets the plan's invariants, or an SQLError; never a crash")
    func randomQueries() {
        let random = SeededRandom.fromEnvironment()
        let seed = random.seed
        var generator = QueryGenerator(random: random)
        var bound = 0
        for index in 0..<3_000 {
            let query = generator.query()
            do {
                let plan = try Binder.bind(query)
                bound += 1
                let problems = PlanInvariants.check(plan)
                #expect(problems.isEmpty, "seed \(seed), case \(index): \(problems)\n\(query)")
            } catch {
                #expect(!error.message.isEmpty, "seed \(seed), case \(index)")
            }
        }
        #expect(bound > 0, "seed \(seed): no random query bound; the test is not reaching the plan")
    }

    @Test("mutated valid queries: a plan that meets the plan's invariants, or an SQLError with a position")
    func mutatedQueries() {
        var random = SeededRandom.fromEnvironment()
        let seed = random.seed
        var bound = 0
        for index in 0..<3_000 {
            let original = Self.corpus[random.int(0...(Self.corpus.count - 1))]
            let mutated = RoundTripTests.mutate(original, random: &random, corpus: Self.corpus)
            do {
                let plan = try Binder.plan(sql: mutated)
                bound += 1
                let problems = PlanInvariants.check(plan)
                #expect(problems.isEmpty, "seed \(seed), case \(index): \(problems)\n\(mutated)")
            } catch {
                #expect(error.line >= 1 && error.column >= 1 && !error.message.isEmpty,
                        "seed \(seed), case \(index): \(error) for \(mutated)")
            }
        }
        #expect(bound > 0, "seed \(seed): no mutated query bound")
    }

    /// Queries that bind, covering every clause; the mutation fuzz starts from these.
    static let corpus = [
        RoundTripTests.seeds[0], RoundTripTests.seeds[1],
        """
        INSERT INTO counts SELECT w AS word, COUNT(*) AS n FROM lines, UNNEST(SPLIT(LOWER(line), ' ')) AS w
        WHERE w != '' GROUP BY w, TUMBLE(_timestamp, INTERVAL '1' MINUTE) EMIT FINAL
        """,
        """
        INSERT INTO o SELECT LOWER(country) AS c, COUNT(*) AS clicks, window_start AS ws, MAX(a) - MIN(a) AS spread
        FROM i WHERE a > 0 GROUP BY LOWER(country), HOP(PROCTIME(), INTERVAL '1' MINUTE, INTERVAL '5' MINUTE)
        HAVING clicks > 5 AND MAX(a) > 10 EMIT EVERY INTERVAL '10' SECOND
        WITH (allowed_lateness = INTERVAL '2' SECOND, idle_timeout = INTERVAL '1' MINUTE, late_records = 'late')
        """,
        """
        INSERT INTO o SELECT _key, item.sku AS sku, CASE status WHEN 1 THEN 'new' ELSE 'old' END AS s,
          CAST(amount AS DOUBLE) AS amount, _timestamp - INTERVAL '1' HOUR AS t, COALESCE(x, 'none') AS cid
        FROM orders, UNNEST(items) AS item WHERE item.qty > 0 AND x IS NOT NULL AND sku LIKE 'A%'
        """,
        "INSERT INTO o SELECT _key, COUNT(DISTINCT u) AS n, SUM(v) AS s FROM i GROUP BY _key EMIT CHANGES",
    ]
}

/// The invariants Plan.swift states, checked over a whole plan: slot and index ranges, which expressions may
/// appear per row and which in results, unique output names, window and emit invariants.
enum PlanInvariants {
    static func check(_ plan: ProcessorPlan) -> [String] {
        var problems: [String] = []
        if Set(plan.fields).count != plan.fields.count { problems.append("duplicate fields") }
        let aggregation = plan.aggregation
        var rowExprs = [plan.unnest, plan.filter].compactMap { $0 }
        var resultExprs: [BoundExpr] = []
        if let aggregation {
            rowExprs += aggregation.keys + aggregation.aggregates.compactMap(\.argument)
            if case .expression(let time) = aggregation.window?.time { rowExprs.append(time) }
            resultExprs += aggregation.having.map { [$0] } ?? []
        }
        if case .columns(let columns) = plan.projection {
            if aggregation == nil { rowExprs += columns.map(\.expr) } else { resultExprs += columns.map(\.expr) }
            if Set(columns.map(\.name)).count != columns.count { problems.append("duplicate output names") }
            if plan.isWindowed, columns.contains(where: { $0.name == "window_start" || $0.name == "window_end" }) {
                problems.append("window_start/window_end selected by name")
            }
        } else if aggregation != nil || plan.unnest != nil {
            problems.append("wildcard with aggregation or UNNEST")
        }
        for expr in rowExprs { visit(expr, plan: plan, result: false, problems: &problems) }
        for expr in resultExprs { visit(expr, plan: plan, result: true, problems: &problems) }
        if let aggregation {
            if Set(aggregation.aggregates).count != aggregation.aggregates.count { problems.append("duplicate aggregates") }
            let repartition = !aggregation.keys.isEmpty && aggregation.keys != [.pseudo(.key)]
            if aggregation.needsRepartition != repartition { problems.append("needsRepartition") }
            switch aggregation.window?.kind {
            case .tumble(let size)?: if size <= 0 { problems.append("tumble size") }
            case .session(let gap)?: if gap <= 0 { problems.append("session gap") }
            case .hop(let slide, let size)?:
                if !(slide > 0 && slide <= size && (size + slide - 1) / slide <= SQLLimits.windowsPerRecordMax) {
                    problems.append("hop sizes")
                }
            case nil: if plan.emit != .changes { problems.append("emit without a window") }
            }
        } else if plan.emit != .changes || plan.lateRecordsTopic != nil || plan.idleTimeoutMs != nil {
            problems.append("stateless emit or options")
        }
        if case .every(let interval) = plan.emit, interval <= 0 { problems.append("emit every") }
        return problems
    }

    /// Checks one expression tree: per-row nodes only per row, result nodes only in results, indices in range.
    static func visit(_ expr: BoundExpr, plan: ProcessorPlan, result: Bool, problems: inout [String]) {
        let children: [BoundExpr]
        switch expr {
        case .literal: children = []
        case .field(let slot):
            if result || !plan.fields.indices.contains(slot) { problems.append("field \(slot) (result: \(result))") }
            children = []
        case .pseudo, .proctime:
            if result { problems.append("per-row \(expr) in a result") }
            children = []
        case .element:
            if result || plan.unnest == nil { problems.append("element (result: \(result))") }
            children = []
        case .groupKey(let index):
            if !result || !(plan.aggregation?.keys.indices.contains(index) ?? false) { problems.append("groupKey \(index)") }
            children = []
        case .aggregate(let index):
            if !result || !(plan.aggregation?.aggregates.indices.contains(index) ?? false) { problems.append("aggregate \(index)") }
            children = []
        case .windowStart, .windowEnd:
            if !result || !plan.isWindowed { problems.append("window bound outside a windowed result") }
            children = []
        case .unary(_, let operand), .isNull(let operand, _), .cast(let operand, _): children = [operand]
        case .binary(_, let left, let right): children = [left, right]
        case .inList(let operand, let list, _): children = [operand] + list
        case .like(let operand, let pattern, _): children = [operand, pattern]
        case .caseWhen(let branches, let otherwise):
            children = branches.flatMap { [$0.when, $0.then] } + (otherwise.map { [$0] } ?? [])
        case .function(let function, let arguments):
            if !function.arity.contains(arguments.count) { problems.append("arity of \(function)") }
            children = arguments
        }
        for child in children { visit(child, plan: plan, result: result, problems: &problems) }
    }
}
