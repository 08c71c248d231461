// Processors against the real binaries: the architecture's clicks-per-user query from `processor create`
// to the sink, checked against a naive oracle and against `sluice processor test`; exactly-once output
// across SIGKILLs at seeded moments; the admin lifecycle (pause, resume, reset, replace, delete, errors);
// word count over UNNEST; and processors carrying on across a clean restart.
//
// Waiting for results is for conditions, never for a fixed time: `consume -n N` blocks until the sink holds
// N results, then `processor describe --json` is polled until every task has caught up with its source
// (lag 0), and only then is the whole sink read — so a duplicate written after the N-th result is still
// seen. (The only sleeps are the seeded delays that choose a moment for a SIGKILL.)
//
// Event time is a JSON field (`ts`), not the record timestamp: `sluice produce` stamps records with the
// clock, and the tests need a last event far in the future to move the watermark past every window.

import Foundation
import SluiceTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension EndToEnd {
    @Suite("processors")
    struct ProcessorTests {
        /// The query of ARCHITECTURE.md, "Processors".
        static let clicksQuery = architectureExampleQuery

        // MARK: 1. Done when

        @Test("processors, done when: clicks per user and 10 s window, as the oracle and `processor test` compute them",
              .timeLimit(.minutes(10)))
        func clicksPerUser() throws {
            guard executablesPresent() else { return }
            var rng = SeededRandom.fromEnvironment()
            let events = ClickEvents.generate(&rng, count: rng.int(300...1500), users: rng.int(2...8))
            let input = events + [ClickEvents.farFuture(after: events)]
            let expected = ClickEvents.expected(events)
            let context = "\(events.count) events, \(expected.count) windows, seed \(rng.seed)"
            let dir = TemporaryDirectory("sluice-e2e-proc-done")
            defer { dir.remove() }
            let queryFile = dir.child("q.sql")
            let eventsFile = dir.child("events.jsonl")
            #expect(writeFileBytes(queryFile, Array(Self.clicksQuery.utf8)) && writeFileBytes(eventsFile, ClickEvents.file(input)))

            let brokers = BrokerSlot(dataDir: dir.child("data"))
            defer { brokers.release() }
            guard let broker = try brokers.start() else { return }
            broker.sluiceOK(["topic", "create", "clicks"], context)
            let created = broker.sluiceOK(["processor", "create", "clicks_per_user", "--file", queryFile], context)
            #expect(created.stdout.contains("created processor clicks_per_user"), "\(created) \(context)")
            guard broker.sluiceOK(["produce", "clicks", "--file", eventsFile, "--acks", "all"], context).succeeded else { return }

            let results = awaitSink(broker, processor: "clicks_per_user", sink: "clicks_per_user", count: expected.count, context)
            expectSameResults(results, expected, "sink vs oracle", context)

            // The local runner agrees with the broker and the oracle.
            let local = processorTest(queryFile: queryFile, input: eventsFile, context)
            expectSameResults(local.lines, expected, "processor test vs oracle", context)
            #expect(local.stderr.contains("\(Self.grouped(input.count)) records in, \(Self.grouped(expected.count)) results out, 0 late, 0 invalid"),
                    "processor test summary: \(local) \(context)")

            let described = broker.sluiceJSON(["processor", "describe", "clicks_per_user", "--json"], context)
            let tasks = JSONFields.partitions(described)
            #expect(tasks.count == 1 && JSONFields.int(tasks.first?["records_in"]) == Int64(input.count)
                    && JSONFields.int(tasks.first?["records_out"]) == Int64(expected.count)
                    && JSONFields.int(tasks.first?["records_late"]) == 0,
                    "describe after the run: \(String(describing: described)) \(context)")
            brokers.stop()
        }

        /// `1,479`: how the CLI's summaries print counts.
        static func grouped(_ n: Int) -> String {
            let digits = Array(String(n))
            return String(digits.enumerated().flatMap { index, digit in
                index > 0 && (digits.count - index) % 3 == 0 ? [",", digit] : [digit]
            })
        }

        // MARK: 2. SIGKILL, exactly once

        @Test("processors: every window result is in the sink exactly once across SIGKILLs at seeded moments",
              .timeLimit(.minutes(10)))
        func exactlyOnceAcrossKills() throws {
            guard executablesPresent() else { return }
            var rng = SeededRandom.fromEnvironment()
            let events = ClickEvents.generate(&rng, count: rng.int(600...1500), users: rng.int(2...6))
            let expected = ClickEvents.expected(events)
            let chunks = ClickEvents.split(events, into: rng.int(3...5), &rng)
            let seed = rng.seed
            let dir = TemporaryDirectory("sluice-e2e-proc-kill")
            defer { dir.remove() }
            let queryFile = dir.child("q.sql")
            #expect(writeFileBytes(queryFile, Array(Self.clicksQuery.utf8)))

            let brokers = BrokerSlot(dataDir: dir.child("data"))
            defer { brokers.release() }
            guard var broker = try brokers.start() else { return }
            broker.sluiceOK(["topic", "create", "clicks"], "seed \(seed)")
            broker.sluiceOK(["processor", "create", "clicks_per_user", "--file", queryFile], "seed \(seed)")
            // The same events keyed by user over three partitions, through a stateless processor: three tasks,
            // each numbering its own output, into a sink routed by key.
            broker.sluiceOK(["topic", "create", "clicks3", "-p", "3"], "seed \(seed)")
            broker.sluiceOK(["processor", "create", "views", "--sql", Self.viewsQuery], "seed \(seed)")
            // And the clicks query over them: grouping by a field over three partitions needs a repartition
            // stage (a broker without one refuses the query, saying so).
            let query3 = Self.clicksQuery.replacingOccurrences(of: "FROM clicks", with: "FROM clicks3")
                .replacingOccurrences(of: "INTO clicks_per_user", with: "INTO clicks_per_user3")
            let grouped3 = broker.sluice(["processor", "create", "clicks_per_user3", "--sql", query3])
            let repartitions = grouped3.succeeded
            #expect(repartitions || (grouped3.failedCleanly && grouped3.stderr.contains("repartition")), "\(grouped3) seed \(seed)")
            var sent: [ClickEvent] = []
            var moments: [String] = []
            for (index, chunk) in chunks.enumerated() {
                // The first chunk always ends in a kill; later ones may not.
                let moment = index == 0 ? rng.int(0...3) : rng.int(0...4)
                let context = "chunk \(index + 1)/\(chunks.count), moments so far \(moments), seed \(seed)"
                let file = dir.child("chunk-\(index).jsonl")
                #expect(writeFileBytes(file, ClickEvents.file(chunk)))
                let keyed = dir.child("keyed-\(index).txt")
                #expect(writeFileBytes(keyed, ClickEvents.keyedFile(chunk)))
                guard broker.sluiceOK(["produce", "clicks", "--file", file, "--acks", "all"], context).succeeded,
                      broker.sluiceOK(["produce", "clicks3", "--file", keyed, "-k", "|", "--acks", "all"], context).succeeded
                else { return }
                sent += chunk
                switch moment {
                case 0:
                    moments.append("kill right after produce")
                case 1:
                    let delayMs = rng.int(0...400)
                    moments.append("kill \(delayMs) ms after produce")
                    usleep(UInt32(delayMs) * 1000)
                case 2:
                    // Results of the windows this chunk closed are (at least partly) in the sink.
                    let closed = ClickEvents.expected(sent, closedBy: sent.last?.ts ?? 0).count
                    moments.append("kill once the sink holds \(closed) results")
                    _ = waitForCount(broker, sink: "clicks_per_user", count: closed, context)
                case 3:
                    // The restarted broker is killed again while its tasks replay from their checkpoints.
                    moments.append("kill right after produce, and again right after the restart")
                    brokers.crash()
                    guard let restarted = try brokers.start() else { return }
                    broker = restarted
                default:
                    moments.append("no kill")
                    continue
                }
                brokers.crash()
                guard let restarted = try brokers.start() else { return }
                broker = restarted
            }
            let context = "\(events.count) events in \(chunks.count) chunks, moments \(moments), \(expected.count) windows, seed \(seed)"
            let last = dir.child("last.jsonl")
            #expect(writeFileBytes(last, ClickEvents.file([ClickEvents.farFuture(after: events)])))
            guard broker.sluiceOK(["produce", "clicks", "--file", last, "--acks", "all"], context).succeeded else { return }
            // Every partition's watermark must pass the windows: each gets the far-future event.
            for partition in 0..<3 {
                broker.sluiceOK(["produce", "clicks3", "--file", last, "-p", "\(partition)", "--acks", "all"], context)
            }
            let results = awaitSink(broker, processor: "clicks_per_user", sink: "clicks_per_user", count: expected.count, context)
            expectSameResults(results, expected, "sink after SIGKILLs vs oracle", context)
            let views = events.filter { $0.action == "view" }.map { Self.viewResult($0, key: $0.user) }
            // The far-future event went to each partition without a key.
            let farViews = Array(repeating: Self.viewResult(ClickEvents.farFuture(after: events), key: ""), count: 3)
            expectSameResults(awaitSink(broker, processor: "views", sink: "views", count: views.count + 3, context), views + farViews,
                              "stateless views over 3 partitions after SIGKILLs", context)
            if repartitions {
                expectSameResults(awaitSink(broker, processor: "clicks_per_user3", sink: "clicks_per_user3", count: expected.count, context),
                                  expected, "repartitioned clicks over 3 partitions after SIGKILLs vs oracle", context)
            }
            brokers.stop()
        }

        static let viewsQuery = "INSERT INTO views SELECT user, amount, ts FROM clicks3 WHERE action = 'view'"

        /// A result of `viewsQuery` in `%k\t%s` form (a stateless result keeps the input's key).
        static func viewResult(_ event: ClickEvent, key: String) -> String {
            "\(key)\t{\"user\":\"\(event.user)\",\"amount\":\(event.amount),\"ts\":\(event.ts)}"
        }

        // MARK: 3. Lifecycle

        @Test("processors: pause, resume, reset, replace and delete show in list and describe and do what they say",
              .timeLimit(.minutes(10)))
        func lifecycle() throws {
            guard executablesPresent() else { return }
            var rng = SeededRandom.fromEnvironment()
            let batches = (0..<3).map { _ in ClickEvents.generate(&rng, count: rng.int(10...40), users: 4) }
            let context = "batches of \(batches.map(\.count)), seed \(rng.seed)"
            let dir = TemporaryDirectory("sluice-e2e-proc-admin")
            defer { dir.remove() }
            let brokers = BrokerSlot(dataDir: dir.child("data"))
            defer { brokers.release() }
            guard let broker = try brokers.start() else { return }
            broker.sluiceOK(["topic", "create", "src"], context)
            broker.sluiceOK(["produce", "src", "--acks", "all"], stdin: ClickEvents.file(batches[0]), context)

            // A misspelt column, caught against the fields of the records already in the source.
            let typo = "INSERT INTO typo_out SELECT usr, amount FROM src"
            let refused = broker.sluice(["processor", "create", "typo", "--sql", typo])
            #expect(refused.failedCleanly, "\(refused) \(context)")
            let column = typo.distance(from: typo.startIndex, to: typo.range(of: "usr")?.lowerBound ?? typo.startIndex) + 1
            #expect(refused.stderr.contains("line 1, column \(column): unknown column 'usr' (did you mean 'user'?)"), "\(refused) \(context)")
            #expect(refused.stderr.contains("  1 | \(typo)\n    | " + String(repeating: " ", count: column - 1) + "^"), "\(refused) \(context)")
            #expect(processorStates(broker, context)["typo"] == nil && !topicNames(broker, context).contains("typo_out"),
                    "a refused query left a processor or a sink behind (\(context))")

            let query = "INSERT INTO out SELECT user, amount FROM src"
            broker.sluiceOK(["processor", "create", "p", "--sql", query], context)
            let again = broker.sluice(["processor", "create", "p", "--sql", query])
            #expect(again.failedCleanly && again.stderr.contains("already exists"), "\(again) \(context)")
            let first = batches[0].map { Self.projected($0) }
            expectSameResults(awaitSink(broker, processor: "p", sink: "out", count: first.count, context), first, "before pause", context)
            #expect(processorStates(broker, context)["p"] == "running", "list: \(processorStates(broker, context)) \(context)")
            let list = broker.sluiceOK(["processor", "list"], context)
            #expect(list.stdout.contains("src → out"), "\(list) \(context)")

            // Paused: the state shows, the input waits (lag grows), the sink does not change.
            broker.sluiceOK(["processor", "pause", "p"], context)
            #expect(processorStates(broker, context)["p"] == "paused", "list after pause \(context)")
            broker.sluiceOK(["produce", "src", "--acks", "all"], stdin: ClickEvents.file(batches[1]), context)
            let paused = broker.sluiceJSON(["processor", "describe", "p", "--json"], context)
            #expect((paused as? [String: Any])?["state"] as? String == "paused", "describe while paused: \(String(describing: paused)) \(context)")
            let pausedTask = JSONFields.partitions(paused).first
            #expect(JSONFields.int(pausedTask?["input_offset"]) == Int64(batches[0].count)
                    && JSONFields.int(pausedTask?["lag"]) == Int64(batches[1].count),
                    "describe while paused: \(String(describing: paused)) \(context)")
            #expect(sinkLines(broker, "out", context).count == first.count, "the sink changed while paused (\(context))")

            broker.sluiceOK(["processor", "resume", "p"], context)
            #expect(processorStates(broker, context)["p"] == "running", "list after resume \(context)")
            let both = (batches[0] + batches[1]).map { Self.projected($0) }
            expectSameResults(awaitSink(broker, processor: "p", sink: "out", count: both.count, context), both, "after resume", context)

            // Reset to earliest: everything is processed again, so every result is there twice.
            broker.sluiceOK(["processor", "reset", "p", "--to", "earliest"], context)
            expectSameResults(awaitSink(broker, processor: "p", sink: "out", count: 2 * both.count, context), both + both,
                              "after reset --to earliest", context)

            // Replace: same sink, new query, carrying on from where the old one had got to.
            let wrongSink = broker.sluice(["processor", "replace", "p", "--sql", "INSERT INTO elsewhere SELECT user FROM src"])
            #expect(wrongSink.failedCleanly && wrongSink.stderr.contains("keeps the sink"), "\(wrongSink) \(context)")
            broker.sluiceOK(["processor", "replace", "p", "--sql", "INSERT INTO out SELECT user, amount * 2 AS doubled FROM src"], context)
            #expect(processorStates(broker, context)["p"] == "running", "list after replace \(context)")
            broker.sluiceOK(["produce", "src", "--acks", "all"], stdin: ClickEvents.file(batches[2]), context)
            let doubled = batches[2].map { "\t{\"user\":\"\($0.user)\",\"doubled\":\($0.amount * 2)}" }
            let all = both + both + doubled
            expectSameResults(awaitSink(broker, processor: "p", sink: "out", count: all.count, context), all,
                              "after replace (new query over the records produced after it only)", context)

            // Delete with its output.
            broker.sluiceOK(["processor", "delete", "p", "--delete-output"], context)
            #expect(processorStates(broker, context)["p"] == nil && !topicNames(broker, context).contains("out"),
                    "after delete --delete-output: processors \(processorStates(broker, context)), topics \(topicNames(broker, context)) (\(context))")
            for command in [["describe", "p"], ["pause", "nope"], ["resume", "nope"], ["reset", "nope", "--to", "latest"],
                            ["replace", "nope", "--sql", query], ["delete", "nope"]] {
                let result = broker.sluice(["processor"] + command)
                #expect(result.failedCleanly && result.stderr.contains("does not exist"), "\(result) \(context)")
            }
            brokers.stop()
        }

        /// A result of `SELECT user, amount` (no key) in `%k\t%s` form.
        static func projected(_ event: ClickEvent) -> String { "\t{\"user\":\"\(event.user)\",\"amount\":\(event.amount)}" }

        // MARK: 4. Word count

        @Test("processors: word count over UNNEST(SPLIT(…)), per minute, over one and two partitions; the stateless variant",
              .timeLimit(.minutes(10)))
        func wordCount() throws {
            guard executablesPresent() else { return }
            var rng = SeededRandom.fromEnvironment()
            let lines = WordLines.generate(&rng, count: rng.int(100...400))
            // Moves the watermark past every window of `lines`; its own window stays open in the broker.
            let end = WordLine(words: ["end"], ts: (lines.last?.ts ?? 0) + 3_600_000)
            let expectedCounts = WordLines.expectedCounts(lines)
            let context = "\(lines.count) lines, \(expectedCounts.count) counts, seed \(rng.seed)"
            let dir = TemporaryDirectory("sluice-e2e-proc-words")
            defer { dir.remove() }
            let inputFile = dir.child("lines.jsonl")
            let keyedFile = dir.child("keyed.txt")
            let endFile = dir.child("end.jsonl")
            #expect(writeFileBytes(inputFile, WordLines.file(lines + [end])) && writeFileBytes(endFile, WordLines.file([end])))
            // Keyed by line number so that both partitions of `lines2` get lines.
            #expect(writeFileBytes(keyedFile, Array(lines.enumerated().map { "k\($0.offset)|\($0.element.json)\n" }.joined().utf8)))
            let query = "INSERT INTO counts SELECT w AS word, COUNT(*) AS n FROM lines, UNNEST(SPLIT(line, ' ')) AS w "
                + "GROUP BY w, TUMBLE(ts, INTERVAL '1' MINUTE) EMIT FINAL"
            let queryFile = dir.child("wc.sql")
            #expect(writeFileBytes(queryFile, Array(query.utf8)))

            let brokers = BrokerSlot(dataDir: dir.child("data"))
            defer { brokers.release() }
            guard let broker = try brokers.start() else { return }
            broker.sluiceOK(["topic", "create", "lines"], context)
            broker.sluiceOK(["topic", "create", "lines2", "-p", "2"], context)
            broker.sluiceOK(["processor", "create", "wc", "--file", queryFile], context)
            // Grouping by a word over two partitions goes through a repartition stage; a broker without one
            // refuses the query with a sentence saying so.
            let query2 = query.replacingOccurrences(of: "FROM lines,", with: "FROM lines2,").replacingOccurrences(of: "INTO counts", with: "INTO counts2")
            let grouped2 = broker.sluice(["processor", "create", "wc2", "--sql", query2])
            let repartitions = grouped2.succeeded
            let stage = repartitions ? "with a repartition stage" : "without a repartition stage"
            #expect(repartitions || (grouped2.failedCleanly && grouped2.stderr.contains("repartition")), "\(grouped2) \(context)")
            broker.sluiceOK(["processor", "create", "words", "--sql", "INSERT INTO words SELECT w AS word FROM lines2, UNNEST(SPLIT(line, ' ')) AS w"],
                            context)
            broker.sluiceOK(["produce", "lines", "--file", inputFile, "--acks", "all"], context)
            broker.sluiceOK(["produce", "lines2", "--file", keyedFile, "-k", "|", "--acks", "all"], context)
            // Each partition's watermark must pass the windows, so each gets the far-future line.
            for partition in ["0", "1"] { broker.sluiceOK(["produce", "lines2", "--file", endFile, "-p", partition, "--acks", "all"], context) }

            expectSameResults(awaitSink(broker, processor: "wc", sink: "counts", count: expectedCounts.count, context), expectedCounts,
                              "word counts vs oracle", context)
            // The end of a local run closes every window, the far-future one of "end" too.
            expectSameResults(processorTest(queryFile: queryFile, input: inputFile, context).lines, WordLines.expectedCounts(lines + [end]),
                              "processor test vs oracle", context)
            // Stateless results keep the input's key (the line number); only the values are compared.
            let expectedWords = (lines + [end, end]).flatMap(\.words).map { "{\"word\":\"\($0)\"}" }
            let words = awaitSink(broker, processor: "words", sink: "words", count: expectedWords.count, context)
            expectSameResults(words.map { String($0.split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false).last ?? "") },
                              expectedWords, "stateless words over two partitions", "\(context), \(stage)")
            if repartitions {
                expectSameResults(awaitSink(broker, processor: "wc2", sink: "counts2", count: expectedCounts.count, context), expectedCounts,
                                  "word counts over two partitions (repartitioned) vs oracle", "\(context), \(stage)")
            }
            brokers.stop()
        }

        // MARK: 5. Clean restart

        @Test("processors: after SIGTERM and a restart they carry on from their checkpoints, with no duplicates",
              .timeLimit(.minutes(10)))
        func carryOnAfterCleanRestart() throws {
            guard executablesPresent() else { return }
            var rng = SeededRandom.fromEnvironment()
            let events = ClickEvents.generate(&rng, count: rng.int(300...1000), users: rng.int(2...6))
            let half = rng.int(events.count / 4...(3 * events.count / 4))
            let (before, after) = (Array(events[..<half]), Array(events[half...]))
            let expected = ClickEvents.expected(events)
            let views = events.filter { $0.action == "view" }.map { "\t{\"user\":\"\($0.user)\"}" }
            let context = "\(events.count) events, restart after \(half), \(expected.count) windows, seed \(rng.seed)"
            let dir = TemporaryDirectory("sluice-e2e-proc-term")
            defer { dir.remove() }
            let queryFile = dir.child("q.sql")
            #expect(writeFileBytes(queryFile, Array(Self.clicksQuery.utf8)))

            let brokers = BrokerSlot(dataDir: dir.child("data"))
            defer { brokers.release() }
            guard let broker = try brokers.start() else { return }
            broker.sluiceOK(["topic", "create", "clicks"], context)
            broker.sluiceOK(["processor", "create", "clicks_per_user", "--file", queryFile], context)
            broker.sluiceOK(["processor", "create", "views", "--sql", "INSERT INTO views SELECT user FROM clicks WHERE action = 'view'"], context)
            broker.sluiceOK(["produce", "clicks", "--acks", "all"], stdin: ClickEvents.file(before), context)
            let closed = ClickEvents.expected(before, closedBy: before.last?.ts ?? 0)
            // Windows still open at the restart live only in the checkpointed state.
            expectSameResults(awaitSink(broker, processor: "clicks_per_user", sink: "clicks_per_user", count: closed.count, context),
                              closed, "before the restart", context)
            _ = awaitSink(broker, processor: "views", sink: "views", count: 0, context)
            brokers.stop()

            guard let restarted = try brokers.start() else { return }
            let states = processorStates(restarted, context)
            #expect(states["clicks_per_user"] == "running" && states["views"] == "running", "after the restart: \(states) \(context)")
            restarted.sluiceOK(["produce", "clicks", "--acks", "all"], stdin: ClickEvents.file(after + [ClickEvents.farFuture(after: events)]),
                               context)
            expectSameResults(awaitSink(restarted, processor: "clicks_per_user", sink: "clicks_per_user", count: expected.count, context),
                              expected, "after the restart vs oracle", context)
            expectSameResults(awaitSink(restarted, processor: "views", sink: "views", count: views.count, context), views + [
                "\t{\"user\":\"\(ClickEvents.farFuture(after: events).user)\"}",
            ], "stateless views after the restart", context)
            brokers.stop()
        }

        // MARK: Helpers

        /// Longest wait for a sink to fill or a processor to catch up.
        static let resultsTimeout: Duration = .seconds(40)

        /// The sink's records as `key<TAB>value` lines, after waiting until it holds `count` of them and every
        /// task of `processor` has consumed its source to the end.
        func awaitSink(_ broker: Sluiced, processor: String, sink: String, count: Int, _ context: String,
                       sourceLocation: SourceLocation = #_sourceLocation) -> [String] {
            _ = waitForCount(broker, sink: sink, count: count, context, sourceLocation: sourceLocation)
            waitForCatchUp(broker, processor: processor, context, sourceLocation: sourceLocation)
            return sinkLines(broker, sink, context, sourceLocation: sourceLocation)
        }

        /// Blocks in `consume -n count` until the sink holds `count` records (or the timeout passes).
        @discardableResult
        func waitForCount(_ broker: Sluiced, sink: String, count: Int, _ context: String,
                          sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
            guard count > 0 else { return true }
            let result = broker.sluice(["consume", sink, "-n", "\(count)", "-f", "%k\\t%s\\n"], timeout: Self.resultsTimeout)
            #expect(result.succeeded && result.lines.count == count,
                    "waiting for \(count) results in \(sink): got \(result.lines.count): \(result) \(context)",
                    sourceLocation: sourceLocation)
            return result.succeeded
        }

        /// Polls `processor describe --json` until every task runs with lag 0.
        func waitForCatchUp(_ broker: Sluiced, processor: String, _ context: String,
                            sourceLocation: SourceLocation = #_sourceLocation) {
            let deadline = Date().addingTimeInterval(Self.resultsTimeout.seconds)
            var last: Any?
            while Date() < deadline {
                last = broker.sluiceJSON(["processor", "describe", processor, "--json"], context, sourceLocation: sourceLocation)
                let tasks = JSONFields.partitions(last)
                if !tasks.isEmpty && tasks.allSatisfy({ JSONFields.int($0["lag"]) == 0 && $0["state"] as? String == "running" }) {
                    return
                }
                usleep(100_000)  // between polls of a condition, not instead of one
            }
            Issue.record("processor \(processor) did not catch up within \(Self.resultsTimeout): \(String(describing: last)) \(context)",
                         sourceLocation: sourceLocation)
        }

        func sinkLines(_ broker: Sluiced, _ sink: String, _ context: String, sourceLocation: SourceLocation = #_sourceLocation) -> [String] {
            broker.sluiceOK(["consume", sink, "-e", "-f", "%k\\t%s\\n"], context, sourceLocation: sourceLocation).lines
        }

        /// `sluice processor test` (no broker) in the same output format.
        func processorTest(queryFile: String, input: String, _ context: String,
                           sourceLocation: SourceLocation = #_sourceLocation) -> CommandResult {
            let result = runCommand(Executables.sluice, ["processor", "test", "--file", queryFile, "--input", input, "-f", "%k\\t%s\\n"],
                                    timeout: Sluiced.commandTimeout)
            #expect(result.succeeded, "\(result) \(context)", sourceLocation: sourceLocation)
            return result
        }

        /// Name → state from `processor list --json`.
        func processorStates(_ broker: Sluiced, _ context: String, sourceLocation: SourceLocation = #_sourceLocation) -> [String: String] {
            let list = (broker.sluiceJSON(["processor", "list", "--json"], context, sourceLocation: sourceLocation) as? [[String: Any]]) ?? []
            var states: [String: String] = [:]
            for entry in list { if let name = entry["name"] as? String { states[name] = entry["state"] as? String ?? "?" } }
            return states
        }

        func topicNames(_ broker: Sluiced, _ context: String, sourceLocation: SourceLocation = #_sourceLocation) -> Set<String> {
            let list = (broker.sluiceJSON(["topic", "list", "--json"], context, sourceLocation: sourceLocation) as? [[String: Any]]) ?? []
            return Set(list.compactMap { $0["name"] as? String })
        }

        /// The same results as a multiset: nothing missing, nothing extra, nothing twice that should be once.
        func expectSameResults(_ actual: [String], _ expected: [String], _ what: String, _ context: String,
                               sourceLocation: SourceLocation = #_sourceLocation) {
            let problems = ResultDiff.problems(actual: actual, expected: expected)
            #expect(problems.isEmpty, "\(what): \(problems) (\(actual.count) results, \(expected.count) expected; \(context))",
                    sourceLocation: sourceLocation)
        }
    }
}

