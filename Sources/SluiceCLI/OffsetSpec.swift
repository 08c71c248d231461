import SluiceCore
// Where a consumer starts: the `-o` argument of `sluice consume` and the `--to` of `sluice group reset`.
//
// Accepted forms (kcat's spellings included, so its users can keep their habits):
//   earliest | beginning         the first offset still in each partition
//   latest | end                 the offset after the last record (only new records are read)
//   1234                         that absolute offset
//   -N                           N records before the end of each partition
//   @1795946400000               the first record at or after that time, epoch milliseconds
//   @2026-11-29T10:00:00Z        the same, as ISO-8601 in UTC or with an offset (+01:00, +0100, +01)
//
// Parsing is pure and allocation-light; turning a spec into offsets needs the broker and lives elsewhere.

/// A starting position in each partition, as parsed from `-o` / `--to`.
enum OffsetSpec: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The log start offset of each partition.
    case earliest
    /// The high watermark of each partition: only records produced from now on.
    case latest
    /// This absolute offset, in every partition it is applied to. Never negative.
    case offset(Int64)
    /// This many records before the high watermark of each partition (clamped to the log start by the
    /// caller). Never negative; `-0` is the same position as ``latest``.
    case fromEnd(Int64)
    /// The first record whose timestamp is at or after this time, epoch milliseconds. Never negative.
    case timestamp(Int64)

    /// Parses one of the forms listed in ``OffsetSpecError``'s description; surrounding spaces are ignored.
    init(parsing text: String) throws(OffsetSpecError) {
        let trimmed = Self.trimmingSpaces(text)
        switch trimmed.lowercased() {
        case "":
            throw OffsetSpecError(input: text, reason: .empty)
        case "earliest", "beginning":
            self = .earliest
            return
        case "latest", "end":
            self = .latest
            return
        default:
            break
        }
        let utf8 = Array(trimmed.utf8)
        switch utf8[0] {
        case UInt8(ascii: "-"):
            guard let count = Self.parseDigits(utf8[1...]) else {
                throw OffsetSpecError(input: text, reason: Self.numberProblem(utf8[1...], what: "record count"))
            }
            self = .fromEnd(count)
        case UInt8(ascii: "@"):
            let rest = utf8[1...]
            if let millis = Self.parseDigits(rest) {
                self = .timestamp(millis)
            } else if rest.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) && !rest.isEmpty {
                throw OffsetSpecError(input: text, reason: .numberTooLarge("timestamp"))
            } else {
                do {
                    self = .timestamp(try ISO8601Millis.parse(rest))
                } catch {
                    throw OffsetSpecError(input: text, reason: .badTime(error.detail))
                }
            }
        case UInt8(ascii: "0")...UInt8(ascii: "9"):
            guard let offset = Self.parseDigits(utf8[...]) else {
                throw OffsetSpecError(input: text, reason: Self.numberProblem(utf8[...], what: "offset"))
            }
            self = .offset(offset)
        default:
            throw OffsetSpecError(input: text, reason: .unrecognised)
        }
    }

    /// The spec in the form the parser accepts (`earliest`, `latest`, `1234`, `-5`, `@1795946400000`).
    var description: String {
        switch self {
        case .earliest: return "earliest"
        case .latest: return "latest"
        case .offset(let offset): return String(offset)
        case .fromEnd(let count): return "-\(count)"
        case .timestamp(let millis): return "@\(millis)"
        }
    }

    /// Decimal digits only, at least one, fitting in Int64; `nil` otherwise.
    private static func parseDigits(_ digits: ArraySlice<UInt8>) -> Int64? {
        guard !digits.isEmpty else { return nil }
        var value: Int64 = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            guard !overflow1 && !overflow2 else { return nil }
            value = sum
        }
        return value
    }

    /// Why `digits` did not parse as a number: too many digits, or not digits at all.
    private static func numberProblem(_ digits: ArraySlice<UInt8>, what: String) -> OffsetSpecError.Reason {
        let allDigits = !digits.isEmpty && digits.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        return allDigits ? .numberTooLarge(what) : .unrecognised
    }

    private static func trimmingSpaces(_ text: String) -> String {
        var slice = Substring(text)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}

