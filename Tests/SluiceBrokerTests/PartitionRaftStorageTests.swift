import SluiceCore
import SluiceLog
import SluiceRaft
import SluiceTestSupport
import Testing

@testable import SluiceBroker

/// The partition log as Raft storage must behave exactly like the reference `MemoryStorage` the Raft
/// simulation runs on, across truncations, snapshots and reopening, while keeping offsets dense.
@Suite("Partition log as Raft storage")
struct PartitionRaftStorageTests {
    static func batch(_ rng: inout SeededRandom, records: Int) throws -> [UInt8] {
        let built = try RecordBatch.build(records: (0..<records).map { delta in
            Record(offset: Int64(delta), timestamp: 1_700_000_000_000, key: nil, value: rng.fastBytes(Int(rng.next(upperBound: UInt64(40))) + 1))
        })
        return built.bytes
    }

    /// Opens (or reopens) the replica in `directory`.
    /// Small segments, so truncations cross segment boundaries; no fsync per append (not the point here).
    static func open(_ directory: String, readBytesMax: Int = 1 << 20) throws -> PartitionRaftStorage {
        let log = try PartitionLog.open(directory: directory, config: LogConfig(segmentBytes: 1 << 20, flushPolicy: .os))
        return try PartitionRaftStorage(directory: directory, log: log, readBytesMax: readBytesMax)
    }

    /// Same indexes and terms, and per entry the same records, with the offsets and epochs the partition
    /// log must have stamped.
    static func expectSame(_ model: MemoryStorage, _ real: PartitionRaftStorage, seed: UInt64, step: Int) throws {
        let context = "seed \(seed), step \(step)"
        #expect(real.firstIndex == model.firstIndex, "\(context)")
        #expect(real.lastIndex == model.lastIndex, "\(context)")
        guard real.firstIndex == model.firstIndex, real.lastIndex == model.lastIndex else { return }
        for index in (model.firstIndex - 1)...model.lastIndex {
            #expect(real.term(at: index) == model.term(at: index), "\(context): term at \(index)")
        }
        let entries = real.entries(from: real.firstIndex, to: real.lastIndex + 1)
        #expect(entries.count == Int(model.lastIndex + 1 - model.firstIndex), "\(context)")
        let expected = model.entries(from: model.firstIndex, to: model.lastIndex + 1)
        var offset = real.anchor.offset
        for (got, want) in zip(entries, expected) {
            #expect(got.index == want.index && got.term == want.term, "\(context)")
            let header = RecordBatch(unchecked: got.payload).header
            #expect(header.baseOffset == offset, "\(context): index \(got.index) at offset \(header.baseOffset), expected \(offset)")
            #expect(UInt64(header.partitionLeaderEpoch) == want.term, "\(context)")
            // Everything after the stamped fields (CRC onward) is the leader's bytes, unchanged.
            #expect(Array(got.payload[17...]) == Array(want.payload[17...]), "\(context): payload of \(got.index)")
            #expect(real.offset(of: got.index) == offset, "\(context)")
            offset = header.nextOffset
        }
        #expect(real.endOffset == offset && real.log.logEndOffset == offset, "\(context)")
    }

    @Test("seeded appends, divergent-suffix truncations, snapshots and reopens match MemoryStorage")
    func matchesMemoryStorage() throws {
        for round in 0..<4 {
            var rng = SeededRandom(seed: SeededRandom.fromEnvironment().seed &+ UInt64(round))
            let seed = rng.seed
            let directory = TemporaryDirectory("raft-storage")
            defer { directory.remove() }
            let model = MemoryStorage()
            var real = try Self.open(directory.path)
            var term: UInt64 = 1
            for step in 0..<40 {
                let choice = rng.next(upperBound: UInt64(10))
                if choice < 6 {
                    // Append at a random point from the first index to the end; terms never fall below
                    // the entry before, and a replaced suffix gets a newer term (as Raft guarantees).
                    let start = model.firstIndex + rng.next(upperBound: model.lastIndex + 2 - model.firstIndex)
                    if start <= model.lastIndex { term += 1 }
                    term = max(term, model.term(at: start - 1) ?? 0)
                    let count = Int(rng.next(upperBound: UInt64(4))) + 1
                    var entries: [Entry] = []
                    for k in 0..<count {
                        entries.append(Entry(term: term, index: start + UInt64(k), payload: try Self.batch(&rng, records: Int(rng.next(upperBound: UInt64(3))) + 1)))
                    }
                    let replacesSuffix = start <= real.lastIndex
                    model.append(entries)
                    let truncated = try real.persist(entries)
                    #expect(truncated == replacesSuffix, "seed \(seed)")
                } else if choice < 8 {
                    try real.log.close()
                    real = try Self.open(directory.path)
                } else if choice < 9 {
                    // A snapshot from the leader beyond (or inside) our log: the log restarts empty.
                    let index = model.lastIndex + rng.next(upperBound: UInt64(5))
                    term += 1
                    let offset = real.endOffset + Int64(rng.next(upperBound: UInt64(100)))
                    let snapshot = Snapshot(metadata: SnapshotMetadata(index: index, term: term), data: RaftStateFile.snapshotData(offset: offset))
                    model.applySnapshot(snapshot)
                    try real.applySnapshot(snapshot)
                    #expect(real.snapshot() == snapshot, "seed \(seed)")
                } else {
                    let state = HardState(term: term, vote: rng.next(upperBound: UInt64(2)) == 0 ? nil : 2, commit: real.lastIndex)
                    try real.setHardState(state)
                    #expect(real.hardState == state, "seed \(seed)")
                }
                try Self.expectSame(model, real, seed: seed, step: step)
            }
            try real.log.close()
        }
    }

