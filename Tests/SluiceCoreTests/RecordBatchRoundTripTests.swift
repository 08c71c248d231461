import SluiceCore
import SluiceTestSupport
import Testing

/// Building, validating, decoding and re-encoding uncompressed batches, and stamping the header fields
/// the broker writes in place.
@Suite("Record batch round trip")
struct RecordBatchRoundTripTests {
    @Test func randomBatchesValidateDecodeToTheirRecordsAndReencodeByteForByte() throws {
        var rng = SeededRandom.fromEnvironment()
        for round in 0..<60 {
            let base = Int64(rng.int(0...(1 << 40)))
            let records = rng.records(maxCount: 200, baseOffset: base,
                                      baseTimestamp: 1_700_000_000_000 + Int64(rng.int(-1_000_000...1_000_000)),
                                      gaps: rng.chance(0.3))
            let epoch = Int32(rng.int(-1...1000))
            let producerId = Int64(rng.int(-1...1_000_000))
            let producerEpoch = Int16(rng.int(-1...30000))
            let sequence = Int32(rng.int(-1...1_000_000))
            let type: TimestampType = rng.chance(0.3) ? .logAppendTime : .createTime
            let built = RecordBatch.uncompressed(
                records: records, baseOffset: base, partitionLeaderEpoch: epoch, producerId: producerId,
                producerEpoch: producerEpoch, baseSequence: sequence, timestampType: type)
            let context = "round \(round), \(records.count) records, seed \(rng.seed)"

            let batch = try RecordBatch(validating: built.bytes)
            let header = batch.header
            #expect(header.baseOffset == base && header.partitionLeaderEpoch == epoch, "\(context)")
            #expect(header.producerId == producerId && header.producerEpoch == producerEpoch, "\(context)")
            #expect(header.baseSequence == sequence && header.timestampType == type, "\(context)")
            #expect(header.codec == CompressionCodec.none && header.recordCount == Int32(records.count), "\(context)")
            #expect(header.lastOffsetDelta == Int32((records.last?.offset ?? base) - base), "\(context)")
            #expect(header.baseTimestamp == (records.first?.timestamp ?? 0), "\(context)")
            #expect(header.maxTimestamp == (records.map(\.timestamp).max() ?? 0), "\(context)")
            #expect(header.totalSize == batch.bytes.count && header.crc == batch.storedCRC, "\(context)")

            let decoded = try decodeUncompressed(batch.bytes, header: header)
            #expect(decoded == records, "\(context)")

            // Decode → encode from the decoded header fields reproduces the bytes, by both encoders.
            let again = RecordBatch.uncompressed(
                records: decoded, baseOffset: header.baseOffset, lastOffsetDelta: header.lastOffsetDelta,
                partitionLeaderEpoch: header.partitionLeaderEpoch, producerId: header.producerId,
                producerEpoch: header.producerEpoch, baseSequence: header.baseSequence, timestampType: header.timestampType)
            #expect(again.bytes == batch.bytes, "uncompressed(records:…), \(context)")
            var section: [UInt8] = []
            RecordBatch.encodeRecords(decoded, baseOffset: header.baseOffset, baseTimestamp: header.baseTimestamp, into: &section)
            #expect(RecordBatch.assemble(header: header, section: section).bytes == batch.bytes, "assemble, \(context)")
        }
    }

    @Test func emptyAndGappedBatchesRoundTrip() throws {
        // As compaction leaves them: no records at all, or gaps with empty slots after the last record.
        let empty = RecordBatch.uncompressed(records: [], baseOffset: 500, lastOffsetDelta: 9, producerId: 7)
        let header = try RecordBatch(validating: empty.bytes).header
        #expect(header.recordCount == 0 && header.lastOffsetDelta == 9 && header.nextOffset == 510)
        #expect(empty.bytes.count == RecordBatchHeader.size && header.batchLength == 49)
        #expect(try validateAndDecode(empty.bytes).isEmpty)

        let records = [Record(offset: 103, timestamp: 5, key: [1], value: nil),
                       Record(offset: 107, timestamp: 4, key: nil, value: [])]
        let gapped = RecordBatch.uncompressed(records: records, baseOffset: 100, lastOffsetDelta: 9)
        #expect(try validateAndDecode(gapped.bytes) == records)
        #expect(gapped.header.maxTimestamp == 5 && gapped.header.baseTimestamp == 5)
    }

