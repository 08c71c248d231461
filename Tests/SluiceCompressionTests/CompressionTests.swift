import SluiceCompression
import SluiceCore
import SluiceTestSupport
import Testing

/// The codecs on their own: round trips over sizes and kinds of input, the frame formats, and the
/// bound on decompressed size.
@Suite("Codecs")
struct CodecTests {
    static func roundTrip(_ input: [UInt8], _ codec: CompressionCodec) throws -> [UInt8] {
        let compressed = try Codecs.compress(input, codec: codec)
        return try compressed.withUnsafeBytes { try Codecs.decompress($0, codec: codec, limit: input.count) }
    }

    @Test("empty, tiny, 1 MiB random and 1 MiB JSON-like inputs round-trip", arguments: CompressionCodec.allCases)
    func fixedInputsRoundTrip(codec: CompressionCodec) throws {
        var rng = SeededRandom.fromEnvironment()
        let inputs: [(String, [UInt8])] = [
            ("empty", []), ("one byte", [0x42]), ("hello", Array("hello".utf8)),
            ("1 MiB random", rng.fastBytes(1 << 20)), ("1 MiB JSON", rng.jsonLike(1 << 20)),
            ("1 MiB zeros", [UInt8](repeating: 0, count: 1 << 20)),
        ]
        for (name, input) in inputs {
            let compressed = try Codecs.compress(input, codec: codec)
            let output = try compressed.withUnsafeBytes { try Codecs.decompress($0, codec: codec, limit: input.count) }
            #expect(output == input, "\(codec) \(name), seed \(rng.seed)")
            if codec == .none { #expect(compressed == input, "\(name)") }
            if name == "1 MiB JSON" && codec != .none {
                #expect(compressed.count < input.count / 2, "\(codec) should shrink JSON: \(compressed.count) bytes")
            }
        }
    }

    @Test("many random sizes and kinds of input round-trip", arguments: CompressionCodec.allCases)
    func randomInputsRoundTrip(codec: CompressionCodec) throws {
        var rng = SeededRandom.fromEnvironment()
        for round in 0..<300 {
            let size = rng.chance(0.8) ? rng.int(0...4096) : rng.int(0...(200 * 1024))
            let input = rng.mixedInput(size)
            let output = try Self.roundTrip(input, codec)
            #expect(output == input, "\(codec) round \(round), \(size) bytes, seed \(rng.seed)")
        }
    }

    @Test("the limit is inclusive: exactly the input size passes, one byte less fails", arguments: CompressionCodec.allCases)
    func limitIsInclusive(codec: CompressionCodec) throws {
        var rng = SeededRandom.fromEnvironment()
        for size in [1, 100, 65536, 65537, 200_000] {
            let input = rng.mixedInput(size)
            let compressed = try Codecs.compress(input, codec: codec)
            let exact = try compressed.withUnsafeBytes { try Codecs.decompress($0, codec: codec, limit: size) }
            #expect(exact == input, "\(codec), \(size) bytes, seed \(rng.seed)")
            #expect(throws: BatchFormatError.decompressedTooLarge(limit: size - 1), "\(codec), \(size) bytes, seed \(rng.seed)") {
                try compressed.withUnsafeBytes { try Codecs.decompress($0, codec: codec, limit: size - 1) }
            }
        }
    }

    @Test("1 MiB of zeros decompressed with a 64 KiB limit is too large", arguments: CompressionCodec.allCases)
    func decompressionIsBounded(codec: CompressionCodec) throws {
        let compressed = try Codecs.compress([UInt8](repeating: 0, count: 1 << 20), codec: codec)
        if codec != .none { #expect(compressed.count < 8192, "\(codec) frame of zeros is \(compressed.count) bytes") }
        #expect(throws: BatchFormatError.decompressedTooLarge(limit: 64 * 1024)) {
            try compressed.withUnsafeBytes { try Codecs.decompress($0, codec: codec, limit: 64 * 1024) }
        }
    }

