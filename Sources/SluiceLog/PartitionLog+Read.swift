import SluiceCore
import SluiceCompression

extension PartitionLog {
    /// Reads whole batches starting with the one that holds `offset`, up to `maxBytes` (at least one
    /// batch is returned even when it is larger, so a consumer always makes progress), from one segment,
    /// and only batches that end below `maxOffset` (the high watermark; default the log end).
    ///
    /// Every returned batch passed the length, magic and CRC checks; stored bytes that fail them raise
    /// `LogError.corruptBatch` naming the file and position. An offset outside
    /// `logStartOffset...logEndOffset` raises `LogError.offsetOutOfRange`.
    public func read(from offset: Int64, maxBytes: Int, maxOffset: Int64? = nil) throws -> LogReadResult {
        precondition(maxBytes > 0, "maxBytes must be positive")
        let (found, current) = try firstFromSegments(from: offset, maxOffset: maxOffset) { segment, target, _, upper in
            try read(segment, from: target, maxBytes: maxBytes, upper: upper)
        }
        var result = found ?? LogReadResult(bytes: [], batchCount: 0, nextOffset: offset, segmentBaseOffset: nil, position: nil,
                                            logStartOffset: 0, logEndOffset: 0)
        result.logStartOffset = current.logStartOffset
        result.logEndOffset = current.logEndOffset
        return result
    }

    /// The walk `read` and `readRegion` share: checks `offset` against the log's range, then asks `body`
    /// for each segment from the one holding `offset` (with the offset to start from, the segment's
    /// visible end and the bound `maxOffset`, default the log end) until one returns a value or the next
    /// segment starts at the bound. Returns that value (nil when nothing is there) and the view used.
    func firstFromSegments<R>(from offset: Int64, maxOffset: Int64?,
                              _ body: (_ segment: LogSegment, _ target: Int64, _ end: Int, _ upper: Int64) throws -> R?) throws -> (R?, View) {
        let current = snapshot()
        guard offset >= current.logStartOffset && offset <= current.logEndOffset else {
            throw LogError.offsetOutOfRange(requested: offset, logStartOffset: current.logStartOffset,
                                            logEndOffset: current.logEndOffset)
        }
        let upper = min(maxOffset ?? current.logEndOffset, current.logEndOffset)
        guard offset < upper else { return (nil, current) }
        let segments = current.segments
        var index = IndexFormat.floorIndex(segments, offset, key: { $0.baseOffset }) ?? 0
        while index < segments.count {
            let segment = segments[index]
            let end = segment === current.active ? current.activeEndPosition : segment.size
            if let found = try body(segment, max(offset, segment.baseOffset), end, upper) { return (found, current) }
            index += 1
            if index < segments.count && segments[index].baseOffset >= upper { break }
        }
        return (nil, current)
    }

    /// Reads from one segment; nil when no batch in it reaches `target`. Sealed segments are read
    /// through their mapping (no copy into the kernel's read buffer, no header `pread`s); the active
    /// segment with `pread`.
    private func read(_ segment: LogSegment, from target: Int64, maxBytes: Int, upper: Int64) throws -> LogReadResult? {
        if let mapping = try segment.sealedMapping() {
            let raw = mapping.bytes
            guard let (position, first) = try findBatch(in: segment, reaching: target, mapped: raw) else { return nil }
            var result = emptyResult(segment, target, position)
            guard first.lastOffset < upper else { return result }
            let limit = min(raw.count, position + max(maxBytes, first.totalSize))
            let window = UnsafeRawBufferPointer(rebasing: raw[position..<limit])
            // Walk the headers first, then copy each batch out and check its CRC on the copy while it is
            // still in cache: the mapped bytes are read from memory once.
            let (used, count, next) = try collectBatches(window, segment: segment, position: position, upper: upper, verifyCRC: false)
            result.bytes = try [UInt8](unsafeUninitializedCapacity: used) { buffer, initialized in
                try copyVerifyingCRCs(from: UnsafeRawBufferPointer(rebasing: window[0..<used]),
                                      to: UnsafeMutableRawBufferPointer(buffer), segment: segment, position: position)
                initialized = used
            }
            result.batchCount = count
            result.nextOffset = next ?? target
            return result
        }
        let end = segment.size
        guard let (position, first) = try findBatch(in: segment, reaching: target, end: end) else { return nil }
        var result = emptyResult(segment, target, position)
        guard first.lastOffset < upper else { return result }
        var bytes = try segment.log.read(count: min(max(maxBytes, first.totalSize), end - position), at: position)
        let (used, count, next) = try bytes.withUnsafeBytes { window in
            try collectBatches(window, segment: segment, position: position, upper: upper)
        }
        bytes.removeLast(bytes.count - used)
        result.bytes = bytes
        result.batchCount = count
        result.nextOffset = next ?? target
        return result
    }

    private func emptyResult(_ segment: LogSegment, _ target: Int64, _ position: Int) -> LogReadResult {
        LogReadResult(bytes: [], batchCount: 0, nextOffset: target, segmentBaseOffset: segment.baseOffset,
                      position: position, logStartOffset: 0, logEndOffset: 0)
    }

