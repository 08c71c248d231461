/// One lexical token of the dialect.
struct Token: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        /// An unquoted word: a keyword or an identifier, depending on where it appears. `upper` is for
        /// case-insensitive keyword matching; `text` keeps the spelling for identifiers.
        case word(text: String, upper: String)
        /// A "double-quoted" identifier (never a keyword), with `""` unescaped.
        case quotedIdentifier(String)
        /// A 'single-quoted' string literal, with `''` unescaped.
        case string(String)
        /// An integer literal that fits in Int64.
        case integer(Int64)
        /// A decimal literal (`1.5`, `2e10`).
        case decimal(Double)
        /// Punctuation or an operator: ( ) , . * + - / % = != <> < <= > >= ;
        case symbol(String)
        /// The end of the query text.
        case end
    }

    var kind: Kind
    var position: SourcePosition
    /// Byte offsets of the token in the UTF-8 text: lets the parser see which tokens touch (`clicks-v2`).
    var start: Int
    var end: Int

    /// The token as it would appear in an error message: `'FORM'`, `string 'abc'`, `end of query`.
    var described: String {
        switch kind {
        case .word(let text, _): return "'\(Token.clip(text))'"
        case .quotedIdentifier(let text): return "identifier \"\(Token.clip(text))\""
        case .string(let text): return "string '\(Token.clip(text))'"
        case .integer(let value): return "number \(value)"
        case .decimal(let value): return "number \(value)"
        case .symbol(let text): return "'\(text)'"
        case .end: return "end of query"
        }
    }

    static func clip(_ text: String) -> String {
        text.unicodeScalars.count <= 40 ? text : String(String.UnicodeScalarView(text.unicodeScalars.prefix(40))) + "…"
    }

    /// The upper-cased word, or nil for any other kind of token.
    var upperWord: String? {
        if case .word(_, let upper) = kind { return upper }
        return nil
    }

    func isWord(_ keyword: String) -> Bool { upperWord == keyword }

    func isSymbol(_ symbol: String) -> Bool {
        if case .symbol(let text) = kind { return text == symbol }
        return false
    }

    var isEnd: Bool { kind == .end }
}

/// Turns query text into tokens. Works on UTF-8 bytes; every loop advances, so any input terminates.
struct Lexer {
    private let bytes: [UInt8]
    private var index = 0
    private var line = 1
    private var column = 1

    init(_ text: String) { bytes = Array(text.utf8) }

    /// All tokens of the text, ending with `.end`; throws at the first lexical error.
    static func tokenize(_ text: String) throws(SQLError) -> [Token] {
        var lexer = Lexer(text)
        var tokens: [Token] = []
        while true {
            let token = try lexer.next()
            tokens.append(token)
            if token.isEnd { return tokens }
        }
    }

    private var position: SourcePosition { SourcePosition(line: line, column: column) }

    private func peek(_ offset: Int = 0) -> UInt8? {
        index + offset < bytes.count ? bytes[index + offset] : nil
    }

    /// Moves past one byte, keeping line and column (continuation bytes of UTF-8 do not count as columns).
    private mutating func advance() {
        let byte = bytes[index]
        index += 1
        if byte == UInt8(ascii: "\n") {
            line += 1
            column = 1
        } else if byte & 0xC0 != 0x80 {
            column += 1
        }
    }

