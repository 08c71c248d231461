import SluiceClient
import SluiceCore
import SluiceLog
import SluiceTestSupport
import SluiceWire
import Testing

@testable import SluiceBroker

extension InProcessClusters {
    /// Retention on replicated partitions: each replica moves its Raft anchor before deleting segments,
    /// and a follower that fell behind the leader's log start is sent the anchor as a snapshot.
    @Suite("retention, compaction and config changes in a cluster")
    struct ClusterRetentionTests {
        /// One acks=all produce of `value` to `topic`-0 through broker `id`.
        static func produce(_ cluster: ClusterHarness, _ value: String, via id: Int32, topic: String = "ret") async throws -> ProduceResponse.Partition {
            let client = cluster.client(id)
            defer { Task { await client.close() } }
            let request = ProduceRequest(acks: .all, timeoutMs: 10_000, topics: [.init(name: topic, partitions: [
                .init(partition: 0, records: try ProduceFetchTests.batch([value + String(repeating: ".", count: 200)]))])])
            let response = try await client.send(.produce, request, expecting: ProduceResponse.self)
            return try #require(response.topics.first?.partitions.first)
        }

        /// Every value of `topic`-0 that broker `id`'s own replica serves, in offset order.
        static func readReplica(_ cluster: ClusterHarness, _ id: Int32, topic: String) async throws -> [String] {
            let client = cluster.client(id)
            var config = ConsumerConfig()
            config.fetchFromConnectedBroker = true
            config.fetchMaxWaitMs = 0
            let consumer = Consumer(client: client, config: config)
            try await consumer.assign([TopicPartitionKey(topic: topic, partition: 0): .earliest])
            var values: [String] = []
            _ = try await pollUntil(timeoutMs: 10_000) {
                values += try await consumer.poll().map { String(decoding: $0.value ?? [], as: UTF8.self) }
                return await consumer.reachedEnd
            }
            await consumer.close()
            await client.close()
            return values
        }