    /// Walks the whole batches at the start of `window` (which starts at byte `position` of the
    /// segment), fully validating each, stopping before a batch that is cut off by the window's end or
    /// that reaches `upper`. The first batch must be complete. Returns the bytes used, the batch count
    /// and the offset after the last batch.
    private func collectBatches(_ window: UnsafeRawBufferPointer, segment: LogSegment, position: Int,
                                upper: Int64, verifyCRC: Bool = true) throws -> (Int, Int, Int64?) {
        var used = 0
        var count = 0
        var next: Int64?
        while window.count - used >= RecordBatchHeader.size {
            let rest = UnsafeRawBufferPointer(rebasing: window[used...])
            do {
                let header = try RecordBatch.validateHeader(rest, limits: config.limits)
                if header.totalSize > rest.count {
                    if count == 0 { throw BatchFormatError.truncated(needed: header.totalSize, available: rest.count) }
                    break
                }
                if header.lastOffset >= upper { break }
                if verifyCRC { _ = try RecordBatch.validate(rest, limits: config.limits) }
                used += header.totalSize
                count += 1
                next = header.nextOffset
            } catch let error as BatchFormatError {
                throw LogError.corruptBatch(file: segment.path, position: position + used, reason: error)
            }
        }
        return (used, count, next)
    }

    /// The position and header of the first batch in `segment` whose last offset is at least `target`,
    /// found from the offset index and a forward walk over batch headers (one `pread` each).
    func findBatch(in segment: LogSegment, reaching target: Int64, end: Int) throws -> (Int, RecordBatchHeader)? {
        try walkHeaders(in: segment, reaching: target, end: end) { try preadHeader(segment, at: $0) }
    }

    /// The checked header of the batch at `position` in `segment`, read with `pread` (never through a
    /// mapping: a device error must surface as EIO, not SIGBUS).
    func preadHeader(_ segment: LogSegment, at position: Int) throws -> RecordBatchHeader {
        try segment.log.read(count: RecordBatchHeader.size, at: position).withUnsafeBytes {
            try RecordBatch.validateHeader($0, limits: config.limits)
        }
    }

    /// Copies whole batches (headers already validated) from `source` to `target`, one batch at a time,
    /// checking each one's CRC on the copy while it is still in cache.
    private func copyVerifyingCRCs(from source: UnsafeRawBufferPointer, to target: UnsafeMutableRawBufferPointer,
                                   segment: LogSegment, position: Int) throws {
        guard let from = source.baseAddress, let to = target.baseAddress else { return }
        var offset = 0
        while offset < source.count {
            let length: Int32 = source.getBigEndian(at: offset + RecordBatchHeader.Field.batchLength)
            let size = Int(length) + RecordBatchHeader.logOverhead
            (to + offset).copyMemory(from: from + offset, byteCount: size)
            let copy = UnsafeRawBufferPointer(start: to + offset, count: size)
            let stored: UInt32 = copy.getBigEndian(at: RecordBatchHeader.Field.crc)
            let computed = RecordBatch.computeCRC(copy)
            guard computed == stored else {
                throw LogError.corruptBatch(file: segment.path, position: position + offset,
                                            reason: .crcMismatch(stored: stored, computed: computed))
            }
            offset += size
        }
    }

    /// `findBatch` over a mapped sealed segment: the walk reads memory instead of calling `pread`.
    func findBatch(in segment: LogSegment, reaching target: Int64, mapped raw: UnsafeRawBufferPointer) throws -> (Int, RecordBatchHeader)? {
        try walkHeaders(in: segment, reaching: target, end: raw.count) { position in
            try RecordBatch.validateHeader(UnsafeRawBufferPointer(rebasing: raw[position...]), limits: config.limits)
        }
    }

    private func walkHeaders(in segment: LogSegment, reaching target: Int64, end: Int,
                             header headerAt: (Int) throws -> RecordBatchHeader) throws -> (Int, RecordBatchHeader)? {
        var position = try segment.floorPosition(for: target)
        while position + RecordBatchHeader.size <= end {
            let header: RecordBatchHeader
            do {
                header = try headerAt(position)
            } catch let error as BatchFormatError {
                throw LogError.corruptBatch(file: segment.path, position: position, reason: error)
            }
            if header.lastOffset >= target { return (position, header) }
            position += header.totalSize
        }
        if position < end {
            throw LogError.corruptBatch(file: segment.path, position: position,
                                        reason: .truncated(needed: RecordBatchHeader.size, available: end - position))
        }
        return nil
    }

    /// The offset of the first record whose timestamp is at or after `timestamp`, nil when every record
    /// is older (Kafka's ListOffsets by time). Uses the time index to skip, then decodes one batch.
    public func offset(forTimestamp timestamp: Int64) throws -> Int64? {
        let current = snapshot()
        for segment in current.segments {
            guard let maxTimestamp = try segment.maxTimestamp(), maxTimestamp >= timestamp else { continue }
            let startOffset = max(try segment.timeSearchStart(for: timestamp), current.logStartOffset)
            var found: Int64?
            try segment.forEachBatch(from: try segment.floorPosition(for: startOffset)) { header, position, bytes in
                guard header.lastOffset >= current.logStartOffset, header.maxTimestamp >= timestamp else { return true }
                if header.timestampType == .logAppendTime {
                    found = max(header.baseOffset, current.logStartOffset)
                    return false
                }
                let records = try decode(bytes, file: segment.path, position: position)
                found = records.first(where: { $0.timestamp >= timestamp && $0.offset >= current.logStartOffset })?.offset
                return found == nil
            }
            if let found { return found }
        }
        return nil
    }
}
