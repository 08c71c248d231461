import Foundation
import SluiceClient
import SluiceCore
import SluiceTestSupport
import SluiceWire
import Testing

@testable import SluiceBroker

extension InProcessClusters {
    /// Processors in a cluster (storage-format/processors.md, "In a cluster"): the definition travels
    /// through the metadata group, each task runs on its source partition's leader, output goes through the
    /// sink partitions' leaders, and a task that moves with leadership writes each result exactly once.
    @Suite("processors in a cluster")
    struct ClusterProcessorTests {
        static let query = "INSERT INTO copies SELECT id, n FROM events WHERE n >= 0"

        /// Produces `ids` as keyed JSON records (`{"id":"e<i>","n":<i>}`) with acks=all.
        static func produce(_ client: SluiceClient, _ ids: Range<Int>) async throws {
            let producer = Producer(client: client)
            for id in ids {
                try await producer.enqueue(ProducerRecord(topic: "events", key: Array("e\(id)".utf8),
                                                          value: Array("{\"id\":\"e\(id)\",\"n\":\(id)}".utf8)))
            }
            await producer.flush()
        }

        /// Every record of `copies` (3 partitions), read from the leaders until `count` arrived or 20 s passed.
        static func readCopies(_ client: SluiceClient, count: Int) async throws -> [String] {
            var config = ConsumerConfig()
            config.fetchMaxWaitMs = 100
            let consumer = Consumer(client: client, config: config)
            try await consumer.assign(Dictionary(uniqueKeysWithValues: (0..<3).map { (TopicPartitionKey(topic: "copies", partition: $0), .earliest) }))
            var values: [String] = []
            _ = try await pollUntil(timeoutMs: 20_000) {
                for record in try await consumer.poll() { values.append(String(decoding: record.value ?? [], as: UTF8.self)) }
                return values.count >= count
            }
            // Then on to the end of every partition: a duplicate stored by then shows here.
            if values.count >= count {
                _ = try await pollUntil(timeoutMs: 10_000) {
                    for record in try await consumer.poll() { values.append(String(decoding: record.value ?? [], as: UTF8.self)) }
                    return await consumer.reachedEnd
                }
            }
            await consumer.close()
            return values
        }

        /// The ids in `values` that appear more than once, and how many distinct ones there are.
        static func tally(_ values: [String]) -> (distinct: Int, repeated: [String]) {
            var seen: [String: Int] = [:]
            for value in values { seen[value, default: 0] += 1 }
            return (seen.count, seen.filter { $0.value > 1 }.keys.sorted())
        }

        /// Every record of `totals` (3 partitions) as "user@window_start" → [n, total], with the duplicates,
        /// read from the leaders to the end of every partition.
        static func totals(_ client: SluiceClient) async throws -> (results: [String: [Int64]], duplicates: Int, count: Int) {
            var config = ConsumerConfig()
            config.fetchMaxWaitMs = 100
            let consumer = Consumer(client: client, config: config)
            try await consumer.assign(Dictionary(uniqueKeysWithValues: (0..<3).map { (TopicPartitionKey(topic: "totals", partition: $0), .earliest) }))
            var results: [String: [Int64]] = [:]
            var duplicates = 0
            var count = 0
            _ = try await pollUntil(timeoutMs: 10_000) {
                for record in try await consumer.poll() {
                    count += 1
                    guard let object = try? JSONSerialization.jsonObject(with: Data(record.value ?? [])) as? [String: Any],
                          let user = object["user"] as? String, let start = (object["window_start"] as? NSNumber)?.int64Value,
                          let n = (object["n"] as? NSNumber)?.int64Value, let total = (object["total"] as? NSNumber)?.int64Value else { continue }
                    if results["\(user)@\(start)"] != nil { duplicates += 1 }
                    results["\(user)@\(start)"] = [n, total]
                }
                return await consumer.reachedEnd
            }
            await consumer.close()
            return (results, duplicates, count)
        }

