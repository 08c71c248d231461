import SluiceTestSupport
import XCTest

@testable import SluiceBroker

/// Scenario tests of the coordinator state machine, then a seeded simulation of many clients.
final class GroupStateMachineTests: XCTestCase {
    private let orders: [String: Int32] = ["orders": 4]

    private func partitions(_ topic: String, _ range: Range<Int32>) -> [GroupTopicPartition] {
        range.map { gtp(topic, $0) }
    }

    private func joinRequest(
        _ clientId: String, memberId: String = "", topics: [String] = ["orders"], timeoutMs: Int32? = nil,
        assignor: GroupAssignorKind? = nil, owned: [GroupTopicPartition]? = nil
    ) -> GroupHeartbeat {
        GroupHeartbeat(
            memberId: memberId, memberEpoch: 0, clientId: clientId, clientHost: "10.0.0.9",
            sessionTimeoutMs: timeoutMs, subscribedTopics: topics, assignor: assignor, ownedPartitions: owned)
    }

    private func beatRequest(
        _ response: GroupHeartbeatResponse, owned: [GroupTopicPartition]?, topics: [String]? = nil
    ) -> GroupHeartbeat {
        GroupHeartbeat(memberId: response.memberId, memberEpoch: response.memberEpoch, subscribedTopics: topics,
                       ownedPartitions: owned)
    }

    /// The response, or a test failure naming the error.
    private func ok(
        _ result: Result<GroupHeartbeatResponse, GroupError>, file: StaticString = #filePath, line: UInt = #line
    ) throws -> GroupHeartbeatResponse {
        switch result {
        case .success(let response): return response
        case .failure(let error):
            XCTFail("unexpected error: \(error.message)", file: file, line: line)
            throw error
        }
    }

    private func error(_ result: Result<GroupHeartbeatResponse, GroupError>) -> GroupError? {
        if case .failure(let error) = result { return error }
        return nil
    }

    /// Each response's member heartbeats until nothing changes; returns the latest responses.
    private func settle(
        _ group: inout GroupStateMachine, _ responses: [GroupHeartbeatResponse], nowMs: Int64 = 0,
        counts: [String: Int32]? = nil
    ) throws -> [GroupHeartbeatResponse] {
        var latest = responses
        var owned = responses.map { $0.assignment ?? [] }
        for _ in 0..<4 {
            for index in latest.indices {
                let response = try ok(group.heartbeat(
                    beatRequest(latest[index], owned: owned[index]), nowMs: nowMs, topicPartitionCounts: counts ?? orders))
                if let assignment = response.assignment { owned[index] = assignment }
                latest[index] = response
            }
        }
        XCTAssertEqual(group.state, .stable)
        return latest.enumerated().map { index, response in
            var response = response
            response.assignment = owned[index]
            return response
        }
    }

    // MARK: - Joining and hand-over

    func testFirstMemberGetsEveryPartition() throws {
        var group = GroupStateMachine(groupId: "billing")
        XCTAssertEqual(group.state, .empty)
        XCTAssertNil(group.nextExpiryMs())
        let a = try ok(group.heartbeat(joinRequest("app"), nowMs: 0, topicPartitionCounts: orders))
        XCTAssertEqual(a, GroupHeartbeatResponse(
            memberId: "app-1", memberEpoch: 1, heartbeatIntervalMs: 1000, assignment: partitions("orders", 0..<4)))
        XCTAssertEqual(group.groupEpoch, 1)
        XCTAssertEqual(group.state, .stable)
        XCTAssertEqual(group.assignorKind, .sticky)
        XCTAssertEqual(group.describeMembers(), [GroupMemberDescription(
            memberId: "app-1", clientId: "app", clientHost: "10.0.0.9", memberEpoch: 1, subscribedTopics: ["orders"],
            assignedPartitions: partitions("orders", 0..<4), targetPartitions: partitions("orders", 0..<4),
            pendingRevocationPartitions: [])])
        let again = try ok(group.heartbeat(
            beatRequest(a, owned: partitions("orders", 0..<4)), nowMs: 1000, topicPartitionCounts: orders))
        XCTAssertNil(again.assignment, "unchanged assignment is not resent")
        XCTAssertEqual(again.memberEpoch, 1)
    }

