import SluiceCompression
import SluiceCore
import SluiceTestSupport
import Testing

@testable import SluiceLog

@Suite("truncation")
struct TruncationTests {
    let config = testConfig(segmentBytes: 4 << 10, indexIntervalBytes: 256)

    /// Records written after a truncation: same offsets as before, different (and longer) values, so a
    /// resurrected old record is told apart from a new one.
    static func newRecord(_ offset: Int64) -> Record {
        Record(offset: offset, timestamp: Content.timestamp(offset) + 1, key: Content.key(offset),
               value: Array("new-\(offset)|".utf8) + [UInt8](repeating: 0xAB, count: 70))
    }

    static func appendNew(_ log: PartitionLog, batches: Int) throws {
        for _ in 0..<batches {
            let first = log.logEndOffset
            try log.append(try RecordBatch.build(records: (0..<Int64(2)).map { newRecord(first + $0) }))
        }
    }

    /// The log holds old content below `cut` and new content from `cut` to `end`, nothing else.
    static func expectOldThenNew(_ log: PartitionLog, start: Int64 = 0, cut: Int64, end: Int64, _ comment: Comment? = nil) throws {
        let records = try readAllRecords(log)
        #expect(log.logStartOffset == start, comment)
        #expect(log.logEndOffset == end, comment)
        expectOffsets(records.map(\.offset), start..<end, comment)
        for record in records where record.offset < cut {
            #expect(Content.matches(record), "old record \(record.offset) changed \(comment?.description ?? "")")
        }
        for record in records where record.offset >= cut {
            #expect(record == newRecord(record.offset), "record \(record.offset) is not the new one \(comment?.description ?? "")")
        }
    }

