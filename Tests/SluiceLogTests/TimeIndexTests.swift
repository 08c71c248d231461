import SluiceCompression
import SluiceCore
import SluiceTestSupport
import Testing

@testable import SluiceLog

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("time index")
struct TimeIndexTests {
    /// A batch with the given record timestamps; keys and values from `Content`.
    static func batch(first: Int64, timestamps: [Int64], codec: CompressionCodec = .none) throws -> RecordBatch {
        let records = timestamps.enumerated().map { i, t in
            Record(offset: first + Int64(i), timestamp: t, key: Content.key(first + Int64(i)), value: Content.value(first + Int64(i)))
        }
        return try RecordBatch.build(records: records, codec: codec)
    }

    /// The answer by definition: the first offset at or after the log start whose record timestamp is >= t.
    static func naive(_ records: [Record], _ t: Int64) -> Int64? {
        records.first { $0.timestamp >= t }?.offset
    }

    @Test("time index: lookups before all, at a record, between records, inside compressed batches, after all",
          arguments: [CompressionCodec.none, .lz4, .zstd])
    func lookups(codec: CompressionCodec) throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try openLog(dir.path, config: testConfig(segmentBytes: 4 << 10, indexIntervalBytes: 256))
        // Batches of 5 records, timestamps 1000, 1010, 1020, ... (10 apart).
        for b in 0..<100 {
            let first = log.logEndOffset
            try log.append(try Self.batch(first: first, timestamps: (0..<5).map { 1000 + 10 * (Int64(b) * 5 + $0) }, codec: codec))
        }
        #expect(log.segments.count > 3)
        #expect(try log.offset(forTimestamp: 0) == 0)
        #expect(try log.offset(forTimestamp: 1000) == 0)
        for offset in Int64(0)..<500 {
            let t = 1000 + 10 * offset
            #expect(try log.offset(forTimestamp: t) == offset, "exactly at the record of \(offset)")
            #expect(try log.offset(forTimestamp: t - 5) == offset, "between records, before \(offset)")
            #expect(try log.offset(forTimestamp: t - 9) == offset)
        }
        #expect(try log.offset(forTimestamp: 1000 + 10 * 499 + 1) == nil, "after all")
        #expect(try log.offset(forTimestamp: Int64.max) == nil)
        try log.close()
    }

    // A client's ListOffsets request carries any int64; the broker must not trap on it. Run in a child
    // process (an exit test) so that a trap fails this test instead of killing the whole run.
    @Test("time index: the extreme timestamps Int64.min and Int64.max are answered, not trapped on")
    func extremeTimestamps() async {
        await #expect(processExitsWith: .success) {
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            let log = try openLog(dir.path, config: testConfig(segmentBytes: 4 << 10, indexIntervalBytes: 256))
            try appendContent(log, batches: 60)
            guard try log.offset(forTimestamp: Int64.max) == nil else { exit(2) }
            guard try log.offset(forTimestamp: Int64.min) == 0 else { exit(3) }
            try log.close()
        }
    }

    @Test("time index: non-monotonic timestamps across batches find the first offset at or after T")
    func nonMonotonic() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try openLog(dir.path, config: testConfig(segmentBytes: 4 << 10, indexIntervalBytes: 256))
        // A late high timestamp, then older data, then newer data: the high one hides in the middle.
        let pattern: [[Int64]] = [[100, 200], [5000, 50], [300, 400], [60, 70], [6000], [450, 460]]
        var all: [Record] = []
        for round in 0..<20 {
            for timestamps in pattern {
                let shifted = timestamps.map { $0 + Int64(round) * 10 }
                try log.append(try Self.batch(first: log.logEndOffset, timestamps: shifted))
            }
        }
        all = try readAllRecords(log)
        for t in [Int64(0), 50, 60, 61, 100, 201, 399, 400, 401, 460, 470, 4999, 5000, 5001, 5190, 5191, 6000, 6190, 6191] {
            #expect(try log.offset(forTimestamp: t) == Self.naive(all, t), "T = \(t)")
        }
        try log.close()
        let reopened = try openLog(dir.path, config: testConfig(segmentBytes: 4 << 10, indexIntervalBytes: 256))
        for t in [Int64(0), 401, 5001, 6191] {
            #expect(try reopened.offset(forTimestamp: t) == Self.naive(all, t), "after reopen, T = \(t)")
        }
        try reopened.close()
    }

    @Test("time index: agrees with a naive scan over random logs (seeded)")
    func propertyAgainstNaiveScan() throws {
        var rng = SeededRandom.fromEnvironment()
        for round in 0..<6 {
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            let config = testConfig(segmentBytes: Int.random(in: 1...8, using: &rng) << 10,
                                    indexIntervalBytes: Int.random(in: 64...2048, using: &rng))
            let log = try openLog(dir.path, config: config)
            let spread = Int64.random(in: 10...100_000, using: &rng)
            let drift = Int64.random(in: 0...50, using: &rng)
            let batches = Int.random(in: 20...250, using: &rng)
            for b in 0..<batches {
                let count = Int.random(in: 1...6, using: &rng)
                // A rising trend with random jitter: often but not always monotonic.
                let timestamps = (0..<count).map { _ in Int64(b) * drift + Int64.random(in: 0...spread, using: &rng) }
                let codec = [CompressionCodec.none, .lz4, .zstd].randomElement(using: &rng) ?? .none
                try log.append(try Self.batch(first: log.logEndOffset, timestamps: timestamps, codec: codec))
            }
            let all = try readAllRecords(log)
            let maxTimestamp = all.map(\.timestamp).max() ?? 0
            var probes = all.map(\.timestamp) + all.map { $0.timestamp + 1 } + [-1, maxTimestamp + 1]
            probes += (0..<50).map { _ in Int64.random(in: -10...(maxTimestamp + 10), using: &rng) }
            for t in probes {
                let expected = Self.naive(all, t)
                let got = try log.offset(forTimestamp: t)
                #expect(got == expected, "round \(round), T = \(t), seed \(rng.seed)")
                if got != expected { break }
            }
            // The same answers from indexes loaded from disk.
            try log.close()
            let reopened = try openLog(dir.path, config: config)
            for t in probes.prefix(200) {
                #expect(try reopened.offset(forTimestamp: t) == Self.naive(all, t), "reopened, round \(round), T = \(t), seed \(rng.seed)")
            }
            try reopened.close()
        }
    }

    @Test("time index: LogAppendTime batches answer with their base offset")
    func logAppendTime() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try openLog(dir.path, config: testConfig())
        try log.append(try Self.batch(first: 0, timestamps: [10, 20, 30]))
        var stamped = try Self.batch(first: 3, timestamps: [1, 2, 3])
        stamped.stampLogAppendTime(500)
        try log.append(stamped)
        #expect(try log.offset(forTimestamp: 25) == 2)
        #expect(try log.offset(forTimestamp: 31) == 3)
        #expect(try log.offset(forTimestamp: 500) == 3)
        #expect(try log.offset(forTimestamp: 501) == nil)
        try log.close()
    }

    @Test("time index: a lost .timeindex does not hide an early high timestamp")
    func lostTimeIndexKeepsSegmentMaximum() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let config = testConfig(segmentBytes: 64 << 10, indexIntervalBytes: 256)
        var all: [Record] = []
        try withCleanLog(dir.path, config: config) { log in
            // The segment's highest timestamp is in its first batch; everything after is older.
            try log.append(try Self.batch(first: 0, timestamps: [9000]))
            for _ in 0..<100 { try log.append(try Self.batch(first: log.logEndOffset, timestamps: [100, 200])) }
            all = try readAllRecords(log)
        }
        removeFile(segmentPath(dir.path, 0, .timeIndex))
        let log = try openLog(dir.path, config: config)
        #expect(try log.segments[0].maxTimestamp() == 9000)
        #expect(try log.offset(forTimestamp: 5000) == Self.naive(all, 5000))
        try log.close()
    }
}
