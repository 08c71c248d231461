import Dispatch
import Logging
import SluiceCore

/// What `append` did with a batch.
public struct AppendInfo: Sendable, Hashable {
    /// Offset of the batch's first record slot.
    public var firstOffset: Int64
    public var lastOffset: Int64
    /// The segment the batch went to, and its byte position there.
    public var segmentBaseOffset: Int64
    public var position: Int
}

/// Whole batches read from the log, as stored.
public struct LogReadResult: Sendable {
    /// Zero or more complete, CRC-checked batches back to back.
    public var bytes: [UInt8]
    public var batchCount: Int
    /// Where the next read should start: the offset after the last batch returned, or the requested
    /// offset when nothing was returned.
    public var nextOffset: Int64
    /// The segment and byte position the bytes came from (a file region for zero-copy sends).
    public var segmentBaseOffset: Int64?
    public var position: Int?
    public var logStartOffset: Int64
    public var logEndOffset: Int64
}

/// A partition's log: an ordered set of segments with one writer and any number of concurrent readers.
///
/// Threads: every method blocks on file I/O, so call them from a thread pool, never from an event loop.
/// Appends, rolls, truncation, retention and compaction swaps are serialised by the writer lock; reads
/// take a snapshot of the segment list and never wait for the writer. Lock order: maintenance → writer
/// → view → segment.
///
/// Durability: with `FlushPolicy.always`, `append` returns after the batch is on stable storage;
/// concurrent appends share fsyncs (group commit). A recovery-point checkpoint bounds what a restart
/// after a crash must scan (see `PartitionLog+Loading.swift` and storage-format/checkpoints.md).
public final class PartitionLog: @unchecked Sendable {
    public let directory: String
    public let config: LogConfig
    let clock: any WallClock
    let logger: Logger
    /// What opening the log found and repaired.
    public let recoveryReport: RecoveryReport

    /// What readers see; replaced (not mutated in place) by the writer.
    struct View {
        var segments: [LogSegment]
        var logStartOffset: Int64
        var logEndOffset: Int64
        /// Where the active segment's valid bytes end, consistent with `logEndOffset`.
        var activeEndPosition: Int
        var closed: Bool
        /// With replication: the end of the committed batches (Raft's commit index). Readers never see
        /// past it, whatever this replica holds. nil for a partition that is not replicated.
        var replicatedHighWatermark: Int64? = nil

        var active: LogSegment {
            guard let last = segments.last else { preconditionFailure("a log always has an active segment") }
            return last
        }
    }

    let view: ConditionLock
    var viewState: View
    let writer = ConditionLock()
    let maintenance = ConditionLock()
    let checkpointLock = ConditionLock()
    let groupCommit: GroupCommit
    /// Where the last writeback start ended (segment base offset, byte position); writer lock.
    var writebackStart: (segment: Int64, position: Int) = (-1, 0)
    /// The last recovery point written, and the bytes appended since (guarded by `checkpointLock`).
    var checkpointedRecoveryPoint: Checkpoints.RecoveryPoint
    /// Bumped by truncation so a flush that captured a pre-truncation position does not checkpoint it.
    var truncationGeneration = 0
    private var flushTimer: DispatchSourceTimer?
    /// Called (on the flushing thread) with the durable offset after every completed flush: the signal
    /// tests wait on instead of polling. Guarded by `view`.
    private var flushObserverStorage: (@Sendable (Int64) -> Void)?

    var flushObserver: (@Sendable (Int64) -> Void)? {
        get { view.withLock { flushObserverStorage } }
        set { view.withLock { flushObserverStorage = newValue } }
    }

