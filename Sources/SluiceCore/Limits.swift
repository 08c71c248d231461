/// Named bounds on everything the storage and wire layers accept.
///
/// Every buffer sized from input is checked against one of these before it is allocated, so a
/// malformed length field produces a typed error instead of an allocation of gigabytes.
public struct Limits: Sendable, Hashable {
    /// Largest encoded record batch (header included) accepted on append, on read and during recovery.
    public var batchBytesMax: Int
    /// Largest records section a compressed batch may decompress to.
    public var batchDecompressedBytesMax: Int
    /// Most records one batch may declare.
    public var batchRecordsMax: Int
    /// Most headers one record may carry.
    public var recordHeadersMax: Int

    public init(
        batchBytesMax: Int = 16 * 1024 * 1024,
        batchDecompressedBytesMax: Int = 64 * 1024 * 1024,
        batchRecordsMax: Int = 1 << 20,
        recordHeadersMax: Int = 1024
    ) {
        precondition(batchBytesMax >= RecordBatchHeader.size, "batchBytesMax below the batch header size")
        precondition(batchDecompressedBytesMax > 0 && batchRecordsMax > 0 && recordHeadersMax >= 0)
        self.batchBytesMax = batchBytesMax
        self.batchDecompressedBytesMax = batchDecompressedBytesMax
        self.batchRecordsMax = batchRecordsMax
        self.recordHeadersMax = recordHeadersMax
    }

    /// The defaults used where no configuration says otherwise.
    public static let `default` = Limits()
}
