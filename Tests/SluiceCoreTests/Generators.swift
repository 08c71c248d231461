import SluiceCore
import SluiceTestSupport

// Seeded generators of bytes, varint values, records and batches for the SluiceCore tests. Every test
// that uses them puts `rng.seed` in its failure messages; `SLUICE_TEST_SEED=<seed>` replays a run.

extension SeededRandom {
    /// An Int64 whose magnitude is spread over all bit widths (uniform values would almost all be huge).
    mutating func spreadInt64() -> Int64 {
        Int64(bitPattern: next()) >> Int64(int(0...63))
    }

    /// An Int32 spread over all bit widths.
    mutating func spreadInt32() -> Int32 {
        Int32(truncatingIfNeeded: Int64(bitPattern: next()) >> Int64(int(32...63)))
    }

    /// Bytes or nil (null), with lengths up to `maxCount`.
    mutating func nullableBytes(maxCount: Int, nullChance: Double = 0.2) -> [UInt8]? {
        chance(nullChance) ? nil : fastBytes(int(0...maxCount))
    }

    /// A header key: ASCII, multi-byte UTF-8 or empty.
    mutating func headerKey() -> String {
        let alphabet: [String] = ["a", "b", "trace", "-", "é", "日本", "🙂", "x1", "_", "Z"]
        return (0..<int(0...4)).map { _ in alphabet[int(0...(alphabet.count - 1))] }.joined()
    }

    /// Records for one batch: `count` records (random in 0...maxCount unless given), offsets from
    /// `baseOffset` either consecutive or with gaps (as compaction leaves them), timestamps around
    /// `baseTimestamp` with deltas of either sign, null and non-null keys, values and header values.
    mutating func records(
        maxCount: Int = 200,
        count: Int? = nil,
        baseOffset: Int64,
        baseTimestamp: Int64,
        gaps: Bool = false,
        maxValueBytes: Int = 100
    ) -> [Record] {
        let n = count ?? int(0...maxCount)
        var offset = baseOffset + (gaps ? Int64(int(0...3)) : 0)
        var records: [Record] = []
        records.reserveCapacity(n)
        for i in 0..<n {
            if i > 0 { offset += gaps ? Int64(int(1...5)) : 1 }
            let timestamp = i == 0 ? baseTimestamp : baseTimestamp + Int64(int(-100_000...100_000))
            let headers = (0..<int(0...3)).map { _ in
                RecordHeader(key: headerKey(), value: nullableBytes(maxCount: 12, nullChance: 0.3))
            }
            records.append(Record(
                offset: offset, timestamp: timestamp,
                key: nullableBytes(maxCount: 24), value: nullableBytes(maxCount: maxValueBytes),
                headers: chance(0.5) ? headers : []))
        }
        return records
    }

    /// A random uncompressed batch built by `RecordBatch.uncompressed` with random header fields.
    mutating func batch(maxCount: Int = 200, maxValueBytes: Int = 100) -> RecordBatch {
        let base = Int64(int(0...(1 << 40)))
        let records = records(maxCount: maxCount, baseOffset: base,
                              baseTimestamp: 1_700_000_000_000 + Int64(int(0...1_000_000)),
                              gaps: chance(0.3), maxValueBytes: maxValueBytes)
        // Compacted batches may end with empty offset slots: lastOffsetDelta above the last record's delta.
        let lastDelta = Int32((records.last?.offset ?? base) - base) + Int32(chance(0.2) ? int(0...5) : 0)
        return RecordBatch.uncompressed(
            records: records, baseOffset: base, lastOffsetDelta: lastDelta,
            partitionLeaderEpoch: Int32(int(-1...1000)), producerId: Int64(int(-1...100_000)),
            producerEpoch: Int16(int(-1...100)), baseSequence: Int32(int(-1...100_000)),
            timestampType: chance(0.2) ? .logAppendTime : .createTime)
    }
}

/// The records section of a batch (bytes 61 to the end).
func recordsSection(_ bytes: [UInt8]) -> [UInt8] {
    Array(bytes[RecordBatchHeader.size...])
}

/// Validates `bytes` as one whole batch and decodes its (uncompressed) records.
func validateAndDecode(_ bytes: [UInt8], limits: Limits = .default) throws -> [Record] {
    let batch = try RecordBatch(validating: bytes, limits: limits)
    return try decodeUncompressed(batch.bytes, header: batch.header, limits: limits)
}

/// Decodes the records section of `bytes` with `header`, skipping validation.
func decodeUncompressed(_ bytes: [UInt8], header: RecordBatchHeader, limits: Limits = .default) throws -> [Record] {
    try bytes.withUnsafeBytes { raw in
        try RecordBatch.decodeRecords(
            section: UnsafeRawBufferPointer(rebasing: raw[RecordBatchHeader.size...]), header: header, limits: limits)
    }
}

/// Whether `error` is `BatchFormatError.malformedRecords`.
func isMalformedRecords(_ error: (any Error)?) -> Bool {
    if case .malformedRecords = error as? BatchFormatError { return true }
    return false
}
