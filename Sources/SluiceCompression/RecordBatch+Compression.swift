import SluiceCore

extension RecordBatch {
    /// Builds a batch of `records` (absolute offsets and timestamps) with its records section compressed
    /// by `codec`. The base offset is the first record's unless given; the broker restamps it on append.
    public static func build(
        records: [Record],
        codec: CompressionCodec = .none,
        baseOffset: Int64? = nil,
        lastOffsetDelta: Int32? = nil,
        partitionLeaderEpoch: Int32 = -1,
        producerId: Int64 = -1,
        producerEpoch: Int16 = -1,
        baseSequence: Int32 = -1,
        timestampType: TimestampType = .createTime
    ) throws -> RecordBatch {
        let base = baseOffset ?? records.first?.offset ?? 0
        let baseTimestamp = records.first?.timestamp ?? 0
        var section: [UInt8] = []
        encodeRecords(records, baseOffset: base, baseTimestamp: baseTimestamp, into: &section)
        let header = RecordBatchHeader(
            baseOffset: base,
            partitionLeaderEpoch: partitionLeaderEpoch,
            attributes: RecordBatchHeader.attributes(codec: codec, timestampType: timestampType),
            lastOffsetDelta: lastOffsetDelta ?? Int32(clamping: (records.last?.offset ?? base) - base),
            baseTimestamp: baseTimestamp,
            maxTimestamp: records.map(\.timestamp).max() ?? baseTimestamp,
            producerId: producerId,
            producerEpoch: producerEpoch,
            baseSequence: baseSequence,
            recordCount: Int32(records.count)
        )
        return assemble(header: header, section: try Codecs.compress(section, codec: codec))
    }

    /// The records section, decompressed (bounded by `limits.batchDecompressedBytesMax`).
    public func uncompressedSection(limits: Limits = .default) throws -> [UInt8] {
        try bytes.withUnsafeBytes { raw in
            try RecordBatch.uncompressedSection(raw, limits: limits)
        }
    }

    /// The decompressed records section of the batch held in `batch` (header included).
    public static func uncompressedSection(
        _ batch: UnsafeRawBufferPointer,
        limits: Limits = .default
    ) throws -> [UInt8] {
        let header = try validateHeader(batch, limits: limits)
        guard batch.count >= header.totalSize else {
            throw BatchFormatError.truncated(needed: header.totalSize, available: batch.count)
        }
        guard let codec = header.codec else { throw BatchFormatError.unsupportedCodec(header.codecID) }
        let section = UnsafeRawBufferPointer(rebasing: batch[RecordBatchHeader.size..<header.totalSize])
        return try Codecs.decompress(section, codec: codec, limit: limits.batchDecompressedBytesMax)
    }

    /// Decodes every record, decompressing first when needed. Does not check the CRC: call `validate`
    /// (or construct with `init(validating:)`) for untrusted bytes.
    public func records(limits: Limits = .default) throws -> [Record] {
        try bytes.withUnsafeBytes { raw in try RecordBatch.records(in: raw, limits: limits) }
    }

    /// Decodes every record of the batch held in `batch`.
    public static func records(in batch: UnsafeRawBufferPointer, limits: Limits = .default) throws -> [Record] {
        let header = try validateHeader(batch, limits: limits)
        guard batch.count >= header.totalSize else {
            throw BatchFormatError.truncated(needed: header.totalSize, available: batch.count)
        }
        if header.codec == CompressionCodec.none {
            let section = UnsafeRawBufferPointer(rebasing: batch[RecordBatchHeader.size..<header.totalSize])
            return try decodeRecords(section: section, header: header, limits: limits)
        }
        let section = try uncompressedSection(batch, limits: limits)
        return try section.withUnsafeBytes { raw in
            try decodeRecords(section: raw, header: header, limits: limits)
        }
    }
}
