import SluiceSQL
@testable import SluiceStreams
import SluiceTestSupport
import Testing

/// Each window kind × emit mode over a short stream with out-of-order and late records; every expected output
/// is written by hand. The plan is `SELECT user, COUNT(*) AS n, SUM(amount) AS total FROM clicks GROUP BY
/// user, <window>(ts) EMIT <mode>` with `late_records` set.
@Suite("Processor task: windows × emit modes")
struct ProcessorTaskWindowTests {
    /// One input: user, amount, event time, and the processing time it arrives at.
    typealias Input = (user: String, amount: Int64, ts: Int64, now: Int64)

    /// Runs `inputs` then `finish`; each input's record timestamp is 1000 + its index, its key the user.
    static func run(_ plan: ProcessorPlan, _ inputs: [Input]) throws -> (lines: [String], statistics: TaskStatistics) {
        var task = ProcessorTask(plan: plan, inputPartitions: [0], nowMs: 0)
        var lines: [String] = []
        for (index, input) in inputs.enumerated() {
            let record = TestRecord(key: input.user, value: clickJSON(.string(input.user), .int(input.amount), .int(input.ts)),
                                    timestampMs: 1000 + Int64(index), offset: Int64(index))
            lines += render(try task.feed(record, nowMs: input.now))
        }
        lines += render(task.finished())
        return (lines, task.statistics)
    }

    /// A result line: key, then the value with the window appended, at window end − 1.
    static func result(_ user: String, n: Int, total: Int, _ start: Int64, _ end: Int64) -> String {
        "\(user) {\"user\":\"\(user)\",\"n\":\(n),\"total\":\(total),\"window_start\":\(start),\"window_end\":\(end)} @\(end - 1)"
    }

    /// The late copy of input `index`: its key, value and timestamp unchanged.
    static func late(_ inputs: [Input], _ index: Int) -> String {
        let input = inputs[index]
        return "late \(input.user) \(clickJSON(.string(input.user), .int(input.amount), .int(input.ts))) @\(1000 + index)"
    }

    // MARK: Tumbling, size 10, lateness 5

    static let tumblingInputs: [Input] = [
        ("a", 1, 1, 0), ("b", 2, 5, 40), ("a", 3, 12, 80),
        ("a", 4, 8, 120),   // out of order, not late: watermark 12 − 5 = 7
        ("b", 5, 16, 160),  // watermark 11 closes [0, 10)
        ("a", 6, 9, 200),   // late: 9 < 11
        ("b", 7, 13, 240),
    ]