    /// The safe hand-over: B gets partitions only after A has confirmed, with a later heartbeat,
    /// that it no longer consumes them.
    func testHandOverIsWithheldUntilTheOwnerConfirmsRelease() throws {
        var group = GroupStateMachine(groupId: "billing")
        let a1 = try ok(group.heartbeat(joinRequest("a"), nowMs: 0, topicPartitionCounts: orders))
        let all = partitions("orders", 0..<4)
        _ = try ok(group.heartbeat(beatRequest(a1, owned: all), nowMs: 10, topicPartitionCounts: orders))

        let b1 = try ok(group.heartbeat(joinRequest("b"), nowMs: 20, topicPartitionCounts: orders))
        XCTAssertEqual(b1.memberEpoch, 2)
        XCTAssertEqual(b1.assignment, [], "a still consumes b's partitions")
        XCTAssertEqual(group.state, .reconciling)
        XCTAssertEqual(group.describeMembers()[1].targetPartitions, partitions("orders", 2..<4))

        let a2 = try ok(group.heartbeat(beatRequest(a1, owned: all), nowMs: 30, topicPartitionCounts: orders))
        XCTAssertEqual(a2.memberEpoch, 2)
        XCTAssertEqual(a2.assignment, partitions("orders", 0..<2), "a's response drops the revoked partitions first")
        XCTAssertEqual(group.describeMembers()[0].pendingRevocationPartitions, partitions("orders", 2..<4))

        let b2 = try ok(group.heartbeat(beatRequest(b1, owned: []), nowMs: 40, topicPartitionCounts: orders))
        XCTAssertNil(b2.assignment, "still withheld: a has not confirmed")
        // nil owned = "unchanged since my last heartbeat": a still reports all four.
        let a3 = try ok(group.heartbeat(beatRequest(a2, owned: nil), nowMs: 50, topicPartitionCounts: orders))
        XCTAssertNil(a3.assignment)
        let b3 = try ok(group.heartbeat(beatRequest(b2, owned: []), nowMs: 60, topicPartitionCounts: orders))
        XCTAssertNil(b3.assignment, "still withheld after a heartbeat with an unchanged owned set")

        _ = try ok(group.heartbeat(
            beatRequest(a3, owned: partitions("orders", 0..<2)), nowMs: 70, topicPartitionCounts: orders))
        let b4 = try ok(group.heartbeat(beatRequest(b3, owned: []), nowMs: 80, topicPartitionCounts: orders))
        XCTAssertEqual(b4.assignment, partitions("orders", 2..<4))
        XCTAssertEqual(group.state, .stable)
        XCTAssertEqual(group.describeMembers().map(\.assignedPartitions.count), [2, 2])
    }

    /// A heartbeat that triggers a revocation cannot confirm it: the member may start consuming
    /// the partition (it was assigned) before it receives the response.
    func testTheHeartbeatThatRevokesDoesNotConfirmTheRevocation() throws {
        var group = GroupStateMachine(groupId: "billing")
        let a1 = try ok(group.heartbeat(joinRequest("a"), nowMs: 0, topicPartitionCounts: orders))
        let b1 = try ok(group.heartbeat(joinRequest("b"), nowMs: 0, topicPartitionCounts: orders))
        // a has not started consuming yet, so it reports nothing owned.
        let a2 = try ok(group.heartbeat(beatRequest(a1, owned: []), nowMs: 0, topicPartitionCounts: orders))
        XCTAssertEqual(a2.assignment, partitions("orders", 0..<2))
        let b2 = try ok(group.heartbeat(beatRequest(b1, owned: []), nowMs: 0, topicPartitionCounts: orders))
        XCTAssertNil(b2.assignment, "a's heartbeat was sent before it saw the revocation")
        _ = try ok(group.heartbeat(beatRequest(a2, owned: []), nowMs: 0, topicPartitionCounts: orders))
        let b3 = try ok(group.heartbeat(beatRequest(b2, owned: []), nowMs: 0, topicPartitionCounts: orders))
        XCTAssertEqual(b3.assignment, partitions("orders", 2..<4))
    }

    func testLeaveFreesEverythingAtOnce() throws {
        var group = GroupStateMachine(groupId: "billing")
        let a = try ok(group.heartbeat(joinRequest("a"), nowMs: 0, topicPartitionCounts: orders))
        let b = try ok(group.heartbeat(joinRequest("b"), nowMs: 0, topicPartitionCounts: orders))
        let settled = try settle(&group, [a, b])
        XCTAssertEqual(settled.map { $0.assignment?.count }, [2, 2])
        let epoch = group.groupEpoch

        let left = try ok(group.heartbeat(
            GroupHeartbeat(memberId: settled[1].memberId, memberEpoch: -1), nowMs: 0, topicPartitionCounts: orders))
        XCTAssertEqual(left.memberEpoch, -1)
        XCTAssertEqual(left.assignment, [])
        XCTAssertEqual(group.groupEpoch, epoch + 1)
        let a2 = try ok(group.heartbeat(
            beatRequest(settled[0], owned: settled[0].assignment), nowMs: 0, topicPartitionCounts: orders))
        XCTAssertEqual(a2.assignment, partitions("orders", 0..<4), "no confirmation needed from a member that left")
        XCTAssertEqual(group.state, .stable)
        XCTAssertEqual(error(group.heartbeat(
            GroupHeartbeat(memberId: settled[1].memberId, memberEpoch: -1), nowMs: 0, topicPartitionCounts: orders)),
            .unknownMemberId(settled[1].memberId))
    }

    // MARK: - Sessions

