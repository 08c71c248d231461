// A strict RFC 8259 parser over raw UTF-8 bytes.
//
// Strict means: one value surrounded only by JSON whitespace; no leading zeros, no "+", no ".5" or "5.";
// literals spelled exactly; strings of valid UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF) with
// no raw control characters; `\u` escapes of four hex digits where a high surrogate must be followed by an
// escaped low surrogate; unique member names; numbers that fit in a Double. Every bound is a named field of
// `JSONLimits`. Malformed input is an operating error (`JSONParseError`, with the byte position); the parser
// never traps on input.

import SluiceCore

/// Bounds on a document. Records over the bounds are rejected like malformed ones.
public struct JSONLimits: Hashable, Sendable {
    /// The deepest nesting of arrays and objects.
    public var depthMax: Int
    /// The largest document.
    public var documentBytesMax: Int
    /// The longest string, counted in raw (still escaped) bytes.
    public var stringBytesMax: Int
    /// The most members in one object or elements in one array.
    public var membersMax: Int

    public init(depthMax: Int = 64, documentBytesMax: Int = 1 << 20, stringBytesMax: Int = 1 << 20,
                membersMax: Int = 100_000) {
        self.depthMax = depthMax
        self.documentBytesMax = documentBytesMax
        self.stringBytesMax = stringBytesMax
        self.membersMax = membersMax
    }

    /// depth 64, 1 MiB documents and strings, 100,000 members.
    public static let `default` = JSONLimits()
}

/// Why a document was rejected, and at which byte (0-based) the parser noticed.
public struct JSONParseError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// The input ended inside a value (or was empty).
        case unexpectedEnd
        /// A byte that cannot start or continue the value at this point.
        case unexpectedByte(UInt8)
        /// A number that breaks the grammar (leading zero, missing digits).
        case invalidNumber
        /// A number whose magnitude does not fit in a Double.
        case numberOutOfRange
        /// A bad `\` escape, or a `\u` escape that is a lone surrogate.
        case invalidEscape
        /// Bytes that are not well-formed UTF-8 inside a string.
        case invalidUTF8
        /// A raw byte below 0x20 inside a string.
        case controlCharacterInString
        /// A member name that occurs twice in one object.
        case duplicateKey(String)
        /// Non-whitespace after the value.
        case trailingBytes
        /// Nesting deeper than `JSONLimits.depthMax`.
        case depthLimitExceeded
        /// A document larger than `JSONLimits.documentBytesMax`.
        case documentTooLarge
        /// A string longer than `JSONLimits.stringBytesMax`.
        case stringTooLong
        /// An object or array with more than `JSONLimits.membersMax` entries.
        case tooManyMembers
    }

    public let kind: Kind
    /// The byte offset in the document.
    public let position: Int

    public init(_ kind: Kind, at position: Int) {
        self.kind = kind
        self.position = position
    }

    public var description: String { "invalid JSON at byte \(position): \(kind)" }
}

/// Entry points for parsing whole documents.
public enum JSONParser {
    /// Parses one complete document.
    public static func parse(_ bytes: UnsafeRawBufferPointer,
                             limits: JSONLimits = .default) throws(JSONParseError) -> JSONValue {
        var scanner = try JSONScanner(bytes, limits: limits)
        let value = try scanner.parseValue()
        try scanner.expectEnd()
        return value
    }

    /// Parses one complete document from an array of bytes.
    public static func parse(_ bytes: [UInt8], limits: JSONLimits = .default) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError> = bytes.withUnsafeBytes { raw in
            do throws(JSONParseError) { return .success(try parse(raw, limits: limits)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Parses one complete document from text.
    public static func parse(_ text: String, limits: JSONLimits = .default) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8), limits: limits)
    }
}

private enum ASCII {
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let comma = UInt8(ascii: ",")
    static let colon = UInt8(ascii: ":")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let minus = UInt8(ascii: "-")
    static let plus = UInt8(ascii: "+")
    static let dot = UInt8(ascii: ".")
    static let zero = UInt8(ascii: "0")
    static let nine = UInt8(ascii: "9")
}

