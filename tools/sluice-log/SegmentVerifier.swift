import SluiceCompression
import SluiceCore
import SluiceLog

/// Checks one segment read-only: every batch of its `.log` (through the partition's `BatchChain`),
/// then its `.index` and `.timeindex`, walked alongside the batches. Problems in the `.log` are thrown
/// at once; index problems are held until the `.log` scan is through, because a damaged batch explains
/// an index that disagrees with it, not the other way round.
struct SegmentVerifier {
    let base: Int64
    let limits: Limits
    let syntheticValueBytes: Int?
    let logPath: String
    private(set) var warnings: [String] = []
    /// Batch boundaries at the recovery point's position, when it lies in this segment.
    private(set) var probe: BoundaryProbe?
    private var summary: SegmentSummary
    private var offsetIndex: OffsetIndexCursor
    private var timeIndex: TimeIndexCursor
    private var runningMaxTimestamp = Int64.min

    init(directory: PartitionDirectory, base: Int64, limits: Limits, syntheticValueBytes: Int?, probePosition: Int?) throws {
        self.base = base
        self.limits = limits
        self.syntheticValueBytes = syntheticValueBytes
        self.logPath = directory.file(base, .log)
        self.summary = SegmentSummary(base: base)
        self.probe = probePosition.map { BoundaryProbe(position: $0) }
        let logSize = FileSystem.size(logPath) ?? 0
        var warnings: [String] = []
        offsetIndex = try OffsetIndexCursor(path: directory.file(base, .index), base: base, logSize: logSize, warnings: &warnings)
        timeIndex = try TimeIndexCursor(path: directory.file(base, .timeIndex), base: base, logSize: logSize, warnings: &warnings)
        self.warnings = warnings
        summary.offsetIndexEntries = offsetIndex.entries.count
        summary.timeIndexEntries = timeIndex.entries.count
    }

    /// Scans the segment; returns its summary or throws the first corruption.
    mutating func run(chain: inout BatchChain) throws -> SegmentSummary {
        let file = try LogFile.openReadOnly(logPath)
        let size = try file.size()
        summary.logBytes = size
        let scanner = BatchScanner(file: file, position: 0, endPosition: size, limits: limits, verifyCRC: true)
        scan: while true {
            switch try scanner.next() {
            case .end:
                break scan
            case .invalid(let position, let reason):
                throw Corruption(file: logPath, position: position, reason: reason.description)
            case .batch(let header, let position, let bytes):
                try check(header, position: position, bytes: bytes, chain: &chain)
            }
        }
        finishProbe(end: scanner.position)
        offsetIndex.finish(validEnd: scanner.position)
        timeIndex.finish()
        if let problem = offsetIndex.problem ?? timeIndex.problem { throw problem }
        return summary
    }

    private mutating func check(_ header: RecordBatchHeader, position: Int, bytes: UnsafeRawBufferPointer,
                                chain: inout BatchChain) throws {
        try chain.add(header, position: position, file: logPath)
        guard let mark = chain.last else { preconditionFailure("the chain holds the batch just added") }
        let records = try decodeRecords(header, position: position, bytes: bytes)
        try offsetIndex.visit(header, position: position, mark: mark, logPath: logPath)
        runningMaxTimestamp = max(runningMaxTimestamp, header.maxTimestamp)
        timeIndex.visit(header, runningMaxTimestamp: runningMaxTimestamp)
        if var probe, !probe.isBoundary, position == probe.position {
            probe.isBoundary = true
            probe.offsetBefore = summary.nextOffset
            probe.baseOffsetAt = header.baseOffset
            self.probe = probe
        }
        summary.batches += 1
        summary.records += records.count
        summary.firstOffset = summary.firstOffset ?? header.baseOffset
        summary.nextOffset = header.nextOffset
        let codec = header.codec.map { "\($0)" } ?? "id \(header.codecID)"
        if !summary.codecs.contains(codec) { summary.codecs.append(codec) }
    }

