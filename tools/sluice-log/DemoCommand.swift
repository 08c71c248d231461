import ArgumentParser
import SluiceCompression
import SluiceCore
import SluiceLog

/// `demo DIR`: a short tour of the storage engine (what `make run` runs until the broker exists).
/// Writes an lz4 log with `FlushPolicy.always`, reopens it, reads it all back and checks every record,
/// looks an offset up by time, lists the files and verifies them.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Write, reopen, read back, look up and verify a small compressed partition log.",
        discussion: "Starts DIR afresh: removes the partition files in it (and refuses when it holds anything else)."
    )

    @Argument(help: "The partition directory to write (its partition files are replaced).")
    var directory: String = "demo-data"

    @Option(help: "Records to append.")
    var count: Int = 20_000

    @Option(help: "Value bytes per record.")
    var size: Int = 200

    @Option(name: .customLong("segment-bytes"), help: "Segment size, small so that the log rolls a few times.")
    var segmentBytes: Int = 256 << 10

    func validate() throws {
        guard count >= 1 && count <= 10_000_000 else { throw ValidationError("--count must be within 1...10000000") }
        guard size >= 0 && size <= 64 << 10 else { throw ValidationError("--size must be within 0...65536") }
    }

    func run() throws {
        let started = MonotonicClock.nowNanoseconds()
        try DemoDirectory.reset(directory)
        let config = LogConfig.tool(segmentBytes: segmentBytes, flushPolicy: .always)
        var tour = DemoTour(directory: directory, config: config, count: count, valueBytes: size)
        try tour.append()
        try tour.reopenAndRead()
        try tour.listFiles()
        try tour.verify()
        tour.summarize(elapsed: MonotonicClock.nowNanoseconds() - started)
    }
}

/// The steps of the demo, each printing what it did.
struct DemoTour {
    let directory: String
    let config: LogConfig
    let count: Int
    let valueBytes: Int
    let codec = CompressionCodec.lz4
    let batchRecords = 100
    private var appended = SyntheticWriter.Totals()
    private var appendNanoseconds: UInt64 = 0
    private var segmentCount = 0

    init(directory: String, config: LogConfig, count: Int, valueBytes: Int) {
        self.directory = directory
        self.config = config
        self.count = count
        self.valueBytes = valueBytes
    }

    /// Step 1: appends through `PartitionLog` with an fsync before every append returns.
    mutating func append() throws {
        Console.line("1. append: \(Format.count(count)) JSON-like records of \(valueBytes) bytes, lz4, "
            + "\(batchRecords) per batch, flush always, segments of \(Format.bytes(config.segmentBytes))")
        let log = try PartitionLog.open(directory: directory, config: config, logger: Console.logger())
        var writer = SyntheticWriter(log: log, valueBytes: valueBytes, codec: codec, batchRecords: batchRecords)
        let started = MonotonicClock.nowNanoseconds()
        do { try writer.append(count: count) } catch {
            try? log.close()
            throw error
        }
        try log.close()
        appendNanoseconds = MonotonicClock.nowNanoseconds() - started
        appended = writer.totals
        let ratio = Double(appended.valueBytes) / Double(max(appended.batchBytes, 1))
        let recordsPerSecond = Int(Format.perSecond(Double(appended.records), appendNanoseconds))
        Console.line("   \(Format.count(appended.batches)) batches, each acknowledged after its fsync, in "
            + "\(Format.seconds(appendNanoseconds)) (\(Format.count(recordsPerSecond)) records/s); "
            + "\(Format.bytes(appended.valueBytes)) of values stored in \(Format.bytes(appended.batchBytes)) "
            + "(lz4 ratio \(Format.fixed(ratio, 1))x)")
    }

