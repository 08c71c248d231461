import ArgumentParser
import Foundation
import SluiceClient
import SluiceCore
import SluiceWire

/// `sluice processor …`: manage the continuous SQL queries the brokers run (protocol.md, "Processors").
///
/// The commands only parse, call the client and print; everything they print is built by the pure
/// functions of `ProcessorFormat`, which the tests call directly.
struct ProcessorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "processor",
        abstract: "Create, list, describe, pause, resume, reset, replace and delete processors (continuous SQL queries).",
        discussion: """
            A processor runs a query such as INSERT INTO clicks_per_user SELECT user, COUNT(*) AS clicks FROM clicks \
            GROUP BY user, TUMBLE(ts, INTERVAL '10' SECOND) EMIT FINAL inside the brokers, one task per partition \
            of its source topic, and writes the results to its sink topic.
            """,
        subcommands: [
            Create.self, List.self, Describe.self, Pause.self, Resume.self, Reset.self, Replace.self, Delete.self,
            ProcessorTestCommand.self,
        ])

    /// `--sql TEXT | --file PATH`: exactly one, for create and replace.
    struct QueryOptions: ParsableArguments {
        // Unconditional: a query may well start with `--`, a SQL comment.
        @Option(name: .long, parsing: .unconditional, help: "The query text.") var sql: String?
        @Option(name: .long, parsing: .unconditional, help: "A file holding the query ('-' reads standard input).") var file: String?

        func validate() throws {
            switch (sql, file) {
            case (.some, .some): throw ValidationError("give the query with --sql or with --file, not both")
            case (.none, .none): throw ValidationError("give the query with --sql TEXT or --file PATH ('-' reads standard input)")
            default: break
            }
        }

        /// The query text, from the flag or the file.
        func load() throws -> String {
            let text = try sql ?? ProcessorFormat.readQuery(path: file ?? "-")
            if let problem = ProcessorFormat.queryProblem(text) { throw CLIFailure(problem) }
            return text
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register a processor and start it.",
            discussion: "--from takes earliest (default), latest or @TIMESTAMP (epoch milliseconds or ISO-8601, e.g. @2026-11-29T10:00:00Z).")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Processor name: letters, digits, '.', '_' and '-'.") var name: String
        @OptionGroup var query: QueryOptions
        @Option(name: .long, parsing: .unconditional, help: "Where to start reading the source: earliest, latest or @TIMESTAMP.")
        var from: String = "earliest"
        @Flag(name: .long, help: "Check the name and the query on the broker; create nothing.") var validateOnly = false

        func validate() throws {
            if let problem = ProcessorLimits.nameProblem(name) { throw ValidationError(problem) }
            do { _ = try ProcessorFormat.startPosition(parsing: from) } catch { throw ValidationError("--from: \(error)") }
        }

        func run() async throws {
            let position = try ProcessorFormat.startPosition(parsing: from)
            let sql = try query.load()
            try await ProcessorFormat.explainingQueryErrors(sql) {
                try await withClient(connection) {
                    try await $0.createProcessor(name: name, sql: sql, from: position, validateOnly: validateOnly)
                }
            }
            print(validateOnly ? "processor \(name) is valid; nothing was created" : "created processor \(name), reading from \(position)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List processors.")
        @OptionGroup var connection: ConnectionOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let processors = try await withClient(connection) { try await $0.listProcessors() }
            print(json ? ProcessorFormat.listJSON(processors) : ProcessorFormat.listText(processors))
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a processor's state, query, and per-partition offsets, lag, watermark and rates.")
        @OptionGroup var connection: ConnectionOptions
        @Argument var name: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let description = try await withClient(connection) { try await $0.describeProcessor(name) }
            print(json ? ProcessorFormat.describeJSON(description) : ProcessorFormat.describeText(description))
        }
    }

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop a processor where it is; resume continues from there.")
        @OptionGroup var connection: ConnectionOptions
        @Argument var name: String

        func run() async throws {
            try await withClient(connection) { try await $0.pauseProcessor(name) }
            print("paused processor \(name)")
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start a paused or failed processor again from its checkpoints.")
        @OptionGroup var connection: ConnectionOptions
        @Argument var name: String

        func run() async throws {
            try await withClient(connection) { try await $0.resumeProcessor(name) }
            print("resumed processor \(name)")
        }
    }

    struct Reset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Drop a processor's state and move its input to earliest, latest or @TIMESTAMP.",
            discussion: "Records the processor already wrote stay in its sink; after a reset to an earlier position it writes results again.")
        @OptionGroup var connection: ConnectionOptions
        @Argument var name: String
        @Option(name: .long, parsing: .unconditional, help: "earliest, latest or @TIMESTAMP.") var to: String

        func validate() throws {
            do { _ = try ProcessorFormat.startPosition(parsing: to) } catch { throw ValidationError("--to: \(error)") }
        }

        func run() async throws {
            let position = try ProcessorFormat.startPosition(parsing: to)
            try await withClient(connection) { try await $0.resetProcessor(name, to: position) }
            print("reset processor \(name) to \(position)")
        }
    }

    struct Replace: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give a processor a new query; it keeps its sink topic and starts with empty state.")
        @OptionGroup var connection: ConnectionOptions
        @Argument var name: String
        @OptionGroup var query: QueryOptions

        func run() async throws {
            let sql = try query.load()
            try await ProcessorFormat.explainingQueryErrors(sql) {
                try await withClient(connection) { try await $0.replaceProcessor(name, sql: sql) }
            }
            print("replaced the query of processor \(name)")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop and remove a processor.")
        @OptionGroup var connection: ConnectionOptions
        @Argument var name: String
        @Flag(name: .long, help: "Delete its sink topic and every record in it too.") var deleteOutput = false

        func run() async throws {
            try await withClient(connection) { try await $0.deleteProcessor(name, deleteOutput: deleteOutput) }
            print(deleteOutput ? "deleted processor \(name) and its sink topic" : "deleted processor \(name)")
        }
    }
}

