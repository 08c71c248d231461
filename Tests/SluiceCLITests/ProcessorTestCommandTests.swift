import ArgumentParser
import Foundation
import SluiceTestSupport
import Testing

@testable import SluiceCLI

/// `sluice processor test`: its argument parsing, and its pure core `ProcessorTest.run` fed lines directly.
@Suite("processor test command")
struct ProcessorTestCommandTests {
    static func lines(_ text: String) -> [[UInt8]] { ProcessorTest.splitLines(Array(text.utf8)) }

    static func run(_ sql: String, _ input: String, envelope: Bool = false, format: String = "%s\\n", json: Bool = false)
        throws(CLIFailure) -> ProcessorTest.Outcome
    {
        let parsed = try? RecordFormat(parsing: format)
        #expect(parsed != nil, "format \(format)")
        let options = ProcessorTest.Options(envelope: envelope, format: parsed ?? .default, json: json,
                                            nowMs: 1_000_000)
        return try ProcessorTest.run(sql: sql, lines: lines(input), options: options)
    }

    static let perUser = architectureExampleQuery

    // MARK: Parsing

    @Test("parses --sql/--file, --input, --envelope, -f and --json; refuses two stdins and a bad format")
    func parsing() throws {
        let parsed = try SluiceCommand.parseAsRoot(["processor", "test", "--sql", "INSERT INTO o SELECT * FROM i", "--input", "e.jsonl"])
        let command = try #require(parsed as? ProcessorTestCommand)
        #expect(command.input == "e.jsonl" && !command.envelope && !command.json && command.format == "%s\\n")
        let full = try #require(try SluiceCommand.parseAsRoot(["processor", "test", "--file", "q.sql", "--input", "-", "--envelope",
                                                               "-f", "%k=%s\\n", "--json"]) as? ProcessorTestCommand)
        #expect(full.query.file == "q.sql" && full.input == "-" && full.envelope && full.json && full.format == "%k=%s\\n")

        for (arguments, fragment) in [
            (["processor", "test", "--sql", "x"], "--input"),
            (["processor", "test", "--input", "e"], "--sql TEXT or --file PATH"),
            (["processor", "test", "--file", "-", "--input", "-"], "both come from standard input"),
            (["processor", "test", "--sql", "x", "--input", "e", "-f", "%q"], "unknown token %q"),
        ] {
            do {
                _ = try SluiceCommand.parseAsRoot(arguments)
                Issue.record("\(arguments) parsed")
            } catch {
                let message = SluiceCommand.message(for: error)
                #expect(message.contains(fragment), "\(arguments): \(message)")
            }
        }
    }

    // MARK: Running

    @Test("the architecture query: FINAL results per user and 10 s window, every window closed by the end of input")
    func clicksPerUser() throws {
        let input = """
            {"user":"u1","action":"click","amount":5,"ts":1000}
            {"user":"u2","action":"click","amount":7,"ts":2000}
            {"user":"u1","action":"view","amount":100,"ts":3000}
            {"user":"u1","action":"click","amount":1,"ts":9999}
            {"user":"u1","action":"click","amount":2,"ts":10000}
            """
        let outcome = try Self.run(Self.perUser, input, format: "%k\\t%s\\t%T\\n")
        #expect(outcome.stdoutLines == [
            "u1\t{\"user\":\"u1\",\"clicks\":2,\"total\":6,\"window_start\":0,\"window_end\":10000}\t9999",
            "u2\t{\"user\":\"u2\",\"clicks\":1,\"total\":7,\"window_start\":0,\"window_end\":10000}\t9999",
            "u1\t{\"user\":\"u1\",\"clicks\":1,\"total\":2,\"window_start\":10000,\"window_end\":20000}\t19999",
        ], "\(outcome.stdoutLines)")
        #expect(outcome.results == 3 && outcome.badLines == 0 && outcome.failure == nil)
        #expect(outcome.statistics.recordsIn == 5)
        #expect(outcome.stderrLines.last?.hasPrefix("5 records in, 3 results out, 0 late, 0 invalid") == true, "\(outcome.stderrLines)")
    }

    @Test("plain lines: any bytes are a value; non-JSON values are invalid for a query that reads fields")
    func plainLines() throws {
        let outcome = try Self.run("INSERT INTO o SELECT user, _offset AS line FROM i WHERE n > 1",
                                   "{\"user\":\"a\",\"n\":2}\nnot json\r\n\n{\"user\":\"b\",\"n\":1}\n{\"user\":\"c\",\"n\":5}")
        #expect(outcome.stdoutLines == [#"{"user":"a","line":0}"#, #"{"user":"c","line":4}"#], "\(outcome.stdoutLines)")
        // "not json" and the empty line are records the engine cannot read: invalid, not bad lines.
        #expect(outcome.badLines == 0 && outcome.statistics.recordsInvalid == 2 && outcome.statistics.recordsIn == 5)

        let star = try Self.run("INSERT INTO o SELECT * FROM i", "raw bytes\n{\"x\":1}\n")
        #expect(star.stdoutLines == ["raw bytes", #"{"x":1}"#])
    }

    @Test("a misspelt column: the binder's did-you-mean, with the query line and a caret under it")
    func typoInColumn() {
        let sql = "INSERT INTO o\nSELECT usr, COUNT(*) AS n FROM i GROUP BY usr, TUMBLE(ts, INTERVAL '1' SECOND)"
        do {
            _ = try Self.run(sql, #"{"user":"u","ts":1}"#)
            Issue.record("a misspelt column was accepted")
        } catch {
            let text = error.description
            // GROUP BY binds before SELECT, so the error is at the key.
            #expect(text.hasPrefix("the query is invalid: line 2, column 43: unknown column 'usr'"), "\(text)")
            #expect(text.contains("did you mean 'user'"), "\(text)")
            #expect(text.hasSuffix("\n  2 | SELECT usr, COUNT(*) AS n FROM i GROUP BY usr, TUMBLE(ts, INTERVAL '1' SECOND)\n    |"
                + String(repeating: " ", count: 43) + "^"), "\(text)")
        }
        // Without object records to learn columns from, any column binds (a missing field reads as NULL).
        #expect((try? Self.run("INSERT INTO o SELECT usr FROM i", "plain text")) != nil)
    }

    @Test("a query that does not parse fails the same way")
    func syntaxError() {
        do {
            _ = try Self.run("INSERT INTO o SELEC x FROM i", "")
            Issue.record("accepted")
        } catch {
            #expect(error.description.hasPrefix("the query is invalid: line 1, column 15:"), "\(error)")
            #expect(error.description.contains("^"), "\(error)")
        }
    }

    @Test("envelope: key, raw string value, JSON value re-serialized, timestamps, partitions and tombstones")
    func envelope() throws {
        let input = """
            {"key":"k1","value":{"a": 1, "b":[1, 2]},"timestamp":5,"partition":1}

            {"value":"plain text","timestamp":"1970-01-01T00:00:01Z"}
            {"key":null,"value":null,"timestamp":7}
            {"key":"k4","value":42}
            """
        let outcome = try Self.run("INSERT INTO o SELECT * FROM i", input, envelope: true, format: "%k|%s|%T|%S\\n")
        #expect(outcome.stdoutLines == [#"k1|{"a":1,"b":[1,2]}|5|17"#, "|plain text|1000|10", "||7|0", "k4|42|0|2"],
                "\(outcome.stdoutLines)")
        #expect(outcome.badLines == 0)

        let fields = try Self.run("INSERT INTO o SELECT _key AS k, _partition AS p, _offset AS o, _timestamp AS t, a FROM i",
                                  input, envelope: true)
        #expect(fields.stdoutLines.first == #"{"k":"k1","p":1,"o":0,"t":5,"a":1}"#, "\(fields.stdoutLines)")
        // The query reads a field, so the plain-text value is invalid; the tombstone reads as all NULL.
        #expect(fields.stdoutLines.count == 3 && fields.statistics.recordsInvalid == 1, "\(fields.stdoutLines)")
    }

    @Test("envelope: bad lines are named (up to a limit), counted and skipped; the run goes on")
    func badEnvelopeLines() throws {
        var input = [
            #"{"value":{"n":1}}"#,
            #"not json"#,
            #"[1,2]"#,
            #"{"key":3,"value":"x"}"#,
            #"{"timestmap":5,"value":"x"}"#,
            #"{"timestamp":"yesterday"}"#,
            #"{"partition":-1}"#,
            #"{"partition":99999}"#,
            #"{"timestamp":1.5}"#,
        ]
        input += Array(repeating: "nope", count: 5)
        let outcome = try Self.run("INSERT INTO o SELECT n FROM i", input.joined(separator: "\n"), envelope: true)
        #expect(outcome.stdoutLines == [#"{"n":1}"#])
        #expect(outcome.badLines == 13)
        let notes = outcome.stderrLines
        #expect(notes.filter { $0.contains(": skipped: ") }.count == ProcessorTestLimits.badLinesReportedMax, "\(notes)")
        for fragment in ["line 2: skipped: not a JSON envelope", "line 3: skipped: an envelope is a JSON object", "found an array",
                         #"line 4: skipped: "key" must be a string or null, found a number"#,
                         #"line 5: skipped: unknown envelope member "timestmap""#, #"line 6: skipped: "timestamp" "yesterday""#,
                         #"line 7: skipped: "partition" must be an integer in 0...1023"#, "line 8: skipped:",
                         #"line 9: skipped: "timestamp" must be epoch milliseconds"#] {
            #expect(notes.contains { $0.contains(fragment) }, "no '\(fragment)' in \(notes)")
        }
        #expect(notes.last?.contains("13 bad input lines skipped (the first 10 are named above)") == true, "\(notes)")
    }

    @Test("a line over the limit is a bad line, not a failure")
    func longLine() throws {
        let long = String(repeating: "x", count: ProcessorTestLimits.lineBytesMax + 1)
        let outcome = try Self.run("INSERT INTO o SELECT * FROM i", "a\n\(long)\nb\n")
        #expect(outcome.stdoutLines == ["a", "b"])
        #expect(outcome.badLines == 1)
        #expect(outcome.stderrLines.first?.hasPrefix("line 2: skipped: 1,048,577 bytes, longer than the limit") == true,
                "\(outcome.stderrLines)")
    }

    @Test("late records go to stderr behind 'late: ', whether or not the query names a late_records topic")
    func lateRecords() throws {
        let input = """
            {"user":"a","action":"click","amount":1,"ts":25000}
            {"user":"b","action":"click","amount":2,"ts":3000}
            {"user":"a","action":"click","amount":3,"ts":26000}
            """
        let outcome = try Self.run(Self.perUser, input, format: "%k|%s\\n")
        #expect(outcome.stdoutLines == [#"a|{"user":"a","clicks":2,"total":4,"window_start":20000,"window_end":30000}"#],
                "\(outcome.stdoutLines)")
        #expect(outcome.stderrLines.first == #"late: |{"user":"b","action":"click","amount":2,"ts":3000}"#, "\(outcome.stderrLines)")
        #expect(outcome.statistics.recordsLate == 1)
        #expect(outcome.stderrLines.last?.contains("1 late") == true)

        let named = try Self.run(Self.perUser.replacingOccurrences(of: "EMIT FINAL", with: "EMIT FINAL WITH (late_records = 'late')"),
                                 input, format: "%t:%o:%s\\n")
        #expect(named.stderrLines.first == #"late: late:0:{"user":"b","action":"click","amount":2,"ts":3000}"#, "\(named.stderrLines)")
        #expect(named.stdoutLines.first?.hasPrefix("clicks_per_user:0:") == true)
    }

    @Test("--json prints each result as sluice consume --json does")
    func jsonOutput() throws {
        let outcome = try Self.run("INSERT INTO o SELECT x FROM i", #"{"x":1}"#, json: true)
        #expect(outcome.stdoutLines == [#"{"topic":"o","partition":0,"offset":0,"timestamp":0,"key":null,"value":"{\"x\":1}","headers":{}}"#],
                "\(outcome.stdoutLines)")
    }

    @Test("word count over UNNEST: counts per word and window; EMIT CHANGES results need no finish")
    func wordCount() throws {
        let input = """
            {"line":"a b a"}
            {"line":"b c"}
            """
        let final = try Self.run("INSERT INTO counts SELECT w AS word, COUNT(*) AS n FROM lines, UNNEST(SPLIT(line, ' ')) AS w "
                                 + "GROUP BY w, TUMBLE(_timestamp, INTERVAL '1' MINUTE) EMIT FINAL", input, format: "%k=%s\\n")
        #expect(final.stdoutLines == [
            #"a={"word":"a","n":2,"window_start":0,"window_end":60000}"#,
            #"b={"word":"b","n":2,"window_start":0,"window_end":60000}"#,
            #"c={"word":"c","n":1,"window_start":0,"window_end":60000}"#,
        ], "\(final.stdoutLines)")
        let stateless = try Self.run("INSERT INTO words SELECT w AS word FROM lines, UNNEST(SPLIT(line, ' ')) AS w", input)
        #expect(stateless.stdoutLines == ["a", "b", "a", "b", "c"].map { #"{"word":"\#($0)"}"# })
    }

    @Test("several partitions: one task whose watermark is the least of them")
    func partitions() throws {
        let input = """
            {"partition":0,"value":{"user":"a","action":"click","amount":1,"ts":1000}}
            {"partition":1,"value":{"user":"b","action":"click","amount":1,"ts":50000}}
            {"partition":0,"value":{"user":"a","action":"click","amount":1,"ts":2000}}
            """
        let outcome = try Self.run(Self.perUser, input, envelope: true, format: "%k %s\\n")
        // Partition 0 holds the watermark back, so user a's second click is not late.
        #expect(outcome.statistics.recordsLate == 0)
        #expect(outcome.stdoutLines.count == 2 && outcome.stdoutLines[0].hasPrefix(#"a {"user":"a","clicks":2"#), "\(outcome.stdoutLines)")
    }

    @Test("input lines are split like sluice produce splits them")
    func splitting() {
        #expect(ProcessorTest.splitLines(Array("a\r\nb\n\nc".utf8)) == [Array("a".utf8), Array("b".utf8), [], Array("c".utf8)])
        #expect(ProcessorTest.splitLines(Array("a\n".utf8)) == [Array("a".utf8)])
        #expect(ProcessorTest.splitLines([]) == [])
    }

    @Test("reading the input file: a missing file is a sentence")
    func readingInput() throws {
        let dir = TemporaryDirectory("sluice-processor-test")
        defer { dir.remove() }
        let path = dir.child("e.jsonl")
        #expect(writeFileBytes(path, Array("x\ny\n".utf8)))
        #expect(try ProcessorTest.readLines(path: path) == [Array("x".utf8), Array("y".utf8)])
        do {
            _ = try ProcessorTest.readLines(path: dir.child("missing"))
            Issue.record("read a missing file")
        } catch {
            #expect(error.description.contains("cannot read the input") && error.description.contains("No such file"), "\(error)")
        }
    }
}