/// Why an offset spec was refused. The description says what was wrong and lists every accepted form.
struct OffsetSpecError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong, for the first half of the message.
    enum Reason: Hashable, Sendable {
        case empty
        case unrecognised
        case numberTooLarge(String)
        case badTime(String)
    }

    /// The text as the user gave it.
    let input: String
    /// What was wrong with it.
    let reason: Reason

    /// The accepted forms, as the second half of every message.
    static let acceptedForms = "use earliest (or beginning), latest (or end), an absolute offset such as 1234, "
        + "-N for N records before the end of each partition, @EPOCH_MS such as @1795946400000, "
        + "or an ISO-8601 time such as @2026-11-29T10:00:00Z or @2026-11-29T11:00:00+01:00"

    /// What was wrong, then every accepted form.
    var description: String {
        let problem: String
        switch reason {
        case .empty:
            problem = "offset is empty"
        case .unrecognised:
            problem = "offset \"\(input)\" is not a form sluice knows"
        case .numberTooLarge(let what):
            problem = "offset \"\(input)\": the \(what) does not fit in a signed 64-bit integer"
        case .badTime(let detail):
            problem = "offset \"\(input)\" is not a valid time: \(detail)"
        }
        return "\(problem); \(Self.acceptedForms)"
    }
}

/// A hand-written ISO-8601 reader for the one shape `-o @...` needs, so the CLI does not pull in
/// Foundation's date formatters and their locale rules:
///
///     YYYY-MM-DD[(T|t| )HH:MM[:SS[.fraction]](Z|z|±HH:MM|±HHMM|±HH)]
///
/// A date alone means midnight UTC. A time must carry a zone: a local time would be read differently
/// on different machines. Fractions past milliseconds are truncated. Leap seconds (`:60`) are refused.
enum ISO8601Millis {
    /// Why a time did not parse; `detail` is a phrase for the message.
    struct ParseError: Error {
        let detail: String
    }

    private static let syntax = "expected YYYY-MM-DDTHH:MM:SSZ or an offset such as +01:00 in place of Z"

    /// Epoch milliseconds of the time in `text`.
    static func parse(_ text: ArraySlice<UInt8>) throws(ParseError) -> Int64 {
        var reader = Reader(bytes: text)
        let year = try reader.number(digits: 4)
        try reader.expect(UInt8(ascii: "-"))
        let month = try reader.number(digits: 2)
        try reader.expect(UInt8(ascii: "-"))
        let day = try reader.number(digits: 2)
        guard (1...12).contains(month) else { throw ParseError(detail: "month \(month) is not 1 to 12") }
        let monthDays = CivilCalendar.daysInMonth(year: year, month: month)
        guard (1...monthDays).contains(day) else {
            throw ParseError(detail: "day \(day) is not 1 to \(monthDays) for \(year)-\(twoDigits(month))")
        }
        let days = CivilCalendar.daysFromCivil(year: year, month: month, day: day)
        if reader.atEnd {
            guard days >= 0 else { throw ParseError(detail: "times before 1970 are not offsets") }
            return days * 86_400_000
        }

        guard let separator = reader.next(), separator == UInt8(ascii: "T") || separator == UInt8(ascii: "t")
            || separator == UInt8(ascii: " ")
        else { throw ParseError(detail: syntax) }
        let hour = try reader.number(digits: 2)
        try reader.expect(UInt8(ascii: ":"))
        let minute = try reader.number(digits: 2)
        var second: Int64 = 0
        var millis: Int64 = 0
        if reader.peek() == UInt8(ascii: ":") {
            _ = reader.next()
            second = try reader.number(digits: 2)
            if reader.peek() == UInt8(ascii: ".") || reader.peek() == UInt8(ascii: ",") {
                _ = reader.next()
                millis = try reader.fractionMillis()
            }
        }
        guard hour <= 23 else { throw ParseError(detail: "hour \(hour) is not 0 to 23") }
        guard minute <= 59 else { throw ParseError(detail: "minute \(minute) is not 0 to 59") }
        guard second <= 59 else { throw ParseError(detail: "second \(second) is not 0 to 59") }
        let zoneOffsetSeconds = try reader.zone()
        guard reader.atEnd else { throw ParseError(detail: "unexpected text after the time zone") }

        let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - zoneOffsetSeconds
        let result = seconds * 1_000 + millis
        guard result >= 0 else { throw ParseError(detail: "times before 1970 are not offsets") }
        return result
    }

