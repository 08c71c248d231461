import SluiceCore

// What the broker needs beyond plain appends: an append whose durability wait is separate, so that
// the idempotent producer's sequence check and the write can share a short critical section while
// fsyncs are still shared between concurrent producers (group commit).

extension PartitionLog {
    /// Appends a producer's batch like `append(_:)` but returns as soon as it is written, before the
    /// flush policy is satisfied. Call `waitDurable(through:)` before acknowledging it. A caller that has
    /// just validated the bytes (CRC included) passes their header as `crcChecked` to skip a second
    /// CRC pass; every other check still runs.
    ///
    /// `allowsCompacted`: the batch may hold fewer records than its offsets span, none at all included
    /// (a replica copying its leader's compacted batches; a producer's batch spans exactly its records).
    public func appendWithoutWaiting(_ batch: RecordBatch, leaderEpoch: Int32? = nil,
                                     crcChecked: RecordBatchHeader? = nil, allowsCompacted: Bool = false) throws -> AppendInfo {
        try writer.withLock {
            try appendLocked(batch, assignOffsets: true, leaderEpoch: leaderEpoch, crcChecked: crcChecked, allowsCompacted: allowsCompacted)
        }
    }

    /// Returns once every record below `offset + 1` is as durable as the flush policy promises: on
    /// stable storage for `always` (sharing the fsync with concurrent callers), at once otherwise.
    /// Throws `LogError.truncatedBeforeDurable` if the records were cut off before they became durable.
    public func waitDurable(through offset: Int64) throws {
        guard config.flushPolicy == .always else { return }
        try sync(upTo: offset + 1)
    }

    /// The offset below which consumers may read: with `FlushPolicy.always` only what is on stable
    /// storage (a consumer must never see, and commit past, records a crash can take back); with the
    /// other policies everything appended, as they acknowledge before the fsync anyway.
    /// A replicated partition's readers stop at the commit point as well (`setReplicatedHighWatermark`).
    public var highWatermark: Int64 {
        let current = snapshot()
        var end = current.logEndOffset
        if let committed = current.replicatedHighWatermark { end = min(end, committed) }
        guard config.flushPolicy == .always else { return end }
        return min(end, groupCommit.durable)
    }

    /// Lowers the committed end after the replica dropped a corrupt part of its log (committed records
    /// included); only a replica's repair does that.
    public func resetReplicatedHighWatermark(_ offset: Int64) {
        publish { view in view.replicatedHighWatermark = offset }
    }

    /// Marks the log as a replica whose records are readable only below `offset` (the end of what its
    /// Raft group committed). Committed records are never taken back, so it only moves forward.
    public func setReplicatedHighWatermark(_ offset: Int64) {
        publish { view in
            assert(offset >= (view.replicatedHighWatermark ?? 0), "the committed end never moves back")
            view.replicatedHighWatermark = max(offset, view.replicatedHighWatermark ?? 0)
        }
    }

    /// True once `close` ran: maintenance skips the log.
    public var isClosed: Bool { snapshot().closed }

    /// Calls `body` with the header of every batch from the segment holding `offset` to the end, oldest
    /// first. Each batch is CRC-checked as it is read. Used to rebuild producer state at open.
    public func forEachBatchHeader(from offset: Int64, _ body: (RecordBatchHeader) throws -> Void) throws {
        let current = snapshot()
        for segment in current.segments {
            let end = segment === current.active ? current.activeEndPosition : segment.size
            if let next = current.segments.first(where: { $0.baseOffset > segment.baseOffset }), next.baseOffset <= offset {
                continue
            }
            try segment.forEachBatch(from: 0, end: end) { header, _, _ in
                if header.lastOffset >= offset { try body(header) }
                return true
            }
        }
    }
}
