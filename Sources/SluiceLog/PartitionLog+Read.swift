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
        let current = snapshot()
        guard offset >= current.logStartOffset && offset <= current.logEndOffset else {
            throw LogError.offsetOutOfRange(requested: offset, logStartOffset: current.logStartOffset,
                                            logEndOffset: current.logEndOffset)
        }
        let upper = min(maxOffset ?? current.logEndOffset, current.logEndOffset)
        var empty = LogReadResult(bytes: [], batchCount: 0, nextOffset: offset, segmentBaseOffset: nil, position: nil,
                                  logStartOffset: current.logStartOffset, logEndOffset: current.logEndOffset)
        guard offset < upper else { return empty }
        let segments = current.segments
        var index = IndexFormat.floorIndex(segments, offset, key: { $0.baseOffset }) ?? 0
        while index < segments.count {
            let segment = segments[index]
            let target = max(offset, segment.baseOffset)
            if var result = try read(segment, from: target, maxBytes: maxBytes, upper: upper) {
                result.logStartOffset = current.logStartOffset
                result.logEndOffset = current.logEndOffset
                return result
            }
            index += 1
            if index < segments.count && segments[index].baseOffset >= upper { break }
        }
        empty.nextOffset = offset
        return empty
    }

    /// Reads from one segment; nil when no batch in it reaches `target`.
    private func read(_ segment: LogSegment, from target: Int64, maxBytes: Int, upper: Int64) throws -> LogReadResult? {
        let end = segment.size
        guard let (position, first) = try findBatch(in: segment, reaching: target, end: end) else { return nil }
        var result = LogReadResult(bytes: [], batchCount: 0, nextOffset: target, segmentBaseOffset: segment.baseOffset,
                                   position: position, logStartOffset: 0, logEndOffset: 0)
        guard first.lastOffset < upper else { return result }
        let wanted = min(max(maxBytes, first.totalSize), end - position)
        var bytes = try segment.log.read(count: wanted, at: position)
        var used = 0
        try bytes.withUnsafeBytes { raw in
            while raw.count - used >= RecordBatchHeader.size {
                let rest = UnsafeRawBufferPointer(rebasing: raw[used...])
                let header: RecordBatchHeader
                do {
                    header = try RecordBatch.validateHeader(rest, limits: config.limits)
                    if header.totalSize > rest.count {
                        if result.batchCount == 0 { throw BatchFormatError.truncated(needed: header.totalSize, available: rest.count) }
                        break
                    }
                    if header.lastOffset >= upper { break }
                    _ = try RecordBatch.validate(rest, limits: config.limits)
                } catch let error as BatchFormatError {
                    throw LogError.corruptBatch(file: segment.path, position: position + used, reason: error)
                }
                used += header.totalSize
                result.batchCount += 1
                result.nextOffset = header.nextOffset
            }
        }
        bytes.removeLast(bytes.count - used)
        result.bytes = bytes
        return result
    }

    /// The position and header of the first batch in `segment` whose last offset is at least `target`,
    /// found from the offset index and a forward walk over batch headers.
    func findBatch(in segment: LogSegment, reaching target: Int64, end: Int) throws -> (Int, RecordBatchHeader)? {
        var position = try segment.floorPosition(for: target)
        while position + RecordBatchHeader.size <= end {
            let bytes = try segment.log.read(count: RecordBatchHeader.size, at: position)
            let header: RecordBatchHeader
            do {
                header = try bytes.withUnsafeBytes { try RecordBatch.validateHeader($0, limits: config.limits) }
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
            let scanner = segment.scanner(from: try segment.floorPosition(for: startOffset))
            scan: while true {
                switch try scanner.next() {
                case .end:
                    break scan
                case .invalid(let position, let reason):
                    throw LogError.corruptBatch(file: segment.path, position: position, reason: reason)
                case .batch(let header, let position, let bytes):
                    guard header.lastOffset >= current.logStartOffset, header.maxTimestamp >= timestamp else { continue }
                    if header.timestampType == .logAppendTime { return max(header.baseOffset, current.logStartOffset) }
                    let records: [Record]
                    do {
                        records = try RecordBatch.records(in: bytes, limits: config.limits)
                    } catch let error as BatchFormatError {
                        throw LogError.corruptBatch(file: segment.path, position: position, reason: error)
                    }
                    if let match = records.first(where: { $0.timestamp >= timestamp && $0.offset >= current.logStartOffset }) {
                        return match.offset
                    }
                }
            }
        }
        return nil
    }
}
