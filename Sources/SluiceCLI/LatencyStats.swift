import Histogram

// Latency and throughput for `sluice bench`: an HdrHistogram of per-record latencies, and the report
// printed at the end of a run, as text for people and as one JSON object for tools/compare-redis.

/// Latencies in microseconds, from 1 µs to 60 s, to 3 significant digits (HdrHistogram).
///
/// A value type: each benchmark connection or task keeps its own and the results are merged with
/// ``merge(_:)``, so recording never takes a lock.
struct LatencyStats: Sendable {
    /// The smallest latency told apart from zero.
    static let trackableMicrosMin: UInt64 = 1
    /// The largest latency recorded as itself; longer ones are recorded as this and counted in
    /// ``clampedCount``. A minute is far past any timeout the client uses.
    static let trackableMicrosMax: UInt64 = 60_000_000

    private var histogram: Histogram<UInt64>
    /// How many recordings were above ``trackableMicrosMax`` and were recorded as it.
    private(set) var clampedCount: UInt64 = 0

    /// An empty histogram.
    init() {
        histogram = Histogram(
            lowestDiscernibleValue: Self.trackableMicrosMin,
            highestTrackableValue: Self.trackableMicrosMax,
            numberOfSignificantValueDigits: .three
        )
    }

    /// How many latencies were recorded.
    var count: UInt64 { histogram.totalCount }

    /// Records one latency in microseconds.
    mutating func record(micros: UInt64) {
        var value = micros
        if value > Self.trackableMicrosMax {
            value = Self.trackableMicrosMax
            clampedCount += 1
        }
        let recorded = histogram.record(value)
        assert(recorded, "value \(value) within the histogram's range was refused")
    }

    /// Records one latency in nanoseconds (as from `MonotonicClock`), rounded to the nearest microsecond.
    mutating func record(nanos: UInt64) {
        record(micros: nanos / 1_000 + (nanos % 1_000 >= 500 ? 1 : 0))
    }

    /// Adds every recording of `other` to this one.
    mutating func merge(_ other: LatencyStats) {
        histogram.add(other.histogram)
        clampedCount += other.clampedCount
    }

    /// p50, p90, p99, p99.9 and the maximum, in milliseconds; all zero when nothing was recorded.
    ///
    /// Percentiles are HdrHistogram's: the highest value equivalent to the one at that rank, so exact
    /// below 2,048 µs and within 0.1% above. The maximum is the largest value recorded.
    func percentiles() -> LatencyPercentiles {
        guard histogram.totalCount > 0 else {
            return LatencyPercentiles(p50: 0, p90: 0, p99: 0, p999: 0, max: 0)
        }
        func millis(_ micros: UInt64) -> Double { Double(micros) / 1_000 }
        return LatencyPercentiles(
            p50: millis(histogram.valueAtPercentile(50)),
            p90: millis(histogram.valueAtPercentile(90)),
            p99: millis(histogram.valueAtPercentile(99)),
            p999: millis(histogram.valueAtPercentile(99.9)),
            max: millis(histogram.maxRecorded)
        )
    }
}

/// The latency summary of a run, in milliseconds.
struct LatencyPercentiles: Hashable, Sendable {
    /// Median.
    var p50: Double
    /// 90th percentile.
    var p90: Double
    /// 99th percentile.
    var p99: Double
    /// 99.9th percentile.
    var p999: Double
    /// Largest latency recorded.
    var max: Double
}

/// What one `sluice bench` run measured.
///
/// Rates are derived from the counts and the elapsed time, so they can never disagree with them.
/// MB means 1,000,000 bytes (not MiB), as in the throughput figures Kafka's and Redis's tools print.
struct BenchReport: Hashable, Sendable {
    /// Digits after the point in the JSON and text output.
    static let secondsDecimals = 3
    /// Digits after the point for records per second.
    static let recordsPerSecDecimals = 1
    /// Digits after the point for MB per second.
    static let mbPerSecDecimals = 2
    /// Digits after the point for latencies in ms (3 = microseconds, the histogram's unit).
    static let latencyDecimals = 3
    /// Bytes in the MB the report uses.
    static let bytesPerMB: Double = 1_000_000

    /// Records produced or consumed.
    var records: Int64
    /// Value bytes produced or consumed (keys, headers and framing not counted).
    var bytes: Int64
    /// Elapsed wall time of the measured part of the run.
    var seconds: Double
    /// Per-record latency summary.
    var latency: LatencyPercentiles