/// A cursor over one document. Shared by `JSONParser` (which builds values) and `JSONFieldExtractor` (which
/// mostly skips them); both validate the same grammar.
///
/// Invariant: `index <= bytes.count`; `depth` is the number of containers currently open.
struct JSONScanner {
    let bytes: UnsafeRawBufferPointer
    let limits: JSONLimits
    var index = 0
    var depth = 0

    init(_ bytes: UnsafeRawBufferPointer, limits: JSONLimits) throws(JSONParseError) {
        guard bytes.count <= limits.documentBytesMax else { throw JSONParseError(.documentTooLarge, at: 0) }
        self.bytes = bytes
        self.limits = limits
    }

    func error(_ kind: JSONParseError.Kind) -> JSONParseError { JSONParseError(kind, at: index) }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    /// The next non-whitespace byte, not consumed.
    @inline(__always)
    mutating func peek() throws(JSONParseError) -> UInt8 {
        // Compact documents have no whitespace: answer inline, without a call or the loop.
        if index < bytes.count, bytes[index] > 0x20 { return bytes[index] }
        return try peekAfterWhitespace()
    }

    /// `peek` when whitespace (or the end) is next.
    mutating func peekAfterWhitespace() throws(JSONParseError) -> UInt8 {
        skipWhitespace()
        guard index < bytes.count else { throw error(.unexpectedEnd) }
        return bytes[index]
    }

    mutating func expect(_ byte: UInt8) throws(JSONParseError) {
        let next = try peek()
        guard next == byte else { throw error(.unexpectedByte(next)) }
        index += 1
    }

    /// Only whitespace may follow the top-level value.
    mutating func expectEnd() throws(JSONParseError) {
        skipWhitespace()
        guard index == bytes.count else { throw error(.trailingBytes) }
    }

    mutating func enter() throws(JSONParseError) {
        depth += 1
        guard depth <= limits.depthMax else { throw error(.depthLimitExceeded) }
    }

    // MARK: Building values

    mutating func parseValue() throws(JSONParseError) -> JSONValue {
        let next = try peek()
        switch next {
        case ASCII.openBrace: return try parseObject()
        case ASCII.openBracket: return try parseArray()
        case ASCII.quote:
            let raw = try scanString()
            return .string(decodeString(raw))
        case ASCII.minus, ASCII.zero...ASCII.nine: return try scanNumber(build: true)
        default:
            try scanLiteral(next)
            switch next {
            case UInt8(ascii: "t"): return .bool(true)
            case UInt8(ascii: "f"): return .bool(false)
            default: return .null
            }
        }
    }

    mutating func parseArray() throws(JSONParseError) -> JSONValue {
        try enter()
        index += 1  // "["
        var elements: [JSONValue] = []
        if try peek() == ASCII.closeBracket {
            index += 1
            depth -= 1
            return .array(elements)
        }
        while true {
            guard elements.count < limits.membersMax else { throw error(.tooManyMembers) }
            elements.append(try parseValue())
            if try endOfContainer(ASCII.closeBracket) { break }
        }
        depth -= 1
        return .array(elements)
    }

    mutating func parseObject() throws(JSONParseError) -> JSONValue {
        try enter()
        index += 1  // "{"
        var members: [JSONObject.Member] = []
        var names: Set<String>? = nil  // built once an object grows past a linear scan's worth of members
        if try peek() == ASCII.closeBrace {
            index += 1
            depth -= 1
            return .object(JSONObject(members))
        }
        while true {
            guard members.count < limits.membersMax else { throw error(.tooManyMembers) }
            let keyStart = index
            guard try peek() == ASCII.quote else { throw error(.unexpectedByte(bytes[index])) }
            let key = decodeString(try scanString())
            if names == nil, members.count >= 16 { names = Set(members.map(\.key)) }
            let duplicate: Bool
            if names != nil {
                duplicate = !names!.insert(key).inserted
            } else {
                duplicate = members.contains { $0.key == key }
            }
            if duplicate { throw JSONParseError(.duplicateKey(key), at: keyStart) }
            try expect(ASCII.colon)
            members.append(JSONObject.Member(key: key, value: try parseValue()))
            if try endOfContainer(ASCII.closeBrace) { break }
        }
        depth -= 1
        return .object(JSONObject(members))
    }

