import SluiceCore
import Synchronization

/// One segment of a partition log: a `.log` file of record batches plus its sparse offset and time
/// indexes (storage-format/segments.md).
///
/// Ownership and threads: the owning `PartitionLog` is the only writer (it serialises `append`,
/// `seal`, `truncate`); any number of readers may call the read-side methods concurrently. Mutable
/// state lives behind one mutex; file I/O for appends happens outside it. Indexes of closed segments
/// are loaded lazily on first use and validated then; an index that fails validation is rebuilt from
/// the `.log`.
public final class LogSegment: @unchecked Sendable {
    public let baseOffset: Int64
    public let directory: String
    let log: LogFile
    let offsetIndexFile: LogFile
    let timeIndexFile: LogFile
    let indexIntervalBytes: Int
    let limits: Limits
    let state: Mutex<State>
    /// Index files that did not exist when the segment was opened (created empty, rebuilt on load).
    let missingIndexFiles: [String]

    struct State {
        /// Bytes readers may read: everything the writer finished writing.
        var size: Int
        /// nil until loaded.
        var indexes: SegmentIndexes?
        /// When this segment started taking appends (for `segment.ms`).
        var createdAtMilliseconds: Int64
        /// Set once the segment was rolled; a sealed segment takes no more appends.
        var sealed: Bool
        /// The read mapping of a sealed segment, made on first read.
        var mapping: MappedFile?
        /// Reasons of rebuilds after open.
        var indexRebuilds: [String] = []
    }

    init(baseOffset: Int64, directory: String, log: LogFile, offsetIndex: LogFile, timeIndex: LogFile,
         size: Int, indexes: SegmentIndexes?, config: LogConfig, createdAt: Int64, sealed: Bool,
         missingIndexFiles: [String] = []) {
        self.missingIndexFiles = missingIndexFiles
        self.baseOffset = baseOffset
        self.directory = directory
        self.log = log
        self.offsetIndexFile = offsetIndex
        self.timeIndexFile = timeIndex
        self.indexIntervalBytes = config.indexIntervalBytes
        self.limits = config.limits
        self.state = Mutex(State(size: size, indexes: indexes, createdAtMilliseconds: createdAt, sealed: sealed))
    }

    /// Creates the three (empty) files of a new segment and makes their names durable.
    static func create(directory: String, baseOffset: Int64, config: LogConfig, now: Int64,
                       suffix: SegmentFiles.Suffix? = nil) throws -> LogSegment {
        let log = try LogFile.open(SegmentFiles.path(directory, baseOffset, .log, suffix), create: true)
        let offsetIndex = try LogFile.open(SegmentFiles.path(directory, baseOffset, .index, suffix), create: true)
        let timeIndex = try LogFile.open(SegmentFiles.path(directory, baseOffset, .timeIndex, suffix), create: true)
        for file in [log, offsetIndex, timeIndex] { try file.truncate(to: 0) }
        try FileSystem.syncDirectory(directory)
        return LogSegment(
            baseOffset: baseOffset, directory: directory, log: log, offsetIndex: offsetIndex, timeIndex: timeIndex,
            size: 0, indexes: SegmentIndexes(baseOffset: baseOffset), config: config, createdAt: now, sealed: false)
    }

    /// Opens an existing segment. Missing index files are created empty (and rebuilt when loaded).
    static func open(directory: String, baseOffset: Int64, config: LogConfig, now: Int64, sealed: Bool) throws -> LogSegment {
        let log = try LogFile.open(SegmentFiles.path(directory, baseOffset, .log))
        let indexPaths = [SegmentFiles.path(directory, baseOffset, .index), SegmentFiles.path(directory, baseOffset, .timeIndex)]
        let missing = indexPaths.filter { !FileSystem.exists($0) }
        let offsetIndex = try LogFile.open(indexPaths[0], create: true)
        let timeIndex = try LogFile.open(indexPaths[1], create: true)
        return LogSegment(
            baseOffset: baseOffset, directory: directory, log: log, offsetIndex: offsetIndex, timeIndex: timeIndex,
            size: try log.size(), indexes: nil, config: config, createdAt: now, sealed: sealed, missingIndexFiles: missing)
    }

    /// The `.log` file's path.
    public var path: String { log.path }

    /// Bytes readers may read.
    public var size: Int { state.withLock { $0.size } }

    var createdAtMilliseconds: Int64 { state.withLock { $0.createdAtMilliseconds } }
    var isSealed: Bool { state.withLock { $0.sealed } }

    // MARK: Writer side (called by the owning PartitionLog only)

    /// Whether a batch of `size` bytes whose last offset is `lastOffset` still fits the index formats.
    func canHold(lastOffset: Int64, size batchSize: Int) -> Bool {
        let size = self.size
        return lastOffset - baseOffset <= Int64(UInt32.max) && size + batchSize <= LogConfig.segmentBytesMax
    }

