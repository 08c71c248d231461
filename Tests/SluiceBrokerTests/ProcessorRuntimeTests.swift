import Foundation
import SluiceClient
import SluiceCore
import SluiceTestSupport
import SluiceWire
import Testing

@testable import SluiceBroker

/// The processor runtime in an in-process broker: results against a naive computation, repartitioning, and
/// exactly-once output when a task replays from an old checkpoint (storage-format/processors.md).
@Suite("processor runtime")
struct ProcessorRuntimeTests {
    static let query = """
        INSERT INTO totals SELECT user, COUNT(*) AS n, SUM(amount) AS total FROM events
        WHERE action = 'click' GROUP BY user, TUMBLE(ts, INTERVAL '1' SECOND) EMIT FINAL
        """

    struct Event {
        var user: String
        var click: Bool
        var amount: Int
        var ts: Int64

        var json: [UInt8] {
            Array("{\"user\":\"\(user)\",\"action\":\"\(click ? "click" : "view")\",\"amount\":\(amount),\"ts\":\(ts)}".utf8)
        }
    }

    /// Seeded events with non-decreasing times, then one far-future event per partition so every real
    /// window closes (the watermark is the minimum over source partitions).
    static func events(_ rng: inout SeededRandom, count: Int, users: Int) -> [Event] {
        var ts: Int64 = 1_000_000
        return (0..<count).map { _ in
            ts += Int64(rng.int(0...40))
            return Event(user: "u\(rng.int(0...(users - 1)))", click: rng.chance(0.7), amount: rng.int(1...9), ts: ts)
        }
    }

    /// (user, window start) → (count, sum) over clicks in windows that end before `closedBefore`.
    static func expected(_ events: [Event]) -> [String: [Int64]] {
        var results: [String: [Int64]] = [:]
        for event in events where event.click {
            let start = event.ts / 1000 * 1000
            let key = "\(event.user)@\(start)"
            let current = results[key] ?? [0, 0]
            results[key] = [current[0] + 1, current[1] + Int64(event.amount)]
        }
        return results
    }

    static func produce(_ client: SluiceClient, _ events: [Event], partitions: Int32, keyed: Bool, closing: Bool = true) async throws {
        let producer = Producer(client: client)
        for event in events {
            try await producer.enqueue(ProducerRecord(topic: "events", key: keyed ? Array(event.user.utf8) : nil, value: event.json))
        }
        for partition in 0..<partitions where closing {
            let end = Event(user: "end", click: false, amount: 0, ts: 1 << 40)
            try await producer.enqueue(ProducerRecord(topic: "events", value: end.json, partition: partition))
        }
        await producer.flush()
    }

    /// Every record of the sink as "user@window_start" → [n, total], counting duplicates.
    static func sink(_ client: SluiceClient, partitions: Int32) async throws -> (results: [String: [Int64]], duplicates: Int, count: Int) {
        var results: [String: [Int64]] = [:]
        var duplicates = 0
        var count = 0
        for partition in 0..<partitions {
            for record in try await ProduceFetchTests.fetchAll(client, topic: "totals", partition: partition) {
                count += 1
                guard let value = record.value,
                      let object = try JSONSerialization.jsonObject(with: Data(value)) as? [String: Any],
                      let user = object["user"] as? String, let start = object["window_start"] as? Int64,
                      let n = object["n"] as? Int64, let total = object["total"] as? Int64 else {
                    Issue.record("unexpected sink record \(String(decoding: record.value ?? [], as: UTF8.self))")
                    continue
                }
                let key = "\(user)@\(start)"
                if results[key] != nil { duplicates += 1 }
                results[key] = [n, total]
            }
        }
        return (results, duplicates, count)
    }

    /// Waits (bounded, 60 s) until `condition` holds.
    static func waitUntil(_ what: String, _ condition: () async throws -> Bool) async throws {
        if try await !pollUntil(timeoutMs: 60_000, condition) { Issue.record("timed out waiting: \(what)") }
    }

    /// Waits (bounded) until the processor has read all its input and the sink holds `count` records.
    static func waitForResults(_ client: SluiceClient, _ name: String, count: Int, partitions: Int32, context: String) async throws {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let description = try await client.describeProcessor(name)
            let caughtUp = description.tasks.allSatisfy { $0.lag == 0 && $0.state == "running" }
            if caughtUp, try await sink(client, partitions: partitions).count >= count { return }
            if let failed = description.tasks.first(where: { $0.state == "failed" }) {
                Issue.record("task failed: \(failed.lastError ?? "?") (\(context))")
                return
            }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        Issue.record("the processor did not produce \(count) results within 60 s (\(context))")
    }

