import SluiceClient
import SluiceCore
import SluiceTestSupport
import SluiceWire
import Testing

@testable import SluiceBroker

/// Consumer groups end to end over the wire: join, rebalance on join/leave/session timeout, fencing,
/// committed offsets across restarts.
@Suite("consumer groups")
struct GroupIntegrationTests {
    /// Polls each consumer until `done` holds for their assignments, checking after every round that no
    /// partition is owned by two of them. Fails after `rounds` rounds.
    static func pollUntil(_ consumers: [Consumer], rounds: Int = 200, _ done: ([[TopicPartitionKey: Int64]]) -> Bool) async throws {
        for _ in 0..<rounds {
            var assignments: [[TopicPartitionKey: Int64]] = []
            for consumer in consumers {
                _ = try await consumer.poll()
                assignments.append(await consumer.assignment)
            }
            var owners: [TopicPartitionKey: Int] = [:]
            for (index, assignment) in assignments.enumerated() {
                for key in assignment.keys {
                    #expect(owners[key] == nil, "\(key) owned by consumers \(owners[key] ?? -1) and \(index) at once")
                    owners[key] = index
                }
            }
            if done(assignments) { return }
        }
        Issue.record("the group did not reach the expected assignment")
    }

    static func consumer(_ harness: BrokerHarness, group: String, session: Int32 = 10_000) -> Consumer {
        var config = ConsumerConfig(groupId: group)
        config.fetchMaxWaitMs = 20
        config.sessionTimeoutMs = session
        return Consumer(client: harness.client(clientId: "member"), config: config)
    }

    @Test("join, rebalance on a second member, and on its leave")
    func joinAndLeave() async throws {
        let harness = try await BrokerHarness.start()
        let admin = harness.client()
        try await admin.createTopic("g", partitions: 4)
        let first = Self.consumer(harness, group: "G")
        try await first.subscribe(["g"])
        try await Self.pollUntil([first]) { $0[0].count == 4 }
        let second = Self.consumer(harness, group: "G")
        try await second.subscribe(["g"])
        try await Self.pollUntil([first, second]) { $0[0].count == 2 && $0[1].count == 2 }
        let described = try await admin.describeGroup("G")
        #expect(described.members.count == 2)
        #expect(described.state == "stable")
        await second.close()
        try await Self.pollUntil([first]) { $0[0].count == 4 }
        await first.close()
        await admin.close()
        await harness.stop()
    }

    @Test("a member that stops heartbeating is removed after its session timeout")
    func sessionTimeout() async throws {
        let harness = try await BrokerHarness.start()
        let admin = harness.client()
        try await admin.createTopic("s", partitions: 2)
        let steady = Self.consumer(harness, group: "S")
        let silent = Self.consumer(harness, group: "S", session: 1000)
        try await steady.subscribe(["s"])
        try await silent.subscribe(["s"])
        try await Self.pollUntil([steady, silent]) { $0[0].count == 1 && $0[1].count == 1 }
        // `silent` stops polling; the broker's expiry timer removes it and `steady` takes both.
        try await Self.pollUntil([steady], rounds: 1000) { $0[0].count == 2 }
        #expect(try await admin.describeGroup("S").members.count == 1)
        await steady.close()
        await admin.close()
        await harness.stop()
    }

    @Test("stale epochs are fenced; standalone commits are refused while the group has members")
    func fencing() async throws {
        let harness = try await BrokerHarness.start()
        let client = harness.client()
        try await client.createTopic("f", partitions: 2)
        // The longest session the broker allows: the members must outlive any stall of this test, or the
        // checks below would meet an expired member instead of a stale epoch.
        let join = GroupHeartbeatRequest(groupId: "F", memberId: "", memberEpoch: 0, sessionTimeoutMs: 300_000,
                                         subscribedTopics: ["f"], assignor: nil, ownedPartitions: [])
        let joined = try await client.send(.groupHeartbeat, join, expecting: GroupHeartbeatResponse.self)
        #expect(joined.memberEpoch > 0)
        // A second member raises the group epoch; the first one picks it up on its next heartbeat.
        var other = join
        other.memberId = ""
        _ = try await client.send(.groupHeartbeat, other, expecting: GroupHeartbeatResponse.self)
        let owned = joined.assignment ?? []
        let beat = GroupHeartbeatRequest(groupId: "F", memberId: joined.memberId, memberEpoch: joined.memberEpoch, sessionTimeoutMs: 300_000,
                                         subscribedTopics: nil, assignor: nil, ownedPartitions: owned)
        let next = try await client.send(.groupHeartbeat, beat, expecting: GroupHeartbeatResponse.self)
        #expect(next.memberEpoch > joined.memberEpoch)
        do {
            try await client.commitOffsets(group: "F", memberId: joined.memberId, memberEpoch: joined.memberEpoch,
                                           offsets: [TopicPartitionKey(topic: "f", partition: 0): 1])
            Issue.record("a commit with a stale epoch was accepted")
        } catch let error as SluiceClientError {
            #expect(error.code == .fencedMemberEpoch)
        }
        do {
            try await client.commitOffsets(group: "F", offsets: [TopicPartitionKey(topic: "f", partition: 0): 1])
            Issue.record("a standalone commit to a group with members was accepted")
        } catch let error as SluiceClientError {
            #expect(error.code == .groupNotEmpty, "\(error)")
        }
        do {
            _ = try await client.send(.groupHeartbeat, GroupHeartbeatRequest(
                groupId: "F", memberId: "nobody", memberEpoch: 3, sessionTimeoutMs: 10_000, subscribedTopics: nil,
                assignor: nil, ownedPartitions: nil), expecting: GroupHeartbeatResponse.self)
            Issue.record("an unknown member was accepted")
        } catch let error as SluiceClientError {
            #expect(error.code == .unknownMemberId)
        }
        await client.close()
        await harness.stop()
    }

    @Test("committed offsets survive a restart and are where a rejoining member starts")
    func committedOffsetsSurviveRestart() async throws {
        let harness = try await BrokerHarness.start()
        var client = harness.client()
        try await client.createTopic("o", partitions: 1)
        let producer = Producer(client: client)
        for index in 0..<10 { try await producer.enqueue(ProducerRecord(topic: "o", value: Array("r\(index)".utf8), partition: 0)) }
        await producer.flush()
        try await client.commitOffsets(group: "O", offsets: [TopicPartitionKey(topic: "o", partition: 0): 6])
        await client.close()
        try await harness.restart()
        client = harness.client()
        #expect(try await client.fetchOffsets(group: "O")[TopicPartitionKey(topic: "o", partition: 0)] == 6)
        var config = ConsumerConfig(groupId: "O")
        config.fetchMaxWaitMs = 20
        let consumer = Consumer(client: client, config: config)
        try await consumer.subscribe(["o"])
        var offsets: [Int64] = []
        for _ in 0..<50 where offsets.count < 4 { offsets += try await consumer.poll().map(\.offset) }
        #expect(offsets == [6, 7, 8, 9])
        await consumer.close()
        await client.close()
        await harness.stop()
    }
}
