// Replication under faults, with real processes (issue 5, section 3).
//
// Three (or five) `sluiced` on loopback hold a topic `-p 3 -r 3`. A seeded schedule alternates chunks of
// unique values written with `sluice produce --acks all` and faults: SIGKILL the leader of a partition,
// SIGSTOP a leader until the next chunk has been written, restart a killed broker; never more than a
// minority down or paused at once. Consumers read in between. Then everything is healed and checked:
//
// - every acknowledged value is present, no value appears twice, no value appears that was never written;
// - the committed log never changes: any two consumes (of any replicas, at any time) agree on every
//   offset up to the smaller of their ends, and within one consume a partition's offsets increase;
// - after healing, each replica read on its own serves the same (offset, value) list, and the replicas'
//   segment files hold the same bytes — and still do after a clean stop of every broker.
//
// A failure message names the seed; `SLUICE_TEST_SEED=<seed>` replays the same schedule (the processes'
// timing still varies), and the brokers' logs and data are kept in the directory the message names.

import Foundation
import SluiceTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

// MARK: - The cluster

/// `size` brokers started as a user would, which the test can kill, restart, pause and resume. Keeps the
/// log of every broker process it ran, for failure messages.
///
/// Not thread-safe: one test drives it.
final class FaultCluster: @unchecked Sendable {
    let size: Int
    let directory = TemporaryDirectory("sluice-e2e-faults")
    let ports: [Int]
    private(set) var brokers: [Int: Sluiced] = [:]
    private(set) var paused: Set<Int> = []
    /// Every process started per broker id, oldest first (their logs outlive them).
    private var incarnations: [Int: [Sluiced]] = [:]
    /// Launches that never reached the listening line: what they printed.
    private var failedLaunches: [Int: [String]] = [:]

    /// Longest wait for every replica of every partition to hold the same bytes after healing.
    static let convergeTimeout: TimeInterval = 30

    init(size: Int) {
        precondition(size >= 1)
        self.size = size
        ports = (0..<size).map { _ in freeLoopbackPort() }
    }

    var ids: [Int] { Array(1...size) }
    var clusterText: String { ids.map { "\($0)@127.0.0.1:\(ports[$0 - 1])" }.joined(separator: ",") }
    func address(_ id: Int) -> String { "127.0.0.1:\(ports[id - 1])" }
    func dataDir(_ id: Int) -> String { directory.child("n\(id)") }

    /// Running and not paused: the brokers that answer.
    var answering: [Int] { brokers.keys.filter { !paused.contains($0) }.sorted() }
    /// Not running (killed, or never started).
    var down: [Int] { ids.filter { brokers[$0] == nil } }
    /// Brokers down or paused at most at once, so that a majority always answers.
    var faultsMax: Int { (size - 1) / 2 }
    var faulty: Int { down.count + paused.count }

    // MARK: Processes

