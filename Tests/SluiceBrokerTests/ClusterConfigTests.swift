import SluiceTestSupport
import Testing

@testable import SluiceBroker

/// Static cluster membership: the `ID@HOST:PORT,...` form, its limits, and the helpers the Raft groups use.
@Suite("cluster configuration")
struct ClusterConfigTests {
    @Test("a member list parses in any order, blanks ignored, and is kept sorted by id")
    func parsesAndSorts() throws {
        let cluster = try ClusterConfig.parse(" 3@broker-3.example:9403, 1@127.0.0.1:9401 ,2@[::1]:9402")
        #expect(cluster.ids == [1, 2, 3])
        #expect(cluster.members[0] == ClusterConfig.Member(id: 1, host: "127.0.0.1", port: 9401))
        #expect(cluster.member(2)?.host == "[::1]")
        #expect(cluster.member(2)?.address == "[::1]:9402")
        #expect(cluster.member(3)?.port == 9403)
        #expect(cluster.member(4) == nil)
        #expect(cluster.peers(of: 2).map(\.id) == [1, 3])
        #expect(cluster.description == "1@127.0.0.1:9401,2@[::1]:9402,3@broker-3.example:9403")
        #expect(try ClusterConfig.parse(cluster.description) == cluster)
    }

    @Test("the quorum is a strict majority: 1 of 1, 2 of 2 or 3, 3 of 4 or 5, 4 of 6 or 7")
    func quorum() throws {
        let expected = [1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 6: 4, 7: 4, 64: 33]
        for (size, quorum) in expected {
            let text = (1...size).map { "\($0)@h:\(9400 + $0)" }.joined(separator: ",")
            let cluster = try ClusterConfig.parse(text)
            #expect(cluster.members.count == size)
            #expect(cluster.quorum == quorum, "\(size) members")
            #expect(cluster.peers(of: Int32(size)).count == size - 1)
        }
    }

    @Test("malformed lists are refused with the entry, what is wrong and how to write it")
    func errors() {
        let cases: [(String, String)] = [
            ("", "entry 1 is empty; write ID@HOST:PORT"),
            ("1@a:1,", "entry 2 is empty; write ID@HOST:PORT"),
            ("1@a:1,,3@c:3", "entry 2 is empty; write ID@HOST:PORT"),
            ("1@127.0.0.1:9401,2@host", "entry 2 '2@host' has no port; write ID@HOST:PORT"),
            ("1@host:", "entry 1 '1@host:' has no port; write ID@HOST:PORT"),
            ("1@[::1]", "entry 1 '1@[::1]' has no port; write ID@HOST:PORT"),
            ("127.0.0.1:9401", "entry 1 '127.0.0.1:9401' has no node id; write ID@HOST:PORT"),
            ("1@:9401", "entry 1 '1@:9401' has no host; write ID@HOST:PORT"),
            ("x@h:1", "entry 1 'x@h:1': node id 'x' must be an integer in 1...2147483647"),
            ("0@h:1", "entry 1 '0@h:1': node id '0' must be an integer in 1...2147483647"),
            ("-1@h:1", "entry 1 '-1@h:1': node id '-1' must be an integer in 1...2147483647"),
            ("2147483648@h:1", "entry 1 '2147483648@h:1': node id '2147483648' must be an integer in 1...2147483647"),
            ("1@h:0", "entry 1 '1@h:0': port '0' must be an integer in 1...65535"),
            ("1@h:65536", "entry 1 '1@h:65536': port '65536' must be an integer in 1...65535"),
            ("1@h:http", "entry 1 '1@h:http': port 'http' must be an integer in 1...65535"),
            ("1@my host:1", "entry 1 '1@my host:1': host 'my host' may only hold letters, digits and . - _ : [ ]"),
            ("1@a@b:1", "entry 1 '1@a@b:1': host 'a@b' may only hold letters, digits and . - _ : [ ]"),
            ("1@a:1;2@b:2", "entry 1 '1@a:1;2@b:2': host 'a:1;2@b' may only hold letters, digits and . - _ : [ ]"),
            ("1@a:1,2@b:2,1@c:3", "entry 3 '1@c:3' repeats node id 1 of entry 1"),
            ("1@a:1,2@b:2,3@B:2", "entry 3 '3@B:2' repeats address B:2 of entry 2"),
            (String(repeating: "h", count: 254).withId, "entry 1 '1@\(String(repeating: "h", count: 254)):1': host is longer than 253 bytes"),
        ]
        for (text, expected) in cases {
            do {
                let cluster = try ClusterConfig.parse(text)
                Issue.record("'\(text)' was accepted as \(cluster)")
            } catch {
                #expect(error.description == expected, "'\(text)'")
            }
        }
    }