    func testSessionTimeoutExpiresMembersAndFreesTheirPartitions() throws {
        var group = GroupStateMachine(groupId: "billing")
        let a = try ok(group.heartbeat(joinRequest("a", timeoutMs: 3000), nowMs: 0, topicPartitionCounts: orders))
        XCTAssertEqual(group.nextExpiryMs(), 3000)
        let b = try ok(group.heartbeat(joinRequest("b", timeoutMs: 5000), nowMs: 1000, topicPartitionCounts: orders))
        XCTAssertEqual(group.nextExpiryMs(), 3000)
        let settled = try settle(&group, [a, b], nowMs: 2500)  // both last heartbeat at 2500
        XCTAssertEqual(group.nextExpiryMs(), 5500)

        XCTAssertEqual(group.expireMembers(nowMs: 5499, topicPartitionCounts: orders), [])
        let epoch = group.groupEpoch
        XCTAssertEqual(group.expireMembers(nowMs: 5500, topicPartitionCounts: orders), ["a-1"])
        XCTAssertEqual(group.groupEpoch, epoch + 1)
        XCTAssertEqual(group.nextExpiryMs(), 7500)
        let b2 = try ok(group.heartbeat(
            beatRequest(settled[1], owned: settled[1].assignment), nowMs: 5600, topicPartitionCounts: orders))
        XCTAssertEqual(b2.assignment, partitions("orders", 0..<4), "an expired member's partitions are free at once")
        XCTAssertEqual(group.nextExpiryMs(), 10_600)
        XCTAssertEqual(error(group.heartbeat(
            beatRequest(settled[0], owned: []), nowMs: 5700, topicPartitionCounts: orders)), .unknownMemberId("a-1"))

        XCTAssertEqual(group.expireMembers(nowMs: 10_600, topicPartitionCounts: orders), ["b-2"])
        XCTAssertNil(group.nextExpiryMs())
        XCTAssertEqual(group.state, .empty)
    }

    func testHeartbeatIntervalIsAtMostHalfTheSessionTimeout() throws {
        var group = GroupStateMachine(groupId: "billing")
        let short = try ok(group.heartbeat(joinRequest("a", timeoutMs: 1000), nowMs: 0, topicPartitionCounts: orders))
        XCTAssertEqual(short.heartbeatIntervalMs, 500)
        let normal = try ok(group.heartbeat(joinRequest("b"), nowMs: 0, topicPartitionCounts: orders))
        XCTAssertEqual(normal.heartbeatIntervalMs, 1000)
    }

    // MARK: - Fencing

    func testStaleAndUnknownMembersAreFenced() throws {
        var group = GroupStateMachine(groupId: "billing")
        let a1 = try ok(group.heartbeat(joinRequest("a"), nowMs: 0, topicPartitionCounts: orders))
        _ = try ok(group.heartbeat(joinRequest("b"), nowMs: 0, topicPartitionCounts: orders))
        let a2 = try ok(group.heartbeat(beatRequest(a1, owned: nil), nowMs: 0, topicPartitionCounts: orders))
        XCTAssertEqual(a2.memberEpoch, 2)
        let epoch = group.groupEpoch
        XCTAssertEqual(error(group.heartbeat(beatRequest(a1, owned: nil), nowMs: 0, topicPartitionCounts: orders)),
                       .fencedMemberEpoch(member: "a-1", sent: 1, current: 2))
        XCTAssertEqual(error(group.heartbeat(
            GroupHeartbeat(memberId: "a-1", memberEpoch: 7), nowMs: 0, topicPartitionCounts: orders)),
            .fencedMemberEpoch(member: "a-1", sent: 7, current: 2), "an epoch from the future is stale too")
        XCTAssertEqual(error(group.heartbeat(
            GroupHeartbeat(memberId: "nobody", memberEpoch: 2), nowMs: 0, topicPartitionCounts: orders)),
            .unknownMemberId("nobody"))
        XCTAssertEqual(group.groupEpoch, epoch, "refused heartbeats change nothing")
        let fenced = GroupError.fencedMemberEpoch(member: "a-1", sent: 1, current: 2)
        XCTAssertTrue(fenced.message.contains("rejoin with epoch 0"), fenced.message)
        XCTAssertTrue(GroupError.unknownMemberId("x").message.contains("rejoin with member epoch 0"))
    }

    func testCommitFencing() throws {
        var group = GroupStateMachine(groupId: "billing")
        XCTAssertNil(group.validateCommit(memberId: "", memberEpoch: -1), "standalone commit to an empty group")
        XCTAssertEqual(group.validateCommit(memberId: "a-1", memberEpoch: 1), .unknownMemberId("a-1"))
        let a1 = try ok(group.heartbeat(joinRequest("a"), nowMs: 0, topicPartitionCounts: orders))
        XCTAssertNil(group.validateCommit(memberId: "a-1", memberEpoch: 1))
        XCTAssertEqual(group.validateCommit(memberId: "", memberEpoch: -1), .unknownMemberId(""))
        XCTAssertTrue(GroupError.unknownMemberId("").message.contains("no members"))
        XCTAssertEqual(group.validateCommit(memberId: "", memberEpoch: 1), .unknownMemberId(""))
        _ = try ok(group.heartbeat(joinRequest("b"), nowMs: 0, topicPartitionCounts: orders))
        XCTAssertEqual(group.validateCommit(memberId: "a-1", memberEpoch: 2),
                       .fencedMemberEpoch(member: "a-1", sent: 2, current: 1), "a has not received epoch 2 yet")
        let a2 = try ok(group.heartbeat(beatRequest(a1, owned: nil), nowMs: 0, topicPartitionCounts: orders))
        XCTAssertNil(group.validateCommit(memberId: "a-1", memberEpoch: a2.memberEpoch))
        XCTAssertEqual(group.validateCommit(memberId: "a-1", memberEpoch: 1),
                       .fencedMemberEpoch(member: "a-1", sent: 1, current: 2))
        XCTAssertEqual(group.validateCommit(memberId: "a-1", memberEpoch: -1),
                       .fencedMemberEpoch(member: "a-1", sent: -1, current: 2))
        for memberId in ["a-1", "b-2"] {
            _ = try ok(group.heartbeat(GroupHeartbeat(memberId: memberId, memberEpoch: -1),
                                       nowMs: 0, topicPartitionCounts: orders))
        }
        XCTAssertNil(group.validateCommit(memberId: "", memberEpoch: -1), "standalone again once everyone left")
    }

