// Leaf helpers of the binder: sample columns, suggestions, literal descriptions, tree walks. All pure.

/// The dotted paths of sample records, with the objects on the way to them, for checking column paths.
struct KnownColumns {
    /// The paths as given (`"order.customer.id"`).
    let paths: Set<String>
    /// Every proper prefix of a path (`"order"`, `"order.customer"`): objects, which may be read whole.
    let objects: Set<String>

    init(_ paths: Set<String>) {
        self.paths = paths
        var objects: Set<String> = []
        for path in paths {
            var prefix = ""
            for component in path.split(separator: ".", omittingEmptySubsequences: false).dropLast() {
                prefix = prefix.isEmpty ? String(component) : prefix + "." + component
                objects.insert(prefix)
            }
        }
        self.objects = objects
    }

    /// True when `path` is known, an object on the way to a known path, or extends a known path (whose
    /// sample value may have been NULL rather than the object the query expects).
    func contains(_ path: [String]) -> Bool {
        let name = path.joined(separator: ".")
        if paths.contains(name) || objects.contains(name) { return true }
        var prefix = ""
        for component in path.dropLast() {
            prefix = prefix.isEmpty ? component : prefix + "." + component
            if paths.contains(prefix) { return true }
        }
        return false
    }

    /// Suggestion candidates, sorted so that ties between equally close candidates resolve the same way
    /// every run (Set order is seeded per process).
    var candidates: [String] { paths.union(objects).sorted() }
}

/// "Did you mean" for column names, which are case-sensitive: a candidate differing only in case is the
/// best suggestion (the shared `Suggestion` ignores case, so it would skip it).
enum ColumnSuggestion {
    /// ` (did you mean 'x'?)` or the empty string.
    static func suffix(for name: String, among candidates: [String]) -> String {
        let lower = name.lowercased()
        let match = candidates.first { $0 != name && $0.lowercased() == lower }
            ?? Suggestion.closest(to: name, among: candidates)
        return match.map { " (did you mean '\($0)'?)" } ?? ""
    }
}

extension Literal {
    /// The literal as error messages name it, like the parser names tokens: `string 'abc'`, `number 5`.
    var described: String {
        switch self {
        case .integer(let value): return "number \(value)"
        case .decimal(let value): return "number \(value)"
        case .string(let value): return "string '\(Token.clip(value))'"
        case .boolean(let value): return value ? "TRUE" : "FALSE"
        case .null: return "NULL"
        }
    }

    var isString: Bool {
        if case .string = self { return true }
        return false
    }
}

extension Expr {
    /// The position of the leftmost token of the expression (a binary node's own position is its operator).
    /// Iterative: callers may use it before depth is checked.
    var firstPosition: SourcePosition {
        var first = position
        var stack = [self]
        while let expr = stack.popLast() {
            if expr.position != .none, first == .none || expr.position < first { first = expr.position }
            stack += expr.kind.children
        }
        return first
    }

    /// True when an aggregate call appears anywhere in the tree. Iterative, like `firstPosition`.
    var containsAggregate: Bool {
        var stack = [self]
        while let expr = stack.popLast() {
            if case .call(let call) = expr.kind, AggregateName.names.contains(call.name) { return true }
            stack += expr.kind.children
        }
        return false
    }
}
