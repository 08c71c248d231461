import SluiceTestSupport
import XCTest

@testable import SluiceBroker

/// Shorthand for a partition in the tables.
func gtp(_ topic: String, _ partition: Int32) -> GroupTopicPartition {
    GroupTopicPartition(topic: topic, partition: partition)
}

final class GroupAssignorTests: XCTestCase {
    private static let casesCount = 2000

    // MARK: - Range, by hand

    func testRangeAssignorTable() {
        struct Case {
            let name: String
            let members: [(String, [String])]
            let counts: [String: Int32]
            let expected: [String: [GroupTopicPartition]]
        }
        let cases: [Case] = [
            Case(name: "5 partitions over 2: the first gets the extra one",
                 members: [("a", ["t"]), ("b", ["t"])], counts: ["t": 5],
                 expected: ["a": [gtp("t", 0), gtp("t", 1), gtp("t", 2)], "b": [gtp("t", 3), gtp("t", 4)]]),
            Case(name: "7 over 3: first gets 3, then 2 and 2",
                 members: [("a", ["t"]), ("b", ["t"]), ("c", ["t"])], counts: ["t": 7],
                 expected: ["a": [gtp("t", 0), gtp("t", 1), gtp("t", 2)], "b": [gtp("t", 3), gtp("t", 4)],
                            "c": [gtp("t", 5), gtp("t", 6)]]),
            Case(name: "per topic: the first member gets both extras (Kafka's known skew)",
                 members: [("a", ["t", "u"]), ("b", ["u", "t"])], counts: ["t": 3, "u": 3],
                 expected: ["a": [gtp("t", 0), gtp("t", 1), gtp("u", 0), gtp("u", 1)], "b": [gtp("t", 2), gtp("u", 2)]]),
            Case(name: "different subscriptions: each topic split among its own subscribers",
                 members: [("a", ["t"]), ("b", ["t", "u"]), ("c", ["u"])], counts: ["t": 4, "u": 3],
                 expected: ["a": [gtp("t", 0), gtp("t", 1)], "b": [gtp("t", 2), gtp("t", 3), gtp("u", 0), gtp("u", 1)],
                            "c": [gtp("u", 2)]]),
            Case(name: "more members than partitions: the last get nothing",
                 members: [("a", ["t"]), ("b", ["t"]), ("c", ["t"])], counts: ["t": 2],
                 expected: ["a": [gtp("t", 0)], "b": [gtp("t", 1)], "c": []]),
            Case(name: "input order does not matter: members are sorted by id",
                 members: [("c", ["t"]), ("a", ["t"]), ("b", ["t"])], counts: ["t": 3],
                 expected: ["a": [gtp("t", 0)], "b": [gtp("t", 1)], "c": [gtp("t", 2)]]),
            Case(name: "missing and empty topics give nothing",
                 members: [("a", ["ghost", "empty", "t"])], counts: ["t": 1, "empty": 0],
                 expected: ["a": [gtp("t", 0)]]),
            Case(name: "no members", members: [], counts: ["t": 3], expected: [:]),
        ]
        for testCase in cases {
            let members = testCase.members.map { GroupAssignorMember(memberId: $0.0, subscribedTopics: $0.1) }
            let result = GroupAssignor.range(members: members, partitionCounts: testCase.counts)
            XCTAssertEqual(result.mapValues { $0.sorted() }, testCase.expected, testCase.name)
        }
    }

    // MARK: - Sticky, by hand

    func testStickyKeepsPreviousAndMovesOnlyTheSurplus() {
        let members = [GroupAssignorMember(memberId: "a", subscribedTopics: ["t"]),
                       GroupAssignorMember(memberId: "b", subscribedTopics: ["t"])]
        let previous: [String: Set<GroupTopicPartition>] = [
            "a": [gtp("t", 0), gtp("t", 1), gtp("t", 2), gtp("t", 3), gtp("gone", 0)],
        ]
        let result = GroupAssignor.sticky(members: members, partitionCounts: ["t": 4], previous: previous)
        // a keeps its two lowest partitions; the surplus (its highest) moves to b; "gone" no longer exists.
        XCTAssertEqual(result["a"]?.sorted(), [gtp("t", 0), gtp("t", 1)])
        XCTAssertEqual(result["b"]?.sorted(), [gtp("t", 2), gtp("t", 3)])
    }