    /// A zstd frame without a content size: eight RLE blocks of 128 KiB zeros, 38 bytes in all. Only the
    /// streaming check can stop it, since there is no declared size to check up front.
    static let zstdFrameWithoutContentSize: [UInt8] = {
        var frame: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x38]  // magic; no size, no checksum; window 128 KiB
        for block in 0..<8 {
            let header = UInt32(128 * 1024) << 3 | 1 << 1 | (block == 7 ? 1 : 0)  // size, type RLE, last
            frame += [UInt8(header & 0xFF), UInt8(header >> 8 & 0xFF), UInt8(header >> 16 & 0xFF), 0x00]
        }
        return frame
    }()

    @Test func zstdFrameWithoutAContentSizeIsBoundedWhileStreaming() throws {
        let frame = Self.zstdFrameWithoutContentSize
        let whole = try frame.withUnsafeBytes { try Codecs.decompress($0, codec: .zstd, limit: 1 << 20) }
        #expect(whole == [UInt8](repeating: 0, count: 1 << 20))
        #expect(throws: BatchFormatError.decompressedTooLarge(limit: 64 * 1024)) {
            try frame.withUnsafeBytes { try Codecs.decompress($0, codec: .zstd, limit: 64 * 1024) }
        }
    }

    @Test func lz4WritesAnLZ4FrameAndZstdAZstdFrame() throws {
        for input in [[], Array("hello, frames".utf8), [UInt8](repeating: 7, count: 100_000)] {
            #expect(Array(try Codecs.compress(input, codec: .lz4).prefix(4)) == [0x04, 0x22, 0x4D, 0x18])
            #expect(Array(try Codecs.compress(input, codec: .zstd).prefix(4)) == [0x28, 0xB5, 0x2F, 0xFD])
        }
    }

    @Test func lz4RefusesBytesAfterItsFrame() throws {
        let frame = try Codecs.compress(Array("payload".utf8), codec: .lz4)
        let error = #expect(throws: BatchFormatError.self) {
            try (frame + [0, 0, 0, 0]).withUnsafeBytes { try Codecs.decompress($0, codec: .lz4, limit: 1024) }
        }
        guard case .decompressionFailed = error else { Issue.record("got \(String(describing: error))"); return }
    }

    @Test func zstdReadsConcatenatedFramesButRefusesOtherTrailingBytes() throws {
        // What the decoder does today (storage-format/record-batch.md says so): zstd's streaming API
        // reads frame after frame, while lz4 insists on exactly one.
        let a = try Codecs.compress(Array("first ".utf8), codec: .zstd)
        let b = try Codecs.compress(Array("second".utf8), codec: .zstd)
        let both = try (a + b).withUnsafeBytes { try Codecs.decompress($0, codec: .zstd, limit: 1024) }
        #expect(both == Array("first second".utf8))
        let error = #expect(throws: BatchFormatError.self) {
            try (a + [0, 0, 0, 0]).withUnsafeBytes { try Codecs.decompress($0, codec: .zstd, limit: 1024) }
        }
        guard case .decompressionFailed = error else { Issue.record("got \(String(describing: error))"); return }
    }

    @Test("every strict prefix of a frame is refused", arguments: [CompressionCodec.lz4, .zstd])
    func truncatedFramesAreRefused(codec: CompressionCodec) throws {
        var rng = SeededRandom.fromEnvironment()
        let input = rng.mixedInput(5000)
        let frame = try Codecs.compress(input, codec: codec)
        for cut in 0..<frame.count {
            let error = #expect(throws: BatchFormatError.self, "\(codec) cut at \(cut) of \(frame.count), seed \(rng.seed)") {
                try Array(frame[..<cut]).withUnsafeBytes { try Codecs.decompress($0, codec: codec, limit: 1 << 20) }
            }
            if case .decompressionFailed = error {} else {
                Issue.record("\(codec) cut at \(cut): \(String(describing: error)), seed \(rng.seed)")
            }
        }
    }
}

