// Restarts of the real broker: after a clean SIGTERM nothing changes; after a SIGKILL right behind an
// acknowledged produce nothing acknowledged is lost.

import Foundation
import SluiceTestSupport
import Testing

extension EndToEnd {
    @Suite("restart")
    struct Restart {
        @Test("restart: after SIGTERM every record is back and the offsets are unchanged", .timeLimit(.minutes(10)))
        func cleanRestart() throws {
            guard executablesPresent() else { return }
            var rng = SeededRandom.fromEnvironment()
            let count = rng.int(1000...5000)
            let partitions = rng.int(1...4)
            let context = "\(count) records, \(partitions) partitions, seed \(rng.seed)"
            let dir = TemporaryDirectory("sluice-e2e-term")
            defer { dir.remove() }

            guard let broker = try Sluiced.start(dataDir: dir.path) else { return }
            broker.sluiceOK(["topic", "create", "R", "-p", "\(partitions)"], context)
            // Through stdin this time (the done-when flow uses --file).
            broker.sluiceOK(["produce", "R", "-k", ":"], stdin: KeyedLines.file(0..<count, keys: 100), context)
            let before = JSONFields.topicOffsets(broker.sluiceJSON(["topic", "describe", "R", "--json"], context))
            #expect(before.count == partitions && before.reduce(0) { $0 + ($1.second ?? 0) } == Int64(count), "\(before) \(context)")
            broker.stop()

            guard let restarted = try Sluiced.start(dataDir: dir.path) else { return }
            let after = JSONFields.topicOffsets(restarted.sluiceJSON(["topic", "describe", "R", "--json"], context))
            #expect(after == before, "offsets before SIGTERM \(before), after restart \(after) (\(context))")
            let consumed = restarted.sluiceOK(["consume", "R", "-e", "-f", "%k|%s\\n"], context)
            let problems = KeyedLines.problems(consumed.lines, expected: 0..<count, keys: 100)
            #expect(problems.isEmpty, "after a clean restart: \(problems) (\(context))")
            restarted.stop()
        }

        @Test("restart: records acknowledged with --acks all survive a SIGKILL right after produce exits",
              .timeLimit(.minutes(10)))
        func acknowledgedSurviveKill() throws {
            guard executablesPresent() else { return }
            var rng = SeededRandom.fromEnvironment()
            let dir = TemporaryDirectory("sluice-e2e-kill")
            defer { dir.remove() }
            let partitions = rng.int(1...4)
            guard var broker = try Sluiced.start(dataDir: dir.path) else { return }
            broker.sluiceOK(["topic", "create", "A", "-p", "\(partitions)"])
            var produced = 0
            // Two rounds: the second appends to logs recovered from the first kill.
            for round in 0..<2 {
                let count = rng.int(500...4000)
                let context = "round \(round), \(count) records, \(partitions) partitions, seed \(rng.seed)"
                let lines = KeyedLines.file(produced..<(produced + count), keys: 97)
                let result = broker.sluice(["produce", "A", "-k", ":", "--acks", "all"], stdin: lines)
                #expect(result.succeeded, "\(result) (\(context))")
                guard result.succeeded else { return }
                produced += count
                broker.crash()
                guard let restarted = try Sluiced.start(dataDir: dir.path) else { return }
                broker = restarted
                let consumed = broker.sluiceOK(["consume", "A", "-e", "-f", "%k|%s\\n"], context)
                let problems = KeyedLines.problems(consumed.lines, expected: 0..<produced, keys: 97)
                #expect(problems.isEmpty, "acknowledged records after SIGKILL: \(problems) (\(context))")
            }
            broker.stop()
        }
    }
}
