// How `sluice consume` prints records: a kcat-style format string (`-f`), or one JSON object per
// record (`--json`).
//
// A format string is parsed once into a list of pieces; rendering then appends bytes to a caller-owned
// buffer with no `String` in between, because it runs once per consumed record. Key, value and header
// values are written as raw bytes, exactly as stored, like kcat does.
//
// Tokens: `%t` topic, `%p` partition, `%o` offset, `%k` key, `%s` value, `%T` timestamp (epoch ms),
// `%h` headers as `k=v,k2=v2`, `%K` key length, `%S` value length, `%%` a literal `%`.
// Escapes: `\n`, `\t`, `\r`, `\\`.
//
// Value types with no shared state: safe to use from any thread.

import SluiceCore

/// One consumed record, as the printers see it.
struct FormattedRecord: Sendable {
    /// Topic the record was read from.
    var topic: String
    /// Partition within the topic.
    var partition: Int32
    /// The record's offset in its partition.
    var offset: Int64
    /// The record's timestamp, epoch milliseconds.
    var timestamp: Int64
    /// The key, or `nil` for a record without one (Kafka's length -1).
    var key: [UInt8]?
    /// The value, or `nil` for a tombstone (Kafka's length -1).
    var value: [UInt8]?
    /// Headers in record order; names may repeat. A `nil` value is a header with length -1.
    var headers: [(String, [UInt8]?)]

    /// A record with the given fields; key, value and headers default to absent.
    init(
        topic: String,
        partition: Int32,
        offset: Int64,
        timestamp: Int64,
        key: [UInt8]? = nil,
        value: [UInt8]? = nil,
        headers: [(String, [UInt8]?)] = []
    ) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self.headers = headers
    }
}

/// Why a format string was refused; `description` names the column and lists what is accepted.
struct RecordFormatError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case unknownToken(Character)
        case danglingPercent
        case unknownEscape(Character)
        case danglingBackslash
    }

    private let code: Code
    /// 1-based column (in characters) of the `%` or `\` that starts the bad sequence.
    let column: Int

    private init(_ code: Code, column: Int) {
        self.code = code
        self.column = column
    }

    /// `%` followed by a character that is not a token.
    static func unknownToken(_ character: Character, column: Int) -> Self { Self(.unknownToken(character), column: column) }
    /// `%` as the last character.
    static func danglingPercent(column: Int) -> Self { Self(.danglingPercent, column: column) }
    /// `\` followed by a character that is not an escape.
    static func unknownEscape(_ character: Character, column: Int) -> Self { Self(.unknownEscape(character), column: column) }
    /// `\` as the last character.
    static func danglingBackslash(column: Int) -> Self { Self(.danglingBackslash, column: column) }

    /// The list of tokens the messages offer.
    static let knownTokens = "%t %p %o %k %s %T %h %K %S %%"
    /// The list of escapes the messages offer.
    static let knownEscapes = #"\n \t \r \\"#

    /// One sentence: what is wrong, at which column, and what is accepted instead.
    var description: String {
        switch code {
        case .unknownToken(let character):
            return "format string: unknown token %\(character) at column \(column); known: \(Self.knownTokens)"
        case .danglingPercent:
            return "format string: % at column \(column) ends the string without a token; known: \(Self.knownTokens)"
        case .unknownEscape(let character):
            return #"format string: unknown escape \"# + "\(character) at column \(column); known: \(Self.knownEscapes)"
        case .danglingBackslash:
            return #"format string: \ at column "# + "\(column) ends the string without an escape; known: \(Self.knownEscapes)"
        }
    }
}

/// A parsed kcat-style output format (`sluice consume -f '%t [%p] @%o: %k=%s\n'`).
struct RecordFormat: Sendable, Hashable {
    /// One step of rendering. Adjacent literal text is merged into one piece at parse time.
    enum Piece: Sendable, Hashable {
        case literal([UInt8])
        case topic
        case partition
        case offset
        case key
        case value
        case timestamp
        case headers
        case keyLength
        case valueLength
    }

    /// The pieces in output order.
    let pieces: [Piece]

    /// kcat's default consumer format: the value and a newline.
    static let `default` = RecordFormat(pieces: [.value, .literal([UInt8(ascii: "\n")])])

    private init(pieces: [Piece]) {
        self.pieces = pieces
    }

