import ArgumentParser
import SluiceCompression
import SluiceCore
import SluiceLog

/// `dump PATH [--records]`: prints the batches of a segment `.log` (or of every segment of a partition
/// directory, in offset order), one line per batch, read-only. A batch whose CRC does not match is shown
/// and the dump goes on; it stops where a length cannot be parsed. Also prints `.index` and
/// `.timeindex` entries. Control batches are labelled with their control record (`control: leader
/// change, leader 2`), never shown as data. Exit status 1 when anything was damaged.
struct DumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print the batches (and with --records the records) of a segment or partition, read-only."
    )

    @Argument(help: "A segment .log file, a partition directory, or an .index / .timeindex file.")
    var path: String

    @Flag(help: "Also print every record under its batch.")
    var records = false

    @Option(name: .customLong("max-bytes"), help: "Show at most this many bytes of each key and value (0 = all).")
    var maxBytes: Int = 64

    func validate() throws {
        guard maxBytes >= 0 else { throw ValidationError("--max-bytes must be at least 0") }
    }

    func run() throws {
        guard FileSystem.exists(path) else { throw ToolError.notFound(path) }
        var dumper = SegmentDumper(showRecords: records, maxBytes: maxBytes)
        if FileSystem.isDirectory(path) {
            let partition = try PartitionDirectory(path)
            for base in partition.segmentBases { try dumper.dump(partition.file(base, .log)) }
            Console.line("\(partition.segmentBases.count) segments: \(dumper.totalLine)")
        } else if let name = SegmentFiles.parse(fileName(path)), name.kind != .log {
            try IndexDumper.dump(path, kind: name.kind)
        } else if SegmentFiles.parse(fileName(path)) != nil || path.hasSuffix(".log") {
            try dumper.dump(path)
        } else {
            throw ToolError.badPath(path, "a segment .log, .index or .timeindex file or a partition directory")
        }
        if dumper.damaged { throw ExitCode(1) }
    }

    private func fileName(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }
}

/// Prints the batches of `.log` files and keeps totals.
struct SegmentDumper {
    let showRecords: Bool
    let maxBytes: Int
    private(set) var batches = 0
    /// Records of data batches (control batches are counted apart).
    private(set) var recordCount = 0
    /// Control batches seen (a leader's no-op entry each).
    private(set) var controlBatches = 0
    private(set) var bytes = 0
    /// Whether any batch was damaged (CRC, records) or a file could not be read to its end.
    private(set) var damaged = false

    init(showRecords: Bool, maxBytes: Int) {
        self.showRecords = showRecords
        self.maxBytes = maxBytes
    }

    var totalLine: String {
        let control = controlBatches == 0 ? "" : " (\(Format.count(controlBatches)) control)"
        return "\(Format.count(batches)) batches\(control), \(Format.count(recordCount)) records, \(Format.count(bytes)) bytes"
    }

    /// Dumps one `.log` file.
    mutating func dump(_ path: String) throws {
        let file = try LogFile.openReadOnly(path)
        let size = try file.size()
        Console.line("segment \(path) (\(Format.count(size)) bytes)")
        // CRC checked here, not by the scanner, so a bad batch is shown and the dump continues.
        let scanner = BatchScanner(file: file, position: 0, endPosition: size, limits: .default, verifyCRC: false)
        while true {
            switch try scanner.next() {
            case .end:
                return
            case .invalid(let position, let reason):
                damaged = true
                Console.line("STOP at byte \(position): \(reason); the batches after it cannot be located")
                return
            case .batch(let header, let position, let raw):
                dumpBatch(header, position: position, raw: raw)
            }
        }
    }