    @Test func nullAndEmptyFieldsStayDistinct() throws {
        let records = [
            Record(offset: 0, timestamp: 1, key: nil, value: nil, headers: [RecordHeader(key: "", value: nil)]),
            Record(offset: 1, timestamp: 1, key: [], value: [], headers: [RecordHeader(key: "", value: [])]),
        ]
        let decoded = try validateAndDecode(RecordBatch.uncompressed(records: records).bytes)
        #expect(decoded == records)
        #expect(decoded[0].key == nil && decoded[1].key == [] && decoded[0].headers[0].value == nil)
    }

    @Test func settingBaseOffsetAndLeaderEpochKeepsTheCRCAndTheBatchValid() throws {
        var rng = SeededRandom.fromEnvironment()
        for _ in 0..<50 {
            var batch = rng.batch(maxCount: 20)
            let before = batch.bytes
            let crc = batch.storedCRC
            let records = try validateAndDecode(before)
            let newBase = Int64(rng.int(0...(1 << 50)))
            let newEpoch = Int32(rng.int(-1...Int(Int32.max)))
            batch.baseOffset = newBase
            batch.partitionLeaderEpoch = newEpoch
            let context = "base \(newBase), epoch \(newEpoch), seed \(rng.seed)"
            #expect(batch.storedCRC == crc, "\(context)")
            #expect(batch.bytes.withUnsafeBytes { RecordBatch.computeCRC($0) } == crc, "\(context)")
            // Only bytes 0..<8 and 12..<16 changed.
            #expect(Array(batch.bytes[8..<12]) == Array(before[8..<12]) && Array(batch.bytes[16...]) == Array(before[16...]), "\(context)")
            let header = try RecordBatch(validating: batch.bytes).header
            #expect(header.baseOffset == newBase && header.partitionLeaderEpoch == newEpoch, "\(context)")
            #expect(batch.lastOffset == newBase + Int64(header.lastOffsetDelta) && batch.nextOffset == batch.lastOffset + 1, "\(context)")
            // Records move with the base offset; everything else about them stays.
            let moved = try validateAndDecode(batch.bytes)
            let shift = newBase - (before.getBigEndian(at: 0) as Int64)
            #expect(moved == records.map { var r = $0; r.offset += shift; return r }, "\(context)")
        }
    }

    @Test func stampingLogAppendTimeSetsTheTypeAndMaxTimestampAndUpdatesTheCRC() throws {
        var rng = SeededRandom.fromEnvironment()
        for _ in 0..<50 {
            let original = rng.batch(maxCount: 20)
            var batch = original
            let records = try validateAndDecode(batch.bytes)
            let appendTime = Int64(rng.int(0...Int(Int64.max >> 8)))
            batch.stampLogAppendTime(appendTime)
            let context = "append time \(appendTime), seed \(rng.seed)"
            let header = try RecordBatch(validating: batch.bytes).header
            #expect(header.timestampType == .logAppendTime && header.maxTimestamp == appendTime, "\(context)")
            #expect(header.codec == original.header.codec && header.baseTimestamp == original.baseTimestamp, "\(context)")
            #expect(batch.storedCRC == batch.bytes.withUnsafeBytes { RecordBatch.computeCRC($0) }, "\(context)")
            if original.header.timestampType == .createTime && original.maxTimestamp != appendTime {
                #expect(batch.storedCRC != original.storedCRC, "\(context)")
            }
            // Only the attributes, the max timestamp and the CRC changed.
            var expected = original.bytes
            expected.setBigEndian(original.header.attributes | 0x08, at: RecordBatchHeader.Field.attributes)
            expected.setBigEndian(appendTime, at: RecordBatchHeader.Field.maxTimestamp)
            #expect(withFixedCRC(expected) == batch.bytes, "\(context)")
            // The stored record timestamps are untouched.
            #expect(try validateAndDecode(batch.bytes) == records, "\(context)")
        }
    }