    private static func twoDigits(_ value: Int64) -> String {
        value < 10 ? "0\(value)" : "\(value)"
    }

    /// A cursor over the bytes after `@`.
    private struct Reader {
        let bytes: ArraySlice<UInt8>
        var index: Int

        init(bytes: ArraySlice<UInt8>) {
            self.bytes = bytes
            self.index = bytes.startIndex
        }

        var atEnd: Bool { index == bytes.endIndex }

        func peek() -> UInt8? { atEnd ? nil : bytes[index] }

        mutating func next() -> UInt8? {
            guard !atEnd else { return nil }
            defer { index += 1 }
            return bytes[index]
        }

        mutating func expect(_ byte: UInt8) throws(ParseError) {
            guard next() == byte else { throw ParseError(detail: ISO8601Millis.syntax) }
        }

        /// Exactly `digits` decimal digits.
        mutating func number(digits: Int) throws(ParseError) -> Int64 {
            var value: Int64 = 0
            for _ in 0..<digits {
                guard let byte = next(), let digit = Self.digit(byte) else {
                    throw ParseError(detail: ISO8601Millis.syntax)
                }
                value = value * 10 + digit
            }
            return value
        }

        /// One or more fraction digits, as milliseconds (truncated past the third digit).
        mutating func fractionMillis() throws(ParseError) -> Int64 {
            var millis: Int64 = 0
            var count = 0
            // Nine digits (nanoseconds) is the most any writer produces; more is not a time.
            let fractionDigitsMax = 9
            while let byte = peek(), let digit = Self.digit(byte) {
                _ = next()
                count += 1
                guard count <= fractionDigitsMax else {
                    throw ParseError(detail: "more than \(fractionDigitsMax) fraction digits")
                }
                if count <= 3 { millis = millis * 10 + digit }
            }
            guard count > 0 else { throw ParseError(detail: ISO8601Millis.syntax) }
            if count < 3 {
                for _ in count..<3 { millis *= 10 }
            }
            return millis
        }

        /// `Z`, `±HH:MM`, `±HHMM` or `±HH`, as seconds east of UTC.
        mutating func zone() throws(ParseError) -> Int64 {
            guard let byte = next() else {
                throw ParseError(detail: "the time has no zone; add Z for UTC or an offset such as +01:00")
            }
            if byte == UInt8(ascii: "Z") || byte == UInt8(ascii: "z") { return 0 }
            guard byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") else {
                throw ParseError(detail: ISO8601Millis.syntax)
            }
            let sign: Int64 = byte == UInt8(ascii: "+") ? 1 : -1
            let hours = try number(digits: 2)
            var minutes: Int64 = 0
            if peek() == UInt8(ascii: ":") {
                _ = next()
                minutes = try number(digits: 2)
            } else if !atEnd {
                minutes = try number(digits: 2)
            }
            guard hours <= 23 && minutes <= 59 else {
                let signText = sign > 0 ? "+" : "-"
                throw ParseError(
                    detail: "zone offset \(signText)\(ISO8601Millis.twoDigits(hours)):\(ISO8601Millis.twoDigits(minutes)) is out of range"
                )
            }
            return sign * (hours * 3_600 + minutes * 60)
        }

        private static func digit(_ byte: UInt8) -> Int64? {
            byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? Int64(byte - UInt8(ascii: "0")) : nil
        }
    }
}
