import SluiceRaft

/// Checks Raft's safety properties (Raft §5.4, Figure 3) over a simulated cluster after every step.
/// The first violation is kept; the simulation stops there and reports it with the seed.
final class SafetyChecker: ClusterObserver {
    private(set) var violation: String?
    /// Election Safety: the leader of each term seen so far.
    private var leaders: [UInt64: NodeID] = [:]
    /// State Machine Safety: the entry applied at each index, with the lowest term a node applying it was
    /// in (an upper bound on the term in which it was committed).
    private var committed: [UInt64: (entry: Entry, seenInTerm: UInt64)] = [:]
    /// Log Matching: per (index, term), the payload and the term before it (nil before a log start).
    private var known: [Key: (payload: [UInt8], previousTerm: UInt64?)] = [:]
    /// Commit index never goes back: the last commit seen per live node, and per disk.
    private var lastCommit: [NodeID: UInt64] = [:]
    private var diskCommit: [NodeID: UInt64] = [:]
    private var lastApplied: [NodeID: UInt64] = [:]
    private unowned let cluster: Cluster
    /// Coverage counters, so a toothless scheduler is noticed: leaders seen, snapshots restored.
    var leadersCount: Int { leaders.count }
    private(set) var snapshotsRestored = 0
    var committedCount: Int { committed.count }

    struct Key: Hashable {
        let index: UInt64
        let term: UInt64
    }

    init(cluster: Cluster) {
        self.cluster = cluster
    }

    private func fail(_ text: String) {
        if violation == nil { violation = text }
    }

    func applying(_ entry: Entry, on node: NodeID, after appliedIndex: UInt64) {
        if entry.index != appliedIndex + 1 { fail("node \(node) applied \(entry.index) after \(appliedIndex)") }
        let term = cluster.nodes[node]?.term ?? 0
        if let first = committed[entry.index] {
            if first.entry != entry { fail("index \(entry.index) applied as \(entry) on node \(node), as \(first.entry) before") }
            committed[entry.index] = (first.entry, min(first.seenInTerm, term))
        } else {
            committed[entry.index] = (entry, term)
        }
    }

    func restoredSnapshot(_ snapshot: SnapshotMetadata, on node: NodeID) {
        snapshotsRestored += 1
        if let entry = committed[snapshot.index]?.entry, entry.term != snapshot.term {
            fail("node \(node) restored a snapshot at \(snapshot.index) term \(snapshot.term); committed term \(entry.term)")
        }
    }

    func restarted(_ node: NodeID, persisted: HardState) {
        // After a crash, what reached the disk is the floor.
        lastCommit[node] = persisted.commit
    }

    /// Checks after a step that touched `touched` (nil: every node).
    func check(touched: NodeID?) {
        for id in cluster.ids {
            guard let node = cluster.nodes[id] else { continue }
            checkLeader(node)
            checkCommitMonotonic(node)
            if touched == nil || touched == id { checkLog(node) }
        }
    }

    private func checkLeader(_ node: RaftNode) {
        guard node.role == .leader else { return }
        if let other = leaders[node.term], other != node.id {
            fail("two leaders in term \(node.term): \(other) and \(node.id)")
        }
        leaders[node.term] = node.id
    }

    private func checkCommitMonotonic(_ node: RaftNode) {
        if let last = lastCommit[node.id], node.commitIndex < last {
            fail("node \(node.id) commit went back from \(last) to \(node.commitIndex)")
        }
        lastCommit[node.id] = node.commitIndex
        if let disk = cluster.disks[node.id] {
            let persisted = disk.initialState().commit
            if persisted < diskCommit[node.id] ?? 0 { fail("node \(node.id) persisted commit went back") }
            diskCommit[node.id] = persisted
        }
    }

    /// Log Matching, committed entries unchanged, and Leader Completeness for `node`'s log.
    private func checkLog(_ node: RaftNode) {
        guard node.lastIndex >= node.firstIndex, let entries = node.entries(from: node.firstIndex, to: node.lastIndex + 1) else {
            return
        }
        var previousTerm = node.term(at: node.firstIndex - 1)
        for entry in entries {
            let key = Key(index: entry.index, term: entry.term)
            if let seen = known[key] {
                if seen.payload != entry.payload {
                    fail("log matching: node \(node.id) holds a different entry at index \(entry.index) term \(entry.term)")
                }
                if let a = seen.previousTerm, let b = previousTerm, a != b {
                    fail("log matching: node \(node.id) differs before index \(entry.index) term \(entry.term)")
                }
            } else {
                known[key] = (entry.payload, previousTerm)
            }
            if let done = committed[entry.index] {
                if entry.index <= node.commitIndex, done.entry != entry {
                    fail("node \(node.id) has a committed index \(entry.index) changed: \(entry) vs \(done.entry)")
                }
                if node.role == .leader, done.seenInTerm < node.term, done.entry != entry {
                    fail("leader completeness: leader \(node.id) of term \(node.term) lacks committed index \(entry.index)")
                }
            }
            previousTerm = entry.term
        }
        if node.role == .leader {
            // Committed entries past the leader's last index are missing from it entirely.
            var index = node.lastIndex + 1
            while let done = committed[index] {
                if done.seenInTerm < node.term {
                    fail("leader completeness: leader \(node.id) of term \(node.term) lacks committed index \(index)")
                }
                index += 1
            }
        }
    }
}