    /// Decodes (and decompresses) the records and checks them against the header and, when asked,
    /// against the synthetic-record contract; the records of a control batch must parse as control records.
    private func decodeRecords(_ header: RecordBatchHeader, position: Int, bytes: UnsafeRawBufferPointer) throws -> [Record] {
        let records: [Record]
        do {
            records = try RecordBatch.records(in: bytes, limits: limits)
        } catch {
            throw Corruption(file: logPath, position: position, reason: "records do not decode: \(error)")
        }
        for record in records where header.timestampType == .createTime && record.timestamp > header.maxTimestamp {
            throw Corruption(file: logPath, position: position, reason:
                "record \(record.offset) has timestamp \(record.timestamp), above the batch's max timestamp \(header.maxTimestamp)")
        }
        if header.isControl {
            // Not data: the synthetic contract does not apply, the control record layout does.
            for record in records {
                do {
                    _ = try ControlRecord(key: record.key, value: record.value)
                } catch {
                    throw Corruption(file: logPath, position: position, reason: "control record \(record.offset): \(error)")
                }
            }
        } else if let valueBytes = syntheticValueBytes, let codec = header.codec {
            for record in records {
                if let mismatch = SyntheticRecords.mismatch(record, valueBytes: valueBytes, codec: codec) {
                    throw Corruption(file: logPath, position: position, reason: "not the synthetic record: \(mismatch)")
                }
            }
        }
        return records
    }

    private mutating func finishProbe(end: Int) {
        guard var probe else { return }
        probe.validEnd = end
        if !probe.isBoundary && probe.position == end {
            probe.isBoundary = true
            probe.offsetBefore = summary.nextOffset
            probe.baseOffsetAt = nil
        }
        self.probe = probe
    }
}

/// Reads a whole index file read-only; nil when it does not exist.
private func readIndexFile(_ path: String) throws -> [UInt8]? {
    guard FileSystem.exists(path) else { return nil }
    let file = try LogFile.openReadOnly(path)
    return try file.read(count: try file.size(), at: 0)
}

/// Walks a segment's offset index alongside its batches: entries strictly increase, and each names the
/// base offset of the batch that starts at its position.
struct OffsetIndexCursor {
    let path: String
    let base: Int64
    private(set) var entries: [OffsetIndexEntry] = []
    private var next = 0
    /// The first problem found; the cursor stops checking after it.
    private(set) var problem: Corruption?

    init(path: String, base: Int64, logSize: Int, warnings: inout [String]) throws {
        self.path = path
        self.base = base
        guard let bytes = try readIndexFile(path) else {
            if logSize > 0 { warnings.append("\(path) is missing; the next open rebuilds it") }
            return
        }
        guard let decoded = IndexFormat.decodeOffsetIndex(bytes) else {
            problem = Corruption(file: path, position: bytes.count - bytes.count % OffsetIndexEntry.size, reason:
                "size \(bytes.count) is not a multiple of the \(OffsetIndexEntry.size)-byte entry size")
            return
        }
        entries = decoded
        if entries.isEmpty && logSize > 0 { warnings.append("\(path) is empty; the next open rebuilds it") }
        for i in entries.indices.dropFirst() {
            let (previous, entry) = (entries[i - 1], entries[i])
            if entry.relativeOffset <= previous.relativeOffset || entry.position <= previous.position {
                problem = Corruption(file: path, position: i * OffsetIndexEntry.size, reason:
                    "entry \(i) (relative offset \(entry.relativeOffset), byte \(entry.position)) does not increase over entry \(i - 1) "
                        + "(relative offset \(previous.relativeOffset), byte \(previous.position))")
                return
            }
        }
    }