    /// After an element: consumes "," (returns false) or the closing byte (returns true).
    mutating func endOfContainer(_ close: UInt8) throws(JSONParseError) -> Bool {
        let next = try peek()
        index += 1
        if next == ASCII.comma { return false }
        if next == close { return true }
        index -= 1
        throw error(.unexpectedByte(next))
    }

    // MARK: Skipping values (validating, not allocating)

    mutating func skipValue() throws(JSONParseError) {
        let next = try peek()
        switch next {
        case ASCII.openBrace, ASCII.openBracket:
            let close = next == ASCII.openBrace ? ASCII.closeBrace : ASCII.closeBracket
            try enter()
            index += 1
            if try peek() == close {
                index += 1
                depth -= 1
                return
            }
            var count = 0
            repeat {
                guard count < limits.membersMax else { throw error(.tooManyMembers) }
                count += 1
                if close == ASCII.closeBrace {
                    guard try peek() == ASCII.quote else { throw error(.unexpectedByte(bytes[index])) }
                    _ = try scanString()
                    try expect(ASCII.colon)
                }
                try skipValue()
            } while try !endOfContainer(close)
            depth -= 1
        case ASCII.quote:
            _ = try scanString()
        case ASCII.minus, ASCII.zero...ASCII.nine:
            _ = try scanNumber(build: false)
        default:
            try scanLiteral(next)
        }
    }

    mutating func scanLiteral(_ first: UInt8) throws(JSONParseError) {
        let word: StaticString
        switch first {
        case UInt8(ascii: "t"): word = "true"
        case UInt8(ascii: "f"): word = "false"
        case UInt8(ascii: "n"): word = "null"
        default: throw error(.unexpectedByte(first))
        }
        let count = word.utf8CodeUnitCount
        for offset in 0..<count {
            guard index < bytes.count else { throw error(.unexpectedEnd) }
            guard bytes[index] == word.utf8Start[offset] else { throw error(.unexpectedByte(bytes[index])) }
            index += 1
        }
    }

    // MARK: Strings

    /// The raw content of a scanned string: bytes `start..<end`, with `escaped` when it holds a backslash.
    struct RawString {
        var start: Int
        var end: Int
        var escaped: Bool
    }

    /// Scans and validates the string whose opening quote is at `index`; leaves `index` after its closing quote.
    mutating func scanString() throws(JSONParseError) -> RawString {
        index += 1
        let start = index
        var escaped = false
        while index < bytes.count {
            skipPlainStringBytes()
            guard index < bytes.count else { break }
            let byte = bytes[index]
            if byte == ASCII.quote {
                guard index - start <= limits.stringBytesMax else { throw JSONParseError(.stringTooLong, at: start) }
                index += 1
                return RawString(start: start, end: index - 1, escaped: escaped)
            }
            if byte == ASCII.backslash {
                escaped = true
                try scanEscape()
            } else if byte < 0x20 {
                throw error(.controlCharacterInString)
            } else if byte < 0x80 {
                index += 1
            } else {
                index += try utf8SequenceLength()
            }
        }
        throw error(.unexpectedEnd)
    }

    /// Moves `index` over string content that needs no check of its own (printable ASCII other than `"` and
    /// `\`), eight bytes at a time, and stops at the first byte that does. Most string bytes are plain, and a
    /// word tested at once is several times cheaper than the byte loop. Leaves the last < 8 bytes of the
    /// document to that loop.
    @inline(__always)
    mutating func skipPlainStringBytes() {
        guard let base = bytes.baseAddress else { return }
        let count = bytes.count
        while count - index >= 8 {
            let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            let special = Self.specialStringBytes(word)
            if special != 0 {
                index += special.trailingZeroBitCount >> 3  // little-endian: the lowest byte comes first
                return
            }
            index += 8
        }
    }

