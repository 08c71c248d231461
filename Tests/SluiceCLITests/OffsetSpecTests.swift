import SluiceCore
import XCTest
@testable import SluiceCLI

final class OffsetSpecTests: XCTestCase {
    private func parse(_ text: String) throws -> OffsetSpec {
        try OffsetSpec(parsing: text)
    }

    private func error(_ text: String) -> OffsetSpecError? {
        do {
            let spec = try OffsetSpec(parsing: text)
            XCTFail("\"\(text)\" parsed as \(spec)")
            return nil
        } catch {
            return error
        }
    }

    func testNamedPositionsInBothSpellings() throws {
        XCTAssertEqual(try parse("earliest"), .earliest)
        XCTAssertEqual(try parse("beginning"), .earliest)
        XCTAssertEqual(try parse("latest"), .latest)
        XCTAssertEqual(try parse("end"), .latest)
        XCTAssertEqual(try parse("EARLIEST"), .earliest)
        XCTAssertEqual(try parse("  end "), .latest)
    }

    func testAbsoluteOffsets() throws {
        XCTAssertEqual(try parse("0"), .offset(0))
        XCTAssertEqual(try parse("1234"), .offset(1_234))
        XCTAssertEqual(try parse("9223372036854775807"), .offset(Int64.max))
    }

    func testRecordsBeforeTheEnd() throws {
        XCTAssertEqual(try parse("-10"), .fromEnd(10))
        XCTAssertEqual(try parse("-1"), .fromEnd(1))
        XCTAssertEqual(try parse("-0"), .fromEnd(0))
    }

    func testEpochMilliseconds() throws {
        XCTAssertEqual(try parse("@1795946400000"), .timestamp(1_795_946_400_000))
        XCTAssertEqual(try parse("@0"), .timestamp(0))
    }

    func testISO8601InUTC() throws {
        XCTAssertEqual(try parse("@2026-11-29T10:00:00Z"), .timestamp(1_795_946_400_000))
        XCTAssertEqual(try parse("@2026-11-29t10:00:00z"), .timestamp(1_795_946_400_000))
        XCTAssertEqual(try parse("@2026-11-29 10:00:00Z"), .timestamp(1_795_946_400_000))
        XCTAssertEqual(try parse("@2026-11-29T10:00Z"), .timestamp(1_795_946_400_000))
        XCTAssertEqual(try parse("@1970-01-01T00:00:00Z"), .timestamp(0))
    }

    func testISO8601WithOffsets() throws {
        XCTAssertEqual(try parse("@2026-11-29T11:00:00+01:00"), .timestamp(1_795_946_400_000))
        XCTAssertEqual(try parse("@2026-11-29T11:00:00+0100"), .timestamp(1_795_946_400_000))
        XCTAssertEqual(try parse("@2026-11-29T11:00:00+01"), .timestamp(1_795_946_400_000))
        XCTAssertEqual(try parse("@2026-11-29T04:30:00-05:30"), .timestamp(1_795_946_400_000))
        XCTAssertEqual(try parse("@2026-11-29T10:00:00+00:00"), .timestamp(1_795_946_400_000))
    }

    func testISO8601Fractions() throws {
        XCTAssertEqual(try parse("@2024-02-29T23:59:59.123Z"), .timestamp(1_709_251_199_123))
        XCTAssertEqual(try parse("@2024-02-29T23:59:59.1Z"), .timestamp(1_709_251_199_100))
        XCTAssertEqual(try parse("@2024-02-29T23:59:59,12Z"), .timestamp(1_709_251_199_120))
        XCTAssertEqual(try parse("@2024-02-29T23:59:59.123456789Z"), .timestamp(1_709_251_199_123), "truncated, not rounded")
    }

    func testDateAloneIsMidnightUTC() throws {
        XCTAssertEqual(try parse("@2026-11-29"), .timestamp(1_795_910_400_000))
        XCTAssertEqual(try parse("@2000-03-01"), .timestamp(951_868_800_000))
    }