    func testStickyFillsNewPartitionsOnTheLeastLoaded() {
        let members = ["a", "b", "c"].map { GroupAssignorMember(memberId: $0, subscribedTopics: ["t"]) }
        let previous: [String: Set<GroupTopicPartition>] = ["a": [gtp("t", 0), gtp("t", 1)], "b": [gtp("t", 2)]]
        let result = GroupAssignor.sticky(members: members, partitionCounts: ["t": 6], previous: previous)
        XCTAssertEqual(result["a"]?.sorted(), [gtp("t", 0), gtp("t", 1)])
        // Water-filling: c (0) takes t-3, then b and c tie at 1 and the lower id goes first.
        XCTAssertEqual(result["b"]?.sorted(), [gtp("t", 2), gtp("t", 4)])
        XCTAssertEqual(result["c"]?.sorted(), [gtp("t", 3), gtp("t", 5)])
    }

    func testStickyBalancesAcrossDifferentSubscriptions() {
        // u has one eligible member, so it is placed first; then t goes to the member without u.
        let members = [GroupAssignorMember(memberId: "a", subscribedTopics: ["t"]),
                       GroupAssignorMember(memberId: "b", subscribedTopics: ["t", "u"])]
        let result = GroupAssignor.sticky(members: members, partitionCounts: ["t": 10, "u": 10], previous: [:])
        XCTAssertEqual(result["a"]?.count, 10)
        XCTAssertEqual(result["b"]?.count, 10)
        XCTAssertEqual(Set(result["b"]?.map(\.topic) ?? []), ["u"])

        // Sticky start that is lopsided: b holds all of t; a cross-class move fixes the gap.
        let previous: [String: Set<GroupTopicPartition>] = ["b": Set((0..<10).map { gtp("t", $0) })]
        let moved = GroupAssignor.sticky(members: members, partitionCounts: ["t": 10, "u": 10], previous: previous)
        XCTAssertEqual(moved["a"]?.count, 10, "\(moved)")
        XCTAssertEqual(moved["b"]?.count, 10, "\(moved)")
    }

    // MARK: - Properties over random cases

    func testRangePropertiesOverRandomCases() {
        let base = SeededRandom.fromEnvironment().seed
        for index in 0..<UInt64(Self.casesCount) {
            var rng = SeededRandom(seed: base &+ index)
            let testCase = GroupRandomAssignorCase(&rng)
            let result = GroupAssignor.range(members: testCase.members, partitionCounts: testCase.counts)
            if let failure = testCase.coverageFailure(result) ?? testCase.perTopicBalanceFailure(result) {
                return XCTFail("range, seed \(rng.seed): \(failure)\n\(testCase)")
            }
            guard index % 4 == 0 else { continue }  // order independence on a quarter of the cases
            let again = GroupAssignor.range(members: testCase.members.reversed(), partitionCounts: testCase.counts)
            XCTAssertEqual(result, again, "range depends on input order, seed \(rng.seed)")
        }
    }

    func testStickyPropertiesOverRandomCases() {
        let base = SeededRandom.fromEnvironment().seed
        for index in 0..<UInt64(Self.casesCount) {
            var rng = SeededRandom(seed: base &+ index)
            let testCase = GroupRandomAssignorCase(&rng)
            let previous = testCase.randomPrevious(&rng)
            let result = GroupAssignor.sticky(
                members: testCase.members, partitionCounts: testCase.counts, previous: previous)
            let failure = testCase.coverageFailure(result) ?? testCase.classBalanceFailure(result)
                ?? (testCase.identical ? testCase.overallBalanceFailure(result) : nil)
            if let failure { return XCTFail("sticky, seed \(rng.seed): \(failure)\n\(testCase)") }
            guard index % 4 == 0 else { continue }  // order independence on a quarter of the cases
            let again = GroupAssignor.sticky(
                members: testCase.members.reversed(), partitionCounts: testCase.counts, previous: previous)
            XCTAssertEqual(result, again, "sticky depends on input order, seed \(rng.seed)")
        }
    }