    /// Appends one validated batch at the end of the `.log` and indexes it in memory: `head` is the
    /// batch's first 61 bytes as stamped by the log (base offset, leader epoch), `body` the rest, written
    /// together with one `pwritev`. On a failed write the file is cut back so a half-written batch never
    /// stays behind. Index entries reach the index files at the next `flush`.
    func append(head: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer, header: RecordBatchHeader) throws {
        let position = size
        let count = head.count + body.count
        do {
            try log.write([head, body], at: position)
        } catch {
            try? log.truncate(to: position)
            throw error
        }
        state.withLock { state in
            guard var indexes = state.indexes else { preconditionFailure("append to a segment whose indexes are not loaded") }
            // Drop the stored reference first so `add` grows the arrays in place: with two references
            // every append copied the whole index (O(segment size) per append).
            state.indexes = nil
            indexes.add(header: header, position: position, size: count, interval: indexIntervalBytes)
            state.indexes = indexes
            state.size = position + count
        }
    }

    /// Appends a batch whose bytes need no stamping (compaction output).
    func append(_ bytes: UnsafeRawBufferPointer, header: RecordBatchHeader) throws {
        let split = min(RecordBatchHeader.size, bytes.count)
        try append(head: UnsafeRawBufferPointer(rebasing: bytes[0..<split]),
                   body: UnsafeRawBufferPointer(rebasing: bytes[split...]), header: header)
    }

    /// Closes the segment for appends (roll): adds the final time-index entry and forces all three
    /// files to disk.
    func seal() throws {
        try withIndexes { indexes in indexes.seal() }
        state.withLock { $0.sealed = true }
        try flush()
    }

    /// Forces the `.log` to stable storage (the group-commit path: index files are derived data, made
    /// durable only when a checkpoint vouches for them).
    func flushLog() throws {
        try log.sync()
    }

    /// Writes pending index entries, then forces the `.log` and both indexes to stable storage.
    func flush() throws {
        try writeIndexEntries()
        try log.sync()
        try offsetIndexFile.sync()
        try timeIndexFile.sync()
    }

    /// Writes the index entries added since the last write at the end of the index files.
    func writeIndexEntries() throws {
        try state.withLock { state in
            guard var indexes = state.indexes else { return }
            if indexes.offsetsOnDisk < indexes.offsets.count {
                try offsetIndexFile.write(IndexFormat.encode(indexes.offsets[indexes.offsetsOnDisk...]),
                                          at: indexes.offsetsOnDisk * OffsetIndexEntry.size)
                indexes.offsetsOnDisk = indexes.offsets.count
            }
            if indexes.timesOnDisk < indexes.times.count {
                try timeIndexFile.write(IndexFormat.encode(indexes.times[indexes.timesOnDisk...]),
                                        at: indexes.timesOnDisk * TimeIndexEntry.size)
                indexes.timesOnDisk = indexes.times.count
            }
            state.indexes = indexes
        }
    }

    // MARK: Reader side

    /// Runs `body` on the loaded indexes, loading (and if needed rebuilding) them first.
    func withIndexes<R>(_ body: (inout SegmentIndexes) throws -> R) throws -> R {
        try state.withLock { state in
            if state.indexes == nil {
                state.indexes = try loadIndexes(size: state.size, trustedBelow: Int.max, sealed: state.sealed).indexes
            }
            guard var indexes = state.indexes else { preconditionFailure("indexes just loaded") }
            state.indexes = nil  // one reference, so a mutating body does not copy the arrays
            defer { state.indexes = indexes }
            return try body(&indexes)
        }
    }

    /// The offset after the last batch (the base offset when empty).
    public func nextOffset() throws -> Int64 { try withIndexes { $0.nextOffset } }

    /// The largest timestamp of any batch, nil when the segment is empty.
    public func maxTimestamp() throws -> Int64? {
        try withIndexes { $0.runningMaxTimestamp == Int64.min ? nil : $0.runningMaxTimestamp }
    }

    /// Where to start scanning for `offset`: the position of the last indexed batch at or below it.
    ///
    /// Loading checks an index's shape and its last entry, not every entry; so the entry used here is
    /// checked too (the batch at its position must have its base offset). On a mismatch the segment's
    /// indexes are rebuilt from the `.log` and the lookup repeated, so a wrong index never sends a
    /// reader to the wrong batch.
    func floorPosition(for offset: Int64) throws -> Int {
        guard let entry = try floorEntry(for: offset) else { return 0 }
        let bytes = try log.read(count: RecordBatchHeader.size, at: entry.position)
        let header = bytes.withUnsafeBytes { RecordBatchHeader(parsing: $0) }
        if header?.baseOffset == entry.baseOffset { return entry.position }
        try rebuildIndexes(reason: "entry for offset \(entry.baseOffset) points at byte \(entry.position), "
                           + "where no batch with that base offset starts")
        return try floorEntry(for: offset)?.position ?? 0
    }