    @Test("at most membersMax brokers, counted before the entries are read")
    func membersMax() throws {
        let limit = ClusterConfig.membersMax
        let full = (1...limit).map { "\($0)@h:\($0)" }.joined(separator: ",")
        #expect(try ClusterConfig.parse(full).members.count == limit)
        #expect(throws: ClusterConfig.Error("lists \(limit + 1) brokers; at most \(limit) are supported")) {
            try ClusterConfig.parse(full + ",\(limit + 1)@h:\(limit + 1)")
        }
        // Too many commas is refused even when the entries themselves are garbage.
        #expect(throws: ClusterConfig.Error("lists 100001 brokers; at most \(limit) are supported")) {
            try ClusterConfig.parse(String(repeating: ",", count: 100_000))
        }
    }

    @Test("members built in code are checked like parsed ones and sorted")
    func initMembers() throws {
        let cluster = try ClusterConfig(members: [.init(id: 9, host: "b", port: 2), .init(id: 4, host: "a", port: 1)])
        #expect(cluster.ids == [4, 9])
        #expect(throws: ClusterConfig.Error("names no brokers; write ID@HOST:PORT,ID@HOST:PORT,...")) {
            try ClusterConfig(members: [])
        }
        #expect(throws: ClusterConfig.Error("entry 2 '5@a:0': port '0' must be an integer in 1...65535")) {
            try ClusterConfig(members: [.init(id: 4, host: "a", port: 1), .init(id: 5, host: "a", port: 0)])
        }
        #expect(throws: ClusterConfig.Error("entry 2 '4@b:2' repeats node id 4 of entry 1")) {
            try ClusterConfig(members: [.init(id: 4, host: "a", port: 1), .init(id: 4, host: "b", port: 2)])
        }
    }

    @Test("random member lists survive writing and reading back; random edits parse or fail with a message")
    func randomRoundTrip() throws {
        var random = SeededRandom.fromEnvironment()
        let seed = random.seed
        for _ in 0..<500 {
            var ids = Set<Int32>()
            let count = random.int(1...ClusterConfig.membersMax)
            while ids.count < count { ids.insert(Int32(random.int(1...Int(Int32.max)))) }
            let hosts = ["127.0.0.1", "broker.example", "[::1]", "10.0.0.7", "Node_4-b"]
            // Unique addresses: the port follows the position in the list.
            let members = ids.enumerated().map { index, id in
                ClusterConfig.Member(id: id, host: hosts[random.int(0...hosts.count - 1)], port: 1 + index)
            }
            let text = members.map { "\(random.chance(0.2) ? " " : "")\($0)" }.joined(separator: ",")
            let cluster = try ClusterConfig.parse(text)
            #expect(cluster.members == members.sorted { $0.id < $1.id }, "seed \(seed)")
            #expect(try ClusterConfig.parse(cluster.description) == cluster, "seed \(seed)")

            var edited = Array(text.utf8)
            let position = random.int(0...edited.count - 1)
            if random.chance(0.5) { edited.remove(at: position) } else { edited.insert(Array("@:,x0 ".utf8)[random.int(0...5)], at: position) }
            do {
                let parsed = try ClusterConfig.parse(String(decoding: edited, as: UTF8.self))
                #expect(parsed.members.count <= ClusterConfig.membersMax, "seed \(seed)")
                #expect(zip(parsed.ids, parsed.ids.dropFirst()).allSatisfy { $0 < $1 }, "seed \(seed)")
            } catch {
                #expect(error.description.hasPrefix("entry ") || error.description.hasPrefix("lists "), "seed \(seed): \(error)")
            }
        }
    }
}

extension String {
    /// `1@<self>:1`, a one-member list with this host.
    fileprivate var withId: String { "1@\(self):1" }
}
