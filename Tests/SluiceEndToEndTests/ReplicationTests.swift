// Replication with real processes: three `sluiced` on loopback forming one cluster, driven by the
// real `sluice` CLI.

import Foundation
import SluiceTestSupport
import Testing

// Under the serialised end-to-end root: these tests block a thread while they wait for processes, and
// two such tests side by side on a 2-core machine starve every async test of the cooperative pool (a
// fresh-clone CI run saw unrelated in-process tests stall for 100 s).
extension EndToEnd {
    @Suite("replication across real brokers")
    struct ReplicationTests {
        static func values(_ range: Range<Int>) -> [UInt8] {
            Array(range.map { String(format: "v-%06d\n", $0) }.joined().utf8)
        }

        @Test("three brokers: topic -r 3, acks=all writes survive SIGKILL of a broker, the restarted one catches up byte for byte")
        func survivesABrokerKill() throws {
            guard executablesPresent() else { return }
            let cluster = FaultCluster(size: 3)
            defer { cluster.shutdown(keep: false) }
            for id in 1...3 { try cluster.start(id, "start") }
            let created = cluster.sluice(["topic", "create", "t", "-p", "3", "-r", "3"])
            #expect(created.succeeded, "\(created)")

            let first = cluster.sluice(["produce", "t", "--acks", "all"], stdin: Self.values(0..<300))
            #expect(first.succeeded, "\(first)")
            cluster.crash(1)
            // Partitions broker 1 led elect a new leader; the producer finds it and retries. The dead broker
            // stays first in the bootstrap list, as a user's list would.
            let second = cluster.sluice(["produce", "t", "--acks", "all"], via: cluster.ids, stdin: Self.values(300..<600))
            #expect(second.succeeded, "\(second)")

            let consumed = cluster.sluice(["consume", "t", "-n", "600"], via: cluster.ids, timeout: .seconds(60))
            #expect(consumed.succeeded, "\(consumed)")
            let seen = consumed.lines
            #expect(seen.count == 600 && Set(seen).count == 600, "\(seen.count) lines, \(Set(seen).count) distinct")
            let missing = Set((0..<600).map { String(format: "v-%06d", $0) }).subtracting(seen)
            #expect(missing.isEmpty, "\(missing.count) acknowledged values missing, e.g. \(missing.sorted().prefix(5))")

            try cluster.start(1, "restart")
            let everyone = Dictionary(uniqueKeysWithValues: (0..<3).map { ($0, [1, 2, 3]) })
            #expect(cluster.replicasConverge("t", replicas: everyone) != nil, "replica logs differ after the restart")
        }
    }
}
