/// The syntax tree of a processor query. Value types only; every node carries the `SourcePosition` of its
/// first token (for operators: of the operator) so that binding and planning can report errors in place.
///
/// Equality includes positions; compare `withoutPositions()` to ignore them.

/// A name as written, with its position: a sink or source topic, an alias.
public struct Name: Sendable, Equatable, CustomStringConvertible {
    /// The name, unquoted and unescaped.
    public var text: String
    /// Where it starts.
    public var position: SourcePosition

    /// Creates a name.
    public init(_ text: String, at position: SourcePosition = .none) {
        self.text = text
        self.position = position
    }

    /// The name as canonical SQL: bare when it is a plain identifier and not reserved, else "quoted".
    public var description: String { SQLPrinter.identifier(text) }
}

/// A duration, from `INTERVAL '10' SECOND`, held in milliseconds.
public struct Interval: Sendable, Equatable, CustomStringConvertible {
    /// The duration. Invariant: `milliseconds >= 0`.
    public var milliseconds: Int64
    /// Where the INTERVAL keyword starts.
    public var position: SourcePosition

    /// Creates an interval.
    public init(milliseconds: Int64, at position: SourcePosition = .none) {
        precondition(milliseconds >= 0, "Interval: milliseconds must not be negative")
        self.milliseconds = milliseconds
        self.position = position
    }

    /// `INTERVAL 'n' UNIT` with the largest unit that divides the duration exactly.
    public var description: String { SQLPrinter.interval(milliseconds) }
}

/// The types of `CAST(x AS type)`.
public enum SQLType: String, Sendable, Equatable, CaseIterable {
    case string = "STRING"
    case bigint = "BIGINT"
    case double = "DOUBLE"
    case boolean = "BOOLEAN"
    case timestamp = "TIMESTAMP"

    /// Spellings accepted for each type (the first is canonical).
    static let spellings: [(String, SQLType)] = [
        ("STRING", .string), ("VARCHAR", .string), ("BIGINT", .bigint), ("INT", .bigint), ("INTEGER", .bigint),
        ("DOUBLE", .double), ("BOOLEAN", .boolean), ("TIMESTAMP", .timestamp),
    ]
}

/// A literal value.
public enum Literal: Sendable, Hashable {
    /// A whole number. The parser produces only non-negative ones; `-5` is `negate(5)`.
    case integer(Int64)
    /// A number with a fraction or exponent. The parser produces only finite, non-negative ones.
    case decimal(Double)
    /// A string.
    case string(String)
    /// TRUE or FALSE.
    case boolean(Bool)
    /// NULL.
    case null
}

/// Prefix operators.
public enum UnaryOperator: String, Sendable, Equatable, CaseIterable {
    /// Arithmetic negation, `-x`.
    case negate = "-"
    /// Logical negation, `NOT x`.
    case not = "NOT"
}

/// Infix operators, with their SQL spelling.
public enum BinaryOperator: String, Sendable, Equatable, CaseIterable {
    case or = "OR"
    case and = "AND"
    case equal = "="
    case notEqual = "!="
    case less = "<"
    case lessOrEqual = "<="
    case greater = ">"
    case greaterOrEqual = ">="
    case add = "+"
    case subtract = "-"
    case multiply = "*"
    case divide = "/"
    case modulo = "%"

    /// Binding strength: OR < AND < (NOT) < comparison < + - < * / % < unary minus.
    var precedence: Precedence {
        switch self {
        case .or: return .or
        case .and: return .and
        case .equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual: return .comparison
        case .add, .subtract: return .additive
        case .multiply, .divide, .modulo: return .multiplicative
        }
    }
}

/// Operator precedence levels, lowest first. All binary levels associate to the left.
enum Precedence: Int, Comparable {
    case or = 1, and, not, comparison, additive, multiplicative, unary, primary

    static func < (lhs: Precedence, rhs: Precedence) -> Bool { lhs.rawValue < rhs.rawValue }

    var next: Precedence { Precedence(rawValue: rawValue + 1) ?? .primary }
}

/// A WHEN … THEN … arm of CASE.
public struct CaseBranch: Sendable, Equatable {
    /// The condition (searched CASE) or the value compared with the operand (simple CASE).
    public var when: Expr
    /// The result when it matches.
    public var then: Expr

    /// Creates a branch.
    public init(when: Expr, then: Expr) {
        self.when = when
        self.then = then
    }
}

/// A function call: `LOWER(x)`, `COUNT(*)`, `COUNT(DISTINCT x)`, `PROCTIME()`.
public struct FunctionCall: Sendable, Equatable {
    /// The function's name, upper-cased (function names are case-insensitive).
    public var name: String
    /// The arguments; empty for `COUNT(*)` and `PROCTIME()`.
    public var arguments: [Expr]
    /// `COUNT(DISTINCT x)`. Invariant: only with at least one argument.
    public var isDistinct: Bool
    /// `COUNT(*)`. Invariant: only with no arguments and not distinct.
    public var isStar: Bool

