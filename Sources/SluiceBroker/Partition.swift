import Logging
import NIOConcurrencyHelpers
import SluiceCore
import SluiceLog
import SluiceWire

/// One partition of a topic on this broker: its log, its idempotent-producer state and the fetches
/// waiting for it to grow.
///
/// Threads: methods block on file I/O; call them from the I/O pool. `appendLock` serialises the
/// producer check with the write; the fsync (shared by concurrent appends) happens after it is released.
final class Partition: @unchecked Sendable {
    let topic: String
    let index: Int32
    let directory: String
    private let lock = NIOLock()
    private var currentLog: PartitionLog
    private var producers = ProducerStateTable()
    private let appendLock = NIOLock()
    private let reopenLock = NIOLock()
    /// Called once, on the appending thread, when the log end moves: wakes long-polling fetches.
    private var waiters: [UInt64: @Sendable () -> Void] = [:]
    private var nextWaiterId: UInt64 = 0
    /// Most fetches that may wait on one partition at once; more are answered at once (empty).
    static let waitersMax = 10_000

    let logger: Logger
    /// The partition's Raft group when the broker runs in a cluster and hosts a replica of it.
    private var replicaGroup: RaftGroup?

    init(topic: String, index: Int32, directory: String, log: PartitionLog, logger: Logger = Logger(label: "sluiced.partition")) {
        self.topic = topic
        self.index = index
        self.directory = directory
        self.currentLog = log
        self.logger = logger
    }

    /// The Raft group replicating this partition, nil when it is not replicated here.
    var replica: RaftGroup? {
        get { lock.withLock { replicaGroup } }
        set { lock.withLock { replicaGroup = newValue } }
    }

    var log: PartitionLog { lock.withLock { currentLog } }

    /// Rebuilds the idempotent-producer state: from the snapshot written at the last clean shutdown
    /// plus the batches after it, or (without a usable snapshot) from every batch header in the log.
    /// The snapshot is removed once read, so it never outlives the start it was written for (a later
    /// crash, or a truncation below its offset, could make it stale).
    func loadProducerState() throws {
        let log = self.log
        let path = directory + "/" + ProducerStateTable.snapshotFile
        var table = ProducerStateTable()
        var from: Int64 = 0
        if let bytes = try? FileSystem.readSmallFile(path, limit: ProducerStateTable.snapshotBytesMax),
           let (snapshot, offset) = ProducerStateTable.decodeSnapshot(bytes), offset <= log.logEndOffset {
            table = snapshot
            from = offset
        }
        if from < log.logEndOffset { try Self.record(log, from: from, into: &table) }
        if FileSystem.exists(path) { try FileSystem.remove(path) }
        appendLock.withLock { producers = table }
    }

    /// Adds every batch header of `log` from `offset` on to `table`.
    private static func record(_ log: PartitionLog, from offset: Int64, into table: inout ProducerStateTable) throws {
        try log.forEachBatchHeader(from: offset) { header in
            table.record(header, firstOffset: header.baseOffset, lastOffset: header.lastOffset)
        }
    }

    /// Runs `body` on the producer-state table under the append lock.
    func withProducers<R>(_ body: (inout ProducerStateTable) throws -> R) rethrows -> R {
        try appendLock.withLock { try body(&producers) }
    }

    /// Records batches a replica stored (with their first offsets) in the producer-state table.
    func recordProducers(_ batches: [(RecordBatchHeader, Int64)]) {
        appendLock.withLock {
            for (header, first) in batches {
                producers.record(header, firstOffset: first, lastOffset: first + Int64(header.lastOffsetDelta))
            }
        }
    }

    /// Rebuilds the producer-state table from every batch header in the log (after a replica dropped a
    /// divergent suffix, whose batches it may have counted).
    func rebuildProducerState() throws {
        let log = self.log
        var table = ProducerStateTable()
        try Self.record(log, from: log.logStartOffset, into: &table)
        appendLock.withLock { producers = table }
    }

    enum AppendOutcome {
        case appended(AppendInfo)
        case duplicate(firstOffset: Int64, lastOffset: Int64)

        var firstOffset: Int64 {
            switch self {
            case .appended(let info): info.firstOffset
            case .duplicate(let first, _): first
            }
        }

        var lastOffset: Int64 {
            switch self {
            case .appended(let info): info.lastOffset
            case .duplicate(_, let last): last
            }
        }
    }

