import Dispatch
import SluiceCompression
import SluiceCore
import SluiceTestSupport
import Testing

@testable import SluiceLog

/// What a compacted topic's producer wrote, to compute what compaction must keep.
struct KeyedModel {
    /// Every record ever appended, in offset order.
    var records: [Record] = []

    /// Appends a batch of `(key, value)` pairs (nil value = tombstone, nil key = no key) at `timestamp`.
    @discardableResult
    mutating func append(_ log: PartitionLog, _ pairs: [(key: [UInt8]?, value: [UInt8]?)], timestamp: Int64,
                         codec: CompressionCodec = .none) throws -> AppendInfo {
        let first = log.logEndOffset
        let batch = pairs.enumerated().map { i, pair in
            Record(offset: first + Int64(i), timestamp: timestamp, key: pair.key, value: pair.value)
        }
        let info = try log.append(try RecordBatch.build(records: batch, codec: codec))
        records += batch
        return info
    }

    /// The newest offset of every key.
    var newest: [[UInt8]: Int64] {
        var map: [[UInt8]: Int64] = [:]
        for record in records { if let key = record.key { map[key] = record.offset } }
        return map
    }

    /// What must survive any compaction: records without a key, and each key's newest record (unless
    /// it is a tombstone older than `tombstoneHorizon`).
    func mustKeep(tombstoneHorizon: Int64 = Int64.min) -> [Record] {
        let newest = self.newest
        return records.filter { record in
            guard let key = record.key else { return true }
            guard newest[key] == record.offset else { return false }
            return record.value != nil || record.timestamp >= tombstoneHorizon
        }
    }

    /// The result of a full compaction of everything below `activeBase`, with the active segment as is.
    func fullyCompacted(activeBase: Int64, tombstoneHorizon: Int64) -> [Record] {
        let kept = Set(mustKeep(tombstoneHorizon: tombstoneHorizon).map(\.offset))
        return records.filter { $0.offset >= activeBase || kept.contains($0.offset) }
    }
}

/// Checks what any compaction, finished or interrupted, must leave: only original records at their
/// original offsets, each at most once, in order, and every record that must survive.
func expectCompactionInvariants(_ log: PartitionLog, _ model: KeyedModel, tombstoneHorizon: Int64 = Int64.min,
                                _ comment: Comment? = nil) throws {
    let records = try readAllRecords(log)
    let offsets = records.map(\.offset)
    #expect(zip(offsets, offsets.dropFirst()).allSatisfy { $0 < $1 }, "offsets strictly increase, none twice \(comment?.description ?? "")")
    let original = Dictionary(uniqueKeysWithValues: model.records.map { ($0.offset, $0) })
    let foreign = records.filter { original[$0.offset] != $0 }
    #expect(foreign.isEmpty, "records that were never appended at their offset: \(foreign.prefix(3)) \(comment?.description ?? "")")
    let present = Set(offsets)
    let lost = model.mustKeep(tombstoneHorizon: tombstoneHorizon).filter { !present.contains($0.offset) }
    #expect(lost.isEmpty, "lost \(lost.count) records that must survive, e.g. \(lost.prefix(3)) \(comment?.description ?? "")")
    #expect(log.logEndOffset == (model.records.last?.offset ?? -1) + 1, comment)
}

@Suite("compaction")
struct CompactionTests {
    let day: Int64 = 24 * 3_600_000

    func config(keysMax: Int = 1 << 20) -> LogConfig {
        var config = testConfig(segmentBytes: 4 << 10, indexIntervalBytes: 256, cleanupPolicy: .compact,
                                deleteRetentionMilliseconds: day)
        config.compactionKeysMax = keysMax
        return config
    }

    static func key(_ n: Int) -> [UInt8] { Array("key-\(n)".utf8) }

    /// Random keyed traffic: `keys` keys, some records without a key, some tombstones.
    static func randomTraffic(_ log: PartitionLog, _ model: inout KeyedModel, rng: inout SeededRandom, batches: Int,
                              keys: Int = 25, tombstones: Bool = true, timestamp: Int64,
                              codecs: [CompressionCodec] = [.none]) throws {
        for _ in 0..<batches {
            let pairs = (0..<Int.random(in: 1...4, using: &rng)).map { _ -> (key: [UInt8]?, value: [UInt8]?) in
                let roll = Int.random(in: 0..<100, using: &rng)
                let key = roll < 8 ? nil : key(Int.random(in: 0..<keys, using: &rng))
                let value: [UInt8]? = tombstones && roll >= 92 ? nil : rng.bytes(Int.random(in: 10...60, using: &rng))
                return (key, value)
            }
            try model.append(log, pairs, timestamp: timestamp, codec: codecs.randomElement(using: &rng) ?? .none)
        }
    }