    /// After one member joins or leaves a balanced group (or from any previous assignment), sticky
    /// moves exactly as many partitions as balance forces, computed by brute force over quotas.
    func testStickyMovesTheMinimumAfterMembershipChanges() {
        let base = SeededRandom.fromEnvironment().seed
        for index in 0..<UInt64(Self.casesCount) {
            var rng = SeededRandom(seed: base &+ index)
            let testCase = GroupRandomAssignorCase(&rng, identical: true)
            let start = rng.chance(0.5) ? testCase.randomPrevious(&rng) : [:]
            let before = GroupAssignor.sticky(members: testCase.members, partitionCounts: testCase.counts, previous: start)
            var members = testCase.members
            if members.count > 1 && rng.chance(0.5) {
                members.remove(at: rng.int(0...(members.count - 1)))
            } else {
                members.append(GroupAssignorMember(memberId: "new-\(rng.int(0...99))", subscribedTopics: members[0].subscribedTopics))
            }
            // From a balanced start, and from an arbitrary one (the bound holds for any previous).
            for previous in [before, testCase.randomPrevious(&rng)] {
                let after = GroupAssignor.sticky(members: members, partitionCounts: testCase.counts, previous: previous)
                let moved = movedCount(previous: previous, next: after, members: members, counts: testCase.counts)
                let minimum = minimumMoves(previous: previous, members: members, counts: testCase.counts)
                if moved != minimum {
                    return XCTFail("seed \(rng.seed): moved \(moved), minimum \(minimum)\nprevious \(previous)\nnext \(after)")
                }
            }
        }
    }

    /// Partitions that still exist and are subscribed, whose previous owner is still a member, and
    /// that now belong to someone else. All members subscribe to the same topics.
    private func movedCount(
        previous: [String: Set<GroupTopicPartition>], next: [String: Set<GroupTopicPartition>],
        members: [GroupAssignorMember], counts: [String: Int32]
    ) -> Int {
        let topics = Set(members[0].subscribedTopics)
        var moved = 0
        for (member, partitions) in previous where next[member] != nil {
            for partition in partitions where topics.contains(partition.topic)
                && (0..<(counts[partition.topic] ?? 0)).contains(partition.partition) {
                if next[member]?.contains(partition) == false { moved += 1 }
            }
        }
        return moved
    }

    /// Brute force over which members get the larger quota: the fewest partitions that must leave
    /// members holding more than their quota. All members subscribe to the same topics.
    private func minimumMoves(
        previous: [String: Set<GroupTopicPartition>], members: [GroupAssignorMember], counts: [String: Int32]
    ) -> Int {
        let topics = Set(members[0].subscribedTopics)
        let total = topics.reduce(0) { $0 + Int(counts[$1] ?? 0) }
        let held = members.map { member in
            (previous[member.memberId] ?? []).filter {
                topics.contains($0.topic) && (0..<(counts[$0.topic] ?? 0)).contains($0.partition)
            }.count
        }
        let extra = total % members.count
        var best = Int.max
        for mask in 0..<(1 << members.count) where mask.nonzeroBitCount == extra {
            var moves = 0
            for (index, count) in held.enumerated() {
                let quota = total / members.count + ((mask >> index) & 1)
                moves += max(0, count - quota)
            }
            best = min(best, moves)
        }
        return best
    }
}

/// A random assignor input: up to 5 topics (some missing or empty), up to 8 members.
struct GroupRandomAssignorCase: CustomStringConvertible {
    var members: [GroupAssignorMember]
    var counts: [String: Int32]
    var identical: Bool

