import SluiceSQL

// Expression evaluation (issue 4, section 1: "Expressions").
//
// Values are `JSONValue`s: SQL NULL is `.null`, a missing field is NULL. The rules:
// - Three-valued logic. AND, OR and NOT work on booleans; anything else (a number, a string) is NULL to
//   them, so `WHERE amount` keeps no rows rather than guessing a truthiness. WHERE and HAVING keep a row
//   only when the condition is TRUE.
// - Arithmetic on two integers stays integral (division truncates toward zero, like SQL); with a double it
//   is double. Integer overflow, division or modulo by zero, and a double result that is not finite are
//   NULL: a stream processor cannot stop on one bad record, and NULL is SQL's "no answer".
// - Comparisons: numbers compare by exact value across integer and double; strings by UTF-8 bytes (code
//   point order); booleans false < true; arrays and objects by `JSONValue.compare`. Values of different
//   kinds are incomparable: the comparison is NULL.
// - Nothing here traps on any input; the tests feed Int64.min, huge strings and every kind mix.
//
// Evaluation is a recursive switch over `BoundExpr`, generic over where leaves (columns) come from so that
// both contexts are specialised. Function calls, CAST and LIKE live in Evaluator+Functions.swift.

/// Where an expression's leaves come from: a row (fields, pseudo-columns, the UNNEST element) or a result
/// (group keys, aggregate values, the window).
protocol EvaluationContext {
    /// The value of a leaf: `.field`, `.pseudo`, `.element`, `.proctime`, `.groupKey`, `.aggregate`,
    /// `.windowStart` or `.windowEnd`. A leaf the context does not have is NULL.
    func leaf(_ expr: BoundExpr) -> JSONValue
}

/// An evaluation context with no columns, for constant expressions (and tests).
struct ConstantContext: EvaluationContext {
    func leaf(_ expr: BoundExpr) -> JSONValue { .null }
}

/// Evaluates bound expressions.
enum Evaluator {
    /// The value of `expr` in `context`.
    static func evaluate<Context: EvaluationContext>(_ expr: BoundExpr, in context: Context) -> JSONValue {
        switch expr {
        case .literal(let literal):
            return value(of: literal)
        case .field, .pseudo, .element, .proctime, .groupKey, .aggregate, .windowStart, .windowEnd:
            return context.leaf(expr)
        case .unary(let op, let operand):
            let value = evaluate(operand, in: context)
            return op == .negate ? negate(value) : not(value)
        case .binary(let op, let lhs, let rhs):
            return binary(op, lhs, rhs, in: context)
        case .isNull(let operand, let negated):
            return .bool(evaluate(operand, in: context).isNull != negated)
        case .inList(let operand, let list, let negated):
            return inList(evaluate(operand, in: context), list, negated: negated, in: context)
        case .like(let operand, let pattern, let negated):
            return like(evaluate(operand, in: context), evaluate(pattern, in: context), negated: negated)
        case .caseWhen(let branches, let otherwise):
            for branch in branches where truth(evaluate(branch.when, in: context)) == true {
                return evaluate(branch.then, in: context)
            }
            return otherwise.map { evaluate($0, in: context) } ?? .null
        case .cast(let operand, let type):
            return cast(evaluate(operand, in: context), to: type)
        case .function(let function, let arguments):
            return call(function, arguments, in: context)
        }
    }

    /// True only when `expr` evaluates to TRUE (the WHERE / HAVING rule).
    static func isTrue<Context: EvaluationContext>(_ expr: BoundExpr, in context: Context) -> Bool {
        truth(evaluate(expr, in: context)) == true
    }

    static func value(of literal: Literal) -> JSONValue {
        switch literal {
        case .integer(let value): return .int(value)
        case .decimal(let value): return value.isFinite ? .number(value) : .null
        case .string(let value): return .string(value)
        case .boolean(let value): return .bool(value)
        case .null: return .null
        }
    }

    /// A value as a truth value: booleans are themselves, everything else is unknown (nil).
    static func truth(_ value: JSONValue) -> Bool? {
        if case .bool(let flag) = value { return flag }
        return nil
    }

    static func not(_ value: JSONValue) -> JSONValue {
        guard let flag = truth(value) else { return .null }
        return .bool(!flag)
    }

    static func negate(_ value: JSONValue) -> JSONValue {
        switch value {
        case .int(let integer):
            let (result, overflow) = Int64(0).subtractingReportingOverflow(integer)
            return overflow ? .null : .int(result)
        case .number(let double):
            return .number(-double)
        default:
            return .null
        }
    }

