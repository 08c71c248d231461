/// Entries not yet handed to the driver for persisting (or handed out in a `Ready` not yet acknowledged),
/// and a received snapshot not yet persisted. Mirrors etcd's `unstable`.
struct Unstable {
    /// A snapshot from the leader; when set, it replaces the whole stable log.
    var snapshot: Snapshot?
    /// Entries from `offset` on. Invariant: entries[k].index == offset + k.
    var entries: [Entry] = []
    /// The index of `entries[0]`. May be <= storage.lastIndex: then the persisted suffix from `offset` on
    /// is to be replaced.
    var offset: UInt64

    var lastIndex: UInt64? {
        if !entries.isEmpty { return offset + UInt64(entries.count) - 1 }
        return snapshot?.metadata.index
    }

    func term(at index: UInt64) -> UInt64? {
        if index < offset {
            guard let snapshot, snapshot.metadata.index == index else { return nil }
            return snapshot.metadata.term
        }
        guard let last = lastIndex, index <= last, !entries.isEmpty else { return nil }
        return entries[Int(index - offset)].term
    }

    mutating func truncateAndAppend(_ new: [Entry]) {
        guard let after = new.first?.index else { return }
        if after == offset + UInt64(entries.count) {
            entries.append(contentsOf: new)
        } else if after <= offset {
            // Replaces everything unstable, and the persisted suffix from `after` on.
            offset = after
            entries = new
        } else {
            entries = Array(entries[0..<Int(after - offset)]) + new
        }
    }

    /// The driver persisted entries up to (index, term); drop them unless they were replaced meanwhile.
    mutating func stableTo(index: UInt64, term: UInt64) {
        guard index >= offset, let current = self.term(at: index), current == term else { return }
        entries.removeFirst(Int(index - offset + 1))
        offset = index + 1
    }

    mutating func restore(_ snap: Snapshot) {
        offset = snap.metadata.index + 1
        entries = []
        snapshot = snap
    }
}

/// The node's view of its log: stable storage plus the unstable tail, with the commit and apply cursors.
struct RaftLog {
    let storage: any RaftStorage
    var unstable: Unstable
    /// The highest index known committed. Invariant: firstIndex - 1 <= committed <= lastIndex.
    var committed: UInt64
    /// The highest index the application has applied. Invariant: applied <= committed.
    var applied: UInt64

    init(storage: any RaftStorage, committed: UInt64) {
        self.storage = storage
        unstable = Unstable(offset: storage.lastIndex + 1)
        precondition(committed <= storage.lastIndex, "persisted commit \(committed) beyond the persisted log")
        self.committed = max(committed, storage.firstIndex - 1)
        applied = storage.firstIndex - 1
    }

    var firstIndex: UInt64 {
        if let snap = unstable.snapshot { return snap.metadata.index + 1 }
        return storage.firstIndex
    }

    var lastIndex: UInt64 { unstable.lastIndex ?? storage.lastIndex }

    var lastTerm: UInt64 {
        guard let term = term(at: lastIndex) else { preconditionFailure("no term at last index \(lastIndex)") }
        return term
    }

    /// The term at `index` for firstIndex - 1 ... lastIndex, nil outside (compacted or not yet written).
    func term(at index: UInt64) -> UInt64? {
        guard index + 1 >= firstIndex, index <= lastIndex else { return nil }
        if let term = unstable.term(at: index) { return term }
        return storage.term(at: index)
    }

    func matchTerm(_ index: UInt64, _ term: UInt64) -> Bool { self.term(at: index) == term }

    /// Entries `lo..<hi`, at most `maxCount`; nil when `lo` is compacted away (send a snapshot instead).
    func entries(from lo: UInt64, to hi: UInt64, maxCount: Int = Int.max) -> [Entry]? {
        guard lo >= firstIndex else { return nil }
        let hi = min(hi, lastIndex + 1, lo + UInt64(max(maxCount, 0)))
        guard lo < hi else { return [] }
        var result: [Entry] = []
        if lo < unstable.offset {
            let stableEnd = min(hi, unstable.offset)
            result = storage.entries(from: lo, to: stableEnd)
            // A storage may return a prefix (a byte bound, a read error); never continue past a gap.
            if result.count < Int(stableEnd - lo) { return result }
        }
        if hi > unstable.offset {
            let from = Int(max(lo, unstable.offset) - unstable.offset)
            result.append(contentsOf: unstable.entries[from..<Int(hi - unstable.offset)])
        }
        return result
    }

    /// Raft §5.4.1: is a log ending at (index, term) at least as up to date as ours?
    func isUpToDate(index: UInt64, term: UInt64) -> Bool {
        term > lastTerm || (term == lastTerm && index >= lastIndex)
    }

    /// The index of the first entry whose term differs from ours (or that we lack), nil if all match.
    func findConflict(_ entries: [Entry]) -> UInt64? {
        entries.first { !matchTerm($0.index, $0.term) }?.index
    }

    /// Fast back-off (etcd): the largest index <= `index` whose term is <= `term`, with that term. Every
    /// entry after it has a larger term, so cannot match the other log's entries at term `term` or below.
    func findConflictByTerm(index: UInt64, term: UInt64) -> (index: UInt64, term: UInt64) {
        var index = min(index, lastIndex)
        while true {
            guard let ours = self.term(at: index) else { return (index, 0) }
            if ours <= term || index == 0 { return (index, ours) }
            index -= 1
        }
    }

    enum AppendOutcome: Equatable {
        case appended(lastNewIndex: UInt64)
        case mismatch
        /// The message would overwrite a committed entry: it is stale or malformed, so it is dropped.
        case conflictsWithCommitted
    }

    /// Raft §5.3 receiver rules 2-5.
    mutating func maybeAppend(index: UInt64, logTerm: UInt64, commit: UInt64, entries: [Entry]) -> AppendOutcome {
        guard matchTerm(index, logTerm) else { return .mismatch }
        let lastNew = index + UInt64(entries.count)
        if let conflict = findConflict(entries) {
            guard conflict > committed else { return .conflictsWithCommitted }
            append(Array(entries[Int(conflict - index - 1)...]))
        }
        commitTo(min(commit, lastNew))
        return .appended(lastNewIndex: lastNew)
    }

    mutating func append(_ entries: [Entry]) {
        guard let first = entries.first else { return }
        precondition(first.index > committed, "appending at \(first.index) would overwrite committed \(committed)")
        unstable.truncateAndAppend(entries)
    }

    mutating func commitTo(_ index: UInt64) {
        guard index > committed else { return }
        precondition(index <= lastIndex, "commit \(index) beyond last index \(lastIndex)")
        committed = index
    }

    mutating func restore(_ snapshot: Snapshot) {
        committed = snapshot.metadata.index
        unstable.restore(snapshot)
    }

    /// Committed entries the application has not applied yet.
    func nextCommittedEntries() -> [Entry] {
        guard unstable.snapshot == nil, committed > applied else { return [] }
        return entries(from: applied + 1, to: committed + 1) ?? []
    }
}
