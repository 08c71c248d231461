import SluiceCore

/// Reads the batches of a `.log` file in order, through a buffer, validating each one.
///
/// `next()` answers `.batch` with the header, the file position and the batch bytes (valid until the
/// next call), `.end` at a clean end of file, or `.invalid` with the position and reason of the first
/// bad batch; after `.invalid` the scanner stops. Not thread-safe; the file may be read concurrently.
public final class BatchScanner {
    public enum Step {
        case batch(header: RecordBatchHeader, position: Int, bytes: UnsafeRawBufferPointer)
        case end
        case invalid(position: Int, reason: BatchFormatError)
    }

    /// Bytes read per refill (a larger batch grows the buffer up to `Limits.batchBytesMax`).
    public static let chunkBytes = 1 << 20

    let file: LogFile
    let limits: Limits
    let verifyCRC: Bool
    /// Bytes at and past this position are not read (the visible size of a segment being appended to).
    let endPosition: Int
    private var buffer: UnsafeMutableRawBufferPointer
    /// File position of `buffer[0]`.
    private var bufferStart: Int
    /// Valid bytes in the buffer.
    private var bufferCount = 0
    /// Offset in the buffer of the next batch.
    private var cursor = 0
    private var stopped = false

    /// Starts scanning `file` at `position`, up to `endPosition`.
    public init(file: LogFile, position: Int, endPosition: Int, limits: Limits, verifyCRC: Bool = true, chunkBytes: Int = BatchScanner.chunkBytes) {
        self.file = file
        self.limits = limits
        self.verifyCRC = verifyCRC
        self.endPosition = endPosition
        self.bufferStart = position
        self.buffer = .allocate(byteCount: max(chunkBytes, RecordBatchHeader.size), alignment: 8)
    }

    deinit { buffer.deallocate() }

    /// File position of the next batch.
    public var position: Int { bufferStart + cursor }

    /// Ensures `count` bytes from the cursor are buffered (fewer at the end); returns how many are.
    private func fill(_ count: Int) throws -> Int {
        let available = bufferCount - cursor
        if available >= count { return available }
        if cursor > 0 {
            // Move the unread rest to the front.
            if available > 0, let base = buffer.baseAddress {
                base.copyMemory(from: base + cursor, byteCount: available)
            }
            bufferStart += cursor
            cursor = 0
            bufferCount = available
        }
        if buffer.count < count {
            let larger = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 8)
            if let base = larger.baseAddress, let old = buffer.baseAddress, bufferCount > 0 {
                base.copyMemory(from: old, byteCount: bufferCount)
            }
            buffer.deallocate()
            buffer = larger
        }
        let readable = min(buffer.count - bufferCount, endPosition - (bufferStart + bufferCount))
        if readable > 0 {
            let target = UnsafeMutableRawBufferPointer(rebasing: buffer[bufferCount..<(bufferCount + readable)])
            bufferCount += try file.read(into: target, at: bufferStart + bufferCount)
        }
        return bufferCount - cursor
    }

    /// The next batch, the end, or the first invalid batch. Throws only for I/O errors.
    public func next() throws -> Step {
        if stopped { return .end }
        let available = try fill(RecordBatchHeader.size)
        if available == 0 {
            stopped = true
            return .end
        }
        let start = position
        let header: RecordBatchHeader
        do {
            let view = UnsafeRawBufferPointer(rebasing: buffer[cursor..<(cursor + available)])
            header = try RecordBatch.validateHeader(view, limits: limits)
        } catch {
            stopped = true
            return .invalid(position: start, reason: error as? BatchFormatError ?? .malformedRecords("\(error)"))
        }
        let size = header.totalSize
        let present = try fill(size)
        guard present >= size else {
            stopped = true
            return .invalid(position: start, reason: .truncated(needed: size, available: present))
        }
        let bytes = UnsafeRawBufferPointer(rebasing: buffer[cursor..<(cursor + size)])
        if verifyCRC {
            let computed = RecordBatch.computeCRC(bytes)
            guard computed == header.crc else {
                stopped = true
                return .invalid(position: start, reason: .crcMismatch(stored: header.crc, computed: computed))
            }
        }
        cursor += size
        return .batch(header: header, position: start, bytes: bytes)
    }
}
