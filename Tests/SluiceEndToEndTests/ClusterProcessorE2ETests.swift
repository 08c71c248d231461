// Processors in a cluster with real processes: a processor created through a broker that is not the
// controller runs one task per source partition on that partition's leader; when the leader of a source
// partition is SIGKILLed its task moves to the new leader, resumes from the last replicated checkpoint and
// writes every result exactly once (output its predecessor already stored is skipped); and so again once
// the killed broker is back.
//
// Waiting is for conditions, never for a fixed time: `consume -n` blocks until the sink holds that many
// results, `cluster status` and `processor describe` are polled with a deadline, and the sink is read whole
// (`consume -e`) only once every task has caught up with its source (lag 0), so a duplicate written after
// the last expected result is still seen.

import Foundation
import SluiceTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension EndToEnd {
    @Suite("processors across real brokers")
    struct ClusterProcessorE2ETests {
        static let query = "INSERT INTO copies SELECT id, n FROM events WHERE n >= 0"

        /// `e0007`: the id (and key) of event 7.
        static func id(_ n: Int) -> String { String(format: "e%04d", n) }

        /// Keyed lines for `produce -k '|'`: `e0007|{"id":"e0007","n":7}`.
        static func events(_ range: Range<Int>) -> [UInt8] {
            Array(range.map { "\(id($0))|{\"id\":\"\(id($0))\",\"n\":\($0)}\n" }.joined().utf8)
        }

        @Test("a processor in a 3-broker cluster writes each result once across a SIGKILL of its source leader and its restart",
              .timeLimit(.minutes(15)))
        func exactlyOnceAcrossLeaderKill() throws {
            guard executablesPresent() else { return }
            let run = ClusterProcessorScenario()
            try run.run()
        }
    }
}

/// One run of the scenario; `check` records an issue with the brokers' log tails and keeps their data.
final class ClusterProcessorScenario {
    typealias T = EndToEnd.ClusterProcessorE2ETests
    let cluster = FaultCluster(size: 3)
    private var failed = false
    private let started = Date()
    private var steps: [String] = []

    func check(_ condition: Bool, _ message: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard !condition else { return }
        failed = true
        Issue.record(Comment(rawValue: "\(message())\nsteps: \(steps.joined(separator: "; "))\ndata and full logs kept in \(cluster.directory.path)\n\(cluster.logTails(lines: 25))"),
                     sourceLocation: sourceLocation)
    }

    /// Notes a step with its time since the start (for failure messages and the run's summary line).
    func step(_ text: String) {
        steps.append(String(format: "%.1fs %@", Date().timeIntervalSince(started), text))
    }

