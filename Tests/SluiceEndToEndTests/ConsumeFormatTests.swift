// What `sluice consume` prints: --json objects, -p/-o/-n windows, -o -N tails and -H headers in %h.

import Foundation
import SluiceTestSupport
import Testing

extension EndToEnd {
    @Suite("consume output")
    struct ConsumeOutput {
        @Test("consume output: --json, -p 1 -o 5 -n 3, -o -2 and -H headers", .timeLimit(.minutes(10)))
        func formats() throws {
            guard executablesPresent() else { return }
            var rng = SeededRandom.fromEnvironment()
            let sizes = [rng.int(8...30), rng.int(8...30), rng.int(8...30)]
            let context = "partition sizes \(sizes), seed \(rng.seed)"
            let dir = TemporaryDirectory("sluice-e2e-consume")
            defer { dir.remove() }
            guard let broker = try Sluiced.start(dataDir: dir.path) else { return }
            broker.sluiceOK(["topic", "create", "C", "-p", "3"], context)
            for (partition, size) in sizes.enumerated() {
                let lines = (0..<size).map { "k\(partition)-\($0)=v\(partition)-\($0)\n" }.joined()
                broker.sluiceOK(["produce", "C", "-p", "\(partition)", "-k", "=", "-H", "a=b", "-H", "origin=e2e"],
                                stdin: Array(lines.utf8), context)
            }

            // --json: one object per line with the record's fields.
            let json = broker.sluiceOK(["consume", "C", "-e", "--json"], context)
            #expect(json.lines.count == sizes.reduce(0, +), "\(json.lines.count) JSON lines (\(context))")
            var seen = Set<String>()
            for line in json.lines {
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let topic = object["topic"] as? String, let partition = JSONFields.int(object["partition"]),
                      let offset = JSONFields.int(object["offset"]), let key = object["key"] as? String,
                      let value = object["value"] as? String
                else {
                    Issue.record("not a record object: \(line) (\(context))")
                    continue
                }
                #expect(topic == "C" && key == "k\(partition)-\(offset)" && value == "v\(partition)-\(offset)", "\(line) (\(context))")
                #expect((object["headers"] as? [String: String]) == ["a": "b", "origin": "e2e"], "headers in \(line)")
                seen.insert("\(partition)/\(offset)")
            }
            #expect(seen.count == sizes.reduce(0, +), "distinct records in --json output (\(context))")

            // A window of one partition.
            let window = broker.sluiceOK(["consume", "C", "-p", "1", "-o", "5", "-n", "3", "-f", "%p:%o:%k:%s\\n"], context)
            #expect(window.lines == ["1:5:k1-5:v1-5", "1:6:k1-6:v1-6", "1:7:k1-7:v1-7"], "\(window) (\(context))")

            // The last two of every partition, with the kcat spelling `-o -2`.
            let tail = broker.sluiceOK(["consume", "C", "-o", "-2", "-e", "-f", "%p:%o\\n"], context)
            let expectedTail = sizes.enumerated().flatMap { p, size in ["\(p):\(size - 2)", "\(p):\(size - 1)"] }
            #expect(tail.lines.sorted() == expectedTail.sorted(), "\(tail) (\(context))")

            // Headers through %h, and the other tokens.
            let headers = broker.sluiceOK(["consume", "C", "-p", "2", "-o", "0", "-n", "1", "-f", "%t|%h|%K|%S|%k\\n"], context)
            #expect(headers.lines == ["C|a=b,origin=e2e|4|4|k2-0"], "\(headers) (\(context))")

            // A partition that does not exist is named in the message.
            let missing = broker.sluice(["consume", "C", "-p", "3", "-e"])
            #expect(missing.failedCleanly && missing.stderr.contains("partition 3"), "\(missing)")
            broker.stop()
        }
    }
}