    /// Parses `format`, refusing an unknown `%x` token, an unknown `\x` escape, or a trailing `%` or `\`.
    init(parsing format: String) throws(RecordFormatError) {
        var pieces: [Piece] = []
        var literal: [UInt8] = []
        let characters = Array(format)
        var index = 0
        while index < characters.count {
            let character = characters[index]
            let column = index + 1
            switch character {
            case "%":
                guard index + 1 < characters.count else { throw .danglingPercent(column: column) }
                let tokenCharacter = characters[index + 1]
                if tokenCharacter == "%" {
                    literal.append(UInt8(ascii: "%"))
                } else {
                    guard let piece = Self.piece(forToken: tokenCharacter) else {
                        throw .unknownToken(tokenCharacter, column: column)
                    }
                    if !literal.isEmpty {
                        pieces.append(.literal(literal))
                        literal.removeAll()
                    }
                    pieces.append(piece)
                }
                index += 2
            case "\\":
                guard index + 1 < characters.count else { throw .danglingBackslash(column: column) }
                let escaped = characters[index + 1]
                switch escaped {
                case "n": literal.append(UInt8(ascii: "\n"))
                case "t": literal.append(UInt8(ascii: "\t"))
                case "r": literal.append(UInt8(ascii: "\r"))
                case "\\": literal.append(UInt8(ascii: "\\"))
                default: throw .unknownEscape(escaped, column: column)
                }
                index += 2
            default:
                literal.append(contentsOf: character.utf8)
                index += 1
            }
        }
        if !literal.isEmpty {
            pieces.append(.literal(literal))
        }
        self.pieces = pieces
    }

    private static func piece(forToken character: Character) -> Piece? {
        switch character {
        case "t": return .topic
        case "p": return .partition
        case "o": return .offset
        case "k": return .key
        case "s": return .value
        case "T": return .timestamp
        case "h": return .headers
        case "K": return .keyLength
        case "S": return .valueLength
        default: return nil
        }
    }

    /// Appends `record` rendered by this format to `out`.
    ///
    /// A `nil` key or value prints nothing (kcat prints nothing for length -1); `%K` and `%S` print
    /// `-1` for it, as kcat does. `%h` prints `name=value` pairs joined by `,`, a `nil` header value as
    /// `NULL` (kcat's spelling), and nothing for a record without headers.
    func render(_ record: FormattedRecord, into out: inout [UInt8]) {
        for piece in pieces {
            switch piece {
            case .literal(let bytes): out.append(contentsOf: bytes)
            case .topic: out.append(contentsOf: record.topic.utf8)
            case .partition: DecimalBytes.append(Int64(record.partition), to: &out)
            case .offset: DecimalBytes.append(record.offset, to: &out)
            case .timestamp: DecimalBytes.append(record.timestamp, to: &out)
            case .key: if let key = record.key { out.append(contentsOf: key) }
            case .value: if let value = record.value { out.append(contentsOf: value) }
            case .keyLength: DecimalBytes.append(Int64(record.key?.count ?? -1), to: &out)
            case .valueLength: DecimalBytes.append(Int64(record.value?.count ?? -1), to: &out)
            case .headers: Self.renderHeaders(record.headers, into: &out)
            }
        }
    }

