import Foundation
import SluiceClient
import SluiceCore
import SluiceLog
import SluiceTestSupport
import SluiceWire
import Testing

@testable import SluiceBroker

/// Control batches (a new leader's no-op entry) interleaved with data: every reader of user data passes
/// over them, offsets move past them, and nothing that keeps state from the log mistakes them for data
/// (storage-format/record-batch.md, "Control batches").
@Suite("control batches are skipped")
struct ControlBatchSkipTests {
    /// One batch of a seeded log layout.
    enum Planned {
        case data(count: Int)
        case marker(leader: Int32)
    }

    /// `batches` batches: a marker first (a first leader's log starts with one), a marker last (so the
    /// end of the log is a control batch), runs of two markers in between, the rest data of 1 to 4 records.
    static func plan(_ random: inout SeededRandom, batches: Int) -> [Planned] {
        var plan: [Planned] = [.marker(leader: 1)]
        while plan.count < batches - 1 {
            plan.append(random.chance(0.3) ? .marker(leader: Int32(random.int(1...3))) : .data(count: random.int(1...4)))
        }
        plan.append(.marker(leader: 2))
        return plan
    }

    /// A data record as the tests expect it back.
    struct Expected: Hashable, CustomStringConvertible {
        var offset: Int64
        var value: String
        var description: String { "\(offset):\(value)" }
    }

    /// Appends `plan` to `partition` (data values name their offset); returns the data records and the
    /// log end offset.
    static func populate(_ partition: Partition, _ plan: [Planned]) throws -> (records: [Expected], end: Int64) {
        var expected: [Expected] = []
        for (index, planned) in plan.enumerated() {
            let base = partition.log.logEndOffset
            switch planned {
            case .marker(let leader):
                let info = try partition.appendInternal(RecordBatch.leaderChangeMarker(leader: leader, term: Int32(index), timestamp: 1_000))
                #expect(info.firstOffset == base && info.lastOffset == base, "a marker takes exactly one offset")
            case .data(let count):
                let records = (0..<count).map { i in
                    Record(offset: Int64(i), timestamp: 2_000, key: nil, value: Array("{\"n\":\(base + Int64(i))}".utf8))
                }
                _ = try partition.appendInternal(try RecordBatch.build(records: records))
                expected += (0..<count).map { Expected(offset: base + Int64($0), value: "{\"n\":\(base + Int64($0))}") }
            }
        }
        return (expected, partition.log.logEndOffset)
    }

    @Test("consumer: exactly the data records at their true offsets; the position passes a trailing control batch")
    func consumerSkipsControlBatches() async throws {
        var random = SeededRandom.fromEnvironment()
        let harness = try await BrokerHarness.start("control-consumer")
        let client = harness.client()
        try await client.createTopic("t", partitions: 1)
        let partition = try #require(harness.broker.registry.topic("t")?.partitions.first)
        let plan = Self.plan(&random, batches: 30)
        let (expected, end) = try Self.populate(partition, plan)
        let context = "seed \(random.seed), plan \(plan)"

        var config = ConsumerConfig()
        config.partitionFetchMaxBytes = 1  // one batch per fetch, so some polls fetch a lone marker
        let consumer = Consumer(client: client, config: config)
        let key = TopicPartitionKey(topic: "t", partition: 0)
        try await consumer.assign([key: .earliest])
        var got: [Expected] = []
        var emptyPollsThatMoved = 0
        for _ in 0..<(plan.count + 5) {
            let before = await consumer.assignment[key] ?? -1
            let records = try await consumer.poll()
            got += records.map { Expected(offset: $0.offset, value: String(decoding: $0.value ?? [], as: UTF8.self)) }
            if records.isEmpty, (await consumer.assignment[key] ?? -1) > before { emptyPollsThatMoved += 1 }
            if await consumer.reachedEnd { break }
        }
        #expect(got == expected, "\(context)")
        #expect(await consumer.assignment[key] == end, "the position stops short of the trailing marker (\(context))")
        #expect(await consumer.reachedEnd, "\(context)")
        #expect(emptyPollsThatMoved > 0, "no poll fetched only a marker (\(context))")
        await client.close()
        await harness.stop()
    }

