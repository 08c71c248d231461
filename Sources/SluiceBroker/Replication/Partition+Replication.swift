import NIOConcurrencyHelpers
import SluiceCore
import SluiceLog
import SluiceRaft
import SluiceWire

// A partition as a replica: what its Raft group tells it (persisted entries, commits, leadership) and
// the leader's admission of a produced batch.

extension Partition: RaftGroupDelegate {
    /// Followers (and a former leader repairing its log) learn producers from the batches they store;
    /// the leader recorded its own at admission. A replaced suffix may have held any producer's
    /// batches, so the table is rebuilt from the log.
    func raftGroup(_ group: RaftGroup, persisted entries: [(entry: Entry, firstOffset: Int64)], replacedSuffix: Bool, proposedHere: Bool) {
        if replacedSuffix {
            do {
                try rebuildProducerState()
            } catch {
                logger.error("cannot rebuild producer state after a truncation", metadata: ["partition": "\(topic)-\(index)", "error": "\(error)"])
            }
            return
        }
        guard !proposedHere else { return }
        recordProducers(entries.compactMap { item in
            item.entry.payload.withUnsafeBytes { RecordBatchHeader(parsing: $0) }.map { ($0, item.firstOffset) }
        })
    }

    func raftGroup(_ group: RaftGroup, committedThrough index: UInt64, nextOffset: Int64, entries: [Entry]) {
        log.setReplicatedHighWatermark(nextOffset)
        wakeWaiters()
    }

    func raftGroup(_ group: RaftGroup, leaderChanged leader: NodeID?, term: UInt64, isLeader: Bool) {
        logger.info("partition leadership", metadata: [
            "partition": "\(topic)-\(index)", "leader": "\(leader.map { "\($0)" } ?? "none")", "term": "\(term)", "here": "\(isLeader)",
        ])
    }

    /// The leader's check of a produced batch, in proposal order: a retried idempotent batch is answered
    /// with its first offsets; a new one is recorded at the offsets it will get and proposed.
    func admit(_ batch: RecordBatch, header: RecordBatchHeader, nextOffset: Int64) throws -> RaftGroup.Admission {
        try withProducers { producers in
            switch producers.check(header) {
            case .reject(let error): throw error
            case .duplicate(let first, let last):
                return .settled(ProposalResult(index: 0, firstOffset: first, lastOffset: last))
            case .append:
                producers.record(header, firstOffset: nextOffset, lastOffset: nextOffset + Int64(header.lastOffsetDelta))
                return .propose(batch.bytes)
            }
        }
    }
}
