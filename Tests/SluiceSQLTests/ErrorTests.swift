import SluiceSQL
import Testing

/// Every error path of the parser: exact line, column and message. Each message says what was expected
/// and what was found; misspelled keywords, units, types and options get a "did you mean".
@Suite("SQL errors")
struct ErrorTests {
    static let head = "INSERT INTO o SELECT a FROM i"

    static func error(_ text: String) -> SQLError? {
        do {
            _ = try Query.parse(text)
            return nil
        } catch {
            return error
        }
    }

    @Test("query errors", arguments: [
        // The example: a misspelled keyword after a select item.
        ("INSERT INTO o\nSELECT a,\n       b, c FORM i", 3, 13,
         "expected ',' or FROM after select item, found 'FORM' (did you mean FROM?)"),
        ("", 1, 1, "expected INSERT at the start of the query, found end of query"),
        ("SELECT a FROM i", 1, 1, "expected INSERT at the start of the query, found 'SELECT'"),
        ("INSRT INTO o", 1, 1, "expected INSERT at the start of the query, found 'INSRT' (did you mean INSERT?)"),
        ("INSERT INOT o", 1, 8, "expected INTO after INSERT, found 'INOT' (did you mean INTO?)"),
        ("INSERT INTO select SELECT a FROM i", 1, 13,
         "expected the sink topic after INSERT INTO, found 'select', a reserved word (write \"select\" to use it as a name)"),
        ("INSERT INTO 'o' SELECT a FROM i", 1, 13, "expected the sink topic after INSERT INTO, found string 'o'"),
        ("INSERT INTO o SELEC a FROM i", 1, 15, "expected SELECT after the sink topic, found 'SELEC' (did you mean SELECT?)"),
        ("INSERT INTO o SELECT FROM i", 1, 22, "expected a select item (an expression or *), found 'FROM'"),
        ("INSERT INTO o SELECT a, FROM i", 1, 25, "expected a select item (an expression or *), found 'FROM'"),
        ("INSERT INTO o SELECT a b FROM i", 1, 24, "expected ',' or FROM after select item, found 'b'"),
        ("INSERT INTO o SELECT a AS FROM i", 1, 27,
         "expected a name after AS, found 'FROM', a reserved word (write \"FROM\" to use it as a name)"),
        ("INSERT INTO o SELECT * AS x FROM i", 1, 24, "expected ',' or FROM after '*', found 'AS' (* cannot have an alias)"),
        ("INSERT INTO o SELECT a", 1, 23, "expected ',' or FROM after select item, found end of query"),
        ("INSERT INTO o SELECT a FROM", 1, 28, "expected the source topic after FROM, found end of query"),
        ("INSERT INTO o SELECT a FROM \"a b\"", 1, 29, "invalid topic name 'a b': expected ASCII letters, digits, '.', '_' and '-'"),
        ("INSERT INTO o SELECT a FROM i, UNEST(x) AS y", 1, 32, "expected UNNEST after ',' in FROM, found 'UNEST' (did you mean UNNEST?)"),
        ("INSERT INTO o SELECT a FROM i, UNNEST(x)", 1, 41, "expected AS and a name after UNNEST(…), found end of query"),
        ("INSERT INTO o SELECT a FROM i, UNNEST(x y) AS z", 1, 41, "expected ')' after the UNNEST expression, found 'y'"),
        ("INSERT INTO o SELECT a FROM i WHRE a = 1", 1, 31,
         "expected WHERE, GROUP BY, HAVING, EMIT, WITH or end of query after the source topic, found 'WHRE' (did you mean WHERE?)"),
        ("INSERT INTO o SELECT a FROM i WHERE a = 1 GRUOP BY a", 1, 43,
         "expected GROUP BY, HAVING, EMIT, WITH or end of query after the WHERE condition, found 'GRUOP' (did you mean GROUP?)"),
        ("INSERT INTO o SELECT a FROM i WHERE a = 1 ADN b = 2", 1, 43,
         "expected GROUP BY, HAVING, EMIT, WITH or end of query after the WHERE condition, found 'ADN' (did you mean AND?)"),
        ("INSERT INTO o SELECT a FROM i GROUP a", 1, 37, "expected BY after GROUP, found 'a'"),
        ("INSERT INTO o SELECT a FROM i EMIT FINAL WHERE a = 1", 1, 42,
         "expected WITH or end of query after the EMIT clause, found 'WHERE' (clauses go in the order WHERE, GROUP BY, HAVING, EMIT, WITH, each at most once)"),
        ("INSERT INTO o SELECT a FROM i WHERE a WHERE b", 1, 39,
         "expected GROUP BY, HAVING, EMIT, WITH or end of query after the WHERE condition, found 'WHERE' (clauses go in the order WHERE, GROUP BY, HAVING, EMIT, WITH, each at most once)"),
        ("INSERT INTO o SELECT a FROM i; x", 1, 32, "expected end of query after ';', found 'x'"),
        // Windows.
        ("INSERT INTO o SELECT TUMBLE(ts, INTERVAL '1' SECOND) FROM i", 1, 22,
         "window function TUMBLE is only allowed as an item of GROUP BY"),
        ("INSERT INTO o SELECT a FROM i WHERE hop(ts, INTERVAL '1' SECOND, INTERVAL '2' SECOND) = 1", 1, 37,
         "window function HOP is only allowed as an item of GROUP BY"),
        ("INSERT INTO o SELECT a FROM i GROUP BY a + SESSION(ts, INTERVAL '1' SECOND)", 1, 44,
         "window function SESSION is only allowed as an item of GROUP BY"),
        ("INSERT INTO o SELECT a FROM i GROUP BY TUMBLE(ts, INTERVAL '1' SECOND),\n  HOP(ts, INTERVAL '1' SECOND, INTERVAL '2' SECOND)", 2, 3,
         "GROUP BY takes at most one window function; found HOP after TUMBLE at line 1, column 40"),
        ("INSERT INTO o SELECT a FROM i GROUP BY TUMBLE(ts)", 1, 49, "expected ',' and the size argument of TUMBLE(time, size), found ')'"),
        ("INSERT INTO o SELECT a FROM i GROUP BY TUMBLE(ts, 10)", 1, 51, "expected INTERVAL '<n>' <unit> for the size of TUMBLE, found number 10"),
        ("INSERT INTO o SELECT a FROM i GROUP BY HOP(ts, INTERVAL '1' SECOND)", 1, 67,
         "expected ',' and the size argument of HOP(time, slide, size), found ')'"),
        ("INSERT INTO o SELECT a FROM i GROUP BY SESSION(ts, INTERVAL '1' SECOND, INTERVAL '1' SECOND)", 1, 71,
         "expected ')' after the last argument of SESSION(time, gap), found ','"),
        ("INSERT INTO o SELECT a FROM i GROUP BY a TUMBL(ts, INTERVAL '1' SECOND)", 1, 42,
         "expected HAVING, EMIT, WITH or end of query after GROUP BY, found 'TUMBL' (did you mean TUMBLE?)"),
        // EMIT.
        ("INSERT INTO o SELECT a FROM i EMIT EVERY", 1, 41, "expected INTERVAL '<n>' <unit> after EMIT EVERY, found end of query"),
        ("INSERT INTO o SELECT a FROM i EMIT EVERY 5", 1, 42, "expected INTERVAL '<n>' <unit> after EMIT EVERY, found number 5"),
        ("INSERT INTO o SELECT a FROM i EMIT FINL", 1, 36, "expected FINAL, CHANGES or EVERY after EMIT, found 'FINL' (did you mean FINAL?)"),
        ("INSERT INTO o SELECT a FROM i EMIT", 1, 35, "expected FINAL, CHANGES or EVERY after EMIT, found end of query"),
        // WITH.
        ("INSERT INTO o SELECT a FROM i WITH allowed_lateness = INTERVAL '1' SECOND", 1, 36, "expected '(' after WITH, found 'allowed_lateness'"),
        ("INSERT INTO o SELECT a FROM i WITH (allowed_latenes = INTERVAL '1' SECOND)", 1, 37,
         "unknown option 'allowed_latenes' (did you mean allowed_lateness?): expected allowed_lateness, idle_timeout or late_records"),
        ("INSERT INTO o SELECT a FROM i WITH (colour = 'red')", 1, 37,
         "unknown option 'colour': expected allowed_lateness, idle_timeout or late_records"),
        ("INSERT INTO o SELECT a FROM i WITH (idle_timeout = INTERVAL '1' SECOND,\n idle_timeout = INTERVAL '2' SECOND)", 2, 2,
         "duplicate option 'idle_timeout': it is already set at line 1, column 37"),
        ("INSERT INTO o SELECT a FROM i WITH (late_records = late)", 1, 52,
         "expected a topic name in quotes after late_records =, as in late_records = 'late-clicks', found 'late'"),
        ("INSERT INTO o SELECT a FROM i WITH (late_records = 'a/b')", 1, 52,
         "invalid topic name 'a/b': expected ASCII letters, digits, '.', '_' and '-'"),
        ("INSERT INTO o SELECT a FROM i WITH (idle_timeout INTERVAL '1' SECOND)", 1, 50, "expected '=' after idle_timeout, found 'INTERVAL'"),
        ("INSERT INTO o SELECT a FROM i WITH (idle_timeout = INTERVAL '1' SECOND", 1, 71,
         "expected ')' or ',' after the option's value, found end of query"),
        ("INSERT INTO o SELECT a FROM i WITH ()", 1, 37,
         "expected an option name (allowed_lateness, idle_timeout or late_records), found ')'"),
    ] as [(String, Int, Int, String)])
    func queryErrors(text: String, line: Int, column: Int, message: String) {
        #expect(Self.error(text) == SQLError(line: line, column: column, message: message), "\(text)")
    }