    /// Steps 2–4: reopens (a clean shutdown skips recovery), reads everything back, looks up by time.
    mutating func reopenAndRead() throws {
        let log = try PartitionLog.open(directory: directory, config: config, logger: Console.logger())
        defer { try? log.close() }
        let report = log.recoveryReport
        segmentCount = log.segments.count
        Console.line("2. reopen: \(segmentCount) segments, offsets \(log.logStartOffset)..<\(log.logEndOffset); "
            + (report.cleanShutdown ? "clean shutdown marker found, so recovery scanned nothing"
                : "no clean shutdown: recovery scanned \(Format.count(report.scannedBytes)) bytes"))
        let read = try DemoReader(log: log, valueBytes: valueBytes).readAll()
        Console.line("3. read back: \(Format.count(read.records)) records in \(Format.count(read.batches)) batches through "
            + "read(from:maxBytes:), \(read.reads) reads of at most 256 KiB, in \(Format.seconds(read.nanoseconds)); every "
            + "record matches what was written")
        try lookUpByTime(log)
        try log.close()
    }

    private func lookUpByTime(_ log: PartitionLog) throws {
        let target = Int64(count) * 3 / 4
        let timestamp = SyntheticRecords.timestamp(at: target)
        let found = try log.offset(forTimestamp: timestamp)
        guard found == target else {
            throw ToolError.unexpectedLog("offset(forTimestamp: \(timestamp)) gave \(found.map(String.init) ?? "nil"), expected \(target)")
        }
        let past = try log.offset(forTimestamp: SyntheticRecords.timestamp(at: Int64(count)))
        guard past == nil else { throw ToolError.unexpectedLog("a timestamp after the last record found offset \(past ?? -1)") }
        Console.line("4. time lookup: the first record at or after timestamp \(timestamp) is offset \(target) "
            + "(time index → offset index → one batch decoded); a later timestamp finds none")
    }

    /// Step 5: the files, as `ls -l` would show them.
    func listFiles() throws {
        let partition = try PartitionDirectory(directory)
        Console.line("5. files in \(directory):")
        for base in partition.segmentBases {
            let sizes = [SegmentFiles.Kind.log, .index, .timeIndex].map { kind -> String in
                let path = partition.file(base, kind)
                let name = String(path.split(separator: "/").last ?? "")
                return Format.pad(name, 31) + Format.padLeft(Format.count(FileSystem.size(path) ?? 0), 9)
            }
            Console.line("   " + sizes.joined(separator: "   "))
        }
        for name in PartitionDirectory.checkpointNames.sorted() where partition.contains(name) {
            Console.line("   " + Format.pad(name, 31) + Format.padLeft(Format.count(FileSystem.size(partition.child(name)) ?? 0), 9))
        }
    }

    /// Step 6: the same read-only checks as `verify`.
    func verify() throws {
        let partition = try PartitionDirectory(directory)
        do {
            let result = try PartitionVerifier(directory: partition, syntheticValueBytes: valueBytes).run()
            Console.line("6. verify: \(result.segments.count) segments, \(Format.count(result.records)) records: every batch's "
                + "length, magic, CRC-32C and records, every index entry and both checkpoints check out"
                + (result.warnings.isEmpty ? "" : " (\(result.warnings.count) warnings: \(result.warnings.joined(separator: "; ")))"))
        } catch let corruption as Corruption {
            throw ToolError.unexpectedLog("verify found \(corruption)")
        }
    }

