// Helpers shared by the SluiceLog tests: a manual clock, deterministic record content, whole-log reads
// and the on-disk edits that simulate crashes and media errors.

import Logging
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

/// A wall clock that only moves when a test moves it.
final class ManualClock: WallClock, @unchecked Sendable {
    private let now: Mutex<Int64>

    init(_ start: Int64 = 1_700_000_000_000) { now = Mutex(start) }

    func nowMilliseconds() -> Int64 { now.withLock { $0 } }

    func advance(milliseconds: Int64) { now.withLock { $0 += milliseconds } }

    func set(_ value: Int64) { now.withLock { $0 = value } }
}

/// Settings most tests use: small segments and a dense index so that a few hundred batches give many of
/// both; no flushing; nothing expires unless the test says so.
func testConfig(
    segmentBytes: Int = 8 << 10,
    indexIntervalBytes: Int = 512,
    segmentMilliseconds: Int64? = nil,
    retentionMilliseconds: Int64? = nil,
    retentionBytes: Int64? = nil,
    flushPolicy: FlushPolicy = .os,
    cleanupPolicy: CleanupPolicy = .delete,
    deleteRetentionMilliseconds: Int64 = 24 * 3_600_000,
    recoveryCheckpointIntervalBytes: Int = 16 << 20
) -> LogConfig {
    LogConfig(
        segmentBytes: segmentBytes, segmentMilliseconds: segmentMilliseconds,
        retentionMilliseconds: retentionMilliseconds, retentionBytes: retentionBytes,
        indexIntervalBytes: indexIntervalBytes, flushPolicy: flushPolicy, cleanupPolicy: cleanupPolicy,
        deleteRetentionMilliseconds: deleteRetentionMilliseconds,
        recoveryCheckpointIntervalBytes: recoveryCheckpointIntervalBytes)
}

/// Opens the log with a logger that stays quiet unless something is badly wrong (recovery warnings are
/// expected in these tests; they are asserted through `recoveryReport`).
func openLog(_ directory: String, config: LogConfig, clock: any WallClock = ManualClock()) throws -> PartitionLog {
    var logger = Logger(label: "sluice.log.test")
    logger.logLevel = .critical
    return try PartitionLog.open(directory: directory, config: config, clock: clock, logger: logger)
}

// MARK: Deterministic content

/// The content the tests give the record at absolute offset `offset`: everything derives from the
/// offset, so any record read back can be checked on its own.
enum Content {
    static let baseTimestamp: Int64 = 1_700_000_000_000

    static func key(_ offset: Int64) -> [UInt8] { Array("k\(offset % 97)".utf8) }

    static func value(_ offset: Int64, size: Int = 40) -> [UInt8] {
        var bytes = Array("value-\(offset)|".utf8)
        var filler = UInt8(truncatingIfNeeded: offset)
        while bytes.count < size {
            bytes.append(filler)
            filler &+= 31
        }
        return bytes
    }

    static func timestamp(_ offset: Int64) -> Int64 { baseTimestamp + offset }

    static func headers(_ offset: Int64) -> [RecordHeader] {
        offset % 3 == 0 ? [RecordHeader(key: "h", value: Array("\(offset)".utf8))] : []
    }

    static func record(_ offset: Int64, valueSize: Int = 40) -> Record {
        Record(offset: offset, timestamp: timestamp(offset), key: key(offset), value: value(offset, size: valueSize),
               headers: headers(offset))
    }

    /// Whether `record` is exactly what `record(offset)` produced for its offset.
    static func matches(_ record: Record, valueSize: Int = 40) -> Bool {
        record == Content.record(record.offset, valueSize: valueSize)
    }
}

/// A producer batch of `count` records whose content is that of offsets `firstOffset...`.
func contentBatch(firstOffset: Int64, count: Int, codec: CompressionCodec = .none, valueSize: Int = 40) throws -> RecordBatch {
    let records = (0..<Int64(count)).map { Content.record(firstOffset + $0, valueSize: valueSize) }
    return try RecordBatch.build(records: records, codec: codec)
}

/// Appends `batches` batches of content records, `recordsPerBatch(i)` records each, and returns what
/// `append` reported.
@discardableResult
func appendContent(
    _ log: PartitionLog, batches: Int, recordsPerBatch: (Int) -> Int = { _ in 3 },
    codec: (Int) -> CompressionCodec = { _ in .none }, valueSize: Int = 40
) throws -> [AppendInfo] {
    var infos: [AppendInfo] = []
    for i in 0..<batches {
        let batch = try contentBatch(firstOffset: log.logEndOffset, count: recordsPerBatch(i), codec: codec(i),
                                     valueSize: valueSize)
        infos.append(try log.append(batch))
    }
    return infos
}

// MARK: Reading back

/// Splits the bytes of a read into batches, checking every one (length, magic, CRC).
func splitBatches(_ bytes: [UInt8]) throws -> [RecordBatch] {
    var batches: [RecordBatch] = []
    var position = 0
    while position < bytes.count {
        let header = try bytes[position...].withUnsafeBytes { try RecordBatch.validate($0) }
        batches.append(try RecordBatch(validating: Array(bytes[position..<(position + header.totalSize)])))
        position += header.totalSize
    }
    return batches
}

