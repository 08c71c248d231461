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
}
