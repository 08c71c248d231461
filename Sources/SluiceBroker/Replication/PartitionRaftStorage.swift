import SluiceCore
import SluiceLog
import SluiceRaft

/// `RaftStorage` over a partition log: the Raft log *is* the partition log. Raft index i is the i-th
/// record batch, the batch's partition-leader-epoch field is the entry's term, and the payload of an
/// entry is the batch's bytes. Offsets are not part of the agreement: a replica stamps each batch it
/// persists with the next offset of its own log, which is the same on every replica because their
/// logs match up to that entry (log matching, Raft §5.3).
///
/// Beside the log it keeps the file `raft-state` (term, vote, commit and the *anchor*: the index, term
/// and offset just before the first batch the log holds), specified in storage-format/replication.md.
/// Term and vote are written, with an fsync, whenever they change; the commit index only with them
/// and at close (a lower commit after a crash is safe: the leader repeats it).
///
/// In memory it holds 8 bytes per batch (each index's base offset) and one entry per term change.
///
/// Threads: not thread-safe; the partition's replication driver owns it.
final class PartitionRaftStorage: RaftStorage {
    /// Term run: entries from `index` on have `term`, until the next run.
    struct EpochStart: Equatable {
        var index: UInt64
        var term: UInt64
    }

    let directory: String
    /// The partition log; replaced (same files, new settings) by `replaceLog` after a config change.
    private(set) var log: PartitionLog
    /// Most batch bytes one `entries` call reads (it returns a prefix beyond that).
    let readBytesMax: Int
    private(set) var hardState: HardState
    private(set) var anchor: RaftStateFile.Anchor
    /// baseOffsets[k] is the base offset of the batch at index anchor.index + 1 + k.
    /// Invariant: strictly increasing; baseOffsets.count == lastIndex - anchor.index.
    private var baseOffsets: [Int64] = []
    /// Invariant: indexes and terms strictly increasing; the first starts at anchor.index + 1.
    private var epochs: [EpochStart] = []
    /// The offset after the last batch. Invariant: == log.logEndOffset after every call returns.
    private(set) var endOffset: Int64
    /// Batches the load found below the anchor (a crash between writing the anchor and deleting them).
    private(set) var skippedBelowAnchor = 0
    /// The first index whose batch failed its CRC when read back: the replica must drop it and what
    /// follows, and copy them again from the leader (`dropCorrupt`).
    private(set) var corruptIndex: UInt64?

    /// Opens the Raft view of `log`: reads `raft-state` (none: a fresh replica, anchored at the log
    /// start) and indexes every batch from the anchor on.
    init(directory: String, log: PartitionLog, readBytesMax: Int = 1 << 20) throws {
        precondition(readBytesMax > 0)
        self.directory = directory
        self.log = log
        self.readBytesMax = readBytesMax
        let path = directory + "/" + RaftStateFile.name
        if let bytes = try FileSystem.readSmallFile(path, limit: RaftStateFile.size + 1) {
            let state = try RaftStateFile.decode(bytes, path: path)
            hardState = state.hardState
            anchor = state.anchor
        } else {
            hardState = HardState()
            anchor = .init(index: 0, term: 0, offset: log.logStartOffset)
        }
        endOffset = anchor.offset
        if log.logStartOffset > anchor.offset || log.logEndOffset < anchor.offset {
            // Only a snapshot install interrupted after its anchor was written leaves this: finish it.
            try log.truncateFully(startingAt: anchor.offset)
        }
        try indexBatches()
        // A log that lost its unsynced tail (flush policy interval or os) may end below the saved commit;
        // everything up to the anchor was committed before retention moved it there.
        hardState.commit = max(min(hardState.commit, lastIndex), anchor.index)
    }

    private func indexBatches() throws {
        var previousTerm = anchor.term
        try log.forEachBatchHeader(from: anchor.offset) { header in
            guard header.baseOffset >= anchor.offset else {
                skippedBelowAnchor += 1
                return
            }
            let term = UInt64(max(0, header.partitionLeaderEpoch))
            guard term >= previousTerm else {
                throw ReplicationError.termGoesBack(directory: directory, offset: header.baseOffset,
                                                   term: term, previous: previousTerm)
            }
            record(baseOffset: header.baseOffset, term: term)
            endOffset = header.nextOffset
            previousTerm = term
        }
    }

    private func record(baseOffset: Int64, term: UInt64) {
        baseOffsets.append(baseOffset)
        if epochs.last?.term != term { epochs.append(EpochStart(index: lastIndex, term: term)) }
    }

    // MARK: RaftStorage

    func initialState() -> HardState { hardState }
    var firstIndex: UInt64 { anchor.index + 1 }
    var lastIndex: UInt64 { anchor.index + UInt64(baseOffsets.count) }