extension EndToEnd.ProcessorTests {
    /// Owns the broker a test is running, so that a `defer` can kill one a failing test leaves behind.
    final class BrokerSlot {
        let dataDir: String
        private(set) var current: Sluiced?

        init(dataDir: String) { self.dataDir = dataDir }

        /// Starts a broker on `dataDir` (the previous one must be gone).
        func start(sourceLocation: SourceLocation = #_sourceLocation) throws -> Sluiced? {
            precondition(current == nil, "a broker is already running on \(dataDir)")
            current = try Sluiced.start(dataDir: dataDir, sourceLocation: sourceLocation)
            return current
        }

        /// SIGTERM, expecting a clean stop.
        func stop(sourceLocation: SourceLocation = #_sourceLocation) {
            current?.stop(sourceLocation: sourceLocation)
            current = nil
        }

        /// SIGKILL.
        func crash(sourceLocation: SourceLocation = #_sourceLocation) {
            current?.crash(sourceLocation: sourceLocation)
            current = nil
        }

        /// For `defer`: a broker still running here belongs to a test that returned early; kill it.
        func release() { crash() }
    }

    /// Multiset comparison of result lines.
    enum ResultDiff {
        static func problems(actual: [String], expected: [String], problemsMax: Int = 6) -> [String] {
            var remaining: [String: Int] = [:]
            for line in expected { remaining[line, default: 0] += 1 }
            var problems: [String] = []
            var extra = 0
            for line in actual {
                if let count = remaining[line], count > 0 {
                    remaining[line] = count - 1
                } else {
                    extra += 1
                    if problems.count < problemsMax { problems.append("unexpected or duplicate: \(line)") }
                }
            }
            let missing = remaining.filter { $0.value > 0 }.sorted { $0.key < $1.key }
            for (line, count) in missing.prefix(problemsMax) { problems.append("missing\(count > 1 ? " ×\(count)" : ""): \(line)") }
            if extra > 0 || !missing.isEmpty {
                problems.append("\(extra) unexpected, \(missing.reduce(0) { $0 + $1.value }) missing")
            }
            return problems
        }
    }