/// What the processor commands print and parse, as pure functions the tests call.
enum ProcessorFormat {
    // MARK: Input

    /// `earliest`, `latest` or `@TIMESTAMP` (epoch ms or ISO-8601), in `OffsetSpec`'s spellings; the
    /// per-partition forms (an offset, `-N`) are refused because one position applies to every partition.
    static func startPosition(parsing text: String) throws -> ProcessorStartPosition {
        let spec: OffsetSpec
        do { spec = try OffsetSpec(parsing: text) } catch { throw CLIFailure(Self.startPositionHelp(text, problem: nil, error: error)) }
        switch spec {
        case .earliest: return .earliest
        case .latest: return .latest
        case .timestamp(let ms): return .timestamp(ms)
        case .offset, .fromEnd:
            throw CLIFailure(Self.startPositionHelp(text, problem: "offsets and -N name a place in one partition; a processor starts every partition at the same place", error: nil))
        }
    }

    static let startPositionForms = "use earliest (or beginning), latest (or end), @EPOCH_MS such as @1795946400000, "
        + "or an ISO-8601 time such as @2026-11-29T10:00:00Z"

    private static func startPositionHelp(_ text: String, problem: String?, error: OffsetSpecError?) -> String {
        if let error, case .badTime(let detail) = error.reason {
            return "\"\(text)\" is not a valid time: \(detail); \(startPositionForms)"
        }
        if let error, case .numberTooLarge = error.reason {
            return "\"\(text)\": the timestamp does not fit in a signed 64-bit integer; \(startPositionForms)"
        }
        return "\"\(text)\" is not a start position\(problem.map { " (\($0))" } ?? ""); \(startPositionForms)"
    }

    /// Why `sql` cannot be sent, or nil: empty, or longer than the protocol carries.
    static func queryProblem(_ sql: String) -> String? {
        if sql.allSatisfy(\.isWhitespace) { return "the query is empty" }
        if sql.utf8.count > ProcessorLimits.sqlBytesMax {
            return "the query is \(sql.utf8.count) bytes long; the limit is \(ProcessorLimits.sqlBytesMax)"
        }
        return nil
    }

    /// The text of the query file at `path` (`-` is standard input), read up to one byte past the limit so
    /// a huge file is refused without being read whole.
    static func readQuery(path: String) throws -> String {
        guard let bytes = try readBounded(path: path, bytesMax: ProcessorLimits.sqlBytesMax, what: "the query file '\(path)'") else {
            throw CLIFailure("the query file '\(path)' is longer than the limit of \(ProcessorLimits.sqlBytesMax) bytes")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw CLIFailure("the query file '\(path)' is not UTF-8 text")
        }
        return text
    }

