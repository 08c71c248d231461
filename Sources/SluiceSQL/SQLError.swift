/// A position in the query text: 1-based line and column (columns count characters, not bytes).
public struct SourcePosition: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// 1-based line number; 0 only in `SourcePosition.none`.
    public var line: Int
    /// 1-based column, counted in Unicode scalars from the start of the line; 0 only in `.none`.
    public var column: Int

    /// Creates a position.
    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    /// The position of nodes built by code rather than parsed (and of ASTs with positions erased).
    public static let none = SourcePosition(line: 0, column: 0)

    /// `line L, column C`.
    public var description: String { "line \(line), column \(column)" }

    /// Earlier positions sort first.
    public static func < (lhs: SourcePosition, rhs: SourcePosition) -> Bool {
        (lhs.line, lhs.column) < (rhs.line, rhs.column)
    }
}

/// An error in a query, at a line and column, saying what was expected and what was found.
///
/// Rendered as `line 3, column 14: expected ',' or FROM after select item, found 'FORM' (did you mean FROM?)`.
/// These are operating errors (bad user input): the parser never traps on any input, it throws one of these.
public struct SQLError: Error, Sendable, Equatable, CustomStringConvertible {
    /// 1-based line of the offending text.
    public var line: Int
    /// 1-based column of the offending text.
    public var column: Int
    /// What was expected and what was found, without the position prefix.
    public var message: String

    /// Creates an error at `line` and `column`.
    public init(line: Int, column: Int, message: String) {
        self.line = line
        self.column = column
        self.message = message
    }

    /// Creates an error at `position`.
    public init(at position: SourcePosition, _ message: String) {
        self.init(line: position.line, column: position.column, message: message)
    }

    /// The position of the error.
    public var position: SourcePosition { SourcePosition(line: line, column: column) }

    /// `line L, column C: message`.
    public var description: String { "line \(line), column \(column): \(message)" }
}

/// "Did you mean …?" suggestions for misspelled keywords, option names, units and types.
enum Suggestion {
    /// The candidate closest to `word` (case-insensitively) by optimal-string-alignment distance, if that
    /// distance is at most 2 and at most half the candidate's length (so "X" does not suggest "AS").
    static func closest(to word: String, among candidates: [String]) -> String? {
        let upper = Array(word.uppercased().unicodeScalars)
        // Longer words cannot be within distance 2 of any keyword; also bounds the work per call.
        guard !upper.isEmpty, upper.count <= 64 else { return nil }
        var best: (candidate: String, distance: Int)?
        for candidate in candidates {
            let target = Array(candidate.uppercased().unicodeScalars)
            if target == upper { continue }
            let distance = editDistance(upper, target)
            guard distance <= 2, distance <= target.count / 2 else { continue }
            if best == nil || distance < best!.distance { best = (candidate, distance) }
        }
        return best?.candidate
    }

    /// Levenshtein distance with adjacent transpositions counting as one edit (FORM → FROM is 1).
    static func editDistance(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous2 = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                var value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    value = min(value, previous2[j - 2] + 1)
                }
                current[j] = value
            }
            (previous2, previous, current) = (previous, current, previous2)
        }
        return previous[b.count]
    }

    /// ` (did you mean X?)` or the empty string.
    static func suffix(for word: String, among candidates: [String]) -> String {
        closest(to: word, among: candidates).map { " (did you mean \($0)?)" } ?? ""
    }
}