    init(directory: String, config: LogConfig, clock: any WallClock, logger: Logger, loaded: LoadedLog) {
        self.directory = directory
        self.config = config
        self.clock = clock
        self.logger = logger
        self.recoveryReport = loaded.report
        self.view = ConditionLock()
        self.viewState = View(
            segments: loaded.segments, logStartOffset: loaded.logStartOffset, logEndOffset: loaded.logEndOffset,
            activeEndPosition: loaded.segments.last?.size ?? 0, closed: false)
        self.groupCommit = GroupCommit(durableOffset: loaded.logEndOffset)
        self.checkpointedRecoveryPoint = loaded.recoveryPoint
        if case .interval(let milliseconds) = config.flushPolicy {
            let timer = DispatchSource.makeTimerSource(queue: .global())
            timer.schedule(deadline: .now() + .milliseconds(milliseconds), repeating: .milliseconds(milliseconds))
            timer.setEventHandler { [weak self] in
                guard let self else { return }
                do { try self.flush() } catch {
                    self.logger.error("periodic flush failed", metadata: ["directory": "\(directory)", "error": "\(error)"])
                }
            }
            timer.resume()
            flushTimer = timer
        }
    }

    deinit { flushTimer?.cancel() }

    /// A consistent copy of what readers see.
    func snapshot() -> View { view.withLock { viewState } }

    func publish(_ update: (inout View) -> Void) { view.withLock { update(&viewState) } }

    /// The first offset the log holds.
    public var logStartOffset: Int64 { snapshot().logStartOffset }
    /// The offset the next appended record gets.
    public var logEndOffset: Int64 { snapshot().logEndOffset }
    /// The segments, oldest first (the last one takes appends).
    public var segments: [LogSegment] { snapshot().segments }
    /// Total bytes of all segments' `.log` files.
    public var sizeInBytes: Int { snapshot().segments.reduce(0) { $0 + $1.size } }

    // MARK: Append

    /// Appends a producer's batch: validates it (length, magic, codec, record count, CRC), assigns it
    /// the next offsets (and `leaderEpoch` when given), and writes it. Returns after the flush policy is
    /// satisfied.
    @discardableResult
    public func append(_ batch: RecordBatch, leaderEpoch: Int32? = nil) throws -> AppendInfo {
        let infos = try append([batch], assignOffsets: true, leaderEpoch: leaderEpoch)
        return infos[0]
    }

    /// Appends several producer batches under one lock and one flush.
    @discardableResult
    public func append(batches: [RecordBatch], leaderEpoch: Int32? = nil) throws -> [AppendInfo] {
        try append(batches, assignOffsets: true, leaderEpoch: leaderEpoch)
    }

    /// Appends batches that already carry their offsets (a follower copying its leader, compaction
    /// output). Each must start at or after the log end offset.
    @discardableResult
    public func appendWithOffsets(_ batches: [RecordBatch]) throws -> [AppendInfo] {
        try append(batches, assignOffsets: false, leaderEpoch: nil)
    }

    private func append(_ batches: [RecordBatch], assignOffsets: Bool, leaderEpoch: Int32?) throws -> [AppendInfo] {
        guard !batches.isEmpty else { return [] }
        let infos = try writer.withLock {
            try batches.map { try appendLocked($0, assignOffsets: assignOffsets, leaderEpoch: leaderEpoch) }
        }
        if config.flushPolicy == .always, let last = infos.last {
            try sync(upTo: last.lastOffset + 1)
        }
        return infos
    }

