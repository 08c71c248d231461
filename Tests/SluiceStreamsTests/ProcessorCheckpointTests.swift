import SluiceCore
import SluiceSQL
@testable import SluiceStreams
import SluiceTestSupport
import Testing

/// Exactly-once rests on these: a task restored from a checkpoint taken anywhere in a stream produces the same
/// outputs, byte for byte and in the same order, as one that never stopped; and no damaged checkpoint can make
/// a task trap.
@Suite("Processor task: checkpoints")
struct ProcessorCheckpointTests {
    /// `SELECT user, COUNT(*), COUNT(amount), COUNT(DISTINCT amount), SUM, AVG, MIN, MAX, FIRST_VALUE,
    /// LAST_VALUE (amount) … GROUP BY user, <window> EMIT <emit>`: every accumulator kind in the checkpoint.
    static func allAggregates(_ kind: WindowPlan.Kind?, emit: EmitPolicy, time: TimeSource = .expression(.field(2)),
                              lateness: Int64 = 20, idleTimeoutMs: Int64? = nil) -> ProcessorPlan {
        let kinds: [AggregateKind] = [.count, .countDistinct, .sum, .avg, .min, .max, .firstValue, .lastValue]
        let aggregates = [AggregateCall(.countStar)] + kinds.map { AggregateCall($0, .field(1)) }
        let columns = [OutputColumn(name: "user", expr: .groupKey(0))]
            + aggregates.indices.map { OutputColumn(name: "a\($0)", expr: .aggregate($0)) }
        let aggregation = Aggregation(keys: [.field(0)], window: kind.map { WindowPlan(kind: $0, time: time) },
                                      aggregates: aggregates, having: nil, needsRepartition: true)
        return ProcessorPlan(sink: "out", source: "s", fields: [["user"], ["amount"], ["ts"], ["action"]],
                             projection: .columns(columns), aggregation: aggregation, emit: emit,
                             allowedLatenessMs: lateness, idleTimeoutMs: idleTimeoutMs, lateRecordsTopic: "late")
    }

    /// Plans covering every kind of state the checkpoint holds.
    static let plans: [(String, ProcessorPlan)] = {
        var plans: [(String, ProcessorPlan)] = []
        let kinds: [WindowPlan.Kind] = [.tumble(sizeMs: 30), .hop(slideMs: 10, sizeMs: 30), .session(gapMs: 20)]
        for kind in kinds {
            for emit in [EmitPolicy.final, .changes, .every(intervalMs: 35)] {
                plans.append(("\(kind) \(emit)", allAggregates(kind, emit: emit)))
            }
        }
        plans.append(("idle timeout", allAggregates(.tumble(sizeMs: 30), emit: .final, idleTimeoutMs: 40)))
        plans.append(("processing time", allAggregates(.hop(slideMs: 20, sizeMs: 60), emit: .every(intervalMs: 50),
                                                       time: .processingTime)))
        plans.append(("no window", allAggregates(nil, emit: .changes)))
        plans.append(("word count", Plans.wordCount()))
        plans.append(("windowed word count", Plans.wordCount(windowMs: 50)))
        plans.append(("stateless", Plans.wildcardFilter))
        return plans
    }()

    /// Runs `steps` from `task`, then finishes; returns every output and the final task.
    static func runToEnd(_ task: ProcessorTask, _ steps: ArraySlice<Step>) throws -> ([OutputRecord], ProcessorTask) {
        var task = task
        var outputs: [OutputRecord] = []
        for step in steps { outputs += try task.run(step) }
        outputs += task.finished()
        return (outputs, task)
    }

    @Test(arguments: 0..<plans.count)
    func restoringMidStreamReproducesTheOutputExactly(planIndex: Int) throws {
        let (name, plan) = Self.plans[planIndex]
        var random = SeededRandom.fromEnvironment()
        for iteration in 0..<12 {
            let partitions: [Int32] = Array(0..<Int32(random.int(1...3)))
            var generator = StreamGenerator(SeededRandom(seed: random.next()), partitions: partitions)
            let steps = generator.steps(random.int(10...50))
            let context = "seed \(random.seed) #\(iteration) \(name)"
            let start = ProcessorTask(plan: plan, inputPartitions: partitions, nowMs: 0)
            let (expected, uninterrupted) = try Self.runToEnd(start, steps[...])

            let cut = random.int(0...steps.count)
            var first = start
            var outputs: [OutputRecord] = []
            for step in steps[..<cut] { outputs += try first.run(step) }
            let checkpoint = first.checkpoint()
            let restored = try ProcessorTask(plan: plan, restoring: checkpoint)
            #expect(restored.checkpoint() == checkpoint, "\(context): restore then checkpoint changes the bytes")
            #expect(restored.statistics == first.statistics, "\(context): statistics differ after restore")
            let (rest, resumed) = try Self.runToEnd(restored, steps[cut...])
            outputs += rest
            #expect(outputs == expected, "\(context): cut at \(cut) of \(steps.count): \(Self.difference(outputs, expected))")
            #expect(resumed.checkpoint() == uninterrupted.checkpoint(), "\(context): final state differs")
            #expect(resumed.statistics == uninterrupted.statistics, "\(context)")
        }
    }