    @Test("results equal a naive computation, with and without a repartition stage",
          arguments: [(Int32(1), true), (Int32(3), true), (Int32(3), false)])
    func matchesNaive(partitions: Int32, keyed: Bool) async throws {
        var rng = SeededRandom.fromEnvironment()
        let context = "partitions \(partitions), keyed \(keyed), seed \(rng.seed)"
        let harness = try await BrokerHarness.start("processor")
        let client = harness.client()
        try await client.createTopic("events", partitions: partitions)
        let events = Self.events(&rng, count: rng.int(2_000...6_000), users: 40)
        try await Self.produce(client, events, partitions: partitions, keyed: keyed)
        try await client.createProcessor(name: "p", sql: Self.query)
        let expected = Self.expected(events)
        try await Self.waitForResults(client, "p", count: expected.count, partitions: partitions, context: context)
        let got = try await Self.sink(client, partitions: partitions)
        #expect(got.duplicates == 0, "\(context)")
        #expect(got.results == expected, "\(got.results.count) results, expected \(expected.count) (\(context))")
        let repartition = ProcessorManager.repartitionTopicName("p")
        #expect((harness.broker.registry.topic(repartition) != nil) == (partitions > 1), "grouping by user repartitions a multi-partition source (\(context))")
        try await client.deleteProcessor("p")
        #expect(harness.broker.registry.topic(repartition) == nil, "delete leaves the repartition topic behind (\(context))")
        #expect(try await client.listProcessors().isEmpty, "\(context)")
        await client.close()
        await harness.stop()
    }

    @Test("a task replaying from its oldest checkpoint writes no result twice", arguments: [Int32(1), Int32(3)])
    func replayFromOldCheckpoint(partitions: Int32) async throws {
        var rng = SeededRandom.fromEnvironment()
        let context = "partitions \(partitions), seed \(rng.seed)"
        let harness = try await BrokerHarness.start("processor-replay") { config in
            config.processorCheckpointIntervalMs = 10
        }
        let client = harness.client()
        try await client.createTopic("events", partitions: partitions)
        let events = Self.events(&rng, count: 12_000, users: 50)
        try await client.createProcessor(name: "p", sql: Self.query)
        let checkpoints = try #require(harness.broker.registry.topic(ProcessorManager.checkpointsTopic)?.partitions.first)
        // In rounds, each processed and checkpointed before the next, so every task has several checkpoints.
        for round in 0..<4 {
            let chunk = Array(events[(round * 3_000)..<((round + 1) * 3_000)])
            // Read before producing: the tasks may process the chunk and checkpoint before produce returns.
            let before = checkpoints.log.logEndOffset
            try await Self.produce(client, chunk, partitions: partitions, keyed: false, closing: round == 3)
            try await Self.waitUntil("round \(round) checkpointed (\(context))") {
                let caughtUp = try await client.describeProcessor("p").tasks.allSatisfy { $0.lag == 0 }
                return caughtUp && checkpoints.log.logEndOffset > before
            }
        }
        let expected = Self.expected(events)
        try await Self.waitForResults(client, "p", count: expected.count, partitions: partitions, context: context)

        // Put each task's first checkpoint back as its latest, as if every later one had been lost: on
        // restart the tasks replay most of their input and regenerate results the sink already holds.
        var first: [[UInt8]: [UInt8]] = [:]
        var total = 0
        try InternalTopic.replay(checkpoints) { key, value in
            guard let key, let value else { return }
            total += 1
            if first[key] == nil { first[key] = value }
        }
        #expect(total > first.count, "expected several checkpoints per task, got \(total) for \(first.count) tasks (\(context))")
        for (key, value) in first {
            try InternalTopic.write(checkpoints, key: key, value: value, timestampMs: 0)
        }
        try await harness.restart()
        let restarted = harness.client()
        try await Self.waitForResults(restarted, "p", count: expected.count, partitions: partitions, context: context)
        let description = try await restarted.describeProcessor("p")
        #expect(description.tasks.allSatisfy { $0.lastError == nil }, "\(description.tasks) (\(context))")
        let got = try await Self.sink(restarted, partitions: partitions)
        #expect(got.duplicates == 0, "\(got.duplicates) duplicate results after the replay (\(context))")
        #expect(got.results == expected, "\(context)")
        await client.close()
        await restarted.close()
        await harness.stop()
    }