    @Test("compaction: keeps the newest record per key and every keyless record, at their original offsets",
          arguments: [CompressionCodec.none, .lz4, .zstd])
    func keepsNewestPerKey(codec: CompressionCodec) throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var rng = SeededRandom.fromEnvironment()
        let clock = ManualClock()
        let log = try openLog(dir.path, config: config(), clock: clock)
        var model = KeyedModel()
        try Self.randomTraffic(log, &model, rng: &rng, batches: 300, tombstones: false, timestamp: clock.nowMilliseconds(),
                               codecs: [codec])
        let activeBase = try #require(log.segments.last?.baseOffset)
        let sizeBefore = log.sizeInBytes
        let result = try log.compact()
        let expected = model.fullyCompacted(activeBase: activeBase, tombstoneHorizon: Int64.min)
        let records = try readAllRecords(log)
        #expect(records == expected, "seed \(rng.seed)")
        #expect(result.recordsRemoved == model.records.count - expected.count, "seed \(rng.seed)")
        #expect(result.tombstonesRemoved == 0)
        #expect(result.segmentsCleaned > 0)
        #expect(log.sizeInBytes < sizeBefore)
        #expect(log.logEndOffset == Int64(model.records.count))
        #expect(leftoverFiles(dir.path).isEmpty)
        // A second pass finds nothing more to remove.
        #expect(try log.compact().recordsRemoved == 0)
        #expect(try readAllRecords(log) == expected)
        // New appends continue at the old end; everything survives a reopen.
        try Self.randomTraffic(log, &model, rng: &rng, batches: 5, tombstones: false, timestamp: clock.nowMilliseconds())
        try log.close()
        let reopened = try openLog(dir.path, config: config(), clock: clock)
        try expectCompactionInvariants(reopened, model, "seed \(rng.seed)")
        try reopened.close()
    }

    @Test("compaction of a replicated log: every batch stays (empty ones too) and nothing above `through` makes a record go")
    func replicatedCompaction() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var rng = SeededRandom.fromEnvironment()
        let clock = ManualClock()
        let log = try openLog(dir.path, config: config(), clock: clock)
        var model = KeyedModel()
        try Self.randomTraffic(log, &model, rng: &rng, batches: 300, keys: 10, tombstones: false, timestamp: clock.nowMilliseconds())
        // As a leader's commit would: a limit inside the log; records above it are not yet committed.
        let limit = model.records[model.records.count * 2 / 3].offset
        var headersBefore: [RecordBatchHeader] = []
        try log.forEachBatchHeader(from: 0) { headersBefore.append($0) }
        let result = try log.compact(keepingEmptyBatches: true, through: limit)
        #expect(result.recordsRemoved > 0 && result.mapEndOffset <= limit, "seed \(rng.seed): \(result)")
        var headersAfter: [RecordBatchHeader] = []
        try log.forEachBatchHeader(from: 0) { headersAfter.append($0) }
        #expect(headersAfter.map(\.baseOffset) == headersBefore.map(\.baseOffset), "seed \(rng.seed): the batches moved")
        #expect(headersAfter.map(\.lastOffsetDelta) == headersBefore.map(\.lastOffsetDelta), "seed \(rng.seed)")
        #expect(headersAfter.contains { $0.recordCount == 0 }, "seed \(rng.seed): no batch was emptied")
        // What survives is what compacting only the records below the limit keeps.
        var below = KeyedModel()
        below.records = model.records.filter { $0.offset < result.mapEndOffset }
        let kept = Set(below.mustKeep().map(\.offset))
        let survivors = Set(try readAllRecords(log).map(\.offset))
        let expected = Set(model.records.filter { $0.offset >= result.mapEndOffset || kept.contains($0.offset) }.map(\.offset))
        #expect(survivors.isSuperset(of: expected), "seed \(rng.seed): lost \(expected.subtracting(survivors).sorted().prefix(5))")
        // Some of them are superseded only above the limit: a full compaction would have removed them.
        let fullyKept = Set(model.mustKeep().map(\.offset))
        #expect(survivors.contains { $0 < result.mapEndOffset && !fullyKept.contains($0) }, "seed \(rng.seed): the limit changed nothing")
        try expectCompactionInvariants(log, model, "seed \(rng.seed)")
        try log.close()
    }

    @Test("compaction: a control record's key never shadows a user key that has the same bytes")
    func controlKeysAreNotUserKeys() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let clock = ManualClock()
        let log = try openLog(dir.path, config: config(), clock: clock)
        // The leader-change marker's key is version 0, type 2: 00 00 00 02.
        let markerKey: [UInt8] = [0, 0, 0, 2]
        var model = KeyedModel()
        try model.append(log, [(key: markerKey, value: Array("user data".utf8))], timestamp: clock.nowMilliseconds())
        _ = try log.append(RecordBatch.leaderChangeMarker(leader: 1, term: 1, timestamp: clock.nowMilliseconds()))
        // Roll past both so they are compactable.
        while log.segments.count < 3 {
            try model.append(log, [(key: nil, value: [UInt8](repeating: 7, count: 512))], timestamp: clock.nowMilliseconds())
        }
        _ = try log.compact()
        let values = try readAllRecords(log).filter { $0.key == markerKey }.compactMap(\.value)
        #expect(values.contains(Array("user data".utf8)))
        try log.close()
    }

    @Test("compaction: merges small segments into ones no larger than segment.bytes")
    func mergesSmallSegments() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var rng = SeededRandom.fromEnvironment()
        let clock = ManualClock()
        let log = try openLog(dir.path, config: config(), clock: clock)
        var model = KeyedModel()
        // Few keys: compaction removes most of each segment.
        try Self.randomTraffic(log, &model, rng: &rng, batches: 300, keys: 5, tombstones: false, timestamp: clock.nowMilliseconds())
        let before = log.segments.count
        // Groups are formed from segment sizes before cleaning (as Kafka does), so full segments shrink in
        // the first pass and the small results merge in the next.
        try log.compact()
        let afterFirst = log.segments.count
        try log.compact()
        let after = log.segments
        #expect(after.count < afterFirst)
        #expect(after.count < before / 2, "\(before) segments became \(after.count), seed \(rng.seed)")
        for segment in after { #expect(segment.size <= config().segmentBytes) }
        for (segment, next) in zip(after, after.dropFirst()) {
            #expect(try segment.nextOffset() <= next.baseOffset, "segments stay in offset order")
        }
        try expectCompactionInvariants(log, model, "seed \(rng.seed)")
        let files = listDirectory(dir.path).filter { $0.hasSuffix(".log") }
        #expect(files == after.map { SegmentFiles.baseName($0.baseOffset) + ".log" })
        try log.close()
    }

    @Test("compaction: tombstones are kept until delete.retention.ms after their timestamp, then removed")
    func tombstoneRetention() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let clock = ManualClock()
        let log = try openLog(dir.path, config: config(), clock: clock)
        var model = KeyedModel()
        for round in 0..<10 {
            for n in 0..<10 {
                try model.append(log, [(Self.key(n), Array("value-\(round)-\(n)".utf8))], timestamp: clock.nowMilliseconds())
            }
        }
        // Delete keys 0..<5.
        for n in 0..<5 { try model.append(log, [(Self.key(n), nil)], timestamp: clock.nowMilliseconds()) }
        // Enough keyless filler that the tombstones lie in closed segments.
        for i in 0..<60 { try model.append(log, [(nil, Array("filler-\(i)".utf8) + [UInt8](repeating: 7, count: 60))], timestamp: clock.nowMilliseconds()) }
        let tombstoneOffsets = model.records.filter { $0.value == nil }.map(\.offset)
        #expect(tombstoneOffsets.allSatisfy { $0 < log.segments.last?.baseOffset ?? 0 })

        clock.advance(milliseconds: day - 1)
        let first = try log.compact()
        #expect(first.tombstonesRemoved == 0)
        var present = Set(try readAllRecords(log).map(\.offset))
        #expect(tombstoneOffsets.allSatisfy { present.contains($0) }, "tombstones younger than delete.retention.ms stay")
        try expectCompactionInvariants(log, model)
        let values = try readAllRecords(log).filter { $0.key != nil }
        #expect(Set(values.compactMap(\.key)) == Set((0..<10).map(Self.key)), "one record per key, the tombstone for deleted ones")
        #expect(values.count == 10)

        clock.advance(milliseconds: 2)
        let second = try log.compact()
        #expect(second.tombstonesRemoved == 5)
        present = Set(try readAllRecords(log).map(\.offset))
        #expect(tombstoneOffsets.allSatisfy { !present.contains($0) })
        let keyed = try readAllRecords(log).filter { $0.key != nil }
        #expect(Set(keyed.compactMap(\.key)) == Set((5..<10).map(Self.key)), "deleted keys are gone entirely")
        #expect(keyed.allSatisfy { $0.value != nil })
        try expectCompactionInvariants(log, model, tombstoneHorizon: clock.nowMilliseconds() - day)
        try log.close()
    }

    @Test("compaction: a tombstone in a LogAppendTime batch expires by its append time, not the producer's timestamp")
    func logAppendTimeTombstone() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let clock = ManualClock()
        let log = try openLog(dir.path, config: config(), clock: clock)
        var model = KeyedModel()
        try model.append(log, [(Self.key(1), Array("v".utf8))], timestamp: clock.nowMilliseconds())
        // The producer's record timestamp is ancient; the broker stamped the batch with the append time.
        let tombstoneOffset = log.logEndOffset
        var tombstone = try RecordBatch.build(records: [Record(offset: tombstoneOffset, timestamp: 0, key: Self.key(1), value: nil)])
        tombstone.stampLogAppendTime(clock.nowMilliseconds())
        try log.append(tombstone)
        for i in 0..<60 {
            try model.append(log, [(nil, Array("filler-\(i)".utf8) + [UInt8](repeating: 7, count: 60))], timestamp: clock.nowMilliseconds())
        }
        #expect(tombstoneOffset < log.segments.last?.baseOffset ?? 0)
        clock.advance(milliseconds: day / 2)
        let first = try log.compact()
        #expect(first.tombstonesRemoved == 0, "appended half a day ago: kept")
        #expect(try readAllRecords(log).contains { $0.offset == tombstoneOffset && $0.value == nil })
        #expect(try !readAllRecords(log).contains { $0.offset == 0 }, "the value it deletes is gone")
        clock.advance(milliseconds: day)
        let second = try log.compact()
        #expect(second.tombstonesRemoved == 1)
        #expect(try !readAllRecords(log).contains { $0.offset == tombstoneOffset })
        try log.close()
    }

    @Test("compaction: reads after compaction skip the gaps to the next surviving record")
    func readsSkipGaps() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var rng = SeededRandom.fromEnvironment()
        let clock = ManualClock()
        let log = try openLog(dir.path, config: config(), clock: clock)
        var model = KeyedModel()
        try Self.randomTraffic(log, &model, rng: &rng, batches: 200, keys: 8, timestamp: clock.nowMilliseconds(),
                               codecs: [.none, .lz4, .zstd])
        try log.compact()
        let surviving = try readAllRecords(log).map(\.offset)
        #expect(surviving.count < model.records.count)
        var next = surviving.makeIterator()
        var upcoming = next.next()
        for offset in Int64(0)..<log.logEndOffset {
            while let u = upcoming, u < offset { upcoming = next.next() }
            // Chain reads from `offset` until a record at or after it shows up.
            var from = offset
            var found: Int64?
            var reads = 0
            while found == nil && from < log.logEndOffset && reads < 100 {
                reads += 1
                let result = try log.read(from: from, maxBytes: 1)
                let records = try splitBatches(result.bytes).flatMap { try $0.records() }
                found = records.first { $0.offset >= offset }?.offset
                guard result.nextOffset > from else { break }
                from = result.nextOffset
            }
            #expect(found == upcoming, "read from \(offset), seed \(rng.seed)")
        }
        try log.close()
    }

    @Test("compaction: with a small key map the pass cleans what the map covers and loses nothing")
    func smallKeyMap() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var rng = SeededRandom.fromEnvironment()
        let clock = ManualClock()
        let log = try openLog(dir.path, config: config(keysMax: 6), clock: clock)
        var model = KeyedModel()
        try Self.randomTraffic(log, &model, rng: &rng, batches: 250, keys: 20, timestamp: clock.nowMilliseconds())
        let result = try log.compact()
        #expect(result.mapEndOffset < log.logEndOffset)
        try expectCompactionInvariants(log, model, "seed \(rng.seed)")
        try log.close()
    }

    @Test("compaction: a crash at each stage leaves every key's newest value at its offset and no leftover files",
          arguments: [CompactionStage.cleanedWritten, .swapRenamed, .oldRenamedToDeleted])
    func crashDuringCompaction(stage: CompactionStage) throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var rng = SeededRandom.fromEnvironment()
        let clock = ManualClock()
        var model = KeyedModel()
        var activeBase: Int64 = 0
        try crashAfter(dir.path, config: config(), clock: clock) { log in
            try Self.randomTraffic(log, &model, rng: &rng, batches: 300, keys: 12, timestamp: clock.nowMilliseconds(),
                                   codecs: [.none, .zstd])
            activeBase = log.segments.last?.baseOffset ?? 0
            #expect(throws: CompactionInterrupted.self) { try log.compact(interruptAfter: stage) }
        }
        let log = try openLog(dir.path, config: config(), clock: clock)
        #expect(leftoverFiles(dir.path).isEmpty, "\(leftoverFiles(dir.path))")
        try expectCompactionInvariants(log, model, "stage \(stage), seed \(rng.seed)")
        if stage == .cleanedWritten {
            #expect(try readAllRecords(log) == model.records, "nothing was committed")
        } else {
            #expect(!log.recoveryReport.completedSwaps.isEmpty, "the committed swap is completed at open")
        }
        // A full pass afterwards reaches the fully compacted log.
        try log.compact()
        #expect(try readAllRecords(log) == model.fullyCompacted(activeBase: activeBase, tombstoneHorizon: Int64.min),
                "stage \(stage), seed \(rng.seed)")
        try log.close()
        let reopened = try openLog(dir.path, config: config(), clock: clock)
        try expectCompactionInvariants(reopened, model, "after reopen, stage \(stage), seed \(rng.seed)")
        try reopened.close()
    }

    @Test("compaction: concurrent appends and reads while compacting lose nothing")
    func compactionWithConcurrentAppends() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let seed = SeededRandom.fromEnvironment().seed
        let clock = ManualClock()
        let log = try openLog(dir.path, config: config(), clock: clock)
        let model = Shared(KeyedModel())
        let failures = Shared<[String]>([])
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) {
            var rng = SeededRandom(seed: seed)
            do {
                for _ in 0..<400 {
                    var local = model.withLock { $0 }
                    try Self.randomTraffic(log, &local, rng: &rng, batches: 1, keys: 15, tombstones: false,
                                           timestamp: clock.nowMilliseconds())
                    model.withLock { $0 = local }
                }
            } catch {
                failures.withLock { $0.append("writer: \(error)") }
            }
        }
        DispatchQueue.global().async(group: group) {
            var rng = SeededRandom(seed: seed &+ 1)
            for _ in 0..<600 {
                let end = log.logEndOffset
                guard end > 0 else { continue }
                let offset = Int64.random(in: 0..<end, using: &rng)
                do {
                    let result = try log.read(from: offset, maxBytes: 1500)
                    let batches = try splitBatches(result.bytes)
                    if let first = batches.first, first.lastOffset < offset {
                        failures.withLock { $0.append("read at \(offset) returned batch ending at \(first.lastOffset)") }
                    }
                } catch {
                    failures.withLock { $0.append("read at \(offset): \(error)") }
                }
            }
        }
        var passes = 0
        while group.wait(timeout: .now()) == .timedOut && passes < 200 {
            passes += 1
            do { try log.compact() } catch { failures.withLock { $0.append("compact: \(error)") } }
        }
        group.wait()
        let problems = failures.withLock { $0 }
        #expect(problems.isEmpty, "seed \(seed): \(problems.prefix(5))")
        try log.compact()
        try expectCompactionInvariants(log, model.withLock { $0 }, "seed \(seed)")
        try log.close()
        let reopened = try openLog(dir.path, config: config(), clock: clock)
        try expectCompactionInvariants(reopened, model.withLock { $0 }, "after reopen, seed \(seed)")
        try reopened.close()
    }
}
