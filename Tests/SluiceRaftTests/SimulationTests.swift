import SluiceRaft
import SluiceTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Deterministic simulation: 3- and 5-node groups in one process under a seeded scheduler that drops,
/// delays, duplicates and reorders messages, partitions and heals the network, crashes and restarts
/// nodes (a restart keeps only what its disk got), compacts logs and moves leadership — checking Raft's
/// safety properties after every step, then liveness once the faults stop.
///
/// Each seed is one whole run. The first seed is `SLUICE_TEST_SEED` when set (then only that seed runs),
/// otherwise fresh; every failure names its seed: `SLUICE_TEST_SEED=<seed> swift test --filter
/// SluiceRaftTests.SimulationTests` replays it exactly.
@Suite struct SimulationTests {
    /// Seeds per test (two tests, one per group size, run in parallel).
    static let seedsCount = 1000
    /// Scheduler steps with faults per seed.
    static let faultStepsMax = 400
    /// Fault-free rounds allowed for a leader to emerge and a proposal to commit everywhere.
    static let livenessRoundsMax = 300

    static func seeds(salt: UInt64) -> [UInt64] {
        if let text = getenv("SLUICE_TEST_SEED").map({ String(cString: $0) }), let seed = UInt64(text) {
            return [seed]
        }
        let base = SeededRandom.fromEnvironment().seed &+ salt
        return (0..<UInt64(seedsCount)).map { base &+ $0 &* 0x9E37_79B9 }
    }

    @Test func threeNodes() { runSeeds(size: 3, salt: 0) }
    @Test func fiveNodes() { runSeeds(size: 5, salt: 1) }

    func runSeeds(size: Int, salt: UInt64) {
        let seeds = Self.seeds(salt: salt)
        var leaders = 0
        var snapshots = 0
        var committed = 0
        for seed in seeds {
            var simulation = Simulation(size: size, seed: seed)
            if let failure = simulation.run() {
                Issue.record("""
                    raft simulation, \(size) nodes, seed \(seed): \(failure)
                    replay: SLUICE_TEST_SEED=\(seed) swift test --filter SluiceRaftTests.SimulationTests
                    """)
                return
            }
            leaders += simulation.checker.leadersCount
            snapshots += simulation.checker.snapshotsRestored
            committed += simulation.checker.committedCount
        }
        // The faults must actually bite: many elections, commits and snapshot installs across the run.
        if seeds.count > 100 {
            #expect(leaders > seeds.count + seeds.count / 10, "\(size) nodes: only \(leaders) leaders over \(seeds.count) seeds")
            #expect(snapshots > seeds.count / 50, "\(size) nodes: only \(snapshots) snapshot installs")
            #expect(committed > 3 * seeds.count, "\(size) nodes: only \(committed) committed entries")
        }
        if getenv("SLUICE_RAFT_STATS") != nil {
            print("raft simulation \(size) nodes: \(seeds.count) seeds, \(leaders) leaders, \(snapshots) snapshots, \(committed) committed")
        }
    }
}

/// One seeded run.
struct Simulation {
    let size: Int
    let seed: UInt64
    var rng: SeededRandom
    let cluster: Cluster
    let checker: SafetyChecker
    var proposals = 0

    init(size: Int, seed: UInt64) {
        self.size = size
        self.seed = seed
        rng = SeededRandom(seed: seed)
        var configRNG = SeededRandom(seed: seed ^ 0xC0FF_EE00)
        let maxEntries = configRNG.int(1...8)
        let heartbeat = configRNG.int(1...2)
        cluster = Cluster(size: size, seed: seed) { id, peers in
            RaftConfig(
                id: id, peers: peers, electionTimeoutTicks: 8, heartbeatTicks: heartbeat,
                maxEntriesPerAppend: maxEntries)
        }
        checker = SafetyChecker(cluster: cluster)
        cluster.observer = checker
        cluster.autoReady = false
        cluster.start()
    }

    /// Returns the first violation, nil if the run was clean.
    mutating func run() -> String? {
        for step in 0..<SimulationTests.faultStepsMax {
            let touched = faultStep()
            checker.check(touched: touched)
            if let violation = checker.violation { return "step \(step): \(violation)" }
        }
        return checkLiveness()
    }

    var live: [NodeID] { cluster.ids.filter { cluster.nodes[$0] != nil } }
    var down: [NodeID] { cluster.ids.filter { cluster.nodes[$0] == nil } }

