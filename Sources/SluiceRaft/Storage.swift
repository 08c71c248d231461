/// Read access to a node's stable (persisted) log: what the node needs for the consistency check, for
/// sending entries to followers and for snapshots. Pure reads; the driver writes to the same object when
/// it persists a `Ready`, which is why implementations are reference types.
///
/// The log holds entries `firstIndex...lastIndex`; everything before `firstIndex` is covered by
/// `snapshot()` (after compaction or retention), whose index is `firstIndex - 1`. An empty log of a fresh
/// node has firstIndex 1, lastIndex 0 and a snapshot at (0, 0).
public protocol RaftStorage: AnyObject {
    /// The persisted hard state (term, vote, commit) to restart from.
    func initialState() -> HardState
    /// The first index still held as an entry. Invariant: firstIndex >= 1.
    var firstIndex: UInt64 { get }
    /// The last persisted index. Invariant: lastIndex >= firstIndex - 1.
    var lastIndex: UInt64 { get }
    /// The term at `index` for `firstIndex - 1 ... lastIndex` (the snapshot's term at firstIndex - 1),
    /// nil outside that range.
    func term(at index: UInt64) -> UInt64?
    /// Entries `lo..<hi`, or a shorter prefix of them: a storage may stop at a byte bound or at a read
    /// error it reports itself (the node then sends fewer entries, or applies fewer, and asks again).
    /// Precondition: firstIndex <= lo <= hi <= lastIndex + 1.
    func entries(from lo: UInt64, to hi: UInt64) -> [Entry]
    /// The snapshot covering everything before `firstIndex`.
    func snapshot() -> Snapshot
}

/// `RaftStorage` in memory, with the write side a driver uses: used by the tests, where it stands for
/// the "disk" that survives a simulated crash. Not thread-safe.
public final class MemoryStorage: RaftStorage {
    /// The persisted hard state.
    public private(set) var hardState: HardState
    /// Invariant: snap.metadata.index == firstIndex - 1.
    private var snap: Snapshot
    /// Invariant: log[k].index == snap.metadata.index + 1 + k.
    private var log: [Entry]

    public init() {
        hardState = HardState()
        snap = Snapshot(metadata: SnapshotMetadata(index: 0, term: 0))
        log = []
    }

    public func initialState() -> HardState { hardState }
    public var firstIndex: UInt64 { snap.metadata.index + 1 }
    public var lastIndex: UInt64 { snap.metadata.index + UInt64(log.count) }

    public func term(at index: UInt64) -> UInt64? {
        if index == snap.metadata.index { return snap.metadata.term }
        guard index >= firstIndex, index <= lastIndex else { return nil }
        return log[Int(index - firstIndex)].term
    }

    public func entries(from lo: UInt64, to hi: UInt64) -> [Entry] {
        precondition(firstIndex <= lo && lo <= hi && hi <= lastIndex + 1, "entries \(lo)..<\(hi) out of range")
        return Array(log[Int(lo - firstIndex)..<Int(hi - firstIndex)])
    }

    public func snapshot() -> Snapshot { snap }

    /// Persists a hard state.
    public func setHardState(_ state: HardState) { hardState = state }

    /// Persists entries, replacing any persisted suffix from `entries[0].index` on (a follower truncating
    /// a conflicting, uncommitted suffix). Entries already covered by the snapshot are skipped.
    public func append(_ entries: [Entry]) {
        let fresh = entries.drop { $0.index < firstIndex }
        guard let first = fresh.first else { return }
        precondition(first.index <= lastIndex + 1, "gap: appending \(first.index) after \(lastIndex)")
        log.removeLast(Int(lastIndex + 1 - first.index))
        log.append(contentsOf: fresh)
    }

    /// Replaces the whole log by a snapshot received from the leader.
    public func applySnapshot(_ snapshot: Snapshot) {
        snap = snapshot
        log = []
    }

    /// Discards entries up to `index` (retention or compaction), which `data` now covers.
    /// Precondition: firstIndex - 1 <= index <= lastIndex.
    public func compact(upTo index: UInt64, data: [UInt8] = []) {
        precondition(index + 1 >= firstIndex && index <= lastIndex, "compact to \(index) out of range")
        guard let term = term(at: index) else { preconditionFailure("no term at \(index)") }
        log.removeFirst(Int(index - snap.metadata.index))
        snap = Snapshot(metadata: SnapshotMetadata(index: index, term: term), data: data)
    }
}