    /// Appends a validated producer batch once (a retried idempotent batch gets its earlier offsets)
    /// without waiting for durability, and returns the log written to (a reopen may replace the
    /// partition's log afterwards): call that log's `waitDurable(through:)` with the last offset before
    /// acknowledging, then `wakeWaiters()`. Batches of one producer must arrive in sequence order.
    /// `header` comes from `RecordBatch.validate` on these very bytes (or from a batch just built), so
    /// the log skips its own CRC pass.
    func appendWithoutWaiting(_ batch: RecordBatch, header: RecordBatchHeader) throws -> (AppendOutcome, PartitionLog) {
        try appendLock.withLock {
            let log = self.log
            switch producers.check(header) {
            case .reject(let error): throw error
            case .duplicate(let first, let last): return (.duplicate(firstOffset: first, lastOffset: last), log)
            case .append:
                let info = try log.appendWithoutWaiting(batch, crcChecked: header)
                producers.record(header, firstOffset: info.firstOffset, lastOffset: info.lastOffset)
                return (.appended(info), log)
            }
        }
    }

    /// How many records producer `producerId` has written here in epoch `epoch`, by its sequence
    /// numbers (last sequence + 1); 0 when the partition knows nothing of it in that epoch. Processors
    /// number their output from 0 per generation, so this is where a replay's writes resume.
    func recordsWritten(producerId: Int64, epoch: Int16) -> Int64 {
        guard let progress = producerProgress(producerId), progress.epoch == epoch else { return 0 }
        return progress.recordsWritten
    }

    /// What the producer-state table holds for one producer id, as DescribeProducers answers it.
    struct ProducerProgress: Hashable {
        /// The producer's current epoch here.
        var epoch: Int16
        /// Records written in `epoch`, by sequence numbers: last sequence + 1 (0 with no batch remembered).
        var recordsWritten: Int64
        /// Offset of the last record of its last batch (−1 with none). A leader records a batch at
        /// admission, before it commits: the count is safe to act on once the high watermark passes this.
        var lastOffset: Int64
    }

    /// The producer's epoch, records written and last offset; nil when the partition does not know it.
    func producerProgress(_ producerId: Int64) -> ProducerProgress? {
        appendLock.withLock {
            guard let entry = producers.producers[producerId] else { return nil }
            guard let last = entry.batches.last else { return ProducerProgress(epoch: entry.epoch, recordsWritten: 0, lastOffset: -1) }
            return ProducerProgress(epoch: entry.epoch, recordsWritten: Int64(last.lastSequence) + 1, lastOffset: last.lastOffset)
        }
    }

    /// Appends an internal record batch (consumer offsets) and waits for durability.
    func appendInternal(_ batch: RecordBatch) throws -> AppendInfo {
        let (info, log) = try appendLock.withLock {
            let log = self.log
            return (try log.appendWithoutWaiting(batch), log)
        }
        try log.waitDurable(through: info.lastOffset)
        wakeWaiters()
        return info
    }

    /// Registers a one-shot callback for the next append; nil when too many are waiting.
    func addWaiter(_ callback: @escaping @Sendable () -> Void) -> UInt64? {
        lock.withLock {
            guard waiters.count < Self.waitersMax else { return nil }
            nextWaiterId += 1
            waiters[nextWaiterId] = callback
            return nextWaiterId
        }
    }

    func removeWaiter(_ id: UInt64) {
        lock.withLock { _ = waiters.removeValue(forKey: id) }
    }

    func wakeWaiters() {
        let callbacks: [@Sendable () -> Void] = lock.withLock {
            defer { waiters.removeAll(keepingCapacity: true) }
            return Array(waiters.values)
        }
        for callback in callbacks { callback() }
    }

    /// Replaces the log with one opened with new settings (after `alter`).
    /// If the new settings cannot be opened, the log reopens with its old ones and the error is thrown.
    /// The old log is closed without holding `appendLock` (closing waits for a running compaction):
    /// appends meanwhile fail with a retriable error instead of parking I/O threads on the lock.
    ///
    /// `prepare` sees the new log before any reader does (a replica sets its replicated high watermark,
    /// so that no reader is shown uncommitted records).
    func reopen(config: LogConfig, logger: Logger, prepare: (PartitionLog) -> Void = { _ in }) throws {
        // One reopen at a time: two would both open the directory.
        try reopenLock.withLock {
            let old = log
            try old.close()
            try appendLock.withLock {
                do {
                    let reopened = try PartitionLog.open(directory: directory, config: config, logger: logger)
                    prepare(reopened)
                    lock.withLock { currentLog = reopened }
                } catch {
                    let restored = try PartitionLog.open(directory: directory, config: old.config, logger: logger)
                    prepare(restored)
                    lock.withLock { currentLog = restored }
                    throw error
                }
            }
        }
    }

    /// Closes the log cleanly and writes the producer-state snapshot for the next start.
    func close() throws {
        try appendLock.withLock {
            let log = self.log
            let snapshot = producers.encodeSnapshot(offset: log.logEndOffset)
            try log.close()
            try FileSystem.writeAtomically(snapshot, to: directory + "/" + ProducerStateTable.snapshotFile, directory: directory)
        }
        wakeWaiters()
    }
}
