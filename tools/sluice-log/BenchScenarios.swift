import CLZ4
import CZstd
import SluiceCompression
import SluiceCore
import SluiceLog

/// Sizes of one benchmark run (`--quick` shrinks them all).
struct BenchSizes {
    var appendBytes: Int
    var compressedRecords: Int
    var smallRecords: Int
    var readBytes: Int
    var repetitions: Int
    var readPasses: Int

    static let full = BenchSizes(appendBytes: 512 << 20, compressedRecords: 200_000, smallRecords: 2_000_000,
                                 readBytes: 256 << 20, repetitions: 3, readPasses: 5)
    static let quick = BenchSizes(appendBytes: 32 << 20, compressedRecords: 20_000, smallRecords: 300_000,
                                  readBytes: 32 << 20, repetitions: 1, readPasses: 2)
}

/// Builds `count` batches of `records` synthetic records each, from offset 0 on.
func syntheticBatches(count: Int, records: Int, valueBytes: Int, codec: CompressionCodec) throws -> [RecordBatch] {
    let generator = SyntheticRecords(valueBytes: valueBytes, style: .init(codec: codec))
    return try (0..<count).map { i in
        try RecordBatch.build(records: generator.records(from: Int64(i * records), count: records), codec: codec)
    }
}

/// Opens a fresh log for the benchmark (flush policy `os`: the scenario flushes where it says).
func openBenchLog(_ directory: String, segmentBytes: Int? = nil) throws -> PartitionLog {
    try PartitionLog.open(directory: directory, config: .tool(segmentBytes: segmentBytes, flushPolicy: .os),
                          logger: Console.logger())
}

/// a. Appends of 1 KiB incompressible records, 16 per batch, `flush()` after every MiB, against `pwrite`
/// of the same bytes in the same chunks with `fdatasync` after every MiB.
struct DurableAppendScenario {
    static let flushEveryBytes = 1 << 20
    let directory: BenchDirectory
    let totalBytes: Int
    let repetitions: Int
    /// Cycled: the log stamps each batch's offsets on append, so the same bytes can go in again.
    let pool: [RecordBatch]

    init(directory: BenchDirectory, totalBytes: Int, repetitions: Int) throws {
        self.directory = directory
        self.totalBytes = totalBytes
        self.repetitions = repetitions
        pool = try syntheticBatches(count: 256, records: 16, valueBytes: 1024, codec: .none)
    }

    var batchCount: Int { totalBytes / pool[0].bytes.count }
    var writtenBytes: Int { (0..<batchCount).reduce(0) { $0 + pool[$1 % pool.count].bytes.count } }

    func run() throws -> [BenchRow] {
        var log = BestTime()
        var raw = BestTime()
        for _ in 0..<repetitions {
            raw.record(try runRaw())
            log.record(try runLog())
        }
        let bytes = Double(writtenBytes)
        Console.line("a. \(Format.bytes(writtenBytes)) in \(Format.count(batchCount)) batches of 16 x 1 KiB, synced every MiB: "
            + "log \(Format.seconds(log.nanoseconds)), pwrite+fdatasync \(Format.seconds(raw.nanoseconds)) (best of \(repetitions))")
        return [BenchRow.ratio("a. append 1 KiB x16, sync/MiB", sluice: Format.perSecond(bytes, log.nanoseconds),
                               baseline: Format.perSecond(bytes, raw.nanoseconds), unit: .megabytesPerSecond,
                               baselineName: "pwrite+fdatasync", minimum: 0.8)]
    }

    private func runLog() throws -> UInt64 {
        let path = directory.child("a-log")
        let log = try openBenchLog(path)
        var unflushed = 0
        let started = MonotonicClock.nowNanoseconds()
        for i in 0..<batchCount {
            let batch = pool[i % pool.count]
            try log.append(batch)
            unflushed += batch.bytes.count
            if unflushed >= Self.flushEveryBytes {
                try log.flush()
                unflushed = 0
            }
        }
        try log.flush()
        let elapsed = MonotonicClock.nowNanoseconds() - started
        try log.close()
        try BenchDirectory.removeTree(path)
        return elapsed
    }

    private func runRaw() throws -> UInt64 {
        let path = directory.child("a-raw")
        let file = try RawFile.create(path)
        var position = 0
        var unsynced = 0
        let started = MonotonicClock.nowNanoseconds()
        for i in 0..<batchCount {
            let bytes = pool[i % pool.count].bytes
            try bytes.withUnsafeBytes { try file.write($0, at: position) }
            position += bytes.count
            unsynced += bytes.count
            if unsynced >= Self.flushEveryBytes {
                try file.sync()
                unsynced = 0
            }
        }
        try file.sync()
        let elapsed = MonotonicClock.nowNanoseconds() - started
        try BenchDirectory.removeTree(path)
        return elapsed
    }
}

/// b. Building compressed batches of JSON-like records and appending them, against the codec library
/// compressing the same records sections (encoded beforehand) in the same process.
struct CompressedAppendScenario {
    static let recordsPerBatch = 100
    static let valueBytes = 256
    let directory: BenchDirectory
    let codec: CompressionCodec
    let repetitions: Int
    let batches: [[Record]]
    let sections: [[UInt8]]