        /// With no checkpoint after the start (an hour apart), the tasks that move restart from the
        /// generation's start and must skip every routed record and result their predecessors stored.
        @Test("a windowed aggregation with a repartition stage gives the naive results once each when a broker stops midway",
              arguments: ["50", "3600000"])
        func statefulFailover(checkpointIntervalMs: String) async throws {
            var random = SeededRandom.fromEnvironment()
            let cluster = ClusterHarness(settings: ["processor-checkpoint-interval-ms": checkpointIntervalMs])
            _ = try await cluster.startWithTopic("events", partitions: 3, replicationFactor: 3)
            let client = cluster.client(1)
            // Grouped by user (not by the record key, as far as the plan knows): routers send each record to
            // its user's aggregator. Keyed, so that every source partition gets records and the watermark moves.
            try await client.createProcessor(name: "agg", sql: ProcessorRuntimeTests.query, from: .earliest)
            let events = ProcessorRuntimeTests.events(&random, count: 3000, users: 40)
            try await ProcessorRuntimeTests.produce(client, Array(events[..<1500]), partitions: 3, keyed: true, closing: false)
            // Some results are stored before the stop, so that the tasks that move have output to skip.
            #expect(try await pollUntil(timeoutMs: 30_000) { try await Self.totals(client).count > 0 }, "seed \(random.seed): no result before the stop")
            // Stop a broker that leads something other than the controller's metadata: the sink, the
            // repartition topic and the checkpoints all have leaders spread over the three.
            let stopped = try #require(try await cluster.leader("events", 1))
            await cluster.stop(stopped)
            let survivor = try #require((1...3).first { $0 != stopped })
            let other = cluster.client(survivor)
            try await ProcessorRuntimeTests.produce(other, Array(events[1500...]), partitions: 3, keyed: true, closing: true)
            let expected = ProcessorRuntimeTests.expected(events)
            var read: (results: [String: [Int64]], duplicates: Int, count: Int) = ([:], 0, 0)
            let complete = try await pollUntil(timeoutMs: 60_000) {
                read = try await Self.totals(other)
                return read.results.count >= expected.count
            }
            #expect(complete, "seed \(random.seed): \(read.results.count) of \(expected.count) results")
            #expect(read.duplicates == 0 && read.count == expected.count, "seed \(random.seed): \(read.count) records, \(read.duplicates) duplicates")
            #expect(read.results == expected, "seed \(random.seed): \(read.results.filter { expected[$0.key] != $0.value }.prefix(3))")
            await client.close()
            await other.close()
            await cluster.shutdown()
        }

        /// With a checkpoint every 10 ms the new leader resumes close to where the old one stopped; with one
        /// an hour none is taken after the start, so the new leader regenerates everything from the
        /// generation's start and must find every earlier result already stored.
        /// (id, n) of each output value, in read order.
        static func pairs(_ values: [String]) -> [(String, Int)] {
            values.compactMap { value in
                guard let object = try? JSONSerialization.jsonObject(with: Data(value.utf8)) as? [String: Any],
                      let id = object["id"] as? String, let n = (object["n"] as? NSNumber)?.intValue else { return nil }
                return (id, n)
            }
        }

        /// Replaces the copy of `events` (ids 0..<100 copied) by one that adds 1000 to `n`, produces 100..<200,
        /// and expects the old query's 0..<100 as they were and the new one's only what came after, each once.
        static func replaceAndExpectNoRepeat(_ client: SluiceClient) async throws {
            try await client.replaceProcessor("copy", sql: "INSERT INTO copies SELECT id, n + 1000 AS n FROM events WHERE n >= 0")
            try await Self.produce(client, 100..<200)
            let replaced = Self.pairs(try await Self.readCopies(client, count: 200))
            let plain = replaced.filter { $0.1 < 1000 }.map(\.1).sorted()
            let shifted = replaced.filter { $0.1 >= 1000 }.map { $0.1 - 1000 }.sorted()
            #expect(plain == Array(0..<100) && shifted == Array(100..<200),
                    "plain \(plain.count) (\(plain.prefix(3))…), shifted \(shifted.count) (\(shifted.prefix(3))…)")
        }

