// The "done when" flow of the broker milestone, run against the real binaries: 100,000 keyed records
// through a 3-partition topic, read back whole, then read by a group in two halves across a SIGKILL of
// the broker, and the group's committed offsets checked across a second SIGKILL.

import Foundation
import SluiceTestSupport
import Testing

extension EndToEnd {
    @Suite("done when")
    struct DoneWhen {
        static let records = 100_000
        static let keys = 1000
        static let firstHalf = 40_000

        @Test("done when: 100,000 keyed records survive SIGKILL; a group reads them once across a restart",
              .timeLimit(.minutes(10)))
        func keyedRecordsThroughCrashes() throws {
            guard executablesPresent() else { return }
            let dir = TemporaryDirectory("sluice-e2e-done")
            defer { dir.remove() }
            let input = dir.child("records.txt")
            #expect(writeFileBytes(input, KeyedLines.file(0..<Self.records, keys: Self.keys)))
            let data = dir.child("data")

            // Produce and read everything back.
            guard var broker = try Sluiced.start(dataDir: data) else { return }
            broker.sluiceOK(["topic", "create", "T", "-p", "3"])
            let produced = broker.sluiceOK(["produce", "T", "-k", ":", "--file", input])
            guard produced.succeeded else { return }
            let all = broker.sluiceOK(["consume", "T", "-e", "-f", "%k|%s\\n"])
            let allProblems = KeyedLines.problems(all.lines, expected: 0..<Self.records, keys: Self.keys)
            #expect(allProblems.isEmpty, "consume T -e: \(allProblems)")

            // SIGKILL, restart on the same data: a group reads 40,000 then the remaining 60,000.
            broker.crash()
            guard let restarted = try Sluiced.start(dataDir: data) else { return }
            broker = restarted
            let first = broker.sluiceOK(["consume", "T", "-g", "G", "-e", "-n", "\(Self.firstHalf)", "-f", "%k|%s\\n"])
            #expect(first.lines.count == Self.firstHalf, "first group read printed \(first.lines.count) lines")
            let rest = broker.sluiceOK(["consume", "T", "-g", "G", "-e", "-f", "%k|%s\\n"])
            #expect(rest.lines.count == Self.records - Self.firstHalf, "second group read printed \(rest.lines.count) lines")
            let groupProblems = KeyedLines.problems(first.lines + rest.lines, expected: 0..<Self.records, keys: Self.keys)
            #expect(groupProblems.isEmpty, "two group reads together: \(groupProblems)")

            let described = broker.sluiceJSON(["group", "describe", "G", "--json"])
            let lags = JSONFields.partitions(described).map { JSONFields.int($0["lag"]) }
            #expect(lags.count == 3 && lags.allSatisfy { $0 == 0 }, "group G lags \(lags): \(String(describing: described))")
            let before = JSONFields.groupOffsets(described)
            expectCommittedAtEnd(before, records: Self.records, "after the group reads")

            // SIGKILL again: the committed offsets are durable.
            broker.crash()
            guard let again = try Sluiced.start(dataDir: data) else { return }
            broker = again
            let after = JSONFields.groupOffsets(broker.sluiceJSON(["group", "describe", "G", "--json"]))
            #expect(after == before, "committed offsets before the second SIGKILL \(before), after \(after)")
            expectCommittedAtEnd(after, records: Self.records, "after the second SIGKILL")
            broker.stop()
        }

        /// Three partitions, each committed at its end offset, the ends adding up to `records`.
        func expectCommittedAtEnd(_ offsets: [PartitionOffsets], records: Int, _ context: String,
                                  sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(offsets.map(\.partition) == [0, 1, 2], "\(context): partitions \(offsets)", sourceLocation: sourceLocation)
            for p in offsets {
                #expect(p.second == p.first, "\(context): committed offset is not the end offset: \(p)", sourceLocation: sourceLocation)
            }
            #expect(offsets.reduce(0) { $0 + $1.first } == Int64(records), "\(context): end offsets \(offsets)",
                    sourceLocation: sourceLocation)
        }
    }
}