    /// The whole content of `path` (`-` is standard input), or nil when it is longer than `bytesMax`: at
    /// most `bytesMax` plus one chunk is read to find out. `what` names the file in error messages.
    static func readBounded(path: String, bytesMax: Int, what: String) throws(CLIFailure) -> [UInt8]? {
        let ownsDescriptor = path != "-"
        let descriptor = ownsDescriptor ? open(path, O_RDONLY) : 0
        guard descriptor >= 0 else { throw CLIFailure("cannot read \(what): \(String(cString: strerror(errno)))") }
        defer { if ownsDescriptor { close(descriptor) } }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: min(1 << 20, bytesMax + 1))
        while bytes.count <= bytesMax {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw CLIFailure("cannot read \(what): \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[..<count])
        }
        return bytes.count <= bytesMax ? bytes : nil
    }

    /// Runs `body`; an `invalid_query` refusal comes back as a failure that shows the query line it names
    /// with a caret under the column, so the user sees the spot without counting.
    static func explainingQueryErrors(_ sql: String, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as SluiceClientError where error.code == .invalidQuery {
            throw CLIFailure(queryError(error.message, sql: sql))
        }
    }

    /// `the query is invalid: MESSAGE`, then, when the message starts `line L, column C:` and the query has
    /// that line, the line and a caret under column C (columns count Unicode scalars, as the SQL errors do).
    static func queryError(_ message: String, sql: String) -> String {
        let headline = "the query is invalid: \(message)"
        guard let (line, column) = position(in: message) else { return headline }
        let lines = sqlLines(sql)
        guard line >= 1, line <= lines.count else { return headline }
        let text = lines[line - 1]
        let scalars = Array(text.unicodeScalars)
        guard column >= 1, column <= scalars.count + 1 else { return headline }
        // Tabs stay tabs so the caret lines up however the terminal expands them.
        var pad = String.UnicodeScalarView()
        for scalar in scalars[..<(column - 1)] { pad.append(scalar == "\t" ? "\t" : " ") }
        let number = String(line)
        let gutter = String(repeating: " ", count: number.count)
        return "\(headline)\n  \(number) | \(text)\n  \(gutter) | \(String(pad))^"
    }

