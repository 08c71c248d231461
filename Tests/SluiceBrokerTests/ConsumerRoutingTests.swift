import SluiceClient
import SluiceCore
import SluiceWire
import Testing

@testable import SluiceBroker

extension InProcessClusters {
    /// A consumer in a cluster reads each partition from its leader, wherever the client was bootstrapped:
    /// with one replica per partition, the broker a client first reaches holds only some of the data.
    @Suite("consumer routing in a cluster")
    struct ConsumerRoutingTests {
        /// Partitions of the topic under test: with three brokers and one replica each, every broker
        /// leads some and lacks the others.
        static let partitionCount: Int32 = 6

        /// What `populate` wrote: each partition's values in offset order, its end offset, its leader.
        struct Written {
            var values: [Int32: [String]] = [:]
            var ends: [Int32: Int64] = [:]
            var leaders: [Int32: Int32] = [:]

            /// A broker leading some partitions but not all: a client bootstrapped there has to be routed.
            var partialBroker: Int32? {
                let counts = Dictionary(grouping: leaders.values, by: { $0 }).mapValues(\.count)
                return counts.filter { $0.value < leaders.count }.keys.sorted().first
            }
        }

        /// Runs `body` with three started brokers, shutting them down however `body` ends.
        static func withCluster(_ body: (ClusterHarness) async throws -> Void) async throws {
            let cluster = ClusterHarness()
            do {
                for id: Int32 in 1...3 { try await cluster.start(id) }
                try await body(cluster)
            } catch {
                await cluster.shutdown()
                throw error
            }
            await cluster.shutdown()
        }

        /// Creates `topic` with one replica per partition and writes `partition + 2` distinct values to each
        /// (acks all), so every partition has its own end offset.
        static func populate(_ cluster: ClusterHarness, _ topic: String) async throws -> Written {
            let controller = try #require(try await cluster.controller(), "no metadata leader elected")
            let admin = cluster.client(controller)
            try await admin.createTopic(topic, partitions: partitionCount, replicationFactor: 1)
            var written = Written()
            for partition in 0..<partitionCount {
                let leader = try #require(try await cluster.settledLeader(topic, partition), "\(topic)[\(partition)] has no leader")
                written.leaders[partition] = leader
            }
            let producer = Producer(client: admin)
            for partition in 0..<partitionCount {
                for index in 0..<(Int(partition) + 2) {
                    let value = "p\(partition)-v\(index)"
                    let sent = try await producer.send(ProducerRecord(topic: topic, value: Array(value.utf8), partition: partition))
                    #expect(sent.partition == partition)
                    written.values[partition, default: []].append(value)
                    written.ends[partition] = sent.offset + 1
                }
            }
            await admin.close()
            return written
        }

        @Test("a consumer bootstrapped at one broker reads every value of all six partitions exactly once")
        func readsEveryPartitionFromItsLeader() async throws {
            try await Self.withCluster { cluster in
                let written = try await Self.populate(cluster, "routed")
                let bootstrap = try #require(written.partialBroker, "every partition on one broker: \(written.leaders)")
                let client = cluster.client(bootstrap)
                var config = ConsumerConfig()
                config.fetchMaxWaitMs = 100
                let consumer = Consumer(client: client, config: config)
                let keys = (0..<Self.partitionCount).map { TopicPartitionKey(topic: "routed", partition: $0) }
                try await consumer.assign(Dictionary(uniqueKeysWithValues: keys.map { ($0, .earliest) }))
                let total = written.values.values.reduce(0) { $0 + $1.count }
                var read: [Int32: [ConsumerRecord]] = [:]
                var count = 0
                let done = try await pollUntil(timeoutMs: 20_000) {
                    for record in try await consumer.poll() {
                        read[record.partition, default: []].append(record)
                        count += 1
                    }
                    return count >= total
                }
                #expect(done, "read \(count) of \(total) values; leaders \(written.leaders), bootstrap \(bootstrap)")
                // Nothing more comes: no value is returned twice.
                let extra = try await consumer.poll()
                #expect(extra.isEmpty, "read again: \(extra.map { "\($0.partition)@\($0.offset)" })")
                for partition in 0..<Self.partitionCount {
                    let records = read[partition] ?? []
                    #expect(records.map { String(decoding: $0.value ?? [], as: UTF8.self) } == written.values[partition],
                            "partition \(partition) (leader \(written.leaders[partition] ?? -1), bootstrap \(bootstrap))")
                    #expect(records.map(\.offset) == records.map(\.offset).sorted())
                }
                let positions = await consumer.assignment
                for key in keys { #expect(positions[key] == written.ends[key.partition], "\(key)") }
                #expect(await consumer.reachedEnd)
                await consumer.close()
                await client.close()
            }
        }