    // MARK: - Requests and limits

    func testInvalidRequestsAreRefusedAndChangeNothing() throws {
        let limits = GroupLimits(membersMax: 2, subscribedTopicsMax: 3, ownedPartitionsMax: 4)
        var group = GroupStateMachine(groupId: "billing", limits: limits)
        let a = try ok(group.heartbeat(joinRequest("a"), nowMs: 0, topicPartitionCounts: orders))
        let before = group.describeMembers()
        let epoch = group.groupEpoch
        var noSubscription = joinRequest("x")
        noSubscription.subscribedTopics = nil
        let refused: [(String, GroupHeartbeat)] = [
            ("join without subscription", noSubscription),
            ("session timeout too short", joinRequest("x", timeoutMs: 999)),
            ("session timeout too long", joinRequest("x", timeoutMs: 300_001)),
            ("too many topics", joinRequest("x", topics: ["a", "b", "c", "d"])),
            ("empty topic name", joinRequest("x", topics: [""])),
            ("topic name too long", joinRequest("x", topics: [String(repeating: "t", count: 250)])),
            ("negative owned partition", joinRequest("x", owned: [gtp("orders", -1)])),
            ("too many owned partitions", joinRequest("x", owned: partitions("orders", 0..<5))),
            ("member id too long", joinRequest("x", memberId: String(repeating: "m", count: 256))),
            ("client id too long", joinRequest(String(repeating: "c", count: 256))),
            ("epoch below -1", GroupHeartbeat(memberId: a.memberId, memberEpoch: -2)),
            ("epoch without member id", GroupHeartbeat(memberId: "", memberEpoch: 1)),
            ("leave without member id", GroupHeartbeat(memberId: "", memberEpoch: -1)),
            ("bad timeout on a heartbeat", GroupHeartbeat(memberId: a.memberId, memberEpoch: 1, sessionTimeoutMs: 10)),
        ]
        for (name, request) in refused {
            guard case .invalidRequest(let detail)? = error(group.heartbeat(request, nowMs: 5, topicPartitionCounts: orders))
            else { XCTFail("\(name) was not refused as invalid"); continue }
            XCTAssertFalse(detail.isEmpty, name)
            XCTAssertEqual(group.describeMembers(), before, name)
            XCTAssertEqual(group.groupEpoch, epoch, name)
        }
        _ = try ok(group.heartbeat(joinRequest("b"), nowMs: 0, topicPartitionCounts: orders))
        XCTAssertEqual(error(group.heartbeat(joinRequest("c"), nowMs: 0, topicPartitionCounts: orders)), .groupFull(2))
        XCTAssertEqual(group.memberCount, 2)

        XCTAssertNotNil(limits.validateGroupId(""))
        XCTAssertNotNil(limits.validateGroupId(String(repeating: "g", count: 256)))
        XCTAssertNil(limits.validateGroupId(String(repeating: "g", count: 255)))
    }

    func testMemberIdsAreGeneratedDeterministicallyOrKept() throws {
        var group = GroupStateMachine(groupId: "billing", memberIdSequenceStart: 100)
        let first = try ok(group.heartbeat(joinRequest("app"), nowMs: 0, topicPartitionCounts: orders))
        XCTAssertEqual(first.memberId, "app-101")
        let chosen = try ok(group.heartbeat(joinRequest("app", memberId: "app-102"), nowMs: 0, topicPartitionCounts: orders))
        XCTAssertEqual(chosen.memberId, "app-102", "a client's own id is kept")
        let next = try ok(group.heartbeat(joinRequest("app"), nowMs: 0, topicPartitionCounts: orders))
        XCTAssertEqual(next.memberId, "app-103", "generated ids skip ids clients chose")
        let anonymous = try ok(group.heartbeat(joinRequest(""), nowMs: 0, topicPartitionCounts: orders))
        XCTAssertEqual(anonymous.memberId, "member-104")
    }

