import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SluiceCore
import SluiceStreams
import SluiceTestSupport
import SluiceWire
import Testing

@testable import SluiceBroker

/// The checkpoint a task leaves when it stops, which a replace in a cluster goes on from: it must cover
/// every output already stored, also when the stop comes while the task waits to retry after a write
/// that found no leader (its in-memory state then lost).
@Suite("processor task: final checkpoint")
struct TaskFinalCheckpointTests {
    /// Writes locally, but the `failingCall`-th append finds no leader (once, or from then on when
    /// `sticky`, checkpoints too), and says so.
    final class FlakyOutput: TaskOutput, @unchecked Sendable {
        let inner: LocalTaskOutput
        let failingCall: Int
        let sticky: Bool
        let takesOverTasks: Bool
        private let lock = NIOLock()
        private var calls = 0
        /// Lookups, appends and checkpoint writes tried since the first failure.
        var triesSinceFailure: Int { lock.withLock { triesAfter } }
        private var triesAfter = 0
        let failed: EventLoopPromise<Void>

        init(_ inner: LocalTaskOutput, failingCall: Int, failed: EventLoopPromise<Void>, sticky: Bool = false, takesOverTasks: Bool = false) {
            self.inner = inner
            self.failingCall = failingCall
            self.failed = failed
            self.sticky = sticky
            self.takesOverTasks = takesOverTasks
        }

        /// Whether the failing append has happened; if so, counts this call as a try after it. Under `lock`.
        private func afterFailure() -> Bool {
            guard failingCall > 0, calls >= failingCall else { return false }
            triesAfter += 1
            return true
        }

        func recordsWritten(producerId: Int64, in positions: [TaskCheckpoint.OutputPosition]) throws -> [TaskCheckpoint.OutputPosition: Int64] {
            _ = lock.withLock { afterFailure() }
            return try inner.recordsWritten(producerId: producerId, in: positions)
        }

        func append(_ batches: [(TaskCheckpoint.OutputPosition, [RecordBatch])]) throws {
            let (call, after) = lock.withLock {
                let after = afterFailure()
                calls += 1
                return (calls, after)
            }
            if call == failingCall {
                failed.succeed(())
                throw TaskOutputUnavailable(message: "test: no leader")
            }
            if sticky && after { throw TaskOutputUnavailable(message: "test: still no leader") }
            try inner.append(batches)
        }

        func storeCheckpoint(key: [UInt8], value: [UInt8]?, timestampMs: Int64) throws {
            if lock.withLock({ afterFailure() }) && sticky { throw TaskOutputUnavailable(message: "test: still no leader") }
            try inner.storeCheckpoint(key: key, value: value, timestampMs: timestampMs)
        }

    }

    /// A broker with `src` (five batches of ten JSON records, ids 0..<50) and `dst`, and a stateless task
    /// copying one into the other through `output`, with no checkpoint on the way (an hour apart).
    static func setUp(_ harness: BrokerHarness, retryDelayMs: Int64 = 500,
                      _ makeOutput: (LocalTaskOutput) -> any TaskOutput) throws -> (ProcessorTaskRunner, Partition, NIOThreadPool) {
        let broker = harness.broker
        let source = try broker.registry.create(name: "src", partitions: 1, configs: [])
        let sink = try broker.registry.create(name: "dst", partitions: 1, configs: [])
        for batch in 0..<5 {
            let records = (0..<10).map { i in
                let id = batch * 10 + i
                return Record(offset: Int64(i), timestamp: 1_000, key: nil, value: Array("{\"id\":\(id),\"n\":\(id)}".utf8))
            }
            _ = try source.partitions[0].appendInternal(try RecordBatch.build(records: records))
        }
        let checkpoints = try broker.registry.partition(ProcessorManager.checkpointsTopic, 0)
        let sql = "INSERT INTO dst SELECT id, n FROM src"
        let definition = ProcessorDefinition(name: "p", sql: sql, state: .running, generation: 7, producerId: 9_000,
                                             createdMs: 0, startOffsets: [0])
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        // One batch read per step.
        let settings = ProcessorTaskRunner.Settings(limits: TaskLimits(stateBytesMax: 1 << 20), checkpointIntervalMs: 3_600_000,
                                                    idleTickMs: 200, readBytesMax: 1, retryDelayMs: retryDelayMs)
        var logger = Logger(label: "task")
        logger.logLevel = .error
        let runner = ProcessorTaskRunner(processor: "p", role: .query, source: source.partitions[0], startOffset: 0, taskCount: 1,
                                         definition: definition, plan: try ProcessorManager.bind(sql, options: .init()), settings: settings,
                                         outputs: .init(sink: sink, late: nil, repartition: nil),
                                         output: makeOutput(LocalTaskOutput(topics: [sink], checkpoints: checkpoints)), checkpoint: nil,
                                         pool: pool, eventLoop: harness.group.next(), logger: logger)
        return (runner, checkpoints, pool)
    }

