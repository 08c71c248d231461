import SluiceCore
// Event times (issue 4, section 2: "Event time comes from a JSON field or the record timestamp").
//
// A time value is epoch milliseconds: an integer, an integral double, or an ISO-8601 string. The parser is
// hand-written over UTF-8 bytes because Foundation's formatters allocate, depend on the platform and accept
// more than we want to promise; this one accepts exactly the grammar below and never traps.

/// Conversions of values to event times, epoch milliseconds.
public enum EventTime {
    /// `value` as epoch milliseconds within `eventTimeRangeMs`: an integer, a double with no fraction, or an
    /// ISO-8601 string (`ISO8601.parseMilliseconds`). Anything else, or a time out of range, is nil.
    public static func milliseconds(from value: JSONValue) -> Int64? {
        switch value {
        case .int(let milliseconds):
            return eventTimeRangeMs.contains(milliseconds) ? milliseconds : nil
        case .number(let milliseconds):
            guard let whole = exactInteger(milliseconds) else { return nil }
            return eventTimeRangeMs.contains(whole) ? whole : nil
        case .string(let text):
            guard let parsed = ISO8601.parseMilliseconds(text) else { return nil }
            return eventTimeRangeMs.contains(parsed) ? parsed : nil
        default:
            return nil
        }
    }

    /// `value` as an `Int64` when it is finite, has no fraction and fits; nil otherwise. Never traps.
    static func exactInteger(_ value: Double) -> Int64? {
        guard value.isFinite, value.rounded(.towardZero) == value,
              value >= -9_223_372_036_854_775_808.0, value < 9_223_372_036_854_775_808.0 else { return nil }
        return Int64(value)
    }
}

/// ISO-8601 date-times, the subset that event streams use.
///
/// Grammar (ASCII, no surrounding spaces):
/// ```
/// date-time = date [ ("T" / "t" / " ") time [ zone ] ]
/// date      = 4DIGIT "-" 2DIGIT "-" 2DIGIT          ; year 0000–9999, a real calendar day
/// time      = 2DIGIT ":" 2DIGIT [ ":" 2DIGIT [ ("." / ",") 1*9DIGIT ] ]
/// zone      = "Z" / "z" / ("+" / "-") 2DIGIT [ [":"] 2DIGIT ]
/// ```
/// Without a zone the time is UTC. Fractions beyond milliseconds are truncated (toward the past). A leap
/// second (`:60`) is accepted and lands on the next minute's first millisecond. A date alone is midnight UTC.
public enum ISO8601 {
    /// Milliseconds since 1970-01-01T00:00:00Z, or nil when `text` does not match the grammar.
    public static func parseMilliseconds(_ text: String) -> Int64? {
        var text = text
        return text.withUTF8 { parseMilliseconds(UnsafeRawBufferPointer($0)) }
    }

    /// As `parseMilliseconds(_: String)`, over UTF-8 bytes.
    public static func parseMilliseconds(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        var cursor = Cursor(bytes: bytes)
        guard let year = cursor.digits(4), cursor.take(UInt8(ascii: "-")),
              let month = cursor.digits(2), cursor.take(UInt8(ascii: "-")),
              let day = cursor.digits(2),
              (1...12).contains(month), (1...CivilCalendar.daysInMonth(year: year, month: month)).contains(day) else { return nil }
        var milliseconds = CivilCalendar.daysFromCivil(year: year, month: month, day: day) * 86_400_000
        if cursor.isAtEnd { return milliseconds }
        guard cursor.take(UInt8(ascii: "T")) || cursor.take(UInt8(ascii: "t")) || cursor.take(UInt8(ascii: " ")),
              let timeOfDay = parseTime(&cursor) else { return nil }
        milliseconds += timeOfDay
        guard let offsetMinutes = parseZone(&cursor), cursor.isAtEnd else { return nil }
        return milliseconds - offsetMinutes * 60_000
    }

    /// `HH:MM[:SS[.fraction]]` as milliseconds into the day.
    private static func parseTime(_ cursor: inout Cursor) -> Int64? {
        guard let hour = cursor.digits(2), cursor.take(UInt8(ascii: ":")), let minute = cursor.digits(2),
              hour <= 23, minute <= 59 else { return nil }
        var second: Int64 = 0
        var fraction: Int64 = 0
        if cursor.take(UInt8(ascii: ":")) {
            guard let parsed = cursor.digits(2), parsed <= 60 else { return nil }
            second = parsed
            if cursor.take(UInt8(ascii: ".")) || cursor.take(UInt8(ascii: ",")) {
                var count = 0
                while let digit = cursor.digit() {
                    count += 1
                    guard count <= 9 else { return nil }
                    if count <= 3 { fraction = fraction * 10 + digit }
                }
                guard count > 0 else { return nil }
                for _ in count..<max(count, 3) { fraction *= 10 }
            }
        }
        return ((hour * 60 + minute) * 60 + second) * 1_000 + fraction
    }

    /// The zone's offset east of UTC in minutes: 0 for "Z" or no zone; nil when malformed.
    private static func parseZone(_ cursor: inout Cursor) -> Int64? {
        if cursor.isAtEnd { return 0 }
        if cursor.take(UInt8(ascii: "Z")) || cursor.take(UInt8(ascii: "z")) { return 0 }
        let sign: Int64
        if cursor.take(UInt8(ascii: "+")) {
            sign = 1
        } else if cursor.take(UInt8(ascii: "-")) {
            sign = -1
        } else {
            return nil
        }
        guard let hours = cursor.digits(2), hours <= 23 else { return nil }
        var minutes: Int64 = 0
        if !cursor.isAtEnd {
            _ = cursor.take(UInt8(ascii: ":"))
            guard let parsed = cursor.digits(2), parsed <= 59 else { return nil }
            minutes = parsed
        }
        return sign * (hours * 60 + minutes)
    }

    private struct Cursor {
        let bytes: UnsafeRawBufferPointer
        var index = 0

        var isAtEnd: Bool { index >= bytes.count }

        mutating func take(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        mutating func digit() -> Int64? {
            guard index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") else {
                return nil
            }
            defer { index += 1 }
            return Int64(bytes[index] - UInt8(ascii: "0"))
        }

        /// Exactly `count` digits as a number.
        mutating func digits(_ count: Int) -> Int64? {
            var value: Int64 = 0
            for _ in 0..<count {
                guard let digit = digit() else { return nil }
                value = value * 10 + digit
            }
            return value
        }
    }
}