    /// The lines of a query as the SQL errors number them: split at every U+000A, with a `\r` before it
    /// dropped. (Splitting the `String` by `Character` would not split `\r\n`, one grapheme.)
    static func sqlLines(_ sql: String) -> [String] {
        sql.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            var scalars = String.UnicodeScalarView(line)
            if scalars.last == "\r" { scalars.removeLast() }
            return String(scalars)
        }
    }

    /// `(L, C)` from a message that starts `line L, column C:`.
    static func position(in message: String) -> (Int, Int)? {
        guard message.hasPrefix("line ") else { return nil }
        let rest = message.dropFirst("line ".count)
        guard let comma = rest.firstIndex(of: ","), let line = Int(rest[..<comma]) else { return nil }
        let afterComma = rest[comma...].dropFirst()
        guard afterComma.hasPrefix(" column ") else { return nil }
        let columnText = afterComma.dropFirst(" column ".count)
        guard let colon = columnText.firstIndex(of: ":"), let column = Int(columnText[..<colon]) else { return nil }
        return (line, column)
    }

    // MARK: Output

    /// The list as a table sorted by name, or a hint when there is none.
    static func listText(_ processors: [ListProcessorsResponse.Processor]) -> String {
        guard !processors.isEmpty else {
            return "no processors; create one with: sluice processor create NAME --sql 'INSERT INTO sink SELECT … FROM source'"
        }
        return table(["PROCESSOR", "STATE", "SOURCE → SINK"], processors.map { [$0.name, $0.state, "\($0.source) → \($0.sink)"] })
    }

    static func listJSON(_ processors: [ListProcessorsResponse.Processor]) -> String {
        JSON.array(processors.map { p in
            .object([("name", .string(p.name)), ("state", .string(p.state)), ("source", .string(p.source)), ("sink", .string(p.sink))])
        }).render()
    }

    /// A header (state, flow, creation time, totals, last error), the query indented, and one row per task.
    static func describeText(_ d: DescribeProcessorResponse) -> String {
        var lines = ["processor \(d.name): \(d.state), \(d.source) → \(d.sink), created \(isoUTC(d.createdMs))"]
        let sum = { (field: KeyPath<DescribeProcessorResponse.TaskStatus, Int64>) in d.tasks.reduce(Int64(0)) { $0.addingReportingOverflow($1[keyPath: field]).partialValue } }
        let lag = d.tasks.reduce(Int64(0)) { $0.addingReportingOverflow($1.lag).partialValue }
        lines.append("records: \(NumberText.grouped(sum(\.recordsIn))) in, \(NumberText.grouped(sum(\.recordsOut))) out, "
            + "\(NumberText.grouped(sum(\.recordsLate))) late, \(NumberText.grouped(sum(\.recordsInvalid))) invalid; "
            + "lag \(NumberText.grouped(lag)); state \(formatBytes(sum(\.stateBytes)))")
        if let error = d.lastError { lines.append("last error: \(error)") }
        lines.append("")
        lines += sqlLines(d.sql).map { "    " + $0 }
        lines.append("")
        if d.tasks.isEmpty {
            lines.append("no tasks: the source has no partitions or none is running yet")
        } else {
            lines.append(table(["PARTITION", "TASK", "OFFSET", "END", "LAG", "WATERMARK", "IN/S", "OUT/S", "LATE/S", "STATE SIZE", "ERROR"],
                               d.tasks.map(taskRow)))
        }
        return lines.joined(separator: "\n")
    }

    static func taskRow(_ t: DescribeProcessorResponse.TaskStatus) -> [String] {
        ["\(t.partition)", t.state, "\(t.inputOffset)", "\(t.inputEndOffset)", "\(t.lag)", t.watermark.map(isoUTC) ?? "-",
         rate(t.inRatePerSecond), rate(t.outRatePerSecond), rate(t.lateRatePerSecond), formatBytes(t.stateBytes),
         t.lastError.map(oneLine) ?? "-"]
    }

    static func describeJSON(_ d: DescribeProcessorResponse) -> String {
        JSON.object([
            ("name", .string(d.name)), ("state", .string(d.state)), ("source", .string(d.source)), ("sink", .string(d.sink)),
            ("sql", .string(d.sql)), ("created_ms", .int(d.createdMs)), ("last_error", d.lastError.map { .string($0) } ?? .null),
            ("partitions", .array(d.tasks.map { t in
                .object([
                    ("partition", .int(Int64(t.partition))), ("state", .string(t.state)),
                    ("input_offset", .int(t.inputOffset)), ("end_offset", .int(t.inputEndOffset)), ("lag", .int(t.lag)),
                    ("watermark_ms", t.watermark.map { .int($0) } ?? .null),
                    ("records_in", .int(t.recordsIn)), ("records_out", .int(t.recordsOut)),
                    ("records_late", .int(t.recordsLate)), ("records_invalid", .int(t.recordsInvalid)),
                    ("in_per_sec", .double(t.inRatePerSecond)), ("out_per_sec", .double(t.outRatePerSecond)),
                    ("late_per_sec", .double(t.lateRatePerSecond)), ("state_bytes", .int(t.stateBytes)),
                    ("last_error", t.lastError.map { .string($0) } ?? .null),
                ])
            })),
        ]).render()
    }

    /// Records per second with one decimal; small rates show as `0.0`, not in exponent notation.
    static func rate(_ value: Double) -> String { NumberText.fixed(value, decimals: 1) }

    /// A table cell must not break the table: newlines and tabs become spaces.
    static func oneLine(_ text: String) -> String {
        String(text.map { $0.isNewline || $0 == "\t" ? " " : $0 })
    }

    /// `2026-11-29T10:00:00.000Z`: epoch milliseconds as ISO-8601 in UTC, always with milliseconds so a
    /// column of them lines up. Times before 1970 work too (floor division).
    static func isoUTC(_ ms: Int64) -> String {
        let msPerDay: Int64 = 86_400_000
        let (days, msOfDay) = (ms.floorDiv(msPerDay), ms.floorMod(msPerDay))
        let (year, month, day) = CivilCalendar.civilFromDays(days)
        let seconds = msOfDay / 1_000
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(seconds / 3_600, 2)):\(pad(seconds / 60 % 60, 2)):"
            + "\(pad(seconds % 60, 2)).\(pad(msOfDay % 1_000, 3))Z"
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value.magnitude)
        return (value < 0 ? "-" : "") + String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}

extension Int64 {
    /// Division rounding toward negative infinity. Callers divide by positive constants.
    fileprivate func floorDiv(_ divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }

    /// The remainder that goes with `floorDiv`: in `0..<divisor` for a positive divisor. Computed from
    /// `%`, not as `self − floorDiv × divisor`, which overflows near `Int64.min`.
    fileprivate func floorMod(_ divisor: Int64) -> Int64 {
        let remainder = self % divisor
        return remainder < 0 ? remainder + divisor : remainder
    }
}