    /// Creates a call.
    public init(name: String, arguments: [Expr], isDistinct: Bool = false, isStar: Bool = false) {
        self.name = name.uppercased()
        self.arguments = arguments
        self.isDistinct = isDistinct
        self.isStar = isStar
    }
}

/// An expression node.
public struct Expr: Sendable, Equatable, CustomStringConvertible {
    /// The kinds of expression.
    public indirect enum Kind: Sendable, Equatable {
        /// A literal.
        case literal(Literal)
        /// A column: a JSON field path (`order.customer.id` is `["order", "customer", "id"]`) or a
        /// pseudo-column (`_key`, `_value`, `_timestamp`, `_partition`, `_offset`).
        case column([String])
        /// `-x`, `NOT x`.
        case unary(UnaryOperator, Expr)
        /// `x op y`.
        case binary(BinaryOperator, Expr, Expr)
        /// `x IS NULL`, or `x IS NOT NULL` when negated.
        case isNull(Expr, negated: Bool)
        /// `x IN (a, b)`, or `x NOT IN (…)` when negated.
        case inList(Expr, [Expr], negated: Bool)
        /// `x LIKE pattern`, or `x NOT LIKE pattern` when negated.
        case like(Expr, pattern: Expr, negated: Bool)
        /// `CASE [operand] WHEN … THEN … [ELSE …] END`.
        case caseWhen(operand: Expr?, branches: [CaseBranch], otherwise: Expr?)
        /// `CAST(x AS type)`.
        case cast(Expr, SQLType)
        /// A function call.
        case call(FunctionCall)
        /// `INTERVAL 'n' UNIT`, in milliseconds.
        case interval(milliseconds: Int64)
    }

    /// What the node is.
    public let kind: Kind
    /// Where it starts (for binary and postfix operators: where the operator is).
    public let position: SourcePosition
    /// Levels of the tree below and including this node; bounded by `SQLLimits.expressionDepthMax` in
    /// parsed trees so that recursive consumers (printer, binder) stay within the stack.
    public let height: Int

    /// Creates a node.
    public init(_ kind: Kind, at position: SourcePosition = .none) {
        self.kind = kind
        self.position = position
        self.height = 1 + (kind.children.map(\.height).max() ?? 0)
    }

    /// A column reference (`Expr.column("order", "id")`).
    public static func column(_ path: String..., at position: SourcePosition = .none) -> Expr {
        Expr(.column(path), at: position)
    }

    /// A literal.
    public static func literal(_ value: Literal, at position: SourcePosition = .none) -> Expr {
        Expr(.literal(value), at: position)
    }

    /// Positions and kinds are compared; `height` follows from the kind.
    public static func == (lhs: Expr, rhs: Expr) -> Bool {
        lhs.position == rhs.position && lhs.kind == rhs.kind
    }
}

extension Expr.Kind {
    /// The direct sub-expressions, in source order.
    public var children: [Expr] {
        switch self {
        case .literal, .column, .interval: return []
        case .unary(_, let operand): return [operand]
        case .binary(_, let left, let right): return [left, right]
        case .isNull(let operand, _): return [operand]
        case .inList(let operand, let list, _): return [operand] + list
        case .like(let operand, let pattern, _): return [operand, pattern]
        case .caseWhen(let operand, let branches, let otherwise):
            return (operand.map { [$0] } ?? []) + branches.flatMap { [$0.when, $0.then] } + (otherwise.map { [$0] } ?? [])
        case .cast(let operand, _): return [operand]
        case .call(let call): return call.arguments
        }
    }
}

/// One item of the SELECT list.
public struct SelectItem: Sendable, Equatable {
    /// `*` (every field of the record) or an expression.
    public enum Kind: Sendable, Equatable {
        case wildcard
        case expression(Expr)
    }

    /// What is selected.
    public var kind: Kind
    /// `AS name`; never set for the wildcard.
    public var alias: Name?
    /// Where the item starts.
    public var position: SourcePosition

    /// Creates an item.
    public init(_ kind: Kind, alias: Name? = nil, at position: SourcePosition = .none) {
        self.kind = kind
        self.alias = alias
        self.position = position
    }

    /// An expression item.
    public static func expression(_ expr: Expr, alias: Name? = nil) -> SelectItem {
        SelectItem(.expression(expr), alias: alias, at: expr.position)
    }
}

/// `, UNNEST(array) AS name` after the source: one output row per array element (a flat-map).
public struct Unnest: Sendable, Equatable {
    /// The array expression.
    public var array: Expr
    /// The name each element is bound to.
    public var alias: Name
    /// Where UNNEST starts.
    public var position: SourcePosition

