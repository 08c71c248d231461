// Crash and corruption scenarios. A crash is simulated by abandoning the log without `close()` and
// editing its files before the next open: a process crash keeps every completed write (the page cache
// survives it), so the edits stand for what a power loss or a bad disk could leave.

import SluiceCompression
import SluiceCore
import SluiceTestSupport
import Testing

@testable import SluiceLog

@Suite("recovery")
struct RecoveryTests {
    /// 8 KiB segments of about 230-byte batches: ~35 batches per segment, an index entry every ~3.
    let config = testConfig(segmentBytes: 8 << 10, indexIntervalBytes: 512)

    /// Appends `batches` content batches and abandons the log; returns what the appends reported.
    func crashedLog(_ dir: TemporaryDirectory, batches: Int, config: LogConfig? = nil) throws -> [AppendInfo] {
        var infos: [AppendInfo] = []
        try crashAfter(dir.path, config: config ?? self.config) { log in
            infos = try appendContent(log, batches: batches)
        }
        return infos
    }

    func batchSize(_ info: AppendInfo, in infos: [AppendInfo], dir: TemporaryDirectory) -> Int {
        if let next = infos.first(where: { $0.firstOffset > info.firstOffset }), next.segmentBaseOffset == info.segmentBaseOffset {
            return next.position - info.position
        }
        return fileSize(segmentPath(dir.path, info.segmentBaseOffset)) - info.position
    }

    /// The records below `end` are exactly the content records `0..<end`.
    func expectIntact(_ log: PartitionLog, end: Int64, _ comment: Comment? = nil) throws {
        let records = try readAllRecords(log)
        #expect(log.logEndOffset == end, comment)
        expectOffsets(records.map(\.offset), 0..<end, comment)
        #expect(records.allSatisfy { Content.matches($0) }, comment)
    }

    @Test("recovery: torn write in the last batch of the active segment", arguments: [1, 30, 60, 61, 100, -1])
    func tornWriteInLastBatch(cutInto: Int) throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let infos = try crashedLog(dir, batches: 100)
        let last = try #require(infos.last)
        #expect(last.segmentBaseOffset > 0, "the test needs several segments")
        let path = segmentPath(dir.path, last.segmentBaseOffset)
        let size = batchSize(last, in: infos, dir: dir)
        let cut = last.position + (cutInto < 0 ? size - 1 : cutInto)
        cutFile(path, to: cut)

