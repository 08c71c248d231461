import ArgumentParser
import SluiceCompression
import SluiceCore
import SluiceLog

/// `append DIR --count N --size BYTES`: writes synthetic records (see `SyntheticRecords`) through
/// `PartitionLog`, then closes the log cleanly and prints what it wrote.
struct AppendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "append",
        abstract: "Append synthetic records to a partition log (created when missing).",
        discussion: """
            The record at offset o is a pure function of o, --size and the codec (see SyntheticRecords.swift), \
            so content can be checked after a crash. Offsets continue from the log's end offset.
            """
    )

    @Argument(help: "The partition directory.")
    var directory: String

    @Option(help: "How many records to append.")
    var count: Int

    @Option(help: "Value bytes per record (at least the \"record-<offset>|\" prefix is written).")
    var size: Int

    @Option(help: "Compression codec of the batches: none, lz4 or zstd.")
    var codec: CodecOption = .none

    @Option(name: .customLong("batch"), help: "Records per batch.")
    var batchRecords: Int = 100

    @Option(help: "Flush policy: always (fsync before each append returns), interval or os.")
    var flush: FlushOption = .always

    @Option(name: .customLong("flush-interval-ms"), help: "Period of --flush interval, in milliseconds.")
    var flushIntervalMilliseconds: Int = 1000

    @Option(name: .customLong("segment-bytes"), help: "Roll segments at this size (default 1 GiB).")
    var segmentBytes: Int?

    @Flag(name: .customLong("report-acks"), help: "After each append returns, print `ack FIRST LAST` and flush stdout.")
    var reportAcks = false

    /// Largest value the tool generates: a batch of one such record stays under the batch limit.
    static let valueBytesMax = 8 << 20

    func validate() throws {
        guard count >= 0 else { throw ValidationError("--count must be at least 0") }
        guard size >= 0 && size <= Self.valueBytesMax else {
            throw ValidationError("--size must be within 0...\(Self.valueBytesMax)")
        }
        let limits = Limits.default
        guard batchRecords >= 1 && batchRecords <= limits.batchRecordsMax else {
            throw ValidationError("--batch must be within 1...\(limits.batchRecordsMax)")
        }
        // Conservative: the uncompressed size must fit, whatever the codec saves.
        let estimate = RecordBatchHeader.size + batchRecords * (max(size, 30) + 40)
        guard estimate <= limits.batchBytesMax else {
            throw ValidationError(
                "a batch of \(batchRecords) records of \(size) bytes is about \(Format.bytes(estimate)), above the "
                    + "\(Format.bytes(limits.batchBytesMax)) batch limit; lower --batch or --size")
        }
        guard flushIntervalMilliseconds > 0 else { throw ValidationError("--flush-interval-ms must be positive") }
    }

    func run() throws {
        let config = LogConfig.tool(
            segmentBytes: segmentBytes, flushPolicy: flush.policy(intervalMilliseconds: flushIntervalMilliseconds))
        let log = try PartitionLog.open(directory: directory, config: config, logger: Console.logger())
        var writer = SyntheticWriter(log: log, valueBytes: size, codec: codec.codec, batchRecords: batchRecords)
        let started = MonotonicClock.nowNanoseconds()
        do {
            try writer.append(count: count) { info in
                guard reportAcks else { return }
                Console.line("ack \(info.firstOffset) \(info.lastOffset)")
                Console.flush()
            }
        } catch {
            // Leave the log closed either way; the append error is the one worth reporting.
            try? log.close()
            throw error
        }
        try log.close()
        let elapsed = MonotonicClock.nowNanoseconds() - started
        printSummary(writer.totals, elapsed: elapsed, logEnd: log.logEndOffset)
    }

    private func printSummary(_ totals: SyntheticWriter.Totals, elapsed: UInt64, logEnd: Int64) {
        let range = totals.records > 0 ? "\(totals.firstOffset)..\(totals.firstOffset + Int64(totals.records) - 1)" : "none"
        Console.line("appended \(Format.count(totals.records)) records in \(Format.count(totals.batches)) batches to \(directory)")
        Console.line("  offsets   \(range) (log end offset now \(logEnd))")
        Console.line("  bytes     \(Format.count(totals.valueBytes)) value bytes, \(Format.count(totals.batchBytes)) batch bytes "
            + "written (codec \(codec.rawValue))")
        let recordsPerSecond = Format.perSecond(Double(totals.records), elapsed)
        let megabytesPerSecond = Format.perSecond(Double(totals.batchBytes), elapsed) / 1e6
        Console.line("  elapsed   \(Format.seconds(elapsed)) including record generation and close (flush \(flush.rawValue))")
        Console.line("  rate      \(Format.count(Int(recordsPerSecond))) records/s, \(Format.fixed(megabytesPerSecond)) MB/s of batches")
    }
}

/// Appends synthetic records in batches to a log that has no other writer, checking that the log assigns
/// exactly the offsets the records were generated for. Used by `append` and `demo`.
struct SyntheticWriter {
    /// What was written so far.
    struct Totals {
        var firstOffset: Int64 = 0
        var records = 0
        var batches = 0
        var valueBytes = 0
        var batchBytes = 0
    }

    let log: PartitionLog
    let generator: SyntheticRecords
    let codec: CompressionCodec
    let batchRecords: Int
    private(set) var totals = Totals()

    init(log: PartitionLog, valueBytes: Int, codec: CompressionCodec, batchRecords: Int) {
        self.log = log
        self.generator = SyntheticRecords(valueBytes: valueBytes, style: .init(codec: codec))
        self.codec = codec
        self.batchRecords = batchRecords
    }

    /// Appends `count` records from the log end offset on, calling `acknowledged` after each append
    /// returns (after its fsync under `FlushPolicy.always`).
    mutating func append(count: Int, acknowledged: (AppendInfo) -> Void = { _ in }) throws {
        var next = log.logEndOffset
        if totals.records == 0 { totals.firstOffset = next }
        let end = next + Int64(count)
        while next < end {
            let n = Int(min(Int64(batchRecords), end - next))
            let records = generator.records(from: next, count: n)
            let batch = try RecordBatch.build(records: records, codec: codec, baseOffset: next)
            let info = try log.append(batch)
            // One writer: the log must give the batch the offsets its records were generated for.
            guard info.firstOffset == next && info.lastOffset == next + Int64(n) - 1 else {
                throw ToolError.unexpectedLog(
                    "the log assigned offsets \(info.firstOffset)...\(info.lastOffset) to a batch generated for "
                        + "\(next)...\(next + Int64(n) - 1); is another process writing to \(log.directory)?")
            }
            acknowledged(info)
            totals.records += n
            totals.batches += 1
            totals.valueBytes += records.reduce(0) { $0 + ($1.value?.count ?? 0) }
            totals.batchBytes += batch.bytes.count
            next += Int64(n)
        }
    }
}