    init(_ rng: inout SeededRandom, identical: Bool? = nil) {
        let topics = (0..<rng.int(1...5)).map { "t\($0)" }
        var counts: [String: Int32] = [:]
        for topic in topics where !rng.chance(0.1) { counts[topic] = Int32(rng.int(0...12)) }
        let sameTopics = identical ?? rng.chance(0.5)
        let pool = topics + ["ghost"]
        func subscription(_ rng: inout SeededRandom) -> [String] {
            let chosen = pool.filter { _ in rng.chance(0.5) }
            return chosen.isEmpty ? [topics[0]] : chosen.shuffled(using: &rng)
        }
        let shared = subscription(&rng)
        let membersCount = rng.int(1...8)
        var ids: Set<String> = []
        while ids.count < membersCount { ids.insert("m\(rng.int(0...99))") }
        var members: [GroupAssignorMember] = []
        for id in ids.sorted().shuffled(using: &rng) {
            members.append(GroupAssignorMember(memberId: id, subscribedTopics: sameTopics ? shared : subscription(&rng)))
        }
        self.members = members
        self.counts = counts
        self.identical = sameTopics
    }

    var description: String { "counts \(counts.sorted { $0.key < $1.key }), members \(members.map { "\($0.memberId): \($0.subscribedTopics)" })" }

    /// Every partition (including some that no longer exist) to a random member or to nobody.
    func randomPrevious(_ rng: inout SeededRandom) -> [String: Set<GroupTopicPartition>] {
        var previous: [String: Set<GroupTopicPartition>] = [:]
        for topic in counts.keys.sorted() {
            for partition in 0..<((counts[topic] ?? 0) + 2) where rng.chance(0.8) {
                let member = members[rng.int(0...(members.count - 1))].memberId
                previous[member, default: []].insert(gtp(topic, partition))
            }
        }
        return previous
    }

    /// Every partition of a subscribed topic goes to exactly one member that subscribes to it.
    func coverageFailure(_ result: [String: Set<GroupTopicPartition>]) -> String? {
        if Set(result.keys) != Set(members.map(\.memberId)) { return "result keys \(result.keys.sorted())" }
        var owners: [GroupTopicPartition: String] = [:]
        for member in members {
            for partition in result[member.memberId] ?? [] {
                if !member.subscribedTopics.contains(partition.topic) {
                    return "\(member.memberId) got \(partition) without subscribing"
                }
                if let other = owners.updateValue(member.memberId, forKey: partition) {
                    return "\(partition) assigned to \(other) and \(member.memberId)"
                }
            }
        }
        let subscribed = Set(members.flatMap(\.subscribedTopics))
        for (topic, count) in counts where subscribed.contains(topic) {
            for partition in 0..<count where owners[gtp(topic, partition)] == nil {
                return "\(gtp(topic, partition)) is not assigned"
            }
        }
        return owners.keys.first { !(0..<(counts[$0.topic] ?? 0)).contains($0.partition) }.map { "\($0) does not exist" }
    }

    /// Range: per topic, the topic's subscribers differ by at most one partition of it.
    func perTopicBalanceFailure(_ result: [String: Set<GroupTopicPartition>]) -> String? {
        for topic in counts.keys {
            let loads = members.filter { $0.subscribedTopics.contains(topic) }.map { member in
                result[member.memberId]?.filter { $0.topic == topic }.count ?? 0
            }
            if let low = loads.min(), let high = loads.max(), high - low > 1 { return "topic \(topic) loads \(loads)" }
        }
        return nil
    }

    /// Sticky: members with the same (existing) topics differ by at most one partition.
    func classBalanceFailure(_ result: [String: Set<GroupTopicPartition>]) -> String? {
        var classes: [Set<String>: [Int]] = [:]
        for member in members {
            let topics = Set(member.subscribedTopics.filter { (counts[$0] ?? 0) > 0 })
            classes[topics, default: []].append(result[member.memberId]?.count ?? 0)
        }
        for (topics, loads) in classes {
            if let low = loads.min(), let high = loads.max(), high - low > 1 { return "class \(topics.sorted()) loads \(loads)" }
        }
        return nil
    }

    /// Identical subscriptions: all members differ by at most one partition.
    func overallBalanceFailure(_ result: [String: Set<GroupTopicPartition>]) -> String? {
        let loads = members.map { result[$0.memberId]?.count ?? 0 }
        if let low = loads.min(), let high = loads.max(), high - low > 1 { return "loads \(loads)" }
        return nil
    }
}