    func testRejoinKeepsTheIdAndReleasesWhatTheRestartedMemberNoLongerOwns() throws {
        var group = GroupStateMachine(groupId: "billing")
        let a = try ok(group.heartbeat(joinRequest("a"), nowMs: 0, topicPartitionCounts: orders))
        let b = try ok(group.heartbeat(joinRequest("b"), nowMs: 0, topicPartitionCounts: orders))
        let settled = try settle(&group, [a, b])
        let epoch = group.groupEpoch

        // a restarts but still consumes orders-0; it rejoins with its id and now wants "payments" too.
        let rejoined = try ok(group.heartbeat(
            joinRequest("a", memberId: "a-1", topics: ["orders", "payments"], owned: [gtp("orders", 0)]),
            nowMs: 0, topicPartitionCounts: orders))
        XCTAssertEqual(rejoined.memberId, "a-1")
        XCTAssertEqual(rejoined.assignment, settled[0].assignment, "the full assignment is sent on rejoin")
        XCTAssertEqual(group.groupEpoch, epoch, "payments does not exist: the target is unchanged")
        XCTAssertEqual(group.memberCount, 2)

        // payments appears: a gets some of it, and b still waits for nothing of a's.
        let withPayments = ["orders": Int32(4), "payments": 2]
        let a2 = try ok(group.heartbeat(beatRequest(rejoined, owned: rejoined.assignment), nowMs: 0,
                                        topicPartitionCounts: withPayments))
        XCTAssertEqual(group.groupEpoch, epoch + 1)
        XCTAssertEqual(a2.assignment?.filter { $0.topic == "payments" }.count, 2)
        let again = try settle(&group, [a2, settled[1]], counts: withPayments)

        // a restarts again, owning nothing and now wanting only payments: its orders partitions
        // are free at once, without waiting for a confirmation from the restarted client.
        let restarted = try ok(group.heartbeat(
            joinRequest("a", memberId: "a-1", topics: ["payments"], owned: []), nowMs: 0,
            topicPartitionCounts: withPayments))
        XCTAssertEqual(restarted.assignment, partitions("payments", 0..<2))
        let b2 = try ok(group.heartbeat(beatRequest(again[1], owned: again[1].assignment), nowMs: 0,
                                       topicPartitionCounts: withPayments))
        XCTAssertEqual(b2.assignment, partitions("orders", 0..<4))
        XCTAssertEqual(group.state, .stable)
    }

    func testTheFirstMembersAssignorIsKeptUntilTheGroupEmpties() throws {
        var group = GroupStateMachine(groupId: "billing")
        let five = ["orders": Int32(5)]
        let a = try ok(group.heartbeat(joinRequest("a", assignor: .range), nowMs: 0, topicPartitionCounts: five))
        let b = try ok(group.heartbeat(joinRequest("b", assignor: .sticky), nowMs: 0, topicPartitionCounts: five))
        XCTAssertEqual(group.assignorKind, .range)
        let settled = try settle(&group, [a, b], counts: five)
        XCTAssertEqual(settled.map(\.assignment), [partitions("orders", 0..<3), partitions("orders", 3..<5)])
        for response in settled {
            _ = try ok(group.heartbeat(GroupHeartbeat(memberId: response.memberId, memberEpoch: -1),
                                       nowMs: 0, topicPartitionCounts: five))
        }
        _ = try ok(group.heartbeat(joinRequest("c", assignor: .sticky), nowMs: 0, topicPartitionCounts: five))
        XCTAssertEqual(group.assignorKind, .sticky)
    }

    // MARK: - Metadata and subscriptions

    func testEpochMovesOnlyWhenTheTargetChanges() throws {
        var group = GroupStateMachine(groupId: "billing")
        let a1 = try ok(group.heartbeat(joinRequest("a", topics: ["orders", "later"]), nowMs: 0, topicPartitionCounts: orders))
        XCTAssertEqual(group.groupEpoch, 1)
        group.topicsChanged(topicPartitionCounts: ["orders": 4, "unrelated": 9])
        XCTAssertEqual(group.groupEpoch, 1, "a topic nobody subscribes to")
        group.topicsChanged(topicPartitionCounts: ["orders": 4, "later": 2])
        XCTAssertEqual(group.groupEpoch, 2, "a subscribed topic appeared")
        let grown: [String: Int32] = ["orders": 4, "later": 2]
        let a2 = try ok(group.heartbeat(beatRequest(a1, owned: a1.assignment), nowMs: 0, topicPartitionCounts: grown))
        XCTAssertEqual(a2.assignment, partitions("later", 0..<2) + partitions("orders", 0..<4))

        let a3 = try ok(group.heartbeat(beatRequest(a2, owned: a2.assignment, topics: ["orders", "ghost"]),
                                        nowMs: 0, topicPartitionCounts: grown))
        XCTAssertEqual(group.groupEpoch, 3, "dropping 'later' changes the target")
        XCTAssertEqual(a3.assignment, partitions("orders", 0..<4))
        let a4 = try ok(group.heartbeat(beatRequest(a3, owned: a3.assignment, topics: ["orders", "ghost", "ghost2"]),
                                        nowMs: 0, topicPartitionCounts: grown))
        XCTAssertEqual(group.groupEpoch, 3, "subscribing to topics that do not exist changes nothing")
        XCTAssertNil(a4.assignment)

        // A heartbeat carrying newer metadata rebalances too; a deleted topic is revoked.
        let a5 = try ok(group.heartbeat(beatRequest(a4, owned: nil), nowMs: 0, topicPartitionCounts: ["orders": 6]))
        XCTAssertEqual(group.groupEpoch, 4)
        XCTAssertEqual(a5.assignment, partitions("orders", 0..<6))
        let a6 = try ok(group.heartbeat(beatRequest(a5, owned: nil), nowMs: 0, topicPartitionCounts: [:]))
        XCTAssertEqual(a6.assignment, [])
        XCTAssertEqual(group.state, .reconciling, "the revocation is not confirmed yet")
        _ = try ok(group.heartbeat(beatRequest(a6, owned: []), nowMs: 0, topicPartitionCounts: [:]))
        XCTAssertEqual(group.state, .stable)
    }