    @Test("internal topic replay ignores control batches, even one whose key equals a stored key")
    func internalTopicReplay() async throws {
        let harness = try await BrokerHarness.start("control-replay")
        let topic = try InternalTopic.open("__control_test", partitions: 1, registry: harness.broker.registry)
        let partition = try #require(topic.partitions.first)
        // The leader-change key is 00 00 00 02: a real key with the same bytes must keep its own value.
        let clashing = ControlRecord.key(.leaderChange)
        _ = try partition.appendInternal(RecordBatch.leaderChangeMarker(leader: 1, term: 1, timestamp: 0))
        try InternalTopic.write(partition, key: clashing, value: Array("kept".utf8), timestampMs: 1)
        try InternalTopic.write(partition, key: Array("a".utf8), value: Array("1".utf8), timestampMs: 1)
        _ = try partition.appendInternal(RecordBatch.leaderChangeMarker(leader: 2, term: 2, timestamp: 2))
        try InternalTopic.write(partition, key: Array("a".utf8), value: nil, timestampMs: 3)
        _ = try partition.appendInternal(RecordBatch.leaderChangeMarker(leader: 3, term: 3, timestamp: 4))

        var store: [[UInt8]: [UInt8]] = [:]
        var seen: [String] = []
        let count = try InternalTopic.replay(partition) { key, value in
            guard let key else { return }
            seen.append(String(decoding: key, as: UTF8.self))
            store[key] = value
        }
        #expect(count == 3, "replay read \(count) records; the log holds 3 data records and 3 markers")
        #expect(store == [clashing: Array("kept".utf8)], "\(store)")
        #expect(seen.count == 3)
        await harness.stop()
    }

    @Test("committed offsets load across control batches in __consumer_offsets")
    func groupOffsetsLoad() async throws {
        let harness = try await BrokerHarness.start("control-offsets")
        let client = harness.client()
        try await client.createTopic("t", partitions: 2)
        let offsets = try #require(harness.broker.registry.topic(GroupCoordinator.offsetsTopic))
        let first = TopicPartitionKey(topic: "t", partition: 0)
        let second = TopicPartitionKey(topic: "t", partition: 1)
        try await client.commitOffsets(group: "g", offsets: [first: 5, second: 7])
        for partition in offsets.partitions {
            _ = try partition.appendInternal(RecordBatch.leaderChangeMarker(leader: 1, term: 4, timestamp: 0))
        }
        try await client.commitOffsets(group: "g", offsets: [second: 9])
        await client.close()
        try await harness.restart()
        let restarted = harness.client()
        let loaded = try await restarted.fetchOffsets(group: "g")
        #expect(loaded[first] == 5 && loaded[second] == 9, "\(loaded)")
        await restarted.close()
        await harness.stop()
    }

    static func dataBatch(producer: Int64, epoch: Int16, sequence: Int32, count: Int) throws -> RecordBatch {
        let records = (0..<count).map { Record(offset: Int64($0), timestamp: 0, key: nil, value: [UInt8($0)]) }
        return try RecordBatch.build(records: records, producerId: producer, producerEpoch: epoch, baseSequence: sequence)
    }

    @Test("producer state: a control batch neither creates, advances nor fences an entry")
    func producerStateTable() throws {
        var table = ProducerStateTable()
        let marker = RecordBatch.leaderChangeMarker(leader: 1, term: 3, timestamp: 0).header
        table.record(marker, firstOffset: 0, lastOffset: 0)
        #expect(table.producers.isEmpty)
        let first = try Self.dataBatch(producer: 7, epoch: 0, sequence: 0, count: 3).header
        table.record(first, firstOffset: 1, lastOffset: 3)
        // A control batch carrying producer fields (a later control type might): still not producer state,
        // so it does not fence epoch 0 with epoch 1 or move the expected sequence.
        var stamped = marker
        (stamped.producerId, stamped.producerEpoch, stamped.baseSequence) = (7, 1, 0)
        #expect(table.check(stamped) == .append)
        table.record(stamped, firstOffset: 4, lastOffset: 4)
        #expect(table.producers[7]?.epoch == 0 && table.producers[7]?.batches.count == 1)
        #expect(table.check(try Self.dataBatch(producer: 7, epoch: 0, sequence: 3, count: 2).header) == .append)
        #expect(table.check(first) == .duplicate(firstOffset: 1, lastOffset: 3))
    }

