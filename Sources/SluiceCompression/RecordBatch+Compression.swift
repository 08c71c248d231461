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
        if codec == .none {
            return uncompressed(
                records: records, baseOffset: baseOffset, lastOffsetDelta: lastOffsetDelta,
                partitionLeaderEpoch: partitionLeaderEpoch, producerId: producerId, producerEpoch: producerEpoch,
                baseSequence: baseSequence, timestampType: timestampType)
        }
        let header = RecordBatchHeader(
            describing: records, codec: codec, baseOffset: baseOffset, lastOffsetDelta: lastOffsetDelta,
            partitionLeaderEpoch: partitionLeaderEpoch, producerId: producerId, producerEpoch: producerEpoch,
            baseSequence: baseSequence, timestampType: timestampType)
        var section: [UInt8] = []
        encodeRecords(records, baseOffset: header.baseOffset, baseTimestamp: header.baseTimestamp, into: &section)
        let bound = RecordBatchHeader.size + Codecs.compressBound(section.count, codec: codec)
        let bytes = try [UInt8](unsafeUninitializedCapacity: bound) { buffer, written in
            let destination = UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[RecordBatchHeader.size...])
            let compressed = try section.withUnsafeBytes { try Codecs.compress($0, codec: codec, into: destination) }
            written = RecordBatchHeader.size + compressed
        }
        return finish(header: header, bytes: bytes)
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
