/// The compression codec of a batch, bits 0–2 of its attributes. Values are the format's codec ids.
public enum CompressionCodec: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case none = 0
    case lz4 = 3
    case zstd = 4

    /// Parses `none`, `lz4` or `zstd`.
    public init?(name: String) {
        switch name.lowercased() {
        case "none", "uncompressed": self = .none
        case "lz4": self = .lz4
        case "zstd": self = .zstd
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .none: return "none"
        case .lz4: return "lz4"
        case .zstd: return "zstd"
        }
    }
}

/// Whether record timestamps were set by the producer or stamped by the broker (attributes bit 3).
public enum TimestampType: Sendable, Hashable {
    case createTime
    case logAppendTime
}

/// The 61-byte header of a record batch (Kafka's record batch v2 layout; see storage-format/record-batch.md).
///
/// ```
/// 0  baseOffset int64      8  batchLength int32    12 partitionLeaderEpoch int32
/// 16 magic int8 (=2)       17 crc uint32 (CRC-32C of bytes 21..<end)
/// 21 attributes int16      23 lastOffsetDelta int32 27 baseTimestamp int64
/// 35 maxTimestamp int64    43 producerId int64     51 producerEpoch int16
/// 53 baseSequence int32    57 recordCount int32    61 records…
/// ```
public struct RecordBatchHeader: Hashable, Sendable {
    /// Size of the header in bytes.
    public static let size = 61
    /// Bytes before the `batchLength` field ends; `batchLength` counts what follows.
    public static let logOverhead = 12
    /// Where the CRC-covered part starts.
    public static let crcCoveredStart = 21
    /// The only magic value this format has.
    public static let magicV2: Int8 = 2

    public enum Field {
        public static let baseOffset = 0
        public static let batchLength = 8
        public static let partitionLeaderEpoch = 12
        public static let magic = 16
        public static let crc = 17
        public static let attributes = 21
        public static let lastOffsetDelta = 23
        public static let baseTimestamp = 27
        public static let maxTimestamp = 35
        public static let producerId = 43
        public static let producerEpoch = 51
        public static let baseSequence = 53
        public static let recordCount = 57
    }

    public var baseOffset: Int64
    /// Bytes after this field: the whole batch is `batchLength + 12` bytes.
    public var batchLength: Int32
    public var partitionLeaderEpoch: Int32
    public var magic: Int8
    public var crc: UInt32
    public var attributes: Int16
    public var lastOffsetDelta: Int32
    public var baseTimestamp: Int64
    public var maxTimestamp: Int64
    public var producerId: Int64
    public var producerEpoch: Int16
    public var baseSequence: Int32
    public var recordCount: Int32

    public init(
        baseOffset: Int64 = 0,
        batchLength: Int32 = 0,
        partitionLeaderEpoch: Int32 = -1,
        magic: Int8 = RecordBatchHeader.magicV2,
        crc: UInt32 = 0,
        attributes: Int16 = 0,
        lastOffsetDelta: Int32 = 0,
        baseTimestamp: Int64 = 0,
        maxTimestamp: Int64 = 0,
        producerId: Int64 = -1,
        producerEpoch: Int16 = -1,
        baseSequence: Int32 = -1,
        recordCount: Int32 = 0
    ) {
        self.baseOffset = baseOffset
        self.batchLength = batchLength
        self.partitionLeaderEpoch = partitionLeaderEpoch
        self.magic = magic
        self.crc = crc
        self.attributes = attributes
        self.lastOffsetDelta = lastOffsetDelta
        self.baseTimestamp = baseTimestamp
        self.maxTimestamp = maxTimestamp
        self.producerId = producerId
        self.producerEpoch = producerEpoch
        self.baseSequence = baseSequence
        self.recordCount = recordCount
    }

    /// Reads the header fields from the first 61 bytes of `bytes`; nil when fewer are present.
    /// Nothing is validated here: see `RecordBatch.validate`.
    @inlinable
    public init?(parsing bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= RecordBatchHeader.size else { return nil }
        baseOffset = bytes.getBigEndian(at: Field.baseOffset)
        batchLength = bytes.getBigEndian(at: Field.batchLength)
        partitionLeaderEpoch = bytes.getBigEndian(at: Field.partitionLeaderEpoch)
        magic = Int8(bitPattern: bytes[Field.magic])
        crc = bytes.getBigEndian(at: Field.crc)
        attributes = bytes.getBigEndian(at: Field.attributes)
        lastOffsetDelta = bytes.getBigEndian(at: Field.lastOffsetDelta)
        baseTimestamp = bytes.getBigEndian(at: Field.baseTimestamp)
        maxTimestamp = bytes.getBigEndian(at: Field.maxTimestamp)
        producerId = bytes.getBigEndian(at: Field.producerId)
        producerEpoch = bytes.getBigEndian(at: Field.producerEpoch)
        baseSequence = bytes.getBigEndian(at: Field.baseSequence)
        recordCount = bytes.getBigEndian(at: Field.recordCount)
    }

    /// Appends the 61 header bytes.
    public func append(to bytes: inout [UInt8]) {
        bytes.appendBigEndian(baseOffset)
        bytes.appendBigEndian(batchLength)
        bytes.appendBigEndian(partitionLeaderEpoch)
        bytes.append(UInt8(bitPattern: magic))
        bytes.appendBigEndian(crc)
        bytes.appendBigEndian(attributes)
        bytes.appendBigEndian(lastOffsetDelta)
        bytes.appendBigEndian(baseTimestamp)
        bytes.appendBigEndian(maxTimestamp)
        bytes.appendBigEndian(producerId)
        bytes.appendBigEndian(producerEpoch)
        bytes.appendBigEndian(baseSequence)
        bytes.appendBigEndian(recordCount)
    }

    /// Total size of the batch in bytes, from its length field.
    @inlinable
    public var totalSize: Int { Int(batchLength) + RecordBatchHeader.logOverhead }

    /// The offset of the last record slot (records may have been removed by compaction).
    @inlinable
    public var lastOffset: Int64 { baseOffset + Int64(lastOffsetDelta) }

    /// The offset that follows this batch.
    @inlinable
    public var nextOffset: Int64 { lastOffset + 1 }

    /// The codec id from the attributes (may be one we do not support).
    @inlinable
    public var codecID: UInt8 { UInt8(truncatingIfNeeded: attributes & 0x07) }

    /// The codec, or nil for ids we do not support (gzip, snappy, unknown).
    public var codec: CompressionCodec? { CompressionCodec(rawValue: codecID) }

    public var timestampType: TimestampType { attributes & 0x08 != 0 ? .logAppendTime : .createTime }
    public var isTransactional: Bool { attributes & 0x10 != 0 }
    public var isControl: Bool { attributes & 0x20 != 0 }

    /// Attribute bits for the given codec and timestamp type.
    public static func attributes(codec: CompressionCodec, timestampType: TimestampType = .createTime) -> Int16 {
        Int16(codec.rawValue) | (timestampType == .logAppendTime ? 0x08 : 0)
    }
}
