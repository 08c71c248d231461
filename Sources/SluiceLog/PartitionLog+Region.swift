import SluiceCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A byte range of one segment file holding whole batches, for sending without copying (sendfile).
///
/// `descriptor` is a duplicate the caller owns: it must close it (after the send). The range stays
/// valid while the descriptor is open even if the segment is deleted meanwhile.
public struct LogRegion: Sendable {
    public var descriptor: Int32
    public var position: Int
    public var length: Int
    public var batchCount: Int
    /// The offset after the last batch in the range.
    public var nextOffset: Int64
}

extension PartitionLog {
    /// Like `read`, but returns where the batches lie instead of their bytes: the batches starting
    /// with the one that holds `offset`, within `maxBytes` (the first batch always), ending below
    /// `maxOffset`, all from one segment. Only batch headers are read and checked (length, magic,
    /// codec, count); CRCs are left to the consumer, which checks every batch it decodes, as Kafka's
    /// zero-copy fetch does. Returns nil when no batch is there yet (offset at the end).
    public func readRegion(from offset: Int64, maxBytes: Int, maxOffset: Int64? = nil) throws -> (LogRegion?, logStartOffset: Int64, logEndOffset: Int64) {
        precondition(maxBytes > 0, "maxBytes must be positive")
        let (found, current) = try firstFromSegments(from: offset, maxOffset: maxOffset) { segment, target, end, upper in
            try self.region(in: segment, from: target, end: end, maxBytes: maxBytes, upper: upper)
        }
        return (found, current.logStartOffset, current.logEndOffset)
    }

    private func region(in segment: LogSegment, from target: Int64, end: Int, maxBytes: Int, upper: Int64) throws -> LogRegion? {
        // Headers are read with pread, never through the segment's mapping: this path serves remote
        // clients, and a device error under a mapping is a SIGBUS for the whole broker instead of EIO.
        let found = try findBatch(in: segment, reaching: target, end: end)
        guard let (start, first) = found, first.lastOffset < upper, start + first.totalSize <= end else { return nil }
        // `findBatch` has read and checked the first header; the walk goes on from the batch after it.
        var used = first.totalSize
        var count = 1
        var next = first.nextOffset
        var position = start + first.totalSize
        while position + RecordBatchHeader.size <= end {
            let header: RecordBatchHeader
            do { header = try preadHeader(segment, at: position) } catch let error as BatchFormatError {
                throw LogError.corruptBatch(file: segment.path, position: position, reason: error)
            }
            guard position + header.totalSize <= end, header.lastOffset < upper else { break }
            guard used + header.totalSize <= maxBytes else { break }
            used += header.totalSize
            count += 1
            next = header.nextOffset
            position += header.totalSize
        }
        let duplicate = dup(segment.log.descriptor)
        guard duplicate >= 0 else { throw LogError.io(operation: "dup", path: segment.path, errno: errno) }
        return LogRegion(descriptor: duplicate, position: start, length: used, batchCount: count, nextOffset: next)
    }
}
