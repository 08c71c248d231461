// Consumer groups in a cluster with real processes: the controller coordinates them, and a group
// resumes from its committed offsets after the controller is killed.

import Foundation
import SluiceTestSupport
import Testing

extension EndToEnd {
    @Suite("consumer groups across real brokers")
    struct ClusterGroupTests {
        /// The controller `sluice cluster status --json` names, asked of the brokers in `via`.
        static func controller(_ cluster: FaultCluster, via: [Int]) -> Int? {
            let status = cluster.sluice(["cluster", "status", "--json"], via: via, timeout: .seconds(20))
            guard status.succeeded, let value = try? JSONSerialization.jsonObject(with: Data(status.stdoutBytes)) as? [String: Any],
                  let id = JSONFields.int(value["controller"]), id > 0 else { return nil }
            return Int(id)
        }

        @Test("a group's committed position outlives a SIGKILL of the controller: the next member reads the rest, nothing twice")
        func groupSurvivesControllerKill() throws {
            guard executablesPresent() else { return }
            let cluster = FaultCluster(size: 3)
            defer { cluster.shutdown(keep: false) }
            for id in 1...3 { try cluster.start(id, "start") }
            let created = cluster.sluice(["topic", "create", "cg", "-p", "3", "-r", "3"])
            #expect(created.succeeded, "\(created)")
            let values = (0..<300).map { String(format: "g-%04d", $0) }
            let produced = cluster.sluice(["produce", "cg", "--acks", "all"], stdin: Array(values.map { $0 + "\n" }.joined().utf8))
            #expect(produced.succeeded, "\(produced)")

            let first = cluster.sluice(["consume", "cg", "-g", "readers", "-n", "120"], timeout: .seconds(60))
            #expect(first.succeeded, "\(first)")
            #expect(first.lines.count == 120, "\(first.lines.count) lines")

            var controller: Int?
            for _ in 0..<50 where controller == nil { controller = Self.controller(cluster, via: cluster.ids) }
            let killed = try #require(controller, "no broker named a controller")
            cluster.crash(killed)
            let rest = cluster.ids.filter { $0 != killed }

            // The new controller has every commit the old one acknowledged.
            let second = cluster.sluice(["consume", "cg", "-g", "readers", "-e"], via: rest, timeout: .seconds(60))
            #expect(second.succeeded, "\(second)\n\(cluster.logTails())")
            let seen = first.lines + second.lines
            #expect(Set(first.lines).isDisjoint(with: second.lines), "values read twice: \(Set(first.lines).intersection(second.lines).sorted().prefix(5))")
            #expect(seen.count == 300 && Set(seen) == Set(values),
                    "\(seen.count) values read, \(Set(values).subtracting(seen).count) missing, e.g. \(Set(values).subtracting(seen).sorted().prefix(5))")
            let listed = cluster.sluice(["group", "list"], via: rest)
            #expect(listed.succeeded && listed.stdout.contains("readers"), "\(listed)")
        }
    }
}
