import Dispatch
import SluiceCompression
import SluiceCore
import SluiceTestSupport
import Synchronization
import Testing

@testable import SluiceLog

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("append and read")
struct AppendReadTests {
    @Test("append: consecutive offsets across many batches and size-based segment rolls")
    func appendAssignsConsecutiveOffsetsAcrossRolls() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let config = testConfig(segmentBytes: 4 << 10)
        let log = try openLog(dir.path, config: config, clock: ManualClock())
        var expected: Int64 = 0
        for i in 0..<300 {
            let count = 1 + i % 5
            let info = try log.append(try contentBatch(firstOffset: 12_345, count: count))
            #expect(info.firstOffset == expected)
            #expect(info.lastOffset == expected + Int64(count) - 1)
            expected += Int64(count)
        }
        #expect(log.logEndOffset == expected)
        #expect(log.logStartOffset == 0)
        let segments = log.segments
        #expect(segments.count > 10, "small segments roll often")
        for (segment, next) in zip(segments, segments.dropFirst()) {
            #expect(segment.size <= config.segmentBytes)
            #expect(segment.size > 0)
            #expect(try segment.nextOffset() == next.baseOffset, "segments cover contiguous offset ranges")
        }
        #expect(segments[0].baseOffset == 0)
        // The producer's base offset (12 345) is replaced by the assigned one; records keep their deltas.
        let records = try readAllRecords(log)
        expectOffsets(records.map(\.offset), 0..<expected)
        try log.close()
    }

    @Test("read: nextOffset chains through every segment and returns identical content")
    func readChainsThroughEverything() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try openLog(dir.path, config: testConfig(segmentBytes: 4 << 10), clock: ManualClock())
        let codecs: [CompressionCodec] = [.none, .lz4, .zstd]
        let infos = try appendContent(log, batches: 200, recordsPerBatch: { 1 + $0 % 7 }, codec: { codecs[$0 % 3] })
        for maxBytes in [1, 100, 1000, 5000, 1 << 20] {
            let batches = try readAllBatches(log, maxBytes: maxBytes)
            #expect(batches.map(\.baseOffset) == infos.map(\.firstOffset), "maxBytes \(maxBytes)")
            let records = try batches.flatMap { try $0.records() }
            #expect(records.count == Int(log.logEndOffset))
            expectOffsets(records.map(\.offset), 0..<log.logEndOffset)
            #expect(records.allSatisfy { Content.matches($0) }, "maxBytes \(maxBytes)")
        }
        try log.close()
    }

    @Test("read: starts with the batch holding the offset, also from the middle of a batch")
    func readStartsWithTheHoldingBatch() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try openLog(dir.path, config: testConfig(segmentBytes: 4 << 10), clock: ManualClock())
        let infos = try appendContent(log, batches: 120, recordsPerBatch: { 1 + $0 % 6 })
        for info in infos {
            for offset in info.firstOffset...info.lastOffset {
                let result = try log.read(from: offset, maxBytes: 1)
                let batches = try splitBatches(result.bytes)
                #expect(batches.count == 1, "at least one batch even when maxBytes is smaller")
                #expect(batches.first?.baseOffset == info.firstOffset, "offset \(offset)")
                #expect(batches.first?.lastOffset == info.lastOffset)
                #expect(result.nextOffset == info.lastOffset + 1)
                #expect(result.segmentBaseOffset == info.segmentBaseOffset)
                #expect(result.position == info.position)
                #expect(result.logStartOffset == 0)
                #expect(result.logEndOffset == log.logEndOffset)
            }
        }
        try log.close()
    }

    @Test("read: maxBytes bounds the whole batches returned")
    func readHonoursMaxBytes() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try openLog(dir.path, config: testConfig(segmentBytes: 64 << 10), clock: ManualClock())
        try appendContent(log, batches: 50)
        let sizes = try readAllBatches(log).map(\.bytes.count)
        for batches in 1...10 {
            let whole = sizes[0..<batches].reduce(0, +)
            let exact = try log.read(from: 0, maxBytes: whole)
            #expect(exact.batchCount == batches)
            #expect(exact.bytes.count == whole)
            // One byte short of the next batch: still only whole batches.
            let almost = try log.read(from: 0, maxBytes: whole + sizes[batches] - 1)
            #expect(almost.batchCount == batches)
            #expect(try splitBatches(almost.bytes).count == batches)
        }
        try log.close()
    }

    @Test("read: at the log end returns nothing; outside the log throws offsetOutOfRange naming the range")
    func readOutOfRange() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try openLog(dir.path, config: testConfig(), clock: ManualClock())
        let empty = try log.read(from: 0, maxBytes: 1000)
        #expect(empty.bytes.isEmpty && empty.batchCount == 0 && empty.nextOffset == 0)
        try appendContent(log, batches: 10)
        let end = log.logEndOffset
        let atEnd = try log.read(from: end, maxBytes: 1000)
        #expect(atEnd.bytes.isEmpty)
        #expect(atEnd.batchCount == 0)
        #expect(atEnd.nextOffset == end)
        #expect(atEnd.logEndOffset == end)
        #expect(throws: LogError.offsetOutOfRange(requested: end + 1, logStartOffset: 0, logEndOffset: end)) {
            try log.read(from: end + 1, maxBytes: 1000)
        }
        #expect(throws: LogError.offsetOutOfRange(requested: -1, logStartOffset: 0, logEndOffset: end)) {
            try log.read(from: -1, maxBytes: 1000)
        }
        // After the log start moved (truncation below the start restarts the log there).
        try log.truncateFully(startingAt: 500)
        try appendContent(log, batches: 2)
        #expect(throws: LogError.offsetOutOfRange(requested: 499, logStartOffset: 500, logEndOffset: 506)) {
            try log.read(from: 499, maxBytes: 1000)
        }
        let description = "\(LogError.offsetOutOfRange(requested: 499, logStartOffset: 500, logEndOffset: 506))"
        #expect(description.contains("500") && description.contains("506"))
        try log.close()
    }

    @Test("read: maxOffset bounds what is returned to batches that end below it")
    func readHonoursMaxOffset() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try openLog(dir.path, config: testConfig(segmentBytes: 4 << 10), clock: ManualClock())
        let infos = try appendContent(log, batches: 100, recordsPerBatch: { 1 + $0 % 4 })
        let end = log.logEndOffset
        for maxOffset in [Int64(0), 1, 5, 37, 100, end - 1, end, end + 10] {
            var offset: Int64 = 0
            var seen: [Int64] = []
            var reads = 0
            while offset < min(maxOffset, end) && reads < 10_000 {
                reads += 1
                let result = try log.read(from: offset, maxBytes: 700, maxOffset: maxOffset)
                let batches = try splitBatches(result.bytes)
                if batches.isEmpty { break }
                for batch in batches {
                    #expect(batch.lastOffset < maxOffset, "batch \(batch.baseOffset)...\(batch.lastOffset) past maxOffset \(maxOffset)")
                    seen.append(batch.baseOffset)
                }
                offset = result.nextOffset
            }
            let wanted = infos.filter { $0.lastOffset < maxOffset }.map(\.firstOffset)
            #expect(seen == wanted, "maxOffset \(maxOffset)")
        }
        // A batch that straddles maxOffset is not returned, and nextOffset stays put.
        let straddling = try #require(infos.first { $0.lastOffset > $0.firstOffset })
        let result = try log.read(from: straddling.firstOffset, maxBytes: 1 << 20, maxOffset: straddling.lastOffset)
        #expect(result.bytes.isEmpty)
        #expect(result.nextOffset == straddling.firstOffset)
        try log.close()
    }

    @Test("append: a batch with a bad CRC or a wrong record count is refused and the log stays usable")
    func appendRejectsInvalidBatches() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try openLog(dir.path, config: testConfig(), clock: ManualClock())
        try appendContent(log, batches: 3)
        let end = log.logEndOffset
        let size = log.sizeInBytes

        var corrupted = try contentBatch(firstOffset: 0, count: 3).bytes
        corrupted[corrupted.count - 3] ^= 0x01
        let badCRC = RecordBatch(unchecked: corrupted)
        #expect {
            try log.append(badCRC)
        } throws: { error in
            guard case LogError.invalidBatch(.crcMismatch) = error else { return false }
            return true
        }

        // Three records that claim a last offset delta of 5.
        let records = (0..<Int64(3)).map { Content.record($0) }
        let wrongDelta = try RecordBatch.build(records: records, lastOffsetDelta: 5)
        #expect {
            try log.append(wrongDelta)
        } throws: { error in
            guard case LogError.unacceptableBatch = error else { return false }
            return true
        }
        let noRecords = try RecordBatch.build(records: [])
        #expect {
            try log.append(noRecords)
        } throws: { error in
            guard case LogError.unacceptableBatch = error else { return false }
            return true
        }

        // A batch whose length field says more than was given.
        var short = try contentBatch(firstOffset: 0, count: 2).bytes
        short.removeLast(4)
        #expect {
            try log.append(RecordBatch(unchecked: short))
        } throws: { error in
            guard case LogError.invalidBatch = error else { return false }
            return true
        }

        // Bad magic.
        var magic = try contentBatch(firstOffset: 0, count: 2).bytes
        magic[RecordBatchHeader.Field.magic] = 1
        #expect {
            try log.append(RecordBatch(unchecked: magic))
        } throws: { error in
            guard case LogError.invalidBatch(.unsupportedMagic(1)) = error else { return false }
            return true
        }

        #expect(log.logEndOffset == end)
        #expect(log.sizeInBytes == size)
        try appendContent(log, batches: 2)
        let records2 = try readAllRecords(log)
        expectOffsets(records2.map(\.offset), 0..<log.logEndOffset)
        #expect(records2.allSatisfy { Content.matches($0) })
        try log.close()
    }

    @Test("roll: by age with segment.ms on the manual clock")
    func rollByAge() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let clock = ManualClock()
        let log = try openLog(dir.path, config: testConfig(segmentBytes: 1 << 20, segmentMilliseconds: 60_000),
                                        clock: clock)
        try appendContent(log, batches: 5)
        clock.advance(milliseconds: 59_999)
        try appendContent(log, batches: 1)
        #expect(log.segments.count == 1, "younger than segment.ms: no roll")
        clock.advance(milliseconds: 1)
        let info = try log.append(try contentBatch(firstOffset: log.logEndOffset, count: 2))
        #expect(log.segments.count == 2, "segment.ms reached: the next append rolls")
        #expect(info.segmentBaseOffset == info.firstOffset)
        #expect(info.position == 0)
        // The new segment's age counts from its creation.
        clock.advance(milliseconds: 30_000)
        try appendContent(log, batches: 3)
        #expect(log.segments.count == 2)
        clock.advance(milliseconds: 30_000)
        try appendContent(log, batches: 1)
        #expect(log.segments.count == 3)
        // An empty active segment never rolls, however old.
        clock.advance(milliseconds: 10 * 60_000)
        expectOffsets(try readAllRecords(log).map(\.offset), 0..<log.logEndOffset)
        try log.close()
    }

    @Test("reopen: a clean close keeps everything, reports a clean shutdown and offsets continue")
    func cleanReopenKeepsEverything() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let config = testConfig(segmentBytes: 4 << 10)
        let (end, segmentBases, before) = try withCleanLog(dir.path, config: config) { log in
            try appendContent(log, batches: 150, codec: { $0 % 2 == 0 ? .none : .lz4 })
            return (log.logEndOffset, log.segments.map(\.baseOffset), try readAllRecords(log))
        }
        #expect(FileSystem.exists("\(dir.path)/\(Checkpoints.cleanShutdownFile)"))
        let log = try openLog(dir.path, config: config, clock: ManualClock())
        #expect(log.recoveryReport.cleanShutdown)
        #expect(log.recoveryReport.truncations.isEmpty)
        #expect(log.recoveryReport.scannedSegments.isEmpty)
        #expect(!FileSystem.exists("\(dir.path)/\(Checkpoints.cleanShutdownFile)"),
                "the marker goes at open, so a crash from now on is not taken for a clean stop")
        #expect(log.logEndOffset == end)
        #expect(log.segments.map(\.baseOffset) == segmentBases)
        #expect(try readAllRecords(log) == before)
        let info = try log.append(try contentBatch(firstOffset: end, count: 2))
        #expect(info.firstOffset == end)
        expectOffsets(try readAllRecords(log).map(\.offset), 0..<(end + 2))
        try log.close()
    }

    @Test("indexes: entries written live equal the ones rebuilt from the .log")
    func liveIndexEqualsRebuiltIndex() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let config = testConfig(segmentBytes: 8 << 10, indexIntervalBytes: 300)
        // Non-monotonic timestamps exercise the time index's running maximum.
        var rng = SeededRandom.fromEnvironment()
        let live = try withCleanLog(dir.path, config: config) { log in
            for _ in 0..<300 {
                let count = Int.random(in: 1...4, using: &rng)
                let first = log.logEndOffset
                let records = (0..<Int64(count)).map { i in
                    Record(offset: first + i, timestamp: Int64.random(in: 0...100_000, using: &rng),
                           key: nil, value: Content.value(first + i, size: Int.random(in: 0...120, using: &rng)))
                }
                try log.append(try RecordBatch.build(records: records))
            }
            return try log.segments.map { try $0.indexEntries() }
        }
        #expect(live.count > 5, "seed \(rng.seed)")
        for (i, entries) in live.enumerated() {
            #expect(!entries.offsets.isEmpty && !entries.times.isEmpty, "segment \(i), seed \(rng.seed)")
        }
        for name in listDirectory(dir.path) where name.hasSuffix(".index") || name.hasSuffix(".timeindex") {
            removeFile("\(dir.path)/\(name)")
        }
        let log = try openLog(dir.path, config: config, clock: ManualClock())
        let rebuilt = try log.segments.map { try $0.indexEntries() }
        // The active segment was open when the files went; every sealed one must match exactly, and the
        // active one too (it has no final time entry in either case).
        #expect(rebuilt.count == live.count)
        for (i, (a, b)) in zip(live, rebuilt).enumerated() {
            #expect(a.offsets == b.offsets, "offset index of segment \(i), seed \(rng.seed)")
            #expect(a.times == b.times, "time index of segment \(i), seed \(rng.seed)")
        }
        // And the files on disk hold the same entries.
        for segment in log.segments.dropLast() {
            let stored = IndexFormat.decodeOffsetIndex(readFileBytes(segmentPath(dir.path, segment.baseOffset, .index)) ?? [])
            #expect(stored == (try segment.indexEntries().offsets), "seed \(rng.seed)")
        }
        try log.close()
    }

    @Test("concurrency: readers on other threads never see a partial or wrong batch while one thread appends")
    func concurrentReadersSeeWholeBatches() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try openLog(dir.path, config: testConfig(segmentBytes: 6 << 10, indexIntervalBytes: 256),
                                        clock: ManualClock())
        let writerBatches = 1500
        let readers = 3
        let readsPerReader = 1500
        let failures = Shared<[String]>([])
        let recordsSeen = Shared(0)
        let group = DispatchGroup()
        let seed = SeededRandom.fromEnvironment().seed

        DispatchQueue.global().async(group: group) {
            do {
                // The single writer knows the next offset, so content can be a function of it.
                for i in 0..<writerBatches {
                    let count = 1 + i % 5
                    let batch = try contentBatch(firstOffset: log.logEndOffset, count: count,
                                                 codec: i % 4 == 3 ? .lz4 : .none, valueSize: 20 + i % 50)
                    try log.append(batch)
                }
            } catch {
                failures.withLock { $0.append("writer: \(error)") }
            }
        }
        for reader in 0..<readers {
            DispatchQueue.global().async(group: group) {
                var rng = SeededRandom(seed: seed &+ UInt64(reader))
                for _ in 0..<readsPerReader {
                    let end = log.logEndOffset
                    guard end > 0 else { continue }
                    let offset = Int64.random(in: 0..<end, using: &rng)
                    do {
                        let result = try log.read(from: offset, maxBytes: Int.random(in: 1...3000, using: &rng))
                        let batches = try splitBatches(result.bytes)
                        guard let first = batches.first, first.baseOffset <= offset, first.lastOffset >= offset else {
                            failures.withLock { $0.append("read at \(offset) started with the wrong batch") }
                            continue
                        }
                        var expectedNext = first.baseOffset
                        for batch in batches {
                            let records = try batch.records()
                            let ok = batch.baseOffset == expectedNext
                                && records.count == Int(batch.recordCount)
                                && records.enumerated().allSatisfy { i, record in
                                    record.offset == batch.baseOffset + Int64(i)
                                        && record.key == Content.key(record.offset)
                                        && record.timestamp == Content.timestamp(record.offset)
                                        && record.value?.starts(with: Array("value-\(record.offset)|".utf8)) == true
                                }
                            if !ok { failures.withLock { $0.append("wrong content in batch \(batch.baseOffset)") } }
                            expectedNext = batch.nextOffset
                            recordsSeen.withLock { $0 += records.count }
                        }
                        if result.nextOffset != expectedNext {
                            failures.withLock { $0.append("read at \(offset): nextOffset \(result.nextOffset), expected \(expectedNext)") }
                        }
                    } catch {
                        failures.withLock { $0.append("read at \(offset): \(error)") }
                    }
                }
            }
        }
        group.wait()
        let problems = failures.withLock { $0 }
        #expect(problems.isEmpty, "seed \(seed): \(problems.prefix(5))")
        #expect(recordsSeen.withLock { $0 } > 0)
        let records = try readAllRecords(log)
        expectOffsets(records.map(\.offset), 0..<log.logEndOffset)
        try log.close()
    }

    @Test("roll: a batch larger than segment.bytes goes alone into a fresh segment")
    func oversizedBatch() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try openLog(dir.path, config: testConfig(segmentBytes: 1 << 10))
        try appendContent(log, batches: 2)
        let big = try log.append(try contentBatch(firstOffset: log.logEndOffset, count: 10, valueSize: 500))
        #expect(big.position == 0, "the full active segment rolls first")
        let after = try log.append(try contentBatch(firstOffset: log.logEndOffset, count: 1))
        #expect(after.position == 0 && after.segmentBaseOffset == big.lastOffset + 1, "and rolls again after it")
        let records = try readAllRecords(log)
        expectOffsets(records.map(\.offset), 0..<log.logEndOffset)
        #expect(records.allSatisfy { Content.matches($0, valueSize: $0.offset >= big.firstOffset && $0.offset <= big.lastOffset ? 500 : 40) })
        try log.close()
    }

    // A follower copying a leader whose log starts far above ours: the relative offset of such a batch does
    // not fit the index formats, so even an empty segment must roll (or refuse), never trap. Run in a
    // child process so that a trap fails this test instead of killing the whole run.
    @Test("append: a batch with offsets beyond 2^32 above an empty active segment's base is placed, not trapped on")
    func appendFarAboveEmptySegmentBase() async {
        await #expect(processExitsWith: .success) {
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            let log = try openLog(dir.path, config: testConfig())
            let far: Int64 = 5_000_000_000
            do {
                try log.appendWithOffsets([try contentBatch(firstOffset: far, count: 3)])
            } catch LogError.unacceptableBatch {
                try log.close()
                return  // refusing it is acceptable too
            }
            guard log.logEndOffset == far + 3 else { exit(2) }
            let records = try readAllRecords(log, from: far)
            guard records.map(\.offset) == [far, far + 1, far + 2] else { exit(3) }
            try log.close()
            let reopened = try openLog(dir.path, config: testConfig())
            guard reopened.logEndOffset == far + 3 else { exit(4) }
            try reopened.close()
        }
    }

    @Test("close: a closed log refuses appends")
    func closedLogRefusesAppends() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try openLog(dir.path, config: testConfig(), clock: ManualClock())
        try appendContent(log, batches: 2)
        try log.close()
        #expect(throws: LogError.closed(directory: dir.path)) {
            try log.append(try contentBatch(firstOffset: 0, count: 1))
        }
        try log.close()  // idempotent
    }

    @Test("append: appendWithOffsets keeps the producer's offsets and refuses ones below the log end")
    func appendWithOffsets() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try openLog(dir.path, config: testConfig(), clock: ManualClock())
        try log.appendWithOffsets([try contentBatch(firstOffset: 0, count: 3), try contentBatch(firstOffset: 10, count: 2)])
        #expect(log.logEndOffset == 12)
        #expect {
            try log.appendWithOffsets([try contentBatch(firstOffset: 11, count: 1)])
        } throws: { error in
            guard case LogError.unacceptableBatch = error else { return false }
            return true
        }
        let records = try readAllRecords(log)
        #expect(records.map(\.offset) == [0, 1, 2, 10, 11])
        #expect(records.allSatisfy { Content.matches($0) })
        // A read from inside the gap starts with the next batch.
        let result = try log.read(from: 5, maxBytes: 1)
        #expect(try splitBatches(result.bytes).first?.baseOffset == 10)
        try log.close()
    }
}