        @Test("replace goes on from where the old query stopped; reset reprocesses from the start with the new query")
        func replaceAndReset() async throws {
            let cluster = ClusterHarness()
            _ = try await cluster.startWithTopic("events", partitions: 3, replicationFactor: 3)
            let client = cluster.client(1)
            try await client.createProcessor(name: "copy", sql: Self.query, from: .earliest)
            try await Self.produce(client, 0..<100)
            #expect(try await Self.readCopies(client, count: 100).count == 100)

            try await Self.replaceAndExpectNoRepeat(client)

            try await client.resetProcessor("copy", to: .earliest)
            let reset = Self.pairs(try await Self.readCopies(client, count: 400))
            let again = reset.filter { $0.1 >= 1000 }.map { $0.1 - 1000 }.sorted()
            // The new generation reads everything again with the replaced query: 0..<200 once more.
            #expect(reset.count == 400 && again == (Array(100..<200) + Array(0..<200)).sorted(), "read \(reset.count), shifted \(again.count)")
            var description = try await client.describeProcessor("copy")
            #expect(description.sql.contains("n + 1000"), "\(description.sql)")
            // A task moving with leadership is briefly listed nowhere: the view is awaited.
            let listed = try await cluster.eventually {
                description = try await client.describeProcessor("copy")
                return description.tasks.map(\.partition) == [0, 1, 2]
            }
            #expect(listed, "\(description.tasks)")
            await client.close()
            await cluster.shutdown()
        }

        /// A broker that is down runs no task, so a replace does not wait for it to say so: once the
        /// metadata group no longer hears from it, the replace goes on, from where the old query stopped.
        @Test("with a broker down, a replace goes on without it, from where the old query stopped")
        func replaceWithBrokerDown() async throws {
            let cluster = ClusterHarness()
            let controller = try await cluster.startWithTopic("events", partitions: 3, replicationFactor: 3)
            let client = cluster.client(controller)
            try await client.createProcessor(name: "copy", sql: Self.query, from: .earliest)
            try await Self.produce(client, 0..<100)
            #expect(try await Self.readCopies(client, count: 100).count == 100)
            let down = try #require((1...3).first { $0 != controller })
            await cluster.stop(down)

            try await Self.replaceAndExpectNoRepeat(client)
            await client.close()
            await cluster.shutdown()
        }

        /// A replace that pauses the processor just after a source partition's leadership moved, before the
        /// new leader has run the task, goes on from the furthest checkpoint of the generation; the old
        /// leader's task must therefore leave one covering what it stored. With no periodic checkpoint (an
        /// hour apart), only that final one reaches the end of the input.
        @Test("a task stopped because its partition's leadership moved leaves a checkpoint covering what it stored")
        func checkpointWhenLeadershipMoves() async throws {
            let cluster = ClusterHarness(settings: ["processor-checkpoint-interval-ms": "3600000"])
            _ = try await cluster.startWithTopic("events", partitions: 3, replicationFactor: 3)
            let client = cluster.client(1)
            try await client.createProcessor(name: "copy", sql: Self.query, from: .earliest)
            try await Self.produce(client, 0..<100)
            #expect(try await Self.readCopies(client, count: 100).count == 100)
            let stored = cluster.brokers.values.compactMap { $0.metadataReplica?.state.processors["copy"] }.first
            let generation = try #require(stored.flatMap { ProcessorDefinition.decode(name: "copy", value: $0) }).generation

            // The task runs on the settled leader of events-0, which has read all of its input.
            let from = try #require(try await cluster.settledLeader("events", 0))
            let broker = try #require(cluster.brokers[from])
            let source = try broker.registry.partition("events", 0)
            let end = source.log.highWatermark
            let caughtUp = try await cluster.eventually(timeoutMs: 30_000) {
                broker.processors.lock.withLock { broker.processors.entries["copy"] }?.runners
                    .contains { $0.partition == 0 && $0.snapshot().inputOffset >= end } ?? false
            }
            #expect(caughtUp, "the task of events-0 on broker \(from) did not read to \(end)")
            let to = try #require((1...3).first { $0 != from })
            source.replica?.transferLeadership(to: UInt64(to))

            // Broker `from`'s reconcile stops the task once it no longer leads (leadership may come back to
            // it later: it is the preferred replica). The checkpoint it leaves reaches the input's end.
            var positions: [Int32: Int64] = [:]
            let covered = try await cluster.eventually(timeoutMs: 30_000) {
                positions = try broker.processors.furthestPositions("copy", generation: generation)
                return (positions[0] ?? 0) >= end
            }
            #expect(covered, "task 0's furthest checkpoint: \(positions[0].map(String.init) ?? "none"), input end \(end)")
            await client.close()
            await cluster.shutdown()
        }