    /// The stored checkpoint of task 0 and the ids in `dst`.
    static func stored(_ harness: BrokerHarness, _ checkpoints: Partition) async throws -> (TaskCheckpoint?, [String]) {
        var stored: TaskCheckpoint?
        try InternalTopic.replay(checkpoints) { key, value in
            guard let key, let (name, task) = TaskCheckpoint.decodeKey(key), name == "p", task == 0 else { return }
            stored = value.flatMap(TaskCheckpoint.decode)
        }
        let client = harness.client()
        let ids = try await ProduceFetchTests.fetchAll(client, topic: "dst").compactMap { record in
            String(decoding: record.value ?? [], as: UTF8.self).split(separator: ",").first.map(String.init)
        }
        await client.close()
        return (stored, ids)
    }

    @Test("stopped while waiting to retry, a task reads again up to where it had got and checkpoints there; no output twice")
    func stopDuringRetry() async throws {
        let harness = try await BrokerHarness.start("final-checkpoint")
        let failed = harness.group.next().makePromise(of: Void.self)
        // With one batch read per step, the third step's write fails. The retry waits an hour, so the stop
        // below surely comes within it, however slow the machine.
        let (runner, checkpoints, pool) = try Self.setUp(harness, retryDelayMs: 3_600_000) {
            FlakyOutput($0, failingCall: 3, failed: failed)
        }
        runner.schedule()
        try await failed.futureResult.get()
        // Within the retry pause: the task has read 30 records, stored the output of 20 and lost its state.
        runner.stop(becoming: .paused, checkpoint: true)

        let (stored, ids) = try await Self.stored(harness, checkpoints)
        let checkpoint = try #require(stored, "the stop wrote no checkpoint")
        #expect(checkpoint.generation == 7)
        #expect(checkpoint.inputOffset == 30, "checkpoint at \(checkpoint.inputOffset)")
        #expect(checkpoint.written[.init(topic: "dst", partition: 0)] == 30, "\(checkpoint.written)")
        #expect(ids.count == 30 && Set(ids).count == 30, "\(ids.count) outputs, \(Set(ids).count) distinct")
        try await pool.shutdownGracefully()
        await harness.stop()
    }

    /// In a cluster a task that has just taken over has not run yet; stopped for a pause, it reads on to
    /// the input's end, so that a replace goes on from where its predecessor may have got. Alone, a task
    /// that has not run leaves nothing.
    @Test("stopped before its first step, a task that may have taken over reads to the input's end and checkpoints there",
          arguments: [true, false])
    func stopBeforeFirstStep(takesOver: Bool) async throws {
        let harness = try await BrokerHarness.start("final-checkpoint-takeover")
        let never = harness.group.next().makePromise(of: Void.self)
        let (runner, checkpoints, pool) = try Self.setUp(harness) { FlakyOutput($0, failingCall: -1, failed: never, takesOverTasks: takesOver) }
        runner.stop(becoming: .paused, checkpoint: true)

        let (stored, ids) = try await Self.stored(harness, checkpoints)
        if takesOver {
            let checkpoint = try #require(stored, "the stop wrote no checkpoint")
            #expect(checkpoint.inputOffset == 50, "checkpoint at \(checkpoint.inputOffset)")
            #expect(ids.count == 50 && Set(ids).count == 50, "\(ids.count) outputs, \(Set(ids).count) distinct")
        } else {
            #expect(stored == nil && ids.isEmpty, "\(String(describing: stored)), \(ids.count) outputs")
        }
        never.succeed(())
        try await pool.shutdownGracefully()
        await harness.stop()
    }

    /// A reconcile stopping many tasks whose leaders cannot be reached shares one deadline among their
    /// final checkpoints; a stop whose deadline has passed gives up at once instead of waiting its own
    /// `finalCheckpointWaitMs` for a leader.
    @Test("a stop whose checkpoint deadline has passed calls no leader")
    func stopPastDeadline() async throws {
        let harness = try await BrokerHarness.start("final-checkpoint-deadline")
        let failed = harness.group.next().makePromise(of: Void.self)
        var flaky: FlakyOutput?
        let (runner, checkpoints, pool) = try Self.setUp(harness, retryDelayMs: 3_600_000) { inner in
            let output = FlakyOutput(inner, failingCall: 3, failed: failed, sticky: true, takesOverTasks: true)
            flaky = output
            return output
        }
        let output = try #require(flaky)
        runner.schedule()
        try await failed.futureResult.get()
        runner.stop(becoming: .paused, checkpoint: true, checkpointDeadlineMs: ProcessorTaskRunner.nowMs() - 1)

        #expect(output.triesSinceFailure == 0, "\(output.triesSinceFailure) calls to the leaders tried after the deadline")
        let (stored, ids) = try await Self.stored(harness, checkpoints)
        #expect(stored == nil && ids.count == 20, "\(String(describing: stored)), \(ids.count) outputs")
        try await pool.shutdownGracefully()
        await harness.stop()
    }
}
