import XCTest
import Foundation
@testable import SluiceCLI

final class LatencyStatsTests: XCTestCase {
    func testPercentilesOfOneToOneThousandMicros() {
        var stats = LatencyStats()
        for micros in UInt64(1)...1_000 {
            stats.record(micros: micros)
        }
        XCTAssertEqual(stats.count, 1_000)
        // Below 2,048 µs a 3-digit HdrHistogram is exact, so these are the true ranks.
        XCTAssertEqual(stats.percentiles(), LatencyPercentiles(p50: 0.5, p90: 0.9, p99: 0.99, p999: 0.999, max: 1.0))
    }

    func testEmptyStatsAreAllZero() {
        XCTAssertEqual(LatencyStats().percentiles(), LatencyPercentiles(p50: 0, p90: 0, p99: 0, p999: 0, max: 0))
        XCTAssertEqual(LatencyStats().count, 0)
    }

    func testLargeValuesStayWithinThreeSignificantDigits() {
        var stats = LatencyStats()
        stats.record(micros: 123_456)
        let p = stats.percentiles()
        XCTAssertEqual(p.p50, 123.456, accuracy: 123.456 * 0.001)
        XCTAssertEqual(p.max, 123.456, "max is the recorded value itself")
    }

    func testValuesAboveSixtySecondsAreClampedAndCounted() {
        var stats = LatencyStats()
        stats.record(micros: 5)
        stats.record(micros: 90_000_000)
        XCTAssertEqual(stats.count, 2)
        XCTAssertEqual(stats.clampedCount, 1)
        XCTAssertEqual(stats.percentiles().max, 60_000)
    }

    func testZeroIsRecorded() {
        var stats = LatencyStats()
        stats.record(micros: 0)
        XCTAssertEqual(stats.count, 1)
        XCTAssertEqual(stats.percentiles().p50, 0)
    }

    func testNanosecondsRoundToTheNearestMicrosecond() {
        var stats = LatencyStats()
        stats.record(nanos: 1_499)
        XCTAssertEqual(stats.percentiles().max, 0.001)
        stats.record(nanos: 2_500)
        XCTAssertEqual(stats.percentiles().max, 0.003)
    }

    func testMergeAddsRecordings() {
        var low = LatencyStats()
        var high = LatencyStats()
        for micros in UInt64(1)...500 { low.record(micros: micros) }
        for micros in UInt64(501)...1_000 { high.record(micros: micros) }
        high.record(micros: 61_000_000)
        low.merge(high)
        XCTAssertEqual(low.count, 1_001)
        XCTAssertEqual(low.clampedCount, 1)
        XCTAssertEqual(low.percentiles().p50, 0.501)
    }
}

final class BenchReportTests: XCTestCase {
    private let latency = LatencyPercentiles(p50: 0.5, p90: 0.9, p99: 0.99, p999: 0.999, max: 1.0)

    func testJSONIsExact() {
        let report = BenchReport(records: 1_000_000, bytes: 100_000_000, seconds: 2.5, latency: latency)
        XCTAssertEqual(
            report.json(),
            #"{"records":1000000,"bytes":100000000,"seconds":2.500,"records_per_sec":400000.0,"mb_per_sec":40.00,"#
                + #""latency_ms":{"p50":0.500,"p90":0.900,"p99":0.990,"p999":0.999,"max":1.000}}"#
        )
    }

    func testJSONRoundsAndParses() throws {
        let report = BenchReport(
            records: 123_457,
            bytes: 12_345_700,
            seconds: 1.23456,
            latency: LatencyPercentiles(p50: 0.0125, p90: 1.2345, p99: 12.3456, p999: 123.4567, max: 60_000)
        )
        let text = report.json()
        XCTAssertEqual(
            text,
            #"{"records":123457,"bytes":12345700,"seconds":1.235,"records_per_sec":100000.8,"mb_per_sec":10.00,"#
                + #""latency_ms":{"p50":0.013,"p90":1.235,"p99":12.346,"p999":123.457,"max":60000.000}}"#
        )
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        XCTAssertEqual(object?["records"] as? Int, 123_457)
        XCTAssertNotNil((object?["latency_ms"] as? [String: Any])?["p999"])
    }

    func testZeroSecondsGivesZeroRates() {
        let report = BenchReport(records: 10, bytes: 1_000, seconds: 0, latency: latency)
        XCTAssertEqual(report.recordsPerSec, 0)
        XCTAssertEqual(report.mbPerSec, 0)
        XCTAssert(report.json().contains(#""records_per_sec":0.0,"mb_per_sec":0.00,"#))
    }

    func testNonFiniteSecondsBecomeNull() {
        let report = BenchReport(records: 10, bytes: 1_000, seconds: .nan, latency: latency)
        XCTAssert(report.json().contains(#""seconds":null,"#), report.json())
    }

    func testRatesUseDecimalMegabytes() {
        let report = BenchReport(records: 2_000, bytes: 3_000_000, seconds: 2, latency: latency)
        XCTAssertEqual(report.recordsPerSec, 1_000)
        XCTAssertEqual(report.mbPerSec, 1.5)
    }

    func testText() {
        let report = BenchReport(records: 1_000_000, bytes: 100_000_000, seconds: 2.5, latency: latency)
        XCTAssertEqual(
            report.text(),
            """
            records     1,000,000 (100.0 MB)
            time        2.500 s
            throughput  400,000 records/s, 40.00 MB/s (MB = 1,000,000 bytes)
            latency ms  p50 0.500  p90 0.900  p99 0.990  p99.9 0.999  max 1.000

            """
        )
    }

    func testNumberText() {
        XCTAssertEqual(NumberText.fixed(2, decimals: 3), "2.000")
        XCTAssertEqual(NumberText.fixed(0.0005, decimals: 3), "0.001")
        XCTAssertEqual(NumberText.fixed(-1.25, decimals: 1), "-1.3")
        XCTAssertEqual(NumberText.fixed(-0.0001, decimals: 2), "0.00")
        XCTAssertEqual(NumberText.fixed(12.345, decimals: 0), "12")
        XCTAssertEqual(NumberText.fixed(1.05, decimals: 2), "1.05")
        XCTAssertEqual(NumberText.grouped(0), "0")
        XCTAssertEqual(NumberText.grouped(999), "999")
        XCTAssertEqual(NumberText.grouped(1_000), "1,000")
        XCTAssertEqual(NumberText.grouped(-1_234_567), "-1,234,567")
        XCTAssertEqual(NumberText.grouped(Int64.min), "-9,223,372,036,854,775,808")
    }
}