    init(directory: BenchDirectory, codec: CompressionCodec, records: Int, repetitions: Int) {
        self.directory = directory
        self.codec = codec
        self.repetitions = repetitions
        let generator = SyntheticRecords(valueBytes: Self.valueBytes, style: .json)
        let count = max(1, records / Self.recordsPerBatch)
        batches = (0..<count).map { generator.records(from: Int64($0 * Self.recordsPerBatch), count: Self.recordsPerBatch) }
        sections = batches.map { records in
            var section: [UInt8] = []
            RecordBatch.encodeRecords(records, baseOffset: records[0].offset, baseTimestamp: records[0].timestamp, into: &section)
            return section
        }
    }

    var recordCount: Int { batches.count * Self.recordsPerBatch }

    func run() throws -> [BenchRow] {
        var log = BestTime()
        var raw = BestTime()
        var stored = 0
        for _ in 0..<repetitions {
            raw.record(try runRaw())
            let (elapsed, bytes) = try runLog()
            log.record(elapsed)
            stored = bytes
        }
        let input = sections.reduce(0) { $0 + $1.count }
        Console.line("b. \(codec): \(Format.count(recordCount)) records of \(Self.valueBytes) B, \(Self.recordsPerBatch) per batch, "
            + "\(Format.bytes(input)) of records sections stored as \(Format.bytes(stored)): log \(Format.seconds(log.nanoseconds)), "
            + "codec library \(Format.seconds(raw.nanoseconds)) (best of \(repetitions))")
        let name = codec == .lz4 ? "LZ4F_compressFrame" : "ZSTD_compressCCtx"
        return [BenchRow.ratio("b. \(codec) JSON build+append", sluice: Format.perSecond(Double(recordCount), log.nanoseconds),
                               baseline: Format.perSecond(Double(recordCount), raw.nanoseconds), unit: .recordsPerSecond,
                               baselineName: name, minimum: 0.7)]
    }

    /// Returns the time and the bytes the log stored.
    private func runLog() throws -> (UInt64, Int) {
        let path = directory.child("b-log-\(codec)")
        let log = try openBenchLog(path)
        let started = MonotonicClock.nowNanoseconds()
        for records in batches {
            try log.append(try RecordBatch.build(records: records, codec: codec))
        }
        let elapsed = MonotonicClock.nowNanoseconds() - started
        let stored = log.sizeInBytes
        try log.close()
        try BenchDirectory.removeTree(path)
        return (elapsed, stored)
    }

    private func runRaw() throws -> UInt64 {
        let bound = sections.map(\.count).max() ?? 0
        var output = [UInt8](repeating: 0, count: max(LZ4F_compressFrameBound(bound, nil), ZSTD_compressBound(bound)) + 1024)
        let context = ZSTD_createCCtx()
        defer { ZSTD_freeCCtx(context) }
        let started = MonotonicClock.nowNanoseconds()
        for section in sections {
            let result = section.withUnsafeBytes { input in
                output.withUnsafeMutableBytes { out in compress(input, into: out, context: context) }
            }
            guard result > 0 else { throw ToolError.unexpectedLog("the \(codec) baseline failed to compress") }
        }
        return MonotonicClock.nowNanoseconds() - started
    }

    /// Compresses with the library directly and the same settings `Codecs` uses; 0 on error.
    private func compress(_ input: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer, context: OpaquePointer?) -> Int {
        if codec == .lz4 {
            var preferences = LZ4F_preferences_t()
            preferences.frameInfo.blockSizeID = LZ4F_max64KB
            preferences.frameInfo.blockMode = LZ4F_blockIndependent
            preferences.frameInfo.contentSize = UInt64(input.count)
            let n = LZ4F_compressFrame(out.baseAddress, out.count, input.baseAddress, input.count, &preferences)
            return LZ4F_isError(n) != 0 ? 0 : n
        }
        let n = ZSTD_compressCCtx(context, out.baseAddress, out.count, input.baseAddress, input.count, Codecs.zstdLevel)
        return ZSTD_isError(n) != 0 ? 0 : n
    }
}

/// c. 100-byte records in uncompressed batches of 1000: pre-built batches appended, and records encoded
/// into batches and appended.
struct SmallRecordScenario {
    static let recordsPerBatch = 1000
    static let poolSize = 32
    let directory: BenchDirectory
    let repetitions: Int
    let batchCount: Int
    let recordPool: [[Record]]
    let batchPool: [RecordBatch]

    init(directory: BenchDirectory, records: Int, repetitions: Int) throws {
        self.directory = directory
        self.repetitions = repetitions
        batchCount = max(1, records / Self.recordsPerBatch)
        let generator = SyntheticRecords(valueBytes: 100, style: .random)
        recordPool = (0..<Self.poolSize).map { generator.records(from: Int64($0 * Self.recordsPerBatch), count: Self.recordsPerBatch) }
        batchPool = try recordPool.map { try RecordBatch.build(records: $0, codec: .none) }
    }