    /// Checks the entries up to the batch `header` at `position`. Throws (blaming the `.log`) only when
    /// the entry agrees with the batch before and the batch's own base offset is the odd one out.
    mutating func visit(_ header: RecordBatchHeader, position: Int, mark: BatchMark, logPath: String) throws {
        guard problem == nil, next < entries.count else { return }
        let entry = entries[next]
        if Int(entry.position) < position {
            problem = Corruption(file: path, position: next * OffsetIndexEntry.size, reason:
                "entry \(next) points at byte \(entry.position) of the .log, which is not the start of a batch")
            return
        }
        guard Int(entry.position) == position else { return }
        let named = base + Int64(entry.relativeOffset)
        if named != header.baseOffset {
            if named == mark.offsetFloor {
                throw Corruption(file: logPath, position: position, reason:
                    "base offset \(header.baseOffset) disagrees with the offset index, which names \(named), the offset right "
                        + "after the batch before; the field is outside the CRC")
            }
            problem = Corruption(file: path, position: next * OffsetIndexEntry.size, reason:
                "entry \(next) names offset \(named) at byte \(position), where the batch with base offset \(header.baseOffset) starts")
        }
        next += 1
    }

    /// Entries left over point past the last batch.
    mutating func finish(validEnd: Int) {
        guard problem == nil, next < entries.count else { return }
        problem = Corruption(file: path, position: next * OffsetIndexEntry.size, reason:
            "entry \(next) points at byte \(entries[next].position), past the last batch (the batches end at byte \(validEnd))")
    }
}

/// Walks a segment's time index alongside its batches: timestamps strictly increase, relative offsets
/// do not decrease, each entry names a batch's base offset, and its timestamp is at least the largest
/// max timestamp of the batches up to that one (otherwise a lookup by time would skip records).
struct TimeIndexCursor {
    let path: String
    let base: Int64
    private(set) var entries: [TimeIndexEntry] = []
    private var next = 0
    private(set) var problem: Corruption?

    init(path: String, base: Int64, logSize: Int, warnings: inout [String]) throws {
        self.path = path
        self.base = base
        guard let bytes = try readIndexFile(path) else {
            if logSize > 0 { warnings.append("\(path) is missing; the next open rebuilds it") }
            return
        }
        guard let decoded = IndexFormat.decodeTimeIndex(bytes) else {
            problem = Corruption(file: path, position: bytes.count - bytes.count % TimeIndexEntry.size, reason:
                "size \(bytes.count) is not a multiple of the \(TimeIndexEntry.size)-byte entry size")
            return
        }
        entries = decoded
        if entries.isEmpty && logSize > 0 { warnings.append("\(path) is empty; the next open rebuilds it") }
        for i in entries.indices.dropFirst() {
            let (previous, entry) = (entries[i - 1], entries[i])
            if entry.timestamp <= previous.timestamp || entry.relativeOffset < previous.relativeOffset {
                problem = Corruption(file: path, position: i * TimeIndexEntry.size, reason:
                    "entry \(i) (timestamp \(entry.timestamp), relative offset \(entry.relativeOffset)) does not increase over entry "
                        + "\(i - 1) (timestamp \(previous.timestamp), relative offset \(previous.relativeOffset))")
                return
            }
        }
    }

    /// Checks the entries that name offsets up to the batch `header`.
    mutating func visit(_ header: RecordBatchHeader, runningMaxTimestamp: Int64) {
        guard problem == nil else { return }
        let relative = header.baseOffset - base
        while next < entries.count && Int64(entries[next].relativeOffset) <= relative {
            let entry = entries[next]
            guard Int64(entry.relativeOffset) == relative else {
                problem = Corruption(file: path, position: next * TimeIndexEntry.size, reason:
                    "entry \(next) names offset \(base + Int64(entry.relativeOffset)), which is not the base offset of a batch")
                return
            }
            guard entry.timestamp >= runningMaxTimestamp else {
                problem = Corruption(file: path, position: next * TimeIndexEntry.size, reason:
                    "entry \(next) says the batches up to offset \(header.baseOffset) end by timestamp \(entry.timestamp), "
                        + "but their max timestamp is \(runningMaxTimestamp)")
                return
            }
            next += 1
        }
    }

    /// Entries left over name offsets past the last batch.
    mutating func finish() {
        guard problem == nil, next < entries.count else { return }
        problem = Corruption(file: path, position: next * TimeIndexEntry.size, reason:
            "entry \(next) names offset \(base + Int64(entries[next].relativeOffset)), past the last batch")
    }
}
