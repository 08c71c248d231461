import NIOCore
import SluiceClient
import SluiceCompression
import SluiceCore
import SluiceTestSupport
import SluiceWire
import Testing

@testable import SluiceBroker

/// Produce, fetch, list offsets and idempotent retries through the wire protocol against an in-process broker.
@Suite("produce and fetch")
struct ProduceFetchTests {
    static func batch(_ values: [String], producerId: Int64 = -1, epoch: Int16 = -1, sequence: Int32 = -1,
                      codec: CompressionCodec = .none) throws -> ByteBuffer {
        let records = values.enumerated().map { index, value in
            Record(offset: Int64(index), timestamp: 1_700_000_000_000 + Int64(index), key: Array("k\(index)".utf8), value: Array(value.utf8))
        }
        let batch = try RecordBatch.build(records: records, codec: codec, producerId: producerId, producerEpoch: epoch, baseSequence: sequence)
        return ByteBuffer(bytes: batch.bytes)
    }

    static func produce(_ client: SluiceClient, topic: String, partition: Int32 = 0, _ records: ByteBuffer) async throws -> ProduceResponse.Partition {
        let request = ProduceRequest(acks: .all, timeoutMs: 10_000, topics: [.init(name: topic, partitions: [.init(partition: partition, records: records)])])
        let response = try await client.send(.produce, request, expecting: ProduceResponse.self)
        return try #require(response.topics.first?.partitions.first)
    }

    static func fetchAll(_ client: SluiceClient, topic: String, partition: Int32 = 0, from offset: Int64 = 0) async throws -> [ConsumerRecord] {
        let request = FetchRequest(maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 24, topics: [
            .init(name: topic, partitions: [.init(partition: partition, fetchOffset: offset, partitionMaxBytes: 1 << 24)]),
        ])
        let response = try await client.send(.fetch, request, expecting: FetchResponse.self)
        let fetched = try #require(response.topics.first?.partitions.first)
        #expect(fetched.head.error == .none, "\(fetched.head.errorMessage ?? "")")
        var records: [ConsumerRecord] = []
        _ = try Consumer.decode(fetched.records, key: TopicPartitionKey(topic: topic, partition: partition), from: offset, into: &records)
        return records
    }