    /// One click-stream event, as the JSON line `{"user":"u3","action":"click","amount":5,"ts":…}`.
    struct ClickEvent {
        var user: String
        var action: String
        var amount: Int
        var ts: Int64

        var line: String { "{\"user\":\"\(user)\",\"action\":\"\(action)\",\"amount\":\(amount),\"ts\":\(ts)}" }
    }

    enum ClickEvents {
        /// Window size of the clicks query.
        static let windowMs: Int64 = 10_000

        /// `count` events with non-decreasing times (so none is late), a quarter of them views.
        static func generate(_ rng: inout SeededRandom, count: Int, users: Int) -> [ClickEvent] {
            var ts = Int64(1_800_000_000_000 + rng.int(0...99_999))
            return (0..<count).map { _ in
                ts += Int64(rng.int(0...400))
                return ClickEvent(user: "u\(rng.int(0...(users - 1)))", action: rng.chance(0.25) ? "view" : "click",
                                  amount: rng.int(1...100), ts: ts)
            }
        }

        /// A view an hour after the last event: it moves the watermark past every window of `events` and, being
        /// a view, opens none of its own.
        static func farFuture(after events: [ClickEvent]) -> ClickEvent {
            ClickEvent(user: "u0", action: "view", amount: 0, ts: (events.last?.ts ?? 0) + 3_600_000)
        }