    @Test("expression and lexical errors", arguments: [
        ("'abc", 1, 1, "unterminated string literal: expected a closing ' before the end of the query"),
        ("a = 'it''s", 1, 5, "unterminated string literal: expected a closing ' before the end of the query"),
        ("\"abc", 1, 1, "unterminated quoted identifier: expected a closing \" before the end of the query"),
        ("\"\"", 1, 1, "expected a name between the double quotes, found \"\""),
        ("12abc", 1, 1, "bad number '12abc': expected digits, an optional fraction and an optional exponent, as in 42, 1.5 or 2e10"),
        ("1.2.3", 1, 1, "bad number '1.2.3': expected digits, an optional fraction and an optional exponent, as in 42, 1.5 or 2e10"),
        ("99999999999999999999", 1, 1, "bad number '99999999999999999999': out of range for BIGINT (at most 9223372036854775807)"),
        ("1e999", 1, 1, "bad number '1e999': out of range for DOUBLE"),
        ("a # b", 1, 3, "unexpected character '#': expected a name, a literal, an operator or punctuation"),
        ("a ! b", 1, 3, "expected '=' after '!' (the not-equal operator is != or <>)"),
        ("INTERVAL '10' SECONDZ", 1, 15, "unknown interval unit 'SECONDZ' (did you mean SECOND?): expected MILLISECOND, SECOND, MINUTE, HOUR or DAY"),
        ("INTERVAL '10' FORTNIGHT", 1, 15, "unknown interval unit 'FORTNIGHT': expected MILLISECOND, SECOND, MINUTE, HOUR or DAY"),
        ("INTERVAL '10'", 1, 14, "expected an interval unit (MILLISECOND, SECOND, MINUTE, HOUR or DAY) after INTERVAL '10', found end of query"),
        ("INTERVAL '1.5' SECOND", 1, 10, "expected a whole number of units in quotes after INTERVAL, as in INTERVAL '10' SECOND, found string '1.5'"),
        ("INTERVAL '-1' SECOND", 1, 10, "expected a whole number of units in quotes after INTERVAL, as in INTERVAL '10' SECOND, found string '-1'"),
        ("INTERVAL SECOND", 1, 10, "expected a whole number of units in quotes after INTERVAL, as in INTERVAL '10' SECOND, found 'SECOND'"),
        ("INTERVAL '9223372036854775807' DAY", 1, 10, "interval is out of range: at most 9223372036854775807 milliseconds"),
        ("(a + b", 1, 7, "expected ')' to close the '(' at line 1, column 1, found end of query"),
        ("a +", 1, 4, "expected an expression, found end of query"),
        ("a + FROM", 1, 5, "expected an expression, found 'FROM'"),
        ("a NOT b", 1, 7, "expected IN or LIKE after NOT, found 'b'"),
        ("a NOT ON (1)", 1, 7, "expected IN or LIKE after NOT, found 'ON' (did you mean IN?)"),
        ("a IS NUL", 1, 6, "expected NULL or NOT NULL after IS, found 'NUL' (did you mean NULL?)"),
        ("a IS NOT 1", 1, 10, "expected NULL after IS NOT, found number 1"),
        ("a IN 1", 1, 6, "expected '(' to open the list after IN, found number 1"),
        ("a IN ()", 1, 7, "expected an expression, found ')'"),
        ("a IN (1, 2", 1, 11, "expected ',' or ')' in the IN list, found end of query"),
        ("f(a b)", 1, 5, "expected ',' or ')' in the arguments of F, found 'b'"),
        ("SUM(*)", 1, 5, "expected an argument of SUM, found '*' (only COUNT(*) takes '*')"),
        ("COUNT(DISTINCT)", 1, 15, "expected an expression, found ')'"),
        ("a.", 1, 3, "expected a field name after '.', found end of query"),
        ("CASE END", 1, 6, "expected WHEN after CASE, found 'END'"),
        ("CASE x END", 1, 8, "expected WHEN after the CASE operand, found 'END'"),
        ("CASE WHEN a 1 END", 1, 13, "expected THEN after the WHEN expression, found number 1"),
        ("CASE WHEN a THN 1 END", 1, 13, "expected THEN after the WHEN expression, found 'THN' (did you mean THEN?)"),
        ("CASE WHEN a THEN 1", 1, 19, "expected WHEN, ELSE or END in CASE, found end of query"),
        ("CASE WHEN a THEN 1 ELSE 2 ED", 1, 27, "expected END after the ELSE expression, found 'ED' (did you mean END?)"),
        ("CAST(a STRING)", 1, 8, "expected AS and a type in CAST, found 'STRING'"),
        ("CAST(a AS STIRNG)", 1, 11, "unknown type 'STIRNG' (did you mean STRING?): expected STRING, VARCHAR, BIGINT, INT, INTEGER, DOUBLE, BOOLEAN or TIMESTAMP"),
        ("CAST(a AS 1)", 1, 11, "expected a type (STRING, VARCHAR, BIGINT, INT, INTEGER, DOUBLE, BOOLEAN or TIMESTAMP) after AS, found number 1"),
        ("CAST(a AS INT", 1, 14, "expected ')' after the type in CAST, found end of query"),
        ("a = NOT b", 1, 5, "expected an expression, found 'NOT'"),
        ("a b", 1, 3, "expected an operator or the end of the expression, found 'b'"),
    ] as [(String, Int, Int, String)])
    func expressionErrors(text: String, line: Int, column: Int, message: String) {
        var error: SQLError?
        do { _ = try Expr.parse(text) } catch let thrown { error = thrown }
        #expect(error == SQLError(line: line, column: column, message: message), "\(text)")
    }

