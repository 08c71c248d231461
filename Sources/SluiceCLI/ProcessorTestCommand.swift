// `sluice processor test`: runs a processor query over a file of records on this machine, with no broker,
// so a query can be tried (and its output diffed in CI) before it is created.
//
// The command reads the whole input, binds the query against the field paths of the input's JSON objects
// (so a misspelt column gets the same did-you-mean error the broker gives), feeds every record to one
// `ProcessorTask` in file order, then calls `finish`: the end of the input closes every window, so EMIT
// FINAL results come out without a record far in the future. Everything it prints is built by the pure
// function `ProcessorTest.run(sql:lines:options:)`, which the tests call directly.
//
// Input (`--input FILE`, `-` for standard input), split into lines exactly like `sluice produce --file`
// (at `\n`, a `\r` before it dropped, a last line without a newline kept):
// - plain (default): each line is one record value, any bytes; no key, timestamp 0, partition 0.
// - `--envelope`: each non-blank line is a JSON object with optional members
//   `key` (string or null: the key's UTF-8 bytes, or no key),
//   `value` (any JSON: a string is used raw, as the value's bytes; null means no value, a tombstone;
//   anything else is written back as compact JSON),
//   `timestamp` (epoch ms as an integer, or an ISO-8601 string; default 0), and
//   `partition` (0…`ProcessorTestLimits.partitionsMax` − 1; default 0).
//   Any other member makes the line bad, so that a misspelt `timestmap` does not silently read as 0.
// In both modes a record's offset (`_offset`) is its 0-based line number in the input, and blank lines of
// an envelope file are skipped. Lines that cannot be records (too long, a bad envelope) are skipped and
// counted; the first few are named on standard error. They never stop the run.
//
// One task reads every partition and aggregates every group, so its watermark is the least of the
// partitions' (the broker runs a task per source partition, and groups by anything but `_key` through a
// repartition stage; the results of a finished run are the same).
// Processing time is one instant, the clock when the command starts: EMIT EVERY has no early results and
// idle timeouts never pass, which keeps the output a pure function of the input.
//
// Output: standard output holds what the sink would receive, one record per result, printed like
// `sluice consume` prints (default `%s\n`, the value; `-f` takes the same kcat-style tokens; `--json` one
// JSON object per record). `%t` is the sink topic, `%p` is 0 and `%o` counts the results from 0, as if the
// sink had one partition. Records behind the watermark go to standard error, each line starting `late: `
// and printed in the same format — whether or not the query sets `late_records` (there it would be copied to
// that topic; without it the broker only counts it). Standard error ends with a one-line summary.

import ArgumentParser
import Foundation
import SluiceCore
import SluiceSQL
import SluiceStreams

/// `sluice processor test (--sql TEXT | --file PATH) --input EVENTS [--envelope] [-f FORMAT | --json]`.
struct ProcessorTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run a query over a file of records locally, without a broker, and print its results.",
        discussion: """
            Each input line is one record value (no key, timestamp 0, partition 0, offset = line number from 0). \
            With --envelope each line is a JSON object {"key": "k" or null, "value": any JSON (a string is used \
            raw), "timestamp": epoch ms or ISO-8601, "partition": n}, every member optional. The end of the input \
            closes every window. Results go to standard output like 'sluice consume' prints them (-f takes the \
            same tokens: %k key, %s value, %T timestamp, …; --json one object per line); records behind the \
            watermark go to standard error as 'late: …' lines, followed by a summary. Bad input lines are \
            counted and skipped.
            """)

    @OptionGroup var query: ProcessorCommand.QueryOptions
    @Option(name: .long, help: "The records to run the query over, one per line ('-' reads standard input).")
    var input: String
    @Flag(name: .long, help: "Each input line is a JSON envelope with key, value, timestamp and partition.")
    var envelope = false
    @Option(name: .shortAndLong, help: "Output format (kcat style, as for 'sluice consume').") var format: String = "%s\\n"
    @Flag(help: "Print one JSON object per result.") var json = false

    func validate() throws {
        if query.file == "-" && input == "-" {
            throw ValidationError("the query and the input cannot both come from standard input; give one of them as a file")
        }
        do { _ = try RecordFormat(parsing: format) } catch { throw ValidationError("-f: \(error)") }
    }

    func run() throws {
        let sql = try query.load()
        let lines = try ProcessorTest.readLines(path: input)
        let options = ProcessorTest.Options(envelope: envelope, format: try RecordFormat(parsing: format), json: json,
                                            nowMs: SystemWallClock().nowMilliseconds())
        let outcome = try ProcessorTest.run(sql: sql, lines: lines, options: options)
        ProcessorTest.writeAll(outcome.stdout, to: 1)
        ProcessorTest.writeAll(outcome.stderr, to: 2)
        if let failure = outcome.failure { throw CLIFailure(failure) }
    }
}