    @Test("producer state through a partition: sequences continue across a marker; a rebuild from the log agrees")
    func producerStateThroughPartition() async throws {
        let harness = try await BrokerHarness.start("control-producers")
        let client = harness.client()
        try await client.createTopic("t", partitions: 1)
        let partition = try #require(harness.broker.registry.topic("t")?.partitions.first)
        let first = try Self.dataBatch(producer: 7, epoch: 0, sequence: 0, count: 3)
        _ = try partition.appendWithoutWaiting(first, header: first.header)
        _ = try partition.appendInternal(RecordBatch.leaderChangeMarker(leader: 1, term: 2, timestamp: 0))
        let second = try Self.dataBatch(producer: 7, epoch: 0, sequence: 3, count: 2)
        let (outcome, _) = try partition.appendWithoutWaiting(second, header: second.header)
        #expect(outcome.firstOffset == 4 && outcome.lastOffset == 5, "the marker takes offset 3")
        // A retry of the first batch is still recognised, with its own offsets.
        let (retry, _) = try partition.appendWithoutWaiting(first, header: first.header)
        #expect(retry.firstOffset == 0 && retry.lastOffset == 2)
        #expect(partition.recordsWritten(producerId: 7, epoch: 0) == 5)
        // No snapshot exists while the broker runs: this rebuilds from every batch header, markers included.
        try partition.loadProducerState()
        #expect(partition.recordsWritten(producerId: 7, epoch: 0) == 5)
        await client.close()
        await harness.stop()
    }

    @Test("processor task: output is exactly the data records; its input offset passes the trailing marker")
    func processorSkipsControlBatches() async throws {
        var random = SeededRandom.fromEnvironment()
        let harness = try await BrokerHarness.start("control-processor")
        let client = harness.client()
        try await client.createTopic("src", partitions: 1)
        let source = try #require(harness.broker.registry.topic("src")?.partitions.first)
        let plan = Self.plan(&random, batches: 20)
        let (expected, end) = try Self.populate(source, plan)
        let context = "seed \(random.seed), plan \(plan)"
        try await client.createProcessor(name: "p", sql: "INSERT INTO out SELECT n FROM src")
        try await ProcessorRuntimeTests.waitUntil("the task read to the end (\(context))") {
            try await client.describeProcessor("p").tasks.allSatisfy { $0.lag == 0 && $0.inputOffset == end }
        }
        // Each output value is {"n": the offset of the data record it came from}.
        let output = try await ProduceFetchTests.fetchAll(client, topic: "out")
        let numbers = output.map { record -> Int64? in
            let object = try? JSONSerialization.jsonObject(with: Data(record.value ?? [])) as? [String: Any]
            return object?["n"] as? Int64
        }
        #expect(numbers == expected.map(\.offset), "\(context)")
        // A marker fed to the query would count as input (and as invalid: its value is not JSON).
        let tasks = try await client.describeProcessor("p").tasks
        #expect(tasks.allSatisfy { $0.recordsIn == Int64(expected.count) && $0.recordsInvalid == 0 }, "\(tasks) (\(context))")
        #expect(tasks.allSatisfy { $0.lastError == nil && $0.state == "running" }, "\(tasks) (\(context))")
        await client.close()
        await harness.stop()
    }

    @Test("sluice-log dump labels a control batch and prints no data record for it; verify accepts it")
    func logToolDump() throws {
        let directory = TemporaryDirectory("control-dump")
        defer { directory.remove() }
        let log = try PartitionLog.open(directory: directory.child("p0"))
        _ = try log.append(RecordBatch.leaderChangeMarker(leader: 2, term: 1, timestamp: 0))
        // Stamped with the marker's term, as a leader stamps what it appends (verify checks epochs never fall).
        _ = try log.append(try RecordBatch.build(records: [Record(timestamp: 5, key: nil, value: Array("data".utf8))]), leaderEpoch: 1)
        try log.close()

        let dump = try Self.runLogTool(["dump", directory.child("p0"), "--records"])
        #expect(dump.status == 0, "\(dump.output)")
        let lines = dump.output.split(separator: "\n").map(String.init)
        #expect(lines.contains("    control: leader change, leader 2"), "\(dump.output)")
        #expect(!lines.contains { $0.contains("record offset=0") }, "the marker is printed as data: \(dump.output)")
        #expect(lines.contains { $0.contains("record offset=1") && $0.contains("value=\"data\"") }, "\(dump.output)")
        #expect(lines.last?.contains("2 batches (1 control), 1 records") == true, "\(dump.output)")
        let verify = try Self.runLogTool(["verify", directory.child("p0")])
        #expect(verify.status == 0, "\(verify.output)")
    }

    /// Runs the built `sluice-log` with `arguments`; returns its exit status and standard output.
    static func runLogTool(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: builtProductsDirectory() + "/sluice-log")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The dump of two batches is a few hundred bytes: read to EOF, then reap.
        let bytes = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: bytes, as: UTF8.self))
    }
}