    static func difference(_ actual: [OutputRecord], _ expected: [OutputRecord]) -> String {
        for (index, (a, e)) in zip(actual, expected).enumerated() where a != e {
            return "output \(index): got \(render(a)), expected \(render(e))"
        }
        return "got \(actual.count) outputs, expected \(expected.count)"
    }

    @Test func restoredStateBytesAgreeWithTheLiveCount() throws {
        var random = SeededRandom.fromEnvironment()
        for (name, plan) in Self.plans {
            var generator = StreamGenerator(SeededRandom(seed: random.next()), partitions: [0, 1])
            var task = ProcessorTask(plan: plan, inputPartitions: [0, 1], nowMs: 0)
            for step in generator.steps(80) { _ = try task.run(step) }
            let restored = try ProcessorTask(plan: plan, restoring: task.checkpoint())
            #expect(restored.statistics.stateBytes == task.statistics.stateBytes, "seed \(random.seed) \(name)")
            #expect(task.state.computedStateBytes() == task.state.stateBytes, "seed \(random.seed) \(name)")
        }
    }

    @Test func aCheckpointOnlyRestoresIntoAQueryOfTheSameShape() throws {
        let task = ProcessorTask(plan: Self.allAggregates(.tumble(sizeMs: 30), emit: .final), inputPartitions: [0], nowMs: 0)
        let checkpoint = task.checkpoint()
        for other in [Self.allAggregates(.tumble(sizeMs: 60), emit: .final), Self.allAggregates(.tumble(sizeMs: 30), emit: .changes),
                      Self.allAggregates(.session(gapMs: 30), emit: .final), Plans.clicks(.tumble(sizeMs: 30), emit: .final)] {
            #expect(throws: TaskError.self) { try ProcessorTask(plan: other, restoring: checkpoint) }
        }
    }

    // MARK: Damage

    /// A mid-stream checkpoint of a session query with early results pending: every section is non-trivial.
    static func richCheckpoint(seed: UInt64) throws -> (ProcessorPlan, [UInt8], [Step]) {
        let plan = allAggregates(.session(gapMs: 20), emit: .every(intervalMs: 1_000))
        var generator = StreamGenerator(SeededRandom(seed: seed), partitions: [0, 1])
        var task = ProcessorTask(plan: plan, inputPartitions: [0, 1], nowMs: 0)
        for step in generator.steps(60) { _ = try task.run(step) }
        return (plan, task.checkpoint(), generator.steps(40))
    }