    /// One scheduler decision; returns the node whose state it touched (nil: possibly several).
    mutating func faultStep() -> NodeID? {
        let roll = rng.int(0...999)
        // Network and disks are fast next to the clock: a round trip takes well under an election timeout.
        switch roll {
        case 0..<400: return deliverSome()
        case 400..<550:
            // The driver gets round to a node's Ready; until then a crash loses it.
            let id = cluster.ids[rng.int(0...size - 1)]
            cluster.processReady(id)
            return id
        case 550..<650:
            for id in cluster.ids { cluster.processReady(id) }
            return nil
        case 650..<690:
            // Clocks drift: one node's tick.
            let id = cluster.ids[rng.int(0...size - 1)]
            cluster.tick(id)
            return id
        case 690..<730:
            for id in cluster.ids { cluster.tick(id) }
            return nil
        case 730..<880: return propose()
        case 880..<900: randomPartition()
        case 900..<920: cluster.heal()
        case 920..<935:
            // Keep a majority up most of the time, but not always.
            if let id = live.randomElement(using: &rng), live.count > size / 2 || rng.chance(0.2) { cluster.crash(id) }
        case 935..<955:
            if let id = down.randomElement(using: &rng) {
                cluster.restart(id)
                return id
            }
        case 955..<980:
            if let id = live.randomElement(using: &rng) { cluster.compact(id) }
        default:
            return transfer()
        }
        return nil
    }

    /// Delivers a random number of random in-flight messages.
    mutating func deliverSome() -> NodeID? {
        guard !cluster.inFlight.isEmpty else { return nil }
        for _ in 0..<rng.int(1...cluster.inFlight.count) {
            if let to = deliverOne() { checker.check(touched: to) }
        }
        return nil
    }

    /// Delivers a random in-flight message (reordering and delay), or drops or duplicates it.
    mutating func deliverOne() -> NodeID? {
        guard !cluster.inFlight.isEmpty else { return nil }
        let at = rng.int(0...cluster.inFlight.count - 1)
        let message = cluster.inFlight[at]
        let fate = rng.int(0...99)
        if fate < 10 {
            cluster.inFlight.remove(at: at)  // dropped
            return nil
        }
        if fate >= 95 {
            cluster.deliver(message)  // duplicated: delivered now and again later
        } else {
            cluster.inFlight.remove(at: at)
            cluster.deliver(message)
        }
        return message.to
    }

    mutating func propose() -> NodeID? {
        guard let leader = live.first(where: { cluster.nodes[$0]?.role == .leader }), let node = cluster.nodes[leader] else {
            return nil
        }
        proposals += 1
        _ = try? node.propose(Array("s\(seed)-\(proposals)".utf8))
        return leader
    }

    mutating func randomPartition() {
        var left: [NodeID] = []
        var right: [NodeID] = []
        for id in cluster.ids {
            if rng.chance(0.5) { left.append(id) } else { right.append(id) }
        }
        cluster.partition([left, right])
    }

    mutating func transfer() -> NodeID? {
        guard let leader = live.first(where: { cluster.nodes[$0]?.role == .leader }), let node = cluster.nodes[leader] else {
            return nil
        }
        let target = cluster.ids[rng.int(0...size - 1)]
        try? node.transferLeadership(to: target)
        return leader
    }

    /// Heals everything, restarts every node, then without faults: a leader must emerge and a proposal
    /// must commit on every node.
    mutating func checkLiveness() -> String? {
        cluster.heal()
        cluster.autoReady = true
        for id in cluster.ids { cluster.processReady(id) }
        for id in down { cluster.restart(id) }
        let marker = Array("final-\(seed)".utf8)
        var proposedAt: Int?
        for round in 0..<Simulation.livenessRounds {
            for id in cluster.ids { cluster.tick(id) }
            cluster.deliverAll()
            checker.check(touched: nil)
            if let violation = checker.violation { return "liveness round \(round): \(violation)" }
            if proposedAt == nil, let leader = cluster.ids.first(where: { cluster.nodes[$0]?.role == .leader }),
                let node = cluster.nodes[leader], (try? node.propose(marker)) != nil
            {
                cluster.processReady(leader)
                proposedAt = round
            }
            if proposedAt != nil, cluster.ids.allSatisfy({ cluster.apps[$0]?.values.last == marker }) { return nil }
        }
        let states = cluster.ids.map { id in
            cluster.nodes[id].map { "\(id): \($0.role) term \($0.term) commit \($0.commitIndex) last \($0.lastIndex)" }
                ?? "\(id): down"
        }
        return "no progress after \(Simulation.livenessRounds) fault-free rounds "
            + "(proposed: \(proposedAt.map { "round \($0)" } ?? "never")); \(states.joined(separator: ", "))"
    }

    static var livenessRounds: Int { SimulationTests.livenessRoundsMax }
}
