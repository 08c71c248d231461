import SluiceCore
import SluiceTestSupport
import Testing

/// The batch vectors of storage-format/vectors/ (the index and checkpoint vectors are decoded by
/// SluiceLogTests): decode each with the production decoder, compare every manifest field, expect the
/// named error for the damaged one, and re-encode the decoded values byte for byte.
@Suite("Golden vectors: record batches")
struct BatchGoldenVectorTests {
    static let batchVectorFiles = ["batch-single.hex", "batch-three.hex", "batch-gap.hex", "batch-bad-crc.hex"]

    @Test func theManifestListsEveryBatchVector() throws {
        let manifest = try GoldenVectors.loadManifest()
        #expect(manifest.vectors(ofKind: "batch").map(\.file).sorted() == Self.batchVectorFiles.sorted())
    }

    @Test("batch vector decodes to its manifest and re-encodes byte for byte", arguments: batchVectorFiles)
    func batchVector(file: String) throws {
        let manifest = try GoldenVectors.loadManifest()
        let vector = try #require(manifest.vectors.first { $0.file == file })
        var bytes = try vector.bytes()
        if let expected = vector.expectError {
            let error = #expect(throws: BatchFormatError.self, "\(file)") { try RecordBatch(validating: bytes) }
            #expect(error.map { Self.matches($0, errorClass: expected) } == true, "\(file): \(String(describing: error))")
            if expected == "crc" {
                let stored = try #require(vector.crc)
                let computed = try #require(vector.computedCrc)
                #expect(error == .crcMismatch(stored: stored, computed: computed), "\(file)")
                // Flipping bit 0 of the named byte back repairs the batch.
                var repaired = bytes
                repaired[try #require(vector.corruptBytePosition)] ^= 0x01
                _ = try RecordBatch(validating: repaired)
            }
            // The manifest's records show the damaged bytes with the CRC check turned off.
            bytes = withFixedCRC(bytes)
        }
        let batch = try RecordBatch(validating: bytes)
        let header = batch.header
        try Self.expectHeader(header, equals: vector, storedCRC: vector.expectError == nil ? header.crc : nil)
        let records = try decodeUncompressed(batch.bytes, header: header)
        try Self.expectRecords(records, header: header, equal: try #require(vector.records), file: file)

        // Re-encode from the decoded values alone. `uncompressed(records:…)` takes the base timestamp
        // from the first record, so it applies where that holds (not to batch-gap, whose first record
        // has timestamp delta 3); `assemble` + `encodeRecords` applies to every batch.
        if header.baseTimestamp == records.first?.timestamp {
            var rebuilt = RecordBatch.uncompressed(
                records: records, baseOffset: header.baseOffset, lastOffsetDelta: header.lastOffsetDelta,
                partitionLeaderEpoch: header.partitionLeaderEpoch, producerId: header.producerId,
                producerEpoch: header.producerEpoch, baseSequence: header.baseSequence)
            if header.timestampType == .logAppendTime { rebuilt.stampLogAppendTime(header.maxTimestamp) }
            #expect(rebuilt.bytes == bytes, "\(file): uncompressed(records:…)")
        }
        var section: [UInt8] = []
        RecordBatch.encodeRecords(records, baseOffset: header.baseOffset, baseTimestamp: header.baseTimestamp, into: &section)
        #expect(RecordBatch.assemble(header: header, section: section).bytes == bytes, "\(file): assemble(header:section:)")
        if header.timestampType == .logAppendTime {
            // The same batch as a producer sent it (CreateTime), then stamped by the broker.
            var produced = header
            produced.attributes &= ~0x08
            produced.maxTimestamp = records.map(\.timestamp).max() ?? header.baseTimestamp
            var stamped = RecordBatch.assemble(header: produced, section: section)
            #expect(stamped.bytes != bytes, "\(file)")
            stamped.stampLogAppendTime(header.maxTimestamp)
            #expect(stamped.bytes == bytes, "\(file): stampLogAppendTime")
        }
    }

    /// The manifest's error classes (storage-format/README.md) as `BatchFormatError` cases.
    static func matches(_ error: BatchFormatError, errorClass: String) -> Bool {
        switch (errorClass, error) {
        case ("crc", .crcMismatch), ("magic", .unsupportedMagic), ("codec", .unsupportedCodec),
             ("length", .lengthOutOfRange), ("length", .truncated), ("records", .malformedRecords),
             ("records", .recordCountOutOfRange), ("varint", .malformedRecords),
             ("compression", .decompressionFailed), ("compression", .decompressedTooLarge):
            return true
        default:
            return false
        }
    }

    static func expectHeader(_ header: RecordBatchHeader, equals vector: GoldenVector, storedCRC: UInt32?) throws {
        // Length and CRC come from the bytes; every other field from the manifest.
        let expected = RecordBatchHeader(
            baseOffset: try #require(vector.baseOffset), batchLength: header.batchLength,
            partitionLeaderEpoch: try #require(vector.leaderEpoch), magic: 2, crc: header.crc,
            attributes: try #require(vector.attributes), lastOffsetDelta: try #require(vector.lastOffsetDelta),
            baseTimestamp: try #require(vector.baseTimestamp), maxTimestamp: try #require(vector.maxTimestamp),
            producerId: try #require(vector.producerId), producerEpoch: try #require(vector.producerEpoch),
            baseSequence: try #require(vector.baseSequence), recordCount: try #require(vector.recordCount))
        #expect(header == expected, "\(vector.file)")
        if let storedCRC { #expect(storedCRC == vector.crc, "\(vector.file)") }
    }

    static func expectRecords(_ records: [Record], header: RecordBatchHeader, equal expected: [GoldenRecord], file: String) throws {
        try #require(records.count == expected.count, "\(file)")
        for (index, (record, golden)) in zip(records, expected).enumerated() {
            let at = "\(file) record \(index)"
            #expect(record.offset - header.baseOffset == Int64(golden.offsetDelta), "\(at)")
            #expect(record.timestamp - header.baseTimestamp == golden.timestampDelta, "\(at)")
            #expect(record.offset == golden.offset, "\(at)")
            // Decoding keeps the stored timestamp; under LogAppendTime the effective one is maxTimestamp.
            let effective = header.timestampType == .logAppendTime ? header.maxTimestamp : record.timestamp
            #expect(effective == golden.timestamp, "\(at)")
            #expect(record.key == GoldenVectors.utf8(golden.key), "\(at)")
            #expect(record.value == GoldenVectors.utf8(golden.value), "\(at)")
            #expect(record.headers.map(\.key) == golden.headers.map(\.key), "\(at)")
            #expect(record.headers.map(\.value) == golden.headers.map { GoldenVectors.utf8($0.value) }, "\(at)")
            #expect(record.attributes == 0, "\(at)")
        }
    }

    @Test func theHexParserSkipsCommentsAndWhitespaceAndRefusesAnythingElse() throws {
        #expect(try GoldenVectors.parseHex("# title\n00 ff # comment 12\n\tA0b1\n") == [0x00, 0xFF, 0xA0, 0xB1])
        #expect(try GoldenVectors.parseHex("") == [])
        #expect(throws: GoldenVectorError.self) { try GoldenVectors.parseHex("0") }
        #expect(throws: GoldenVectorError.self) { try GoldenVectors.parseHex("0g") }
    }
}