    /// Starts broker `id`; false (with an issue) if it does not come up.
    @discardableResult
    func start(_ id: Int, _ context: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Bool {
        precondition(brokers[id] == nil, "broker \(id) is running")
        let launch = try Sluiced.launch(dataDir: dataDir(id), listen: address(id),
                                        extraArguments: ["--node-id", "\(id)", "--cluster", clusterText])
        switch launch {
        case .listening(let broker):
            brokers[id] = broker
            incarnations[id, default: []].append(broker)
            return true
        case .exited(let result):
            failedLaunches[id, default: []].append("\(result)")
            Issue.record("\(context): broker \(id) did not start: \(result)", sourceLocation: sourceLocation)
            return false
        }
    }

    /// SIGKILL (a paused broker dies as well).
    func crash(_ id: Int) {
        paused.remove(id)
        brokers.removeValue(forKey: id)?.crash()
    }

    /// SIGTERM; expects a clean stop. A paused broker is resumed first (SIGTERM waits for SIGCONT).
    func stop(_ id: Int) {
        resume(id)
        brokers.removeValue(forKey: id)?.stop()
    }

    func pause(_ id: Int) {
        guard let broker = brokers[id], !paused.contains(id) else { return }
        broker.pause()
        paused.insert(id)
    }

    func resume(_ id: Int) {
        guard let broker = brokers[id], paused.contains(id) else { return }
        broker.resume()
        paused.remove(id)
    }

    // MARK: The CLI

    /// `sluice ARGUMENTS --brokers <via>`; `via` defaults to every answering broker (a paused one
    /// would accept the connection and then say nothing).
    func sluice(_ arguments: [String], via: [Int]? = nil, stdin: [UInt8]? = nil,
                timeout: Duration = Sluiced.commandTimeout) -> CommandResult {
        let bootstrap = (via ?? answering).map(address).joined(separator: ",")
        return runCommand(Executables.sluice, arguments + ["--brokers", bootstrap], stdin: stdin, timeout: timeout)
    }

    /// Leader and replicas of each partition of `topic`, as the first answering broker sees them; nil if
    /// `topic describe` fails. A leader of -1 means that broker knows of no leader.
    func layout(_ topic: String, via: [Int]? = nil) -> [Int: PartitionLayout]? {
        let result = sluice(["topic", "describe", topic, "--json"], via: via, timeout: .seconds(20))
        guard result.succeeded,
              let value = try? JSONSerialization.jsonObject(with: Data(result.stdoutBytes)) else { return nil }
        var layout: [Int: PartitionLayout] = [:]
        for entry in JSONFields.partitions(value) {
            guard let partition = JSONFields.int(entry["partition"]) else { return nil }
            let replicas = ((entry["replicas"] as? [Any]) ?? []).compactMap { JSONFields.int($0).map(Int.init) }
            layout[Int(partition)] = PartitionLayout(leader: Int(JSONFields.int(entry["leader"]) ?? -1), replicas: replicas)
        }
        return layout
    }

    /// The leader of each partition of `topic` that an answering broker claims to be: a broker knows
    /// the leaders of the partitions it hosts only, so each is asked in turn.
    func leaders(_ topic: String) -> [Int: Int] {
        var leaders: [Int: Int] = [:]
        for id in answering {
            for (partition, entry) in layout(topic, via: [id]) ?? [:] where entry.leader == id { leaders[partition] = id }
        }
        return leaders
    }

    /// `consume TOPIC -e --json -p …` against broker `id` alone: what that replica serves, in the order
    /// printed; nil (and the result) when the command fails.
    func read(_ topic: String, from id: Int, partitions: [Int]) -> Result<[ConsumedRecord], ReadFailure> {
        let arguments = ["consume", topic, "-e", "--json", "--request-timeout-ms", "5000", "--from-connected-broker"]
            + partitions.sorted().flatMap { ["-p", "\($0)"] }
        let result = sluice(arguments, via: [id], timeout: .seconds(30))
        guard result.succeeded else { return .failure(ReadFailure(result: result)) }
        var records: [ConsumedRecord] = []
        for line in result.lines where !line.isEmpty {
            guard let record = ConsumedRecord(jsonLine: line) else {
                return .failure(ReadFailure(result: result, malformedLine: line))
            }
            records.append(record)
        }
        return .success(records)
    }

    // MARK: Files

    /// The bytes of every segment of `topic`-`partition` on broker `id`, in file-name order.
    func logBytes(_ id: Int, _ topic: String, _ partition: Int) -> [UInt8] {
        let path = dataDir(id) + "/\(topic)-\(partition)"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0.hasSuffix(".log") }.sorted()
        return names.flatMap { (try? [UInt8](Data(contentsOf: URL(fileURLWithPath: path + "/" + $0)))) ?? [] }
    }