        @Test("a broker down: its partitions are skipped while the others' values keep coming; back up, the rest arrive once")
        func skipsPartitionsOfABrokerThatIsDown() async throws {
            try await Self.withCluster { cluster in
                let written = try await Self.populate(cluster, "outage")
                let bootstrap = try #require(written.partialBroker, "every partition on one broker: \(written.leaders)")
                let down = try #require(Set(written.leaders.values).subtracting([bootstrap]).sorted().first)
                let client = cluster.client(bootstrap)
                var config = ConsumerConfig()
                config.fetchMaxWaitMs = 100
                let consumer = Consumer(client: client, config: config)
                // Explicit offsets: resolving `.earliest` would ask the stopped broker.
                try await consumer.assign(Dictionary(uniqueKeysWithValues: (0..<Self.partitionCount).map {
                    (TopicPartitionKey(topic: "outage", partition: $0), StartPosition.offset(0))
                }))
                await cluster.stop(down)
                var read: [Int32: [String]] = [:]
                func drain(until done: ([Int32: [String]]) -> Bool) async throws -> Bool {
                    try await pollUntil(timeoutMs: 20_000) {
                        for record in try await consumer.poll() {
                            read[record.partition, default: []].append(String(decoding: record.value ?? [], as: UTF8.self))
                        }
                        return done(read)
                    }
                }
                let live = written.leaders.filter { $0.value != down }.keys.sorted()
                let gone = written.leaders.filter { $0.value == down }.keys.sorted()
                let liveRead = try await drain { read in live.allSatisfy { read[$0]?.count == written.values[$0]?.count } }
                #expect(liveRead, "with broker \(down) down, read \(read); leaders \(written.leaders), bootstrap \(bootstrap)")
                for partition in gone { #expect(read[partition] == nil, "partition \(partition) of stopped broker \(down)") }

                try await cluster.start(down)
                for partition in gone { _ = try #require(try await cluster.settledLeader("outage", partition)) }
                let allRead = try await drain { read in written.values.allSatisfy { read[$0.key]?.count == $0.value.count } }
                #expect(allRead, "after broker \(down) came back, read \(read)")
                #expect(read == written.values)
                await consumer.close()
                await client.close()
            }
        }

        @Test("listOffsets through one broker answers every partition's end and start from its leader")
        func listOffsetsAsksEachLeader() async throws {
            try await Self.withCluster { cluster in
                let written = try await Self.populate(cluster, "ends")
                let bootstrap = try #require(written.partialBroker, "every partition on one broker: \(written.leaders)")
                let client = cluster.client(bootstrap)
                let partitions = Array(0..<Self.partitionCount)
                let ends = try await client.listOffsets(topic: "ends", partitions: partitions, timestamp: ListOffsetsRequest.latestTimestamp)
                #expect(ends == written.ends, "leaders \(written.leaders), bootstrap \(bootstrap)")
                // The leaders' own logs agree: each end is its high watermark.
                for partition in partitions {
                    let leader = try #require(written.leaders[partition].flatMap { cluster.brokers[$0] })
                    #expect(try leader.registry.partition("ends", partition).log.highWatermark == written.ends[partition])
                }
                let starts = try await client.listOffsets(topic: "ends", partitions: partitions, timestamp: ListOffsetsRequest.earliestTimestamp)
                #expect(starts == Dictionary(uniqueKeysWithValues: partitions.map { ($0, Int64(0)) }))
                await client.close()
            }
        }
    }
}
