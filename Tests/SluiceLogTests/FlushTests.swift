import Dispatch
import Synchronization
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

@Suite("flush policies")
struct FlushTests {
    /// A batch whose records say who appended them: `t<thread>-<sequence>-<index>`.
    static func taggedBatch(thread: Int, sequence: Int, count: Int) throws -> RecordBatch {
        let records = (0..<count).map { i in
            Record(offset: Int64(i), timestamp: Int64(sequence), key: Array("t\(thread)".utf8),
                   value: Array("t\(thread)-\(sequence)-\(i)".utf8))
        }
        return try RecordBatch.build(records: records)
    }

    @Test("flush always: concurrent appenders get unique, contiguous offsets and all their data back")
    func alwaysWithConcurrentAppenders() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let config = testConfig(segmentBytes: 16 << 10, flushPolicy: .always, recoveryCheckpointIntervalBytes: 4096)
        let log = try openLog(dir.path, config: config)
        let threads = 8
        let appendsPerThread = 200
        let infos = Shared<[(thread: Int, sequence: Int, count: Int, info: AppendInfo)]>([])
        let failures = Shared<[String]>([])
        let group = DispatchGroup()
        for thread in 0..<threads {
            DispatchQueue.global().async(group: group) {
                do {
                    for sequence in 0..<appendsPerThread {
                        let count = 1 + (thread + sequence) % 3
                        let info = try log.append(try Self.taggedBatch(thread: thread, sequence: sequence, count: count))
                        infos.withLock { $0.append((thread, sequence, count, info)) }
                    }
                } catch {
                    failures.withLock { $0.append("thread \(thread): \(error)") }
                }
            }
        }
        group.wait()
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        let appended = infos.withLock { $0 }.sorted { $0.info.firstOffset < $1.info.firstOffset }
        #expect(appended.count == threads * appendsPerThread)
        var next: Int64 = 0
        for entry in appended {
            #expect(entry.info.firstOffset == next, "offsets are unique and contiguous")
            #expect(entry.info.lastOffset == next + Int64(entry.count) - 1)
            next = entry.info.lastOffset + 1
        }
        #expect(log.logEndOffset == next)
        // Each thread's appends got increasing offsets, in its own order.
        for thread in 0..<threads {
            let mine = appended.filter { $0.thread == thread }.map(\.sequence)
            #expect(mine == Array(0..<appendsPerThread))
        }
        let batches = try readAllBatches(log, maxBytes: 64 << 10)
        #expect(batches.count == appended.count)
        for (batch, entry) in zip(batches, appended) {
            #expect(batch.baseOffset == entry.info.firstOffset)
            let records = try batch.records()
            #expect(records.map { String(decoding: $0.value ?? [], as: UTF8.self) }
                        == (0..<entry.count).map { "t\(entry.thread)-\(entry.sequence)-\($0)" })
        }
        // Every append returned after its data was durable, so the recovery point reached the end.
        let point = try #require(storedRecoveryPoint(dir.path))
        #expect(point.segmentBaseOffset == log.segments.last?.baseOffset)
        try log.close()
        let reopened = try openLog(dir.path, config: config)
        #expect(reopened.logEndOffset == next)
        try reopened.close()
    }

    @Test("flush always: after an unclean stop only the bytes past the last checkpointed flush are scanned")
    func alwaysBoundsTheRecoveryScan() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let config = testConfig(segmentBytes: 64 << 10, indexIntervalBytes: 512, flushPolicy: .always,
                                recoveryCheckpointIntervalBytes: 1)
        var end: Int64 = 0
        try crashAfter(dir.path, config: config) { log in
            try appendContent(log, batches: 100)
            end = log.logEndOffset
        }
        let point = try #require(storedRecoveryPoint(dir.path))
        #expect(point.offset == end, "a checkpoint after every flush when the interval is one byte")
        let log = try openLog(dir.path, config: config)
        #expect(log.recoveryReport.scannedBytes <= config.indexIntervalBytes + 300)
        expectOffsets(try readAllRecords(log).map(\.offset), 0..<end)
        try log.close()
    }

    @Test("flush interval: the timer persists the recovery point without an explicit flush")
    func intervalFlushesInTheBackground() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let config = testConfig(segmentBytes: 64 << 10, flushPolicy: .interval(milliseconds: 5),
                                recoveryCheckpointIntervalBytes: 1)
        var end: Int64 = 0
        try crashAfter(dir.path, config: config) { log in
            let flushed = DispatchSemaphore(value: 0)
            log.flushObserver = { _ in flushed.signal() }
            try appendContent(log, batches: 50)
            end = log.logEndOffset
            // Wait for the timer's flushes (each one signals) until one has checkpointed the end; give
            // up after 10 s without a flush.
            var waits = 0
            while storedRecoveryPoint(dir.path)?.offset != end && waits < 1000 {
                guard flushed.wait(timeout: .now() + .seconds(10)) == .success else { break }
                waits += 1
            }
            #expect(storedRecoveryPoint(dir.path)?.offset == end, "the periodic flush did not checkpoint the end after \(waits) flushes")
        }
        let point = try #require(storedRecoveryPoint(dir.path))
        let log = try openLog(dir.path, config: config)
        #expect(log.recoveryReport.scannedBytes <= fileSize(segmentPath(dir.path, point.segmentBaseOffset)) - Int(point.position)
                    + config.indexIntervalBytes + 300)
        expectOffsets(try readAllRecords(log).map(\.offset), 0..<end)
        try log.close()
    }

    @Test("flush os: appends do not checkpoint, close does, and everything written is kept")
    func osPolicy() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let config = testConfig(segmentBytes: 1 << 20, flushPolicy: .os, recoveryCheckpointIntervalBytes: 1)
        let log = try openLog(dir.path, config: config)
        try appendContent(log, batches: 30)
        #expect(storedRecoveryPoint(dir.path)?.offset == 0, "no flush, so no checkpoint past the start")
        try log.flush()
        #expect(storedRecoveryPoint(dir.path)?.offset == 90, "an explicit flush checkpoints")
        try appendContent(log, batches: 10)
        try log.close()
        #expect(storedRecoveryPoint(dir.path)?.offset == 120)
        let reopened = try openLog(dir.path, config: config)
        #expect(reopened.recoveryReport.cleanShutdown)
        #expect(try readAllRecords(reopened).allSatisfy { Content.matches($0) })
        #expect(reopened.logEndOffset == 120)
        try reopened.close()
    }

    @Test("flush: configurations out of range are refused at open")
    func invalidConfigurations() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let bad = [
            testConfig(segmentBytes: 10),
            testConfig(indexIntervalBytes: 0),
            testConfig(segmentMilliseconds: 0),
            testConfig(flushPolicy: .interval(milliseconds: 0)),
            testConfig(recoveryCheckpointIntervalBytes: 0),
        ]
        for config in bad {
            #expect {
                _ = try openLog(dir.path, config: config)
            } throws: { error in
                guard case LogError.invalidConfig = error else { return false }
                return true
            }
        }
        #expect(FlushPolicy(name: "always") == .always)
        #expect(FlushPolicy(name: "interval", intervalMilliseconds: 7) == .interval(milliseconds: 7))
        #expect(FlushPolicy(name: "OS") == .os)
        #expect(FlushPolicy(name: "sometimes") == nil)
        #expect(CleanupPolicy(name: "compact, delete") == [.compact, .delete])
        #expect(CleanupPolicy(name: "") == nil)
    }
}