    /// Creates an UNNEST.
    public init(array: Expr, alias: Name, at position: SourcePosition = .none) {
        self.array = array
        self.alias = alias
        self.position = position
    }
}

/// The window function of GROUP BY.
public struct WindowSpec: Sendable, Equatable {
    /// The kinds of window, with their intervals.
    public enum Kind: Sendable, Equatable {
        /// `TUMBLE(time, size)`: fixed, non-overlapping windows.
        case tumble(size: Interval)
        /// `HOP(time, slide, size)`: windows of `size` starting every `slide`.
        case hop(slide: Interval, size: Interval)
        /// `SESSION(time, gap)`: per key, closed `gap` after the last record.
        case session(gap: Interval)

        /// TUMBLE, HOP or SESSION.
        public var functionName: String {
            switch self {
            case .tumble: return "TUMBLE"
            case .hop: return "HOP"
            case .session: return "SESSION"
            }
        }
    }

    /// The window and its intervals.
    public var kind: Kind
    /// The event-time argument: a field, `_timestamp` or `PROCTIME()`.
    public var time: Expr
    /// Where the function name starts.
    public var position: SourcePosition

    /// Creates a window spec.
    public init(_ kind: Kind, time: Expr, at position: SourcePosition = .none) {
        self.kind = kind
        self.time = time
        self.position = position
    }

    /// The names of the window functions.
    public static let functionNames = ["TUMBLE", "HOP", "SESSION"]
}

/// `GROUP BY keys…[, window]`.
public struct GroupBy: Sendable, Equatable {
    /// The grouping expressions, window function excluded. May be empty when only a window is given.
    public var keys: [Expr]
    /// The window function, wherever it appeared in the list.
    public var window: WindowSpec?
    /// Where GROUP starts.
    public var position: SourcePosition

    /// Creates a GROUP BY.
    public init(keys: [Expr], window: WindowSpec? = nil, at position: SourcePosition = .none) {
        self.keys = keys
        self.window = window
        self.position = position
    }
}

/// When results leave a windowed query.
public enum EmitMode: Sendable, Equatable {
    /// `EMIT FINAL`: one result per window when the watermark passes its end.
    case final
    /// `EMIT CHANGES`: an update on every change.
    case changes
    /// `EMIT EVERY interval`: early results every interval of processing time, then the final one.
    case every(Interval)
}

/// The EMIT clause.
public struct Emit: Sendable, Equatable {
    /// The mode.
    public var mode: EmitMode
    /// Where EMIT starts.
    public var position: SourcePosition

    /// Creates an EMIT clause.
    public init(_ mode: EmitMode, at position: SourcePosition = .none) {
        self.mode = mode
        self.position = position
    }
}

/// `WITH (…)` options; each absent unless given.
public struct QueryOptions: Sendable, Equatable {
    /// `allowed_lateness = interval` (default 0 when absent).
    public var allowedLateness: Interval?
    /// `idle_timeout = interval`.
    public var idleTimeout: Interval?
    /// `late_records = 'topic'`.
    public var lateRecords: Name?

    /// Creates options.
    public init(allowedLateness: Interval? = nil, idleTimeout: Interval? = nil, lateRecords: Name? = nil) {
        self.allowedLateness = allowedLateness
        self.idleTimeout = idleTimeout
        self.lateRecords = lateRecords
    }

    /// True when no option is set (the WITH clause is omitted when printing).
    public var isEmpty: Bool { allowedLateness == nil && idleTimeout == nil && lateRecords == nil }

    /// The option names, in canonical order.
    public static let names = ["allowed_lateness", "idle_timeout", "late_records"]
}

/// A whole processor query: `INSERT INTO sink SELECT … FROM source …`.
public struct Query: Sendable, Equatable {
    /// The derived topic written to.
    public var sink: Name
    /// The SELECT list. Invariant: not empty.
    public var select: [SelectItem]
    /// The topic read from.
    public var source: Name
    /// `, UNNEST(…) AS name` after the source.
    public var unnest: Unnest?
    /// The WHERE condition.
    public var filter: Expr?
    /// The GROUP BY clause.
    public var groupBy: GroupBy?
    /// The HAVING condition.
    public var having: Expr?
    /// The EMIT clause.
    public var emit: Emit?
    /// The WITH options.
    public var options: QueryOptions
    /// Where INSERT starts.
    public var position: SourcePosition

    /// Creates a query.
    public init(
        sink: Name, select: [SelectItem], source: Name, unnest: Unnest? = nil, filter: Expr? = nil,
        groupBy: GroupBy? = nil, having: Expr? = nil, emit: Emit? = nil, options: QueryOptions = QueryOptions(),
        at position: SourcePosition = .none
    ) {
        self.sink = sink
        self.select = select
        self.source = source
        self.unnest = unnest
        self.filter = filter
        self.groupBy = groupBy
        self.having = having
        self.emit = emit
        self.options = options
        self.position = position
    }
}
