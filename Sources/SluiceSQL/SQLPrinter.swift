// Canonical SQL for ASTs: keywords upper-case, one clause per line, the fewest parentheses that keep the
// tree's shape. Invariant (checked by the round-trip tests): parse(print(q)) == q up to positions.

/// Prints ASTs as canonical SQL.
enum SQLPrinter {
    /// A name bare when it is a plain identifier and not reserved, else "double-quoted" with `""` escaped.
    static func identifier(_ text: String) -> String {
        if isPlainIdentifier(text), !SQLKeywords.reserved.contains(text.uppercased()) { return text }
        return "\"" + doubling("\"", in: text) + "\""
    }

    /// `text` with every `quote` doubled (no Foundation in this module).
    /// Works on scalars, not Characters: a quote followed by a combining mark is one Character but the
    /// lexer, which reads bytes, still sees the quote.
    static func doubling(_ quote: Unicode.Scalar, in text: String) -> String {
        var result = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            result.append(scalar)
            if scalar == quote { result.append(quote) }
        }
        return String(result)
    }

    static func isPlainIdentifier(_ text: String) -> Bool {
        guard let first = text.utf8.first, !(first >= 0x30 && first <= 0x39) else { return false }
        return text.utf8.allSatisfy { b in
            (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x5F
        }
    }

    static func string(_ text: String) -> String {
        "'" + doubling("'", in: text) + "'"
    }

    static let intervalUnits: [(name: String, milliseconds: Int64)] = [
        ("DAY", 86_400_000), ("HOUR", 3_600_000), ("MINUTE", 60_000), ("SECOND", 1_000), ("MILLISECOND", 1),
    ]

    static func interval(_ milliseconds: Int64) -> String {
        let unit = intervalUnits.first { milliseconds % $0.milliseconds == 0 && milliseconds != 0 }
            ?? ("SECOND", 1_000)
        return "INTERVAL '\(milliseconds / unit.milliseconds)' \(unit.name)"
    }

    static func literal(_ literal: Literal) -> String {
        switch literal {
        case .integer(let value): return String(value)
        case .decimal(let value): return value.description
        case .string(let value): return string(value)
        case .boolean(let value): return value ? "TRUE" : "FALSE"
        case .null: return "NULL"
        }
    }

    /// The precedence of the node as an operand: parenthesized when it binds less tightly than required.
    static func precedence(_ expr: Expr) -> Precedence {
        switch expr.kind {
        case .binary(let op, _, _): return op.precedence
        case .isNull, .inList, .like: return .comparison
        case .unary(.not, _): return .not
        case .unary(.negate, _): return .unary
        default: return .primary
        }
    }

    /// `expr` printed so that it parses back as an operand of at least `minimum` precedence.
    static func operand(_ expr: Expr, minimum: Precedence) -> String {
        let text = expression(expr)
        return precedence(expr) < minimum ? "(\(text))" : text
    }

    static func expression(_ expr: Expr) -> String {
        switch expr.kind {
        case .literal(let value): return literal(value)
        case .column(let path): return path.map(identifier).joined(separator: ".")
        case .interval(let milliseconds): return interval(milliseconds)
        case .unary(.not, let operand): return "NOT " + self.operand(operand, minimum: .not)
        case .unary(.negate, let operand):
            let text = self.operand(operand, minimum: .unary)
            // "--" would start a comment.
            return text.hasPrefix("-") ? "- " + text : "-" + text
        case .binary(let op, let left, let right):
            // Left-associative: the right operand needs parentheses at equal precedence.
            return operand(left, minimum: op.precedence) + " \(op.rawValue) " + operand(right, minimum: op.precedence.next)
        case .isNull(let operand, let negated):
            return self.operand(operand, minimum: .comparison) + (negated ? " IS NOT NULL" : " IS NULL")
        case .inList(let operand, let list, let negated):
            return self.operand(operand, minimum: .comparison) + (negated ? " NOT IN (" : " IN (")
                + list.map(expression).joined(separator: ", ") + ")"
        case .like(let operand, let pattern, let negated):
            return self.operand(operand, minimum: .comparison) + (negated ? " NOT LIKE " : " LIKE ")
                + self.operand(pattern, minimum: .additive)
        case .caseWhen(let operand, let branches, let otherwise):
            var text = "CASE"
            if let operand { text += " " + expression(operand) }
            for branch in branches { text += " WHEN \(expression(branch.when)) THEN \(expression(branch.then))" }
            if let otherwise { text += " ELSE " + expression(otherwise) }
            return text + " END"
        case .cast(let operand, let type): return "CAST(\(expression(operand)) AS \(type.rawValue))"
        case .call(let call):
            if call.isStar { return call.name + "(*)" }
            return call.name + "(" + (call.isDistinct ? "DISTINCT " : "")
                + call.arguments.map(expression).joined(separator: ", ") + ")"
        }
    }

    static func window(_ window: WindowSpec) -> String {
        let time = expression(window.time)
        switch window.kind {
        case .tumble(let size): return "TUMBLE(\(time), \(size))"
        case .hop(let slide, let size): return "HOP(\(time), \(slide), \(size))"
        case .session(let gap): return "SESSION(\(time), \(gap))"
        }
    }

    static func query(_ query: Query) -> String {
        var lines = ["INSERT INTO \(query.sink)"]
        lines.append("SELECT " + query.select.map { item in
            let text: String
            switch item.kind {
            case .wildcard: text = "*"
            case .expression(let expr): text = expression(expr)
            }
            return item.alias.map { "\(text) AS \($0)" } ?? text
        }.joined(separator: ", "))
        var from = "FROM \(query.source)"
        if let unnest = query.unnest { from += ", UNNEST(\(expression(unnest.array))) AS \(unnest.alias)" }
        lines.append(from)
        if let filter = query.filter { lines.append("WHERE " + expression(filter)) }
        if let group = query.groupBy {
            lines.append("GROUP BY " + (group.keys.map(expression) + (group.window.map { [window($0)] } ?? []))
                .joined(separator: ", "))
        }
        if let having = query.having { lines.append("HAVING " + expression(having)) }
        if let emit = query.emit {
            switch emit.mode {
            case .final: lines.append("EMIT FINAL")
            case .changes: lines.append("EMIT CHANGES")
            case .every(let interval): lines.append("EMIT EVERY \(interval)")
            }
        }
        if !query.options.isEmpty {
            var options: [String] = []
            if let value = query.options.allowedLateness { options.append("allowed_lateness = \(value)") }
            if let value = query.options.idleTimeout { options.append("idle_timeout = \(value)") }
            if let value = query.options.lateRecords { options.append("late_records = \(string(value.text))") }
            lines.append("WITH (" + options.joined(separator: ", ") + ")")
        }
        return lines.joined(separator: "\n")
    }
}

extension Expr {
    /// Canonical SQL for the expression.
    public var description: String { SQLPrinter.expression(self) }
}

extension Query: CustomStringConvertible {
    /// Canonical SQL for the query, one clause per line.
    public var description: String { SQLPrinter.query(self) }
}