    private mutating func dumpBatch(_ header: RecordBatchHeader, position: Int, raw: UnsafeRawBufferPointer) {
        let computed = RecordBatch.computeCRC(raw)
        let crc = computed == header.crc ? "ok" : "MISMATCH(stored \(Format.hex32(header.crc)) computed \(Format.hex32(computed)))"
        if computed != header.crc { damaged = true }
        Console.line(Self.describe(header, position: position) + " crc=\(crc)")
        batches += 1
        bytes += header.totalSize
        // A control batch (a leader's no-op entry) is not data: it is labelled, whether or not records are
        // shown, and its record is never printed as a data record.
        guard !header.isControl else {
            controlBatches += 1
            dumpControl(raw)
            return
        }
        recordCount += Int(header.recordCount)
        guard showRecords else { return }
        do {
            for record in try RecordBatch.records(in: raw) { Console.line("    " + describe(record)) }
        } catch {
            damaged = true
            Console.line("    records do not decode: \(error)")
        }
    }

    /// `    control: leader change, leader 2` for each record of a control batch, or why it does not parse.
    private mutating func dumpControl(_ raw: UnsafeRawBufferPointer) {
        do {
            for record in try RecordBatch.records(in: raw) {
                Console.line("    control: \(try ControlRecord(key: record.key, value: record.value))")
            }
        } catch {
            damaged = true
            Console.line("    control: does not parse: \(error)")
        }
    }

    /// The batch line: `batch offsets=… position=… …` (everything but the CRC status).
    static func describe(_ h: RecordBatchHeader, position: Int) -> String {
        var flags: [String] = []
        if h.timestampType == .logAppendTime { flags.append("logAppendTime") }
        if h.isTransactional { flags.append("transactional") }
        if h.isControl { flags.append("control") }
        let codec = h.codec.map { "\($0)" } ?? "unknown(\(h.codecID))"
        return "batch offsets=\(h.baseOffset)..\(h.lastOffset) position=\(position) size=\(h.totalSize) "
            + "records=\(h.recordCount) codec=\(codec) firstTimestamp=\(h.baseTimestamp) maxTimestamp=\(h.maxTimestamp) "
            + "producerId=\(h.producerId) producerEpoch=\(h.producerEpoch) baseSequence=\(h.baseSequence) "
            + "leaderEpoch=\(h.partitionLeaderEpoch)" + (flags.isEmpty ? "" : " flags=\(flags.joined(separator: ","))")
    }

    /// The record line: offset, timestamp, key, value (quoted, `\xNN` for bytes that are not printable)
    /// and headers.
    func describe(_ record: Record) -> String {
        let headers = record.headers.map { header in
            Format.quoted(Array(header.key.utf8), maxBytes: maxBytes) + "=" + Format.quoted(header.value, maxBytes: maxBytes)
        }
        let valueSize = record.value.map { " valueBytes=\($0.count)" } ?? ""
        return "record offset=\(record.offset) timestamp=\(record.timestamp) key=\(Format.quoted(record.key, maxBytes: maxBytes)) "
            + "value=\(Format.quoted(record.value, maxBytes: maxBytes))\(valueSize) headers=[\(headers.joined(separator: ", "))]"
    }
}

/// Prints the entries of an `.index` or `.timeindex` file.
enum IndexDumper {
    static func dump(_ path: String, kind: SegmentFiles.Kind) throws {
        let file = try LogFile.openReadOnly(path)
        let bytes = try file.read(count: try file.size(), at: 0)
        Console.line("\(kind == .index ? "offset" : "time") index \(path) (\(Format.count(bytes.count)) bytes)")
        switch kind {
        case .index:
            guard let entries = IndexFormat.decodeOffsetIndex(bytes) else { throw badSize(path, bytes.count, OffsetIndexEntry.size) }
            for (i, e) in entries.enumerated() {
                Console.line("entry \(i) relativeOffset=\(e.relativeOffset) position=\(e.position)")
            }
        case .timeIndex:
            guard let entries = IndexFormat.decodeTimeIndex(bytes) else { throw badSize(path, bytes.count, TimeIndexEntry.size) }
            for (i, e) in entries.enumerated() {
                Console.line("entry \(i) timestamp=\(e.timestamp) relativeOffset=\(e.relativeOffset)")
            }
        case .log:
            preconditionFailure("log files are dumped by SegmentDumper")
        }
    }

    private static func badSize(_ path: String, _ size: Int, _ entry: Int) -> ToolError {
        ToolError.badPath(path, "a whole number of \(entry)-byte entries (it has \(size) bytes)")
    }
}