    /// Polls until, for every partition, all its replicas' logs hold the same (non-empty) bytes; returns
    /// those bytes per partition, or nil after `timeout`.
    func replicasConverge(_ topic: String, replicas: [Int: [Int]], timeout: TimeInterval = convergeTimeout) -> [Int: [UInt8]]? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var converged: [Int: [UInt8]] = [:]
            for (partition, members) in replicas {
                let logs = members.map { logBytes($0, topic, partition) }
                guard let first = logs.first, !first.isEmpty, logs.allSatisfy({ $0 == first }) else { break }
                converged[partition] = first
            }
            if converged.count == replicas.count { return converged }
            usleep(50_000)
        }
        return nil
    }

    /// The last `lines` lines each broker process logged, oldest process first.
    func logTails(lines: Int = 12) -> String {
        var text = ""
        for id in ids {
            for (index, broker) in (incarnations[id] ?? []).enumerated() {
                let tail = broker.log.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines)
                text += "--- broker \(id), process \(index + 1):\n" + tail.joined(separator: "\n") + "\n"
            }
            for output in failedLaunches[id] ?? [] { text += "--- broker \(id), failed launch: \(output)\n" }
        }
        return text
    }

    /// Writes every broker process's whole log into the data directory (kept on failure).
    func saveLogs() {
        for id in ids {
            for (index, broker) in (incarnations[id] ?? []).enumerated() {
                _ = FileManager.default.createFile(atPath: directory.child("broker-\(id)-process-\(index + 1).log"),
                                               contents: Data(broker.log.utf8))
            }
        }
    }

    /// Stops every broker; removes the data unless `keep`.
    func shutdown(keep: Bool) {
        for id in paused.sorted() { resume(id) }
        for id in brokers.keys.sorted() { stop(id) }
        if keep { saveLogs() } else { directory.remove() }
    }
}

/// One partition in `topic describe --json`.
struct PartitionLayout: Equatable {
    var leader: Int
    var replicas: [Int]
}

/// A `consume` that did not run to its end.
struct ReadFailure: Error, CustomStringConvertible {
    var result: CommandResult
    var malformedLine: String? = nil
    var description: String { malformedLine.map { "malformed line '\($0)' in \(result)" } ?? "\(result)" }
}

/// One record as `consume --json` printed it.
struct ConsumedRecord: Equatable, CustomStringConvertible {
    var partition: Int
    var offset: Int64
    var value: String

    init(partition: Int, offset: Int64, value: String) {
        self.partition = partition
        self.offset = offset
        self.value = value
    }

    /// `{"topic":"t","partition":2,"offset":7,…,"value":"v-1-3",…}`; nil if a field is missing.
    init?(jsonLine: String) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(jsonLine.utf8)) as? [String: Any],
              let partition = JSONFields.int(object["partition"]), let offset = JSONFields.int(object["offset"]),
              let value = object["value"] as? String else { return nil }
        self.init(partition: Int(partition), offset: offset, value: value)
    }

    var description: String { "p\(partition)@\(offset)=\(value)" }
}

// MARK: - The checks

/// What consumers have seen so far, and the rules each new consume must keep with it:
///
/// - within one consume, a partition's offsets strictly increase;
/// - the committed log never changes: two consumes agree on every offset up to the smaller of their
///   ends — the same value at the same offset, and an offset one of them passed over (a leader's no-op
///   entry) the other passes over too;
/// - a value sits at one (partition, offset) only: never twice in a log, never moved.
///
/// Every consume starts at the earliest offset (no retention here), so each is a prefix of the log.
struct Observations {
    /// Per partition, offset → value over everything seen.
    private(set) var logs: [Int: [Int64: String]] = [:]
    /// Per partition, the highest offset any consume reached.
    private(set) var ends: [Int: Int64] = [:]
    /// Where each value was seen.
    private(set) var places: [String: (partition: Int, offset: Int64)] = [:]

    /// Problems reported per consume at most (one bug tends to repeat on every later record).
    static let problemsMax = 8

