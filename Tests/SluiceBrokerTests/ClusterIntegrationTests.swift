import Logging
import NIOCore
import NIOPosix
import SluiceClient
import SluiceCore
import SluiceTestSupport
import SluiceWire
import Testing

@testable import SluiceBroker

/// Root of the suites that run whole clusters in this process. Serialised: each runs three brokers
/// with 20 ms Raft ticks, and several side by side on a 2-core machine (beside the end-to-end tests'
/// processes) starve their elections until assertions on a stable controller or leader time out.
@Suite("in-process clusters", .serialized)
enum InProcessClusters {}

/// Three brokers of one cluster in this process, each with its own data directory, on fixed loopback
/// ports (a cluster member's address is part of the configuration).
final class ClusterHarness: @unchecked Sendable {
    let directory = TemporaryDirectory("cluster")
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let ports: [Int32: Int]
    private(set) var brokers: [Int32: Broker] = [:]
    /// Each broker's own event loops, shut down with it so its connections close as a process's would.
    private var loops: [Int32: MultiThreadedEventLoopGroup] = [:]

    /// Broker settings on top of the harness's own, for every broker.
    let settings: [String: String]

    init(size: Int = 3, settings: [String: String] = [:]) {
        var ports: [Int32: Int] = [:]
        for id in 1...Int32(size) { ports[id] = freeLoopbackPort() }
        self.ports = ports
        self.settings = settings
    }

    var clusterText: String { ports.keys.sorted().map { "\($0)@127.0.0.1:\(ports[$0] ?? 0)" }.joined(separator: ",") }

    func config(_ id: Int32) throws -> BrokerConfig {
        var config = BrokerConfig()
        try config.set("data-dir", directory.child("n\(id)"), source: "test")
        try config.set("node-id", "\(id)", source: "test")
        try config.set("cluster", clusterText, source: "test")
        try config.set("io-threads", "4", source: "test")
        try config.set("raft-tick-ms", "20", source: "test")
        // 1 to 2 s election timeouts (and check-quorum rounds): with the default 10 ticks a slow fsync
        // or a starved thread on a loaded machine triggers elections and step-downs every few hundred
        // milliseconds, so a leader a test picked stops answering as one. Waits after a stop are 10 s.
        try config.set("raft-election-ticks", "50", source: "test")
        for (key, value) in settings.sorted(by: { $0.key < $1.key }) { try config.set(key, value, source: "test") }
        try config.validate()
        return config
    }

    func start(_ id: Int32) async throws {
        var logger = Logger(label: "broker-\(id)")
        logger.logLevel = .warning
        let loops = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let broker = Broker(config: try config(id), eventLoopGroup: loops, logger: logger)
        try await broker.start()
        brokers[id] = broker
        self.loops[id] = loops
    }

    func stop(_ id: Int32) async {
        guard let broker = brokers.removeValue(forKey: id) else { return }
        await broker.shutdown()
        try? await loops.removeValue(forKey: id)?.shutdownGracefully()
    }

    /// A client of broker `id`. Its request timeout is generous: admin calls the broker answers only
    /// once the metadata group applied them (replacing a processor allows itself 30 s + 10 s) take long
    /// on a loaded machine, and no test relies on the client giving up early.
    func client(_ id: Int32) -> SluiceClient {
        SluiceClient(brokers: [BrokerAddress(host: "127.0.0.1", port: ports[id] ?? 0)], clientId: "cluster-test",
                     requestTimeoutMs: 60_000, eventLoopGroup: group)
    }

    /// Starts every broker and creates `topic` through the controller; returns the controller once every
    /// running broker hosting one of the topic's partitions has opened its replica (`createTopic` waits
    /// for the controller only: a follower applies the creation a moment later).
    func startWithTopic(_ topic: String, partitions: Int32 = 1, replicationFactor: Int16 = 3,
                        configs: [String: String] = [:]) async throws -> Int32 {
        for id in ports.keys.sorted() { try await start(id) }
        let controller = try #require(try await controller(), "no metadata leader elected")
        let admin = client(controller)
        try await admin.createTopic(topic, partitions: partitions, replicationFactor: replicationFactor, configs: configs)
        await admin.close()
        let opened = try await eventually(timeoutMs: 30_000) { replicasOpened(topic) }
        try #require(opened, "not every broker hosting \(topic) opened its replicas: \(describeReplicas(topic, 0))")
        return controller
    }

    /// Whether some broker applied `topic`'s creation and every running broker it places a replica on
    /// has that partition's Raft group.
    func replicasOpened(_ topic: String) -> Bool {
        guard let assignment = brokers.values.lazy.compactMap({ $0.metadataReplica?.state.topics[topic] }).first else { return false }
        for (partition, hosts) in assignment.replicas.enumerated() {
            for host in hosts {
                guard let broker = brokers[host] else { continue }  // not running
                guard (try? broker.registry.partition(topic, Int32(partition)).replica) != nil else { return false }
            }
        }
        return true
    }

    /// Polls until `condition` holds (an election takes 1 to 2 s); false after `timeoutMs`.
    func eventually(timeoutMs: Int = 10_000, _ condition: () async throws -> Bool) async throws -> Bool {
        try await pollUntil(timeoutMs: timeoutMs, condition)
    }