    func testAssignmentIsResentWhenTheMembersViewDiffers() throws {
        var group = GroupStateMachine(groupId: "billing")
        let a1 = try ok(group.heartbeat(joinRequest("a"), nowMs: 0, topicPartitionCounts: orders))
        // As if a1 was lost: the member reports owning nothing.
        let a2 = try ok(group.heartbeat(beatRequest(a1, owned: []), nowMs: 0, topicPartitionCounts: orders))
        XCTAssertEqual(a2.assignment, partitions("orders", 0..<4))
        let a3 = try ok(group.heartbeat(beatRequest(a2, owned: a2.assignment), nowMs: 0, topicPartitionCounts: orders))
        XCTAssertNil(a3.assignment)
    }

    // MARK: - Simulation

    /// Clients join, heartbeat, reconcile lazily, lose responses, pause, change subscriptions,
    /// leave, crash and expire in a seeded random order, with requests and responses in flight,
    /// while topics grow. After every step no partition is consumed by two clients, and every
    /// consumed partition is held for that client by the machine. At the end, with no more
    /// changes, two heartbeat rounds confirm every revocation and a third hands everything over.
    /// Checked to fail when the hand-over rule is broken (partitions released on revocation, by
    /// the heartbeat that triggered it, on a nil owned set, or never withheld).
    func testRandomisedSimulationNeverDoubleAssigns() {
        let base = SeededRandom.fromEnvironment().seed
        for index in 0..<UInt64(GroupSimulation.runsCount) {
            var simulation = GroupSimulation(seed: base &+ index)
            if let failure = simulation.run() {
                return XCTFail("simulation seed \(simulation.seed), step \(simulation.steps): \(failure)")
            }
        }
    }
}

/// One simulated consumer: what it was assigned, what it consumes, what it sent, what is in flight.
/// Like a real client it reconciles lazily: it may keep consuming a revoked partition for a while
/// (finishing a batch, committing) and start newly assigned ones later, reporting the truth.
private struct SimulatedClient {
    enum InFlight {
        case request(GroupHeartbeat, sentMs: Int64)
        case response(Result<GroupHeartbeatResponse, GroupError>, sentMs: Int64)
    }

    let clientId: String
    let sessionTimeoutMs: Int32
    var subscription: [String]
    var memberId = ""
    /// 0 until a join succeeds, and again after the client is fenced.
    var epoch: Int32 = 0
    /// The assignment of the last response that carried one.
    var assignment: Set<GroupTopicPartition> = []
    /// What it actually consumes; it starts only partitions of `assignment`.
    var consuming: Set<GroupTopicPartition> = []
    var inFlight: InFlight?
    /// The owned set last sent, so the client can send nil for "unchanged".
    var lastReported: Set<GroupTopicPartition>?
    /// Send time of the last heartbeat whose success arrived: the client's own view of its session.
    var sessionConfirmedMs: Int64?
    /// The client gave up its session (timed out) while a request was in flight; ignore the answer.
    var ignoreResponse = false
    var leaving = false
    /// A paused client sends nothing before this time.
    var pausedUntilMs: Int64 = 0
}

/// The seeded simulation behind `testRandomisedSimulationNeverDoubleAssigns`.
private struct GroupSimulation {
    static let runsCount = 60
    static let stepsCount = 300
    static let clientsMax = 6
    static let topicPool = ["t0", "t1", "t2", "ghost"]

    let seed: UInt64
    var rng: SeededRandom
    var group = GroupStateMachine(groupId: "simulated")
    var clients: [SimulatedClient] = []
    var counts: [String: Int32] = ["t0": 3, "t1": 2, "t2": 0]
    var nowMs: Int64 = 0
    var clientsCreated = 0
    var steps = 0
    /// Set for the final rounds: no more subscription changes.
    var quiet = false
    let assignor: GroupAssignorKind

    init(seed: UInt64) {
        self.seed = seed
        rng = SeededRandom(seed: seed)
        assignor = rng.chance(0.5) ? .sticky : .range
    }

    mutating func run() -> String? {
        for _ in 0..<Self.stepsCount {
            steps += 1
            if let failure = randomStep() ?? checkInvariants() { return failure }
        }
        return converge()
    }

