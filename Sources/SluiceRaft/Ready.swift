/// What a node asks its driver to do, from `RaftNode.ready()`. Acknowledge with `RaftNode.advance()`.
///
/// Ordering rule (the driver must follow it, or acknowledged writes can be lost):
/// 1. Persist `snapshot` (if any), then `entries`, then `hardState` (if any) — durably (fsync) — before
///    anything else. Entries first, so a persisted commit never points past the persisted log.
/// 2. Only then send `messages`: a vote or an acknowledgement promises that the state is on disk.
/// 3. Only then apply `snapshot` and `committedEntries` to the application state, in order.
/// 4. Call `advance()`.
/// A crash anywhere in between is safe: whatever was not persisted is simply lost.
public struct Ready: Sendable {
    /// The hard state to persist; nil when unchanged since the last `Ready`.
    public var hardState: HardState?
    /// Entries to persist. They may start at or below the last persisted index: the persisted suffix from
    /// `entries[0].index` on is then discarded and replaced (a follower repairing a divergent, uncommitted
    /// suffix).
    public var entries: [Entry]
    /// A snapshot from the leader to persist, replacing the whole persisted log, and to apply.
    public var snapshot: Snapshot?
    /// Messages to send after persisting. Delivery may fail, duplicate or reorder; Raft tolerates it.
    public var messages: [Message]
    /// Entries newly committed, to apply in order after persisting.
    public var committedEntries: [Entry]

    /// Nothing to do.
    public var isEmpty: Bool {
        hardState == nil && entries.isEmpty && snapshot == nil && messages.isEmpty && committedEntries.isEmpty
    }
}