    private static func binary<Context: EvaluationContext>(_ op: BinaryOperator, _ lhs: BoundExpr, _ rhs: BoundExpr,
                                                           in context: Context) -> JSONValue {
        switch op {
        case .and:
            let left = truth(evaluate(lhs, in: context))
            if left == false { return .bool(false) }
            let right = truth(evaluate(rhs, in: context))
            if right == false { return .bool(false) }
            return left == true && right == true ? .bool(true) : .null
        case .or:
            let left = truth(evaluate(lhs, in: context))
            if left == true { return .bool(true) }
            let right = truth(evaluate(rhs, in: context))
            if right == true { return .bool(true) }
            return left == false && right == false ? .bool(false) : .null
        case .equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual:
            guard let order = compare(evaluate(lhs, in: context), evaluate(rhs, in: context)) else { return .null }
            return .bool(holds(op, order))
        case .add, .subtract, .multiply, .divide, .modulo:
            return arithmetic(op, evaluate(lhs, in: context), evaluate(rhs, in: context))
        }
    }

    private static func holds(_ op: BinaryOperator, _ order: Int) -> Bool {
        switch op {
        case .equal: return order == 0
        case .notEqual: return order != 0
        case .less: return order < 0
        case .lessOrEqual: return order <= 0
        case .greater: return order > 0
        default: return order >= 0
        }
    }

    /// SQL comparison: negative, zero or positive; nil when either side is NULL or the kinds differ.
    static func compare(_ lhs: JSONValue, _ rhs: JSONValue) -> Int? {
        switch (lhs, rhs) {
        case (.int(let a), .int(let b)):
            return a == b ? 0 : (a < b ? -1 : 1)
        case (.number(let a), .number(let b)):
            if a.isNaN || b.isNaN { return nil }
            return a == b ? 0 : (a < b ? -1 : 1)
        case (.int(let a), .number(let b)):
            return b.isNaN ? nil : JSONValue.compareIntDouble(a, b)
        case (.number(let a), .int(let b)):
            return a.isNaN ? nil : -JSONValue.compareIntDouble(b, a)
        case (.string(let a), .string(let b)):
            return JSONValue.compareBytes(a, b)
        case (.bool(let a), .bool(let b)):
            return a == b ? 0 : (a ? 1 : -1)
        case (.array, .array), (.object, .object):
            return JSONValue.compare(lhs, rhs)
        default:
            return nil
        }
    }

    private static func inList<Context: EvaluationContext>(_ value: JSONValue, _ list: [BoundExpr], negated: Bool,
                                                           in context: Context) -> JSONValue {
        if value.isNull { return .null }
        var unknown = false
        for item in list {
            guard let order = compare(value, evaluate(item, in: context)) else {
                unknown = true  // `x = NULL` (or an incomparable item) is unknown, not false
                continue
            }
            if order == 0 { return .bool(!negated) }
        }
        return unknown ? .null : .bool(negated)
    }

    /// `lhs op rhs` for + - * / %.
    static func arithmetic(_ op: BinaryOperator, _ lhs: JSONValue, _ rhs: JSONValue) -> JSONValue {
        switch (lhs, rhs) {
        case (.int(let a), .int(let b)):
            return integerArithmetic(op, a, b)
        case (.int(let a), .number(let b)):
            return doubleArithmetic(op, Double(a), b)
        case (.number(let a), .int(let b)):
            return doubleArithmetic(op, a, Double(b))
        case (.number(let a), .number(let b)):
            return doubleArithmetic(op, a, b)
        default:
            return .null
        }
    }

    private static func integerArithmetic(_ op: BinaryOperator, _ a: Int64, _ b: Int64) -> JSONValue {
        let (result, overflow): (Int64, Bool)
        switch op {
        case .add: (result, overflow) = a.addingReportingOverflow(b)
        case .subtract: (result, overflow) = a.subtractingReportingOverflow(b)
        case .multiply: (result, overflow) = a.multipliedReportingOverflow(by: b)
        case .divide:
            guard b != 0 else { return .null }
            (result, overflow) = a.dividedReportingOverflow(by: b)
        default:
            guard b != 0 else { return .null }
            if b == -1 { return .int(0) }  // Int64.min % -1 is 0 mathematically; the CPU instruction traps
            (result, overflow) = (a % b, false)
        }
        return overflow ? .null : .int(result)
    }

    private static func doubleArithmetic(_ op: BinaryOperator, _ a: Double, _ b: Double) -> JSONValue {
        let result: Double
        switch op {
        case .add: result = a + b
        case .subtract: result = a - b
        case .multiply: result = a * b
        case .divide:
            guard b != 0 else { return .null }
            result = a / b
        default:
            guard b != 0 else { return .null }
            result = a.truncatingRemainder(dividingBy: b)
        }
        return result.isFinite ? .number(result) : .null
    }
}
