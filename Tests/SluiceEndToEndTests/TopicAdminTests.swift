// `sluice topic alter | list | delete | describe` against a real broker.

import Foundation
import SluiceTestSupport
import Testing

extension EndToEnd {
    @Suite("topic admin")
    struct TopicAdmin {
        func configs(_ broker: Sluiced, _ topic: String, sourceLocation: SourceLocation = #_sourceLocation) -> [String: String] {
            let json = broker.sluiceJSON(["topic", "describe", topic, "--json"], sourceLocation: sourceLocation)
            return ((json as? [String: Any])?["configs"] as? [String: String]) ?? [:]
        }

        func topicNames(_ broker: Sluiced, sourceLocation: SourceLocation = #_sourceLocation) -> [String: [String: Any]] {
            let list = (broker.sluiceJSON(["topic", "list", "--json"], sourceLocation: sourceLocation) as? [[String: Any]]) ?? []
            return Dictionary(list.compactMap { entry in (entry["name"] as? String).map { ($0, entry) } }, uniquingKeysWith: { a, _ in a })
        }

        @Test("topic admin: alter shows in describe, a bad value is refused readably, list and delete", .timeLimit(.minutes(10)))
        func alterListDelete() throws {
            guard executablesPresent() else { return }
            let dir = TemporaryDirectory("sluice-e2e-topics")
            defer { dir.remove() }
            guard let broker = try Sluiced.start(dataDir: dir.path) else { return }
            broker.sluiceOK(["topic", "create", "T", "-p", "2"])
            broker.sluiceOK(["topic", "create", "U", "-p", "1", "-c", "segment.bytes=1048576"])
            broker.sluiceOK(["produce", "T"], stdin: Array("one\ntwo\nthree\n".utf8))

            let defaults = configs(broker, "T")
            #expect(defaults["flush.policy"] == "always", "default configs of T: \(defaults)")
            #expect(configs(broker, "U")["segment.bytes"] == "1048576", "create -c did not stick")

            let altered = broker.sluiceOK(["topic", "alter", "T", "-c", "retention.ms=1000"])
            #expect(altered.stdout.contains("retention.ms=1000"), "\(altered)")
            #expect(configs(broker, "T")["retention.ms"] == "1000", "describe after alter: \(configs(broker, "T"))")

            let bogus = broker.sluice(["topic", "alter", "T", "-c", "flush.policy=bogus"])
            #expect(bogus.failedCleanly, "\(bogus)")
            #expect(bogus.stderr.contains("flush.policy") && bogus.stderr.contains("bogus") && bogus.stderr.contains("always"),
                    "message for flush.policy=bogus: \(bogus)")
            #expect(configs(broker, "T")["flush.policy"] == "always", "a refused alter changed flush.policy")
            let unknownKey = broker.sluice(["topic", "alter", "T", "-c", "colour=blue"])
            #expect(unknownKey.failedCleanly && unknownKey.stderr.contains("colour"), "\(unknownKey)")

            // An empty value resets to the default.
            broker.sluiceOK(["topic", "alter", "T", "-c", "retention.ms="])
            #expect(configs(broker, "T")["retention.ms"] == defaults["retention.ms"], "reset of retention.ms")

            let listed = topicNames(broker)
            #expect(Set(listed.keys) == ["T", "U"], "topic list --json: \(listed)")
            #expect(JSONFields.int(listed["T"]?["partitions"]) == 2 && JSONFields.int(listed["T"]?["records"]) == 3,
                    "T in topic list: \(String(describing: listed["T"]))")
            #expect(listed["T"]?["internal"] as? Bool == false)

            let deleted = broker.sluiceOK(["topic", "delete", "T"])
            #expect(deleted.stdout.contains("T"), "\(deleted)")
            #expect(Set(topicNames(broker).keys) == ["U"], "after delete")
            let gone = broker.sluice(["topic", "describe", "T"])
            #expect(gone.failedCleanly && gone.stderr.contains("does not exist"), "\(gone)")
            let again = broker.sluice(["topic", "delete", "T"])
            #expect(again.failedCleanly && again.stderr.contains("does not exist"), "\(again)")

            // A topic of the same name starts empty, and the deletion survives a restart.
            broker.sluiceOK(["topic", "create", "T"])
            let empty = broker.sluiceOK(["consume", "T", "-e"])
            #expect(empty.lines.isEmpty, "recreated topic T holds old records: \(empty)")
            broker.sluiceOK(["topic", "delete", "T"])
            broker.stop()
            guard let restarted = try Sluiced.start(dataDir: dir.path) else { return }
            #expect(Set(topicNames(restarted).keys) == ["U"], "after restart")
            restarted.stop()
        }
    }
}