    func testDaysFromCivilAgreesWithCountingDays() {
        // Walk day by day from 1970 to 2100 and check the closed form at every step.
        var expected: Int64 = 0
        for year: Int64 in 1970...2100 {
            for month: Int64 in 1...12 {
                let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
                let days: Int64 = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][Int(month - 1)]
                for day in 1...days {
                    XCTAssertEqual(CivilCalendar.daysFromCivil(year: year, month: month, day: day), expected)
                    expected += 1
                }
            }
        }
    }

    func testDescriptionRoundTrips() throws {
        for spec: OffsetSpec in [.earliest, .latest, .offset(42), .fromEnd(5), .timestamp(1_795_946_400_000)] {
            XCTAssertEqual(try parse(spec.description), spec)
        }
    }

    // MARK: errors

    func testEveryErrorListsTheAcceptedForms() {
        for bad in ["", "   ", "soon", "+5", "12abc", "-x", "--5", "@", "@soon", "1.5", "stored"] {
            let description = error(bad)?.description ?? ""
            XCTAssert(description.hasSuffix(OffsetSpecError.acceptedForms), "\"\(bad)\": \(description)")
            XCTAssert(description.contains("earliest (or beginning)"))
            XCTAssert(description.contains("@2026-11-29T10:00:00Z"))
        }
    }

    func testEmpty() {
        XCTAssertEqual(error("")?.reason, .empty)
        XCTAssert(error("")?.description.hasPrefix("offset is empty; use earliest") == true)
    }

    func testUnrecognisedForm() {
        XCTAssertEqual(error("soon")?.reason, .unrecognised)
        XCTAssertEqual(
            error("soon")?.description,
            "offset \"soon\" is not a form sluice knows; " + OffsetSpecError.acceptedForms
        )
        XCTAssertEqual(error("12abc")?.reason, .unrecognised)
        XCTAssertEqual(error("-x")?.reason, .unrecognised)
        XCTAssertEqual(error("-")?.reason, .unrecognised)
    }

    func testNumbersTooLarge() {
        XCTAssertEqual(error("9223372036854775808")?.reason, .numberTooLarge("offset"))
        XCTAssertEqual(error("-9223372036854775808")?.reason, .numberTooLarge("record count"))
        XCTAssertEqual(error("@99999999999999999999")?.reason, .numberTooLarge("timestamp"))
        XCTAssert(error("9223372036854775808")?.description.contains("does not fit in a signed 64-bit integer") == true)
    }

    func testBadTimes() {
        let cases: [(String, String)] = [
            ("@2026-13-01T00:00:00Z", "month 13 is not 1 to 12"),
            ("@2026-02-29T00:00:00Z", "day 29 is not 1 to 28 for 2026-02"),
            ("@2026-04-31", "day 31 is not 1 to 30 for 2026-04"),
            ("@2026-11-29T24:00:00Z", "hour 24 is not 0 to 23"),
            ("@2026-11-29T10:60:00Z", "minute 60 is not 0 to 59"),
            ("@2026-11-29T10:00:60Z", "second 60 is not 0 to 59"),
            ("@2026-11-29T10:00:00", "the time has no zone; add Z for UTC or an offset such as +01:00"),
            ("@2026-11-29T10:00:00Zjunk", "unexpected text after the time zone"),
            ("@2026-11-29T10:00:00+25:00", "zone offset +25:00 is out of range"),
            ("@2026-11-29T10:00:00.Z", "expected YYYY-MM-DDTHH:MM:SSZ or an offset such as +01:00 in place of Z"),
            ("@2026-11-29T10:00:00.1234567891Z", "more than 9 fraction digits"),
            ("@26-11-29", "expected YYYY-MM-DDTHH:MM:SSZ or an offset such as +01:00 in place of Z"),
            ("@2026/11/29", "expected YYYY-MM-DDTHH:MM:SSZ or an offset such as +01:00 in place of Z"),
            ("@1969-12-31T23:59:59Z", "times before 1970 are not offsets"),
            ("@1969-12-31", "times before 1970 are not offsets"),
        ]
        for (input, detail) in cases {
            XCTAssertEqual(error(input)?.reason, .badTime(detail), input)
        }
        XCTAssert(
            error("@2026-13-01")?.description.hasPrefix("offset \"@2026-13-01\" is not a valid time: month 13") == true
        )
    }

    func testLeapDayIsAcceptedInALeapYear() throws {
        XCTAssertEqual(try parse("@2024-02-29"), .timestamp(1_709_164_800_000))
        XCTAssertEqual(try parse("@2000-02-29"), .timestamp(951_782_400_000))
        XCTAssertEqual(error("@1900-02-29")?.reason, .badTime("day 29 is not 1 to 28 for 1900-02"))
    }
}