    /// Folds one consume's records in; returns the violations (empty when all is well).
    mutating func fold(_ records: [ConsumedRecord], source: String) -> [String] {
        var problems: [String] = []
        func note(_ text: @autoclosure () -> String) {
            if problems.count < Self.problemsMax { problems.append("\(source): \(text())") }
        }
        var byPartition: [Int: [ConsumedRecord]] = [:]
        for record in records { byPartition[record.partition, default: []].append(record) }
        for (partition, list) in byPartition.sorted(by: { $0.key < $1.key }) {
            for (before, after) in zip(list, list.dropFirst()) where after.offset <= before.offset {
                note("partition \(partition): offset \(after.offset) printed after \(before.offset)")
            }
            let known = logs[partition] ?? [:]
            let knownEnd = ends[partition] ?? -1
            let readEnd = list.map(\.offset).max() ?? -1
            var read: [Int64: String] = [:]
            for record in list where read[record.offset] == nil { read[record.offset] = record.value }
            for record in list where record.offset <= knownEnd {
                if let earlier = known[record.offset] {
                    if earlier != record.value {
                        note("partition \(partition) offset \(record.offset) holds '\(record.value)', earlier '\(earlier)'")
                    }
                } else {
                    note("partition \(partition) offset \(record.offset) holds '\(record.value)'; an earlier consume that reached offset \(knownEnd) passed over it")
                }
            }
            for (offset, value) in known.sorted(by: { $0.key < $1.key }) where offset <= readEnd && read[offset] == nil {
                note("partition \(partition) offset \(offset) held '\(value)' in an earlier consume; this one reached offset \(readEnd) and passed over it")
            }
            logs[partition, default: [:]].merge(read) { earlier, _ in earlier }
            ends[partition] = max(knownEnd, readEnd)
        }
        for record in records {
            if let place = places[record.value] {
                if place.partition != record.partition || place.offset != record.offset {
                    note("'\(record.value)' at partition \(record.partition) offset \(record.offset), and at partition \(place.partition) offset \(place.offset)")
                }
            } else {
                places[record.value] = (record.partition, record.offset)
            }
        }
        return problems
    }

    /// After healing: every acknowledged value was seen, and nothing that was never written.
    func completeness(acknowledged: Set<String>, written: Set<String>) -> [String] {
        var problems: [String] = []
        let missing = acknowledged.filter { places[$0] == nil }.sorted()
        if !missing.isEmpty {
            problems.append("\(missing.count) acknowledged values missing, e.g. \(missing.prefix(8).joined(separator: ", "))")
        }
        let phantoms = places.keys.filter { !written.contains($0) }.sorted()
        if !phantoms.isEmpty {
            problems.append("\(phantoms.count) values that were never written, e.g. \(phantoms.prefix(8).joined(separator: ", "))")
        }
        return problems
    }
}

/// Log bytes read before and after a clean stop agree: what every replica held when they had converged
/// is still the start of each replica's log, and of two replicas' logs the shorter starts the longer.
/// (A clean stop hands leadership on, and the new leader's no-op entry need not reach a broker that has
/// already stopped, so the logs may end differently.)
func stoppedLogProblems(converged: [UInt8], stopped: [Int: [UInt8]], partition: Int) -> [String] {
    var problems: [String] = []
    for (id, bytes) in stopped.sorted(by: { $0.key < $1.key }) where !bytes.starts(with: converged) {
        let at = firstDifference(bytes, converged)
        problems.append("partition \(partition) on broker \(id): \(bytes.count) bytes after the stop, differing from the \(converged.count) converged bytes at byte \(at)")
    }
    let sorted = stopped.sorted { $0.key < $1.key }
    for (a, b) in zip(sorted, sorted.dropFirst()) {
        let (short, long) = a.value.count <= b.value.count ? (a, b) : (b, a)
        if !long.value.starts(with: short.value) {
            let at = firstDifference(short.value, long.value)
            problems.append("partition \(partition): brokers \(short.key) and \(long.key) differ at byte \(at) (\(short.value.count) and \(long.value.count) bytes) after the stop")
        }
    }
    return problems
}

/// The first index where `a` and `b` differ, or the shorter one's length.
func firstDifference(_ a: [UInt8], _ b: [UInt8]) -> Int {
    zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, b.count)
}

/// The lines of a command's stderr that say what went wrong, for one-line notes.
func errorLines(_ result: CommandResult) -> String {
    let all = result.stderr.split(separator: "\n")
    let lines = all.filter { $0.hasPrefix("Error:") } + all.filter { !$0.hasPrefix("Error:") && $0.localizedCaseInsensitiveContains("error") }
    return String((lines.isEmpty ? [Substring(result.description)] : lines).joined(separator: " | ").prefix(500))
}

