import SluiceStreams
import SluiceTestSupport
import Testing

/// Watermarks: issue 4, section 2 ("Watermark per source partition … skipping partitions idle for longer
/// than idle_timeout").
@Suite("Watermarks")
struct WatermarkTests {
    @Test func outOfOrderRecordsNeverMoveTheWatermarkBack() {
        var tracker = WatermarkTracker(partitions: [0], allowedLatenessMs: 5, nowMs: 0)
        #expect(tracker.current == WatermarkTracker.none && !tracker.isLate(Int64.min + 1))
        for (time, watermark) in [(100, 95), (90, 95), (120, 115), (116, 115), (101, 115)] as [(Int64, Int64)] {
            tracker.observe(partition: 0, eventTimeMs: time, nowMs: 1)
            #expect(tracker.advance(nowMs: 1) == watermark)
        }
        #expect(tracker.isLate(114) && !tracker.isLate(115) && !tracker.isLate(200))
    }

    @Test func theTaskWatermarkIsTheMinimumOverPartitions() {
        var tracker = WatermarkTracker(partitions: [0, 1, 2], nowMs: 0)
        tracker.observe(partition: 0, eventTimeMs: 50, nowMs: 0)
        tracker.observe(partition: 1, eventTimeMs: 30, nowMs: 0)
        #expect(tracker.advance(nowMs: 0) == WatermarkTracker.none)  // partition 2 has seen nothing
        tracker.observe(partition: 2, eventTimeMs: 70, nowMs: 0)
        #expect(tracker.advance(nowMs: 0) == 30)
        #expect(tracker.watermark(of: 0) == 50 && tracker.watermark(of: 2) == 70)
    }

    @Test func idlePartitionsStopHoldingTheWatermarkBack() {
        var tracker = WatermarkTracker(partitions: [0, 1], idleTimeoutMs: 1000, nowMs: 0)
        tracker.observe(partition: 0, eventTimeMs: 500, nowMs: 100)
        #expect(tracker.advance(nowMs: 1000) == WatermarkTracker.none)  // partition 1 silent for exactly the timeout
        #expect(tracker.isIdle(1, nowMs: 1001) && !tracker.isIdle(0, nowMs: 1001))
        #expect(tracker.advance(nowMs: 1001) == 500)

        // Partition 1 wakes up behind the task watermark: its record is late, and the watermark stays.
        #expect(tracker.isLate(200))
        tracker.observe(partition: 1, eventTimeMs: 200, nowMs: 1002)
        #expect(tracker.advance(nowMs: 1002) == 500)
        tracker.observe(partition: 0, eventTimeMs: 900, nowMs: 1003)
        #expect(tracker.advance(nowMs: 1003) == 500)  // min(900, 200), never below 500
        tracker.observe(partition: 1, eventTimeMs: 800, nowMs: 1004)
        #expect(tracker.advance(nowMs: 1004) == 800)
    }

    @Test func whenEveryPartitionIsIdleTheWatermarkIsTheirMaximumThenMovesWithProcessingTime() {
        var tracker = WatermarkTracker(partitions: [0, 1], allowedLatenessMs: 10, idleTimeoutMs: 100, nowMs: 0)
        tracker.observe(partition: 0, eventTimeMs: 400, nowMs: 0)
        tracker.observe(partition: 1, eventTimeMs: 300, nowMs: 50)
        #expect(tracker.advance(nowMs: 60) == 290)
        #expect(tracker.advance(nowMs: 120) == 290)  // only partition 0 idle: partition 1 holds it at 290
        #expect(tracker.advance(nowMs: 150) == 290)  // partition 1 silent for exactly its timeout: not idle yet
        // Both idle: the highest watermark (390), moved on by the 1 ms since partition 1's timeout ran out.
        #expect(tracker.advance(nowMs: 151) == 391)
        #expect(tracker.isLate(390) && !tracker.isLate(391))
        #expect(tracker.advance(nowMs: 1_150) == 1_390)
        // A record wakes partition 1: the watermark never goes back, and stops moving by itself.
        tracker.observe(partition: 1, eventTimeMs: 500, nowMs: 1_200)
        #expect(tracker.advance(nowMs: 1_200) == 1_390)
        #expect(tracker.advance(nowMs: 1_250) == 1_390)
    }

    @Test func withoutAnIdleTimeoutNothingIsEverIdle() {
        var tracker = WatermarkTracker(partitions: [3, 4], nowMs: 0)
        tracker.observe(partition: 3, eventTimeMs: 10, nowMs: 0)
        #expect(!tracker.isIdle(4, nowMs: Int64.max / 2))
        #expect(tracker.advance(nowMs: Int64.max / 2) == WatermarkTracker.none)
    }

    /// Against a naive recomputation from the full history, over random interleavings.
    @Test func agreesWithNaiveRecomputation() {
        var random = SeededRandom.fromEnvironment()
        for iteration in 0..<300 {
            let partitions: [Int32] = [0, 1, 2]
            let lateness = Int64(random.int(0...20))
            let idle = Int64(random.int(5...50))
            var tracker = WatermarkTracker(partitions: partitions, allowedLatenessMs: lateness, idleTimeoutMs: idle, nowMs: 0)
            var history: [(partition: Int32, time: Int64, now: Int64)] = []
            var now: Int64 = 0
            var expectedCurrent = WatermarkTracker.none
            for _ in 0..<60 {
                now += Int64(random.int(0...15))
                if random.chance(0.8) {
                    let partition = partitions[random.int(0...2)]
                    let time = Int64(random.int(0...500))
                    #expect(tracker.isLate(time) == (time < expectedCurrent), "seed \(random.seed) #\(iteration)")
                    tracker.observe(partition: partition, eventTimeMs: time, nowMs: now)
                    history.append((partition, time, now))
                }
                var perPartition: [(watermark: Int64, idle: Bool)] = []
                for partition in partitions {
                    let records = history.filter { $0.partition == partition }
                    let watermark = records.map(\.time).max().map { $0 - lateness } ?? WatermarkTracker.none
                    let lastActivity = records.map(\.now).max() ?? 0
                    perPartition.append((watermark, now - lastActivity > idle))
                }
                let active = perPartition.filter { !$0.idle }.map(\.watermark)
                let latestActivity = history.map(\.now).max() ?? 0
                let highest = perPartition.map(\.watermark).max() ?? WatermarkTracker.none
                // All idle: the highest watermark, moved on by the processing time since the timeout ran out.
                let movedOn = highest == WatermarkTracker.none ? highest : highest + max(0, now - (latestActivity + idle))
                let computed = active.min() ?? movedOn
                expectedCurrent = max(expectedCurrent, computed)
                #expect(tracker.advance(nowMs: now) == expectedCurrent, "seed \(random.seed) #\(iteration)")
            }
        }
    }
}