    /// `cluster status --json` as the brokers in `via` see it.
    func status(via: [Int]) -> [String: Any]? {
        let result = cluster.sluice(["cluster", "status", "--json"], via: via, timeout: .seconds(60))
        guard result.succeeded else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(result.stdoutBytes)) as? [String: Any]
    }

    /// The controller and the leader of events-0, once `cluster status` names both (and, with `excluding`,
    /// a leader that is not that broker); nil after `timeout`.
    func controllerAndLeader(via: [Int], excluding: Int? = nil, timeout: TimeInterval = 60) -> (controller: Int, leader: Int)? {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            if let status = status(via: via), let controller = JSONFields.int(status["controller"]), controller > 0 {
                let partitions = (status["partitions"] as? [[String: Any]]) ?? []
                let leader = partitions.first { $0["topic"] as? String == "events" && JSONFields.int($0["partition"]) == 0 }
                    .flatMap { JSONFields.int($0["leader"]) } ?? -1
                if leader > 0 && Int(leader) != excluding { return (Int(controller), Int(leader)) }
            }
            usleep(100_000)
        } while Date() < deadline
        return nil
    }

    /// The tasks of `processor describe copy --json` once there are three, all running with lag 0; the
    /// last answer (and false) after `timeout`.
    func caughtUp(via: [Int], timeout: TimeInterval = 60) -> (Bool, String) {
        let deadline = Date().addingTimeInterval(timeout)
        var last = ""
        repeat {
            let result = cluster.sluice(["processor", "describe", "copy", "--json"], via: via, timeout: .seconds(60))
            last = "\(result)"
            if result.succeeded, let value = try? JSONSerialization.jsonObject(with: Data(result.stdoutBytes)) {
                let tasks = JSONFields.partitions(value)
                let partitions = tasks.compactMap { JSONFields.int($0["partition"]) }.sorted()
                if partitions == [0, 1, 2]
                    && tasks.allSatisfy({ JSONFields.int($0["lag"]) == 0 && $0["state"] as? String == "running" }) {
                    return (true, result.stdout)
                }
            }
            usleep(200_000)
        } while Date() < deadline
        return (false, last)
    }

    /// Reads `copies` whole once the processor has caught up; the ids in the order read.
    func readCopies(via: [Int], expecting count: Int, _ context: String) -> [String] {
        // Until the sink holds `count` results (or the deadline): blocks in one consume, retried if the
        // consume ends early (a leader that moves under it).
        let deadline = Date().addingTimeInterval(60)
        var waited: CommandResult?
        repeat {
            let result = cluster.sluice(["consume", "copies", "-n", "\(count)", "--json"], via: via,
                                        timeout: .seconds(max(1, Int(deadline.timeIntervalSinceNow))))
            waited = result
            if result.succeeded { break }
            usleep(200_000)
        } while Date() < deadline
        check(waited?.succeeded == true, "\(context): the sink never held \(count) results: \(waited.map { "\($0)" } ?? "-")")
        let (caughtUp, described) = caughtUp(via: via)
        check(caughtUp, "\(context): the processor's tasks did not all catch up (3 tasks, running, lag 0): \(described)")
        // The whole sink, a duplicate written after the count-th result included.
        var whole = cluster.sluice(["consume", "copies", "-e", "--json"], via: via, timeout: .seconds(60))
        if !whole.succeeded { whole = cluster.sluice(["consume", "copies", "-e", "--json"], via: via, timeout: .seconds(60)) }
        check(whole.succeeded, "\(context): reading the sink: \(whole)")
        var ids: [String] = []
        var malformed: [String] = []
        for line in whole.lines where !line.isEmpty {
            guard let record = ConsumedRecord(jsonLine: line),
                  let value = try? JSONSerialization.jsonObject(with: Data(record.value.utf8)) as? [String: Any],
                  let id = value["id"] as? String
            else { malformed.append(line); continue }
            ids.append(id)
        }
        check(malformed.isEmpty, "\(context): \(malformed.count) malformed records, e.g. \(malformed.prefix(3))")
        return ids
    }

    /// Exactly the ids of `expected`, each once; the message names repeats and missing ids.
    func checkExactlyOnce(_ ids: [String], _ expected: Range<Int>, _ context: String, sourceLocation: SourceLocation = #_sourceLocation) {
        var counts: [String: Int] = [:]
        for id in ids { counts[id, default: 0] += 1 }
        let wanted = Set(expected.map(T.id))
        let repeated = counts.filter { $0.value > 1 }.sorted { $0.key < $1.key }
        let missing = wanted.subtracting(counts.keys).sorted()
        let unexpected = Set(counts.keys).subtracting(wanted).sorted()
        check(ids.count == expected.count && repeated.isEmpty && missing.isEmpty && unexpected.isEmpty,
              "\(context): \(ids.count) results, \(counts.count) distinct, expected \(expected.count) each once; "
              + "\(repeated.count) repeated \(repeated.prefix(10).map { "\($0.key)×\($0.value)" }), "
              + "\(missing.count) missing \(missing.prefix(10)), \(unexpected.count) unexpected \(unexpected.prefix(10))",
              sourceLocation: sourceLocation)
    }

    func run() throws {
        defer { cluster.shutdown(keep: failed) }
        for id in cluster.ids { guard try cluster.start(id, "start") else { failed = true; return } }
        step("3 brokers up")

        // 1. The source topic.
        let created = cluster.sluice(["topic", "create", "events", "-p", "3", "-r", "3"])
        check(created.succeeded, "\(created)")
        guard created.succeeded, let before = controllerAndLeader(via: cluster.ids) else {
            return check(false, "no controller, or no leader of events-0, in `cluster status`")
        }
        step("controller \(before.controller), events-0 led by \(before.leader)")

        // 2. Created through a broker that is not the controller: the client follows it to the controller.
        let entry = try #require(cluster.ids.first { $0 != before.controller })
        let processor = cluster.sluice(["processor", "create", "copy", "--sql", T.query, "--from", "earliest"], via: [entry])
        check(processor.succeeded && processor.stdout.contains("created processor copy"), "processor create via broker \(entry): \(processor)")
        guard processor.succeeded else { return }
        for id in cluster.ids {
            let listed = cluster.sluice(["processor", "list"], via: [id])
            check(listed.succeeded && listed.stdout.contains("copy"), "processor list via broker \(id): \(listed)")
        }
        step("processor created via broker \(entry)")

        // 3. The first 300 events, and their copies.
        let first = cluster.sluice(["produce", "events", "-k", "|", "--acks", "all"], stdin: T.events(0..<300))
        check(first.succeeded, "produce 0..<300: \(first)")
        guard first.succeeded else { return }
        let waited = cluster.sluice(["consume", "copies", "-n", "300"], timeout: .seconds(60))
        check(waited.succeeded, "the sink never held the first 300 results: \(waited)")
        step("300 produced and copied")

        // 4. The leader of events-0 (its task's broker) dies; its task moves to the new leader.
        guard let current = controllerAndLeader(via: cluster.ids) else { return check(false, "no leader of events-0") }
        let killed = current.leader
        cluster.crash(killed)
        let rest = cluster.ids.filter { $0 != killed }
        step("SIGKILLed broker \(killed) (leader of events-0; controller was \(current.controller))")
        let second = cluster.sluice(["produce", "events", "-k", "|", "--acks", "all"], via: rest, stdin: T.events(300..<600))
        check(second.succeeded, "produce 300..<600 with broker \(killed) down: \(second)")
        guard second.succeeded else { return }
        let after = controllerAndLeader(via: rest, excluding: killed)
        check(after != nil, "no new leader of events-0 after broker \(killed) died")
        step("300 more produced; events-0 now led by \(after.map { "\($0.leader)" } ?? "?")")

        // 5, 6. Every result once; describe shows the three tasks.
        checkExactlyOnce(readCopies(via: rest, expecting: 600, "after the kill"), 0..<600, "after the kill of broker \(killed)")
        let described = cluster.sluice(["processor", "describe", "copy"], via: rest)
        let rows = described.lines.filter { $0.range(of: #"^\s*\d+\s+running\b"#, options: .regularExpression) != nil }
        let partitions = rows.compactMap { Int($0.split(separator: " ").first ?? "") }.sorted()
        check(described.succeeded && described.stdout.contains("PARTITION") && partitions == [0, 1, 2],
              "processor describe via the survivors should show tasks 0, 1 and 2 running: \(described)")
        step("600 results once each; describe shows tasks \(partitions)")

        // 7. The killed broker returns; 100 more events, and still every result once.
        guard try cluster.start(killed, "restart") else { failed = true; return }
        step("broker \(killed) restarted")
        let third = cluster.sluice(["produce", "events", "-k", "|", "--acks", "all"], stdin: T.events(600..<700))
        check(third.succeeded, "produce 600..<700 after the restart: \(third)")
        guard third.succeeded else { return }
        checkExactlyOnce(readCopies(via: cluster.ids, expecting: 700, "after the restart"), 0..<700, "after broker \(killed) restarted")
        step("700 results once each")
        print("[cluster processor] \(steps.joined(separator: "; "))")
    }
}