    /// The broker the metadata group elected, once every running broker agrees on it (and it is not
    /// `replacing`, a controller just stopped).
    func controller(replacing old: Int32? = nil) async throws -> Int32? {
        var found: Int32?
        _ = try await eventually {
            let leaders = brokers.values.compactMap { $0.metadataReplica?.group?.status.leader }.map { Int32($0) }
            guard leaders.count == brokers.count, let first = leaders.first, first != old,
                  leaders.allSatisfy({ $0 == first }) else { return false }
            found = first
            return true
        }
        return found
    }

    /// The leader of `topic`-`partition` once the running brokers hosting it agree.
    func leader(_ topic: String, _ partition: Int32) async throws -> Int32? {
        var found: Int32?
        _ = try await eventually {
            let leaders = brokers.values.compactMap { try? $0.registry.partition(topic, partition).replica?.status }.filter(\.isLeader)
            guard leaders.count == 1, let status = leaders.first, let leader = status.leader else { return false }
            found = Int32(leader)
            return true
        }
        return found
    }

    /// The leader once it is the partition's preferred replica: leadership moves there shortly after
    /// the first election and then stays while that broker is up (tests that need a stable leader).
    func settledLeader(_ topic: String, _ partition: Int32) async throws -> Int32? {
        var found: Int32?
        _ = try await eventually {
            guard let preferred = brokers.values.lazy.compactMap({ $0.metadataReplica?.state.topics[topic]?.replicas[Int(partition)].first }).first,
                  let leader = try await leader(topic, partition), leader == preferred else { return false }
            found = leader
            return true
        }
        return found
    }

    /// Each running replica's log end, high watermark and Raft status, for failure messages.
    func describeReplicas(_ topic: String, _ partition: Int32) -> String {
        brokers.sorted { $0.key < $1.key }.map { id, broker in
            guard let replica = try? broker.registry.partition(topic, partition) else { return "node \(id): no such partition" }
            return "node \(id): end \(replica.log.logEndOffset), hw \(replica.log.highWatermark), \(String(describing: replica.replica?.status))"
        }.joined(separator: "\n")
    }

    func shutdown() async {
        for id in brokers.keys { await stop(id) }
        try? await group.shutdownGracefully()
        directory.remove()
    }
}

extension InProcessClusters {
    @Suite("cluster of three in-process brokers")
    struct ClusterIntegrationTests {
        @Test("topic create -r 3 places a replica everywhere; acks=all produce commits; every replica holds the same bytes")
        func replicatesAcrossBrokers() async throws {
            let cluster = ClusterHarness()
            for id: Int32 in 1...3 { try await cluster.start(id) }
            let controller = try #require(try await cluster.controller(), "no metadata leader elected")
            let admin = cluster.client(controller)
            try await admin.createTopic("t", partitions: 2, replicationFactor: 3)
            for partition: Int32 in 0..<2 {
                let leader = try #require(try await cluster.settledLeader("t", partition), "partition \(partition) has no leader")
                let client = cluster.client(leader)
                for round in 0..<5 {
                    let answer = try await ProduceFetchTests.produce(client, topic: "t", partition: partition,
                                                                     try ProduceFetchTests.batch(["p\(partition)-\(round)"]))
                    #expect(answer.error == .none, "\(answer.errorMessage ?? "")")
                }
                let records = try await ProduceFetchTests.fetchAll(client, topic: "t", partition: partition)
                #expect(records.map { String(decoding: $0.value ?? [], as: UTF8.self) } == (0..<5).map { "p\(partition)-\($0)" })
                // A follower refuses the produce and names the leader.
                let follower = try #require((1...3).first { $0 != leader })
                let refused = try await ProduceFetchTests.produce(cluster.client(follower), topic: "t", partition: partition,
                                                                  try ProduceFetchTests.batch(["nope"]))
                #expect(refused.error == .notLeader, "\(refused.errorMessage ?? "")")
                await client.close()
            }
            // Every replica converges on the same log, byte for byte, up to the high watermark.
            for partition: Int32 in 0..<2 {
                let converged = try await cluster.eventually {
                    let logs = try cluster.brokers.values.map { try $0.registry.partition("t", partition).log }
                    let ends = logs.map(\.highWatermark)
                    guard Set(ends).count == 1, let end = ends.first, end > 0 else { return false }
                    let bytes = try logs.map { try $0.read(from: 0, maxBytes: 1 << 20, maxOffset: end).bytes }
                    return Set(bytes.map { $0 }).count == 1
                }
                #expect(converged, "\(cluster.describeReplicas("t", partition))")
            }
            await admin.close()
            await cluster.shutdown()
        }