/// Every batch from `from` to the log end, by chaining `nextOffset`; the number of reads is bounded.
func readAllBatches(_ log: PartitionLog, from: Int64? = nil, maxBytes: Int = 4096) throws -> [RecordBatch] {
    var offset = from ?? log.logStartOffset
    let end = log.logEndOffset
    var batches: [RecordBatch] = []
    var reads = 0
    while offset < end {
        reads += 1
        guard reads <= 1_000_000 else { Issue.record("read loop does not advance at \(offset)"); break }
        let result = try log.read(from: offset, maxBytes: maxBytes)
        let read = try splitBatches(result.bytes)
        #expect(read.count == result.batchCount)
        if read.isEmpty {
            // Only a compaction gap at a segment end may return nothing; the next segment continues.
            guard result.nextOffset > offset else {
                Issue.record("read at \(offset) returned nothing and did not advance")
                break
            }
        }
        batches += read
        offset = result.nextOffset
    }
    return batches
}

/// Every record of the log, in order.
func readAllRecords(_ log: PartitionLog, from: Int64? = nil) throws -> [Record] {
    try readAllBatches(log, from: from).flatMap { try $0.records() }
}

// MARK: Files on disk

func segmentPath(_ directory: String, _ base: Int64, _ kind: SegmentFiles.Kind = .log) -> String {
    SegmentFiles.path(directory, base, kind)
}

func listDirectory(_ path: String) -> [String] {
    (try? FileSystem.list(path))?.sorted() ?? []
}

func fileSize(_ path: String) -> Int { FileSystem.size(path) ?? -1 }

/// Cuts the file at `path` to `size` bytes (a torn write).
func cutFile(_ path: String, to size: Int) {
    #expect(truncate(path, off_t(size)) == 0, "truncate \(path) to \(size)")
}

/// Flips one bit of the byte at `position` (a media error).
func flipBit(_ path: String, at position: Int, bit: UInt8 = 0x10) {
    guard var bytes = readFileBytes(path) else {
        Issue.record("cannot read \(path)")
        return
    }
    bytes[position] ^= bit
    #expect(writeFileBytes(path, bytes))
}

/// Appends bytes to the file at `path`.
func appendToFile(_ path: String, _ extra: [UInt8]) {
    guard let bytes = readFileBytes(path) else {
        Issue.record("cannot read \(path)")
        return
    }
    #expect(writeFileBytes(path, bytes + extra))
}

func removeFile(_ path: String) {
    #expect(unlink(path) == 0, "unlink \(path)")
}

/// Files with a crash-safe-change suffix (`.cleaned`, `.swap`, `.deleted`) or a `.tmp` leftover.
func leftoverFiles(_ directory: String) -> [String] {
    listDirectory(directory).filter {
        $0.hasSuffix(".cleaned") || $0.hasSuffix(".swap") || $0.hasSuffix(".deleted") || $0.hasSuffix(".tmp")
    }
}

/// The recovery-point checkpoint as stored, nil when missing or invalid.
func storedRecoveryPoint(_ directory: String) -> Checkpoints.RecoveryPoint? {
    if case .valid(let point) = Checkpoints.readRecoveryPoint(directory) { return point }
    return nil
}

/// Opens, runs `body` and abandons the log without `close()`: what a crash leaves on disk (the page
/// cache survives a process crash, so every completed write is in the files).
func crashAfter(_ directory: String, config: LogConfig, clock: any WallClock = ManualClock(),
                _ body: (PartitionLog) throws -> Void) throws {
    let log = try openLog(directory, config: config, clock: clock)
    try body(log)
}

/// Opens, runs `body`, then closes cleanly.
@discardableResult
func withCleanLog<R>(_ directory: String, config: LogConfig, clock: any WallClock = ManualClock(),
                     _ body: (PartitionLog) throws -> R) throws -> R {
    let log = try openLog(directory, config: config, clock: clock)
    let result = try body(log)
    try log.close()
    return result
}

/// A value shared between threads behind a mutex (a `Mutex` itself cannot be captured by an escaping
/// closure).
final class Shared<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) { mutex = Mutex(value) }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        try mutex.withLock { try body(&$0) }
    }
}

/// Checks that `offsets` are exactly `expected`, reporting the first difference instead of both lists.
func expectOffsets(_ offsets: [Int64], _ expected: Range<Int64>, _ comment: Comment? = nil,
                   sourceLocation: SourceLocation = #_sourceLocation) {
    let wanted = Array(expected)
    guard offsets != wanted else { return }
    let i = zip(offsets, wanted).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(offsets.count, wanted.count)
    let got = i < offsets.count ? "\(offsets[i])" : "nothing"
    let want = i < wanted.count ? "\(wanted[i])" : "nothing"
    Issue.record("offsets differ from \(expected.lowerBound)..<\(expected.upperBound) (\(offsets.count) read): at index \(i) got \(got), expected \(want) \(comment?.description ?? "")",
                 sourceLocation: sourceLocation)
}