    /// A report of `records` records and `bytes` bytes over `seconds` seconds.
    init(records: Int64, bytes: Int64, seconds: Double, latency: LatencyPercentiles) {
        self.records = records
        self.bytes = bytes
        self.seconds = seconds
        self.latency = latency
    }

    /// Records per second; 0 when no time elapsed.
    var recordsPerSec: Double {
        seconds > 0 ? Double(records) / seconds : 0
    }

    /// MB (1,000,000 bytes) per second; 0 when no time elapsed.
    var mbPerSec: Double {
        seconds > 0 ? Double(bytes) / Self.bytesPerMB / seconds : 0
    }

    /// A few aligned lines for a terminal, ending in a newline.
    func text() -> String {
        let mb = NumberText.fixed(Double(bytes) / Self.bytesPerMB, decimals: 1)
        let rate = NumberText.grouped(Int64(recordsPerSec.rounded()))
        let mbRate = NumberText.fixed(mbPerSec, decimals: Self.mbPerSecDecimals)
        let l = latency
        func ms(_ value: Double) -> String { NumberText.fixed(value, decimals: Self.latencyDecimals) }
        return """
            records     \(NumberText.grouped(records)) (\(mb) MB)
            time        \(NumberText.fixed(seconds, decimals: Self.secondsDecimals)) s
            throughput  \(rate) records/s, \(mbRate) MB/s (MB = 1,000,000 bytes)
            latency ms  p50 \(ms(l.p50))  p90 \(ms(l.p90))  p99 \(ms(l.p99))  p99.9 \(ms(l.p999))  max \(ms(l.max))

            """
    }

    /// One JSON object on one line, no trailing newline, keys in this order:
    ///
    ///     {"records":N,"bytes":N,"seconds":S,"records_per_sec":R,"mb_per_sec":M,
    ///      "latency_ms":{"p50":..,"p90":..,"p99":..,"p999":..,"max":..}}
    ///
    /// Numbers are fixed-point with the decimals named above (a non-finite one is `null`).
    func json() -> String {
        func number(_ value: Double, _ decimals: Int) -> String {
            value.isFinite ? NumberText.fixed(value, decimals: decimals) : "null"
        }
        let l = latency
        let d = Self.latencyDecimals
        return #"{"records":\#(records),"bytes":\#(bytes),"#
            + #""seconds":\#(number(seconds, Self.secondsDecimals)),"#
            + #""records_per_sec":\#(number(recordsPerSec, Self.recordsPerSecDecimals)),"#
            + #""mb_per_sec":\#(number(mbPerSec, Self.mbPerSecDecimals)),"#
            + #""latency_ms":{"p50":\#(number(l.p50, d)),"p90":\#(number(l.p90, d)),"#
            + #""p99":\#(number(l.p99, d)),"p999":\#(number(l.p999, d)),"max":\#(number(l.max, d))}}"#
    }
}

/// Numbers as people read them, without Foundation's locale-dependent formatters (whose output would
/// change with the machine's locale and break the JSON).
enum NumberText {
    /// `value` rounded half away from zero to `decimals` digits after the point: `fixed(2.0, 3)` is
    /// `"2.000"`. Values too large for that many digits in 63 bits fall back to Swift's shortest form.
    static func fixed(_ value: Double, decimals: Int) -> String {
        precondition(decimals >= 0 && decimals <= 9, "decimals \(decimals) outside 0...9")
        guard value.isFinite else { return value.description }
        var scale: UInt64 = 1
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (value.magnitude * Double(scale)).rounded(.toNearestOrAwayFromZero)
        // 2^63: past it the UInt64 conversion traps, and Double has no exact digits there anyway.
        guard scaled < 9.223_372_036_854_775_807e18 else { return value.description }
        let units = UInt64(scaled)
        let sign = value < 0 && units != 0 ? "-" : ""
        let whole = String(units / scale)
        guard decimals > 0 else { return sign + whole }
        let fraction = String(units % scale)
        return sign + whole + "." + String(repeating: "0", count: decimals - fraction.count) + fraction
    }

    /// `value` with a comma between groups of three digits: `1234567` is `"1,234,567"`.
    static func grouped(_ value: Int64) -> String {
        let digits = Array(String(value.magnitude))
        var result = value < 0 ? "-" : ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { result.append(",") }
            result.append(digit)
        }
        return result
    }
}