        static func file(_ events: [ClickEvent]) -> [UInt8] {
            Array(events.map { $0.line + "\n" }.joined().utf8)
        }

        /// `user|json` lines, for `sluice produce -k '|'`.
        static func keyedFile(_ events: [ClickEvent]) -> [UInt8] {
            Array(events.map { $0.user + "|" + $0.line + "\n" }.joined().utf8)
        }

        /// `count` chunks, each at least one event, cut at random places.
        static func split(_ events: [ClickEvent], into count: Int, _ rng: inout SeededRandom) -> [[ClickEvent]] {
            var cuts = Set<Int>()
            while cuts.count < count - 1 { cuts.insert(rng.int(1...(events.count - 1))) }
            let bounds = [0] + cuts.sorted() + [events.count]
            return (0..<count).map { Array(events[bounds[$0]..<bounds[$0 + 1]]) }
        }

        /// The oracle: per user and 10 s window, the clicks and their total, as `key<TAB>value` sink lines; only
        /// windows a watermark of `closedBy` has closed (end ≤ watermark) when it is given.
        static func expected(_ events: [ClickEvent], closedBy watermark: Int64? = nil) -> [String] {
            struct Group: Hashable { var user: String; var start: Int64 }
            var groups: [Group: (clicks: Int, total: Int)] = [:]
            for event in events where event.action == "click" {
                let start = event.ts - event.ts % windowMs  // times are positive
                groups[Group(user: event.user, start: start), default: (0, 0)].clicks += 1
                groups[Group(user: event.user, start: start), default: (0, 0)].total += event.amount
            }
            return groups.compactMap { group, value in
                if let watermark, group.start + windowMs > watermark { return nil }
                return "\(group.user)\t{\"user\":\"\(group.user)\",\"clicks\":\(value.clicks),\"total\":\(value.total),"
                    + "\"window_start\":\(group.start),\"window_end\":\(group.start + windowMs)}"
            }
        }
    }

