// Mistakes a person makes at the command line: each ends with a non-zero exit and a sentence on stderr
// that names what was wrong, never a crash, a hang or a dump of an error value.

import Foundation
import SluiceTestSupport
import Testing

extension EndToEnd {
    @Suite("CLI errors")
    struct CLIErrors {
        /// Fragments of Swift's default rendering of an error value, which a sentence never contains.
        static let dumpMarkers = ["SluiceClientError(", "WireError(", "kind:", "Fatal error", "Stack dump", "(errno"]

        /// Non-zero exit by itself, every fragment in stderr (case-insensitive), no error dump.
        func expectSentence(_ result: CommandResult, mentions fragments: [String],
                            sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(result.failedCleanly, "expected a non-zero exit: \(result)", sourceLocation: sourceLocation)
            let stderr = result.stderr.lowercased()
            for fragment in fragments {
                #expect(stderr.contains(fragment.lowercased()), "stderr does not mention '\(fragment)': \(result)",
                        sourceLocation: sourceLocation)
            }
            for marker in Self.dumpMarkers {
                #expect(!result.stderr.contains(marker), "stderr reads like a dump ('\(marker)'): \(result)",
                        sourceLocation: sourceLocation)
            }
        }

        @Test("CLI errors: unknown topics, an unreachable broker and bad flag values", .timeLimit(.minutes(10)))
        func badInput() throws {
            guard executablesPresent() else { return }
            let dir = TemporaryDirectory("sluice-e2e-errors")
            defer { dir.remove() }
            guard let broker = try Sluiced.start(dataDir: dir.path) else { return }
            broker.sluiceOK(["topic", "create", "E", "-p", "2"])

            expectSentence(broker.sluice(["produce", "no-such-topic"], stdin: Array("a\nb\n".utf8)),
                           mentions: ["no-such-topic", "does not exist"])
            expectSentence(broker.sluice(["consume", "no-such-topic", "-e"]), mentions: ["no-such-topic", "does not exist"])
            expectSentence(broker.sluice(["consume", "no-such-topic", "-g", "G", "-e"]),
                           mentions: ["no-such-topic", "does not exist"])

            let unreachable = ["--brokers", "127.0.0.1:1"]
            for arguments in [["topic", "list"], ["produce", "E"], ["consume", "E", "-e"]] {
                let result = runCommand(Executables.sluice, arguments + unreachable, stdin: Array("x\n".utf8), timeout: .seconds(60))
                expectSentence(result, mentions: ["127.0.0.1:1", "Is sluiced running"])
            }
            // A group request waits for a moving controller only once metadata named one: a broker that
            // cannot be reached at all fails at once, not after the (here ten-minute) request timeout.
            let groups = runCommand(Executables.sluice, ["group", "list", "--request-timeout-ms", "600000"] + unreachable, timeout: .seconds(60))
            expectSentence(groups, mentions: ["127.0.0.1:1", "Is sluiced running"])

            expectSentence(broker.sluice(["consume", "E", "-o", "banana"]), mentions: ["banana", "earliest"])
            expectSentence(broker.sluice(["produce", "E", "--acks", "maybe"], stdin: []), mentions: ["maybe", "all"])
            expectSentence(broker.sluice(["produce", "E", "-z", "gzip"], stdin: []), mentions: ["gzip", "lz4"])
            expectSentence(broker.sluice(["topic", "create", "Z", "-p", "0"]), mentions: ["partitions", "0"])
            expectSentence(broker.sluice(["topic", "create", "bad/name"]), mentions: ["bad/name", "letters"])
            expectSentence(broker.sluice(["topic", "create", "__mine"]), mentions: ["__", "internal"])
            expectSentence(broker.sluice(["topic", "create", "E"]), mentions: ["E", "exists"])

            // Nothing above created a topic or a record.
            let topics = (broker.sluiceJSON(["topic", "list", "--json"]) as? [[String: Any]]) ?? []
            let names = topics.compactMap { $0["name"] as? String }
            #expect(names == ["E"], "topics after the failures: \(names)")
            broker.stop()
        }

        @Test("CLI errors: a second sluiced on the same data directory refuses to start", .timeLimit(.minutes(10)))
        func dataDirectoryInUse() throws {
            guard executablesPresent() else { return }
            let dir = TemporaryDirectory("sluice-e2e-lock")
            defer { dir.remove() }
            guard let broker = try Sluiced.start(dataDir: dir.path) else { return }
            switch try Sluiced.launch(dataDir: dir.path) {
            case .listening(let second):
                Issue.record("a second sluiced started on \(dir.path), port \(second.port)")
                second.crash()
            case .exited(let result):
                expectSentence(result, mentions: [dir.path, "in use"])
            }
            // The first broker is unharmed.
            broker.sluiceOK(["topic", "create", "still-here"])
            broker.stop()
        }
    }
}
