import SluiceSQL
@testable import SluiceStreams
import SluiceTestSupport
import Testing

/// Expressions by table: SQL's three-valued logic, integer overflow, comparisons across kinds, LIKE, IN,
/// CASE, CAST and every scalar function, plus a sweep of hostile operands that must never trap.
@Suite("Expressions")
struct EvaluatorTests {
    static func eval(_ expr: BoundExpr) -> JSONValue { Evaluator.evaluate(expr, in: ConstantContext()) }

    static func lit(_ value: JSONValue) -> BoundExpr {
        switch value {
        case .null: return .literal(.null)
        case .bool(let flag): return .literal(.boolean(flag))
        case .int(let integer): return .literal(.integer(integer))
        case .number(let double): return .literal(.decimal(double))
        case .string(let text): return .literal(.string(text))
        default: preconditionFailure("no literal for \(value)")
        }
    }

    static func binary(_ op: BinaryOperator, _ a: JSONValue, _ b: JSONValue) -> JSONValue {
        eval(.binary(op, lit(a), lit(b)))
    }

    static func call(_ function: ScalarFunction, _ arguments: JSONValue...) -> JSONValue {
        eval(.function(function, arguments.map(lit)))
    }

    @Test func threeValuedLogic() {
        let values: [JSONValue] = [true, false, nil]
        // Kleene's tables: rows are the left operand, columns the right, in the order TRUE, FALSE, NULL.
        let and: [[JSONValue]] = [[true, false, nil], [false, false, false], [nil, false, nil]]
        let or: [[JSONValue]] = [[true, true, true], [true, false, nil], [true, nil, nil]]
        for (i, a) in values.enumerated() {
            for (j, b) in values.enumerated() {
                #expect(Self.binary(.and, a, b) == and[i][j], "\(a) AND \(b)")
                #expect(Self.binary(.or, a, b) == or[i][j], "\(a) OR \(b)")
            }
        }
        #expect(Self.eval(.unary(.not, .literal(.null))) == nil)
        #expect(Self.eval(.unary(.not, .literal(.boolean(false)))) == true)
        #expect(Self.binary(.and, 1, true) == nil, "a number is not a truth value")
        #expect(Self.eval(.isNull(.literal(.null), negated: false)) == true)
        #expect(Self.eval(.isNull(.literal(.integer(1)), negated: true)) == true)
        #expect(!Evaluator.isTrue(.literal(.null), in: ConstantContext()))
    }

    @Test func integerArithmeticStaysIntegralAndOverflowIsNull() {
        let table: [(BinaryOperator, JSONValue, JSONValue, JSONValue)] = [
            (.add, 2, 3, 5), (.subtract, 2, 3, -1), (.multiply, 4, 5, 20), (.divide, 7, 2, 3), (.divide, -7, 2, -3),
            (.modulo, 7, 3, 1), (.modulo, -7, 3, -1),
            (.add, .int(.max), 1, nil), (.subtract, .int(.min), 1, nil), (.multiply, .int(.max), 2, nil),
            (.divide, .int(.min), -1, nil), (.modulo, .int(.min), -1, 0), (.divide, 1, 0, nil), (.modulo, 1, 0, nil),
            (.add, 1, 0.5, 1.5), (.divide, 1, 2.0, 0.5), (.divide, 1.0, 0, nil), (.multiply, 1e308, 10, nil),
            (.modulo, 7.5, 2, 1.5), (.add, "a", 1, nil), (.add, nil, 1, nil),
        ]
        for (op, a, b, expected) in table {
            #expect(Self.binary(op, a, b) == expected, "\(a) \(op.rawValue) \(b)")
        }
        #expect(Self.eval(.unary(.negate, .unary(.negate, .literal(.integer(.max))))) == .int(.max))
        #expect(Evaluator.negate(.int(.min)) == nil)
        #expect(Evaluator.negate(.number(2.5)) == -2.5)
    }

    @Test func comparisonsAcrossNumberKindsAndIncomparableKinds() {
        let table: [(BinaryOperator, JSONValue, JSONValue, JSONValue)] = [
            (.equal, 1, 1.0, true), (.less, 1, 1.5, true), (.greater, .int(9_007_199_254_740_993), 9_007_199_254_740_992.0, true),
            (.notEqual, 2, 2, false), (.lessOrEqual, 2, 2, true), (.greaterOrEqual, 1, 2, false),
            (.less, "apple", "banana", true), (.less, "Z", "a", true), (.equal, "é", "é", true),
            (.less, false, true, true), (.equal, "1", 1, nil), (.equal, nil, nil, nil), (.less, 1, nil, nil),
            (.equal, true, 1, nil),
        ]
        for (op, a, b, expected) in table {
            #expect(Self.binary(op, a, b) == expected, "\(a) \(op.rawValue) \(b)")
        }
    }