    private static func renderHeaders(_ headers: [(String, [UInt8]?)], into out: inout [UInt8]) {
        for (index, (name, value)) in headers.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: name.utf8)
            out.append(UInt8(ascii: "="))
            if let value {
                out.append(contentsOf: value)
            } else {
                out.append(contentsOf: "NULL".utf8)
            }
        }
    }

    /// Appends `record` as one JSON object, without a trailing newline (the caller writes one per
    /// record, giving JSON Lines):
    ///
    ///     {"topic":"t","partition":0,"offset":5,"timestamp":1700000000000,"key":"k","value":"v","headers":{"h":"x"}}
    ///
    /// Key and value are JSON strings when they are valid UTF-8, `null` when absent, and otherwise
    /// appear as `"key_base64"` / `"value_base64"` (standard alphabet, padded) in place of `"key"` /
    /// `"value"`, so binary payloads survive without corrupting the output. Header values follow the same
    /// rule, except that a non-UTF-8 one becomes `{"base64":"..."}` (there is no second field name to
    /// use inside the headers object). Repeated header names are written as they come, in order.
    static func json(_ record: FormattedRecord, into out: inout [UInt8]) {
        out.append(contentsOf: #"{"topic":"#.utf8)
        JSONBytes.appendString(record.topic, to: &out)
        out.append(contentsOf: #","partition":"#.utf8)
        DecimalBytes.append(Int64(record.partition), to: &out)
        out.append(contentsOf: #","offset":"#.utf8)
        DecimalBytes.append(record.offset, to: &out)
        out.append(contentsOf: #","timestamp":"#.utf8)
        DecimalBytes.append(record.timestamp, to: &out)
        appendBytesField(name: "key", record.key, to: &out)
        appendBytesField(name: "value", record.value, to: &out)
        out.append(contentsOf: #","headers":{"#.utf8)
        for (index, (name, value)) in record.headers.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONBytes.appendString(name, to: &out)
            out.append(UInt8(ascii: ":"))
            if let value {
                if !JSONBytes.appendStringIfUTF8(value, to: &out) {
                    out.append(contentsOf: #"{"base64":""#.utf8)
                    Base64Bytes.append(value, to: &out)
                    out.append(contentsOf: #""}"#.utf8)
                }
            } else {
                out.append(contentsOf: "null".utf8)
            }
        }
        out.append(contentsOf: "}}".utf8)
    }

    /// `,"name":"text"`, `,"name":null` or `,"name_base64":"..."`.
    private static func appendBytesField(name: String, _ bytes: [UInt8]?, to out: inout [UInt8]) {
        let start = out.count
        out.append(contentsOf: #",""#.utf8)
        out.append(contentsOf: name.utf8)
        out.append(contentsOf: #"":"#.utf8)
        guard let bytes else {
            out.append(contentsOf: "null".utf8)
            return
        }
        if JSONBytes.appendStringIfUTF8(bytes, to: &out) { return }
        // Not UTF-8: rename the field rather than emit a string a JSON reader would reject or mangle.
        out.removeSubrange(start...)
        out.append(contentsOf: #",""#.utf8)
        out.append(contentsOf: name.utf8)
        out.append(contentsOf: #"_base64":""#.utf8)
        Base64Bytes.append(bytes, to: &out)
        out.append(UInt8(ascii: "\""))
    }
}

// MARK: - Byte-level writers

/// Decimal integers appended as ASCII bytes, without going through `String`.
enum DecimalBytes {
    /// Appends `value` in base 10, with a leading `-` when negative.
    static func append(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        // The magnitude as UInt64 is exact even for Int64.min.
        var magnitude = value.magnitude
        // 20 digits hold UInt64.max.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var position = 20
            repeat {
                position -= 1
                digits[position] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            out.append(contentsOf: UnsafeBufferPointer(rebasing: digits[position..<20]))
        }
    }
}

/// JSON string escaping over bytes (RFC 8259 section 7).
enum JSONBytes {
    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Appends `text` as a quoted, escaped JSON string. A Swift `String` is always valid UTF-8.
    static func appendString(_ text: String, to out: inout [UInt8]) {
        var text = text
        let appended = text.withUTF8 { appendStringIfUTF8($0, to: &out) }
        assert(appended, "a Swift String is valid UTF-8")
    }

    /// Appends `bytes` as a quoted, escaped JSON string if they are valid UTF-8 and returns `true`;
    /// otherwise leaves `out` as it was and returns `false`.
    static func appendStringIfUTF8(_ bytes: [UInt8], to out: inout [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { appendStringIfUTF8($0, to: &out) }
    }

    /// Appends `bytes` as a quoted, escaped JSON string if they are valid UTF-8 and returns `true`;
    /// otherwise leaves `out` as it was and returns `false`.
    ///
    /// `"` and `\` get a backslash; `\n`, `\r`, `\t`, `\b`, `\f` their short escapes; the other control
    /// characters below U+0020 become `\u00XX`. Everything else, multi-byte sequences included, is copied
    /// as is. Validation and escaping share one pass: on the first invalid sequence the output is cut
    /// back to where it started.
    static func appendStringIfUTF8(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) -> Bool {
        let start = out.count
        out.append(UInt8(ascii: "\""))
        var index = 0
        // Start of the current run of bytes that need no escaping, copied in one append.
        var runStart = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte >= 0x20 && byte < 0x80 && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") {
                index += 1
                continue
            }
            if byte >= 0x80 {
                let length = UTF8Validation.sequenceLength(UnsafeRawBufferPointer(bytes), at: index)
                if length == 0 {
                    out.removeSubrange(start...)
                    return false
                }
                index += length
                continue
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
            appendEscape(byte, to: &out)
            index += 1
            runStart = index
        }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
        out.append(UInt8(ascii: "\""))
        return true
    }

    private static func appendEscape(_ byte: UInt8, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\\"))
        switch byte {
        case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
        case UInt8(ascii: "\n"): out.append(UInt8(ascii: "n"))
        case UInt8(ascii: "\r"): out.append(UInt8(ascii: "r"))
        case UInt8(ascii: "\t"): out.append(UInt8(ascii: "t"))
        case 0x08: out.append(UInt8(ascii: "b"))
        case 0x0C: out.append(UInt8(ascii: "f"))
        default:
            out.append(contentsOf: "u00".utf8)
            out.append(hexDigits[Int(byte >> 4)])
            out.append(hexDigits[Int(byte & 0x0F)])
        }
    }
}

/// Standard base64 (RFC 4648 section 4), padded.
enum Base64Bytes {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Appends the base64 text of `bytes`.
    static func append(_ bytes: [UInt8], to out: inout [UInt8]) {
        out.reserveCapacity(out.count + (bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= bytes.count {
            let group = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            appendSextets(group, count: 4, to: &out)
            index += 3
        }
        switch bytes.count - index {
        case 1:
            appendSextets(UInt32(bytes[index]) << 16, count: 2, to: &out)
            out.append(contentsOf: "==".utf8)
        case 2:
            appendSextets(UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8, count: 3, to: &out)
            out.append(UInt8(ascii: "="))
        default:
            break
        }
    }

    /// The first `count` 6-bit groups of the 24-bit `group`, most significant first.
    private static func appendSextets(_ group: UInt32, count: Int, to out: inout [UInt8]) {
        for sextet in 0..<count {
            out.append(alphabet[Int((group >> UInt32(18 - 6 * sextet)) & 0x3F)])
        }
    }
}