// MARK: - The scenario

/// One seeded run: chunks of values, faults in between, then heal and check.
final class FaultScenario {
    let cluster: FaultCluster
    var random: SeededRandom
    let rounds: Int
    let chunkValues: Int
    let topic = "t"
    let partitions = 3

    private(set) var written: Set<String> = []
    private(set) var acknowledged: Set<String> = []
    private var observations = Observations()
    /// What happened, one line per step, for failure messages.
    private var history: [String] = []
    /// Brokers the current round paused; resumed once the next chunk has been written.
    private var pausedThisRound: [Int] = []
    private var replicas: [Int: [Int]] = [:]
    private(set) var failed = false

    /// After SIGSTOP of a leader, time for the others to elect a new one before the next chunk: a client
    /// that still connects to the paused broker waits out its 10 s handshake timeout, which would blow
    /// the run time. The stale leader still resumes into a newer term, which is the case under test.
    static let pauseSettleSeconds: TimeInterval = 1.5

    init(size: Int, rounds: Int, chunkValues: Int = 40) {
        cluster = FaultCluster(size: size)
        random = SeededRandom.fromEnvironment()
        self.rounds = rounds
        self.chunkValues = chunkValues
    }

    var seedText: String { "seed \(random.seed) (replay: SLUICE_TEST_SEED=\(random.seed))" }

    private func log(_ line: String) {
        history.append(line)
        print("[faults \(cluster.size) brokers, seed \(random.seed)] \(line)")
    }

    /// Records an issue naming the seed, the steps so far and the brokers' last log lines.
    func check(_ condition: Bool, _ message: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard !condition else { return }
        failed = true
        let text = "\(seedText): \(message())\nsteps:\n  \(history.suffix(40).joined(separator: "\n  "))\n"
            + "data and full logs kept in \(cluster.directory.path)\n\(cluster.logTails())"
        Issue.record(Comment(rawValue: text), sourceLocation: sourceLocation)
    }

    func run() throws {
        defer { cluster.shutdown(keep: failed) }
        log("start \(cluster.size) brokers, topic \(topic) -p \(partitions) -r 3, \(rounds) rounds of \(chunkValues) values")
        for id in cluster.ids { guard try cluster.start(id, seedText) else { failed = true; return } }
        let created = cluster.sluice(["topic", "create", topic, "-p", "\(partitions)", "-r", "3"])
        check(created.succeeded, "topic create: \(created)")
        guard created.succeeded, let layout = cluster.layout(topic), layout.count == partitions else {
            check(false, "topic describe after create failed")
            return
        }
        replicas = layout.mapValues(\.replicas)
        log("replicas per partition: \(replicas.sorted { $0.key < $1.key }.map { "p\($0.key) \($0.value)" }.joined(separator: ", "))")
        check(replicas.values.allSatisfy { Set($0).count == 3 }, "replica sets \(replicas)")

        for round in 0..<rounds {
            produceChunk(round)
            consumeSomewhere("round \(round)")
            for id in pausedThisRound { cluster.resume(id); log("SIGCONT broker \(id)") }
            pausedThisRound = []
            try injectFault()
        }
        try healAndCheck()
    }

    // MARK: Steps

    private func produceChunk(_ round: Int) {
        let values = (0..<chunkValues).map { "v-\(round)-\($0)" }
        written.formUnion(values)
        let started = Date()
        let result = cluster.sluice(["produce", topic, "--acks", "all"], stdin: Array(values.map { $0 + "\n" }.joined().utf8))
        let seconds = String(format: "%.1f", Date().timeIntervalSince(started))
        if result.succeeded {
            acknowledged.formUnion(values)
            log("round \(round): chunk acknowledged in \(seconds) s (down \(cluster.down), paused \(cluster.paused.sorted()))")
        } else {
            // Unacknowledged: its values may or may not be stored, but never twice (checked after healing).
            // Refusing it at all is a failure of its own: a majority of every partition's replicas answers,
            // and the producer's retries outlast an election.
            let note = "round \(round): chunk NOT acknowledged after \(seconds) s (down \(cluster.down), paused \(cluster.paused.sorted())): \(errorLines(result))"
            log(note)
            check(false, "availability: with at most a minority down or paused, acks=all must succeed; \(note)")
        }
    }