    private mutating func randomStep() -> String? {
        let roll = rng.int(0...99)
        let now = nowMs
        switch roll {
        case 0..<8 where clients.count < Self.clientsMax: addClient()
        case 0..<38: if let i = pick({ $0.inFlight == nil && now >= $0.pausedUntilMs }) { send(i) }
        case 38..<46: if let i = pick({ $0.consuming != $0.assignment }) { reconcileOne(i) }
        case 46..<63: if let i = pick({ if case .request = $0.inFlight { true } else { false } }) { process(i) }
        case 63..<87: if let i = pick({ if case .response = $0.inFlight { true } else { false } }) { return deliver(i) }
        case 87..<89: if let i = pick({ if case .response = $0.inFlight { true } else { false } }) { loseResponse(i) }
        case 89..<90: if let i = pick({ _ in true }) { clients.remove(at: i) }  // crash: it stops consuming
        case 90..<92: if let i = pick({ $0.epoch > 0 }) { pause(i) }
        case 92..<94: if let i = pick({ $0.inFlight == nil && $0.epoch > 0 }) { leave(i) }
        case 94..<99: advanceTime(by: Int64(rng.int(1...800)))
        default:
            let topic = ["t0", "t1", "t2"][rng.int(0...2)]
            counts[topic] = min(6, (counts[topic] ?? 0) + 1)
            group.topicsChanged(topicPartitionCounts: counts)
        }
        return nil
    }

    private mutating func pick(_ eligible: (SimulatedClient) -> Bool) -> Int? {
        let indices = clients.indices.filter { eligible(clients[$0]) }
        return indices.isEmpty ? nil : indices[rng.int(0...(indices.count - 1))]
    }

    private mutating func randomSubscription() -> [String] {
        let chosen = Self.topicPool.filter { _ in rng.chance(0.5) }
        return chosen.isEmpty ? ["t0"] : chosen
    }

    private mutating func addClient() {
        clientsCreated += 1
        clients.append(SimulatedClient(
            clientId: "c\(clientsCreated)", sessionTimeoutMs: Int32(rng.int(1000...3000)),
            subscription: randomSubscription()))
    }

    private mutating func send(_ i: Int) {
        var client = clients[i]
        let request: GroupHeartbeat
        if client.epoch == 0 {
            request = GroupHeartbeat(
                memberId: client.memberId, memberEpoch: 0, clientId: client.clientId, clientHost: "sim",
                sessionTimeoutMs: client.sessionTimeoutMs, subscribedTopics: client.subscription, assignor: assignor,
                ownedPartitions: client.consuming.sorted())
        } else {
            let changeSubscription = !quiet && rng.chance(0.03)
            if changeSubscription { client.subscription = randomSubscription() }
            let unchanged = client.lastReported == client.consuming && rng.chance(0.5)
            request = GroupHeartbeat(
                memberId: client.memberId, memberEpoch: client.epoch,
                subscribedTopics: changeSubscription || rng.chance(0.2) ? client.subscription : nil,
                ownedPartitions: unchanged ? nil : client.consuming.sorted())
        }
        client.lastReported = client.consuming
        client.inFlight = .request(request, sentMs: nowMs)
        clients[i] = client
    }

    private mutating func process(_ i: Int) {
        guard case .request(let request, let sentMs) = clients[i].inFlight else { return }
        let result = group.heartbeat(request, nowMs: nowMs, topicPartitionCounts: counts)
        clients[i].inFlight = .response(result, sentMs: sentMs)
    }

    private mutating func deliver(_ i: Int) -> String? {
        guard case .response(let result, let sentMs) = clients[i].inFlight else { return nil }
        clients[i].inFlight = nil
        if clients[i].leaving {
            clients.remove(at: i)
            return nil
        }
        if clients[i].ignoreResponse {
            clients[i].ignoreResponse = false
            return nil
        }
        switch result {
        case .success(let response) where nowMs >= sentMs + Int64(clients[i].sessionTimeoutMs):
            // Too late: its session may have expired while the answer travelled (the client times
            // its session from when it sent, the broker from when it received, which is later).
            clients[i].memberId = response.memberId
            dropSession(i)
        case .success(let response):
            clients[i].memberId = response.memberId
            clients[i].epoch = response.memberEpoch
            if let assignment = response.assignment {
                clients[i].assignment = Set(assignment)
                // Some clients apply a new assignment at once, others over later steps.
                if quiet || rng.chance(0.4) { clients[i].consuming = Set(assignment) }
            }
            clients[i].sessionConfirmedMs = sentMs
        case .failure(.unknownMemberId), .failure(.fencedMemberEpoch):
            dropSession(i)
            if rng.chance(0.5) { clients[i].memberId = "" }  // rejoin under a new id, or keep it
        case .failure(let error):
            return "client \(clients[i].clientId) got \(error.message)"
        }
        return nil
    }

    /// The client stops one revoked partition or starts one newly assigned partition.
    private mutating func reconcileOne(_ i: Int) {
        let revoked = clients[i].consuming.subtracting(clients[i].assignment).sorted()
        let added = clients[i].assignment.subtracting(clients[i].consuming).sorted()
        if !revoked.isEmpty && (added.isEmpty || rng.chance(0.5)) {
            clients[i].consuming.remove(revoked[rng.int(0...(revoked.count - 1))])
        } else if !added.isEmpty {
            clients[i].consuming.insert(added[rng.int(0...(added.count - 1))])
        }
    }

    private mutating func loseResponse(_ i: Int) {
        clients[i].inFlight = nil
        clients[i].ignoreResponse = false
        if clients[i].leaving { clients.remove(at: i) }
    }

    private mutating func leave(_ i: Int) {
        clients[i].consuming = []  // a leaving client stops consuming before it says so
        clients[i].assignment = []
        clients[i].leaving = true
        clients[i].inFlight = .request(
            GroupHeartbeat(memberId: clients[i].memberId, memberEpoch: -1), sentMs: nowMs)
    }