        let log = try openLog(dir.path, config: config)
        let report = log.recoveryReport
        #expect(!report.cleanShutdown)
        #expect(report.truncations.count == 1)
        let truncation = try #require(report.truncations.first)
        #expect(truncation.file == path)
        #expect(truncation.position == last.position)
        #expect(truncation.bytesRemoved == cut - last.position)
        #expect(fileSize(path) == last.position)
        try expectIntact(log, end: last.firstOffset)
        let info = try log.append(try contentBatch(firstOffset: last.firstOffset, count: 3))
        #expect(info.firstOffset == last.firstOffset, "appends continue at the cut")
        try expectIntact(log, end: last.firstOffset + 3)
        try log.close()
    }

    @Test("recovery: torn first batch of a freshly rolled segment")
    func tornFirstBatchOfNewSegment() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var infos = try crashedLog(dir, batches: 60)
        // Append until a batch opens a new segment, then tear it.
        try crashAfter(dir.path, config: config) { log in
            while true {
                let info = try log.append(try contentBatch(firstOffset: log.logEndOffset, count: 3))
                infos.append(info)
                if info.position == 0 { break }
            }
        }
        let last = try #require(infos.last)
        cutFile(segmentPath(dir.path, last.segmentBaseOffset), to: 20)
        let log = try openLog(dir.path, config: config)
        #expect(log.recoveryReport.truncations.map(\.position) == [0])
        try expectIntact(log, end: last.firstOffset)
        try appendContent(log, batches: 40)
        try expectIntact(log, end: last.firstOffset + 120)
        try log.close()
        // And again after a clean reopen.
        let reopened = try openLog(dir.path, config: config)
        try expectIntact(reopened, end: last.firstOffset + 120)
        try reopened.close()
    }

    @Test("recovery: a flipped bit in a middle batch of the active segment truncates there")
    func flippedBitInActiveSegment() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let infos = try crashedLog(dir, batches: 100)
        let activeBase = try #require(infos.last?.segmentBaseOffset)
        let active = infos.filter { $0.segmentBaseOffset == activeBase }
        #expect(active.count >= 5, "the test needs several batches in the active segment")
        let victim = active[active.count / 2]
        let path = segmentPath(dir.path, activeBase)
        // A byte of the last record's value: only the CRC can notice.
        flipBit(path, at: victim.position + batchSize(victim, in: infos, dir: dir) - 10)

        let log = try openLog(dir.path, config: config)
        let truncation = try #require(log.recoveryReport.truncations.first)
        #expect(log.recoveryReport.truncations.count == 1)
        #expect(truncation.file == path)
        #expect(truncation.position == victim.position)
        guard case .crcMismatch = truncation.reason else {
            Issue.record("expected a CRC mismatch, got \(truncation.reason)")
            return
        }
        try expectIntact(log, end: victim.firstOffset)
        try appendContent(log, batches: 3)
        try expectIntact(log, end: victim.firstOffset + 9)
        try log.close()
    }

    @Test("recovery: a flipped bit in a closed segment below the recovery point is not scanned; reading it throws corruptBatch")
    func flippedBitInClosedSegment() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let infos = try crashedLog(dir, batches: 100)
        let first = infos.filter { $0.segmentBaseOffset == 0 }
        let victim = first[first.count / 3]
        let path = segmentPath(dir.path, 0)
        let position = victim.position + batchSize(victim, in: infos, dir: dir) - 10
        flipBit(path, at: position)

        let log = try openLog(dir.path, config: config)
        let report = log.recoveryReport
        #expect(!report.scannedSegments.contains(0), "segment 0 lies below the recovery point")
        #expect(report.truncations.isEmpty)
        let end = try #require(infos.last).lastOffset + 1
        #expect(log.logEndOffset == end)
        for offset in victim.firstOffset...victim.lastOffset {
            #expect(throws: LogError.self) { try log.read(from: offset, maxBytes: 1 << 20) }
            do {
                _ = try log.read(from: offset, maxBytes: 1)
                Issue.record("read of the corrupt batch at \(offset) returned data")
            } catch LogError.corruptBatch(let file, let at, let reason) {
                #expect(file == path)
                #expect(at == victim.position)
                guard case .crcMismatch = reason else {
                    Issue.record("expected a CRC mismatch, got \(reason)")
                    continue
                }
            }
        }
        // Reading from before it either stops short of it or reports it; it never returns its bytes.
        let before = first[first.count / 3 - 2]
        do {
            let result = try log.read(from: before.firstOffset, maxBytes: 1 << 20)
            let batches = try splitBatches(result.bytes)
            #expect(batches.allSatisfy { $0.lastOffset < victim.firstOffset })
            #expect(!batches.isEmpty)
        } catch LogError.corruptBatch(let file, let at, _) {
            #expect(file == path && at == victim.position)
        }
        // Everything else reads back intact.
        for info in infos where info.firstOffset != victim.firstOffset {
            let batches = try splitBatches(try log.read(from: info.firstOffset, maxBytes: 1).bytes)
            #expect(batches.count == 1)
            #expect(try batches[0].records().allSatisfy { Content.matches($0) })
        }
        try log.close()
    }

    @Test("recovery: a zero-filled tail of the active segment is cut back and nothing is lost")
    func zeroFilledTail() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let infos = try crashedLog(dir, batches: 80)
        let last = try #require(infos.last)
        let path = segmentPath(dir.path, last.segmentBaseOffset)
        let size = fileSize(path)
        appendToFile(path, [UInt8](repeating: 0, count: 4096))

        let log = try openLog(dir.path, config: config)
        let truncation = try #require(log.recoveryReport.truncations.first)
        #expect(truncation.file == path)
        #expect(truncation.position == size)
        #expect(truncation.bytesRemoved == 4096)
        #expect(fileSize(path) == size)
        try expectIntact(log, end: last.lastOffset + 1)
        try appendContent(log, batches: 2)
        try expectIntact(log, end: last.lastOffset + 7)
        try log.close()
    }

    @Test("recovery: garbage after the last batch is cut even when the shutdown was clean")
    func garbageAfterCleanShutdown() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let end = try withCleanLog(dir.path, config: config) { log in
            try appendContent(log, batches: 50)
            return log.logEndOffset
        }
        let activeBase = try #require(listDirectory(dir.path).filter { $0.hasSuffix(".log") }.last)
        appendToFile("\(dir.path)/\(activeBase)", [UInt8](repeating: 0, count: 1000))
        let log = try openLog(dir.path, config: config)
        try expectIntact(log, end: end)
        try appendContent(log, batches: 2)
        try expectIntact(log, end: end + 6)
        try log.close()
    }

    enum IndexLoss: String, CaseIterable, CustomTestStringConvertible {
        case offsetIndex, timeIndex, both
        var testDescription: String { rawValue }
    }

    @Test("recovery: missing index files are rebuilt with the entries appending wrote", arguments: IndexLoss.allCases)
    func missingIndexFilesAreRebuilt(loss: IndexLoss) throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var rng = SeededRandom.fromEnvironment()
        var before: [(offsets: [OffsetIndexEntry], times: [TimeIndexEntry])] = []
        var answers: [Int64: Int64?] = [:]
        try crashAfter(dir.path, config: config) { log in
            try appendRandomTimestamps(log, batches: 150, rng: &rng)
            before = try log.segments.map { try $0.indexEntries() }
            for t in stride(from: Int64(-10), through: 101_000, by: 1000) { answers[t] = try log.offset(forTimestamp: t) }
        }
        #expect(before.count > 3, "seed \(rng.seed)")
        for name in listDirectory(dir.path) {
            if (loss != .timeIndex && name.hasSuffix(".index")) || (loss != .offsetIndex && name.hasSuffix(".timeindex")) {
                removeFile("\(dir.path)/\(name)")
            }
        }
        let log = try openLog(dir.path, config: config)
        let after = try log.segments.map { try $0.indexEntries() }
        #expect(after.count == before.count)
        for (i, (a, b)) in zip(before, after).enumerated() {
            #expect(a.offsets == b.offsets, "offset index of segment \(i), seed \(rng.seed)")
            #expect(a.times == b.times, "time index of segment \(i), seed \(rng.seed)")
        }
        for segment in log.segments {
            #expect(FileSystem.exists(segmentPath(dir.path, segment.baseOffset, .index)))
            #expect(FileSystem.exists(segmentPath(dir.path, segment.baseOffset, .timeIndex)))
        }
        for (t, expected) in answers {
            #expect(try log.offset(forTimestamp: t) == expected, "timestamp \(t), seed \(rng.seed)")
        }
        let records = try readAllRecords(log)
        expectOffsets(records.map(\.offset), 0..<log.logEndOffset)
        try log.close()
    }

    @Test("recovery: index files of random bytes are rebuilt and reads stay right")
    func randomIndexFilesAreRebuilt() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var rng = SeededRandom.fromEnvironment()
        let infos = try crashedLog(dir, batches: 120)
        for name in listDirectory(dir.path) where name.hasSuffix(".index") || name.hasSuffix(".timeindex") {
            let entry = name.hasSuffix(".index") ? OffsetIndexEntry.size : TimeIndexEntry.size
            // Whole entries half of the time, so the size check alone does not catch it.
            let count = Bool.random(using: &rng) ? entry * Int.random(in: 1...40, using: &rng) : Int.random(in: 1...300, using: &rng)
            #expect(writeFileBytes("\(dir.path)/\(name)", rng.bytes(count)))
        }
        let log = try openLog(dir.path, config: config)
        try expectReadsRight(log, infos, "seed \(rng.seed)")
        try log.close()
    }

    @Test("recovery: an index of the right size whose positions point at the wrong bytes is not trusted")
    func wrongPositionsInIndex() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let infos = try crashedLog(dir, batches: 120)
        // Every entry but the last (which the loader checks) moves to the next batch's start, or one
        // byte further when that would not increase: still strictly increasing, inside the file.
        for base in Set(infos.map(\.segmentBaseOffset)) {
            let path = segmentPath(dir.path, base, .index)
            var entries = try #require(IndexFormat.decodeOffsetIndex(readFileBytes(path) ?? []))
            let positions = infos.filter { $0.segmentBaseOffset == base }.map(\.position)
            for i in 0..<max(0, entries.count - 1) {
                let current = Int(entries[i].position)
                let next = positions.first { $0 > current } ?? current + 1
                let moved = next < Int(entries[i + 1].position) ? next : current + 1
                entries[i].position = UInt32(moved)
            }
            #expect(writeFileBytes(path, IndexFormat.encode(entries)))
        }
        let log = try openLog(dir.path, config: config)
        try expectReadsRight(log, infos)
        try log.close()
    }

    /// Every offset reads back as the batch that holds it, with the right content.
    func expectReadsRight(_ log: PartitionLog, _ infos: [AppendInfo], _ comment: String = "") throws {
        var wrong: [String] = []
        for info in infos {
            for offset in info.firstOffset...info.lastOffset {
                do {
                    let batches = try splitBatches(try log.read(from: offset, maxBytes: 1).bytes)
                    if batches.first?.baseOffset != info.firstOffset {
                        wrong.append("read at \(offset) returned batch \(batches.first?.baseOffset ?? -1), not \(info.firstOffset)")
                    } else if try batches.first?.records().allSatisfy({ Content.matches($0) }) != true {
                        wrong.append("read at \(offset) returned wrong content")
                    }
                } catch {
                    wrong.append("read at \(offset) failed: \(error)")
                }
            }
            let found = try? log.offset(forTimestamp: Content.timestamp(info.firstOffset))
            if found != info.firstOffset {
                wrong.append("time lookup of \(info.firstOffset) gave \(String(describing: found))")
            }
        }
        #expect(wrong.isEmpty, "\(wrong.count) wrong answers, e.g. \(wrong.prefix(4)) \(comment)")
        let records = try readAllRecords(log)
        expectOffsets(records.map(\.offset), 0..<log.logEndOffset, Comment(rawValue: comment))
    }

    @Test("recovery: a truncated recovery-point checkpoint is reported and the log falls back to a full scan")
    func truncatedRecoveryPoint() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let infos = try crashedLog(dir, batches: 100)
        let checkpoint = "\(dir.path)/\(Checkpoints.recoveryPointFile)"
        cutFile(checkpoint, to: 10)
        let total = listDirectory(dir.path).filter { $0.hasSuffix(".log") }.reduce(0) { $0 + fileSize("\(dir.path)/\($1)") }

        let log = try openLog(dir.path, config: config)
        let report = log.recoveryReport
        #expect(report.checkpointProblems.contains { $0.contains(Checkpoints.recoveryPointFile) })
        #expect(report.scannedSegments == log.segments.map(\.baseOffset), "a full scan")
        #expect(report.scannedBytes == total)
        #expect(report.truncations.isEmpty)
        try expectIntact(log, end: try #require(infos.last).lastOffset + 1)
        try log.close()
        #expect(fileSize(checkpoint) == 36, "a clean close writes a good checkpoint again")
    }

    @Test("recovery: an unreadable log-start checkpoint is reported and the log starts at its first segment")
    func garbageLogStartCheckpoint() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let config = testConfig(segmentBytes: 4 << 10, retentionBytes: 12 << 10)
        var start: Int64 = 0
        var end: Int64 = 0
        try withCleanLog(dir.path, config: config) { log in
            try appendContent(log, batches: 80)
            try log.enforceRetention()
            start = log.logStartOffset
            end = log.logEndOffset
        }
        #expect(start > 0)
        let path = "\(dir.path)/\(Checkpoints.logStartOffsetFile)"
        var bytes = try #require(readFileBytes(path))
        #expect(bytes.count == 20)
        bytes[12] ^= 0x01  // inside the offset: only the CRC notices
        #expect(writeFileBytes(path, bytes))
        let log = try openLog(dir.path, config: config)
        #expect(log.recoveryReport.checkpointProblems.contains { $0.contains(Checkpoints.logStartOffsetFile) })
        #expect(log.logStartOffset == start, "the first segment's base, which retention made the log start")
        #expect(log.logEndOffset == end)
        let records = try readAllRecords(log)
        expectOffsets(records.map(\.offset), start..<end)
        #expect(records.allSatisfy { Content.matches($0) })
        try log.close()
        #expect(Checkpoints.readLogStartOffset(dir.path).isValid, "rewritten at close")
    }

    @Test("recovery: checkpoint files with a wrong size, magic, version or CRC read as invalid")
    func checkpointFraming() throws {
        let point = Checkpoints.RecoveryPoint(offset: 1234, segmentBaseOffset: 1000, position: 8301)
        let good = Checkpoints.encode(point)
        #expect(good.count == 36)
        guard case .valid(let decoded) = Checkpoints.decodeRecoveryPoint(good) else {
            Issue.record("a freshly encoded recovery point does not decode")
            return
        }
        #expect(decoded == point)
        var variants: [(String, [UInt8])] = [("short", Array(good.prefix(10))), ("long", good + [0])]
        for (name, index) in [("magic", 0), ("version", 5), ("offset", 10), ("crc", 35)] {
            var bytes = good
            bytes[index] ^= 0x40
            variants.append((name, bytes))
        }
        for (name, bytes) in variants {
            guard case .invalid = Checkpoints.decodeRecoveryPoint(bytes) else {
                Issue.record("a recovery point with a bad \(name) was accepted")
                continue
            }
        }
        let start = Checkpoints.encode(logStartOffset: 42)
        #expect(start.count == 20)
        guard case .valid(42) = Checkpoints.decodeLogStartOffset(start) else {
            Issue.record("a freshly encoded log start offset does not decode")
            return
        }
        guard case .invalid = Checkpoints.decodeLogStartOffset(Array(start.dropLast())) else {
            Issue.record("a short log start checkpoint was accepted")
            return
        }
    }

    @Test("recovery: a full scan rebuilds closed segments' indexes exactly as appending wrote them",
          arguments: [false, true])
    func fullScanRebuildsSealedIndexesExactly(randomTimestamps: Bool) throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var rng = SeededRandom.fromEnvironment()
        var before: [(offsets: [OffsetIndexEntry], times: [TimeIndexEntry])] = []
        try crashAfter(dir.path, config: config) { log in
            if randomTimestamps {
                try appendRandomTimestamps(log, batches: 120, rng: &rng)
            } else {
                try appendContent(log, batches: 120)
            }
            before = try log.segments.map { try $0.indexEntries() }
        }
        removeFile("\(dir.path)/\(Checkpoints.recoveryPointFile)")
        let log = try openLog(dir.path, config: config)
        #expect(log.recoveryReport.scannedSegments.count == before.count)
        let after = try log.segments.map { try $0.indexEntries() }
        for (i, (a, b)) in zip(before, after).enumerated() {
            #expect(a.offsets == b.offsets, "offset index of segment \(i), seed \(rng.seed)")
            #expect(a.times == b.times, "time index of segment \(i), seed \(rng.seed)")
        }
        try log.close()
    }

    @Test("recovery: corruption met by a full scan cuts there and drops every later segment")
    func fullScanCorruptionDropsLaterSegments() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let infos = try crashedLog(dir, batches: 150)
        let bases = Array(Set(infos.map(\.segmentBaseOffset))).sorted()
        #expect(bases.count >= 4)
        let victimSegment = bases[1]
        let inSegment = infos.filter { $0.segmentBaseOffset == victimSegment }
        let victim = inSegment[inSegment.count / 2]
        flipBit(segmentPath(dir.path, victimSegment), at: victim.position + batchSize(victim, in: infos, dir: dir) - 10)
        removeFile("\(dir.path)/\(Checkpoints.recoveryPointFile)")

        let log = try openLog(dir.path, config: config)
        let report = log.recoveryReport
        #expect(report.truncations.map(\.position) == [victim.position])
        #expect(report.truncations.map(\.file) == [segmentPath(dir.path, victimSegment)])
        #expect(report.removedSegments == bases[2...].map { segmentPath(dir.path, $0) })
        #expect(log.segments.map(\.baseOffset) == Array(bases[0...1]))
        for base in bases[2...] {
            #expect(!FileSystem.exists(segmentPath(dir.path, base)))
            #expect(!FileSystem.exists(segmentPath(dir.path, base, .index)))
        }
        try expectIntact(log, end: victim.firstOffset)
        try appendContent(log, batches: 60)
        try expectIntact(log, end: victim.firstOffset + 180)
        try log.close()
    }

    @Test("recovery: after an unclean shutdown only the segments from the recovery point on are scanned")
    func uncleanRecoveryScansOnlyTheTail() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let infos = try crashedLog(dir, batches: 600)
        let activeBase = try #require(infos.last?.segmentBaseOffset)
        let activeSize = fileSize(segmentPath(dir.path, activeBase))
        let total = listDirectory(dir.path).filter { $0.hasSuffix(".log") }.reduce(0) { $0 + fileSize("\(dir.path)/\($1)") }

        let log = try openLog(dir.path, config: config)
        let report = log.recoveryReport
        #expect(!report.cleanShutdown)
        #expect(report.scannedSegments == [activeBase])
        #expect(report.scannedBytes <= activeSize)
        #expect(report.scannedBytes * 10 < total, "scanned \(report.scannedBytes) of \(total) bytes")
        try expectIntact(log, end: try #require(infos.last).lastOffset + 1)
        try log.close()
    }

    @Test("recovery: after a flush only the bytes appended since are scanned")
    func recoveryScansFromTheFlushedPosition() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let config = testConfig(segmentBytes: 64 << 10, indexIntervalBytes: 512, recoveryCheckpointIntervalBytes: 1)
        var flushedPosition = 0
        var end: Int64 = 0
        try crashAfter(dir.path, config: config) { log in
            try appendContent(log, batches: 200)
            try log.flush()
            flushedPosition = log.segments.last?.size ?? 0
            try appendContent(log, batches: 10)
            end = log.logEndOffset
        }
        let point = try #require(storedRecoveryPoint(dir.path))
        #expect(point.position == Int64(flushedPosition))
        #expect(point.offset == 600)
        let size = fileSize(segmentPath(dir.path, point.segmentBaseOffset))
        let log = try openLog(dir.path, config: config)
        let report = log.recoveryReport
        let tail = size - flushedPosition
        // The scan starts at the last index entry at or below the recovery point.
        #expect(report.scannedBytes >= tail)
        #expect(report.scannedBytes <= tail + config.indexIntervalBytes + 300, "scanned \(report.scannedBytes), tail \(tail)")
        try expectIntact(log, end: end)
        try log.close()
    }

    @Test("recovery: a log that crashed before its first close reports no checkpoint problem")
    func crashBeforeFirstCloseHasSoundCheckpoints() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let infos = try crashedLog(dir, batches: 10)
        let log = try openLog(dir.path, config: config)
        #expect(log.recoveryReport.checkpointProblems.isEmpty, "\(log.recoveryReport.checkpointProblems)")
        try expectIntact(log, end: try #require(infos.last).lastOffset + 1)
        try log.close()
    }

    @Test("recovery: a clean shutdown scans nothing")
    func cleanShutdownScansNothing() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let end = try withCleanLog(dir.path, config: config) { log in
            try appendContent(log, batches: 300)
            return log.logEndOffset
        }
        let log = try openLog(dir.path, config: config)
        #expect(log.recoveryReport.cleanShutdown)
        #expect(log.recoveryReport.scannedSegments.isEmpty)
        #expect(log.recoveryReport.scannedBytes == 0)
        #expect(log.recoveryReport.checkpointProblems.isEmpty)
        try expectIntact(log, end: end)
        try log.close()
    }

    @Test("recovery: leftover .tmp, .deleted and orphaned index files are removed at open")
    func leftoversAreRemoved() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let infos = try crashedLog(dir, batches: 60)
        let orphan = segmentPath(dir.path, 99_999, .index)
        let leftovers = [
            "\(dir.path)/\(Checkpoints.recoveryPointFile).tmp",
            segmentPath(dir.path, 5_000) + ".deleted",
            segmentPath(dir.path, 5_000, .index) + ".deleted",
            segmentPath(dir.path, 7_000) + ".cleaned",
            orphan,
        ]
        for path in leftovers { #expect(writeFileBytes(path, [1, 2, 3])) }
        let log = try openLog(dir.path, config: config)
        for path in leftovers { #expect(!FileSystem.exists(path), "\(path)") }
        #expect(Set(log.recoveryReport.removedFiles).isSuperset(of: leftovers))
        try expectIntact(log, end: try #require(infos.last).lastOffset + 1)
        try log.close()
    }

    @Test("recovery: repeated crashes with torn tails never lose a batch that was not torn")
    func repeatedTornCrashes() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var rng = SeededRandom.fromEnvironment()
        var end: Int64 = 0
        for round in 0..<15 {
            var last: AppendInfo?
            try crashAfter(dir.path, config: config) { log in
                #expect(log.logEndOffset == end, "round \(round), seed \(rng.seed)")
                for _ in 0..<Int.random(in: 1...40, using: &rng) {
                    last = try log.append(try contentBatch(firstOffset: log.logEndOffset, count: Int.random(in: 1...4, using: &rng)))
                }
            }
            let torn = try #require(last)
            let path = segmentPath(dir.path, torn.segmentBaseOffset)
            let size = fileSize(path)
            if Bool.random(using: &rng) {
                // Tear the last batch somewhere inside it.
                cutFile(path, to: Int.random(in: torn.position..<size, using: &rng))
                end = torn.firstOffset
            } else {
                end = torn.lastOffset + 1
            }
            let log = try openLog(dir.path, config: config)
            try expectIntact(log, end: end, "round \(round), seed \(rng.seed)")
        }
    }
}

/// Appends batches with random, non-monotonic timestamps (0...100 000) and content values.
func appendRandomTimestamps(_ log: PartitionLog, batches: Int, rng: inout SeededRandom, codecs: [CompressionCodec] = [.none]) throws {
    for _ in 0..<batches {
        let count = Int.random(in: 1...5, using: &rng)
        let first = log.logEndOffset
        let records = (0..<Int64(count)).map { i in
            Record(offset: first + i, timestamp: Int64.random(in: 0...100_000, using: &rng), key: Content.key(first + i),
                   value: Content.value(first + i))
        }
        try log.append(try RecordBatch.build(records: records, codec: codecs.randomElement(using: &rng) ?? .none))
    }
}

extension Checkpoints.ReadResult {
    var isValid: Bool {
        if case .valid = self { return true }
        return false
    }
}