    /// Opens the replica in `directory` with segments of a few batches and a retention of about two
    /// segments, so that retention has something to cut after every few appends.
    static func openRetaining(_ directory: String) throws -> PartitionRaftStorage {
        let config = LogConfig(segmentBytes: 400, segmentMilliseconds: nil, retentionMilliseconds: nil, retentionBytes: 800, flushPolicy: .os)
        return try PartitionRaftStorage(directory: directory, log: try PartitionLog.open(directory: directory, config: config))
    }

    @Test("retention moves the anchor to a segment boundary at or below the commit, then deletes; reopens agree with MemoryStorage")
    func retentionMovesTheAnchor() throws {
        for round in 0..<4 {
            var rng = SeededRandom(seed: SeededRandom.fromEnvironment().seed &+ UInt64(round))
            let seed = rng.seed
            let directory = TemporaryDirectory("raft-retention")
            defer { directory.remove() }
            let model = MemoryStorage()
            var real = try Self.openRetaining(directory.path)
            var term: UInt64 = 1
            for step in 0..<60 {
                let choice = rng.next(upperBound: UInt64(10))
                if choice < 6 {
                    // Appends at the end or over an uncommitted suffix (a newer term replaces it).
                    let start = max(real.hardState.commit + 1, model.lastIndex + 1 - min(model.lastIndex, rng.next(upperBound: UInt64(3))))
                    if start <= model.lastIndex { term += 1 }
                    term = max(term, model.term(at: start - 1) ?? 0) + (rng.next(upperBound: UInt64(4)) == 0 ? 1 : 0)
                    let entries = try (0..<(Int(rng.next(upperBound: UInt64(3))) + 1)).map { k in
                        Entry(term: term, index: start + UInt64(k), payload: try Self.batch(&rng, records: Int(rng.next(upperBound: UInt64(3))) + 1))
                    }
                    model.append(entries)
                    try real.persist(entries)
                } else if choice < 7 {
                    try real.log.close()
                    real = try Self.openRetaining(directory.path)
                } else if choice < 8 {
                    let commit = real.anchor.index + rng.next(upperBound: real.lastIndex - real.anchor.index + 1)
                    try real.setHardState(HardState(term: term, vote: nil, commit: max(commit, real.hardState.commit)))
                } else {
                    let commit = real.hardState.commit
                    let before = real.anchor
                    if let start = try real.compactForRetention(commit: commit) {
                        #expect(real.anchor.offset == start && real.hardState.commit >= real.anchor.index, "seed \(seed), step \(step)")
                        // The segments go later, off the Raft thread; a crash (reopen) may come first, leaving
                        // batches below the anchor that the open must skip.
                        if rng.next(upperBound: UInt64(2)) == 0 {
                            try real.log.deleteSegments(before: start)
                            #expect(real.log.logStartOffset == start, "seed \(seed), step \(step)")
                        }
                        #expect(real.anchor.index > before.index && real.anchor.index <= commit, "seed \(seed), step \(step): anchor \(real.anchor), commit \(commit)")
                        model.compact(upTo: real.anchor.index, data: RaftStateFile.snapshotData(offset: start))
                    } else {
                        #expect(real.anchor == before, "seed \(seed), step \(step)")
                    }
                }
                try Self.expectSame(model, real, seed: seed, step: step)
            }
            // Whatever the random steps did: a log well over retention.bytes, all committed, must be cut.
            let tail = try (0..<12).map { k in
                Entry(term: term, index: model.lastIndex + 1 + UInt64(k), payload: try Self.batch(&rng, records: 3))
            }
            model.append(tail)
            try real.persist(tail)
            try real.setHardState(HardState(term: term + 1, vote: nil, commit: real.lastIndex))
            let start = try real.compactForRetention(commit: real.lastIndex)
            #expect(start != nil, "seed \(seed): retention did not cut a log over its retention.bytes")
            if let start { model.compact(upTo: real.anchor.index, data: RaftStateFile.snapshotData(offset: start)) }
            try Self.expectSame(model, real, seed: seed, step: 60)
            try real.log.close()
        }
    }