        @Test("a processor created through any broker runs on the leaders and writes each result once, also after its source leader stops",
              arguments: ["10", "3600000"])
        func exactlyOnceAcrossFailover(checkpointIntervalMs: String) async throws {
            let cluster = ClusterHarness(settings: ["processor-checkpoint-interval-ms": checkpointIntervalMs])
            let controller = try await cluster.startWithTopic("events", partitions: 3, replicationFactor: 3)
            let other = try #require((1...3).first { $0 != controller })
            let admin = cluster.client(other)
            // Sent to a broker that is not the controller: the client follows the redirection.
            try await admin.createProcessor(name: "copy", sql: Self.query, from: .earliest)
            let everywhere = try await cluster.eventually {
                cluster.brokers.values.allSatisfy { $0.metadataReplica?.state.processors["copy"] != nil }
            }
            #expect(everywhere, "the definition did not reach every broker")
            #expect(try await admin.listProcessors().map(\.name) == ["copy"])

            try await Self.produce(admin, 0..<300)
            let first = try await Self.readCopies(admin, count: 300)
            let firstTally = Self.tally(first)
            #expect(firstTally.distinct == 300 && first.count == 300, "read \(first.count), \(firstTally.distinct) distinct, repeated \(firstTally.repeated.prefix(5))")

            // Each partition's task runs on its leader only (a reconcile follows a leader change within
            // `reconcileIntervalMs`, so the view is awaited, not sampled once).
            for partition: Int32 in 0..<3 {
                var view = ""
                let placed = try await cluster.eventually {
                    guard let leader = try await cluster.leader("events", partition) else { return false }
                    let runners = cluster.brokers.mapValues { broker in
                        broker.processors.lock.withLock { broker.processors.entries["copy"] }?.runners.filter { $0.partition == partition }.count ?? 0
                    }
                    view = "leader \(leader), runners per broker \(runners.sorted { $0.key < $1.key })"
                    return runners[leader] == 1 && runners.filter { $0.key != leader }.values.allSatisfy { $0 == 0 }
                }
                #expect(placed, "partition \(partition): \(view)")
            }

            // The leader of partition 0 stops; its task moves to the new leader, which resumes from the last
            // checkpoint and must not write again what was already stored.
            let stopped = try #require(try await cluster.leader("events", 0))
            await cluster.stop(stopped)
            let survivor = try #require((1...3).first { $0 != stopped })
            let client = cluster.client(survivor)
            _ = try #require(try await cluster.leader("events", 0), "no new leader of events-0")
            try await Self.produce(client, 300..<600)
            let all = try await Self.readCopies(client, count: 600)
            let tally = Self.tally(all)
            #expect(tally.distinct == 600 && all.count == 600, "read \(all.count), \(tally.distinct) distinct, repeated \(tally.repeated.prefix(5))")
            let description = try await client.describeProcessor("copy")
            #expect(description.tasks.map(\.partition) == [0, 1, 2], "\(description.tasks)")
            await admin.close()
            await client.close()
            await cluster.shutdown()
        }
    }
}
