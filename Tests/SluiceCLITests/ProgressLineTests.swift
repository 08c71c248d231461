import XCTest
@testable import SluiceCLI

final class ProgressLineTests: XCTestCase {
    private let ms: UInt64 = 1_000_000

    func testNothingIsDrawnWhenNotATerminal() {
        var progress = ProgressLine(total: 1_000, isTerminal: false)
        for step in UInt64(0)..<20 {
            XCTAssertNil(progress.update(done: Int64(step) * 50, records: Int64(step), nowNanos: step * 500 * ms))
        }
        XCTAssertNil(progress.finish(done: 1_000, records: 20, nowNanos: 10_000 * ms))
    }

    func testRedrawsAtMostEveryHundredMilliseconds() {
        var progress = ProgressLine(total: nil, isTerminal: true)
        let start: UInt64 = 5_000 * ms
        XCTAssertNil(progress.update(done: 0, records: 0, nowNanos: start), "the first update only starts the clock")
        XCTAssertNil(progress.update(done: 10, records: 1, nowNanos: start + 50 * ms))
        XCTAssertNil(progress.update(done: 10, records: 1, nowNanos: start + 99 * ms))
        XCTAssertNotNil(progress.update(done: 10, records: 1, nowNanos: start + 100 * ms))
        XCTAssertNil(progress.update(done: 10, records: 1, nowNanos: start + 150 * ms))
        XCTAssertNil(progress.update(done: 10, records: 1, nowNanos: start + 199 * ms))
        XCTAssertNotNil(progress.update(done: 10, records: 1, nowNanos: start + 200 * ms))
        XCTAssertNotNil(progress.update(done: 10, records: 1, nowNanos: start + 1_000 * ms))
    }

    func testDrawsCountAndThroughputCount() {
        var draws = 0
        var progress = ProgressLine(total: nil, isTerminal: true)
        // Updates every 10 ms for 2 s: 20 redraws at most.
        for tick in UInt64(0)...200 where progress.update(done: 0, records: 0, nowNanos: tick * 10 * ms) != nil {
            draws += 1
        }
        XCTAssertEqual(draws, 20)
    }

    func testAClockGoingBackwardsDrawsNothing() {
        var progress = ProgressLine(total: nil, isTerminal: true)
        _ = progress.update(done: 0, records: 0, nowNanos: 1_000 * ms)
        XCTAssertNil(progress.update(done: 0, records: 0, nowNanos: 10 * ms))
        XCTAssertNotNil(progress.update(done: 0, records: 0, nowNanos: 1_100 * ms))
    }

    func testBarWithKnownTotal() {
        var progress = ProgressLine(total: 1_000_000_000, isTerminal: true)
        _ = progress.update(done: 0, records: 0, nowNanos: 0)
        // 450 MB in 36.6 s is 12.3 MB/s (rounded to one decimal).
        let text = progress.update(done: 450_000_000, records: 120_000, nowNanos: 36_600 * ms)
        XCTAssertEqual(text, "\r[#####.....] 45% 12.3 MB/s 120,000 rec\u{1B}[K")
    }

    func testCountsWithoutTotal() {
        var progress = ProgressLine(total: nil, isTerminal: true)
        _ = progress.update(done: 0, records: 0, nowNanos: 0)
        let text = progress.update(done: 45_600_000, records: 1_234_567, nowNanos: 2_000 * ms)
        XCTAssertEqual(text, "\r45.6 MB 22.8 MB/s 1,234,567 rec\u{1B}[K")
    }

    func testBarIsFullOnlyWhenDone() {
        let progress = ProgressLine(total: 100, isTerminal: true)
        XCTAssert(progress.line(done: 0, records: 0, nowNanos: 0).hasPrefix("[..........] 0% "))
        XCTAssert(progress.line(done: 99, records: 0, nowNanos: 0).hasPrefix("[#########.] 99% "))
        XCTAssert(progress.line(done: 100, records: 0, nowNanos: 0).hasPrefix("[##########] 100% "))
        XCTAssert(progress.line(done: 250, records: 0, nowNanos: 0).hasPrefix("[##########] 100% "), "clamped")
        XCTAssert(progress.line(done: -5, records: 0, nowNanos: 0).hasPrefix("[..........] 0% "), "clamped")
        XCTAssert(progress.line(done: 5, records: 0, nowNanos: 0).hasPrefix("[#.........] 5% "))
    }

    func testZeroTotalCountsAsDone() {
        let progress = ProgressLine(total: 0, isTerminal: true)
        XCTAssert(progress.line(done: 0, records: 0, nowNanos: 0).hasPrefix("[##########] 100% "))
    }

    func testFinishAlwaysDrawsAndEndsTheLine() {
        var progress = ProgressLine(total: 200_000_000, isTerminal: true)
        _ = progress.update(done: 0, records: 0, nowNanos: 0)
        XCTAssertNil(progress.update(done: 100_000_000, records: 1, nowNanos: 10 * ms))
        let text = progress.finish(done: 200_000_000, records: 2_000_000, nowNanos: 20 * ms)
        XCTAssertEqual(text, "\r[##########] 100% 10000.0 MB/s 2,000,000 rec\u{1B}[K\n")
    }

    func testFinishWithoutAnyUpdate() {
        var progress = ProgressLine(total: nil, isTerminal: true)
        XCTAssertEqual(progress.finish(done: 0, records: 0, nowNanos: 7), "\r0.0 MB 0.0 MB/s 0 rec\u{1B}[K\n")
    }

    func testIsTerminalOnAPipe() {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        XCTAssertFalse(ProgressLine.isTerminal(fd: fds[1]))
        XCTAssertFalse(ProgressLine.isTerminal(fd: -1))
    }
}
