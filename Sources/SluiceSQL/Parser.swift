/// A recursive-descent parser over the token array of one query.
///
/// Errors always name what was expected and what was found, at the found token's position. Recursion is
/// bounded by `SQLLimits.expressionDepthMax` (parser depth and tree height), input by `queryBytesMax`.
struct Parser {
    let source: [UInt8]
    private(set) var tokens: [Token]
    private(set) var index = 0
    /// Current nesting of `parseExpression` calls. Invariant: `depth <= SQLLimits.expressionDepthMax`.
    var depth = 0

    init(_ text: String) throws(SQLError) {
        let bytes = text.utf8.count
        guard bytes <= SQLLimits.queryBytesMax else {
            throw SQLError(at: SourcePosition(line: 1, column: 1),
                           "query is \(bytes) bytes; the limit is \(SQLLimits.queryBytesMax) (SQLLimits.queryBytesMax)")
        }
        source = Array(text.utf8)
        tokens = try Lexer.tokenize(text)
    }

    // MARK: Token access

    var current: Token { tokens[index] }

    func peek(_ offset: Int = 1) -> Token { tokens[min(index + offset, tokens.count - 1)] }

    @discardableResult
    mutating func advance() -> Token {
        let token = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return token
    }

    mutating func accept(_ keyword: String) -> Token? {
        current.isWord(keyword) ? advance() : nil
    }

    mutating func acceptSymbol(_ symbol: String) -> Token? {
        current.isSymbol(symbol) ? advance() : nil
    }

    /// An error at the current token: `expected <expected>, found <token>[ (did you mean X?)]`.
    func unexpected(_ expected: String, suggesting keywords: [String] = []) -> SQLError {
        var message = "expected \(expected), found \(current.described)"
        if case .word(let text, _) = current.kind { message += Suggestion.suffix(for: text, among: keywords) }
        return SQLError(at: current.position, message)
    }

    mutating func expect(_ keyword: String, _ context: String) throws(SQLError) -> Token {
        guard let token = accept(keyword) else { throw unexpected("\(keyword) \(context)", suggesting: [keyword]) }
        return token
    }

    @discardableResult
    mutating func expectSymbol(_ symbol: String, _ context: String) throws(SQLError) -> Token {
        guard let token = acceptSymbol(symbol) else { throw unexpected("'\(symbol)' \(context)") }
        return token
    }

    // MARK: Names

    /// A bare (non-reserved) word or a quoted identifier.
    mutating func parseName(_ what: String) throws(SQLError) -> Name {
        let token = current
        switch token.kind {
        case .word(let text, let upper) where !SQLKeywords.reserved.contains(upper):
            advance()
            return Name(text, at: token.position)
        case .quotedIdentifier(let text):
            advance()
            return Name(text, at: token.position)
        case .word(let text, _):
            throw SQLError(at: token.position, "expected \(what), found '\(text)', a reserved word "
                + "(write \"\(text)\" to use it as a name)")
        default:
            throw unexpected(what)
        }
    }

    /// A topic name: quoted, or bare words, digits, '.' and '-' written without spaces (`clicks-v2.eu`).
    mutating func parseTopic(_ what: String) throws(SQLError) -> Name {
        let first = current
        var name = try parseName(what)
        if case .word = first.kind {
            var end = first.end
            while current.start == end, !current.isEnd, isTopicPart(current) { end = advance().end }
            name.text = String(decoding: source[first.start..<end], as: UTF8.self)
        }
        try validateTopic(name)
        return name
    }

    private func isTopicPart(_ token: Token) -> Bool {
        switch token.kind {
        case .word, .integer, .decimal: return true
        case .symbol(let text): return text == "-" || text == "."
        default: return false
        }
    }

    func validateTopic(_ name: Name) throws(SQLError) {
        let text = name.text
        guard text.utf8.count <= SQLLimits.topicNameBytesMax else {
            throw SQLError(at: name.position, "topic name is \(text.utf8.count) bytes; the limit is "
                + "\(SQLLimits.topicNameBytesMax)")
        }
        let legal = text.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                || c == 0x2E || c == 0x5F || c == 0x2D
        }
        guard legal, !text.isEmpty, text != ".", text != ".." else {
            throw SQLError(at: name.position, "invalid topic name '\(Token.clip(text))': expected ASCII letters, "
                + "digits, '.', '_' and '-'")
        }
    }
}