    @Test func inListFollowsTheNullRules() {
        func inList(_ value: JSONValue, _ list: [JSONValue], negated: Bool = false) -> JSONValue {
            Self.eval(.inList(Self.lit(value), list.map(Self.lit), negated: negated))
        }
        #expect(inList(2, [1, 2, 3]) == true)
        #expect(inList(2.0, [1, 2]) == true)
        #expect(inList(5, [1, 2]) == false)
        #expect(inList(5, [1, nil]) == nil)
        #expect(inList(1, [1, nil]) == true)
        #expect(inList(nil, [1]) == nil)
        #expect(inList(5, [1, 2], negated: true) == true)
        #expect(inList(5, [1, nil], negated: true) == nil)
        #expect(inList("a", ["b", "a"], negated: true) == false)
    }

    @Test func like() {
        let table: [(JSONValue, JSONValue, JSONValue)] = [
            ("hello", "h%", true), ("hello", "%llo", true), ("hello", "h_llo", true), ("hello", "h_lo", false),
            ("hello", "%", true), ("", "%", true), ("", "_", false), ("hello", "hello", true), ("hello", "Hello", false),
            ("abcabc", "%a%c", true), ("aaab", "%a%a%b", true), ("ab", "%a%a%b", false), ("日本語", "_本_", true),
            ("日本語", "%語", true), ("100%", "100%", true), (nil, "%", nil), ("x", nil, nil), (5, "%", nil),
            (.string(String(repeating: "a", count: 2_000)), .string(String(repeating: "%a", count: 50) + "b"), false),
        ]
        for (value, pattern, expected) in table {
            #expect(Self.eval(.like(Self.lit(value), pattern: Self.lit(pattern), negated: false)) == expected,
                    "\(value) LIKE \(pattern)")
        }
        #expect(Self.eval(.like(Self.lit("abc"), pattern: Self.lit("a%"), negated: true)) == false)
    }

    @Test func caseWhenTakesTheFirstTrueBranch() {
        let branches = [BoundBranch(when: .literal(.null), then: Self.lit("null")),
                        BoundBranch(when: .literal(.boolean(false)), then: Self.lit("false")),
                        BoundBranch(when: .binary(.less, Self.lit(1), Self.lit(2)), then: Self.lit("yes")),
                        BoundBranch(when: .literal(.boolean(true)), then: Self.lit("later"))]
        #expect(Self.eval(.caseWhen(branches: branches, otherwise: Self.lit("else"))) == "yes")
        #expect(Self.eval(.caseWhen(branches: Array(branches.prefix(2)), otherwise: Self.lit("else"))) == "else")
        #expect(Self.eval(.caseWhen(branches: Array(branches.prefix(2)), otherwise: nil)) == nil)
    }

    @Test func casts() {
        let table: [(JSONValue, SQLType, JSONValue)] = [
            (42, .string, "42"), (1.5, .string, "1.5"), (true, .string, "true"), ("x", .string, "x"), (nil, .string, nil),
            ("42", .bigint, 42), (" -7 ", .bigint, -7), ("4.9", .bigint, 4), (-4.9, .bigint, -4), (1e30, .bigint, nil),
            ("abc", .bigint, nil), (true, .bigint, 1),
            ("2.5", .double, 2.5), (3, .double, 3.0), ("nan", .double, nil), ("x", .double, nil),
            ("TRUE", .boolean, true), ("false", .boolean, false), (0, .boolean, false), ("yes", .boolean, nil),
            (1_700_000_000_000, .timestamp, 1_700_000_000_000), ("1970-01-01T00:00:01Z", .timestamp, 1_000),
            ("1700000000000", .timestamp, 1_700_000_000_000), (1.5, .timestamp, nil), ("soon", .timestamp, nil),
        ]
        for (value, type, expected) in table {
            #expect(Self.eval(.cast(Self.lit(value), type)) == expected, "CAST(\(value) AS \(type.rawValue))")
        }
        #expect(Evaluator.cast(["a": 1], to: .string) == "{\"a\":1}")
    }

    @Test func stringFunctions() {
        #expect(Self.call(.lower, "ÀBC") == "àbc")
        #expect(Self.call(.upper, "straße") == "STRASSE")
        #expect(Self.call(.upper, 5) == nil)
        #expect(Self.call(.concat, "a", 1, true, 2.5) == "a1true2.5")
        #expect(Self.call(.concat, "a", nil) == nil)
        #expect(Self.call(.length, "日本語") == 3)
        #expect(Self.call(.trim, " \t x y \n") == "x y")
        #expect(Self.call(.trim, "   ") == "")
        let substrings: [([JSONValue], JSONValue)] = [
            (["hello", 2, 3], "ell"), (["hello", 1], "hello"), (["hello", 0, 3], "he"), (["hello", -5, 3], ""),
            (["hello", 4, 100], "lo"), (["hello", 9], ""), (["hello", 2, -1], nil), (["日本語", 2, 1], "本"),
            (["hello", .int(.max), .int(.max)], ""), (["hello", .int(.min), .int(.max)], ""), (["hello", -2, 5], "he"), ([nil, 1], nil),
            (["hello", 2.0, 2], "el"), (["hello", 1.5], nil),
        ]
        for (arguments, expected) in substrings {
            #expect(Self.eval(.function(.substring, arguments.map(Self.lit))) == expected, "SUBSTRING\(arguments)")
        }
        #expect(Self.call(.split, "a,b,,c", ",") == ["a", "b", "", "c"])
        #expect(Self.call(.split, "a::b", "::") == ["a", "b"])
        #expect(Self.call(.split, "", ",") == [""])
        #expect(Self.call(.split, "abc", "") == ["abc"])
        #expect(Self.call(.split, "日x本x", "x") == ["日", "本", ""])
        #expect(Self.call(.split, nil, ",") == nil)
        #expect(Evaluator.evaluate(.function(.length, [.field(0)]), in: ValuesContext(values: [["a", "b"]])) == 2)
    }

    @Test func mathFunctions() {
        let table: [(ScalarFunction, [JSONValue], JSONValue)] = [
            (.abs, [-3], 3), (.abs, [.int(.min)], nil), (.abs, [-2.5], 2.5), (.abs, ["x"], nil),
            (.round, [2.5], 3.0), (.round, [-2.5], -3.0), (.round, [2.375, 2], 2.38), (.round, [1234, -2], 1200),
            (.round, [1250, -2], 1300), (.round, [-1250, -2], -1300), (.round, [7], 7), (.round, [.int(.max), -1], nil),
            (.round, [.int(.max), -19], nil), (.round, [12, -19], 0), (.round, [1.5, 400], 1.5), (.round, [1.5, "x"], nil),
            (.floor, [2.7], 2.0), (.floor, [-2.1], -3.0), (.floor, [5], 5), (.ceil, [2.1], 3.0), (.ceil, [-2.7], -2.0),
            (.coalesce, [nil, nil, 3, 4], 3), (.coalesce, [nil], nil),
        ]
        for (function, arguments, expected) in table {
            #expect(Self.eval(.function(function, arguments.map(Self.lit))) == expected, "\(function.rawValue)(\(arguments))")
        }
    }

    @Test func hostileOperandsNeverTrap() {
        let operands: [JSONValue] = [nil, true, 0, -1, .int(.min), .int(.max), 0.0, -0.0, 1e308, -1e308, .number(.leastNonzeroMagnitude), "",
                                     "日本", .string(String(repeating: "x", count: 300)), [], [1, "a"], ["k": nil]]
        for a in operands {
            for b in operands {
                for op in BinaryOperator.allCases {
                    _ = Evaluator.evaluate(.binary(op, .field(0), .field(1)), in: ValuesContext(values: [a, b]))
                }
                _ = Evaluator.compare(a, b)
                _ = Evaluator.like(a, b, negated: false)
                _ = Evaluator.split(a, by: b)
                for function in ScalarFunction.allCases {
                    let context = ValuesContext(values: [a, b, a])
                    let arguments = (0..<function.arity.lowerBound).map { BoundExpr.field($0 % 3) } + [.field(1)]
                    _ = Evaluator.evaluate(.function(function, Array(arguments.prefix(function.arity.upperBound))), in: context)
                }
            }
            for type in SQLType.allCases { _ = Evaluator.cast(a, to: type) }
            _ = Evaluator.negate(a)
        }
    }
}

/// Fields only: `.field(i)` is `values[i]`.
struct ValuesContext: EvaluationContext {
    var values: [JSONValue]
    func leaf(_ expr: BoundExpr) -> JSONValue {
        if case .field(let index) = expr, values.indices.contains(index) { return values[index] }
        return .null
    }
}