    private func floorEntry(for offset: Int64) throws -> (position: Int, baseOffset: Int64)? {
        try withIndexes { indexes in
            guard let i = IndexFormat.floorIndex(indexes.offsets, offset - baseOffset, key: { Int64($0.relativeOffset) }) else {
                return nil
            }
            return (Int(indexes.offsets[i].position), baseOffset + Int64(indexes.offsets[i].relativeOffset))
        }
    }

    /// Replaces both indexes with ones rebuilt by scanning the whole `.log`.
    func rebuildIndexes(reason: String) throws {
        try state.withLock { state in
            state.indexes = try loadIndexes(size: state.size, trustedBelow: 0, sealed: state.sealed).indexes
            state.indexRebuilds.append(reason)
        }
    }

    /// Why this segment's indexes were rebuilt after it was opened (for logs and tests).
    public var indexRebuilds: [String] { state.withLock { $0.indexRebuilds } }

    /// The offset from which a search for the first record with a timestamp at or after `timestamp` may
    /// start: every batch before it has a max timestamp below `timestamp`.
    func timeSearchStart(for timestamp: Int64) throws -> Int64 {
        guard timestamp > Int64.min else { return baseOffset }
        return try withIndexes { indexes in
            guard let i = IndexFormat.floorIndex(indexes.times, timestamp - 1, key: { $0.timestamp }) else {
                return baseOffset
            }
            return baseOffset + Int64(indexes.times[i].relativeOffset)
        }
    }

    /// A snapshot of the index entries (tests, the verify tool).
    public func indexEntries() throws -> (offsets: [OffsetIndexEntry], times: [TimeIndexEntry]) {
        try withIndexes { ($0.offsets, $0.times) }
    }

    /// The `.log` mapped for reading when the segment is sealed (immutable) and not empty; nil otherwise
    /// (the active segment is read with `pread`).
    func sealedMapping() throws -> MappedFile? {
        try state.withLock { state in
            guard state.sealed, state.size > 0 else { return nil }
            if let mapping = state.mapping { return mapping }
            let mapping = try MappedFile(log, size: state.size)
            state.mapping = mapping
            return mapping
        }
    }

    /// Calls `body` with each batch (header, byte position, bytes) from `position` up to `end` (default:
    /// the visible end), fully validated; `body` returns false to stop. An invalid batch throws
    /// `LogError.corruptBatch` naming this file and the batch's position.
    func forEachBatch(from position: Int = 0, end: Int? = nil,
                      _ body: (RecordBatchHeader, Int, UnsafeRawBufferPointer) throws -> Bool) throws {
        let scanner = BatchScanner(file: log, position: position, endPosition: end ?? size, limits: limits)
        while true {
            switch try scanner.next() {
            case .end:
                return
            case .invalid(let position, let reason):
                throw LogError.corruptBatch(file: path, position: position, reason: reason)
            case .batch(let header, let position, let bytes):
                guard try body(header, position, bytes) else { return }
            }
        }
    }
}

/// The in-memory state of a segment's indexes and the running values the indexing rule needs.
struct SegmentIndexes {
    let baseOffset: Int64
    var offsets: [OffsetIndexEntry] = []
    var times: [TimeIndexEntry] = []
    /// Bytes appended since the batch that got the last offset-index entry (that batch included).
    var bytesSinceIndexEntry = 0
    /// Largest max-timestamp of any batch so far; Int64.min when none.
    var runningMaxTimestamp = Int64.min
    var lastBatchBaseOffset: Int64?
    var nextOffset: Int64

    init(baseOffset: Int64) {
        self.baseOffset = baseOffset
        self.nextOffset = baseOffset
    }

    /// How many entries of each index the files hold (a prefix of `offsets` and `times`).
    var offsetsOnDisk = 0
    var timesOnDisk = 0

    /// The indexing rule (storage-format/segments.md): the first batch, and then a batch that starts at
    /// least `interval` bytes after the last indexed one, gets an offset entry; alongside it a time entry
    /// when the running max timestamp grew past the last time entry.
    mutating func add(header: RecordBatchHeader, position: Int, size: Int, interval: Int) {
        runningMaxTimestamp = max(runningMaxTimestamp, header.maxTimestamp)
        let relative = UInt32(header.baseOffset - baseOffset)
        if offsets.isEmpty || bytesSinceIndexEntry >= interval {
            offsets.append(OffsetIndexEntry(relativeOffset: relative, position: UInt32(position)))
            bytesSinceIndexEntry = 0
            if runningMaxTimestamp > (times.last?.timestamp ?? Int64.min) {
                times.append(TimeIndexEntry(timestamp: runningMaxTimestamp, relativeOffset: relative))
            }
        }
        bytesSinceIndexEntry += size
        lastBatchBaseOffset = header.baseOffset
        nextOffset = header.nextOffset
    }

    /// The final time entry of a closed segment, so the last entry holds the segment's max timestamp.
    mutating func seal() {
        if let last = lastBatchBaseOffset, runningMaxTimestamp > (times.last?.timestamp ?? Int64.min) {
            times.append(TimeIndexEntry(timestamp: runningMaxTimestamp, relativeOffset: UInt32(last - baseOffset)))
        }
    }
}
