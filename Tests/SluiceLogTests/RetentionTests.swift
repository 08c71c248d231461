import Dispatch
import SluiceCompression
import SluiceCore
import SluiceTestSupport
import Testing

@testable import SluiceLog

/// A batch of content records (keys and values of `Content`) all stamped `timestamp`.
func timedBatch(firstOffset: Int64, count: Int, timestamp: Int64) throws -> RecordBatch {
    let records = (0..<Int64(count)).map { i in
        Record(offset: firstOffset + i, timestamp: timestamp, key: Content.key(firstOffset + i), value: Content.value(firstOffset + i))
    }
    return try RecordBatch.build(records: records)
}

/// Every record from the log start on has the content of its offset (timestamps aside).
func expectContent(_ log: PartitionLog, _ comment: Comment? = nil) throws {
    let records = try readAllRecords(log)
    expectOffsets(records.map(\.offset), log.logStartOffset..<log.logEndOffset, comment)
    #expect(records.allSatisfy { $0.key == Content.key($0.offset) && $0.value == Content.value($0.offset) }, comment)
}

@Suite("retention")
struct RetentionTests {
    let hour: Int64 = 3_600_000

    @Test("retention: by time deletes only closed segments whose newest record is older than retention.ms")
    func retentionByTime() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let clock = ManualClock()
        let start = clock.nowMilliseconds()
        let config = testConfig(segmentBytes: 4 << 10, retentionMilliseconds: 2 * hour)
        let log = try openLog(dir.path, config: config, clock: clock)
        // Three generations of data, an hour apart.
        var lastOffsetOfGeneration: [Int64] = []
        for _ in 0..<3 {
            for _ in 0..<40 {
                try log.append(try timedBatch(firstOffset: log.logEndOffset, count: 3, timestamp: clock.nowMilliseconds()))
            }
            lastOffsetOfGeneration.append(log.logEndOffset - 1)
            clock.advance(milliseconds: hour)
        }
        let before = log.segments
        #expect(before.count > 6)

