import SluiceCore
import ArgumentParser
import Foundation
import SluiceClient
import SluiceTestSupport
import SluiceWire
import Testing

@testable import SluiceCLI

/// `sluice processor …`: argument parsing (through the real root command, as `sluice` runs it) and the pure
/// formatting functions of `ProcessorFormat`. Nothing here talks to a broker.
@Suite("processor commands")
struct ProcessorCommandsTests {
    /// Parses `arguments` (after `sluice`) as the executable does, moving leading `-b` after the subcommand.
    static func parse(_ arguments: [String]) throws -> any ParsableCommand {
        try SluiceCommand.parseAsRoot(SluiceCommand.movingConnectionOptions(arguments))
    }

    /// The message ArgumentParser would print for the failure of parsing `arguments`; nil when it parses.
    static func failure(_ arguments: [String]) -> String? {
        do {
            _ = try parse(arguments)
            return nil
        } catch {
            return SluiceCommand.message(for: error)
        }
    }

    static let sql = "INSERT INTO out SELECT user FROM clicks"

    // MARK: Parsing

    @Test("create: name, --sql, default start earliest, --from, --validate-only, connection options")
    func createParses() throws {
        let plain = try #require(try Self.parse(["processor", "create", "p", "--sql", Self.sql]) as? ProcessorCommand.Create)
        #expect(plain.name == "p" && plain.query.sql == Self.sql && plain.query.file == nil)
        #expect(plain.from == "earliest" && !plain.validateOnly)
        #expect(try plain.query.load() == Self.sql)

        let full = try #require(try Self.parse(["-b", "h:1", "processor", "create", "p", "--file", "/q.sql", "--from", "@1795946400000",
                                                "--validate-only"]) as? ProcessorCommand.Create)
        #expect(full.query.file == "/q.sql" && full.query.sql == nil && full.validateOnly)
        #expect(try ProcessorFormat.startPosition(parsing: full.from) == .timestamp(1_795_946_400_000))
        #expect(full.connection.brokers == "h:1")
    }

    @Test("a query starting with a SQL comment (--) is taken as the value of --sql")
    func sqlMayStartWithDashes() throws {
        let query = "-- clicks per user\n" + Self.sql
        let create = try #require(try Self.parse(["processor", "create", "p", "--sql", query]) as? ProcessorCommand.Create)
        #expect(create.query.sql == query)
        let replace = try #require(try Self.parse(["processor", "replace", "p", "--sql", "--x\n" + Self.sql]) as? ProcessorCommand.Replace)
        #expect(replace.query.sql == "--x\n" + Self.sql)
    }

    @Test("--sql and --file: exactly one, with a sentence saying so")
    func queryFlagsAreExclusive() {
        for command in ["create", "replace"] {
            let both = Self.failure(["processor", command, "p", "--sql", Self.sql, "--file", "q.sql"])
            #expect(both?.contains("--sql or with --file, not both") == true, "\(command): \(both ?? "parsed")")
            let neither = Self.failure(["processor", command, "p"])
            #expect(neither?.contains("--sql TEXT or --file PATH") == true, "\(command): \(neither ?? "parsed")")
        }
    }

    @Test("--from and --to take earliest, latest or @TIMESTAMP; offsets, -N and nonsense are refused")
    func startPositionsAreChecked() throws {
        for bad in ["1234", "-5", "soon", "", "@2026-13-01"] {
            let create = Self.failure(["processor", "create", "p", "--sql", Self.sql, "--from", bad])
            #expect(create?.contains("--from") == true && create?.contains("earliest") == true, "\(bad): \(create ?? "parsed")")
            let reset = Self.failure(["processor", "reset", "p", "--to", bad])
            #expect(reset?.contains("--to") == true && reset?.contains("@EPOCH_MS") == true, "\(bad): \(reset ?? "parsed")")
        }
        #expect(Self.failure(["processor", "create", "p", "--sql", Self.sql, "--from", "-5"])?.contains("every partition") == true)
        #expect(Self.failure(["processor", "reset", "p"]) != nil, "--to is required")
        let reset = try #require(try Self.parse(["processor", "reset", "p", "--to", "latest"]) as? ProcessorCommand.Reset)
        #expect(reset.name == "p" && reset.to == "latest")
    }

    @Test("create refuses a name the broker would refuse, before connecting")
    func createChecksTheName() {
        for bad in ["a/b", "", String(repeating: "x", count: 101)] {
            #expect(Self.failure(["processor", "create", bad, "--sql", Self.sql]) != nil, "\(bad)")
        }
        #expect(Self.failure(["processor", "create", "a/b", "--sql", Self.sql])?.contains("ASCII letters") == true)
    }

    @Test("list, describe, pause, resume, delete and replace parse their arguments")
    func otherSubcommandsParse() throws {
        #expect(try #require(try Self.parse(["processor", "list", "--json"]) as? ProcessorCommand.List).json)
        #expect(!(try #require(try Self.parse(["processor", "list"]) as? ProcessorCommand.List).json))
        let describe = try #require(try Self.parse(["processor", "describe", "p", "--json"]) as? ProcessorCommand.Describe)
        #expect(describe.name == "p" && describe.json)
        #expect(try #require(try Self.parse(["processor", "pause", "p"]) as? ProcessorCommand.Pause).name == "p")
        #expect(try #require(try Self.parse(["processor", "resume", "p"]) as? ProcessorCommand.Resume).name == "p")
        let keep = try #require(try Self.parse(["processor", "delete", "p"]) as? ProcessorCommand.Delete)
        #expect(keep.name == "p" && !keep.deleteOutput)
        #expect(try #require(try Self.parse(["processor", "delete", "p", "--delete-output"]) as? ProcessorCommand.Delete).deleteOutput)
        let replace = try #require(try Self.parse(["processor", "replace", "p", "--file", "-"]) as? ProcessorCommand.Replace)
        #expect(replace.name == "p" && replace.query.file == "-")
        for missingName in [["processor", "describe"], ["processor", "pause"], ["processor", "delete"]] {
            #expect(Self.failure(missingName) != nil, "\(missingName)")
        }
    }

    // MARK: Input

    @Test("start positions in every spelling")
    func startPositionSpellings() throws {
        #expect(try ProcessorFormat.startPosition(parsing: "earliest") == .earliest)
        #expect(try ProcessorFormat.startPosition(parsing: "beginning") == .earliest)
        #expect(try ProcessorFormat.startPosition(parsing: "LATEST") == .latest)
        #expect(try ProcessorFormat.startPosition(parsing: "end") == .latest)
        #expect(try ProcessorFormat.startPosition(parsing: "@0") == .timestamp(0))
        #expect(try ProcessorFormat.startPosition(parsing: "@2026-11-29T11:00:00+01:00") == .timestamp(1_795_946_400_000))
        for position: ProcessorStartPosition in [.earliest, .latest, .timestamp(1_795_946_400_000)] {
            #expect(try ProcessorFormat.startPosition(parsing: position.description) == position)
        }
        #expect(throws: CLIFailure.self) { try ProcessorFormat.startPosition(parsing: "@99999999999999999999") }
    }

    @Test("a query that is empty or longer than the protocol carries is refused with a sentence")
    func queryProblems() {
        #expect(ProcessorFormat.queryProblem(" \n\t") == "the query is empty")
        #expect(ProcessorFormat.queryProblem(Self.sql) == nil)
        let long = String(repeating: "x", count: ProcessorLimits.sqlBytesMax + 1)
        #expect(ProcessorFormat.queryProblem(long) == "the query is 65537 bytes long; the limit is 65536")
        #expect(ProcessorFormat.queryProblem(String(repeating: "x", count: ProcessorLimits.sqlBytesMax)) == nil)
    }

    @Test("query files: read whole, refused when missing, too long or not UTF-8")
    func queryFiles() throws {
        let dir = TemporaryDirectory("sluice-processor-cli")
        defer { dir.remove() }
        let good = dir.path + "/q.sql"
        try Data(("-- comment\n" + Self.sql + "\n").utf8).write(to: URL(fileURLWithPath: good))
        #expect(try ProcessorFormat.readQuery(path: good) == "-- comment\n" + Self.sql + "\n")

        let missing = (try? ProcessorFormat.readQuery(path: dir.path + "/nope.sql")).map { _ in "read" }
            ?? Self.describe { try ProcessorFormat.readQuery(path: dir.path + "/nope.sql") }
        #expect(missing.contains("nope.sql") && missing.contains("No such file"), "\(missing)")

        let long = dir.path + "/long.sql"
        try Data(repeating: 0x78, count: ProcessorLimits.sqlBytesMax + 200_000).write(to: URL(fileURLWithPath: long))
        #expect(Self.describe { try ProcessorFormat.readQuery(path: long) }.contains("longer than the limit of 65536 bytes"))
        let exact = dir.path + "/exact.sql"
        try Data(repeating: 0x78, count: ProcessorLimits.sqlBytesMax).write(to: URL(fileURLWithPath: exact))
        #expect(try ProcessorFormat.readQuery(path: exact).utf8.count == ProcessorLimits.sqlBytesMax)

        let binary = dir.path + "/binary.sql"
        try Data([0x61, 0xC3, 0x28]).write(to: URL(fileURLWithPath: binary))
        #expect(Self.describe { try ProcessorFormat.readQuery(path: binary) }.contains("not UTF-8"))
        #expect(Self.describe { try ProcessorFormat.readQuery(path: dir.path) }.contains("cannot read"), "a directory")
    }

    /// The description of what `body` throws ("no error" when it does not).
    static func describe(_ body: () throws -> Any) -> String {
        do {
            _ = try body()
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test("the client refuses a query longer than the protocol carries before connecting")
    func clientChecksBeforeSending() async {
        // Port 1 never answers: reaching the network would fail with `unreachable`, not `invalidArgument`.
        let client = SluiceClient(brokers: [BrokerAddress(host: "127.0.0.1", port: 1)])
        let long = String(repeating: "x", count: ProcessorLimits.sqlBytesMax + 1)
        for call in [{ try await client.createProcessor(name: "p", sql: long) }, { try await client.replaceProcessor("p", sql: long) },
                     { try await client.resetProcessor("p", to: .timestamp(-1)) },
                     { try await client.deleteProcessor(String(repeating: "x", count: 40_000)) }] {
            do {
                try await call()
                Issue.record("no error")
            } catch let error as SluiceClientError {
                #expect(error.kind == .invalidArgument, "\(error)")
            } catch {
                Issue.record("\(error)")
            }
        }
        await client.close()
    }

    // MARK: Query errors

    @Test("an invalid_query message points at its line and column with a caret")
    func queryErrorCaret() {
        let sql = "INSERT INTO out\nSELECT user, COUNT(*) FORM clicks\nGROUP BY user"
        #expect(ProcessorFormat.queryError("line 2, column 22: expected FROM, found 'FORM' (did you mean FROM?)", sql: sql) == """
            the query is invalid: line 2, column 22: expected FROM, found 'FORM' (did you mean FROM?)
              2 | SELECT user, COUNT(*) FORM clicks
                |                      ^
            """)
        // Columns count Unicode scalars; tabs stay tabs; CRLF line ends are not shown.
        #expect(ProcessorFormat.queryError("line 1, column 4: x", sql: "\té€ z\r\nnext").hasSuffix("  1 | \té€ z\n    | \t  ^"))
        // The end of a line (column = length + 1) is a place too.
        #expect(ProcessorFormat.queryError("line 1, column 4: end", sql: "abc").hasSuffix("| abc\n    |    ^"))
        // Line 10 gets a wider gutter.
        let tenLines = Array(repeating: "x", count: 10).joined(separator: "\n")
        #expect(ProcessorFormat.queryError("line 10, column 1: y", sql: tenLines).hasSuffix("  10 | x\n     | ^"))
    }

    @Test("without a usable position the message is shown alone")
    func queryErrorWithoutPosition() {
        let sql = "SELECT 1"
        for message in ["source topic 'x' does not exist", "line 5, column 1: past the end", "line 1, column 99: past the line",
                        "line 0, column 1: zero", "line x, column 1: bad", "line 1 column 1: no comma", ""] {
            #expect(ProcessorFormat.queryError(message, sql: sql) == "the query is invalid: \(message)", "\(message)")
        }
        #expect(ProcessorFormat.position(in: "line 12, column 345: m") ?? (0, 0) == (12, 345))
        #expect(ProcessorFormat.position(in: "line 1, column : m") == nil)
    }

    // MARK: Times

    @Test("ISO-8601 UTC with milliseconds, before and after 1970")
    func isoTimes() {
        #expect(ProcessorFormat.isoUTC(0) == "1970-01-01T00:00:00.000Z")
        #expect(ProcessorFormat.isoUTC(1_795_946_400_000) == "2026-11-29T10:00:00.000Z")
        #expect(ProcessorFormat.isoUTC(1_709_251_199_123) == "2024-02-29T23:59:59.123Z")
        #expect(ProcessorFormat.isoUTC(-1) == "1969-12-31T23:59:59.999Z")
        #expect(ProcessorFormat.isoUTC(951_868_800_000) == "2000-03-01T00:00:00.000Z")
        // Extremes from a confused broker print something, never trap.
        #expect(ProcessorFormat.isoUTC(Int64.max).hasSuffix(".807Z"))
        #expect(ProcessorFormat.isoUTC(Int64.min).hasSuffix("Z"))
    }

    @Test("isoUTC is the inverse of the CLI's ISO-8601 parser, over random times")
    func isoRoundTrips() throws {
        var rng = SeededRandom.fromEnvironment()
        for _ in 0..<2_000 {
            let ms = Int64.random(in: 0...253_402_300_799_999, using: &rng)  // up to 9999-12-31
            let text = ProcessorFormat.isoUTC(ms)
            #expect(try ISO8601Millis.parse(ArraySlice(text.utf8)) == ms, "\(ms) → \(text), seed \(rng.seed)")
        }
    }

    @Test("civilFromDays inverts daysFromCivil, 1900 to 2100")
    func civilDates() {
        for days in Int64(-25_567)...Int64(47_482) {
            let (year, month, day) = CivilCalendar.civilFromDays(days)
            #expect(CivilCalendar.daysFromCivil(year: year, month: month, day: day) == days)
            if CivilCalendar.daysFromCivil(year: year, month: month, day: day) != days { return }
        }
    }

    // MARK: Output

    static let description = DescribeProcessorResponse(
        name: "clicks_per_user", sql: "INSERT INTO clicks_per_user\nSELECT user, COUNT(*) AS clicks\nFROM clicks\nGROUP BY user",
        state: "failed", lastError: "partition 1: state limit reached", createdMs: 1_795_946_400_000,
        source: "clicks", sink: "clicks_per_user", tasks: [
            .init(partition: 0, inputOffset: 1_000, inputEndOffset: 1_250, watermarkMs: 1_795_946_409_999, recordsIn: 1_000,
                  recordsOut: 40, recordsLate: 3, recordsInvalid: 1, inRatePerSecond: 1234.56, outRatePerSecond: 0.04,
                  lateRatePerSecond: 0, stateBytes: 1_572_864, state: "running"),
            .init(partition: 1, inputOffset: 7, inputEndOffset: 5, state: "failed", lastError: "state limit\nreached"),
        ])

    @Test("list: a table with source → sink, a hint when empty, and JSON")
    func listOutput() {
        let processors: [ListProcessorsResponse.Processor] = [
            .init(name: "a", state: "running", source: "clicks", sink: "per_user"),
            .init(name: "longer_name", state: "paused", source: "s", sink: "t"),
        ]
        #expect(ProcessorFormat.listText(processors) == """
            PROCESSOR    STATE    SOURCE → SINK
            a            running  clicks → per_user
            longer_name  paused   s → t
            """)
        #expect(ProcessorFormat.listText([]).hasPrefix("no processors; create one with: sluice processor create"))
        #expect(ProcessorFormat.listJSON(processors)
                == #"[{"name":"a","state":"running","source":"clicks","sink":"per_user"},{"name":"longer_name","state":"paused","source":"s","sink":"t"}]"#)
        #expect(ProcessorFormat.listJSON([]) == "[]")
    }

    @Test("describe: header with totals, the query indented, one row per partition")
    func describeText() {
        let text = ProcessorFormat.describeText(Self.description)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[0] == "processor clicks_per_user: failed, clicks → clicks_per_user, created 2026-11-29T10:00:00.000Z")
        #expect(lines[1] == "records: 1,000 in, 40 out, 3 late, 1 invalid; lag 250; state 1.5 MiB")
        #expect(lines[2] == "last error: partition 1: state limit reached")
        #expect(lines[4] == "    INSERT INTO clicks_per_user" && lines[7] == "    GROUP BY user")
        #expect(lines[9].hasPrefix("PARTITION  TASK     OFFSET  END   LAG  WATERMARK                 IN/S    OUT/S  LATE/S  STATE SIZE  ERROR"))
        #expect(lines[10] == "0          running  1000    1250  250  2026-11-29T10:00:09.999Z  1234.6  0.0    0.0     1.5 MiB     -")
        // A position past the end shows lag 0; no watermark is "-"; a multi-line error stays on its row.
        #expect(lines[11] == "1          failed   7       5     0    -                         0.0     0.0    0.0     0 B         state limit reached")
        #expect(lines.count == 12)
    }

    @Test("describe without a last error or tasks says so")
    func describeQuiet() {
        var quiet = Self.description
        quiet.lastError = nil
        quiet.tasks = []
        quiet.state = "running"
        let text = ProcessorFormat.describeText(quiet)
        #expect(!text.contains("last error"))
        #expect(text.hasSuffix("no tasks: the source has no partitions or none is running yet"))
        #expect(text.contains("records: 0 in, 0 out, 0 late, 0 invalid; lag 0; state 0 B"))
    }

    @Test("describe --json carries every field, null for no watermark and no error")
    func describeJSON() throws {
        let json = ProcessorFormat.describeJSON(Self.description)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["name"] as? String == "clicks_per_user")
        #expect(object["state"] as? String == "failed")
        #expect(object["sql"] as? String == Self.description.sql)
        #expect(object["created_ms"] as? Int64 == 1_795_946_400_000)
        #expect(object["last_error"] as? String == "partition 1: state limit reached")
        let partitions = try #require(object["partitions"] as? [[String: Any]])
        #expect(partitions.count == 2)
        #expect(partitions[0]["lag"] as? Int == 250)
        #expect(partitions[0]["watermark_ms"] as? Int64 == 1_795_946_409_999)
        #expect(partitions[0]["in_per_sec"] as? Double == 1234.56)
        #expect(partitions[0]["state_bytes"] as? Int == 1_572_864)
        #expect(partitions[0]["last_error"] is NSNull)
        #expect(partitions[1]["watermark_ms"] is NSNull)
        #expect(partitions[1]["lag"] as? Int == 0)
        #expect(partitions[1]["last_error"] as? String == "state limit\nreached")
        for key in ["partition", "state", "input_offset", "end_offset", "records_in", "records_out", "records_late", "records_invalid",
                    "out_per_sec", "late_per_sec"] {
            #expect(partitions[0][key] != nil, "\(key)")
        }
    }

    @Test("rates keep one decimal and never use exponents")
    func rates() {
        #expect(ProcessorFormat.rate(0) == "0.0")
        #expect(ProcessorFormat.rate(1e-9) == "0.0")
        #expect(ProcessorFormat.rate(12_345.67) == "12345.7")
    }
}