    /// A mask with the high bit set in the bytes of `word` that are control characters (< 0x20), `"`, `\` or
    /// not ASCII (SWAR). A borrow can also flag a byte above a flagged one, never one below, so the lowest
    /// flagged byte is exactly the first special byte, and the mask is 0 exactly when there is none.
    @inline(__always)
    static func specialStringBytes(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let control = (word &- ones &* 0x20) & ~word
        let quote = word ^ (ones &* UInt64(ASCII.quote))
        let backslash = word ^ (ones &* UInt64(ASCII.backslash))
        let quoteZero = (quote &- ones) & ~quote
        let backslashZero = (backslash &- ones) & ~backslash
        return (control | quoteZero | backslashZero | word) & highs
    }

    /// Validates the escape at `index` (a backslash) and moves past it.
    mutating func scanEscape() throws(JSONParseError) {
        guard index + 1 < bytes.count else { throw JSONParseError(.unexpectedEnd, at: bytes.count) }
        switch bytes[index + 1] {
        case ASCII.quote, ASCII.backslash, UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
             UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            index += 2
        case UInt8(ascii: "u"):
            let unit = try hex4(at: index + 2)
            if (0xDC00...0xDFFF).contains(unit) { throw error(.invalidEscape) }
            if (0xD800...0xDBFF).contains(unit) {
                // A high surrogate must be followed by an escaped low one.
                for (offset, byte) in [(6, ASCII.backslash), (7, UInt8(ascii: "u"))] {
                    guard index + offset < bytes.count else { throw JSONParseError(.unexpectedEnd, at: bytes.count) }
                    guard bytes[index + offset] == byte else { throw error(.invalidEscape) }
                }
                guard (0xDC00...0xDFFF).contains(try hex4(at: index + 8)) else { throw error(.invalidEscape) }
                index += 12
            } else {
                index += 6
            }
        default:
            throw error(.invalidEscape)
        }
    }