    /// A consume of every partition a random answering broker hosts, checked against all seen before.
    private func consumeSomewhere(_ when: String) {
        guard let id = cluster.answering.randomElement(using: &random) else { return }
        let hosted = replicas.filter { $0.value.contains(id) }.keys.sorted()
        switch cluster.read(topic, from: id, partitions: hosted) {
        case .success(let records):
            let problems = observations.fold(records, source: "\(when), consume of broker \(id)")
            log("\(when): consume of broker \(id) saw \(records.count) records")
            check(problems.isEmpty, problems.joined(separator: "\n"))
        case .failure(let failure):
            // Reads during a fault may fail (a broker just restarted, an election under way): noted, not failed.
            log("\(when): consume of broker \(id) failed: \(errorLines(failure.result))")
        }
    }

    private enum FaultKind: CaseIterable { case killLeader, pauseLeader, restart }

    private func injectFault() throws {
        var kinds: [FaultKind] = []
        if cluster.faulty < cluster.faultsMax { kinds += [.killLeader, .pauseLeader] }
        if !cluster.down.isEmpty { kinds.append(.restart) }
        guard let kind = kinds.randomElement(using: &random) else { return }
        switch kind {
        case .restart:
            guard let id = cluster.down.randomElement(using: &random) else { return }
            let started = Date()
            try cluster.start(id, seedText)
            log("restart broker \(id) (\(String(format: "%.1f", Date().timeIntervalSince(started))) s to listen)")
        case .killLeader:
            guard let (partition, leader) = leaderOfRandomPartition() else { return }
            cluster.crash(leader)
            log("SIGKILL broker \(leader) (leader of partition \(partition.map(String.init) ?? "?"))")
        case .pauseLeader:
            guard let (partition, leader) = leaderOfRandomPartition() else { return }
            cluster.pause(leader)
            pausedThisRound.append(leader)
            log("SIGSTOP broker \(leader) (leader of partition \(partition.map(String.init) ?? "?"))")
            Thread.sleep(forTimeInterval: Self.pauseSettleSeconds)
        }
    }

    /// Whether broker `id` may go down or pause now: every partition keeps a majority of its replicas
    /// answering. A minority of the brokers is not enough with 5 brokers and 3 replicas: two brokers
    /// down can be two of one partition's three.
    private func mayFail(_ id: Int) -> Bool {
        let faulty = Set(cluster.down).union(cluster.paused).union([id])
        return replicas.values.allSatisfy { members in members.filter { !faulty.contains($0) }.count * 2 > members.count }
    }

    /// The leader of a random partition, else of another partition, else a random answering broker —
    /// only among brokers that `mayFail`; nil when none may.
    private func leaderOfRandomPartition() -> (partition: Int?, broker: Int)? {
        let leaders = cluster.leaders(topic).filter { mayFail($0.value) }
        let partition = Int.random(in: 0..<partitions, using: &random)
        if let leader = leaders[partition] { return (partition, leader) }
        if let other = leaders.keys.sorted().randomElement(using: &random), let leader = leaders[other] { return (other, leader) }
        return cluster.answering.filter(mayFail).randomElement(using: &random).map { (nil, $0) }
    }

    // MARK: Heal and check