    func term(at index: UInt64) -> UInt64? {
        if index == anchor.index { return anchor.term }
        guard index > anchor.index, index <= lastIndex else { return nil }
        // The last run starting at or before `index`.
        var lo = 0
        var hi = epochs.count
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if epochs[mid].index <= index { lo = mid } else { hi = mid }
        }
        return epochs[lo].term
    }

    func entries(from lo: UInt64, to hi: UInt64) -> [Entry] {
        precondition(firstIndex <= lo && lo <= hi && hi <= lastIndex + 1, "entries \(lo)..<\(hi) out of range")
        var result: [Entry] = []
        var index = lo
        var bytesLeft = readBytesMax
        let upper = offset(of: hi)
        while index < hi, bytesLeft > 0 {
            let read: LogReadResult
            do {
                read = try log.read(from: offset(of: index), maxBytes: bytesLeft, maxOffset: upper)
            } catch LogError.corruptBatch {
                corruptIndex = min(corruptIndex ?? index, index)
                break
            } catch {
                break  // an I/O error: a shorter answer now, a new read on the next append
            }
            guard read.batchCount > 0 else { break }
            let before = result.count
            // Whole, CRC-checked batches: a header that does not parse cannot come back from `read`.
            try? read.bytes.withUnsafeBytes { raw in
                try RecordBatch.forEachBatch(in: raw, limits: log.config.limits) { _, batch in
                    guard let term = term(at: index) else { preconditionFailure("no term at \(index) inside the log") }
                    result.append(Entry(term: term, index: index, payload: Array(batch)))
                    index += 1
                }
            }
            guard result.count - before == read.batchCount else { break }
            bytesLeft -= read.bytes.count
        }
        return result
    }

    func snapshot() -> Snapshot {
        Snapshot(metadata: SnapshotMetadata(index: anchor.index, term: anchor.term),
                 data: RaftStateFile.snapshotData(offset: anchor.offset))
    }

    /// The base offset of the batch at `index`; the log end for lastIndex + 1.
    func offset(of index: UInt64) -> Int64 {
        precondition(index > anchor.index && index <= lastIndex + 1, "index \(index) outside the log")
        return index == lastIndex + 1 ? endOffset : baseOffsets[Int(index - anchor.index - 1)]
    }

    /// The offset after the batch at `index` (the anchor offset for the anchor index).
    func endOffset(of index: UInt64) -> Int64 {
        precondition(index >= anchor.index && index <= lastIndex, "index \(index) outside the log")
        return offset(of: index + 1)
    }

    // MARK: Writing (the driver, carrying out a Ready)

    /// Persists entries in order, first dropping the persisted suffix from `entries[0].index` on (a
    /// divergent, uncommitted suffix), and waits until they are as durable as the flush policy says.
    /// Returns whether a suffix was dropped. Each payload must be a record batch (checked by the caller
    /// when it came from the network); it is stamped with this log's next offset and the entry's term.
    @discardableResult
    func persist(_ entries: [Entry]) throws -> Bool {
        let fresh = entries.drop { $0.index <= anchor.index }
        guard let first = fresh.first else { return false }
        precondition(first.index <= lastIndex + 1, "gap: persisting \(first.index) after \(lastIndex)")
        var truncated = false
        if first.index <= lastIndex {
            try truncate(from: first.index)
            truncated = true
        }
        for entry in fresh {
            guard entry.term <= UInt64(Int32.max) else { throw ReplicationError.termTooLarge(entry.term) }
            // A leader serves its batches as they are now: compaction may have emptied some.
            let info = try log.appendWithoutWaiting(RecordBatch(unchecked: entry.payload), leaderEpoch: Int32(entry.term), allowsCompacted: true)
            precondition(info.firstOffset == endOffset, "the log moved under its Raft storage: \(info.firstOffset) != \(endOffset)")
            record(baseOffset: info.firstOffset, term: entry.term)
            endOffset = info.lastOffset + 1
        }
        try log.waitDurable(through: endOffset - 1)
        return truncated
    }

    /// Drops the batches from `index` on.
    private func truncate(from index: UInt64) throws {
        if let bad = corruptIndex, bad >= index { corruptIndex = nil }  // the bad batch goes with the suffix
        try log.truncate(to: offset(of: index))
        let keep = Int(index - anchor.index - 1)
        endOffset = offset(of: index)
        baseOffsets.removeLast(baseOffsets.count - keep)
        while let last = epochs.last, last.index >= index { epochs.removeLast() }
    }

    /// Drops the batch at `corruptIndex` and everything after it, committed or not, lowering the saved
    /// commit to what is left. The caller restarts its node abstaining, so this replica cannot vote
    /// until a leader has copied the dropped entries back.
    func dropCorrupt() throws {
        guard let index = corruptIndex else { return }
        if index <= lastIndex { try truncate(from: index) }
        hardState.commit = min(hardState.commit, lastIndex)
        corruptIndex = nil
        try writeState()
    }

    /// Saves a hard state: durably when the term or vote changed (before any vote leaves), otherwise
    /// only in memory until the next durable write.
    func setHardState(_ state: HardState) throws {
        let durable = state.term != hardState.term || state.vote != hardState.vote
        hardState = state
        if durable { try writeState() }
    }

    /// Replaces the whole log by the leader's snapshot: the log restarts empty at the offset it names.
    /// The anchor goes to disk first, so a crash in between finishes the job at the next open.
    func applySnapshot(_ snapshot: Snapshot) throws {
        let offset = try RaftStateFile.snapshotOffset(snapshot.data)
        anchor = .init(index: snapshot.metadata.index, term: snapshot.metadata.term, offset: offset)
        hardState.commit = max(hardState.commit, snapshot.metadata.index)
        try writeState()
        try log.truncateFully(startingAt: offset)
        baseOffsets = []
        epochs = []
        endOffset = offset
        corruptIndex = nil
    }

    /// Retention on a replicated log: moves the anchor up to the last batch wholly below the segment
    /// boundary retention chose, never past `commit` (an uncommitted batch may still be replaced). The
    /// segments below the anchor are deleted later, off the Raft group's thread (`deleteSegments(before:)`
    /// with the returned offset), since deleting waits for a running compaction: until then they are
    /// batches below the anchor, which an open skips. Returns the new anchor offset, nil when nothing
    /// moved. A follower that needs what went is sent the anchor as a snapshot (`applySnapshot`).
    /// Precondition: the storage holds exactly the node's log (nothing unsaved), and `commit` is committed.
    @discardableResult
    func compactForRetention(commit: UInt64) throws -> Int64? {
        guard let cut = try log.retentionCut() else { return nil }
        let committedEnd = endOffset(of: min(commit, lastIndex))
        guard let newStart = log.segmentBase(atOrBelow: min(cut, committedEnd)), newStart > anchor.offset else { return nil }
        // The batch that starts at newStart is batch k after the anchor; the new anchor is the one before.
        guard let k = index(ofBaseOffset: newStart) else { return nil }
        let newAnchorIndex = anchor.index + UInt64(k)
        guard let term = term(at: newAnchorIndex) else { return nil }
        // On disk first: memory changes only once the new anchor (with a commit not below it) is durable.
        let newAnchor = RaftStateFile.Anchor(index: newAnchorIndex, term: term, offset: newStart)
        var newHardState = hardState
        newHardState.commit = max(newHardState.commit, newAnchorIndex)
        try writeState(hardState: newHardState, anchor: newAnchor)
        anchor = newAnchor
        hardState = newHardState
        baseOffsets.removeFirst(k)
        if baseOffsets.isEmpty {
            epochs = []
        } else {
            // The run covering the first batch kept becomes the first run, starting there.
            epochs.removeFirst(epochs.lastIndex { $0.index <= newAnchorIndex + 1 } ?? 0)
            epochs[0].index = newAnchorIndex + 1
        }
        assert(baseOffsets.first.map { $0 == newStart } ?? (endOffset == newStart), "anchor \(newStart) is not a batch start")
        return newStart
    }

    /// The position in `baseOffsets` of the batch starting at `offset` (its count at the log end).
    private func index(ofBaseOffset offset: Int64) -> Int? {
        if offset == endOffset { return baseOffsets.count }
        var lo = 0
        var hi = baseOffsets.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if baseOffsets[mid] < offset { lo = mid + 1 } else { hi = mid }
        }
        return lo < baseOffsets.count && baseOffsets[lo] == offset ? lo : nil
    }

    /// Continues on `log`, the same files reopened with new settings: every batch is where it was, so the
    /// index of batches stays valid.
    func replaceLog(_ log: PartitionLog) {
        precondition(log.directory == directory && log.logEndOffset == endOffset,
                     "a replaced log must be the same files: \(log.directory) ending at \(log.logEndOffset), expected \(directory) at \(endOffset)")
        self.log = log
    }

    /// Writes `raft-state` (atomically, with fsync); also at close, to keep the commit index. Retention
    /// writes the state it is about to take on, before memory changes.
    func writeState() throws {
        try writeState(hardState: hardState, anchor: anchor)
    }

    private func writeState(hardState: HardState, anchor: RaftStateFile.Anchor) throws {
        let bytes = RaftStateFile.encode(.init(hardState: hardState, anchor: anchor))
        try FileSystem.writeAtomically(bytes, to: directory + "/" + RaftStateFile.name, directory: directory)
    }
}