    /// Validates, stamps, rolls if needed and writes one batch. Caller holds the writer lock.
    /// `crcChecked` is the header of a caller that has just run `RecordBatch.validate` on these bytes
    /// (the broker, on every produced batch): the header checks run again, the CRC pass does not.
    func appendLocked(_ batch: RecordBatch, assignOffsets: Bool, leaderEpoch: Int32?,
                      crcChecked: RecordBatchHeader? = nil, allowsCompacted: Bool = false) throws -> AppendInfo {
        let current = snapshot()
        guard !current.closed else { throw LogError.closed(directory: directory) }
        if let failure = groupCommit.failed { throw failure }
        var header: RecordBatchHeader
        do {
            header = try batch.bytes.withUnsafeBytes { raw in
                guard let crcChecked else { return try RecordBatch.validate(raw, limits: config.limits) }
                let parsed = try RecordBatch.validateHeader(raw, limits: config.limits)
                assert(parsed == crcChecked, "the checked header belongs to other bytes")
                return parsed
            }
        } catch let error as BatchFormatError {
            throw LogError.invalidBatch(error)
        }
        guard header.totalSize == batch.bytes.count else {
            throw LogError.invalidBatch(.malformedRecords("length field says \(header.totalSize) bytes, got \(batch.bytes.count)"))
        }
        if assignOffsets && allowsCompacted {
            guard header.lastOffsetDelta >= 0, Int64(header.recordCount) <= Int64(header.lastOffsetDelta) + 1 else {
                throw LogError.unacceptableBatch(
                    "a batch spanning offset deltas 0...\(header.lastOffsetDelta) cannot hold \(header.recordCount) records")
            }
            header.baseOffset = current.logEndOffset
        } else if assignOffsets {
            guard header.recordCount > 0, Int64(header.lastOffsetDelta) == Int64(header.recordCount) - 1 else {
                throw LogError.unacceptableBatch(
                    "a producer batch needs records with offset deltas 0..<count; got \(header.recordCount) records and last offset delta \(header.lastOffsetDelta)")
            }
            header.baseOffset = current.logEndOffset
        } else {
            guard header.baseOffset >= current.logEndOffset else {
                throw LogError.unacceptableBatch(
                    "batch starts at offset \(header.baseOffset), below the log end offset \(current.logEndOffset)")
            }
        }
        if let leaderEpoch { header.partitionLeaderEpoch = leaderEpoch }
        let segment = try rollIfNeeded(current, batchSize: batch.bytes.count, lastOffset: header.lastOffset,
                                       firstOffset: header.baseOffset)
        let position = segment.size
        // Stamp a copy of the 61-byte header only (offset and epoch lie outside the CRC); the records
        // go to disk from the caller's buffer.
        var head = [UInt8](batch.bytes[0..<RecordBatchHeader.size])
        head.setBigEndian(header.baseOffset, at: RecordBatchHeader.Field.baseOffset)
        head.setBigEndian(header.partitionLeaderEpoch, at: RecordBatchHeader.Field.partitionLeaderEpoch)
        try head.withUnsafeBytes { head in
            try batch.bytes.withUnsafeBytes { raw in
                try segment.append(head: head, body: UnsafeRawBufferPointer(rebasing: raw[RecordBatchHeader.size...]), header: header)
            }
        }
        let end = segment.size
        publish { view in
            view.logEndOffset = header.nextOffset
            view.activeEndPosition = end
        }
        startWritebackIfDue(segment, end: end)
        return AppendInfo(firstOffset: header.baseOffset, lastOffset: header.lastOffset,
                          segmentBaseOffset: segment.baseOffset, position: position)
    }

    /// With `interval` and `os` flushing, starts the device writing every `writebackIntervalBytes`
    /// appended (off this thread), so the periodic fsync does not find a second's worth of dirty pages
    /// at once and stall appends behind the device. Caller holds the writer lock.
    private func startWritebackIfDue(_ segment: LogSegment, end: Int) {
        guard config.flushPolicy != .always else { return }
        let from = writebackStart.segment == segment.baseOffset ? writebackStart.position : 0
        guard end - from >= Self.writebackIntervalBytes else { return }
        writebackStart = (segment.baseOffset, end)
        let file = segment.log
        DispatchQueue.global().async { file.startWriteback(offset: from, count: end - from) }
    }

    /// Bytes appended between two writeback starts.
    static let writebackIntervalBytes = 4 << 20

    /// Rolls to a new segment when the active one is full by size, old by `segment.ms`, or cannot index
    /// the batch; returns the segment to append to. Caller holds the writer lock.
    private func rollIfNeeded(_ current: View, batchSize: Int, lastOffset: Int64, firstOffset: Int64) throws -> LogSegment {
        let active = current.active
        let size = active.size
        guard size > 0 else {
            // An empty segment takes any batch its index format can address; a batch far above its base
            // (a follower catching up) starts a segment of its own.
            return active.canHold(lastOffset: lastOffset, size: batchSize) ? active : try roll(at: firstOffset)
        }
        let full = size + batchSize > config.segmentBytes
        let old = config.segmentMilliseconds.map { clock.nowMilliseconds() - active.createdAtMilliseconds >= $0 } ?? false
        guard full || old || !active.canHold(lastOffset: lastOffset, size: batchSize) else { return active }
        return try roll(at: firstOffset)
    }