    private func healAndCheck() throws {
        for id in cluster.paused.sorted() { cluster.resume(id); log("heal: SIGCONT broker \(id)") }
        for id in cluster.down { try cluster.start(id, seedText); log("heal: restart broker \(id)") }
        let started = Date()
        let converged = cluster.replicasConverge(topic, replicas: replicas)
        log("heal: replicas \(converged == nil ? "did NOT converge" : "converged") in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
        check(converged != nil, "replica logs still differ \(FaultCluster.convergeTimeout) s after healing")

        let reads = readEveryReplica()
        for (id, records) in reads.sorted(by: { $0.key < $1.key }) {
            let problems = observations.fold(records, source: "after healing, consume of broker \(id)")
            check(problems.isEmpty, problems.joined(separator: "\n"))
        }
        let problems = observations.completeness(acknowledged: acknowledged, written: written)
        check(problems.isEmpty, problems.joined(separator: "\n"))
        log("heal: \(acknowledged.count) of \(written.count) values acknowledged, \(observations.places.count) stored")

        for id in cluster.ids { cluster.stop(id) }
        guard let converged else { return }
        for partition in converged.keys.sorted() {
            let members = replicas[partition] ?? []
            let stopped = Dictionary(uniqueKeysWithValues: members.map { ($0, cluster.logBytes($0, topic, partition)) })
            let problems = stoppedLogProblems(converged: converged[partition] ?? [], stopped: stopped, partition: partition)
            check(problems.isEmpty, problems.joined(separator: "\n"))
            let sizes = Set(stopped.values.map(\.count))
            log("after a clean stop, partition \(partition): replicas \(sizes.count == 1 ? "identical" : "differ in length only"), \(sizes.sorted()) bytes")
        }
    }

    /// Reads every broker's replicas on their own; polls (bounded) until the replicas of each partition
    /// serve the same records, since a follower learns the high watermark a heartbeat after the leader.
    private func readEveryReplica() -> [Int: [ConsumedRecord]] {
        let deadline = Date().addingTimeInterval(10)
        var reads: [Int: [ConsumedRecord]] = [:]
        while true {
            reads = [:]
            for id in cluster.ids {
                let hosted = replicas.filter { $0.value.contains(id) }.keys.sorted()
                switch cluster.read(topic, from: id, partitions: hosted) {
                case .success(let records): reads[id] = records
                case .failure(let failure): if Date() >= deadline { check(false, "after healing, consume of broker \(id): \(failure)") }
                }
            }
            let differing = replicasDiffer(reads)
            if differing.isEmpty && reads.count == cluster.size { return reads }
            if Date() >= deadline {
                check(differing.isEmpty, "after healing, replicas serve different records:\n\(differing.joined(separator: "\n"))")
                return reads
            }
            usleep(200_000)
        }
    }

    /// Per partition, whether every replica's read holds the same (offset, value) list.
    private func replicasDiffer(_ reads: [Int: [ConsumedRecord]]) -> [String] {
        var problems: [String] = []
        for (partition, members) in replicas.sorted(by: { $0.key < $1.key }) {
            let lists = members.compactMap { id in reads[id].map { (id, $0.filter { $0.partition == partition }) } }
            guard let first = lists.first else { continue }
            for (id, list) in lists.dropFirst() where list != first.1 {
                problems.append("partition \(partition): broker \(first.0) serves \(first.1.count) records up to offset \(first.1.last?.offset ?? -1), broker \(id) \(list.count) up to \(list.last?.offset ?? -1)")
            }
        }
        return problems
    }
}

// MARK: - The tests

extension EndToEnd {
    @Suite("replication under faults")
    struct ReplicationFaultTests {
        @Test("3 brokers: leaders SIGKILLed and SIGSTOPped under acks=all writes lose nothing, duplicate nothing, and the replicas agree")
        func threeBrokers() throws {
            guard executablesPresent() else { return }
            try FaultScenario(size: 3, rounds: 8).run()
        }

        @Test("5 brokers: the same with up to two brokers down or paused at once")
        func fiveBrokers() throws {
            guard executablesPresent() else { return }
            try FaultScenario(size: 5, rounds: 6).run()
        }

        @Test("3 brokers: one down, writes go on; two down, acks=all is refused with a clear error; restarted, they catch up")
        func majorityLoss() throws {
            guard executablesPresent() else { return }
            try MajorityLossScenario().run()
        }
    }
}

/// With two of three brokers down no partition has a quorum: `acks=all` must fail (not hang, not
/// succeed), and once the brokers are back the cluster takes writes again and every replica catches up.
final class MajorityLossScenario {
    let cluster = FaultCluster(size: 3)
    let topic = "q"
    private var failed = false