/// Compressed batches: building, validating and decoding through `RecordBatch`, and damaged sections.
@Suite("Compressed batches")
struct CompressedBatchTests {
    @Test("build → validate → records() gives the input back, with the codec in the attributes", arguments: CompressionCodec.allCases)
    func buildValidateDecode(codec: CompressionCodec) throws {
        var rng = SeededRandom.fromEnvironment()
        for round in 0..<25 {
            let records = rng.records(count: round == 0 ? 0 : rng.int(1...200))
            let type: TimestampType = rng.chance(0.3) ? .logAppendTime : .createTime
            let built = try RecordBatch.build(records: records, codec: codec, producerId: 9, timestampType: type)
            let context = "\(codec) round \(round), \(records.count) records, seed \(rng.seed)"
            let batch = try RecordBatch(validating: built.bytes)
            let header = batch.header
            #expect(header.codec == codec && header.codecID == codec.rawValue, "\(context)")
            #expect(header.attributes & 0x07 == Int16(codec.rawValue) && header.timestampType == type, "\(context)")
            #expect(header.attributes & ~0x0F == 0, "reserved bits written as 0, \(context)")
            #expect(header.recordCount == Int32(records.count) && header.producerId == 9, "\(context)")
            #expect(try batch.records() == records, "\(context)")

            var plain: [UInt8] = []
            RecordBatch.encodeRecords(records, baseOffset: header.baseOffset, baseTimestamp: header.baseTimestamp, into: &plain)
            #expect(try batch.uncompressedSection() == plain, "\(context)")
            let section = Array(batch.bytes[RecordBatchHeader.size...])
            switch codec {
            case .none: #expect(section == plain, "\(context)")
            case .lz4: #expect(Array(section.prefix(4)) == [0x04, 0x22, 0x4D, 0x18], "\(context)")
            case .zstd: #expect(Array(section.prefix(4)) == [0x28, 0xB5, 0x2F, 0xFD], "\(context)")
            }
            // The uncompressed builder and `build(codec: .none)` agree byte for byte.
            if codec == .none {
                #expect(built.bytes == RecordBatch.uncompressed(records: records, producerId: 9, timestampType: type).bytes, "\(context)")
            }
        }
    }

    @Test("a batch that decompresses past batchDecompressedBytesMax is refused", arguments: [CompressionCodec.lz4, .zstd])
    func decompressedSizeIsBoundedByTheLimits(codec: CompressionCodec) throws {
        let records = (0..<8).map { Record(offset: Int64($0), timestamp: 0, key: nil, value: [UInt8](repeating: 0, count: 32 * 1024)) }
        let batch = try RecordBatch.build(records: records, codec: codec)
        #expect(batch.bytes.count < 4096, "\(codec) batch is \(batch.bytes.count) bytes")
        let limits = Limits(batchDecompressedBytesMax: 64 * 1024)
        _ = try RecordBatch(validating: batch.bytes, limits: limits)  // the stored size is small
        #expect(throws: BatchFormatError.decompressedTooLarge(limit: 64 * 1024)) { try batch.records(limits: limits) }
        #expect(throws: BatchFormatError.decompressedTooLarge(limit: 64 * 1024)) { try batch.uncompressedSection(limits: limits) }
        #expect(try batch.records() == records)
    }

    @Test("seeded corruption of compressed sections ends in success or a BatchFormatError", arguments: [CompressionCodec.lz4, .zstd])
    func corruptSectionsNeverCrash(codec: CompressionCodec) throws {
        var rng = SeededRandom.fromEnvironment()
        let originals = try (0..<10).map { _ in try RecordBatch.build(records: rng.records(count: rng.int(1...30), maxValueBytes: 120), codec: codec) }
        var failures = 0
        for round in 0..<400 {
            let original = originals[rng.int(0...(originals.count - 1))]
            let header = original.header
            let section = Array(original.bytes[RecordBatchHeader.size...])
            let context = "\(codec) round \(round), seed \(rng.seed)"
            var bytes: [UInt8]
            let truncated = rng.chance(0.3)
            if truncated {
                // A consistent header (length, CRC) around a cut frame: always refused.
                bytes = RecordBatch.assemble(header: header, section: Array(section[..<rng.int(0...(section.count - 1))])).bytes
            } else {
                bytes = original.bytes
                for _ in 0..<rng.int(1...3) {
                    bytes[rng.int(RecordBatchHeader.size...(bytes.count - 1))] = UInt8(rng.int(0...255))
                }
                bytes = withFixedCRC(bytes)  // so the damage reaches the decompressor
            }
            do {
                let batch = try RecordBatch(validating: bytes)
                _ = try batch.records()
                #expect(!truncated, "a cut frame decoded, \(context)")
            } catch is BatchFormatError {
                failures += 1
            } catch {
                Issue.record("untyped error \(error), \(context)")
            }
        }
        #expect(failures > 100, "\(codec): only \(failures) of 400 damaged batches were refused, seed \(rng.seed)")
    }
}
