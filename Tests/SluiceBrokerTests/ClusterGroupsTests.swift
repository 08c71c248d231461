import SluiceClient
import SluiceCore
import SluiceTestSupport
import SluiceWire
import Testing

@testable import SluiceBroker

extension InProcessClusters {
    /// Consumer groups in a cluster: the controller coordinates them, offsets travel through the metadata
    /// group, and every broker keeps them, so a new controller answers with what the old one acknowledged.
    @Suite("consumer groups in a cluster")
    struct ClusterGroupsTests {
        /// Every running broker's stored offsets of `group`, for comparing.
        static func storedOffsets(_ cluster: ClusterHarness, group: String) throws -> [Int32: [String]] {
            var stored: [Int32: [String]] = [:]
            for (id, broker) in cluster.brokers {
                stored[id] = try broker.groups.fetchOffsets(OffsetFetchRequest(groupId: group, topics: nil)).topics.flatMap { topic in
                    topic.partitions.map { "\(topic.name)-\($0.partition)=\($0.offset)/\($0.metadata ?? "-")" }
                }
            }
            return stored
        }

        @Test("a commit sent to any broker reaches the controller, is stored on every broker, and outlives the controller")
        func offsetsSurviveTheController() async throws {
            let cluster = ClusterHarness()
            let controller = try await cluster.startWithTopic("g", partitions: 2, replicationFactor: 3)
            let other = try #require((1...3).first { $0 != controller })

            // Asked directly, a broker that is not the controller refuses and names it. (Under load the
            // metadata group may re-elect meanwhile: an answer counts only from a broker that did not lead.)
            var refusal: SluiceClientError?
            var named: Int32?
            _ = try await cluster.eventually {
                guard let (id, broker) = cluster.brokers.first(where: { $0.value.metadataReplica?.group?.status.isLeader == false }),
                      let leader = broker.metadataReplica?.group?.status.leader else { return false }
                let client = cluster.client(id)
                defer { Task { await client.close() } }
                do {
                    _ = try await client.send(.offsetFetch, OffsetFetchRequest(groupId: "grp", topics: nil), expecting: OffsetFetchResponse.self)
                    #expect(broker.metadataReplica?.group?.status.isLeader == true, "broker \(id) answered a group request without being the controller")
                    return false
                } catch let error as SluiceClientError {
                    (refusal, named) = (error, Int32(leader))
                    return true
                }
            }
            #expect(refusal?.code == .notCoordinator, "\(String(describing: refusal))")
            #expect(refusal?.message.contains("broker \(named ?? -1)") == true, "\(String(describing: refusal))")
            let direct = cluster.client(other)
            // The client follows the redirection.
            let offsets = [TopicPartitionKey(topic: "g", partition: 0): Int64(5), TopicPartitionKey(topic: "g", partition: 1): 7]
            try await direct.commitOffsets(group: "grp", offsets: offsets)
            #expect(try await direct.fetchOffsets(group: "grp") == offsets)
            // Committed means applied by a majority; the third broker applies it a moment later.
            let everywhere = try await cluster.eventually {
                try Set(Self.storedOffsets(cluster, group: "grp").values) == [["g-0=5/-", "g-1=7/-"]]
            }
            #expect(everywhere, "\((try? Self.storedOffsets(cluster, group: "grp")) ?? [:])")
            await direct.close()

            // A commit naming a partition that does not exist is refused for that partition only.
            let survivor = cluster.client(other)
            await #expect(throws: SluiceClientError.self) {
                try await survivor.commitOffsets(group: "grp", offsets: [TopicPartitionKey(topic: "g", partition: 9): 1])
            }

            await cluster.stop(controller)
            _ = try #require(try await cluster.controller(replacing: controller), "no controller after broker \(controller) stopped")
            #expect(try await survivor.fetchOffsets(group: "grp") == offsets)
            try await survivor.commitOffsets(group: "grp", offsets: [TopicPartitionKey(topic: "g", partition: 0): 9])
            // The old controller comes back with what it stored (its local copy) and learns the newer commit.
            try await cluster.start(controller)
            let caughtUp = try await cluster.eventually {
                try Set(Self.storedOffsets(cluster, group: "grp").values) == [["g-0=9/-", "g-1=7/-"]]
            }
            #expect(caughtUp, "\((try? Self.storedOffsets(cluster, group: "grp")) ?? [:])")
            await survivor.close()
            await cluster.shutdown()
        }

        @Test("a group member rejoins at the new controller and keeps its committed position")
        func memberFollowsTheController() async throws {
            let cluster = ClusterHarness()
            let controller = try await cluster.startWithTopic("m", partitions: 1, replicationFactor: 3)
            let other = try #require((1...3).first { $0 != controller })
            let client = cluster.client(other)
            let member = GroupHeartbeatRequest(groupId: "grp", memberId: "", memberEpoch: 0, sessionTimeoutMs: 30_000,
                                               subscribedTopics: ["m"], assignor: nil, ownedPartitions: [])
            let joined = try await client.groupHeartbeat(member)
            #expect(joined.memberEpoch > 0)
            try await client.commitOffsets(group: "grp", memberId: joined.memberId, memberEpoch: joined.memberEpoch,
                                           offsets: [TopicPartitionKey(topic: "m", partition: 0): 3])
            await cluster.stop(controller)
            _ = try #require(try await cluster.controller(replacing: controller), "no controller after broker \(controller) stopped")
            // The new controller does not know the member: it must join again, and finds the offset.
            var again = member
            again.memberId = joined.memberId
            again.memberEpoch = joined.memberEpoch
            do {
                _ = try await client.groupHeartbeat(again)
                Issue.record("the new controller accepted a member it never saw")
            } catch let error as SluiceClientError {
                #expect(error.code == .unknownMemberId, "\(error)")
            }
            let rejoined = try await client.groupHeartbeat(member)
            #expect(rejoined.memberEpoch > 0)
            #expect(try await client.fetchOffsets(group: "grp") == [TopicPartitionKey(topic: "m", partition: 0): 3])
            await client.close()
            await cluster.shutdown()
        }
    }
}