@Suite("flush racing truncation")
struct FlushTruncationRaceTests {
    /// Runs `body` on another thread and waits at most 30 s, so a regression fails instead of hanging.
    private func finishes(_ body: @escaping @Sendable () -> Void) -> Bool {
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            body()
            done.signal()
        }
        return done.wait(timeout: .now() + .seconds(30)) == .success
    }

    @Test("flush: a truncation below the target of a flush in flight ends that flush at the truncation point")
    func flushDuringTruncationTerminates() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let config = testConfig(segmentBytes: 64 << 10, recoveryCheckpointIntervalBytes: 1)
        let log = try openLog(dir.path, config: config)
        let infos = try appendContent(log, batches: 40)
        let cut = infos[10].firstOffset
        // The observer runs inside the flush, after its fsync: truncating there is the worst moment.
        let truncated = Mutex(false)
        log.flushObserver = { _ in
            let first = truncated.withLock { done in
                defer { done = true }
                return !done
            }
            if first { try? log.truncate(to: cut) }
        }
        let outcome = Mutex<Result<Void, any Error>?>(nil)
        #expect(finishes { outcome.withLock { $0 = Result { try log.flush() } } }, "flush spun after the truncation")
        #expect(throws: Never.self) { try outcome.withLock { $0 }?.get() }
        #expect(log.logEndOffset == cut)
        let point = try #require(storedRecoveryPoint(dir.path))
        #expect(point.offset == cut, "the checkpoint matches the truncated log: \(point)")
        log.flushObserver = nil
        try log.close()
    }

    @Test("append: an append whose batch is truncated away before its fsync is refused, not acknowledged")
    func appendTruncatedBeforeDurableIsRefused() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let config = testConfig(segmentBytes: 64 << 10, flushPolicy: .always)
        let log = try openLog(dir.path, config: config)
        _ = try appendContent(log, batches: 5)
        let cut = log.logEndOffset
        let truncated = Mutex(false)
        log.flushObserver = { _ in
            let first = truncated.withLock { done in
                defer { done = true }
                return !done
            }
            if first { try? log.truncate(to: cut) }
        }
        let outcome = Mutex<Result<Void, any Error>?>(nil)
        #expect(finishes {
            outcome.withLock { $0 = Result { _ = try log.append(contentBatch(firstOffset: cut, count: 3)) } }
        }, "the append spun after the truncation")
        let result = outcome.withLock { $0 }
        #expect(throws: LogError.self) { try result?.get() }
        if case .failure(let error) = result {
            #expect("\(error)".contains("truncated"), "\(error)")
        }
        #expect(log.logEndOffset == cut)
        log.flushObserver = nil
        try log.close()
    }
}