    static func withFixedCheckpointCRC(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.count >= 4 else { return bytes }
        var bytes = bytes
        let crc = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0.dropLast(4))) }
        bytes.setBigEndian(crc, at: bytes.count - 4)
        return bytes
    }

    /// Restores `bytes` if it decodes, then drives the task on: it must never trap.
    static func survive(_ plan: ProcessorPlan, _ bytes: [UInt8], _ steps: [Step]) -> Bool {
        guard var task = try? ProcessorTask(plan: plan, restoring: bytes) else { return false }
        for step in steps {
            // Damage may have renamed the partitions; feeding a foreign partition is a caller error, not damage.
            if case .record(let record, _) = step, !task.inputPartitions.contains(record.partition) { continue }
            _ = try? task.run(step)
        }
        _ = task.finished()
        _ = task.checkpoint()
        return true
    }

    @Test func everyTruncationIsRefused() throws {
        let (plan, checkpoint, _) = try Self.richCheckpoint(seed: 1)
        #expect(checkpoint.count > 300)
        for length in 0..<checkpoint.count {
            #expect(throws: TaskError.self, "length \(length)") {
                try ProcessorTask(plan: plan, restoring: Array(checkpoint.prefix(length)))
            }
            // Truncation with a matching length and CRC reaches the structural checks.
            var cut = Array(checkpoint.prefix(length))
            if cut.count >= 16 {
                cut.setBigEndian(UInt32(cut.count - 16), at: 8)
                cut = Self.withFixedCheckpointCRC(cut)
                #expect(throws: TaskError.self, "structural truncation at \(length)") {
                    try ProcessorTask(plan: plan, restoring: cut)
                }
            }
        }
    }

    @Test func bitFlipsAreRefusedByTheCRC() throws {
        var random = SeededRandom.fromEnvironment()
        let (plan, checkpoint, _) = try Self.richCheckpoint(seed: random.next())
        for _ in 0..<1_000 {
            var damaged = checkpoint
            for _ in 0..<random.int(1...3) {
                damaged[random.int(0...damaged.count - 1)] ^= UInt8(1) << UInt8(random.int(0...7))
            }
            guard damaged != checkpoint else { continue }
            #expect(throws: TaskError.self, "seed \(random.seed)") { try ProcessorTask(plan: plan, restoring: damaged) }
        }
    }

    @Test func damageBehindAValidCRCNeverTraps() throws {
        var random = SeededRandom.fromEnvironment()
        let (plan, checkpoint, steps) = try Self.richCheckpoint(seed: random.next())
        var decoded = 0
        for iteration in 0..<600 {
            var damaged = checkpoint
            switch iteration % 3 {
            case 0:  // bit flips anywhere after the header
                for _ in 0..<random.int(1...4) {
                    damaged[random.int(12...damaged.count - 5)] ^= UInt8(1) << UInt8(random.int(0...7))
                }
            case 1:  // a byte set to an extreme
                damaged[random.int(12...damaged.count - 5)] = random.pick([0x00, 0xFF, 0x7F, 0x80])
            default:  // a random run of bytes
                let start = random.int(12...damaged.count - 5)
                for index in start..<min(damaged.count - 4, start + random.int(1...16)) { damaged[index] = UInt8.random(in: 0...255, using: &random) }
            }
            if Self.survive(plan, Self.withFixedCheckpointCRC(damaged), Array(steps.prefix(10))) { decoded += 1 }
        }
        // Some damage lands in counters and times and still decodes; most breaks the structure.
        #expect(decoded > 0 && decoded < 600, "seed \(random.seed): \(decoded) decoded")
    }

    /// The example of storage-format/processor-checkpoint.md, byte for byte.
    @Test func goldenCheckpoint() throws {
        let aggregation = Aggregation(keys: [.field(0)], window: WindowPlan(kind: .tumble(sizeMs: 10), time: .expression(.field(1))),
                                      aggregates: [AggregateCall(.countStar)], having: nil, needsRepartition: true)
        let plan = ProcessorPlan(sink: "o", source: "s", fields: [["user"], ["ts"]], projection: .columns([
            OutputColumn(name: "user", expr: .groupKey(0)), OutputColumn(name: "n", expr: .aggregate(0)),
        ]), aggregation: aggregation, emit: .final)
        var task = ProcessorTask(plan: plan, inputPartitions: [0], nowMs: 0)
        _ = try task.feed(TestRecord(value: "{\"user\":\"a\",\"ts\":3}"), nowMs: 5)
        let hex = """
            53 4c 50 43 00 01 00 00 00 00 00 a1 02 00 00 00 00 00 00 00 0a 00 00 00 00 00 00 00 00 01 00 00 00 00 00 00
            00 00 00 00 01 00 01 00 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
            00 00 00 00 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 03 00 00 00 01 00 00 00 00 01 00 00 00 00 00 00 00
            03 00 00 00 00 00 00 00 05 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 03 00 00 00 01 00 00 00 00 00 00 00
            00 00 00 00 00 00 00 00 0a 00 00 00 01 00 05 00 00 00 01 61 00 00 00 00 00 00 00 00 01 b1 48 bf a5
            """
        let golden = hex.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { UInt8($0, radix: 16) }
        #expect(golden.count == 177)
        #expect(task.checkpoint() == golden)
        let restored = try ProcessorTask(plan: plan, restoring: golden)
        #expect(restored.statistics == task.statistics)
        var output: [OutputRecord] = []
        var resumed = restored
        resumed.finish(into: &output)
        #expect(render(output) == ["a {\"user\":\"a\",\"n\":1,\"window_start\":0,\"window_end\":10} @9"])
    }

    @Test func headerFields() throws {
        let (plan, checkpoint, _) = try Self.richCheckpoint(seed: 2)
        #expect(Array(checkpoint.prefix(4)) == Array("SLPC".utf8))
        #expect(checkpoint.getBigEndian(at: 4, as: UInt16.self) == 1)
        #expect(Int(checkpoint.getBigEndian(at: 8, as: UInt32.self)) == checkpoint.count - 16)
        var future = checkpoint
        future.setBigEndian(UInt16(2), at: 4)
        #expect(throws: TaskError.corruptCheckpoint("unknown version 2")) {
            try ProcessorTask(plan: plan, restoring: Self.withFixedCheckpointCRC(future))
        }
    }
}
