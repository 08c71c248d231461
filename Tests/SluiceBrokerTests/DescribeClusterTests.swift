import SluiceClient
import SluiceCore
import SluiceRaft
import SluiceTestSupport
import SluiceWire
import Testing

@testable import SluiceBroker

extension InProcessClusters {
    /// DescribeCluster (protocol.md, "Replication"): what each broker reports of the cluster, on three
    /// in-process brokers and on one broker alone; the replica rows and the partition bound on their own.
    @Suite("DescribeCluster")
    struct DescribeClusterTests {
        typealias Response = DescribeClusterResponse

        /// Three brokers with topic `topic` (3 partitions, 3 replicas) created, partition 0 holding
        /// `records` acknowledged records; returns the controller and partition 0's leader at the end.
        static func clusterWithTopic(_ cluster: ClusterHarness, _ topic: String, records: Int) async throws -> (controller: Int32, leader: Int32) {
            for id: Int32 in 1...3 { try await cluster.start(id) }
            let controller = try #require(try await cluster.controller(), "no metadata leader elected")
            let admin = cluster.client(controller)
            try await admin.createTopic(topic, partitions: 3, replicationFactor: 3)
            await admin.close()
            for partition: Int32 in 0..<3 { _ = try #require(try await cluster.leader(topic, partition), "\(topic)-\(partition) has no leader") }
            for k in 0..<records { try await produceToLeader(cluster, topic, value: "v\(k)") }
            return (controller, try #require(try await cluster.leader(topic, 0)))
        }

        /// Produces `value` to partition 0 with acks=all. Leadership may move to the preferred replica
        /// meanwhile, so a `not_leader` answer is retried at the new leader, a bounded number of times.
        static func produceToLeader(_ cluster: ClusterHarness, _ topic: String, value: String) async throws {
            let attemptsMax = 20
            var last = "no attempt"
            for _ in 0..<attemptsMax {
                let leader = try #require(try await cluster.leader(topic, 0), "\(topic)-0 has no leader")
                let client = cluster.client(leader)
                let answer = try await ProduceFetchTests.produce(client, topic: topic, partition: 0, try ProduceFetchTests.batch([value]))
                await client.close()
                if answer.error == .none { return }
                last = "\(answer.error): \(answer.errorMessage ?? "")"
                guard answer.error == .notLeader else { break }
            }
            Issue.record("producing \(value) to \(topic)-0 failed: \(last)")
        }

        /// Runs `body` on a fresh three-broker harness and always shuts it down, also when `body` throws.
        static func withCluster(_ body: (ClusterHarness) async throws -> Void) async throws {
            let cluster = ClusterHarness()
            do {
                try await body(cluster)
            } catch {
                await cluster.shutdown()
                throw error
            }
            await cluster.shutdown()
        }

        static func row(_ response: Response, _ topic: String, _ partition: Int32) -> Response.Partition? {
            response.partitions.first { $0.topic == topic && $0.partition == partition }
        }

        @Test("three brokers: the leader reports every broker up, the controller, leader, term, replicas and lag 0 once committed; a follower its own log end")
        func leaderAndFollowerViews() async throws {
            try await Self.withCluster { cluster in
                let (controller, _) = try await Self.clusterWithTopic(cluster, "s", records: 5)
                let assigned = try #require(cluster.brokers[controller]?.metadataReplica?.state.assignment(topic: "s", partition: 0))
                #expect(Set(assigned) == [1, 2, 3])

                // Followers acknowledge asynchronously (the leader learns their positions with the next append
                // response or heartbeat), and leadership may still move to the preferred replica: nothing here
                // can await either, so poll for a leader whose answer matches its own log and status.
                var seen = Response(controllerId: -1, brokers: [], partitions: [])
                var leader: Int32 = -1
                var logEnd: Int64 = -1
                let converged = try await cluster.eventually {
                    guard let (id, broker) = cluster.brokers.first(where: { (try? $0.value.registry.partition("s", 0).replica?.status.isLeader) == true }),
                          let before = try broker.registry.partition("s", 0).replica?.status else { return false }
                    seen = broker.describeCluster(DescribeClusterRequest())
                    (leader, logEnd) = (id, before.endOffset)
                    guard let s0 = Self.row(seen, "s", 0), (try broker.registry.partition("s", 0).replica?.status.term) == before.term else { return false }
                    // The controller named is the one this broker follows (an election under load may move it).
                    let following = broker.metadataReplica?.group?.status.leader.map { Int32(truncatingIfNeeded: $0) }
                    return seen.controllerId == following && seen.brokers.allSatisfy(\.isUp) && s0.leader == id && s0.term == Int64(before.term)
                        && s0.highWatermark == logEnd
                        && s0.replicas.allSatisfy { $0.lag == 0 && $0.inSync && $0.logEndOffset == logEnd }
                }
                #expect(converged, "\(seen)\n\(cluster.describeReplicas("s", 0))")
                #expect(seen.error == .none && seen.errorMessage == nil)
                #expect((1...3).contains(seen.controllerId), "\(seen.controllerId) (first elected: \(controller))")
                #expect(seen.brokers.map(\.nodeId) == [1, 2, 3])
                #expect(seen.brokers.map { Int($0.port) } == [1, 2, 3].map { cluster.ports[$0] ?? -1 })
                let s0 = try #require(Self.row(seen, "s", 0))
                // Five records, plus a leader's marker per term it led: the log holds at least the records.
                #expect(s0.term > 0 && logEnd >= 5, "\(s0)")
                #expect(s0.replicas.map(\.nodeId) == assigned, "replicas in assignment order")
                // Every partition is listed, the ones led elsewhere too, and no internal group by default.
                #expect(seen.partitions.map { "\($0.topic)-\($0.partition)" } == ["s-0", "s-1", "s-2"])

                let follower = try #require((1...3).first { $0 != leader })
                let followerBroker = try #require(cluster.brokers[follower])
                var fromFollower = Response(controllerId: -1, brokers: [], partitions: [])
                let followerCaughtUp = try await cluster.eventually {
                    fromFollower = followerBroker.describeCluster(DescribeClusterRequest())
                    guard let row = Self.row(fromFollower, "s", 0) else { return false }
                    let following = followerBroker.metadataReplica?.group?.status.leader.map { Int32(truncatingIfNeeded: $0) }
                    return fromFollower.controllerId == following && row.leader == leader && row.term == s0.term && row.replicas.first { $0.nodeId == follower }?.logEndOffset == logEnd
                }
                #expect(followerCaughtUp, "\(fromFollower)")
                #expect((1...3).contains(fromFollower.controllerId))
                // The follower sends to the leader (its acknowledgements), so it holds a connection to it.
                #expect(fromFollower.brokers.filter(\.isUp).map(\.nodeId).contains(leader))
                #expect(fromFollower.brokers.first { $0.nodeId == follower }?.isUp == true)
                let followerRow = try #require(Self.row(fromFollower, "s", 0))
                #expect(followerRow.replicas.map(\.nodeId) == assigned)
                for replica in followerRow.replicas {
                    // Only a leader knows lags; a follower knows its own log end.
                    #expect(replica.lag == -1 && !replica.inSync, "\(replica)")
                    #expect(replica.logEndOffset == (replica.nodeId == follower ? logEnd : -1), "\(replica)")
                }
            }
        }

        @Test("include_internal adds the metadata group, led by the controller, with every member as replica")
        func internalGroups() async throws {
            try await Self.withCluster { cluster in
                _ = try await Self.clusterWithTopic(cluster, "i", records: 0)
                // Under load the metadata group may hold another election meanwhile: take an answer given
                // while the broker asked is the controller it names.
                var answer: (controller: Int32, all: DescribeClusterResponse)?
                _ = try await cluster.eventually {
                    guard let controller = try await cluster.controller(), let broker = cluster.brokers[controller] else { return false }
                    let all = broker.describeCluster(DescribeClusterRequest(includeInternal: true))
                    guard all.controllerId == controller else { return false }
                    answer = (controller, all)
                    return true
                }
                let (controller, all) = try #require(answer, "no stable controller")
                let broker = try #require(cluster.brokers[controller])
                let plain = broker.describeCluster(DescribeClusterRequest(includeInternal: false))
                #expect(!plain.partitions.contains { $0.topic.hasPrefix("__") }, "\(plain.partitions.map(\.topic))")
                let metadata = try #require(Self.row(all, GroupID.metadata.topic, GroupID.metadata.partition), "\(all.partitions.map(\.topic))")
                #expect(metadata.leader == controller)
                #expect(metadata.replicas.map(\.nodeId) == [1, 2, 3])
                #expect(metadata.replicas.first { $0.nodeId == controller }?.lag == 0)
                // Sorted by topic: the reserved name sorts before the user topic.
                let topics = all.partitions.map(\.topic)
                #expect(topics == topics.sorted(), "\(topics)")
            }
        }

        @Test("a stopped broker: the others report it down, and the partition's new leader its replica out of sync, within a bounded poll")
        func stoppedBrokerIsDown() async throws {
            try await Self.withCluster { cluster in
                let (_, leader) = try await Self.clusterWithTopic(cluster, "d", records: 2)
                await cluster.stop(leader)
                let remaining = (1...3).filter { $0 != leader }
                for id in remaining {
                    let broker = try #require(cluster.brokers[id])
                    var seen = Response(controllerId: -1, brokers: [], partitions: [])
                    // The survivors elect a new leader for the stopped broker's partition, so they talk to
                    // each other: each sees the other up.
                    let reported = try await cluster.eventually {
                        seen = broker.describeCluster(DescribeClusterRequest())
                        return seen.brokers.filter(\.isUp).map(\.nodeId) == remaining
                    }
                    #expect(reported, "broker \(id) does not see exactly \(remaining) up: \(seen.brokers)")
                }
                let newLeader = try #require(try await cluster.leader("d", 0), "no new leader for d-0")
                let leaderBroker = try #require(cluster.brokers[newLeader])
                var row: Response.Partition?
                // Liveness marks are cleared at each check-quorum round and set again by the next answers,
                // so the stopped replica first shows out of sync together with the live one: wait for the
                // live one to answer again.
                let outOfSync = try await cluster.eventually {
                    row = Self.row(leaderBroker.describeCluster(DescribeClusterRequest()), "d", 0)
                    return row?.replicas.filter(\.inSync).map(\.nodeId).sorted() == remaining
                }
                #expect(outOfSync, "\(String(describing: row))")
                #expect(row?.leader == newLeader)
                #expect(row?.replicas.first { $0.nodeId == leader }?.inSync == false)
            }
        }

        @Test("over the wire: the client merges every broker's answer; a stopped broker is reported down, not an error")
        func mergedOverTheWire() async throws {
            try await Self.withCluster { cluster in
                _ = try await Self.clusterWithTopic(cluster, "w", records: 3)
                let client = cluster.client(1)
                let direct = try await client.describeCluster()
                #expect(direct.brokers.map(\.nodeId) == [1, 2, 3] && direct.partitions.count == 3, "\(direct)")

                // Each partition's row must come from its leader, the only broker with lag figures.
                var merged = Response(controllerId: -1, brokers: [], partitions: [])
                let settled = try await cluster.eventually {
                    merged = try await client.describeClusterFromEveryBroker()
                    return merged.brokers.allSatisfy(\.isUp) && merged.partitions.count == 3
                        && merged.partitions.allSatisfy { $0.leader > 0 && $0.replicas.count == 3 && $0.replicas.allSatisfy { $0.lag == 0 && $0.inSync } }
                }
                #expect(settled, "\(merged)")
                #expect(merged.errorMessage == nil)
                #expect(merged.controllerId == cluster.brokers[1]?.metadataReplica?.group?.status.leader.map { Int32($0) })

                await cluster.stop(3)
                let afterStop = try await client.describeClusterFromEveryBroker()
                #expect(afterStop.brokers.map(\.isUp) == [true, true, false], "\(afterStop.brokers)")
                #expect(afterStop.errorMessage?.contains("broker 3") == true, "\(afterStop.errorMessage ?? "no message")")
                #expect(afterStop.partitions.map(\.partition) == [0, 1, 2], "the survivors still describe every partition")
                await client.close()
            }
        }

        @Test("one broker alone: itself up and controller; each partition led here by its only replica, in sync")
        func singleBroker() async throws {
            let harness = try await BrokerHarness.start("describe-alone")
            do {
                try await Self.checkSingleBroker(harness)
            } catch {
                await harness.stop()
                throw error
            }
            await harness.stop()
        }

        static func checkSingleBroker(_ harness: BrokerHarness) async throws {
            let client = harness.client()
            try await client.createTopic("solo", partitions: 2)
            for k in 0..<3 {
                let answer = try await ProduceFetchTests.produce(client, topic: "solo", partition: 1, try ProduceFetchTests.batch(["v\(k)"]))
                #expect(answer.error == .none, "\(answer.errorMessage ?? "")")
            }
            await client.close()
            let broker = harness.broker
            let selfId = broker.config.nodeId
            let answer = broker.describeCluster(DescribeClusterRequest())
            #expect(answer.error == .none && answer.errorMessage == nil)
            #expect(answer.controllerId == selfId)
            #expect(answer.brokers == [Response.Broker(nodeId: selfId, host: broker.config.host, port: Int32(harness.port), isUp: true)])
            let only = Response.Replica(nodeId: selfId, logEndOffset: 0, lag: 0, inSync: true)
            #expect(answer.partitions == [
                Response.Partition(topic: "solo", partition: 0, leader: selfId, term: 0, highWatermark: 0, replicas: [only]),
                Response.Partition(topic: "solo", partition: 1, leader: selfId, term: 0, highWatermark: 3,
                                   replicas: [Response.Replica(nodeId: selfId, logEndOffset: 3, lag: 0, inSync: true)]),
            ])
            let all = broker.describeCluster(DescribeClusterRequest(includeInternal: true))
            #expect(all.partitions.contains { $0.topic == "__consumer_offsets" }, "\(all.partitions.map(\.topic))")
            #expect(all.partitions.count > answer.partitions.count)
        }