/// Bounds of `sluice processor test`. The whole input is held in memory, so it is bounded as a whole too.
enum ProcessorTestLimits {
    /// The longest input line: the engine's largest JSON document (`JSONLimits.documentBytesMax`), so that
    /// every line short enough to be read could also be parsed. Longer lines are skipped and counted.
    static let lineBytesMax = JSONLimits.default.documentBytesMax
    /// The most input bytes read; a larger input is refused before anything runs.
    static let inputBytesMax = 256 << 20
    /// Envelope partitions are `0..<partitionsMax`: one task tracks a watermark per partition.
    static let partitionsMax = 1024
    /// Bad lines named one by one on standard error; the rest are only counted.
    static let badLinesReportedMax = 10
}

/// The pure core of `sluice processor test`: lines in, printed bytes out.
enum ProcessorTest {
    /// How to read the input and print the results.
    struct Options {
        /// Lines are JSON envelopes rather than bare values.
        var envelope = false
        /// How each result is printed (unless `json`).
        var format = RecordFormat.default
        /// One JSON object per result, as `sluice consume --json` prints.
        var json = false
        /// Processing time for the whole run, epoch ms.
        var nowMs: Int64 = 0
    }

    /// What a run printed and counted.
    struct Outcome {
        /// The results, printed.
        var stdout: [UInt8] = []
        /// Skipped-line notes, late records, notes about the query, and the summary line.
        var stderr: [UInt8] = []
        /// Results printed.
        var results = 0
        /// Input lines skipped (too long, or not a valid envelope).
        var badLines = 0
        /// The task's counters at the end.
        var statistics = TaskStatistics()
        /// Why the task stopped early (a state or output limit), or nil when it ran to the end. What it
        /// produced before that is printed.
        var failure: String?

        /// `stdout` split at newlines, without a trailing empty line (for tests and small outputs).
        var stdoutLines: [String] { Self.lines(stdout) }
        /// `stderr` split the same way.
        var stderrLines: [String] { Self.lines(stderr) }

        static func lines(_ bytes: [UInt8]) -> [String] {
            var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
                .map { String(decoding: $0, as: UTF8.self) }
            if lines.last == "" { lines.removeLast() }
            return lines
        }
    }

    /// One input record, owned.
    struct Record {
        var key: [UInt8]?
        var value: [UInt8]?
        var timestampMs: Int64 = 0
        var partition: Int32 = 0
        var offset: Int64
    }

    /// Binds `sql` against the input's field paths, runs it over `lines` and prints the results.
    /// - Throws: `CLIFailure` with the query's line and a caret when the query does not bind.
    static func run(sql: String, lines: [[UInt8]], options: Options) throws(CLIFailure) -> Outcome {
        var outcome = Outcome()
        var records: [Record] = []
        records.reserveCapacity(lines.count)
        for (index, line) in lines.enumerated() {
            switch record(line, index: index, envelope: options.envelope) {
            case .record(let record): records.append(record)
            case .blank: break
            case .bad(let reason):
                outcome.badLines += 1
                if outcome.badLines <= ProcessorTestLimits.badLinesReportedMax {
                    outcome.stderr.append(contentsOf: "line \(index + 1): skipped: \(reason)\n".utf8)
                }
            }
        }
        var plan = try bind(sql, columns: knownColumns(records))
        let partitions = Set(records.map(\.partition)).sorted()
        // Late rows are always copied out, so the user sees what the watermark dropped; the name is only
        // what `%t` prints for them. (Only windowed plans have late rows, and only they may name the topic.)
        if plan.isWindowed, plan.lateRecordsTopic == nil { plan.lateRecordsTopic = "late_records" }
        var printer = Printer(plan: plan, options: options)
        var task = ProcessorTask(plan: plan, inputPartitions: partitions.isEmpty ? [0] : partitions, nowMs: options.nowMs)
        var produced: [OutputRecord] = []
        do {
            for record in records {
                try feed(record, to: &task, nowMs: options.nowMs, into: &produced)
                printer.print(produced, into: &outcome)
                produced.removeAll(keepingCapacity: true)
            }
            try task.advance(nowMs: options.nowMs, into: &produced)
        } catch {
            outcome.failure = "the task stopped: \(error)"
        }
        if outcome.failure == nil { task.finish(into: &produced) }
        printer.print(produced, into: &outcome)
        outcome.statistics = task.statistics
        outcome.stderr.append(contentsOf: summary(outcome, records: records.count).utf8)
        return outcome
    }