    func summarize(elapsed: UInt64) {
        Console.line("""

            The storage engine wrote \(Format.count(count)) records as \(Format.count(appended.batches)) lz4 batches \
            across \(segmentCount) segments, fsyncing before each append returned; closed the log cleanly, reopened it \
            without a scan, served it back batch by batch with CRC checks, and found a record by timestamp through \
            the sparse indexes (\(Format.seconds(elapsed)) in all).

            Try next:
            """)
        // The path this process was started by (`swift run` gives .build/release/sluice-log), so the
        // suggestions can be pasted as they are.
        let tool = CommandLine.arguments.first ?? "sluice-log"
        let suggestions = [
            ("\(tool) dump \(directory)", "one line per batch"),
            ("\(tool) dump \(directory)/\(SegmentFiles.baseName(0)).log --records", "every record"),
            ("\(tool) verify \(directory)", "read-only check; flip a byte in a .log and run it again"),
            ("\(tool) append \(directory) --count 100000 --size 1024 --codec zstd --flush os", "more records"),
            ("\(tool) bench --quick", "the engine against raw disk and the codec libraries"),
        ]
        let width = suggestions.map(\.0.count).max() ?? 0
        for (command, what) in suggestions { Console.line("  " + Format.pad(command, width) + "   " + what) }
    }
}

/// Reads a whole log through `read(from:maxBytes:)` and checks each record against the generator.
struct DemoReader {
    struct Outcome {
        var records = 0
        var batches = 0
        var reads = 0
        var nanoseconds: UInt64 = 0
    }

    let log: PartitionLog
    let valueBytes: Int
    static let readBytesMax = 256 << 10

    func readAll() throws -> Outcome {
        var outcome = Outcome()
        let started = MonotonicClock.nowNanoseconds()
        var offset = log.logStartOffset
        var expected = offset
        while offset < log.logEndOffset {
            let result = try log.read(from: offset, maxBytes: Self.readBytesMax)
            guard result.nextOffset > offset else { throw ToolError.unexpectedLog("read(from: \(offset)) did not advance") }
            try result.bytes.withUnsafeBytes { raw in
                try forEachBatch(raw) { header, batch in
                    for record in try RecordBatch.records(in: batch) {
                        try check(record, expected: expected, codec: header.codec ?? .none)
                        expected += 1
                        outcome.records += 1
                    }
                    outcome.batches += 1
                }
            }
            outcome.reads += 1
            offset = result.nextOffset
        }
        outcome.nanoseconds = MonotonicClock.nowNanoseconds() - started
        return outcome
    }

    private func check(_ record: Record, expected: Int64, codec: CompressionCodec) throws {
        guard record.offset == expected else {
            throw ToolError.content("found offset \(record.offset) where \(expected) was expected")
        }
        if let mismatch = SyntheticRecords.mismatch(record, valueBytes: valueBytes, codec: codec) {
            throw ToolError.content(mismatch)
        }
    }
}

/// Calls `body` with each batch (header and bytes) of a buffer of whole batches, as `read` returns them.
func forEachBatch(_ raw: UnsafeRawBufferPointer, _ body: (RecordBatchHeader, UnsafeRawBufferPointer) throws -> Void) throws {
    var position = 0
    while position < raw.count {
        let rest = UnsafeRawBufferPointer(rebasing: raw[position...])
        let header = try RecordBatch.validateHeader(rest)
        guard header.totalSize <= rest.count else {
            throw ToolError.unexpectedLog("read returned a cut batch at byte \(position) of its result")
        }
        try body(header, UnsafeRawBufferPointer(rebasing: rest[0..<header.totalSize]))
        position += header.totalSize
    }
}

/// Starting the demo directory afresh, touching nothing but partition files.
enum DemoDirectory {
    /// Removes the partition files of `path` (segments, indexes, checkpoints, leftovers); refuses when
    /// anything else is there, so a mistyped path never loses someone's files.
    static func reset(_ path: String) throws {
        guard FileSystem.exists(path) else { return }
        let partition = try PartitionDirectory(path)
        guard partition.unknown.isEmpty else {
            throw ToolError.badPath(path, "a partition directory (it holds \(partition.unknown.prefix(3).joined(separator: ", "))"
                + "\(partition.unknown.count > 3 ? ", …" : "")); choose an empty or new directory")
        }
        for name in partition.names { try FileSystem.remove(partition.child(name)) }
        if !partition.names.isEmpty { Console.line("0. removed the \(partition.names.count) files of the previous demo in \(path)") }
    }
}
