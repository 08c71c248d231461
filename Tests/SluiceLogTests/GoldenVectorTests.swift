import SluiceCore
import SluiceLog
import SluiceTestSupport
import Testing

/// The index and checkpoint vectors of storage-format/vectors/ (the batch vectors are decoded by
/// SluiceCoreTests): decode each with the production decoder, compare with the manifest, re-encode byte
/// for byte, and check the lookup examples that storage-format/segments.md gives for them.
@Suite("Golden vectors: indexes and checkpoints")
struct IndexAndCheckpointGoldenVectorTests {
    static func vector(_ file: String) throws -> GoldenVector {
        try #require(try GoldenVectors.loadManifest().vectors.first { $0.file == file }, "\(file) is not in the manifest")
    }

    @Test func theManifestListsEveryIndexAndCheckpointVector() throws {
        let manifest = try GoldenVectors.loadManifest()
        let kinds = Dictionary(uniqueKeysWithValues: manifest.vectors.map { ($0.file, $0.kind) })
        #expect(kinds["index.hex"] == "offsetIndex" && kinds["timeindex.hex"] == "timeIndex")
        #expect(kinds["recovery-point.checkpoint.hex"] == "recoveryPoint")
        #expect(kinds["log-start-offset.checkpoint.hex"] == "logStartOffset")
        #expect(manifest.vectors.allSatisfy { $0.kind != "batch" ? $0.expectError == nil : true })
    }

    @Test func offsetIndexVectorDecodesReencodesAndAnswersTheSpecLookup() throws {
        let vector = try Self.vector("index.hex")
        let bytes = try vector.bytes()
        let base = try #require(vector.baseOffset)
        let expected = try #require(vector.entries).map {
            OffsetIndexEntry(relativeOffset: UInt32($0[0]), position: UInt32($0[1]))
        }
        let entries = try #require(IndexFormat.decodeOffsetIndex(bytes))
        #expect(entries == expected)
        #expect(IndexFormat.encode(entries) == bytes)
        #expect(IndexFormat.offsetIndexProblem(entries, logSize: Int(expected.last!.position) + 1) == nil)
        #expect(IndexFormat.decodeOffsetIndex(Array(bytes.dropLast())) == nil, "size not a multiple of 8")

        // segments.md: offset 1050 → entry (37, 4123); below the first entry there is none.
        func floor(_ offset: Int64) -> OffsetIndexEntry? {
            IndexFormat.floorIndex(entries, offset - base, key: { Int64($0.relativeOffset) }).map { entries[$0] }
        }
        #expect(floor(1050) == OffsetIndexEntry(relativeOffset: 37, position: 4123))
        #expect(floor(1000) == OffsetIndexEntry(relativeOffset: 0, position: 0))
        #expect(floor(1079)?.relativeOffset == 37 && floor(1080)?.position == 8301 && floor(5000)?.position == 8301)
        #expect(floor(999) == nil)
    }

    @Test func timeIndexVectorDecodesReencodesAndAnswersTheSpecLookup() throws {
        let vector = try Self.vector("timeindex.hex")
        let bytes = try vector.bytes()
        let base = try #require(vector.baseOffset)
        let expected = try #require(vector.entries).map {
            TimeIndexEntry(timestamp: $0[0], relativeOffset: UInt32($0[1]))
        }
        let entries = try #require(IndexFormat.decodeTimeIndex(bytes))
        #expect(entries == expected)
        #expect(IndexFormat.encode(entries) == bytes)
        #expect(IndexFormat.timeIndexProblem(entries, lastRelativeOffset: expected.last!.relativeOffset) == nil)
        #expect(IndexFormat.decodeTimeIndex(Array(bytes.dropLast(4))) == nil, "size not a multiple of 12")

        // segments.md: the search for the first record at or after T starts at the largest entry with a
        // timestamp below T (the same rule as `LogSegment.timeSearchStart`), or at the segment's start.
        func start(_ t: Int64) -> Int64 {
            IndexFormat.floorIndex(entries, t - 1, key: { $0.timestamp }).map { base + Int64(entries[$0].relativeOffset) } ?? base
        }
        #expect(start(1_700_000_000_050) == 1000)
        #expect(start(1_700_000_000_091) == 1037)
        #expect(start(1_700_000_000_090) == 1000, "an entry equal to T is not below it")
        #expect(start(1_700_000_000_000) == 1000 && start(0) == 1000)
    }

    @Test func recoveryPointVectorDecodesAndReencodes() throws {
        let vector = try Self.vector("recovery-point.checkpoint.hex")
        let bytes = try vector.bytes()
        #expect(bytes.count == 36)
        try Self.expectFrame(bytes, vector)
        guard case .valid(let point) = Checkpoints.decodeRecoveryPoint(bytes) else {
            Issue.record("recovery point vector did not decode: \(Checkpoints.decodeRecoveryPoint(bytes))")
            return
        }
        #expect(point.offset == vector.recoveryOffset)
        #expect(point.segmentBaseOffset == vector.segmentBaseOffset)
        #expect(point.position == vector.position)
        #expect(Checkpoints.encode(point) == bytes)
        Self.expectEveryDamageRefused(bytes) { Checkpoints.decodeRecoveryPoint($0) }
    }

    @Test func logStartOffsetVectorDecodesAndReencodes() throws {
        let vector = try Self.vector("log-start-offset.checkpoint.hex")
        let bytes = try vector.bytes()
        #expect(bytes.count == 20)
        try Self.expectFrame(bytes, vector)
        guard case .valid(let offset) = Checkpoints.decodeLogStartOffset(bytes) else {
            Issue.record("log start offset vector did not decode: \(Checkpoints.decodeLogStartOffset(bytes))")
            return
        }
        #expect(offset == vector.logStartOffset)
        #expect(Checkpoints.encode(logStartOffset: offset) == bytes)
        Self.expectEveryDamageRefused(bytes) { Checkpoints.decodeLogStartOffset($0) }
    }

    /// Magic, version, flags and the trailing CRC-32C against the manifest.
    static func expectFrame(_ bytes: [UInt8], _ vector: GoldenVector) throws {
        #expect(String(decoding: bytes[0..<4], as: UTF8.self) == vector.magic)
        #expect(bytes.getBigEndian(at: 4, as: UInt16.self) == vector.version)
        #expect(bytes.getBigEndian(at: 6, as: UInt16.self) == vector.flags)
        let crc = bytes.getBigEndian(at: bytes.count - 4, as: UInt32.self)
        #expect(crc == vector.crc)
        #expect(crc == CRC32C.checksum(Array(bytes.dropLast(4))))
    }

    /// Any one flipped bit, a missing byte or an extra one makes the file invalid (never a wrong value).
    static func expectEveryDamageRefused<T>(_ bytes: [UInt8], _ decode: ([UInt8]) -> Checkpoints.ReadResult<T>) {
        var damaged: [[UInt8]] = [Array(bytes.dropLast()), bytes + [0], []]
        for position in bytes.indices {
            for bit in 0..<8 {
                var copy = bytes
                copy[position] ^= UInt8(1) << UInt8(bit)
                damaged.append(copy)
            }
        }
        for copy in damaged {
            if case .invalid = decode(copy) { continue }
            Issue.record("damaged checkpoint (\(copy.count) bytes) was not refused")
        }
    }
}
