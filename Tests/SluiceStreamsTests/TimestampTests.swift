@testable import SluiceStreams
import SluiceCore
import SluiceTestSupport
import Testing

/// ISO-8601 event times by table, and the date arithmetic against a day-by-day count.
@Suite("Event times")
struct TimestampTests {
    @Test func isoTable() {
        let table: [(String, Int64?)] = [
            ("1970-01-01T00:00:00Z", 0), ("1970-01-01", 0), ("1970-01-01T00:00:00.001Z", 1),
            ("2026-11-29T10:00:00Z", 1_795_946_400_000), ("2026-11-29T10:00:00.5Z", 1_795_946_400_500),
            ("2026-11-29T10:00:00.123456789Z", 1_795_946_400_123), ("2026-11-29T11:30:00+01:30", 1_795_946_400_000),
            ("2026-11-29T08:00:00-0200", 1_795_946_400_000), ("2026-11-29T10:00:00+01", 1_795_942_800_000),
            ("2026-11-29 10:00:00", 1_795_946_400_000), ("2026-11-29t10:00z", 1_795_946_400_000),
            ("1969-12-31T23:59:59.999Z", -1), ("2000-02-29T00:00:00Z", 951_782_400_000),
            ("2016-12-31T23:59:60Z", 1_483_228_800_000), ("0000-01-01T00:00:00Z", -62_167_219_200_000),
            ("2026-11-29T10:00:00,25Z", 1_795_946_400_250),
            // malformed
            ("2001-02-29T00:00:00Z", nil), ("2026-13-01", nil), ("2026-11-31", nil), ("2026-11-29T24:00:00Z", nil),
            ("2026-11-29T10:60:00Z", nil), ("2026-11-29T10:00:61Z", nil), ("2026-11-29T10:00:00.Z", nil),
            ("2026-11-29T10:00:00.1234567890Z", nil), ("2026-11-29T10:00:00+1", nil), ("2026-11-29T10:00:00+01:", nil),
            ("2026-11-29T10:00:00Zjunk", nil), ("26-11-29", nil), ("2026-1-29", nil), ("", nil), (" 2026-11-29", nil),
            ("2026-11-29T", nil), ("2026-11-29T10", nil), ("2026-11-29T10:00:00+24:00", nil), ("２０２６-11-29", nil),
        ]
        for (text, expected) in table {
            #expect(ISO8601.parseMilliseconds(text) == expected, "\(text)")
        }
    }

    @Test func eventTimeConversions() {
        #expect(EventTime.milliseconds(from: 1_700_000_000_000) == 1_700_000_000_000)
        #expect(EventTime.milliseconds(from: 1_700_000_000_000.0) == 1_700_000_000_000)
        #expect(EventTime.milliseconds(from: 1.5) == nil)
        #expect(EventTime.milliseconds(from: .int(.max)) == nil, "outside eventTimeRangeMs")
        #expect(EventTime.milliseconds(from: 1e300) == nil)
        #expect(EventTime.milliseconds(from: "1970-01-01T00:00:00.042Z") == 42)
        #expect(EventTime.milliseconds(from: "42") == nil)
        #expect(EventTime.milliseconds(from: nil) == nil)
        #expect(EventTime.milliseconds(from: true) == nil)
    }

    /// Days since the epoch counted one day at a time: the oracle for `daysFromCivil`.
    @Test func dayArithmeticAgreesWithCounting() {
        var days: Int64 = -25_567  // 1900-01-01; the table above pins 0000-01-01
        for year: Int64 in 1_900...2_100 {  // 1900 and 2100 are not leap years, 2000 is
            for month: Int64 in 1...12 {
                for day in 1...CivilCalendar.daysInMonth(year: year, month: month) {
                    if day == 1 || day == 28 {
                        #expect(CivilCalendar.daysFromCivil(year: year, month: month, day: day) == days, "\(year)-\(month)-\(day)")
                    }
                    days += 1
                }
            }
        }
    }

    @Test func randomBytesNeverTrap() {
        var random = SeededRandom.fromEnvironment()
        let alphabet = Array("0123456789-:T.Z+ ,tz".utf8)
        for _ in 0..<20_000 {
            let bytes = (0..<random.int(0...32)).map { _ in alphabet[random.int(0...alphabet.count - 1)] }
            _ = bytes.withUnsafeBytes { ISO8601.parseMilliseconds($0) }
        }
    }
}