        @Test("a follower behind the leader's retention installs the leader's log start and then holds the same records")
        func followerBehindRetention() async throws {
            let cluster = ClusterHarness()
            _ = try await cluster.startWithTopic("ret", partitions: 1, replicationFactor: 3, configs: ["segment.bytes": "1024", "retention.bytes": "2048", "retention.ms": "-1"])
            let leader = try #require(try await cluster.settledLeader("ret", 0))
            let behind = try #require((1...3).first { $0 != leader })
            try #require(try await Self.produce(cluster, "a", via: leader).error == .none)
            await cluster.stop(behind)

            for k in 0..<40 { try #require(try await Self.produce(cluster, "b\(k)", via: leader).error == .none) }
            let leaderLog = try #require(try cluster.brokers[leader]?.registry.partition("ret", 0).log)
            // A maintenance pass moves the Raft anchor; a later one deletes the segments below it.
            let cut = try await cluster.eventually {
                for broker in cluster.brokers.values { broker.runMaintenance() }
                return leaderLog.logStartOffset > 1
            }
            #expect(cut, "the leader's retention deleted nothing: \(cluster.describeReplicas("ret", 0))")

            try await cluster.start(behind)
            for k in 0..<3 { try #require(try await Self.produce(cluster, "c\(k)", via: leader).error == .none) }
            let caughtUp = try await cluster.eventually {
                guard let log = try cluster.brokers[behind]?.registry.partition("ret", 0).log else { return false }
                return log.highWatermark == leaderLog.highWatermark && log.logEndOffset == leaderLog.logEndOffset
            }
            #expect(caughtUp, "\(cluster.describeReplicas("ret", 0))")
            let followerLog = try #require(try cluster.brokers[behind]?.registry.partition("ret", 0).log)
            // It could not have copied what the leader deleted: it restarted at (or above) the leader's start.
            #expect(followerLog.logStartOffset >= leaderLog.logStartOffset && followerLog.logStartOffset > 1, "\(cluster.describeReplicas("ret", 0))")
            let from = max(followerLog.logStartOffset, leaderLog.logStartOffset)
            let end = leaderLog.highWatermark
            let ours = try followerLog.read(from: from, maxBytes: 1 << 20, maxOffset: end).bytes
            let theirs = try leaderLog.read(from: from, maxBytes: 1 << 20, maxOffset: end).bytes
            #expect(ours == theirs && !ours.isEmpty, "the replicas differ above offset \(from)")
            await cluster.shutdown()
        }

        @Test("a config change after creation reaches every replica, whose logs reopen and keep replicating")
        func alterAfterCreation() async throws {
            let cluster = ClusterHarness()
            let controller = try await cluster.startWithTopic("ret", partitions: 1, replicationFactor: 3, configs: ["segment.bytes": "1024", "retention.ms": "-1"])
            let leader = try #require(try await cluster.settledLeader("ret", 0))
            for k in 0..<30 { try #require(try await Self.produce(cluster, "a\(k)", via: leader).error == .none) }
            func logs() throws -> [PartitionLog] { try cluster.brokers.values.map { try $0.registry.partition("ret", 0).log } }

            // Sent to a broker that is not the controller: the client finds the controller.
            let other = try #require((1...3).first { $0 != controller })
            let client = cluster.client(other)
            try await client.alterTopic("ret", configs: ["retention.bytes": "2048"])
            let reopened = try await cluster.eventually { try logs().allSatisfy { $0.config.retentionBytes == 2048 } }
            #expect(reopened, "\(((try? logs()) ?? []).map(\.config.retentionBytes))")
            let described = try await client.describeTopic("ret")
            #expect(described.configs.first { $0.key == "retention.bytes" }?.value == "2048")

            let cut = try await cluster.eventually {
                for broker in cluster.brokers.values { broker.runMaintenance() }
                return try logs().allSatisfy { $0.logStartOffset > 1 }
            }
            #expect(cut, "\(cluster.describeReplicas("ret", 0))")
            for k in 0..<5 { try #require(try await Self.produce(cluster, "b\(k)", via: leader).error == .none) }
            let converged = try await cluster.eventually {
                let all = try logs()
                let ends = Set(all.map(\.highWatermark))
                return ends.count == 1 && all.allSatisfy { $0.logEndOffset == ends.first }
            }
            #expect(converged, "\(cluster.describeReplicas("ret", 0))")

            // A reset takes the controller's default for every replica alike.
            try await client.alterTopic("ret", configs: ["retention.bytes": nil])
            let reset = try await cluster.eventually { try logs().allSatisfy { $0.config.retentionBytes == nil } }
            #expect(reset, "\(((try? logs()) ?? []).map(\.config.retentionBytes))")
            await #expect(throws: SluiceClientError.self) { try await client.alterTopic("ret", configs: ["retention.bytes": "lots"]) }
            await client.close()
            await cluster.shutdown()
        }

        @Test("compaction on replicas keeps every batch (empty ones too), so a follower still catches up from a compacted leader")
        func compactionKeepsBatches() async throws {
            let cluster = ClusterHarness()
            _ = try await cluster.startWithTopic("cmp", partitions: 1, replicationFactor: 3, configs: ["cleanup.policy": "compact", "segment.bytes": "1024"])
            let leader = try #require(try await cluster.settledLeader("cmp", 0))
            let behind = try #require((1...3).first { $0 != leader })
            // Every batch holds one record with the same key: compaction keeps only the newest value.
            for k in 0..<30 { try #require(try await Self.produce(cluster, "a\(k)", via: leader, topic: "cmp").error == .none) }
            await cluster.stop(behind)
            for k in 0..<10 { try #require(try await Self.produce(cluster, "b\(k)", via: leader, topic: "cmp").error == .none) }
            let leaderBroker = try #require(cluster.brokers[leader])
            let leaderPartition = try leaderBroker.registry.partition("cmp", 0)
            let batchesBefore = try #require(leaderPartition.replica?.status.lastIndex)
            let endBefore = leaderPartition.log.logEndOffset
            leaderBroker.runMaintenance()
            let values = try await Self.readReplica(cluster, leader, topic: "cmp")
            #expect(values.count < 40 && values.last?.hasPrefix("b9") == true, "\(values.count) values after compaction: \(values)\n\(cluster.describeReplicas("cmp", 0))")
            #expect(leaderPartition.replica?.status.lastIndex == batchesBefore && leaderPartition.log.logEndOffset == endBefore,
                    "compaction changed the batch count or the log end")
            // Raft index i is the i-th batch in the file: compaction must leave every batch in place.
            var batchesInLog: UInt64 = 0
            try leaderPartition.log.forEachBatchHeader(from: 0) { _ in batchesInLog += 1 }
            #expect(batchesInLog == batchesBefore, "\(batchesInLog) batches in the log for \(batchesBefore) Raft entries")

            try await cluster.start(behind)
            try #require(try await Self.produce(cluster, "c", via: leader, topic: "cmp").error == .none)
            let caughtUp = try await cluster.eventually {
                guard let follower = try cluster.brokers[behind]?.registry.partition("cmp", 0),
                      let status = follower.replica?.status, let leading = leaderPartition.replica?.status else { return false }
                return status.lastIndex == leading.lastIndex && follower.log.logEndOffset == leaderPartition.log.logEndOffset
                    && follower.log.highWatermark == leaderPartition.log.highWatermark
            }
            #expect(caughtUp, "\(cluster.describeReplicas("cmp", 0))")
            let fromFollower = try await Self.readReplica(cluster, behind, topic: "cmp")
            #expect(fromFollower.last?.hasPrefix("c") == true && fromFollower.contains { $0.hasPrefix("b9") }, "\(fromFollower.suffix(3))")
            await cluster.shutdown()
        }
    }
}