        // MARK: Rows on their own

        @Test("replica rows: a leader reports each member's log end, lag and liveness; unknown members and a follower's peers are -1")
        func replicaRows() {
            var leader = RaftGroup.Status()
            leader.leader = 1
            leader.isLeader = true
            leader.term = 4
            leader.endOffset = 20
            leader.replicas = [1: .init(endOffset: 20, recentlyActive: true), 2: .init(endOffset: 5, recentlyActive: true),
                               3: .init(endOffset: 20, recentlyActive: false)]
            #expect(Broker.replicaRow(1, leader, selfId: 1) == .init(nodeId: 1, logEndOffset: 20, lag: 0, inSync: true))
            #expect(Broker.replicaRow(2, leader, selfId: 1) == .init(nodeId: 2, logEndOffset: 5, lag: 15, inSync: true))
            #expect(Broker.replicaRow(3, leader, selfId: 1) == .init(nodeId: 3, logEndOffset: 20, lag: 0, inSync: false))
            #expect(Broker.replicaRow(4, leader, selfId: 1) == .init(nodeId: 4, logEndOffset: -1, lag: -1, inSync: false))

            var follower = RaftGroup.Status()
            follower.leader = 1
            follower.term = 4
            follower.endOffset = 18
            #expect(Broker.replicaRow(2, follower, selfId: 2) == .init(nodeId: 2, logEndOffset: 18, lag: -1, inSync: false))
            #expect(Broker.replicaRow(1, follower, selfId: 2) == .init(nodeId: 1, logEndOffset: -1, lag: -1, inSync: false))

            let row = Broker.partitionRow(GroupID(topic: "t", partition: 7), leader, assigned: [3, 1, 2], selfId: 1)
            #expect(row.topic == "t" && row.partition == 7 && row.leader == 1 && row.term == 4)
            #expect(row.replicas.map(\.nodeId) == [3, 1, 2])
            var leaderless = RaftGroup.Status()
            leaderless.term = 5
            #expect(Broker.partitionRow(GroupID(topic: "t", partition: 0), leaderless, assigned: [1], selfId: 1).leader == -1)
        }

        @Test("partition rows past the bound are counted, not kept, and the message says how many were left out")
        func partitionBound() {
            var rows = PartitionRows(limit: 2)
            var built = 0
            for index: Int32 in 0..<5 {
                rows.add({
                    built += 1
                    return Response.Partition(topic: "t", partition: index, leader: 1, term: 1, highWatermark: 0, replicas: [])
                }())
            }
            #expect(rows.partitions.map(\.partition) == [0, 1])
            #expect(built == 2, "rows past the bound are not built")
            #expect(rows.truncationMessage == "showing the first 2 of 5 partitions, the most one answer carries (2)")
            #expect(PartitionRows(limit: 2).truncationMessage == nil)
        }
    }
}