        // now = start + 3h: generation 0 (newest record at `start`) is older than 2h, generation 1 is not.
        clock.set(start + 2 * hour + 1)
        let deleted = try log.enforceRetention()
        let expired = before.dropLast().prefix { (try? $0.maxTimestamp()).flatMap { $0 }.map { $0 < start + 1 } ?? false }
        #expect(deleted == expired.map(\.baseOffset))
        #expect(!deleted.isEmpty)
        for base in deleted {
            let segment = try #require(before.first { $0.baseOffset == base })
            #expect(try segment.nextOffset() <= lastOffsetOfGeneration[0] + 1, "only segments wholly of generation 0")
        }
        // The segment holding the end of generation 0 and the start of generation 1 stays.
        #expect(log.segments.first.map { $0.baseOffset <= lastOffsetOfGeneration[0] + 1 } == true)
        #expect(log.logStartOffset == log.segments[0].baseOffset)
        try expectNoFiles(of: deleted, in: dir.path)
        try expectContent(log)
        let end = log.logEndOffset
        let startOffset = log.logStartOffset
        #expect(throws: LogError.offsetOutOfRange(requested: startOffset - 1, logStartOffset: startOffset, logEndOffset: end)) {
            try log.read(from: startOffset - 1, maxBytes: 1000)
        }
        #expect(throws: LogError.offsetOutOfRange(requested: 0, logStartOffset: startOffset, logEndOffset: end)) {
            try log.read(from: 0, maxBytes: 1000)
        }
        // Running it again without time passing deletes nothing.
        #expect(try log.enforceRetention().isEmpty)

        // Far in the future everything closed expires, but never the active segment.
        clock.advance(milliseconds: 100 * hour)
        try log.enforceRetention()
        #expect(log.segments.count == 1)
        #expect(log.segments[0].baseOffset == before.last?.baseOffset)
        #expect(log.logStartOffset == log.segments[0].baseOffset)
        try expectContent(log)
        let info = try log.append(try timedBatch(firstOffset: end, count: 2, timestamp: clock.nowMilliseconds()))
        #expect(info.firstOffset == end)
        try log.close()

        // The log start survives a reopen (its checkpoint).
        let reopened = try openLog(dir.path, config: config, clock: clock)
        #expect(reopened.logStartOffset == before.last?.baseOffset)
        #expect(reopened.logEndOffset == end + 2)
        try expectContent(reopened)
        try reopened.close()
    }

    @Test("retention: by bytes deletes the oldest closed segments while the rest still holds retention.bytes")
    func retentionByBytes() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let retention: Int64 = 20 << 10
        let config = testConfig(segmentBytes: 4 << 10, retentionBytes: retention)
        let log = try openLog(dir.path, config: config)
        for round in 0..<5 {
            try appendContent(log, batches: 60)
            let before = log.segments.map(\.baseOffset)
            let deleted = try log.enforceRetention()
            let sizes = log.segments.map(\.size)
            let total = Int64(sizes.reduce(0, +))
            #expect(deleted == Array(before.prefix(deleted.count)), "oldest first, round \(round)")
            if !deleted.isEmpty {
                #expect(total >= retention, "never below the bound, round \(round)")
            }
            if sizes.count > 1 {
                #expect(total - Int64(sizes[0]) < retention, "one more deletion would go below the bound, round \(round)")
            }
            #expect(log.logStartOffset == log.segments[0].baseOffset)
            try expectNoFiles(of: deleted, in: dir.path)
            try expectContent(log, "round \(round)")
        }
        let start = log.logStartOffset
        #expect(start > 0)
        try log.close()
        let reopened = try openLog(dir.path, config: config)
        #expect(reopened.logStartOffset == start)
        try expectContent(reopened)
        try reopened.close()
    }

    @Test("retention: nothing is deleted when the cleanup policy is compact only")
    func noRetentionWhenCompacting() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let clock = ManualClock()
        let log = try openLog(dir.path, config: testConfig(segmentBytes: 4 << 10, retentionMilliseconds: 1, retentionBytes: 1,
                                                           cleanupPolicy: .compact), clock: clock)
        try appendContent(log, batches: 60)
        clock.advance(milliseconds: 1000 * hour)
        #expect(try log.enforceRetention().isEmpty)
        #expect(log.logStartOffset == 0)
        try log.close()
    }

    @Test("retention: a crash after the log start moved but before the files went removes them at open")
    func crashBetweenCheckpointAndUnlink() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let config = testConfig(segmentBytes: 4 << 10)
        var bases: [Int64] = []
        try crashAfter(dir.path, config: config) { log in
            try appendContent(log, batches: 80)
            bases = log.segments.map(\.baseOffset)
        }
        #expect(bases.count > 4)
        // What retention writes first: the new log start (the base of the third segment).
        try Checkpoints.write(logStartOffset: bases[2], directory: dir.path)
        let log = try openLog(dir.path, config: config)
        #expect(log.logStartOffset == bases[2])
        #expect(log.segments.map(\.baseOffset) == Array(bases[2...]))
        #expect(log.recoveryReport.removedSegments == bases[0..<2].map { segmentPath(dir.path, $0) })
        try expectNoFiles(of: Array(bases[0..<2]), in: dir.path)
        try expectContent(log)
        try log.close()
    }

    @Test("retention: readers racing with retention get whole, right batches or offsetOutOfRange")
    func readersRacingWithRetention() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let clock = ManualClock()
        let log = try openLog(dir.path, config: testConfig(segmentBytes: 4 << 10, retentionBytes: 16 << 10), clock: clock)
        try appendContent(log, batches: 50)
        let failures = Shared<[String]>([])
        let group = DispatchGroup()
        let seed = SeededRandom.fromEnvironment().seed
        DispatchQueue.global().async(group: group) {
            do {
                for _ in 0..<60 {
                    try appendContent(log, batches: 10)
                    try log.enforceRetention()
                }
            } catch {
                failures.withLock { $0.append("writer: \(error)") }
            }
        }
        for reader in 0..<2 {
            DispatchQueue.global().async(group: group) {
                var rng = SeededRandom(seed: seed &+ UInt64(reader))
                for _ in 0..<1500 {
                    let start = log.logStartOffset
                    let end = log.logEndOffset
                    guard end > start else { continue }
                    let offset = Int64.random(in: start..<end, using: &rng)
                    do {
                        let batches = try splitBatches(try log.read(from: offset, maxBytes: 2000).bytes)
                        let records = try batches.flatMap { try $0.records() }
                        if batches.first.map({ $0.baseOffset <= offset && $0.lastOffset >= offset }) != true
                            || !records.allSatisfy({ Content.matches($0) }) {
                            failures.withLock { $0.append("read at \(offset) returned wrong data") }
                        }
                    } catch LogError.offsetOutOfRange {
                        // Retention moved the start past it meanwhile.
                    } catch {
                        failures.withLock { $0.append("read at \(offset): \(error)") }
                    }
                }
            }
        }
        group.wait()
        let problems = failures.withLock { $0 }
        #expect(problems.isEmpty, "seed \(seed): \(problems.prefix(5))")
        try expectContent(log)
        try log.close()
    }

    func expectNoFiles(of bases: [Int64], in directory: String) throws {
        let names = Set(listDirectory(directory))
        for base in bases {
            let prefix = SegmentFiles.baseName(base)
            #expect(!names.contains { $0.hasPrefix(prefix) }, "files of deleted segment \(base) remain")
        }
    }
}
