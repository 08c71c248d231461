import SluiceRaft
import SluiceTestSupport

/// Runs a scenario script: one command per line, `#` comments. Commands:
///
///     cluster 3 [electionTimeout=10 heartbeat=1 preVote=true checkQuorum=true maxEntriesPerAppend=64]
///     disk 1: term 3 [vote 5] [commit 1] log 1 2     # preset a disk before the nodes start
///     tick 1|all|2 3 [x10]        campaign 1        propose 1 "a" [fails notLeader 2|notLeader none|transferring]
///     transfer 1 2            compact 1         crash 3        restart 3
///     deliver                 # everything, oldest first, until quiet
///     deliver votes           # only (pre-)vote requests and responses, until none are left
///     deliver 1 -> 3          # the messages queued from 1 to 3 right now
///     drop                    # lose every in-flight message
///     partition 1 2 | 3       isolate 3        heal
///
/// Expectations (a mismatch is a failure naming the line):
///
///     state 1: leader term 2 commit 3 lead 1 first 1 last 3 vote 1     # any subset after the role
///     state 3: down
///     log 1: 1 1 2            # the terms of the entries from the first index on
///     values 2: "a" "b"       # what the application applied
///     rejects 1: 1            # append rejections node 1 has sent so far
struct ScenarioRunner {
    private(set) var failures: [String] = []
    private var cluster: Cluster?
    private var started = false