    @Test func tumblingFinal() throws {
        let plan = Plans.clicks(.tumble(sizeMs: 10), emit: .final, lateness: 5)
        let (lines, statistics) = try Self.run(plan, Self.tumblingInputs)
        #expect(lines == [
            Self.result("a", n: 2, total: 5, 0, 10), Self.result("b", n: 1, total: 2, 0, 10),
            Self.late(Self.tumblingInputs, 5),
            Self.result("a", n: 1, total: 3, 10, 20), Self.result("b", n: 2, total: 12, 10, 20),
        ])
        #expect(statistics.recordsIn == 7 && statistics.recordsLate == 1 && statistics.recordsOut == 4)
        #expect(statistics.stateBytes == 0)
    }

    @Test func tumblingChanges() throws {
        let plan = Plans.clicks(.tumble(sizeMs: 10), emit: .changes, lateness: 5)
        let (lines, statistics) = try Self.run(plan, Self.tumblingInputs)
        #expect(lines == [
            Self.result("a", n: 1, total: 1, 0, 10), Self.result("b", n: 1, total: 2, 0, 10),
            Self.result("a", n: 1, total: 3, 10, 20), Self.result("a", n: 2, total: 5, 0, 10),
            Self.result("b", n: 1, total: 5, 10, 20), Self.late(Self.tumblingInputs, 5),
            Self.result("b", n: 2, total: 12, 10, 20),
        ])
        #expect(statistics.recordsOut == 6 && statistics.stateBytes == 0)
    }

    @Test func tumblingEvery() throws {
        // Timers fire at processing times 100, 200, 300…
        let plan = Plans.clicks(.tumble(sizeMs: 10), emit: .every(intervalMs: 100), lateness: 5)
        let (lines, _) = try Self.run(plan, Self.tumblingInputs)
        #expect(lines == [
            // now 120: early results of everything changed so far
            Self.result("a", n: 2, total: 5, 0, 10), Self.result("b", n: 1, total: 2, 0, 10),
            Self.result("a", n: 1, total: 3, 10, 20),
            // now 160: the watermark closes [0, 10): final results, although unchanged since the early ones
            Self.result("a", n: 2, total: 5, 0, 10), Self.result("b", n: 1, total: 2, 0, 10),
            // now 200: the late record, then the one group changed since 120
            Self.late(Self.tumblingInputs, 5), Self.result("b", n: 1, total: 5, 10, 20),
            // finish
            Self.result("a", n: 1, total: 3, 10, 20), Self.result("b", n: 2, total: 12, 10, 20),
        ])
    }

    // MARK: Hopping, size 10, slide 5, lateness 0

    static let hoppingInputs: [Input] = [
        ("a", 1, 3, 0),    // [-5, 5) and [0, 10)
        ("a", 2, 7, 40),   // [0, 10) and [5, 15); watermark 7 closes [-5, 5)
        ("b", 3, 12, 80),  // [5, 15) and [10, 20); watermark 12 closes [0, 10)
        ("a", 4, 6, 120),  // late
        ("a", 5, 14, 160), // [5, 15) and [10, 20)
    ]

    @Test func hoppingFinal() throws {
        let (lines, _) = try Self.run(Plans.clicks(.hop(slideMs: 5, sizeMs: 10), emit: .final), Self.hoppingInputs)
        #expect(lines == [
            Self.result("a", n: 1, total: 1, -5, 5),
            Self.result("a", n: 2, total: 3, 0, 10),
            Self.late(Self.hoppingInputs, 3),
            Self.result("a", n: 2, total: 7, 5, 15), Self.result("b", n: 1, total: 3, 5, 15),
            Self.result("a", n: 1, total: 5, 10, 20), Self.result("b", n: 1, total: 3, 10, 20),
        ])
    }

    @Test func hoppingChanges() throws {
        let (lines, _) = try Self.run(Plans.clicks(.hop(slideMs: 5, sizeMs: 10), emit: .changes), Self.hoppingInputs)
        #expect(lines == [
            Self.result("a", n: 1, total: 1, -5, 5), Self.result("a", n: 1, total: 1, 0, 10),
            Self.result("a", n: 2, total: 3, 0, 10), Self.result("a", n: 1, total: 2, 5, 15),
            Self.result("b", n: 1, total: 3, 5, 15), Self.result("b", n: 1, total: 3, 10, 20),
            Self.late(Self.hoppingInputs, 3),
            Self.result("a", n: 2, total: 7, 5, 15), Self.result("a", n: 1, total: 5, 10, 20),
        ])
    }

    @Test func hoppingEvery() throws {
        let (lines, _) = try Self.run(Plans.clicks(.hop(slideMs: 5, sizeMs: 10), emit: .every(intervalMs: 100)),
                                      Self.hoppingInputs)
        #expect(lines == [
            Self.result("a", n: 1, total: 1, -5, 5),  // now 40: closed by the watermark
            Self.result("a", n: 2, total: 3, 0, 10),  // now 80
            // now 120: the late record, then early results of the open groups that changed
            Self.late(Self.hoppingInputs, 3),
            Self.result("a", n: 1, total: 2, 5, 15), Self.result("b", n: 1, total: 3, 5, 15),
            Self.result("b", n: 1, total: 3, 10, 20),
            // finish
            Self.result("a", n: 2, total: 7, 5, 15), Self.result("b", n: 1, total: 3, 5, 15),
            Self.result("a", n: 1, total: 5, 10, 20), Self.result("b", n: 1, total: 3, 10, 20),
        ])
    }

    // MARK: Sessions, gap 10, lateness 20

    static let sessionInputs: [Input] = [
        ("a", 1, 10, 0),   // a [10, 20)
        ("a", 2, 25, 40),  // a [25, 35)
        ("b", 3, 12, 80),  // b [12, 22)
        ("a", 4, 17, 120), // bridges a's sessions: a [10, 35)
        ("b", 5, 50, 160), // b [50, 60); watermark 30 closes b [12, 22)
        ("a", 6, 5, 200),  // late
        ("a", 7, 40, 240), // a [40, 50): 40 is not within the gap of 35
    ]

    @Test func sessionFinal() throws {
        let (lines, statistics) = try Self.run(Plans.clicks(.session(gapMs: 10), emit: .final, lateness: 20),
                                               Self.sessionInputs)
        #expect(lines == [
            Self.result("b", n: 1, total: 3, 12, 22),
            Self.late(Self.sessionInputs, 5),
            Self.result("a", n: 3, total: 7, 10, 35), Self.result("a", n: 1, total: 7, 40, 50),
            Self.result("b", n: 1, total: 5, 50, 60),
        ])
        #expect(statistics.stateBytes == 0)
    }

    @Test func sessionChangesEmitTheMergedSession() throws {
        let (lines, _) = try Self.run(Plans.clicks(.session(gapMs: 10), emit: .changes, lateness: 20),
                                      Self.sessionInputs)
        #expect(lines == [
            Self.result("a", n: 1, total: 1, 10, 20), Self.result("a", n: 1, total: 2, 25, 35),
            Self.result("b", n: 1, total: 3, 12, 22),
            Self.result("a", n: 3, total: 7, 10, 35),  // supersedes both earlier results of a
            Self.result("b", n: 1, total: 5, 50, 60),
            Self.late(Self.sessionInputs, 5),
            Self.result("a", n: 1, total: 7, 40, 50),
        ])
    }

    @Test func sessionEvery() throws {
        let (lines, _) = try Self.run(Plans.clicks(.session(gapMs: 10), emit: .every(intervalMs: 100), lateness: 20),
                                      Self.sessionInputs)
        #expect(lines == [
            // now 120: early results; a's two sessions merged, so only the merged one
            Self.result("b", n: 1, total: 3, 12, 22), Self.result("a", n: 3, total: 7, 10, 35),
            // now 160: b [12, 22) closes
            Self.result("b", n: 1, total: 3, 12, 22),
            // now 200: late record, then the group changed since 120
            Self.late(Self.sessionInputs, 5), Self.result("b", n: 1, total: 5, 50, 60),
            // finish
            Self.result("a", n: 3, total: 7, 10, 35), Self.result("a", n: 1, total: 7, 40, 50),
            Self.result("b", n: 1, total: 5, 50, 60),
        ])
    }

    // MARK: Watermark details

    @Test func lateRecordsAreDroppedWithoutALateTopic() throws {
        let plan = Plans.clicks(.tumble(sizeMs: 10), emit: .final, lateness: 5, lateTopic: nil)
        let (lines, statistics) = try Self.run(plan, Self.tumblingInputs)
        #expect(!lines.contains { $0.hasPrefix("late ") })
        #expect(statistics.recordsLate == 1)
    }

    @Test func anIdlePartitionStopsHoldingTheWatermarkBack() throws {
        let plan = Plans.clicks(.tumble(sizeMs: 10), emit: .final, idleTimeoutMs: 1_000)
        var task = ProcessorTask(plan: plan, inputPartitions: [0, 1], nowMs: 0)
        _ = try task.feed(TestRecord(value: clickJSON("a", 1, 5), partition: 1), nowMs: 0)
        // Partition 0 has seen nothing: the watermark waits for it.
        #expect(try task.feed(TestRecord(value: clickJSON("a", 2, 25), partition: 1), nowMs: 500).isEmpty)
        #expect(task.statistics.watermarkMs == WatermarkTracker.none)
        var output: [OutputRecord] = []
        try task.advance(nowMs: 1_001, into: &output)  // partition 0 idle for 1001 ms > 1000
        #expect(render(output) == [Self.result("a", n: 1, total: 1, 0, 10)])
        #expect(task.statistics.watermarkMs == 25)
        // Partition 0 wakes up behind the watermark: its record is late, and the watermark does not go back.
        let wakeUp = try task.feed(TestRecord(value: clickJSON("b", 3, 12), partition: 0), nowMs: 1_100)
        #expect(wakeUp.map(\.destination) == [.late])
        #expect(task.statistics.watermarkMs == 25)
    }

    @Test func aStoppedStreamStillClosesItsLastWindowAfterTheIdleTimeout() throws {
        let plan = Plans.clicks(.tumble(sizeMs: 10), emit: .final, idleTimeoutMs: 1_000)
        var task = ProcessorTask(plan: plan, inputPartitions: [0], nowMs: 0)
        #expect(try task.feed(TestRecord(value: clickJSON("a", 4, 5), partition: 0), nowMs: 0).isEmpty)
        var output: [OutputRecord] = []
        try task.advance(nowMs: 1_000, into: &output)  // silent for exactly the timeout: not idle yet
        try task.advance(nowMs: 1_004, into: &output)  // idle, watermark 5 + 4 = 9: the window [0, 10) stays open
        #expect(output.isEmpty)
        try task.advance(nowMs: 1_005, into: &output)  // watermark 10: closed
        #expect(render(output) == [Self.result("a", n: 1, total: 4, 0, 10)])
    }

    @Test func theWatermarkCountsRecordsThatWhereFilters() throws {
        let plan = Plans.clicks(.tumble(sizeMs: 10), emit: .final, filterClicks: true)
        var task = ProcessorTask(plan: plan, inputPartitions: [0], nowMs: 0)
        _ = try task.feed(TestRecord(value: clickJSON("a", 1, 3, action: "click")))
        let closed = try task.feed(TestRecord(value: clickJSON("a", 2, 30, action: "view")))
        #expect(render(closed) == [Self.result("a", n: 1, total: 1, 0, 10)])
        // A filtered-out record behind the watermark is not late: it would not have been aggregated anyway.
        #expect(try task.feed(TestRecord(value: clickJSON("a", 3, 1, action: "view"))).isEmpty)
        #expect(task.statistics.recordsLate == 0)
    }

    @Test func processingTimeWindowsCloseAsTimePasses() throws {
        let plan = Plans.clicks(.tumble(sizeMs: 100), emit: .final, time: .processingTime)
        var task = ProcessorTask(plan: plan, inputPartitions: [0], nowMs: 0)
        #expect(try task.feed(TestRecord(value: clickJSON("a", 1, nil)), nowMs: 10).isEmpty)
        #expect(try task.feed(TestRecord(value: clickJSON("a", 2, nil)), nowMs: 99).isEmpty)
        var output: [OutputRecord] = []
        try task.advance(nowMs: 100, into: &output)
        #expect(render(output) == [Self.result("a", n: 2, total: 3, 0, 100)])
    }

    @Test func eventTimeFromTheRecordTimestampAndISOStrings() throws {
        let byTimestamp = Plans.clicks(.tumble(sizeMs: 10), emit: .final, time: .recordTimestamp)
        var task = ProcessorTask(plan: byTimestamp, inputPartitions: [0], nowMs: 0)
        _ = try task.feed(TestRecord(value: clickJSON("a", 1, nil), timestampMs: 4))
        #expect(render(try task.feed(TestRecord(value: clickJSON("a", 1, nil), timestampMs: 10))) ==
                [Self.result("a", n: 1, total: 1, 0, 10)])

        var iso = ProcessorTask(plan: Plans.clicks(.tumble(sizeMs: 1_000), emit: .final), inputPartitions: [0], nowMs: 0)
        _ = try iso.feed(TestRecord(value: clickJSON("a", 1, "2026-11-29T10:00:00.250Z")))
        _ = try iso.feed(TestRecord(value: clickJSON("a", 2, "2026-11-29T11:00:00.750+01:00")))  // same second
        _ = try iso.feed(TestRecord(value: clickJSON("a", 4, nil)))  // no time: invalid
        _ = try iso.feed(TestRecord(value: clickJSON("a", 8, "yesterday")))  // unreadable: invalid
        let start: Int64 = 1_795_946_400_000
        #expect(render(iso.finished()) == [Self.result("a", n: 2, total: 3, start, start + 1_000)])
        #expect(iso.statistics.recordsInvalid == 2)
    }
}