    @Test("a state file whose commit lies below its anchor opens with the commit raised to the anchor")
    func commitBelowAnchor() throws {
        var rng = SeededRandom.fromEnvironment()
        let directory = TemporaryDirectory("raft-anchor")
        defer { directory.remove() }
        var real = try Self.open(directory.path)
        try real.persist(try (1...8).map { Entry(term: 1, index: UInt64($0), payload: try Self.batch(&rng, records: 1)) })
        let anchorOffset = real.offset(of: 6)
        // What a crash could leave before the fix: the anchor moved with an older, lower commit beside it.
        let state = RaftStateFile.State(hardState: HardState(term: 1, vote: nil, commit: 2),
                                        anchor: .init(index: 5, term: 1, offset: anchorOffset))
        try FileSystem.writeAtomically(RaftStateFile.encode(state), to: directory.path + "/" + RaftStateFile.name, directory: directory.path)
        try real.log.close()
        real = try Self.open(directory.path)
        #expect(real.firstIndex == 6 && real.lastIndex == 8, "seed \(rng.seed)")
        #expect(real.initialState().commit == 5)
        #expect(real.endOffset(of: real.initialState().commit) == anchorOffset)
        try real.log.close()
    }

    @Test("term and vote survive a reopen; a commit saved beyond a lost tail is clamped to the log")
    func hardStateDurability() throws {
        var rng = SeededRandom.fromEnvironment()
        let directory = TemporaryDirectory("raft-state")
        defer { directory.remove() }
        var real = try Self.open(directory.path)
        try real.persist([Entry(term: 3, index: 1, payload: try Self.batch(&rng, records: 2)),
                          Entry(term: 3, index: 2, payload: try Self.batch(&rng, records: 1))])
        try real.setHardState(HardState(term: 4, vote: 7, commit: 2))
        try real.log.close()
        real = try Self.open(directory.path)
        #expect(real.initialState() == HardState(term: 4, vote: 7, commit: 2), "seed \(rng.seed)")
        // Lose the last batch as an unsynced tail would be lost, behind the state file's back.
        try real.log.truncate(to: 2)
        try real.log.close()
        real = try Self.open(directory.path)
        #expect(real.lastIndex == 1)
        #expect(real.initialState() == HardState(term: 4, vote: 7, commit: 1))
        try real.log.close()
    }

    @Test("entries stops at the read bound with a prefix, and a RaftNode accepts such a prefix")
    func readBound() throws {
        var rng = SeededRandom.fromEnvironment()
        let directory = TemporaryDirectory("raft-bound")
        defer { directory.remove() }
        let real = try Self.open(directory.path, readBytesMax: 300)
        let entries = try (1...10).map { Entry(term: 1, index: UInt64($0), payload: try Self.batch(&rng, records: 3)) }
        try real.persist(entries)
        let prefix = real.entries(from: 1, to: 11)
        #expect(!prefix.isEmpty && prefix.count < 10, "seed \(rng.seed): \(prefix.count) entries")
        #expect(prefix.map(\.index) == Array(1...UInt64(prefix.count)))
        #expect(real.entries(from: 4, to: 5).count == 1)
        try real.log.close()
    }

    @Test("the state file: exact bytes, and each kind of damage named")
    func stateFile() throws {
        let state = RaftStateFile.State(hardState: HardState(term: 5, vote: 2, commit: 9),
                                        anchor: .init(index: 3, term: 2, offset: 40))
        let bytes = RaftStateFile.encode(state)
        #expect(bytes.count == RaftStateFile.size)
        #expect(Array(bytes[0..<5]) == Array("SRST".utf8) + [1])
        #expect(Array(bytes[5..<13]) == [0, 0, 0, 0, 0, 0, 0, 5])
        #expect(Array(bytes[45..<53]) == [0, 0, 0, 0, 0, 0, 0, 40])
        #expect(try RaftStateFile.decode(bytes, path: "p") == state)
        for position in 0..<bytes.count {
            var damaged = bytes
            damaged[position] ^= 0x10
            #expect(throws: ReplicationError.self, "byte \(position)") { try RaftStateFile.decode(damaged, path: "p") }
        }
        #expect(throws: ReplicationError.self) { try RaftStateFile.decode(Array(bytes.dropLast()), path: "p") }
        #expect(throws: ReplicationError.self) { try RaftStateFile.snapshotOffset([1, 0, 0]) }
    }
}