    /// A long pause (a stop-the-world collection, a suspended laptop): the client stops consuming
    /// but keeps its id and epoch, so when it resumes it heartbeats as if nothing happened and
    /// learns from the answer whether it was expired meanwhile (`unknownMemberId`) or not.
    private mutating func pause(_ i: Int) {
        clients[i].consuming = []
        clients[i].assignment = []
        clients[i].sessionConfirmedMs = nil
        clients[i].pausedUntilMs = nowMs + Int64(rng.int(0...6000))
    }

    /// The client gives up everything and will rejoin with epoch 0.
    private mutating func dropSession(_ i: Int) {
        clients[i].consuming = []
        clients[i].assignment = []
        clients[i].epoch = 0
        clients[i].sessionConfirmedMs = nil
        clients[i].lastReported = nil
    }

    /// Clients whose own view says their session lapsed stop consuming first (as Kafka clients
    /// do); only then does the broker's timer expire members.
    private mutating func advanceTime(by deltaMs: Int64) {
        nowMs += deltaMs
        for i in clients.indices {
            guard let confirmed = clients[i].sessionConfirmedMs,
                nowMs >= confirmed + Int64(clients[i].sessionTimeoutMs)
            else { continue }
            dropSession(i)
            if clients[i].inFlight != nil { clients[i].ignoreResponse = true }
        }
        _ = group.expireMembers(nowMs: nowMs, topicPartitionCounts: counts)
    }

    /// No partition consumed twice; each consumed partition held for that client by the machine.
    private func checkInvariants() -> String? {
        if let violation = group.invariantViolation() { return "machine invariant: \(violation)" }
        let members = Dictionary(uniqueKeysWithValues: group.describeMembers().map { ($0.memberId, $0) })
        var assignedTo: [GroupTopicPartition: String] = [:]
        for member in members.values {
            for partition in member.assignedPartitions {
                if let other = assignedTo.updateValue(member.memberId, forKey: partition) {
                    return "\(partition) in the assignments of \(other) and \(member.memberId)"
                }
            }
        }
        var consumedBy: [GroupTopicPartition: String] = [:]
        for client in clients {
            for partition in client.consuming {
                if let other = consumedBy.updateValue(client.clientId, forKey: partition) {
                    return "\(partition) consumed by \(other) and \(client.clientId)"
                }
                let held = members[client.memberId].map {
                    $0.assignedPartitions.contains(partition) || $0.pendingRevocationPartitions.contains(partition)
                } ?? false
                if !held { return "\(client.clientId) consumes \(partition) but the machine does not hold it for it" }
            }
        }
        return nil
    }

    /// Ends the chaos: everything in flight completes, members nobody runs expire while the live
    /// clients keep heartbeating, then everyone heartbeats in rounds. Hand-over needs up to three
    /// rounds: the revocation, its confirmation, and the new owner's next heartbeat.
    private mutating func converge() -> String? {
        quiet = true
        for i in clients.indices.reversed() {
            process(i)
            if let failure = deliver(i) { return failure }
        }
        for i in clients.indices { clients[i].consuming = clients[i].assignment }
        let longestTimeoutMs: Int64 = 3000
        for _ in 0..<(longestTimeoutMs / 500 + 2) {
            if let failure = round() { return failure }
            advanceTime(by: 500)
        }
        for _ in 0..<3 where clients.contains(where: { $0.epoch == 0 }) {
            if let failure = round() { return failure }
        }
        if clients.contains(where: { $0.epoch == 0 }) { return "a client could not rejoin" }
        if group.memberCount != clients.count { return "\(group.memberCount) members for \(clients.count) clients" }
        for roundNumber in 1...3 {
            if let failure = round() { return "final round \(roundNumber): \(failure)" }
            if roundNumber == 2, let member = group.describeMembers().first(where: { !$0.pendingRevocationPartitions.isEmpty }) {
                return "\(member.memberId) still has unconfirmed revocations after two rounds"
            }
        }
        return everythingConsumed()
    }

    /// Every client sends a full heartbeat and receives the answer, in client order.
    private mutating func round() -> String? {
        for i in clients.indices {
            send(i)
            if case .request(var request, let sentMs) = clients[i].inFlight, request.memberEpoch > 0 {
                request.ownedPartitions = clients[i].consuming.sorted()  // full report, so lost views heal
                clients[i].inFlight = .request(request, sentMs: sentMs)
            }
            process(i)
            if let failure = deliver(i) ?? checkInvariants() { return failure }
        }
        return nil
    }

    private func everythingConsumed() -> String? {
        if group.state != .stable { return "group is \(group.state) after three quiet rounds" }
        var expected: Set<GroupTopicPartition> = []
        for topic in Set(clients.flatMap(\.subscription)) {
            for partition in 0..<(counts[topic] ?? 0) { expected.insert(gtp(topic, partition)) }
        }
        let consumed = clients.reduce(into: Set<GroupTopicPartition>()) { $0.formUnion($1.consuming) }
        return consumed == expected ? nil : "consumed \(consumed.sorted()), expected \(expected.sorted())"
    }
}