    /// Hands `record` to the task as a borrowed view.
    static func feed(_ record: Record, to task: inout ProcessorTask, nowMs: Int64,
                     into output: inout [OutputRecord]) throws(TaskError) {
        // Typed throws do not pass through `withUnsafeBytes`, so the error is carried out as a value.
        let result: Result<Void, TaskError> = withOptionalBytes(record.key) { key in
            withOptionalBytes(record.value) { value in
                let view = InputRecordView(key: key, value: value, timestampMs: record.timestampMs,
                                           partition: record.partition, offset: record.offset)
                do throws(TaskError) {
                    try task.process(view, nowMs: nowMs, into: &output)
                    return .success(())
                } catch {
                    return .failure(error)
                }
            }
        }
        try result.get()
    }

    static func withOptionalBytes<T>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> T) -> T {
        guard let bytes else { return body(nil) }
        return bytes.withUnsafeBytes { body($0) }
    }

    /// `Binder.plan`, with an `SQLError` turned into the message `processor create` prints for the broker's.
    static func bind(_ sql: String, columns: Set<String>) throws(CLIFailure) -> ProcessorPlan {
        do {
            return try Binder.plan(sql: sql, options: BindOptions(knownColumns: columns.isEmpty ? nil : columns))
        } catch {
            throw CLIFailure(ProcessorFormat.queryError("\(error)", sql: sql))
        }
    }

    static func summary(_ outcome: Outcome, records: Int) -> String {
        let s = outcome.statistics
        var text = "\(counted(records, "record")) in, \(counted(outcome.results, "result")) out, "
            + "\(NumberText.grouped(s.recordsLate)) late, \(NumberText.grouped(s.recordsInvalid)) invalid "
            + "(not JSON, or no event time), \(counted(outcome.badLines, "bad input line")) skipped"
        if outcome.badLines > ProcessorTestLimits.badLinesReportedMax {
            text += " (the first \(ProcessorTestLimits.badLinesReportedMax) are named above)"
        }
        return text + "\n"
    }

    /// `1 record`, `1,200 records`.
    static func counted(_ count: Int, _ noun: String) -> String {
        "\(NumberText.grouped(Int64(count))) \(noun)\(count == 1 ? "" : "s")"
    }

    // MARK: Input

    /// What one input line is.
    enum Line {
        case record(Record)
        /// A blank line of an envelope file: not a record, not an error.
        case blank
        /// Not a record, and why.
        case bad(String)
    }

    /// The record of line `index` (0-based), or why there is none.
    static func record(_ line: [UInt8], index: Int, envelope: Bool) -> Line {
        guard line.count <= ProcessorTestLimits.lineBytesMax else {
            return .bad("\(NumberText.grouped(Int64(line.count))) bytes, longer than the limit of "
                + "\(NumberText.grouped(Int64(ProcessorTestLimits.lineBytesMax))) (ProcessorTestLimits.lineBytesMax)")
        }
        guard envelope else { return .record(Record(key: nil, value: line, offset: Int64(index))) }
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return .blank }
        return decodeEnvelope(line, offset: Int64(index))
    }

    static let envelopeMembers = "key, value, timestamp, partition"

    /// `{"key": …, "value": …, "timestamp": …, "partition": …}` as a record (see the notes at the top).
    static func decodeEnvelope(_ line: [UInt8], offset: Int64) -> Line {
        let parsed: JSONValue
        do { parsed = try JSONParser.parse(line) } catch { return .bad("not a JSON envelope: \(error)") }
        guard case .object(let object) = parsed else {
            return .bad("an envelope is a JSON object with \(envelopeMembers); found \(kind(of: parsed))")
        }
        var record = Record(key: nil, value: nil, offset: offset)
        for member in object.members {
            switch (member.key, member.value) {
            case ("key", .null): record.key = nil
            case ("key", .string(let text)): record.key = Array(text.utf8)
            case ("key", let other): return .bad("\"key\" must be a string or null, found \(kind(of: other))")
            case ("value", .null): record.value = nil
            case ("value", .string(let text)): record.value = Array(text.utf8)
            case ("value", let other):
                var bytes: [UInt8] = []
                other.write(to: &bytes)
                record.value = bytes
            case ("timestamp", .int(let ms)): record.timestampMs = ms
            case ("timestamp", .string(let text)):
                guard let ms = ISO8601.parseMilliseconds(text) else {
                    return .bad("\"timestamp\" \"\(text)\" is not an ISO-8601 time such as 2026-11-29T10:00:00Z")
                }
                record.timestampMs = ms
            case ("timestamp", let other):
                return .bad("\"timestamp\" must be epoch milliseconds (an integer) or an ISO-8601 string, found \(kind(of: other))")
            case ("partition", .int(let number)) where number >= 0 && number < Int64(ProcessorTestLimits.partitionsMax):
                record.partition = Int32(number)
            case ("partition", let other):
                return .bad("\"partition\" must be an integer in 0...\(ProcessorTestLimits.partitionsMax - 1), found \(other)")
            default:
                return .bad("unknown envelope member \"\(member.key)\"; an envelope has \(envelopeMembers)")
            }
        }
        return .record(record)
    }

    static func kind(of value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int, .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// The dotted paths of the members of the input's JSON object values, for the binder's column check.
    static func knownColumns(_ records: [Record]) -> Set<String> {
        var columns = KnownColumns()
        for record in records {
            if let value = record.value { columns.add(value: value) }
        }
        return columns.paths
    }

    /// The lines of the file at `path` (`-` is standard input), split like `sluice produce --file` splits
    /// them. Refuses an input over `ProcessorTestLimits.inputBytesMax` without reading it all.
    static func readLines(path: String) throws(CLIFailure) -> [[UInt8]] {
        let name = path == "-" ? "standard input" : "'\(path)'"
        guard let bytes = try ProcessorFormat.readBounded(path: path, bytesMax: ProcessorTestLimits.inputBytesMax, what: "the input \(name)") else {
            throw CLIFailure("the input \(name) is larger than the limit of \(formatBytes(Int64(ProcessorTestLimits.inputBytesMax))) "
                + "(ProcessorTestLimits.inputBytesMax); test with a sample of it")
        }
        return splitLines(bytes)
    }

    /// Lines at `\n`, each without a trailing `\r`; a last line without a newline counts, an empty tail does
    /// not (as `LineReader` reads them for `sluice produce`).
    static func splitLines(_ bytes: [UInt8]) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        var start = 0
        for index in bytes.indices where bytes[index] == UInt8(ascii: "\n") {
            lines.append(line(bytes, start, index))
            start = index + 1
        }
        if start < bytes.count { lines.append(line(bytes, start, bytes.count)) }
        return lines
    }

    private static func line(_ bytes: [UInt8], _ start: Int, _ end: Int) -> [UInt8] {
        var end = end
        if end > start && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        return Array(bytes[start..<end])
    }

    // MARK: Output

    /// Prints task outputs: results to stdout, late copies to stderr behind `late: `.
    struct Printer {
        let sink: String
        let late: String
        let options: Options
        /// Results printed so far: the `%o` of the next one.
        var sinkOffset: Int64 = 0
        var lateOffset: Int64 = 0
        private var line: [UInt8] = []

        init(plan: ProcessorPlan, options: Options) {
            sink = plan.sink
            late = plan.lateRecordsTopic ?? "late_records"
            self.options = options
        }

        mutating func print(_ records: [OutputRecord], into outcome: inout Outcome) {
            for record in records {
                switch record.destination {
                case .sink:
                    render(record, topic: sink, offset: sinkOffset, into: &outcome.stdout)
                    sinkOffset += 1
                    outcome.results += 1
                case .late:
                    line.removeAll(keepingCapacity: true)
                    render(record, topic: late, offset: lateOffset, into: &line)
                    lateOffset += 1
                    outcome.stderr.append(contentsOf: "late: ".utf8)
                    outcome.stderr.append(contentsOf: line)
                    // A format without a newline would run the next stderr line into this one.
                    if line.last != UInt8(ascii: "\n") { outcome.stderr.append(UInt8(ascii: "\n")) }
                }
            }
        }

        private func render(_ record: OutputRecord, topic: String, offset: Int64, into out: inout [UInt8]) {
            let formatted = FormattedRecord(topic: topic, partition: 0, offset: offset, timestamp: record.timestampMs,
                                            key: record.key, value: record.value)
            if options.json {
                RecordFormat.json(formatted, into: &out)
                out.append(UInt8(ascii: "\n"))
            } else {
                options.format.render(formatted, into: &out)
            }
        }
    }

    /// Writes all of `bytes` to `descriptor`, retrying short writes.
    static func writeAll(_ bytes: [UInt8], to descriptor: Int32) {
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var offset = 0
            while offset < raw.count {
                let written = write(descriptor, base + offset, raw.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { return }
                offset += written
            }
        }
    }
}
