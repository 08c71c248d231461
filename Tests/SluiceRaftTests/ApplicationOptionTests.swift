import SluiceRaft
import SluiceTestSupport
import Testing

/// The two options a partition group uses: its own no-op payload and no delivery of committed entries.
@Suite("Raft application options")
struct ApplicationOptionTests {
    /// A single-member group: campaigning makes it leader at once, so every step is visible.
    static func soloLeader(_ config: RaftConfig) -> (RaftNode, MemoryStorage) {
        let storage = MemoryStorage()
        let node = RaftNode(config: config, storage: storage, random: SeededRandom(seed: 1))
        node.campaign()
        return (node, storage)
    }

    static func persist(_ ready: Ready, _ storage: MemoryStorage) {
        storage.append(ready.entries)
        if let state = ready.hardState { storage.setHardState(state) }
    }

    @Test("a new leader's no-op carries the configured payload (Raft §8)")
    func noopPayload() {
        let (node, storage) = Self.soloLeader(RaftConfig(id: 1, peers: [1], noopPayload: { [9, 9] }))
        #expect(node.role == .leader)
        let ready = node.ready()
        #expect(ready.entries.map(\.payload) == [[9, 9]])
        Self.persist(ready, storage)
        node.advance()
    }

    @Test("without delivery the commit index still advances and Ready stops asking to apply")
    func noDelivery() throws {
        for deliver in [true, false] {
            let (node, storage) = Self.soloLeader(RaftConfig(id: 1, peers: [1], deliversCommittedEntries: deliver))
            _ = try node.propose([1])
            _ = try node.propose([2])
            // A solo leader may commit as it appends; collect what every Ready delivers.
            var committed: [[UInt8]] = []
            while node.hasReady {
                let next = node.ready()
                committed += next.committedEntries.map(\.payload)
                Self.persist(next, storage)
                node.advance()
            }
            #expect(node.commitIndex == 3, "deliver \(deliver)")
            #expect(node.appliedIndex == 3, "deliver \(deliver)")
            #expect(committed == (deliver ? [[], [1], [2]] : []), "deliver \(deliver)")
            #expect(!node.hasReady)
        }
    }

    @Test("a node that lost entries neither campaigns nor votes until a leader brings it up to its commit")
    func abstainsUntilCaughtUp() {
        let storage = MemoryStorage()
        storage.append([Entry(term: 1, index: 1, payload: [1])])
        storage.setHardState(HardState(term: 1, vote: nil, commit: 1))
        let node = RaftNode(config: RaftConfig(id: 3, peers: [1, 2, 3], startsAbstaining: true), storage: storage,
                            random: SeededRandom(seed: 7))
        // Timeouts pass: no campaign.
        for _ in 0..<100 { node.tick() }
        #expect(node.role == .follower && node.abstaining)
        #expect(node.ready().messages.isEmpty)
        node.advance()
        // A candidate with an up-to-date log is refused, pre-vote and vote alike.
        node.step(Message(kind: .preVote, from: 1, to: 3, term: 2, logTerm: 1, index: 1))
        node.step(Message(kind: .vote, from: 1, to: 3, term: 2, logTerm: 1, index: 1))
        #expect(node.ready().messages.map(\.reject) == [true, true])
        node.advance()
        // The leader of term 2 sends an entry and a commit below what it sent: still abstaining, as the
        // leader's commit (3) lies beyond what this node holds.
        node.step(Message(kind: .append, from: 1, to: 3, term: 2, logTerm: 1, index: 1,
                          entries: [Entry(term: 2, index: 2, payload: [])], commit: 3))
        #expect(node.abstaining)
        node.step(Message(kind: .append, from: 1, to: 3, term: 2, logTerm: 2, index: 2,
                          entries: [Entry(term: 2, index: 3, payload: [2])], commit: 3))
        #expect(!node.abstaining)
        let ready = node.ready()
        storage.append(ready.entries)
        node.advance()
        // Caught up, it campaigns again once the leader falls silent.
        for _ in 0..<40 { node.tick() }
        #expect(node.ready().messages.contains { $0.kind == .preVote })
        node.advance()
    }
}
