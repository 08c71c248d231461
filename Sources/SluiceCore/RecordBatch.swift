/// One encoded record batch: the unit that is produced, stored, replicated and fetched.
///
/// The value owns its bytes exactly as they are on the wire and on disk. Header fields are read from
/// and written to those bytes in place, so the broker can stamp the base offset and leader epoch
/// (outside the CRC) without re-encoding records. Decoding records (and compression) live in
/// `RecordBatch+Records.swift` and the SluiceCompression module.
public struct RecordBatch: Sendable, Hashable {
    /// The whole batch, header included.
    public private(set) var bytes: [UInt8]

    /// Wraps bytes that `validate` accepted. Use `init(validating:limits:)` for untrusted input.
    public init(unchecked bytes: [UInt8]) {
        assert(bytes.count >= RecordBatchHeader.size, "a batch is at least its header")
        self.bytes = bytes
    }

    /// Checks length, magic, codec, record count and CRC, then wraps the bytes.
    public init(validating bytes: [UInt8], limits: Limits = .default) throws {
        let size = try bytes.withUnsafeBytes { raw in
            try RecordBatch.validate(raw, limits: limits).totalSize
        }
        guard size == bytes.count else {
            throw BatchFormatError.malformedRecords("batch length field says \(size) bytes, \(bytes.count) were given")
        }
        self.bytes = bytes
    }

    /// The parsed header.
    public var header: RecordBatchHeader {
        bytes.withUnsafeBytes { raw in
            guard let header = RecordBatchHeader(parsing: raw) else {
                preconditionFailure("RecordBatch holds fewer bytes than its header")
            }
            return header
        }
    }

    public var baseOffset: Int64 {
        get { bytes.getBigEndian(at: RecordBatchHeader.Field.baseOffset) }
        set { bytes.setBigEndian(newValue, at: RecordBatchHeader.Field.baseOffset) }
    }

    public var partitionLeaderEpoch: Int32 {
        get { bytes.getBigEndian(at: RecordBatchHeader.Field.partitionLeaderEpoch) }
        set { bytes.setBigEndian(newValue, at: RecordBatchHeader.Field.partitionLeaderEpoch) }
    }

    public var lastOffsetDelta: Int32 { bytes.getBigEndian(at: RecordBatchHeader.Field.lastOffsetDelta) }
    public var lastOffset: Int64 { baseOffset + Int64(lastOffsetDelta) }
    public var nextOffset: Int64 { lastOffset + 1 }
    public var maxTimestamp: Int64 { bytes.getBigEndian(at: RecordBatchHeader.Field.maxTimestamp) }
    public var baseTimestamp: Int64 { bytes.getBigEndian(at: RecordBatchHeader.Field.baseTimestamp) }
    public var recordCount: Int32 { bytes.getBigEndian(at: RecordBatchHeader.Field.recordCount) }
    public var storedCRC: UInt32 { bytes.getBigEndian(at: RecordBatchHeader.Field.crc) }

    /// Stamps LogAppendTime: sets the timestamp-type bit and the max timestamp, then recomputes the CRC
    /// (both fields are covered by it).
    public mutating func stampLogAppendTime(_ timestamp: Int64) {
        let attributes: Int16 = bytes.getBigEndian(at: RecordBatchHeader.Field.attributes)
        bytes.setBigEndian(attributes | 0x08, at: RecordBatchHeader.Field.attributes)
        bytes.setBigEndian(timestamp, at: RecordBatchHeader.Field.maxTimestamp)
        updateCRC()
    }

    /// Recomputes the CRC after a change to covered bytes.
    public mutating func updateCRC() {
        let crc = bytes.withUnsafeBytes { RecordBatch.computeCRC($0) }
        bytes.setBigEndian(crc, at: RecordBatchHeader.Field.crc)
    }

    /// CRC-32C of `batch[21..<end]`; `batch` must hold at least a header.
    @inlinable
    public static func computeCRC(_ batch: UnsafeRawBufferPointer) -> UInt32 {
        CRC32C.checksum(UnsafeRawBufferPointer(rebasing: batch[RecordBatchHeader.crcCoveredStart...]))
    }

    /// Validates the batch at the start of `bytes` (which may continue past it) without decoding
    /// records: the length against the header size and `limits`, that all of it is present, the
    /// magic, the codec, the record count, and the CRC. Returns the parsed header.
    public static func validate(
        _ bytes: UnsafeRawBufferPointer,
        limits: Limits = .default
    ) throws -> RecordBatchHeader {
        let header = try validateHeader(bytes, limits: limits)
        let size = header.totalSize
        guard bytes.count >= size else { throw BatchFormatError.truncated(needed: size, available: bytes.count) }
        let computed = computeCRC(UnsafeRawBufferPointer(rebasing: bytes[0..<size]))
        guard computed == header.crc else { throw BatchFormatError.crcMismatch(stored: header.crc, computed: computed) }
        return header
    }

    /// The header checks of `validate`, without requiring the body or checking the CRC: used to learn a
    /// batch's size before reading all of it.
    public static func validateHeader(
        _ bytes: UnsafeRawBufferPointer,
        limits: Limits = .default
    ) throws -> RecordBatchHeader {
        guard let header = RecordBatchHeader(parsing: bytes) else {
            throw BatchFormatError.truncated(needed: RecordBatchHeader.size, available: bytes.count)
        }
        let length = Int64(header.batchLength)
        let minimum = RecordBatchHeader.size - RecordBatchHeader.logOverhead
        let maximum = limits.batchBytesMax - RecordBatchHeader.logOverhead
        guard length >= Int64(minimum) && length <= Int64(maximum) else {
            throw BatchFormatError.lengthOutOfRange(length: length, minimum: minimum, maximum: maximum)
        }
        guard header.magic == RecordBatchHeader.magicV2 else { throw BatchFormatError.unsupportedMagic(header.magic) }
        guard header.codec != nil else { throw BatchFormatError.unsupportedCodec(header.codecID) }
        guard header.recordCount >= 0 && Int(header.recordCount) <= limits.batchRecordsMax else {
            throw BatchFormatError.recordCountOutOfRange(header.recordCount, maximum: limits.batchRecordsMax)
        }
        guard header.lastOffsetDelta >= 0 else {
            throw BatchFormatError.malformedRecords("negative last offset delta \(header.lastOffsetDelta)")
        }
        // The base offset is outside the CRC; bound it so offset arithmetic on it cannot overflow.
        guard header.baseOffset >= 0 && header.baseOffset < Int64.max - Int64(header.lastOffsetDelta) else {
            throw BatchFormatError.malformedRecords(
                "base offset \(header.baseOffset) with last offset delta \(header.lastOffsetDelta) is outside 0..<Int64.max")
        }
        return header
    }
}