    private static func isIdentifierStart(_ b: UInt8) -> Bool {
        (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == UInt8(ascii: "_") || b >= 0x80
    }

    private static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    private static func isIdentifierContinue(_ b: UInt8) -> Bool { isIdentifierStart(b) || isDigit(b) }

    private mutating func skipSpaceAndComments() {
        while let b = peek() {
            if b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D || b == 0x0C {
                advance()
            } else if b == UInt8(ascii: "-"), peek(1) == UInt8(ascii: "-") {
                while let c = peek(), c != 0x0A { advance() }
            } else {
                return
            }
        }
    }

    private func text(_ range: Range<Int>) -> String { String(decoding: bytes[range], as: UTF8.self) }

    mutating func next() throws(SQLError) -> Token {
        skipSpaceAndComments()
        let start = index
        let position = self.position
        guard let b = peek() else { return Token(kind: .end, position: position, start: start, end: start) }
        let kind: Token.Kind
        if Lexer.isIdentifierStart(b) {
            while let c = peek(), Lexer.isIdentifierContinue(c) { advance() }
            let word = text(start..<index)
            kind = .word(text: word, upper: word.uppercased())
        } else if Lexer.isDigit(b) {
            kind = try number(start: start, position: position)
        } else if b == UInt8(ascii: "'") {
            kind = .string(try quoted(UInt8(ascii: "'"), position: position, what: "string literal"))
        } else if b == UInt8(ascii: "\"") {
            let name = try quoted(UInt8(ascii: "\""), position: position, what: "quoted identifier")
            if name.isEmpty { throw SQLError(at: position, "expected a name between the double quotes, found \"\"") }
            kind = .quotedIdentifier(name)
        } else {
            kind = .symbol(try symbol(position: position))
        }
        return Token(kind: kind, position: position, start: start, end: index)
    }

    /// digits [ . digits ] [ (e|E) [+|-] digits ]; a letter or `_` straight after is a bad number (`12abc`).
    private mutating func number(start: Int, position: SourcePosition) throws(SQLError) -> Token.Kind {
        var isDecimal = false
        while let c = peek(), Lexer.isDigit(c) { advance() }
        if peek() == UInt8(ascii: "."), let d = peek(1), Lexer.isDigit(d) {
            isDecimal = true
            advance()
            while let c = peek(), Lexer.isDigit(c) { advance() }
        }
        if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            var offset = 1
            if let sign = peek(1), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { offset = 2 }
            if let d = peek(offset), Lexer.isDigit(d) {
                isDecimal = true
                for _ in 0..<offset { advance() }
                while let c = peek(), Lexer.isDigit(c) { advance() }
            }
        }
        if let c = peek(), Lexer.isIdentifierStart(c) || c == UInt8(ascii: ".") {
            while let c = peek(), Lexer.isIdentifierContinue(c) || c == UInt8(ascii: ".") { advance() }
            throw SQLError(at: position, "bad number '\(Token.clip(text(start..<index)))': expected digits, "
                + "an optional fraction and an optional exponent, as in 42, 1.5 or 2e10")
        }
        let literal = text(start..<index)
        if isDecimal {
            guard let value = Double(literal), value.isFinite else {
                throw SQLError(at: position, "bad number '\(Token.clip(literal))': out of range for DOUBLE")
            }
            return .decimal(value)
        }
        guard let value = Int64(literal) else {
            throw SQLError(at: position, "bad number '\(Token.clip(literal))': out of range for BIGINT "
                + "(at most \(Int64.max))")
        }
        return .integer(value)
    }

    /// The contents of a string or quoted identifier, with the doubled quote unescaped.
    private mutating func quoted(_ quote: UInt8, position: SourcePosition, what: String) throws(SQLError) -> String {
        advance()
        var content: [UInt8] = []
        while true {
            guard let c = peek() else {
                let q = quote == UInt8(ascii: "'") ? "'" : "\""
                throw SQLError(at: position, "unterminated \(what): expected a closing \(q) before the end of the query")
            }
            advance()
            if c == quote {
                if peek() == quote {
                    advance()
                    content.append(quote)
                } else {
                    return String(decoding: content, as: UTF8.self)
                }
            } else {
                content.append(c)
            }
        }
    }

    private mutating func symbol(position: SourcePosition) throws(SQLError) -> String {
        let b = bytes[index]
        let two: [(String, UInt8, UInt8)] = [("!=", 0x21, 0x3D), ("<>", 0x3C, 0x3E), ("<=", 0x3C, 0x3D), (">=", 0x3E, 0x3D)]
        for (text, first, second) in two where b == first && peek(1) == second {
            advance()
            advance()
            return text
        }
        if b == UInt8(ascii: "!") {
            throw SQLError(at: position, "expected '=' after '!' (the not-equal operator is != or <>)")
        }
        let single = "(),.*+-/%=<>;"
        if b < 0x80, single.utf8.contains(b) {
            advance()
            return String(UnicodeScalar(b))
        }
        // Report the whole character, not one byte of it.
        let start = index
        advance()
        while let c = peek(), c & 0xC0 == 0x80 { advance() }
        throw SQLError(at: position, "unexpected character '\(text(start..<index))': expected a name, a literal, "
            + "an operator or punctuation")
    }
}