    /// One line of text for word count, as `{"line":"a b c","ts":…}`.
    struct WordLine {
        var words: [String]
        var ts: Int64
        var json: String { "{\"line\":\"\(words.joined(separator: " "))\",\"ts\":\(ts)}" }
    }

    enum WordLines {
        static let vocabulary = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "sluice"]
        static let windowMs: Int64 = 60_000

        static func generate(_ rng: inout SeededRandom, count: Int) -> [WordLine] {
            var ts = Int64(1_800_000_000_000 + rng.int(0...999_999))
            return (0..<count).map { _ in
                ts += Int64(rng.int(0...2_000))
                return WordLine(words: (0..<rng.int(1...8)).map { _ in vocabulary[rng.int(0...(vocabulary.count - 1))] }, ts: ts)
            }
        }

        static func file(_ lines: [WordLine]) -> [UInt8] { Array(lines.map { $0.json + "\n" }.joined().utf8) }

        /// The oracle: per word and minute, its count, as `key<TAB>value` sink lines.
        static func expectedCounts(_ lines: [WordLine]) -> [String] {
            struct Group: Hashable { var word: String; var start: Int64 }
            var counts: [Group: Int] = [:]
            for line in lines {
                for word in line.words { counts[Group(word: word, start: line.ts - line.ts % windowMs), default: 0] += 1 }
            }
            return counts.map { group, n in
                "\(group.word)\t{\"word\":\"\(group.word)\",\"n\":\(n),\"window_start\":\(group.start),\"window_end\":\(group.start + windowMs)}"
            }
        }
    }
}
