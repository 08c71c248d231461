import NIOCore
import SluiceClient
import SluiceCore
import SluiceTestSupport
import SluiceWire
import Testing

@testable import SluiceBroker

/// BrokerProduce (21) and DescribeProducers (22), protocol.md "Broker writes", against in-process brokers.
@Suite("broker writes: BrokerProduce and DescribeProducers")
struct BrokerProduceTests {
    static func produce(_ client: SluiceClient, _ api: ApiKey, topic: String, partition: Int32 = 0,
                        _ records: ByteBuffer) async throws -> ProduceResponse.Partition {
        let request = ProduceRequest(acks: .all, timeoutMs: 10_000, topics: [.init(name: topic, partitions: [.init(partition: partition, records: records)])])
        let response = try await client.send(api, request, expecting: ProduceResponse.self)
        return try #require(response.topics.first?.partitions.first)
    }

    static func describe(_ client: SluiceClient, timeoutMs: Int32 = 5_000,
                         _ entries: [DescribeProducersRequest.Partition]) async throws -> [DescribeProducersResponse.Partition] {
        let response = try await client.send(.describeProducers, DescribeProducersRequest(timeoutMs: timeoutMs, partitions: entries),
                                             expecting: DescribeProducersResponse.self)
        return response.partitions
    }

    /// `count` records numbered from `first`, stamped with the producer's sequence `first`.
    static func idempotentBatch(_ first: Int, _ count: Int, producerId: Int64, epoch: Int16) throws -> ByteBuffer {
        try ProduceFetchTests.batch((first..<first + count).map { "v\($0)" }, producerId: producerId, epoch: epoch, sequence: Int32(first))
    }

    @Test("a broker alone refuses BrokerProduce (its tasks write directly) and Produce to an internal topic")
    func brokerProduceAlone() async throws {
        let harness = try await BrokerHarness.start()
        let client = harness.client()
        let topic = ProcessorManager.checkpointsTopic
        #expect(harness.broker.registry.topic(topic) != nil, "the broker creates \(topic) at start")
        let refused = try await Self.produce(client, .produce, topic: topic, try ProduceFetchTests.batch(["client"]))
        #expect(refused.error == .invalidTopic, "\(refused.errorMessage ?? "")")
        #expect(refused.errorMessage?.contains("internal topic") == true)
        await #expect(throws: SluiceClientError.self) {
            _ = try await Self.produce(client, .brokerProduce, topic: topic, try ProduceFetchTests.batch(["broker"]))
        }
        await client.close()
        await harness.stop()
    }

    @Test("DescribeProducers counts an idempotent producer's records at its current epoch, in request order")
    func describeProducersCounts() async throws {
        let harness = try await BrokerHarness.start()
        let client = harness.client()
        try await client.createTopic("dp", partitions: 2)
        let (producerId, epoch) = try await client.initProducerId()
        for first in [0, 5] {
            let answer = try await Self.produce(client, .produce, topic: "dp", try Self.idempotentBatch(first, 5, producerId: producerId, epoch: epoch))
            #expect(answer.error == .none, "\(answer.errorMessage ?? "")")
        }
        let entries: [DescribeProducersRequest.Partition] = [
            .init(topic: "dp", partition: 0, producerId: producerId),
            .init(topic: "dp", partition: 1, producerId: producerId),
            .init(topic: "dp", partition: 0, producerId: producerId + 500),
            .init(topic: "nope", partition: 0, producerId: producerId),
            .init(topic: "dp", partition: 7, producerId: producerId),
            .init(topic: "dp", partition: 0, producerId: -1),
        ]
        let answers = try await Self.describe(client, entries)
        #expect(answers.map(\.topic) == entries.map(\.topic) && answers.map(\.partition) == entries.map(\.partition), "request order")
        guard answers.count == entries.count else { return }
        #expect(answers[0] == .init(topic: "dp", partition: 0, producerEpoch: epoch, recordsWritten: 10))
        #expect(answers[1] == .init(topic: "dp", partition: 1, producerEpoch: -1, recordsWritten: 0), "no batch in partition 1")
        #expect(answers[2] == .init(topic: "dp", partition: 0, producerEpoch: -1, recordsWritten: 0), "an unknown producer")
        #expect(answers[3].error == .unknownTopicOrPartition && answers[3].recordsWritten == -1 && answers[3].producerEpoch == -1)
        #expect(answers[3].errorMessage?.contains("'nope'") == true)
        #expect(answers[4].error == .unknownTopicOrPartition)
        #expect(answers[5] == .init(topic: "dp", partition: 0, producerEpoch: -1, recordsWritten: 0), "id −1 is never tracked")

        // A new epoch starts counting again from its own sequence 0.
        let (_, bumped) = try await client.initProducerId(existing: producerId, epoch: epoch)
        let fresh = try await Self.produce(client, .produce, topic: "dp", try Self.idempotentBatch(0, 3, producerId: producerId, epoch: bumped))
        #expect(fresh.error == .none, "\(fresh.errorMessage ?? "")")
        #expect(try await Self.describe(client, [entries[0]]) == [.init(topic: "dp", partition: 0, producerEpoch: bumped, recordsWritten: 3)])
        await client.close()
        await harness.stop()
    }

    @Test("a DescribeProducers body above the entry limit is refused as invalid_request naming the limit")
    func describeProducersLimit() async throws {
        let harness = try await BrokerHarness.start()
        let raw = try RawConnection(port: harness.port)
        var writer = WireWriter(ByteBuffer())
        writer.write(Int32(0))
        writer.write(Int32(DescribeProducersLimits.partitionsMax + 1))
        for index in 0...DescribeProducersLimits.partitionsMax {
            writer.write("t")
            writer.write(Int32(index))
            writer.write(Int64(1))
        }
        let id = try raw.send(apiKeyRaw: ApiKey.describeProducers.rawValue, body: Array(writer.buffer.readableBytesView))
        let frame = try raw.readFrame()
        #expect(frame.correlationId == id)
        #expect(frame.error?.code == .invalidRequest)
        #expect(frame.error?.message.contains("DescribeProducersLimits.partitionsMax") == true, "\(String(describing: frame.error))")
        raw.close()
        await harness.stop()
    }
}

