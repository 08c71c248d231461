// `sluice group reset`: a plan without --execute, the move with it, and the target of every --to form.
//
// Layout: topic S with two partitions, filled per partition with -p so the offsets are known:
// batch A (a0 records to p0, a1 to p1), a timestamp t taken after A and before B, then batch B.

import Foundation
import SluiceTestSupport
import Testing

extension EndToEnd {
    @Suite("group reset")
    struct GroupReset {
        /// `partition → (current_offset, new_offset)` of `group reset --json`.
        func plan(_ broker: Sluiced, _ arguments: [String], _ context: String,
                  sourceLocation: SourceLocation = #_sourceLocation) -> [Int: (Int64?, Int64?)] {
            let json = broker.sluiceJSON(["group", "reset", "G", "--topic", "S", "--json"] + arguments, context,
                                         sourceLocation: sourceLocation)
            var result: [Int: (Int64?, Int64?)] = [:]
            for entry in JSONFields.partitions(json) {
                result[Int(JSONFields.int(entry["partition"]) ?? -1)] = (JSONFields.int(entry["current_offset"]), JSONFields.int(entry["new_offset"]))
            }
            return result
        }

        func lines(_ count: Int, _ label: String) -> [UInt8] {
            Array((0..<count).map { "\(label)-\($0)\n" }.joined().utf8)
        }

        @Test("group reset: a dry run changes nothing; --execute rewinds; --to @TIME and -N pick the right offsets",
              .timeLimit(.minutes(10)))
        func reset() throws {
            guard executablesPresent() else { return }
            var rng = SeededRandom.fromEnvironment()
            let (a0, a1, b0, b1) = (rng.int(5...40), rng.int(5...40), rng.int(5...40), rng.int(5...40))
            let context = "A \(a0)+\(a1), B \(b0)+\(b1), seed \(rng.seed)"
            let dir = TemporaryDirectory("sluice-e2e-reset")
            defer { dir.remove() }
            guard let broker = try Sluiced.start(dataDir: dir.path) else { return }
            broker.sluiceOK(["topic", "create", "S", "-p", "2"], context)
            broker.sluiceOK(["produce", "S", "-p", "0"], stdin: lines(a0, "a0"), context)
            broker.sluiceOK(["produce", "S", "-p", "1"], stdin: lines(a1, "a1"), context)
            // Every A timestamp is below t and every B timestamp at or above it: wait out the millisecond.
            let t = nowMilliseconds() + 1
            while nowMilliseconds() < t {}
            broker.sluiceOK(["produce", "S", "-p", "0"], stdin: lines(b0, "b0"), context)
            broker.sluiceOK(["produce", "S", "-p", "1"], stdin: lines(b1, "b1"), context)
            let (end0, end1) = (Int64(a0 + b0), Int64(a1 + b1))
            let total = a0 + a1 + b0 + b1

            let read = broker.sluiceOK(["consume", "S", "-g", "G", "-e"], context)
            #expect(read.lines.count == total, "first group read: \(read.lines.count) lines (\(context))")
            let committed = JSONFields.groupOffsets(broker.sluiceJSON(["group", "describe", "G", "--json"], context))
            #expect(committed == [PartitionOffsets(partition: 0, first: end0, second: end0),
                                  PartitionOffsets(partition: 1, first: end1, second: end1)], "\(committed) (\(context))")

            // A dry run prints the plan and changes nothing.
            let dry = broker.sluiceOK(["group", "reset", "G", "--topic", "S", "--to", "earliest"], context)
            #expect(dry.stdout.contains("dry run"), "\(dry)")
            for (partition, current) in [("0", end0), ("1", end1)] {
                #expect(dry.lines.contains { $0.split(separator: " ", omittingEmptySubsequences: true) == ["S", Substring(partition), Substring("\(current)"), "0"] },
                        "plan row for partition \(partition) (\(current) → 0) missing: \(dry) (\(context))")
            }
            let unchanged = JSONFields.groupOffsets(broker.sluiceJSON(["group", "describe", "G", "--json"], context))
            #expect(unchanged == committed, "a dry run changed the offsets: \(unchanged) (\(context))")
            let nothingNew = broker.sluiceOK(["consume", "S", "-g", "G", "-e"], context)
            #expect(nothingNew.lines.isEmpty, "after a dry run the group re-read: \(nothingNew) (\(context))")

            // The other targets, as plans (all dry runs).
            func expectPlan(_ to: String, _ new0: Int64, _ new1: Int64, sourceLocation: SourceLocation = #_sourceLocation) {
                let p = plan(broker, ["--to=\(to)"], context, sourceLocation: sourceLocation)
                #expect(p[0]?.0 == end0 && p[1]?.0 == end1, "--to \(to): current offsets \(p) (\(context))", sourceLocation: sourceLocation)
                #expect(p[0]?.1 == new0 && p[1]?.1 == new1, "--to \(to): expected \(new0), \(new1), got \(p) (\(context))",
                        sourceLocation: sourceLocation)
            }
            expectPlan("earliest", 0, 0)
            expectPlan("latest", end0, end1)
            expectPlan("@\(t)", Int64(a0), Int64(a1))
            expectPlan("@0", 0, 0)
            expectPlan("@\(nowMilliseconds() + 3_600_000)", end0, end1)
            expectPlan("-3", end0 - 3, end1 - 3)
            expectPlan("-1000", 0, 0)
            expectPlan("7", 7, 7)
            // The spelling the help shows, with a space: the value starts with '-'.
            let spaced = broker.sluiceOK(["group", "reset", "G", "--topic", "S", "--to", "-3", "--json"], context)
            #expect(spaced.stdout.contains("\"new_offset\":\(end0 - 3)"), "\(spaced)")

            // --execute moves the offsets; the next group read starts again from the beginning.
            let executed = broker.sluiceOK(["group", "reset", "G", "--topic", "S", "--to", "earliest", "--execute"], context)
            #expect(executed.stdout.contains("reset"), "\(executed)")
            let rewound = JSONFields.groupOffsets(broker.sluiceJSON(["group", "describe", "G", "--json"], context))
            #expect(rewound.map(\.second) == [0, 0], "after --execute: \(rewound) (\(context))")
            let again = broker.sluiceOK(["consume", "S", "-g", "G", "-e", "-f", "%p %s\\n"], context)
            #expect(again.lines.count == total, "re-read after reset: \(again.lines.count) of \(total) (\(context))")
            #expect(again.lines.filter { $0.hasPrefix("0 ") } == (0..<a0).map { "0 a0-\($0)" } + (0..<b0).map { "0 b0-\($0)" },
                    "partition 0 after reset (\(context))")

            // Executing a timestamp target: the next read prints exactly batch B.
            broker.sluiceOK(["group", "reset", "G", "--topic", "S", "--to", "@\(t)", "--execute"], context)
            let fromT = broker.sluiceOK(["consume", "S", "-g", "G", "-e"], context)
            #expect(Set(fromT.lines) == Set((0..<b0).map { "b0-\($0)" } + (0..<b1).map { "b1-\($0)" }) && fromT.lines.count == b0 + b1,
                    "read after --to @t: \(fromT) (\(context))")
            broker.stop()
        }
    }
}
