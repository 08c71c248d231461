import SluiceRaft
import SluiceTestSupport
import Testing

/// Messages are input: a node fed random, stale, forged or absurd messages (including counters near
/// UInt64.max) must ignore or answer them, never trap. Seeded; the failure names the seed.
@Suite struct MalformedMessageTests {
    @Test func randomMessagesNeverTrap() {
        var rng = SeededRandom.fromEnvironment()
        let cluster = Cluster(size: 3, seed: rng.seed) { id, peers in RaftConfig(id: id, peers: peers) }
        cluster.start()
        cluster.nodes[1]?.campaign()
        cluster.processReady(1)
        cluster.deliverAll()
        #expect(cluster.nodes[1]?.role == .leader, "seed \(rng.seed)")
        for round in 0..<3000 {
            let message = randomMessage(&rng, to: UInt64(round % 3) + 1)
            cluster.deliver(message)
            if round % 50 == 0 { cluster.inFlight = [] }
        }
        // Still a working group afterwards: heal the damage with normal traffic.
        cluster.inFlight = []
        for _ in 0..<60 {
            for id in cluster.ids { cluster.tick(id) }
            cluster.deliverAll()
        }
        #expect(cluster.ids.contains { cluster.nodes[$0]?.role == .leader }, "seed \(rng.seed)")
    }

    func randomMessage(_ rng: inout SeededRandom, to: NodeID) -> Message {
        func counter(_ rng: inout SeededRandom) -> UInt64 {
            switch rng.int(0...9) {
            case 0: return UInt64.max - UInt64(rng.int(0...3))
            case 1: return UInt64(rng.int(0...1_000_000))
            default: return UInt64(rng.int(0...6))
            }
        }
        let kind = Message.Kind.allCases[rng.int(0...Message.Kind.allCases.count - 1)]
        let index = counter(&rng)
        let term = counter(&rng)
        let entries = (0..<rng.int(0...3)).map { k in
            Entry(term: rng.chance(0.5) ? term : counter(&rng), index: rng.chance(0.7) ? index &+ UInt64(k) &+ 1 : counter(&rng))
        }
        let snapshot = rng.chance(0.5)
            ? Snapshot(metadata: SnapshotMetadata(index: counter(&rng), term: counter(&rng)), data: []) : nil
        return Message(
            kind: kind, from: UInt64(rng.int(0...4)), to: rng.chance(0.9) ? to : UInt64(rng.int(0...4)), term: term,
            logTerm: counter(&rng), index: index, entries: entries, commit: counter(&rng), reject: rng.chance(0.5),
            rejectHint: counter(&rng), snapshot: snapshot, transfer: rng.chance(0.2))
    }
}