    @Test("produced batches come back byte-identical in value, with offsets assigned in order")
    func roundTrip() async throws {
        let harness = try await BrokerHarness.start()
        let client = harness.client()
        try await client.createTopic("t", partitions: 2)
        for codec in [CompressionCodec.none, .lz4, .zstd] {
            let answer = try await Self.produce(client, topic: "t", partition: 1, try Self.batch(["a-\(codec)", "b-\(codec)", "c-\(codec)"], codec: codec))
            #expect(answer.error == .none, "\(answer.errorMessage ?? "")")
        }
        let records = try await Self.fetchAll(client, topic: "t", partition: 1)
        #expect(records.map(\.offset) == Array(0..<9))
        #expect(records.map { String(decoding: $0.value ?? [], as: UTF8.self) }
                == ["a-none", "b-none", "c-none", "a-lz4", "b-lz4", "c-lz4", "a-zstd", "b-zstd", "c-zstd"])
        let latest = try await client.listOffsets(topic: "t", partitions: [0, 1], timestamp: ListOffsetsRequest.latestTimestamp)
        #expect(latest == [0: 0, 1: 9])
        let byTime = try await client.listOffsets(topic: "t", partitions: [1], timestamp: 1_700_000_000_001)
        #expect(byTime[1] == 1)
        await client.close()
        await harness.stop()
    }

    @Test("a retried idempotent batch is stored once, also after a restart; gaps and old epochs are refused")
    func idempotentRetry() async throws {
        let harness = try await BrokerHarness.start()
        var client = harness.client()
        try await client.createTopic("idem", partitions: 1)
        let (producerId, epoch) = try await client.initProducerId()
        let first = try Self.batch(["one", "two"], producerId: producerId, epoch: epoch, sequence: 0)
        let stored = try await Self.produce(client, topic: "idem", first)
        let retried = try await Self.produce(client, topic: "idem", first)
        #expect(stored.error == .none && retried.error == .none)
        #expect(retried.baseOffset == stored.baseOffset)
        let second = try await Self.produce(client, topic: "idem", try Self.batch(["three"], producerId: producerId, epoch: epoch, sequence: 2))
        #expect(second.baseOffset == 2)
        #expect(try await Self.fetchAll(client, topic: "idem").count == 3)

        // The producer state is rebuilt from the log: the same retry after a restart is still a duplicate.
        await client.close()
        try await harness.restart()
        client = harness.client()
        let afterRestart = try await Self.produce(client, topic: "idem", first)
        #expect(afterRestart.error == .none && afterRestart.baseOffset == stored.baseOffset)
        #expect(try await Self.fetchAll(client, topic: "idem").count == 3)

        let gap = try await Self.produce(client, topic: "idem", try Self.batch(["lost?"], producerId: producerId, epoch: epoch, sequence: 7))
        #expect(gap.error == .outOfOrderSequence)
        #expect(gap.errorMessage?.contains("expected 3") == true)

        let (_, bumped) = try await client.initProducerId(existing: producerId, epoch: epoch)
        #expect(bumped == epoch + 1)
        let fresh = try await Self.produce(client, topic: "idem", try Self.batch(["new epoch"], producerId: producerId, epoch: bumped, sequence: 0))
        #expect(fresh.error == .none)
        let zombie = try await Self.produce(client, topic: "idem", try Self.batch(["old epoch"], producerId: producerId, epoch: epoch, sequence: 3))
        #expect(zombie.error == .invalidProducerEpoch)
        #expect(try await Self.fetchAll(client, topic: "idem").count == 4)
        await client.close()
        await harness.stop()
    }

    @Test("the Producer retries and batches: every record is stored exactly once, per-key order kept")
    func producerClient() async throws {
        let harness = try await BrokerHarness.start()
        let client = harness.client()
        try await client.createTopic("p", partitions: 3)
        var config = ProducerConfig()
        config.lingerMs = 1
        config.batchBytes = 2048
        let producer = Producer(client: client, config: config)
        for index in 0..<3000 {
            try await producer.enqueue(ProducerRecord(topic: "p", key: Array("key-\(index % 17)".utf8), value: Array("v\(index)".utf8)))
        }
        await producer.flush()
        var seen: [String: [Int]] = [:]
        var total = 0
        for partition: Int32 in 0..<3 {
            for record in try await Self.fetchAll(client, topic: "p", partition: partition) {
                let key = String(decoding: record.key ?? [], as: UTF8.self)
                let value = Int(String(decoding: (record.value ?? []).dropFirst(), as: UTF8.self)) ?? -1
                seen[key, default: []].append(value)
                #expect(Partitioner.partition(forKey: record.key ?? [], partitionCount: 3) == partition)
                total += 1
            }
        }
        #expect(total == 3000)
        for (key, values) in seen { #expect(values == values.sorted(), "key \(key) out of order") }
        await client.close()
        await harness.stop()
    }

    @Test("a long-polling fetch is woken by an append instead of waiting out its max wait")
    func longPoll() async throws {
        let harness = try await BrokerHarness.start()
        let client = harness.client()
        try await client.createTopic("lp", partitions: 1)
        // The client gives up after 10 s; the fetch may wait 30 s: only a wake-up on append passes.
        let waiting = Task {
            let request = FetchRequest(maxWaitMs: 30_000, minBytes: 1, maxBytes: 1 << 20, topics: [
                .init(name: "lp", partitions: [.init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20)]),
            ])
            return try await client.send(.fetch, request, expecting: FetchResponse.self, timeoutMs: 10_000)
        }
        let producerClient = harness.client()
        // Produce on a second connection (the first one's replies queue behind the waiting fetch).
        _ = try await Self.produce(producerClient, topic: "lp", try Self.batch(["wake"]))
        let response = try await waiting.value
        let partition = try #require(response.topics.first?.partitions.first)
        #expect(partition.records.readableBytes > 0)
        await client.close()
        await producerClient.close()
        await harness.stop()
    }

    @Test("topic configs: alter, describe, reset to default, and refusal of bad values")
    func configs() async throws {
        let harness = try await BrokerHarness.start()
        let client = harness.client()
        try await client.createTopic("c", partitions: 1, configs: ["retention.ms": "60000"])
        try await client.alterTopic("c", configs: ["flush.policy": "interval", "flush.interval.ms": "200"])
        var described = try await client.describeTopic("c")
        let values = Dictionary(uniqueKeysWithValues: described.configs.map { ($0.key, $0) })
        #expect(values["retention.ms"]?.value == "60000" && values["retention.ms"]?.isDefault == false)
        #expect(values["flush.policy"]?.value == "interval")
        let log = try harness.broker.registry.partition("c", 0).log
        #expect(log.config.flushPolicy == .interval(milliseconds: 200))
        try await client.alterTopic("c", configs: ["retention.ms": nil])
        described = try await client.describeTopic("c")
        #expect(described.configs.first { $0.key == "retention.ms" }?.isDefault == true)
        await #expect(throws: SluiceClientError.self) { try await client.alterTopic("c", configs: ["flush.policy": "sometimes"]) }
        do {
            try await client.alterTopic("c", configs: ["nonsense.key": "1"])
            Issue.record("an unknown key was accepted")
        } catch let error as SluiceClientError {
            #expect(error.code == .invalidConfig && error.message.contains("nonsense.key"))
        }
        // Settings survive a restart.
        try await harness.restart()
        let again = harness.client()
        #expect(try await again.describeTopic("c").configs.first { $0.key == "flush.policy" }?.value == "interval")
        await client.close()
        await again.close()
        await harness.stop()
    }

    @Test("a topic's compression.type re-encodes batches with its codec, keeping records and producer fields")
    func compressionType() async throws {
        let harness = try await BrokerHarness.start()
        let client = harness.client()
        try await client.createTopic("z", partitions: 1, configs: ["compression.type": "zstd"])
        let (producerId, epoch) = try await client.initProducerId()
        let answer = try await Self.produce(client, topic: "z", try Self.batch(["x", "y"], producerId: producerId, epoch: epoch, sequence: 0))
        #expect(answer.error == .none, "\(answer.errorMessage ?? "")")
        let log = try harness.broker.registry.partition("z", 0).log
        let stored = try log.read(from: 0, maxBytes: 1 << 20)
        let header = try stored.bytes.withUnsafeBytes { try RecordBatch.validate($0) }
        #expect(header.codec == .zstd)
        #expect(header.producerId == producerId && header.baseSequence == 0)
        #expect(try await Self.fetchAll(client, topic: "z").map { String(decoding: $0.value ?? [], as: UTF8.self) } == ["x", "y"])
        // A retry of the same (uncompressed) batch is still recognised as a duplicate.
        let retry = try await Self.produce(client, topic: "z", try Self.batch(["x", "y"], producerId: producerId, epoch: epoch, sequence: 0))
        #expect(retry.baseOffset == answer.baseOffset)
        #expect(try await Self.fetchAll(client, topic: "z").count == 2)
        await client.close()
        await harness.stop()
    }

    @Test("lowering max.message.bytes refuses new large batches but keeps the stored ones, across a restart")
    func loweringMaxMessageBytesKeepsData() async throws {
        let harness = try await BrokerHarness.start()
        var client = harness.client()
        try await client.createTopic("m", partitions: 1)
        let big = String(repeating: "v", count: 3000)
        for index in 0..<3 {
            let answer = try await Self.produce(client, topic: "m", try Self.batch(["\(index)" + big]))
            #expect(answer.error == .none)
        }
        try await client.alterTopic("m", configs: ["max.message.bytes": "1024"])
        let refused = try await Self.produce(client, topic: "m", try Self.batch(["late" + big]))
        #expect(refused.error == .messageTooLarge)
        #expect(try await Self.fetchAll(client, topic: "m").count == 3)
        await client.close()
        try await harness.restart()
        client = harness.client()
        #expect(try await Self.fetchAll(client, topic: "m").count == 3)
        await client.close()
        await harness.stop()
    }

    @Test("a produce request with one bad batch stores none of its batches")
    func requestRefusedWhole() async throws {
        let harness = try await BrokerHarness.start()
        let client = harness.client()
        try await client.createTopic("w", partitions: 1)
        var records = try Self.batch(["good"])
        var bad = try Self.batch(["bad"])
        bad.setInteger(UInt8(0xFF), at: bad.writerIndex - 1)  // breaks the CRC
        records.writeBuffer(&bad)
        let answer = try await Self.produce(client, topic: "w", records)
        #expect(answer.error == .corruptMessage)
        #expect(try await client.listOffsets(topic: "w", partitions: [0], timestamp: ListOffsetsRequest.latestTimestamp)[0] == 0)
        await client.close()
        await harness.stop()
    }

    @Test("once a fetch's byte budget is spent, further partitions answer empty")
    func fetchBudget() async throws {
        let harness = try await BrokerHarness.start()
        let client = harness.client()
        try await client.createTopic("f", partitions: 4)
        for partition: Int32 in 0..<4 {
            _ = try await Self.produce(client, topic: "f", partition: partition, try Self.batch([String(repeating: "x", count: 500)]))
        }
        let request = FetchRequest(maxWaitMs: 0, minBytes: 0, maxBytes: 1, topics: [
            .init(name: "f", partitions: (0..<4).map { .init(partition: $0, fetchOffset: 0, partitionMaxBytes: 1 << 20) }),
        ])
        let response = try await client.send(.fetch, request, expecting: FetchResponse.self)
        let sizes = response.topics.first?.partitions.map(\.records.readableBytes) ?? []
        #expect(sizes.count == 4)
        #expect(sizes.first ?? 0 > 0, "the first batch is always sent")
        #expect(sizes.dropFirst().allSatisfy { $0 == 0 }, "\(sizes)")
        await client.close()
        await harness.stop()
    }

    @Test("after a batch fails for good, the producer continues under a new producer id instead of failing forever")
    func producerRecoversFromPermanentFailure() async throws {
        let harness = try await BrokerHarness.start()
        let client = harness.client()
        try await client.createTopic("r", partitions: 1, configs: ["max.message.bytes": "1024"])
        var config = ProducerConfig()
        config.retryBackoffMs = 1
        let producer = Producer(client: client, config: config)
        func send(_ size: Int) async -> Result<RecordMetadata, SluiceClientError> {
            do {
                return .success(try await producer.send(ProducerRecord(topic: "r", value: Array(repeating: 0x61, count: size), partition: 0)))
            } catch let error as SluiceClientError {
                return .failure(error)
            } catch {
                return .failure(SluiceClientError(.invalidArgument, "\(error)"))
            }
        }
        #expect((try? (await send(10)).get()) != nil)
        guard case .failure(let tooLarge) = await send(5000) else {
            Issue.record("a batch above max.message.bytes was accepted")
            return
        }
        #expect(tooLarge.code == .messageTooLarge)
        for _ in 0..<3 {
            let result = await send(10)
            #expect((try? result.get()) != nil, "\(result)")
        }
        #expect(try await Self.fetchAll(client, topic: "r").count == 4)
        await client.close()
        await harness.stop()
    }

    @Test("keyless records move on to the next partition with every batch, also when sent one by one")
    func stickySpreadsKeylessRecords() async throws {
        let harness = try await BrokerHarness.start()
        let client = harness.client()
        try await client.createTopic("k", partitions: 3)
        let producer = Producer(client: client)
        for index in 0..<30 { _ = try await producer.send(ProducerRecord(topic: "k", value: Array("r\(index)".utf8))) }
        var counts: [Int] = []
        for partition: Int32 in 0..<3 { counts.append(try await Self.fetchAll(client, topic: "k", partition: partition).count) }
        #expect(counts.reduce(0, +) == 30)
        #expect(counts.allSatisfy { $0 == 10 }, "\(counts)")
        await client.close()
        await harness.stop()
    }
}