    mutating func run(_ script: String) {
        for (number, raw) in script.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let words = tokenize(String(line))
            guard !words.isEmpty else { continue }
            if let problem = execute(words) {
                failures.append("line \(number + 1): `\(raw.trimmingCharacters())`: \(problem)")
            }
        }
    }

    private mutating func execute(_ words: [String]) -> String? {
        if words[0] == "cluster" { return makeCluster(words) }
        guard let cluster else { return "no `cluster` line yet" }
        if words[0] == "disk" { return presetDisk(words, cluster) }
        if !started {
            cluster.start()
            started = true
        }
        switch words[0] {
        case "state", "log", "values", "rejects": return expect(words, cluster)
        default: return act(words, cluster)
        }
    }

    private mutating func makeCluster(_ words: [String]) -> String? {
        guard words.count >= 2, let size = Int(words[1]) else { return "usage: cluster N [key=value...]" }
        var options: [String: String] = [:]
        for word in words.dropFirst(2) {
            let parts = word.split(separator: "=").map(String.init)
            guard parts.count == 2 else { return "bad option \(word)" }
            options[parts[0]] = parts[1]
        }
        cluster = Cluster(size: size, seed: 1) { id, peers in
            RaftConfig(
                id: id, peers: peers,
                electionTimeoutTicks: options["electionTimeout"].flatMap { Int($0) } ?? 10,
                heartbeatTicks: options["heartbeat"].flatMap { Int($0) } ?? 1,
                preVote: options["preVote"] != "false",
                checkQuorum: options["checkQuorum"] != "false",
                maxEntriesPerAppend: options["maxEntriesPerAppend"].flatMap { Int($0) } ?? 64)
        }
        return nil
    }

    private func presetDisk(_ words: [String], _ cluster: Cluster) -> String? {
        guard let id = nodeID(words, 1), let disk = cluster.disks[id] else { return "usage: disk N: term T ... log t..." }
        var state = HardState()
        var at = 2
        while at + 1 < words.count, words[at] != "log" {
            guard let value = UInt64(words[at + 1]) else { return "bad value \(words[at + 1])" }
            switch words[at] {
            case "term": state.term = value
            case "vote": state.vote = value
            case "commit": state.commit = value
            default: return "unknown field \(words[at])"
            }
            at += 2
        }
        let terms = words.dropFirst(at + 1).compactMap { UInt64($0) }
        disk.append(terms.enumerated().map { Entry(term: $1, index: UInt64($0 + 1), payload: Array("e\($0 + 1)".utf8)) })
        disk.setHardState(state)
        return nil
    }

    private func act(_ words: [String], _ cluster: Cluster) -> String? {
        switch words[0] {
        case "tick":
            let times = words.last.flatMap { $0.hasPrefix("x") ? Int($0.dropFirst()) : nil } ?? 1
            let targets = words.count > 1 && words[1] == "all" ? cluster.ids : words.dropFirst().compactMap { UInt64($0) }
            for _ in 0..<times { for id in targets { cluster.tick(id) } }
        case "campaign":
            guard let id = nodeID(words, 1), let node = cluster.nodes[id] else { return "no such live node" }
            node.campaign()
            cluster.processReady(id)
        case "propose": return propose(words, cluster)
        case "transfer":
            guard let from = nodeID(words, 1), let to = nodeID(words, 2), let node = cluster.nodes[from] else {
                return "usage: transfer FROM TO"
            }
            do { try node.transferLeadership(to: to) } catch { return "transfer failed: \(error)" }
            cluster.processReady(from)
        case "compact": nodeID(words, 1).map { cluster.compact($0) }
        case "crash": nodeID(words, 1).map { cluster.crash($0) }
        case "restart": nodeID(words, 1).map { cluster.restart($0) }
        case "deliver": return deliver(words, cluster)
        case "drop": cluster.inFlight = []
        case "partition":
            let parts = words.dropFirst().split(separator: "|").map { $0.compactMap { UInt64($0) } }
            cluster.partition(parts)
        case "isolate":
            guard let id = nodeID(words, 1) else { return "usage: isolate N" }
            cluster.partition([cluster.ids.filter { $0 != id }, [id]])
        case "heal": cluster.heal()
        default: return "unknown command"
        }
        return nil
    }

    private func propose(_ words: [String], _ cluster: Cluster) -> String? {
        guard let id = nodeID(words, 1), words.count >= 3, let node = cluster.nodes[id] else {
            return "usage: propose N \"value\" [fails ERROR]"
        }
        let expectedError = words.count > 4 && words[3] == "fails" ? words[4...].joined(separator: " ") : nil
        do {
            _ = try node.propose(Array(words[2].utf8))
            cluster.processReady(id)
            return expectedError.map { "expected failure \($0), but it was accepted" }
        } catch {
            let actual = describe(error)
            return actual == expectedError ? nil : "failed with \(actual), expected \(expectedError ?? "success")"
        }
    }

    private func describe(_ error: RaftError) -> String {
        switch error {
        case .notLeader(let hint): return "notLeader \(hint.map { String($0) } ?? "none")"
        case .leadershipTransferInProgress: return "transferring"
        case .unknownNode(let id): return "unknownNode \(id)"
        }
    }

    private func deliver(_ words: [String], _ cluster: Cluster) -> String? {
        if words.count == 1 {
            cluster.deliverAll()
        } else if words[1] == "votes" {
            let kinds: [Message.Kind] = [.preVote, .preVoteResponse, .vote, .voteResponse]
            cluster.deliverAll { kinds.contains($0.kind) }
        } else if words.count == 4, words[2] == "->", let from = UInt64(words[1]), let to = UInt64(words[3]) {
            let selected = cluster.inFlight.filter { $0.from == from && $0.to == to }
            cluster.inFlight.removeAll { $0.from == from && $0.to == to }
            for message in selected { cluster.deliver(message) }
        } else {
            return "usage: deliver | deliver votes | deliver A -> B"
        }
        return nil
    }

    private func expect(_ words: [String], _ cluster: Cluster) -> String? {
        guard let id = nodeID(words, 1) else { return "no node id" }
        let actual: String
        switch words[0] {
        case "state": actual = stateLine(id, cluster, keys: stride(from: 3, to: words.count, by: 2).map { words[$0] })
        case "log": actual = cluster.log(of: id).map { String($0.term) }.joined(separator: " ")
        case "values": actual = (cluster.apps[id]?.values ?? []).map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
        default: actual = String(cluster.rejectsSent[id, default: 0])
        }
        let expected = words.dropFirst(2).joined(separator: " ")
        return actual == expected ? nil : "expected `\(expected)`, got `\(actual)`"
    }

    private func stateLine(_ id: NodeID, _ cluster: Cluster, keys: [String]) -> String {
        guard let node = cluster.nodes[id] else { return "down" }
        var parts = ["\(node.role)".lowercased()]
        for key in keys {
            let value: String
            switch key {
            case "term": value = String(node.term)
            case "commit": value = String(node.commitIndex)
            case "lead": value = node.leader.map { String($0) } ?? "none"
            case "vote": value = node.vote.map { String($0) } ?? "none"
            case "first": value = String(node.firstIndex)
            case "last": value = String(node.lastIndex)
            default: value = "?"
            }
            parts += [key, value]
        }
        return parts.joined(separator: " ")
    }

    private func nodeID(_ words: [String], _ at: Int) -> NodeID? {
        guard at < words.count else { return nil }
        return UInt64(words[at].hasSuffix(":") ? String(words[at].dropLast()) : words[at])
    }

    /// Splits on spaces, keeping "quoted strings" (without their quotes) as one word.
    private func tokenize(_ line: String) -> [String] {
        var words: [String] = []
        var current = ""
        var quoted = false
        for ch in line {
            if ch == "\"" {
                if quoted { words.append(current); current = "" }
                quoted.toggle()
            } else if ch == " " && !quoted {
                if !current.isEmpty { words.append(current); current = "" }
            } else {
                current.append(ch)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }
}

extension Substring {
    func trimmingCharacters() -> String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
