// The harness itself: a command that never ends is killed at its deadline and reported as timed out,
// so a hanging CLI fails its test instead of the whole run. The command is `consume` following a topic,
// which also checks that a followed record is printed as it arrives.

import Foundation
import SluiceTestSupport
import Testing

extension EndToEnd {
    @Suite("harness")
    struct Harness {
        @Test("harness: a consume without -e prints what it read and is killed at its deadline", .timeLimit(.minutes(1)))
        func deadline() throws {
            guard executablesPresent() else { return }
            let dir = TemporaryDirectory("sluice-e2e-harness")
            defer { dir.remove() }
            guard let broker = try Sluiced.start(dataDir: dir.path) else { return }
            broker.sluiceOK(["topic", "create", "H"])
            broker.sluiceOK(["produce", "H"], stdin: Array("only\n".utf8))
            let started = Date()
            let result = broker.sluice(["consume", "H"], timeout: .seconds(3))
            #expect(result.timedOut, "\(result)")
            // Following a topic, a record is printed when it arrives, not when 64 KiB of output have piled up.
            #expect(result.lines == ["only"], "consume without -e did not print the record it read: \(result)")
            #expect(Date().timeIntervalSince(started) < 20, "the deadline was not kept: \(result)")
            broker.stop()
        }
    }
}
