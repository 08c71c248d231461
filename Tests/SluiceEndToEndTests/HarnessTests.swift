// The harness itself: a command that never ends is killed at its deadline and reported as timed out,
// so a hanging CLI fails its test instead of the whole run. The command is `consume` following a topic,
// which also checks that a followed record is printed as it arrives.

import Foundation
import SluiceTestSupport
import Testing

extension EndToEnd {
    @Suite("harness")
    struct Harness {
        @Test("harness: a consume without -e prints what it read and is killed at its deadline", .timeLimit(.minutes(5)))
        func deadline() throws {
            guard executablesPresent() else { return }
            let dir = TemporaryDirectory("sluice-e2e-harness")
            defer { dir.remove() }
            guard let broker = try Sluiced.start(dataDir: dir.path) else { return }
            broker.sluiceOK(["topic", "create", "H"])
            broker.sluiceOK(["produce", "H"], stdin: Array("only\n".utf8))
            let consume = try ChildProcess(executable: Executables.sluice, arguments: ["consume", "H", "--brokers", broker.address])
            // Following a topic, a record is printed when it arrives, not when 64 KiB of output have piled
            // up: the line shows while the command still runs. (However long starting, connecting and
            // fetching take on a loaded machine.)
            let printed = consume.stdout.wait(until: Date().addingTimeInterval(60)) { String(decoding: $0, as: UTF8.self).contains("only\n") }
            #expect(printed, "consume without -e did not print the record it read: \(consume.stdout.text) \(consume.stderr.text)")
            // The command never ends by itself: the harness kills it at its deadline and says so.
            let started = Date()
            let result = consume.finish(deadline: started.addingTimeInterval(1))
            #expect(result.timedOut, "\(result)")
            #expect(result.lines == ["only"], "\(result)")
            #expect(Date().timeIntervalSince(started) < 30, "the deadline was not kept: \(result)")
            broker.stop()
        }
    }
}
