/// Why bytes are not a valid record batch. The storage layer wraps it with the file and position.
public enum BatchFormatError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Fewer bytes than the header (or the declared length) needs.
    case truncated(needed: Int, available: Int)
    /// The batch length field is below the header size or above `Limits.batchBytesMax`.
    case lengthOutOfRange(length: Int64, minimum: Int, maximum: Int)
    /// Magic byte is not 2.
    case unsupportedMagic(Int8)
    /// The stored CRC-32C does not match the bytes.
    case crcMismatch(stored: UInt32, computed: UInt32)
    /// A codec id other than none, lz4 or zstd.
    case unsupportedCodec(UInt8)
    /// Record count negative or above `Limits.batchRecordsMax`.
    case recordCountOutOfRange(Int32, maximum: Int)
    /// The records section does not parse; `detail` says where and what.
    case malformedRecords(String)
    /// A compressed section decompresses to more than `Limits.batchDecompressedBytesMax`.
    case decompressedTooLarge(limit: Int)
    /// A compressed section is not a valid frame of its codec.
    case decompressionFailed(String)
    /// The codec library refused to compress (out of memory, an internal error).
    case compressionFailed(String)
    /// A batch in a log starts below the offset after the batch before it.
    case offsetsOutOfOrder(baseOffset: Int64, expectedAtLeast: Int64)

    public var description: String {
        switch self {
        case .truncated(let needed, let available):
            return "batch truncated: needs \(needed) bytes, only \(available) present"
        case .lengthOutOfRange(let length, let minimum, let maximum):
            return "batch length \(length) outside \(minimum)...\(maximum)"
        case .unsupportedMagic(let magic):
            return "unsupported magic byte \(magic) (expected 2)"
        case .crcMismatch(let stored, let computed):
            return "CRC-32C mismatch: stored \(hex(stored)), computed \(hex(computed))"
        case .unsupportedCodec(let codec):
            return "unsupported compression codec id \(codec) (supported: 0 none, 3 lz4, 4 zstd)"
        case .recordCountOutOfRange(let count, let maximum):
            return "record count \(count) outside 0...\(maximum)"
        case .malformedRecords(let detail):
            return "malformed records: \(detail)"
        case .decompressedTooLarge(let limit):
            return "records decompress to more than the limit of \(limit) bytes"
        case .decompressionFailed(let detail):
            return "decompression failed: \(detail)"
        case .compressionFailed(let detail):
            return "compression failed: \(detail)"
        case .offsetsOutOfOrder(let base, let expected):
            return "batch base offset \(base) is below \(expected), the offset after the previous batch"
        }
    }
}

@usableFromInline
func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