        @Test("the leader's broker stops: a new leader takes writes; two of three down refuses acks=all; the stopped ones catch up")
        func failover() async throws {
            let cluster = ClusterHarness()
            for id: Int32 in 1...3 { try await cluster.start(id) }
            let controller = try #require(try await cluster.controller())
            let admin = cluster.client(controller)
            try await admin.createTopic("f", partitions: 1, replicationFactor: 3)
            await admin.close()
            var expected: [String] = []
            func produce(_ value: String, via id: Int32, timeoutMs: Int32 = 10_000) async throws -> ProduceResponse.Partition {
                let client = cluster.client(id)
                defer { Task { await client.close() } }
                let request = ProduceRequest(acks: .all, timeoutMs: timeoutMs, topics: [.init(name: "f", partitions: [
                    .init(partition: 0, records: try ProduceFetchTests.batch([value]))])])
                let response = try await client.send(.produce, request, expecting: ProduceResponse.self)
                return try #require(response.topics.first?.partitions.first)
            }
            let first = try #require(try await cluster.settledLeader("f", 0))
            for k in 0..<3 {
                #expect(try await produce("a\(k)", via: first).error == .none)
                expected.append("a\(k)")
            }
            await cluster.stop(first)
            let second = try #require(try await cluster.leader("f", 0), "no new leader after broker \(first) stopped")
            #expect(second != first)
            for k in 0..<3 {
                let answer = try await produce("b\(k)", via: second)
                #expect(answer.error == .none, "\(answer.errorMessage ?? "")")
                expected.append("b\(k)")
            }
            // With a second broker down no majority is left: acks=all is refused within the timeout.
            await cluster.stop(second)
            let remaining = try #require((1...3).first { $0 != first && $0 != second })
            let refused = try await produce("c", via: remaining, timeoutMs: 500)
            #expect(refused.error == .notEnoughReplicas || refused.error == .notLeader, "\(refused.error): \(refused.errorMessage ?? "")")
            // Both come back and catch up; the log holds exactly the acknowledged values, once each.
            try await cluster.start(first)
            try await cluster.start(second)
            let leader = try #require(try await cluster.leader("f", 0))
            let client = cluster.client(leader)
            let converged = try await cluster.eventually {
                let logs = try cluster.brokers.values.map { try $0.registry.partition("f", 0).log }
                let ends = Set(logs.map(\.highWatermark))
                guard ends.count == 1, let end = ends.first, end > 0 else { return false }
                let bytes = try logs.map { try $0.read(from: 0, maxBytes: 1 << 20, maxOffset: end).bytes }
                return Set(bytes).count == 1
            }
            #expect(converged, "\(cluster.describeReplicas("f", 0))")
            let values = try await ProduceFetchTests.fetchAll(client, topic: "f").map { String(decoding: $0.value ?? [], as: UTF8.self) }
            #expect(values.filter { $0 != "c" } == expected, "\(values)")
            await client.close()
            await cluster.shutdown()
        }

        @Test("producers that got their ids from different brokers never collide: both producers' first batches are stored")
        func producerIdsAreClusterUnique() async throws {
            let cluster = ClusterHarness()
            for id: Int32 in 1...3 { try await cluster.start(id) }
            let controller = try #require(try await cluster.controller())
            let admin = cluster.client(controller)
            try await admin.createTopic("ids", partitions: 1, replicationFactor: 3)
            await admin.close()
            let leader = try #require(try await cluster.settledLeader("ids", 0))
            var stored: [String] = []
            var ids: Set<Int64> = []
            for id: Int32 in 1...3 {
                let client = cluster.client(id)
                let (producerId, epoch) = try await client.initProducerId()
                ids.insert(producerId)
                await client.close()
                let writer = cluster.client(leader)
                let answer = try await ProduceFetchTests.produce(writer, topic: "ids",
                    try ProduceFetchTests.batch(["from-\(id)"], producerId: producerId, epoch: epoch, sequence: 0))
                #expect(answer.error == .none, "\(answer.errorMessage ?? "")")
                stored = try await ProduceFetchTests.fetchAll(writer, topic: "ids").map { String(decoding: $0.value ?? [], as: UTF8.self) }
                await writer.close()
            }
            #expect(ids.count == 3, "producer ids \(ids)")
            #expect(stored == ["from-1", "from-2", "from-3"])
            await cluster.shutdown()
        }

        @Test("leadership settles on each partition's preferred replica, so three brokers lead one of three partitions each")
        func leadersSpreadEvenly() async throws {
            let cluster = ClusterHarness()
            for id: Int32 in 1...3 { try await cluster.start(id) }
            let controller = try #require(try await cluster.controller())
            let admin = cluster.client(controller)
            try await admin.createTopic("spread", partitions: 3, replicationFactor: 3)
            await admin.close()
            let broker = try #require(cluster.brokers[controller])
            let preferred = try (0..<3).map { p in
                try #require(broker.metadataReplica?.state.topics["spread"]?.replicas[p].first)
            }
            #expect(Set(preferred).count == 3, "placement should prefer a different broker per partition: \(preferred)")
            let settled = try await cluster.eventually {
                var leaders: [Int32] = []
                for p: Int32 in 0..<3 {
                    guard let leader = try await cluster.leader("spread", p) else { return false }
                    leaders.append(leader)
                }
                return leaders == preferred
            }
            #expect(settled, "leaders did not move to the preferred replicas \(preferred)")
            await cluster.shutdown()
        }
    }
}
