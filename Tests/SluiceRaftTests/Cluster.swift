import SluiceRaft
import SluiceTestSupport

/// The application each node runs: the list of non-empty payloads applied, in order.
struct AppState: Equatable {
    var appliedIndex: UInt64 = 0
    var values: [[UInt8]] = []

    /// Snapshot bytes: each value as a 4-byte big-endian length and its bytes.
    func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        for value in values {
            let n = UInt32(value.count)
            bytes += [UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8),
                UInt8(truncatingIfNeeded: n)]
            bytes += value
        }
        return bytes
    }

    static func decoded(_ bytes: [UInt8], appliedIndex: UInt64) -> AppState {
        var state = AppState(appliedIndex: appliedIndex)
        var at = 0
        while at + 4 <= bytes.count {
            let n = bytes[at..<at + 4].reduce(0) { $0 << 8 | Int($1) }
            at += 4
            state.values.append(Array(bytes[at..<min(at + n, bytes.count)]))
            at += n
        }
        return state
    }
}

/// What the cluster tells an observer (the simulation's invariant checker).
protocol ClusterObserver: AnyObject {
    func applying(_ entry: Entry, on node: NodeID, after appliedIndex: UInt64)
    func restoredSnapshot(_ snapshot: SnapshotMetadata, on node: NodeID)
    func restarted(_ node: NodeID, persisted: HardState)
}

/// Nodes of one group in one process, with their "disks" (what survives a crash), an in-flight message
/// list and network partitions. Every node's Ready is carried out at once, in the documented order,
/// right after the event that produced it; a crash loses exactly what was not yet handed to its disk.
final class Cluster {
    let ids: [NodeID]
    var config: (NodeID) -> RaftConfig
    let seed: UInt64
    var disks: [NodeID: MemoryStorage] = [:]
    var nodes: [NodeID: RaftNode] = [:]
    var apps: [NodeID: AppState] = [:]
    var incarnations: [NodeID: UInt64] = [:]
    /// In-flight messages, oldest first.
    var inFlight: [Message] = []
    /// Partition group per node: nodes talk only within a group.
    var groups: [NodeID: Int] = [:]
    /// Append rejections each node has sent (fast back-off checks).
    var rejectsSent: [NodeID: Int] = [:]
    weak var observer: ClusterObserver?
    /// Carry out each Ready right after the event that produced it. The simulation turns this off and
    /// schedules Ready processing itself, so a crash can catch a node with work not yet on its disk.
    var autoReady = true

    init(size: Int, seed: UInt64, config: @escaping (NodeID, [NodeID]) -> RaftConfig) {
        let ids = (1...UInt64(size)).map { $0 }
        self.ids = ids
        self.seed = seed
        self.config = { config($0, ids) }
        for id in ids {
            disks[id] = MemoryStorage()
            groups[id] = 0
        }
    }

    func start() {
        for id in ids where nodes[id] == nil { restart(id) }
    }

    func canTalk(_ a: NodeID, _ b: NodeID) -> Bool { groups[a] == groups[b] }

    /// Carries out a node's Ready: persist (snapshot, entries, hard state), send, apply, advance.
    func processReady(_ id: NodeID) {
        guard let node = nodes[id], let disk = disks[id] else { return }
        while node.hasReady {
            let ready = node.ready()
            if let snap = ready.snapshot { disk.applySnapshot(snap) }
            disk.append(ready.entries)
            if let state = ready.hardState { disk.setHardState(state) }
            for message in ready.messages {
                if message.kind == .appendResponse && message.reject { rejectsSent[id, default: 0] += 1 }
                inFlight.append(message)
            }
            if let snap = ready.snapshot {
                apps[id] = AppState.decoded(snap.data, appliedIndex: snap.metadata.index)
                observer?.restoredSnapshot(snap.metadata, on: id)
            }
            for entry in ready.committedEntries { apply(entry, on: id) }
            node.advance()
        }
    }

    func apply(_ entry: Entry, on id: NodeID) {
        var app = apps[id] ?? AppState()
        observer?.applying(entry, on: id, after: app.appliedIndex)
        app.appliedIndex = entry.index
        if !entry.payload.isEmpty { app.values.append(entry.payload) }
        apps[id] = app
    }

    /// Delivers one message if the network and the recipient allow; returns whether it was stepped.
    @discardableResult
    func deliver(_ message: Message) -> Bool {
        guard canTalk(message.from, message.to), let node = nodes[message.to] else { return false }
        node.step(message)
        if autoReady { processReady(message.to) }
        return true
    }

    /// Delivers messages, oldest first, until none match `filter` (bounded).
    func deliverAll(where filter: (Message) -> Bool = { _ in true }) {
        var budget = 100_000
        while budget > 0, let at = inFlight.firstIndex(where: filter) {
            deliver(inFlight.remove(at: at))
            budget -= 1
        }
    }

    func tick(_ id: NodeID) {
        guard let node = nodes[id] else { return }
        node.tick()
        if autoReady { processReady(id) }
    }

    func crash(_ id: NodeID) {
        nodes[id] = nil
        apps[id] = nil
    }

    /// Starts a node from its disk alone, as after a process restart.
    func restart(_ id: NodeID) {
        guard let disk = disks[id] else { return }
        let incarnation = incarnations[id, default: 0] + 1
        incarnations[id] = incarnation
        let random = SeededRandom(seed: seed &+ id &* 0x1_0000 &+ incarnation)
        nodes[id] = RaftNode(config: config(id), storage: disk, random: random)
        let snap = disk.snapshot()
        apps[id] = AppState.decoded(snap.data, appliedIndex: snap.metadata.index)
        observer?.restarted(id, persisted: disk.initialState())
        if autoReady { processReady(id) }
    }

    /// Compacts a node's disk up to what its application has applied (retention).
    func compact(_ id: NodeID) {
        guard let disk = disks[id], let app = apps[id], app.appliedIndex + 1 > disk.firstIndex else { return }
        disk.compact(upTo: app.appliedIndex, data: app.encoded())
    }

    func partition(_ parts: [[NodeID]]) {
        for id in ids { groups[id] = -Int(id) }  // unlisted nodes are isolated
        for (group, members) in parts.enumerated() {
            for id in members { groups[id] = group }
        }
    }

    func heal() {
        for id in ids { groups[id] = 0 }
    }

    /// The node's full log as it stands in memory (persisted or not), from its first index.
    func log(of id: NodeID) -> [Entry] {
        guard let node = nodes[id] else { return [] }
        return node.entries(from: node.firstIndex, to: node.lastIndex + 1) ?? []
    }
}