    /// The four hex digits at `position`.
    func hex4(at position: Int) throws(JSONParseError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw JSONParseError(.unexpectedEnd, at: bytes.count) }
        var value: UInt32 = 0
        for offset in 0..<4 {
            let byte = bytes[position + offset]
            let digit: UInt8
            switch byte {
            case ASCII.zero...ASCII.nine: digit = byte - ASCII.zero
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw JSONParseError(.invalidEscape, at: position + offset)
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    /// The length of the well-formed UTF-8 sequence (2–4 bytes) starting at `index`.
    func utf8SequenceLength() throws(JSONParseError) -> Int {
        let length = UTF8Validation.sequenceLength(bytes, at: index)
        guard length > 0 else { throw error(.invalidUTF8) }
        return length
    }

    /// The text of a string already validated by `scanString`.
    func decodeString(_ raw: RawString) -> String {
        let content = UnsafeRawBufferPointer(rebasing: bytes[raw.start..<raw.end])
        guard raw.escaped else { return String(decoding: content, as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(content.count)
        var position = raw.start
        while position < raw.end {
            let byte = bytes[position]
            guard byte == ASCII.backslash else {
                out.append(byte)
                position += 1
                continue
            }
            let kind = bytes[position + 1]
            position += 2
            switch kind {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                // Validated already: cannot throw here.
                var scalar = (try? hex4(at: position)) ?? 0xFFFD
                position += 4
                if (0xD800...0xDBFF).contains(scalar) {
                    let low = (try? hex4(at: position + 2)) ?? 0xDC00
                    position += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                out.append(contentsOf: Unicode.Scalar(scalar).map { Array(String($0).utf8) } ?? [0xEF, 0xBF, 0xBD])
            default: out.append(kind)  // " \ /
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: Numbers

    static let exactPowersOfTen: [Double] = (0...22).map { exponent in
        var value = 1.0
        for _ in 0..<exponent { value *= 10 }
        return value
    }

    /// The common case of `scanNumber` (counts, amounts, epoch milliseconds): an integer of 1 to 18 digits,
    /// without fraction or exponent, which always fits in Int64. Returns what `scanNumber` would and moves
    /// past it; returns nil without moving for anything else (also for what `scanNumber` rejects), which
    /// then takes the general path.
    @inline(__always)
    mutating func scanShortInteger(build: Bool) -> JSONValue? {
        let negative = bytes[index] == ASCII.minus
        let first = negative ? index + 1 : index
        let end = min(bytes.count, first + 18)
        var position = first
        var magnitude: Int64 = 0
        while position < end {
            let digit = bytes[position] &- ASCII.zero
            guard digit < 10 else { break }
            magnitude = magnitude * 10 + Int64(digit)
            position += 1
        }
        let length = position - first
        guard length > 0, length == 1 || bytes[first] != ASCII.zero else { return nil }  // "-", "01"
        if position < bytes.count {
            switch bytes[position] {
            case ASCII.zero...ASCII.nine, ASCII.dot, UInt8(ascii: "e"), UInt8(ascii: "E"): return nil
            default: break
            }
        }
        index = position
        return build ? .int(negative ? -magnitude : magnitude) : .null
    }

    /// Scans the number at `index`. With `build`, returns `.int` when it is an integer literal that fits in
    /// Int64, otherwise `.number`; without, returns `.null` after validating the grammar.
    mutating func scanNumber(build: Bool) throws(JSONParseError) -> JSONValue {
        if let integer = scanShortInteger(build: build) { return integer }
        let start = index
        let negative = bytes[index] == ASCII.minus
        if negative { index += 1 }
        var mantissa: UInt64 = 0
        var digitCount = 0  // digits accumulated into `mantissa`; past 19 it could overflow
        var droppedDigits = false
        var fractionDigits = 0
        var isInteger = true

        func isDigit(_ position: Int) -> Bool {
            position < bytes.count && bytes[position] >= ASCII.zero && bytes[position] <= ASCII.nine
        }
        guard isDigit(index) else { throw error(index < bytes.count ? .invalidNumber : .unexpectedEnd) }
        if bytes[index] == ASCII.zero {
            index += 1
            if isDigit(index) { throw error(.invalidNumber) }
        }
        func digits(_ isFraction: Bool) {
            while isDigit(index) {
                if digitCount < 19 {
                    mantissa = mantissa * 10 + UInt64(bytes[index] - ASCII.zero)
                    if mantissa != 0 { digitCount += 1 }
                    if isFraction { fractionDigits += 1 }
                } else {
                    droppedDigits = true
                    if !isFraction { fractionDigits -= 1 }  // an integer digit we could not keep scales by 10
                }
                index += 1
            }
        }
        digits(false)
        if index < bytes.count, bytes[index] == ASCII.dot {
            isInteger = false
            index += 1
            guard isDigit(index) else { throw error(index < bytes.count ? .invalidNumber : .unexpectedEnd) }
            digits(true)
        }
        var exponent = 0
        if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            isInteger = false
            index += 1
            var exponentNegative = false
            if index < bytes.count, bytes[index] == ASCII.minus || bytes[index] == ASCII.plus {
                exponentNegative = bytes[index] == ASCII.minus
                index += 1
            }
            guard isDigit(index) else { throw error(index < bytes.count ? .invalidNumber : .unexpectedEnd) }
            while isDigit(index) {
                exponent = min(exponent * 10 + Int(bytes[index] - ASCII.zero), 1_000_000)
                index += 1
            }
            if exponentNegative { exponent = -exponent }
        }
        let scale = exponent - fractionDigits
        // Skipping still rejects what parsing rejects: only a number of 10^308 or more can overflow a Double.
        guard build || digitCount + scale > 308 else { return .null }

        if isInteger, !droppedDigits {
            if negative, mantissa <= UInt64(Int64.max) + 1 { return .int(Int64(bitPattern: 0 &- mantissa)) }
            if !negative, mantissa <= UInt64(Int64.max) { return .int(Int64(mantissa)) }
        }
        let value: Double
        if !droppedDigits, mantissa <= 1 << 53, abs(scale) <= 22 {
            // Clinger's fast path: both operands exact, so one correctly rounded operation.
            let magnitude = Double(mantissa)
            value = scale < 0 ? magnitude / Self.exactPowersOfTen[-scale] : magnitude * Self.exactPowersOfTen[scale]
            return .number(negative ? -value : value)
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let parsed = Double(text), parsed.isFinite else { throw JSONParseError(.numberOutOfRange, at: start) }
        return .number(parsed)
    }
}