extension InProcessClusters {
    @Suite("broker writes in a cluster of three")
    struct BrokerProduceClusterTests {
        @Test("DescribeProducers: a follower answers not_leader; the leader counts committed records only, and answers once they commit")
        func describeProducersInCluster() async throws {
            let cluster = ClusterHarness()
            _ = try await cluster.startWithTopic("dpc")
            let leader = try #require(try await cluster.settledLeader("dpc", 0), "no leader for dpc-0")
            let follower = try #require((1...3).first { $0 != leader })
            let client = cluster.client(leader)
            let (producerId, epoch) = try await client.initProducerId()
            for first in [0, 5] {
                let answer = try await BrokerProduceTests.produce(client, .produce, topic: "dpc",
                    try BrokerProduceTests.idempotentBatch(first, 5, producerId: producerId, epoch: epoch))
                #expect(answer.error == .none, "\(answer.errorMessage ?? "")")
            }
            let entry = DescribeProducersRequest.Partition(topic: "dpc", partition: 0, producerId: producerId)

            // BrokerProduce writes like Produce, and of the internal topics only those processor tasks write.
            let written = try await BrokerProduceTests.produce(client, .brokerProduce, topic: "dpc", try ProduceFetchTests.batch(["broker-1", "broker-2"]))
            #expect(written.error == .none && written.baseOffset >= 0, "\(written.errorMessage ?? "")")
            let offsets = try await BrokerProduceTests.produce(client, .brokerProduce, topic: "__consumer_offsets", try ProduceFetchTests.batch(["x"]))
            #expect(offsets.error == .invalidTopic, "\(offsets.errorMessage ?? "")")
            var corrupt = try ProduceFetchTests.batch(["x"])
            corrupt.setInteger(UInt8(0xFF), at: corrupt.writerIndex - 1)
            #expect(try await BrokerProduceTests.produce(client, .brokerProduce, topic: "dpc", corrupt).error == .corruptMessage)

            let followerClient = cluster.client(follower)
            let refused = try await BrokerProduceTests.describe(followerClient, [entry])
            #expect(refused.first?.error == .notLeader, "\(refused)")
            #expect(refused.first?.errorMessage?.contains("broker \(leader)") == true, "\(refused)")
            await followerClient.close()
            #expect(try await BrokerProduceTests.describe(client, [entry])
                    == [.init(topic: "dpc", partition: 0, producerEpoch: epoch, recordsWritten: 10)])

            // A batch admitted but not committed (recorded in the leader's table, as admission does, at
            // offsets above the high watermark) is not counted: the entry waits and times out...
            let broker = try #require(cluster.brokers[leader])
            let partition = try broker.registry.partition("dpc", 0)
            let (otherId, otherEpoch) = try await client.initProducerId()
            let admitted = try RecordBatch.build(records: (0..<3).map { Record(offset: Int64($0), timestamp: 1_700_000_000_000, key: nil, value: [1]) },
                                                 producerId: otherId, producerEpoch: otherEpoch, baseSequence: 0)
            let highWatermark = partition.log.highWatermark
            partition.withProducers { $0.record(admitted.header, firstOffset: highWatermark + 2, lastOffset: highWatermark + 4) }
            let other = DescribeProducersRequest.Partition(topic: "dpc", partition: 0, producerId: otherId)
            let timedOut = try await BrokerProduceTests.describe(client, timeoutMs: 300, [other])
            #expect(timedOut.first?.error == .requestTimedOut, "\(timedOut)")
            #expect(timedOut.first?.recordsWritten == -1)

            // ...and answers as soon as commits move the high watermark past its last offset. It may wait
            // as long as the broker allows (30 s), so five fsynced acks=all produces on a loaded machine
            // still come first; answered by the timeout it would say request_timed_out, not 3 records.
            let waiter = cluster.client(leader)
            let waiting = Task { try await BrokerProduceTests.describe(waiter, timeoutMs: 60_000, [other]) }
            try await Task.sleep(nanoseconds: 200_000_000)
            for k in 0..<5 {
                let answer = try await BrokerProduceTests.produce(client, .produce, topic: "dpc", try ProduceFetchTests.batch(["filler-\(k)"]))
                #expect(answer.error == .none, "\(answer.errorMessage ?? "")")
            }
            #expect(try await waiting.value == [.init(topic: "dpc", partition: 0, producerEpoch: otherEpoch, recordsWritten: 3)])
            await waiter.close()
            await client.close()
            await cluster.shutdown()
        }
    }
}