    @Test("rendering: line L, column C: message")
    func rendering() {
        let error = Self.error("INSERT INTO o\nSELECT a,\n       b, c FORM i")
        #expect(error?.description == "line 3, column 13: expected ',' or FROM after select item, found 'FORM' (did you mean FROM?)")
    }

    @Test("limits: query length and expression depth are bounded and named")
    func limits() throws {
        let long = Self.head + " WHERE a = '" + String(repeating: "x", count: SQLLimits.queryBytesMax) + "'"
        #expect(Self.error(long) == SQLError(line: 1, column: 1, message:
            "query is \(long.utf8.count) bytes; the limit is 65536 (SQLLimits.queryBytesMax)"))

        let depthMessage = "expression is nested too deeply: more than 256 levels (SQLLimits.expressionDepthMax)"
        // At the limit: accepted.
        let deepest = String(repeating: "(", count: 255) + "a" + String(repeating: ")", count: 255)
        #expect(try Expr.parse(deepest).withoutPositions() == Expr(.column(["a"])))
        // Nesting by parentheses, NOT, minus, and a long chain of operators (a tall tree without recursion).
        // The error points at the 257th opening token.
        let start = Self.head.count + 8
        for (text, offset) in [
            (String(repeating: "(", count: 10_000) + "a", 256),
            (String(repeating: "NOT ", count: 10_000) + "a", 4 * 256),
            (String(repeating: "- ", count: 10_000) + "a", 2 * 256),
        ] {
            #expect(Self.error(Self.head + " WHERE " + text)
                == SQLError(line: 1, column: start + offset, message: depthMessage))
        }
        let chain = "a" + String(repeating: " + a", count: 10_000)
        #expect(Self.error(Self.head + " WHERE " + chain)?.message == depthMessage)
        let wide = "a IN (" + Array(repeating: "1", count: 10_000).joined(separator: ", ") + ")"
        #expect(throws: Never.self) { try Query.parse(Self.head + " WHERE " + wide) }
    }
}