    func run() throws -> [BenchRow] {
        var prebuilt = BestTime()
        var encoded = BestTime()
        for _ in 0..<repetitions {
            prebuilt.record(try runLog(encode: false))
            encoded.record(try runLog(encode: true))
        }
        let records = Double(batchCount * Self.recordsPerBatch)
        Console.line("c. \(Format.count(batchCount * Self.recordsPerBatch)) records of 100 B in batches of 1000 "
            + "(\(Format.bytes(batchPool[0].bytes.count)) each): pre-built \(Format.seconds(prebuilt.nanoseconds)), "
            + "encode+append \(Format.seconds(encoded.nanoseconds)) (best of \(repetitions))")
        return [
            BenchRow.absolute("c. 100 B x1000, pre-built batches appended", sluice: Format.perSecond(records, prebuilt.nanoseconds),
                              unit: .recordsPerSecond, minimum: 3_000_000),
            BenchRow.absolute("c. 100 B x1000, encode+append", sluice: Format.perSecond(records, encoded.nanoseconds),
                              unit: .recordsPerSecond, minimum: 3_000_000),
        ]
    }

    private func runLog(encode: Bool) throws -> UInt64 {
        let path = directory.child("c-log")
        let log = try openBenchLog(path)
        let started = MonotonicClock.nowNanoseconds()
        for i in 0..<batchCount {
            let batch = encode ? try RecordBatch.build(records: recordPool[i % Self.poolSize], codec: .none) : batchPool[i % Self.poolSize]
            try log.append(batch)
        }
        let elapsed = MonotonicClock.nowNanoseconds() - started
        try log.close()
        try BenchDirectory.removeTree(path)
        return elapsed
    }
}

/// d. Reading a whole log in order with `read(from:maxBytes: 1 MiB)`, against `pread` of its segment
/// files in 1 MiB chunks; both from the page cache (a warm-up pass each first), best of several
/// alternating passes. The log is cut into four segments, so both read paths are measured: sealed
/// segments (mapped) and the active one (`pread`).
struct SequentialReadScenario {
    static let readBytes = 1 << 20
    let directory: BenchDirectory
    let totalBytes: Int
    let passes: Int

    func run() throws -> [BenchRow] {
        let path = directory.child("d-log")
        let log = try openBenchLog(path, segmentBytes: max(totalBytes / 4, 1 << 20))
        let pool = try syntheticBatches(count: 256, records: 16, valueBytes: 1024, codec: .none)
        var written = 0
        for i in 0..<(totalBytes / pool[0].bytes.count) {
            try log.append(pool[i % pool.count])
            written += pool[i % pool.count].bytes.count
        }
        try log.flush()
        let files = try log.segments.map { try RawFile.openForReading($0.path) }
        var logTime = BestTime()
        var rawTime = BestTime()
        for pass in 0...passes {
            let raw = try readRaw(files)
            let viaLog = try readLog(log)
            guard raw.bytes == written && viaLog.bytes == written else {
                throw ToolError.unexpectedLog("read \(viaLog.bytes) bytes through the log and \(raw.bytes) directly, wrote \(written)")
            }
            if pass > 0 {  // pass 0 warms the page cache and the segment mappings
                rawTime.record(raw.nanoseconds)
                logTime.record(viaLog.nanoseconds)
            }
        }
        try log.close()
        try BenchDirectory.removeTree(path)
        Console.line("d. \(Format.bytes(written)) in \(files.count) segments, 1 MiB reads: log \(Format.seconds(logTime.nanoseconds)), "
            + "pread \(Format.seconds(rawTime.nanoseconds)) (best of \(passes) after a warm-up pass)")
        return [BenchRow.ratio("d. sequential read, 1 MiB", sluice: Format.perSecond(Double(written), logTime.nanoseconds),
                               baseline: Format.perSecond(Double(written), rawTime.nanoseconds), unit: .megabytesPerSecond,
                               baselineName: "pread", minimum: 0.8)]
    }

    private func readLog(_ log: PartitionLog) throws -> (bytes: Int, nanoseconds: UInt64) {
        var offset = log.logStartOffset
        let end = log.logEndOffset
        var bytes = 0
        let started = MonotonicClock.nowNanoseconds()
        while offset < end {
            let result = try log.read(from: offset, maxBytes: Self.readBytes)
            guard result.nextOffset > offset else { throw ToolError.unexpectedLog("read(from: \(offset)) did not advance") }
            bytes += result.bytes.count
            offset = result.nextOffset
        }
        return (bytes, MonotonicClock.nowNanoseconds() - started)
    }

    private func readRaw(_ files: [RawFile]) throws -> (bytes: Int, nanoseconds: UInt64) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.readBytes, alignment: 4096)
        defer { buffer.deallocate() }
        var bytes = 0
        let started = MonotonicClock.nowNanoseconds()
        for file in files {
            var position = 0
            while true {
                let n = try file.read(into: buffer, at: position)
                if n == 0 { break }
                position += n
            }
            bytes += position
        }
        return (bytes, MonotonicClock.nowNanoseconds() - started)
    }
}