    @Test("truncation: at a batch boundary inside the active segment; appends continue there")
    func truncateInsideActiveSegment() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try openLog(dir.path, config: config)
        let infos = try appendContent(log, batches: 60)
        let activeBase = try #require(infos.last?.segmentBaseOffset)
        let active = infos.filter { $0.segmentBaseOffset == activeBase }
        #expect(active.count >= 3)
        let cut = active[active.count / 2]
        let segmentsBefore = log.segments.map(\.baseOffset)
        try log.truncate(to: cut.firstOffset)
        #expect(log.logEndOffset == cut.firstOffset)
        #expect(log.segments.map(\.baseOffset) == segmentsBefore)
        #expect(fileSize(segmentPath(dir.path, activeBase)) == cut.position)
        #expect(try log.read(from: cut.firstOffset, maxBytes: 1000).bytes.isEmpty)
        try Self.expectOldThenNew(log, cut: cut.firstOffset, end: cut.firstOffset)
        try Self.appendNew(log, batches: 10)
        try Self.expectOldThenNew(log, cut: cut.firstOffset, end: cut.firstOffset + 20)
        try log.close()
    }

    @Test("truncation: into an earlier segment deletes every later segment")
    func truncateIntoEarlierSegment() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try openLog(dir.path, config: config)
        let infos = try appendContent(log, batches: 100)
        let bases = log.segments.map(\.baseOffset)
        #expect(bases.count >= 5)
        let inSecond = infos.filter { $0.segmentBaseOffset == bases[1] }
        let cut = inSecond[inSecond.count / 2]
        try log.truncate(to: cut.firstOffset)
        #expect(log.segments.map(\.baseOffset) == Array(bases[0...1]))
        #expect(log.logEndOffset == cut.firstOffset)
        for base in bases[2...] {
            #expect(!listDirectory(dir.path).contains { $0.hasPrefix(SegmentFiles.baseName(base)) }, "segment \(base) remains")
        }
        #expect(fileSize(segmentPath(dir.path, bases[1])) == cut.position)
        #expect(leftoverFiles(dir.path).isEmpty)
        try Self.expectOldThenNew(log, cut: cut.firstOffset, end: cut.firstOffset)
        // The truncated segment takes appends again, rolls, and all of it reads back.
        try Self.appendNew(log, batches: 80)
        #expect(log.segments.count > 2)
        try Self.expectOldThenNew(log, cut: cut.firstOffset, end: cut.firstOffset + 160)
        try log.close()
        let reopened = try openLog(dir.path, config: config)
        try Self.expectOldThenNew(reopened, cut: cut.firstOffset, end: cut.firstOffset + 160, "after a clean reopen")
        try reopened.close()
    }

    @Test("truncation: to the base of a closed segment leaves it empty and active")
    func truncateToSegmentBase() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try openLog(dir.path, config: config)
        try appendContent(log, batches: 100)
        let bases = log.segments.map(\.baseOffset)
        try log.truncate(to: bases[2])
        #expect(log.logEndOffset == bases[2])
        #expect(log.segments.last?.baseOffset ?? -1 <= bases[2])
        try Self.expectOldThenNew(log, cut: bases[2], end: bases[2])
        try Self.appendNew(log, batches: 30)
        try Self.expectOldThenNew(log, cut: bases[2], end: bases[2] + 60)
        try log.close()
    }

    @Test("truncation: to the log start empties the log, which restarts there")
    func truncateToLogStart() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try openLog(dir.path, config: config)
        try appendContent(log, batches: 50)
        try log.truncate(to: 0)
        #expect(log.logStartOffset == 0)
        #expect(log.logEndOffset == 0)
        #expect(log.segments.count == 1)
        #expect(log.sizeInBytes == 0)
        #expect(try log.read(from: 0, maxBytes: 100).bytes.isEmpty)
        try Self.appendNew(log, batches: 5)
        try Self.expectOldThenNew(log, cut: 0, end: 10)
        try log.close()
    }

    @Test("truncation: below the log start restarts the log at that offset")
    func truncateBelowLogStart() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let clock = ManualClock()
        let config = testConfig(segmentBytes: 4 << 10, indexIntervalBytes: 256, retentionBytes: 8 << 10)
        let log = try openLog(dir.path, config: config, clock: clock)
        try appendContent(log, batches: 100)
        try log.enforceRetention()
        let start = log.logStartOffset
        #expect(start > 20)
        try log.truncate(to: 10)
        #expect(log.logStartOffset == 10)
        #expect(log.logEndOffset == 10)
        #expect(log.segments.map(\.baseOffset) == [10])
        #expect(listDirectory(dir.path).filter { $0.hasSuffix(".log") } == [SegmentFiles.baseName(10) + ".log"])
        try Self.appendNew(log, batches: 5)
        try Self.expectOldThenNew(log, start: 10, cut: 10, end: 20)
        try log.close()
        let reopened = try openLog(dir.path, config: config, clock: clock)
        try Self.expectOldThenNew(reopened, start: 10, cut: 10, end: 20, "after reopen")
        try reopened.close()
    }

    @Test("truncation: an offset inside a batch is refused and nothing changes")
    func truncateInsideBatchIsRefused() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try openLog(dir.path, config: config)
        let infos = try appendContent(log, batches: 60)
        let filesBefore = listDirectory(dir.path).map { "\($0): \(fileSize("\(dir.path)/\($0)"))" }
        for info in [infos[3], infos[infos.count / 2], infos[infos.count - 1]] {
            #expect(throws: LogError.truncationInsideBatch(offset: info.firstOffset + 1, batchBaseOffset: info.firstOffset,
                                                           batchLastOffset: info.lastOffset)) {
                try log.truncate(to: info.firstOffset + 1)
            }
        }
        #expect(log.logEndOffset == 180)
        #expect(listDirectory(dir.path).map { "\($0): \(fileSize("\(dir.path)/\($0)"))" } == filesBefore)
        try Self.expectOldThenNew(log, cut: 180, end: 180)
        // At or past the end: nothing to do.
        try log.truncate(to: 180)
        try log.truncate(to: 1000)
        #expect(log.logEndOffset == 180)
        try log.close()
    }

    @Test("truncation: an unclean reopen keeps exactly the truncated log, with no resurrected records",
          arguments: [false, true], [FlushPolicy.always, .os])
    func uncleanReopenAfterTruncation(intoEarlierSegment: Bool, policy: FlushPolicy) throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let config = testConfig(segmentBytes: 4 << 10, indexIntervalBytes: 256, flushPolicy: policy,
                                recoveryCheckpointIntervalBytes: 1)
        var cut: Int64 = 0
        try crashAfter(dir.path, config: config) { log in
            let infos = try appendContent(log, batches: 100)
            let bases = log.segments.map(\.baseOffset)
            let segment = intoEarlierSegment ? bases[1] : bases[bases.count - 1]
            let candidates = infos.filter { $0.segmentBaseOffset == segment }
            cut = candidates[candidates.count / 2].firstOffset
            try log.truncate(to: cut)
            // Fewer new bytes than were removed, so old bytes past the new end would show if kept.
            try Self.appendNew(log, batches: 2)
        }
        let log = try openLog(dir.path, config: config)
        try Self.expectOldThenNew(log, cut: cut, end: cut + 4)
        try log.close()
        // And once more after the clean close.
        let reopened = try openLog(dir.path, config: config)
        try Self.expectOldThenNew(reopened, cut: cut, end: cut + 4)
        try reopened.close()
    }

    @Test("truncation: a crash right after truncating (nothing appended) reopens at the cut")
    func crashRightAfterTruncation() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var cut: Int64 = 0
        try crashAfter(dir.path, config: config) { log in
            let infos = try appendContent(log, batches: 100)
            cut = infos[40].firstOffset
            try log.truncate(to: cut)
        }
        let log = try openLog(dir.path, config: config)
        try Self.expectOldThenNew(log, cut: cut, end: cut)
        try Self.appendNew(log, batches: 3)
        try Self.expectOldThenNew(log, cut: cut, end: cut + 6)
        try log.close()
    }

    @Test("truncation: a reader still holding the truncated segment does not rewrite its index files")
    func staleReaderDoesNotClobberIndexes() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var infos: [AppendInfo] = []
        try withCleanLog(dir.path, config: config) { log in infos = try appendContent(log, batches: 100) }
        let log = try openLog(dir.path, config: config)
        let bases = log.segments.map(\.baseOffset)
        // A reader's snapshot from before the truncation; its indexes are not loaded yet (lazy).
        let stale = log.segments[1]
        let inSecond = infos.filter { $0.segmentBaseOffset == bases[1] }
        let cut = inSecond[inSecond.count / 3].firstOffset
        try log.truncate(to: cut)
        // The reader now looks the segment up, which loads (and may rebuild) its indexes.
        _ = try stale.indexEntries()
        let current = try #require(log.segments.last)
        let onDisk = IndexFormat.decodeOffsetIndex(readFileBytes(segmentPath(dir.path, bases[1], .index)) ?? [])
        #expect(onDisk == (try current.indexEntries().offsets), "the .index on disk belongs to the truncated segment")
        let onDiskTimes = IndexFormat.decodeTimeIndex(readFileBytes(segmentPath(dir.path, bases[1], .timeIndex)) ?? [])
        #expect(onDiskTimes == (try current.indexEntries().times))
        try Self.appendNew(log, batches: 60)
        try log.close()
        let reopened = try openLog(dir.path, config: config)
        try Self.expectOldThenNew(reopened, cut: cut, end: cut + 120)
        try reopened.close()
    }

    @Test("truncation: into a gap that compaction left at the end of a closed segment")
    func truncateIntoCompactionGap() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let config = testConfig(segmentBytes: 4 << 10, indexIntervalBytes: 256, cleanupPolicy: .compact)
        let log = try openLog(dir.path, config: config)
        var model = KeyedModel()
        // Segment 0: a keyless record, then only versions of key "a", all superseded later, so compaction
        // leaves segment 0 with one batch at offset 0 and a gap up to segment 1's base.
        try model.append(log, [(nil, Array("keep".utf8))], timestamp: 1)
        while log.segments.count == 1 {
            try model.append(log, [(Array("a".utf8), [UInt8](repeating: 1, count: 200))], timestamp: 1)
        }
        for _ in 0..<40 { try model.append(log, [(Array("a".utf8), [UInt8](repeating: 2, count: 200))], timestamp: 1) }
        try log.compact()
        let first = log.segments[0]
        let next = log.segments[1].baseOffset
        #expect(try first.nextOffset() == 1, "segment 0 keeps only its keyless record")
        let cut = next - 5
        try log.truncate(to: cut)
        #expect(log.logEndOffset == cut)
        #expect(log.segments.count == 1)
        let info = try log.append(try RecordBatch.build(records: [Self.newRecord(cut)]))
        #expect(info.firstOffset == cut)
        let records = try readAllRecords(log)
        #expect(records.map(\.offset) == [0, cut])
        #expect(records.last == Self.newRecord(cut))
        try log.close()
        let reopened = try openLog(dir.path, config: config)
        #expect(try readAllRecords(reopened).map(\.offset) == [0, cut])
        #expect(reopened.logEndOffset == cut + 1)
        try reopened.close()
    }

    @Test("truncation: truncateFully empties the log and restarts it at any offset")
    func truncateFully() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try openLog(dir.path, config: config)
        try appendContent(log, batches: 40)
        try log.truncateFully(startingAt: 1000)
        #expect(log.logStartOffset == 1000)
        #expect(log.logEndOffset == 1000)
        try Self.appendNew(log, batches: 3)
        try Self.expectOldThenNew(log, start: 1000, cut: 1000, end: 1006)
        try log.close()
        let reopened = try openLog(dir.path, config: config)
        try Self.expectOldThenNew(reopened, start: 1000, cut: 1000, end: 1006)
        try reopened.close()
    }
}
