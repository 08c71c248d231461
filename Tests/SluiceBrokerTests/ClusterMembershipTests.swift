import Logging
import NIOPosix
import SluiceCore
import SluiceRaft
import SluiceTestSupport
import SluiceWire
import Testing

@testable import SluiceBroker

extension InProcessClusters {
    /// Every broker must vote with the same member list: Raft messages from a broker with another list are
    /// refused, and a data directory keeps the member ids it was created with.
    @Suite("cluster membership checks")
    struct ClusterMembershipTests {
        @Test("the voters checksum covers the member ids in order, not their addresses")
        func checksumCoversIds() throws {
            let a = try ClusterConfig.parse("1@a:1,2@b:2,3@c:3")
            let moved = try ClusterConfig.parse("3@x:9,1@y:8,2@z:7")
            let other = try ClusterConfig.parse("1@a:1,2@b:2,4@c:3")
            #expect(a.votersChecksum == moved.votersChecksum)
            #expect(a.votersChecksum != other.votersChecksum)
            #expect(a.votersChecksum == CRC32C.checksum(Array("1,2,3".utf8)))
        }

        @Test("Raft messages from a broker started with another member list are refused and not delivered")
        func otherListRefused() async throws {
            let cluster = ClusterHarness()
            try await cluster.start(1)
            let manager = try #require(cluster.brokers[1]?.replicaManager)
            let vote = SluiceRaft.Message(kind: .vote, from: 2, to: 1, term: 1_000, logTerm: 1_000, index: 1_000)
            let group = RaftMessagesRequest.Group(topic: RaftWireLimits.metadataTopic, partition: RaftWireLimits.metadataPartition, messages: [vote])
            let wrong = try ClusterConfig.parse("1@127.0.0.1:1,2@127.0.0.1:2,3@127.0.0.1:3,4@127.0.0.1:4").votersChecksum
            let refused = manager.deliver(RaftMessagesRequest(fromNode: 2, votersChecksum: wrong, groups: [group]))
            #expect(refused.error == .invalidRequest)
            #expect(refused.errorMessage?.contains("different --cluster member list") == true, "\(refused.errorMessage ?? "")")
            // Nothing reached the metadata group: a vote at term 1000 would have moved its term there.
            let accepted = try await cluster.eventually(timeoutMs: 300) { (manager.allGroups.first?.status.term ?? 0) >= 1_000 }
            #expect(!accepted)
            let delivered = manager.deliver(RaftMessagesRequest(fromNode: 2, votersChecksum: manager.cluster.votersChecksum, groups: [group]))
            #expect(delivered.error == .none, "\(delivered.errorMessage ?? "")")
            let moved = try await cluster.eventually { (manager.allGroups.first?.status.term ?? 0) >= 1_000 }
            #expect(moved, "the same vote with the right checksum is delivered")
            await cluster.shutdown()
        }

        @Test("messages for another incarnation of a topic (deleted and created again) are not delivered")
        func otherIncarnationRefused() async throws {
            let cluster = ClusterHarness()
            _ = try await cluster.startWithTopic("inc", partitions: 1, replicationFactor: 3)
            let replica = try #require(try cluster.brokers[1]?.registry.partition("inc", 0).replica)
            let manager = try #require(cluster.brokers[1]?.replicaManager)
            #expect(replica.id.incarnation > 0)
            await cluster.stop(2)
            await cluster.stop(3)
            let heartbeat = SluiceRaft.Message(kind: .heartbeat, from: 2, to: 1, term: 1_000)
            func deliver(incarnation: UInt64) -> RaftMessagesResponse {
                manager.deliver(RaftMessagesRequest(fromNode: 2, votersChecksum: manager.cluster.votersChecksum, groups: [
                    .init(topic: "inc", partition: 0, incarnation: incarnation, messages: [heartbeat])]))
            }
            let stale = deliver(incarnation: replica.id.incarnation + 1)
            #expect(stale.error == .unknownTopicOrPartition, "\(stale.errorMessage ?? "")")
            #expect(!(try await cluster.eventually(timeoutMs: 300) { replica.status.term >= 1_000 }))
            #expect(deliver(incarnation: replica.id.incarnation).error == .none)
            #expect(try await cluster.eventually { replica.status.term >= 1_000 }, "the same message for this incarnation is delivered")
            await cluster.shutdown()
        }

        @Test("a data directory refuses to start with other member ids, and accepts new addresses")
        func dataDirectoryKeepsMembers() async throws {
            let cluster = ClusterHarness()
            try await cluster.start(1)
            await cluster.stop(1)
            func start(_ list: String) async throws -> Broker {
                var config = try cluster.config(1)
                try config.set("cluster", list, source: "test")
                try config.validate()
                var logger = Logger(label: "membership")
                logger.logLevel = .critical
                let broker = Broker(config: config, eventLoopGroup: cluster.group, logger: logger)
                do {
                    try await broker.start()
                } catch {
                    await broker.shutdown()
                    throw error
                }
                return broker
            }
            let port = cluster.ports[1] ?? 0
            do {
                let broker = try await start("1@127.0.0.1:\(port),2@127.0.0.1:2,3@127.0.0.1:3,4@127.0.0.1:4")
                await broker.shutdown()
                Issue.record("a broker started with a fourth member on a three-member data directory")
            } catch let error as BrokerError {
                #expect("\(error)".contains("nodes 1,2,3, but --cluster lists nodes 1,2,3,4"), "\(error)")
            }
            let moved = try await start("1@127.0.0.1:\(port),2@127.0.0.1:5,3@127.0.0.1:6")
            await moved.shutdown()
            await cluster.shutdown()
        }
    }
}