    @Test("a task that reaches its state limit pauses with the reason in describe; the broker goes on")
    func stateLimit() async throws {
        var rng = SeededRandom.fromEnvironment()
        let context = "seed \(rng.seed)"
        let harness = try await BrokerHarness.start("processor-limit") { config in
            config.processorStateBytesMax = 64 * 1024
        }
        let client = harness.client()
        try await client.createTopic("events", partitions: 1)
        // Thousands of users in one open window: far more state than 64 KiB.
        let events = (0..<5_000).map { index in Event(user: "user-\(index)-\(rng.int(0...9))", click: true, amount: 1, ts: 5_000) }
        try await Self.produce(client, events, partitions: 1, keyed: false, closing: false)
        try await client.createProcessor(name: "p", sql: Self.query)
        try await Self.waitUntil("the task to stop at its limit (\(context))") {
            try await client.describeProcessor("p").tasks.first?.state == "paused"
        }
        let description = try await client.describeProcessor("p")
        #expect(description.state == "paused", "\(context)")
        let error = description.tasks.first?.lastError ?? ""
        #expect(error.contains("state") && error.contains("limit"), "describe says: \(error) (\(context))")
        #expect((description.tasks.first?.inputOffset ?? 0) < Int64(events.count), "\(context)")
        // The broker still serves: a new topic and a produce work.
        try await client.createTopic("after", partitions: 1)
        #expect(try await client.listProcessors().map(\.state) == ["paused"], "\(context)")
        // With the limit raised the task carries on, and no record was lost to the pause.
        try await Self.produce(client, [], partitions: 1, keyed: false, closing: true)
        try await harness.restart { config in config.processorStateBytesMax = 64 << 20 }
        let restarted = harness.client()
        let expected = Self.expected(events)
        try await Self.waitForResults(restarted, "p", count: expected.count, partitions: 1, context: context)
        let got = try await Self.sink(restarted, partitions: 1)
        #expect(got.results == expected && got.duplicates == 0, "\(got.results.count) results, \(got.duplicates) duplicates (\(context))")
        await client.close()
        await restarted.close()
        await harness.stop()
    }

    @Test("create refuses a sink the broker would not create, and stores nothing")
    func refusedSink() async throws {
        let harness = try await BrokerHarness.start("processor-sink")
        let client = harness.client()
        try await client.createTopic("events", partitions: 1)
        await #expect(throws: SluiceClientError.self) {
            try await client.createProcessor(name: "p", sql: "INSERT INTO __mine SELECT * FROM events")
        }
        #expect(try await client.listProcessors().isEmpty)
        #expect(harness.broker.registry.topic("__mine") == nil)
        await client.close()
        await harness.stop()
    }

    @Test("a processor definition and a checkpoint round-trip; damaged bytes decode to nil or a value, never a crash")
    func recordsRoundTrip() {
        var rng = SeededRandom.fromEnvironment()
        let definition = ProcessorDefinition(name: "p", sql: Self.query, state: .paused, generation: 3, producerId: 4_000,
                                             createdMs: 1_700_000_000_000, startOffsets: [0, 17, 4], repartitionStartOffsets: [9, 9, 9])
        let bytes = definition.encodeValue()
        #expect(ProcessorDefinition.decode(name: "p", value: bytes) == definition)
        let checkpoint = TaskCheckpoint(generation: 3, inputOffset: 1234, written: [.init(topic: "totals", partition: 2): 77,
                                                                                   .init(topic: "late", partition: 0): 1],
                                        engine: rng.bytes(300))
        let encoded = checkpoint.encodeValue()
        #expect(TaskCheckpoint.decode(encoded) == checkpoint)
        #expect(TaskCheckpoint.decodeKey(TaskCheckpoint.key(processor: "p", partition: 5)).map { "\($0.0)/\($0.1)" } == "p/5")
        for cut in 0..<bytes.count { #expect(ProcessorDefinition.decode(name: "p", value: Array(bytes[..<cut])) == nil, "prefix \(cut)") }
        for cut in 0..<encoded.count { #expect(TaskCheckpoint.decode(Array(encoded[..<cut])) == nil, "prefix \(cut)") }
        for _ in 0..<500 {
            var damaged = rng.chance(0.5) ? bytes : encoded
            damaged[rng.int(0...(damaged.count - 1))] ^= UInt8(rng.int(1...255))
            _ = ProcessorDefinition.decode(name: "p", value: damaged)
            _ = TaskCheckpoint.decode(damaged)
        }
    }

    @Test("repartition headers: a record and a marker read back; foreign headers are not ours")
    func repartitionHeaders() throws {
        let records = [
            Record(offset: 0, timestamp: 5, key: Array("k".utf8), value: Array("{}".utf8), headers: RepartitionHeaders.record(partition: 2, offset: 99)),
            Record(offset: 1, timestamp: 6, key: nil, value: nil, headers: RepartitionHeaders.marker(partition: 1, eventTimeMs: -7)),
            Record(offset: 2, timestamp: 7, key: nil, value: Array("x".utf8), headers: [RecordHeader(key: "other", value: [1, 2, 3])]),
        ]
        let batch = try RecordBatch.build(records: records)
        var entries: [RepartitionHeaders.Entry?] = []
        try batch.bytes.withUnsafeBytes { raw in
            let header = try RecordBatch.validate(raw)
            try RecordBatch.visitRecords(section: UnsafeRawBufferPointer(rebasing: raw[RecordBatchHeader.size...]), header: header) {
                entries.append(RepartitionHeaders.parse($0))
            }
        }
        #expect(entries == [.record(partition: 2, offset: 99), .marker(partition: 1, eventTimeMs: -7), nil])
    }
}
