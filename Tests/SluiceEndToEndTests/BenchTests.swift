// `sluice bench produce | consume | e2e --json`: one JSON object with the documented keys.
// The numbers are not judged (this is a debug build on a small machine), only their shape and sign.

import Foundation
import SluiceTestSupport
import Testing

extension EndToEnd {
    @Suite("bench")
    struct Bench {
        static let latencyKeys = ["p50", "p90", "p99", "p999", "max"]

        func expectReport(_ broker: Sluiced, _ arguments: [String], records: Int64,
                          sourceLocation: SourceLocation = #_sourceLocation) {
            let result = broker.sluiceOK(["bench"] + arguments + ["--json"], timeout: .seconds(90), sourceLocation: sourceLocation)
            guard result.succeeded else { return }
            #expect(result.lines.count == 1, "expected one line on stdout: \(result)", sourceLocation: sourceLocation)
            guard let report = try? JSONSerialization.jsonObject(with: Data(result.stdoutBytes)) as? [String: Any] else {
                Issue.record("stdout is not a JSON object: \(result)", sourceLocation: sourceLocation)
                return
            }
            #expect(JSONFields.int(report["records"]) == records, "records: \(result)", sourceLocation: sourceLocation)
            for key in ["seconds", "records_per_sec", "mb_per_sec"] {
                let value = JSONFields.double(report[key])
                #expect(value.map { $0 > 0 } == true, "\(key) = \(String(describing: value)): \(result)", sourceLocation: sourceLocation)
            }
            let latency = report["latency_ms"] as? [String: Any] ?? [:]
            #expect(Set(latency.keys) == Set(Self.latencyKeys), "latency_ms keys: \(result)", sourceLocation: sourceLocation)
            let values = Self.latencyKeys.map { JSONFields.double(latency[$0]) }
            #expect(values.allSatisfy { ($0 ?? 0) > 0 }, "latencies \(values): \(result)", sourceLocation: sourceLocation)
            let ordered = values.compactMap { $0 }
            #expect(ordered == ordered.sorted(), "percentiles out of order \(values): \(result)", sourceLocation: sourceLocation)
        }

        @Test("bench: produce, consume and e2e print one JSON report", .timeLimit(.minutes(10)))
        func jsonReports() throws {
            guard executablesPresent() else { return }
            let dir = TemporaryDirectory("sluice-e2e-bench")
            defer { dir.remove() }
            guard let broker = try Sluiced.start(dataDir: dir.path) else { return }
            expectReport(broker, ["produce", "--topic", "B", "--count", "20000", "--size", "100"], records: 20000)
            expectReport(broker, ["consume", "--topic", "B", "--count", "20000", "--size", "100"], records: 20000)
            expectReport(broker, ["e2e", "--topic", "E2E", "--rate", "20000", "--count", "10000"], records: 10000)
            broker.stop()
        }
    }
}
