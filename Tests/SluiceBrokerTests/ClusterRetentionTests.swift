import SluiceClient
import SluiceCore
import SluiceLog
import SluiceTestSupport
import SluiceWire
import Testing

@testable import SluiceBroker

/// Retention on replicated partitions: each replica moves its Raft anchor before deleting segments,
/// and a follower that fell behind the leader's log start is sent the anchor as a snapshot.
@Suite("retention in a cluster")
struct ClusterRetentionTests {
    /// One acks=all produce of `value` to `topic`-0 through broker `id`.
    static func produce(_ cluster: ClusterHarness, _ value: String, via id: Int32) async throws -> ProduceResponse.Partition {
        let client = cluster.client(id)
        defer { Task { await client.close() } }
        let request = ProduceRequest(acks: .all, timeoutMs: 10_000, topics: [.init(name: "ret", partitions: [
            .init(partition: 0, records: try ProduceFetchTests.batch([value + String(repeating: ".", count: 200)]))])])
        let response = try await client.send(.produce, request, expecting: ProduceResponse.self)
        return try #require(response.topics.first?.partitions.first)
    }

    @Test("a follower behind the leader's retention installs the leader's log start and then holds the same records")
    func followerBehindRetention() async throws {
        let cluster = ClusterHarness()
        for id: Int32 in 1...3 { try await cluster.start(id) }
        let controller = try #require(try await cluster.controller(), "no metadata leader elected")
        let admin = cluster.client(controller)
        try await admin.createTopic("ret", partitions: 1, replicationFactor: 3,
                                    configs: ["segment.bytes": "1024", "retention.bytes": "2048", "retention.ms": "-1"])
        await admin.close()
        let leader = try #require(try await cluster.settledLeader("ret", 0))
        let behind = try #require((1...3).first { $0 != leader })
        try #require(try await Self.produce(cluster, "a", via: leader).error == .none)
        await cluster.stop(behind)

        for k in 0..<40 { try #require(try await Self.produce(cluster, "b\(k)", via: leader).error == .none) }
        for broker in cluster.brokers.values { try broker.registry.partition("ret", 0).replica?.enforceRetention() }
        let leaderLog = try #require(try cluster.brokers[leader]?.registry.partition("ret", 0).log)
        let cut = try await cluster.eventually { leaderLog.logStartOffset > 1 }
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
        for id: Int32 in 1...3 { try await cluster.start(id) }
        let controller = try #require(try await cluster.controller(), "no metadata leader elected")
        let admin = cluster.client(controller)
        try await admin.createTopic("ret", partitions: 1, replicationFactor: 3, configs: ["segment.bytes": "1024", "retention.ms": "-1"])
        await admin.close()
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

        for broker in cluster.brokers.values { try broker.registry.partition("ret", 0).replica?.enforceRetention() }
        let cut = try await cluster.eventually { try logs().allSatisfy { $0.logStartOffset > 1 } }
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
}