    /// Seals the active segment (fsyncing it) and starts a new one at `baseOffset`. Caller holds the
    /// writer lock.
    func roll(at baseOffset: Int64) throws -> LogSegment {
        let current = snapshot()
        do { try current.active.seal() } catch {
            // The sealed segment's pages may never reach the disk: later appends must not be
            // acknowledged on the strength of a later fsync of the new segment.
            groupCommit.fail(error)
            throw error
        }
        let segment = try LogSegment.create(directory: directory, baseOffset: baseOffset, config: config,
                                            now: clock.nowMilliseconds())
        publish { view in
            view.segments.append(segment)
            view.activeEndPosition = 0
        }
        // Everything below the new segment is durable now (sealing fsynced it).
        try writeRecoveryPoint(Checkpoints.RecoveryPoint(offset: baseOffset, segmentBaseOffset: baseOffset, position: 0),
                               generation: nil)
        logger.debug("rolled segment", metadata: ["directory": "\(directory)", "base": "\(baseOffset)"])
        return segment
    }

    // MARK: Flush

    /// Forces everything appended so far to stable storage (sharing an fsync with concurrent callers).
    public func flush() throws {
        try sync(upTo: snapshot().logEndOffset, lowerOnTruncation: true)
    }

    func sync(upTo target: Int64, lowerOnTruncation: Bool = false) throws {
        try groupCommit.sync(upTo: target, lowerOnTruncation: lowerOnTruncation) {
            let durable = try flushActive()
            flushObserver?(durable)
            return durable
        }
    }

    /// fsyncs the active segment and, every `recoveryCheckpointIntervalBytes`, advances the recovery
    /// point. Earlier segments were fsynced when they were sealed. Returns the offset now durable.
    private func flushActive() throws -> Int64 {
        let (current, generation) = view.withLock { (viewState, truncationGeneration) }
        try current.active.flushLog()
        let point = Checkpoints.RecoveryPoint(offset: current.logEndOffset, segmentBaseOffset: current.active.baseOffset,
                                              position: Int64(current.activeEndPosition))
        let due = checkpointLock.withLock {
            point.segmentBaseOffset != checkpointedRecoveryPoint.segmentBaseOffset
                || point.position - checkpointedRecoveryPoint.position >= Int64(config.recoveryCheckpointIntervalBytes)
        }
        if due {
            // The checkpoint vouches for the index entries below it too: make them durable first.
            try current.active.flush()
            try writeRecoveryPoint(point, generation: generation)
        }
        return current.logEndOffset
    }

    /// Writes the recovery-point checkpoint unless a truncation happened since `generation` was read.
    func writeRecoveryPoint(_ point: Checkpoints.RecoveryPoint, generation: Int?) throws {
        try checkpointLock.withLock {
            if let generation, generation != view.withLock({ truncationGeneration }) { return }
            try Checkpoints.write(point, directory: directory)
            checkpointedRecoveryPoint = point
        }
    }

    // MARK: Close

    /// Flushes everything, writes the checkpoints and the clean-shutdown marker, and refuses further
    /// appends. The next open skips recovery.
    public func close() throws {
        flushTimer?.cancel()
        flushTimer = nil
        try maintenance.withLock {
            try writer.withLock {
                let current = snapshot()
                guard !current.closed else { return }
                try current.active.flush()
                try writeRecoveryPoint(Checkpoints.RecoveryPoint(
                    offset: current.logEndOffset, segmentBaseOffset: current.active.baseOffset,
                    position: Int64(current.activeEndPosition)), generation: nil)
                try Checkpoints.write(logStartOffset: current.logStartOffset, directory: directory)
                let marker = try LogFile.open("\(directory)/\(Checkpoints.cleanShutdownFile)", create: true)
                try marker.sync()
                try FileSystem.syncDirectory(directory)
                publish { $0.closed = true }
            }
        }
    }
}
