// Replication with real processes: three `sluiced` on loopback forming one cluster, driven by the
// real `sluice` CLI.

import Foundation
import SluiceTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Three brokers started as a user would: `sluiced --node-id N --data-dir DIR --cluster 1@…,2@…,3@…`.
final class LocalCluster: @unchecked Sendable {
    let directory = TemporaryDirectory("sluice-e2e-cluster")
    let ports: [Int] = (0..<3).map { _ in freeLoopbackPort() }
    private(set) var brokers: [Int: Sluiced] = [:]

    var clusterText: String { ports.enumerated().map { "\($0.offset + 1)@127.0.0.1:\($0.element)" }.joined(separator: ",") }
    var bootstrap: String { ports.map { "127.0.0.1:\($0)" }.joined(separator: ",") }
    func dataDir(_ id: Int) -> String { directory.child("n\(id)") }

    func start(_ id: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let launch = try Sluiced.launch(dataDir: dataDir(id), listen: "127.0.0.1:\(ports[id - 1])",
                                        extraArguments: ["--node-id", "\(id)", "--cluster", clusterText])
        switch launch {
        case .listening(let broker): brokers[id] = broker
        case .exited(let result): Issue.record("broker \(id) did not start: \(result)", sourceLocation: sourceLocation)
        }
    }

    func crash(_ id: Int) { brokers.removeValue(forKey: id)?.crash() }
    func stop(_ id: Int) { brokers.removeValue(forKey: id)?.stop() }

    /// `sluice ARGUMENTS --brokers <every member>`.
    func sluice(_ arguments: [String], stdin: [UInt8]? = nil, timeout: Duration = Sluiced.commandTimeout) -> CommandResult {
        runCommand(Executables.sluice, arguments + ["--brokers", bootstrap], stdin: stdin, timeout: timeout)
    }

    /// The bytes of every segment of `topic`-`partition` on broker `id`, in file-name order.
    func logBytes(_ id: Int, _ topic: String, _ partition: Int) -> [UInt8] {
        let path = dataDir(id) + "/\(topic)-\(partition)"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0.hasSuffix(".log") }.sorted()
        return names.flatMap { (try? [UInt8](Data(contentsOf: URL(fileURLWithPath: path + "/" + $0)))) ?? [] }
    }

    /// Polls (a follower catches up within heartbeats) until every replica's log of each partition
    /// holds the same bytes; false after `timeout`.
    func replicasConverge(_ topic: String, partitions: Int, timeout: TimeInterval = 30) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let same = (0..<partitions).allSatisfy { partition in
                let logs = (1...3).map { logBytes($0, topic, partition) }
                return !logs[0].isEmpty && logs.allSatisfy { $0 == logs[0] }
            }
            if same { return true }
            usleep(50_000)
        }
        return false
    }

    func shutdown() {
        for id in brokers.keys.sorted() { stop(id) }
        directory.remove()
    }
}

@Suite("replication across real brokers", .serialized)
struct ReplicationTests {
    static func values(_ range: Range<Int>) -> [UInt8] {
        Array(range.map { String(format: "v-%06d\n", $0) }.joined().utf8)
    }

    @Test("three brokers: topic -r 3, acks=all writes survive SIGKILL of a broker, the restarted one catches up byte for byte")
    func survivesABrokerKill() throws {
        guard executablesPresent() else { return }
        let cluster = LocalCluster()
        defer { cluster.shutdown() }
        for id in 1...3 { try cluster.start(id) }
        let created = cluster.sluice(["topic", "create", "t", "-p", "3", "-r", "3"])
        #expect(created.succeeded, "\(created)")

        let first = cluster.sluice(["produce", "t", "--acks", "all"], stdin: Self.values(0..<300))
        #expect(first.succeeded, "\(first)")
        cluster.crash(1)
        // Partitions broker 1 led elect a new leader; the producer finds it and retries.
        let second = cluster.sluice(["produce", "t", "--acks", "all"], stdin: Self.values(300..<600))
        #expect(second.succeeded, "\(second)")

        let consumed = cluster.sluice(["consume", "t", "-n", "600"], timeout: .seconds(60))
        #expect(consumed.succeeded, "\(consumed)")
        let seen = consumed.lines
        #expect(seen.count == 600 && Set(seen).count == 600, "\(seen.count) lines, \(Set(seen).count) distinct")
        let missing = Set((0..<600).map { String(format: "v-%06d", $0) }).subtracting(seen)
        #expect(missing.isEmpty, "\(missing.count) acknowledged values missing, e.g. \(missing.sorted().prefix(5))")

        try cluster.start(1)
        #expect(cluster.replicasConverge("t", partitions: 3), "replica logs differ after the restart")
    }
}