    @Test func attributeBitsAreReadFromTheHeader() {
        var header = RecordBatchHeader(attributes: RecordBatchHeader.attributes(codec: .zstd, timestampType: .logAppendTime))
        #expect(header.attributes == 0x0C && header.codec == .zstd && header.timestampType == .logAppendTime)
        header.attributes = 0x30 | 0x03
        #expect(header.isTransactional && header.isControl && header.codec == .lz4 && header.timestampType == .createTime)
        header.attributes = 0x02
        #expect(header.codec == nil && header.codecID == 2)
    }

    @Test func headerFieldsSitAtTheDocumentedPositions() throws {
        let header = RecordBatchHeader(
            baseOffset: 0x0102_0304_0506_0708, batchLength: 0x1112_1314, partitionLeaderEpoch: 0x2122_2324,
            magic: 2, crc: 0x3132_3334, attributes: 0x4142, lastOffsetDelta: 0x5152_5354,
            baseTimestamp: 0x6162_6364_6566_6768, maxTimestamp: 0x7172_7374_7576_7778,
            producerId: 0x0A0B_0C0D_0E0F_1A1B, producerEpoch: 0x2A2B, baseSequence: 0x3A3B_3C3D, recordCount: 0x4A4B_4C4D)
        var bytes: [UInt8] = []
        header.append(to: &bytes)
        #expect(bytes.count == RecordBatchHeader.size)
        #expect(bytes == [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x11, 0x12, 0x13, 0x14, 0x21, 0x22, 0x23, 0x24,
                          0x02, 0x31, 0x32, 0x33, 0x34, 0x41, 0x42, 0x51, 0x52, 0x53, 0x54,
                          0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78,
                          0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x1A, 0x1B, 0x2A, 0x2B, 0x3A, 0x3B, 0x3C, 0x3D,
                          0x4A, 0x4B, 0x4C, 0x4D])
        let parsed = try #require(bytes.withUnsafeBytes { RecordBatchHeader(parsing: $0) })
        #expect(parsed == header)
        #expect(bytes.withUnsafeBytes { RecordBatchHeader(parsing: UnsafeRawBufferPointer(rebasing: $0[..<60])) } == nil)
    }
}

/// The smaller pieces of SluiceCore: error descriptions, codec names, the clocks.
@Suite("SluiceCore odds and ends")
struct CoreMiscellanyTests {
    @Test func errorDescriptionsNameTheValues() {
        #expect("\(BatchFormatError.crcMismatch(stored: 0xAB, computed: 0x1234_5678))"
            == "CRC-32C mismatch: stored 0x000000ab, computed 0x12345678")
        #expect("\(BatchFormatError.lengthOutOfRange(length: 48, minimum: 49, maximum: 100))" == "batch length 48 outside 49...100")
        #expect("\(BatchFormatError.unsupportedCodec(2))".contains("codec id 2"))
        #expect("\(BatchFormatError.truncated(needed: 61, available: 3))".contains("61"))
        #expect("\(BatchFormatError.decompressedTooLarge(limit: 65536))".contains("65536"))
        #expect("\(BatchFormatError.offsetsOutOfOrder(baseOffset: 5, expectedAtLeast: 9))".contains("below 9"))
    }

    @Test func codecNamesParseAndPrint() {
        for codec in CompressionCodec.allCases {
            #expect(CompressionCodec(name: codec.description) == codec)
            #expect(CompressionCodec(name: codec.description.uppercased()) == codec)
        }
        #expect(CompressionCodec(name: "uncompressed") == CompressionCodec.none)
        #expect(CompressionCodec(name: "gzip") == nil && CompressionCodec(name: "") == nil)
        #expect(CompressionCodec.allCases.map(\.rawValue) == [0, 3, 4])
    }

    @Test func clocksTellEpochMillisecondsAndNeverRunBackwards() {
        let now = SystemWallClock().nowMilliseconds()
        #expect(now > 1_600_000_000_000 && now < 4_000_000_000_000, "\(now) ms is not a plausible epoch time")
        var previous = MonotonicClock.nowNanoseconds()
        for _ in 0..<1000 {
            let next = MonotonicClock.nowNanoseconds()
            #expect(next >= previous)
            previous = next
        }
    }
}