    static func values(_ prefix: String, _ count: Int = 30) -> [String] { (0..<count).map { "\(prefix)-\($0)" } }
    static func bytes(_ values: [String]) -> [UInt8] { Array(values.map { $0 + "\n" }.joined().utf8) }

    func check(_ condition: Bool, _ message: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard !condition else { return }
        failed = true
        Issue.record(Comment(rawValue: "\(message())\ndata and full logs kept in \(cluster.directory.path)\n\(cluster.logTails())"),
                     sourceLocation: sourceLocation)
    }

    func produce(_ values: [String], timeout: Duration = Sluiced.commandTimeout) -> CommandResult {
        cluster.sluice(["produce", topic, "--acks", "all"], stdin: Self.bytes(values), timeout: timeout)
    }

    func run() throws {
        defer { cluster.shutdown(keep: failed) }
        for id in cluster.ids { guard try cluster.start(id, "majority loss") else { failed = true; return } }
        let created = cluster.sluice(["topic", "create", topic, "-p", "3", "-r", "3"])
        check(created.succeeded, "\(created)")
        guard created.succeeded, let layout = cluster.layout(topic) else { return check(false, "no layout of \(topic)") }

        let allUp = Self.values("all-up")
        let first = produce(allUp)
        check(first.succeeded, "with every broker up: \(first)")

        cluster.crash(1)
        let oneDown = Self.values("one-down")
        let second = produce(oneDown)
        check(second.succeeded, "with one of three brokers down: \(second)")

        cluster.crash(2)
        let twoDown = Self.values("two-down")
        let started = Date()
        let refused = produce(twoDown, timeout: .seconds(45))
        print("[majority loss] acks=all with two of three down: \(refused.failedCleanly ? "refused" : "NOT refused") after \(String(format: "%.1f", Date().timeIntervalSince(started))) s: \(errorLines(refused))")
        check(refused.failedCleanly, "acks=all with two of three brokers down must fail with an error: \(refused)")
        let message = refused.stderr.lowercased()
        check(message.contains("not_enough_replicas") || message.contains("no leader"),
              "the error should say not_enough_replicas or that there is no leader: \(refused)")

        for id in [1, 2] { try cluster.start(id, "majority loss") }
        let healed = Self.values("healed")
        let third = produce(healed)
        check(third.succeeded, "after restarting both brokers: \(third)")

        let replicas = layout.mapValues(\.replicas)
        check(cluster.replicasConverge(topic, replicas: replicas) != nil, "the restarted brokers did not catch up")
        let acknowledged = Set((first.succeeded ? allUp : []) + (second.succeeded ? oneDown : []) + (third.succeeded ? healed : []))
        var observations = Observations()
        for id in cluster.ids {
            // A follower learns the high watermark a heartbeat after the leader: poll, bounded.
            let deadline = Date().addingTimeInterval(10)
            var records: [ConsumedRecord] = []
            var missing: [String] = []
            repeat {
                switch cluster.read(topic, from: id, partitions: [0, 1, 2]) {
                case .success(let read): records = read
                case .failure(let failure): check(Date() < deadline, "consume of broker \(id): \(failure)")
                }
                let values = Set(records.map(\.value))
                missing = acknowledged.filter { !values.contains($0) }.sorted()
                if !missing.isEmpty { usleep(200_000) }
            } while !missing.isEmpty && Date() < deadline
            check(missing.isEmpty, "broker \(id) lacks \(missing.count) acknowledged values, e.g. \(missing.prefix(5))")
            let problems = observations.fold(records, source: "consume of broker \(id)")
            check(problems.isEmpty, problems.joined(separator: "\n"))
        }
        let problems = observations.completeness(acknowledged: acknowledged, written: Set(allUp + oneDown + twoDown + healed))
        check(problems.isEmpty, problems.joined(separator: "\n"))
        let stored = twoDown.filter { observations.places[$0] != nil }.count
        print("[majority loss] of the refused chunk, \(stored) of \(twoDown.count) values were stored anyway (allowed, once each)")
    }
}
