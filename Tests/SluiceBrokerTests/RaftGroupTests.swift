import Foundation
import Logging
import NIOConcurrencyHelpers
import SluiceCore
import SluiceLog
import SluiceRaft
import SluiceTestSupport
import Testing

@testable import SluiceBroker

/// Runs scheduled work only when the test says so, in order: the groups' runs interleave
/// deterministically.
final class ManualExecutor: @unchecked Sendable {
    private let lock = NIOLock()
    private var queue: [@Sendable () -> Void] = []

    func schedule(_ work: @escaping @Sendable () -> Void) { lock.withLock { queue.append(work) } }

    /// Runs work until none is left (work may schedule more); returns how many ran.
    @discardableResult
    func drain(max: Int = 100_000) -> Int {
        var ran = 0
        while ran < max, let next = lock.withLock({ queue.isEmpty ? nil : queue.removeFirst() }) {
            next()
            ran += 1
        }
        return ran
    }
}

/// Delivers messages between in-process groups, except across a cut.
final class LoopbackTransport: RaftTransport, @unchecked Sendable {
    private let lock = NIOLock()
    private var groups: [NodeID: RaftGroup] = [:]
    private var isolated: Set<NodeID> = []

    func register(_ group: RaftGroup, as node: NodeID) { lock.withLock { groups[node] = group } }
    func isolate(_ node: NodeID) { lock.withLock { _ = isolated.insert(node) } }
    func heal() { lock.withLock { isolated = [] } }

    func send(_ messages: [Message], group: GroupID) {
        for message in messages {
            let target: RaftGroup? = lock.withLock {
                guard !isolated.contains(message.from), !isolated.contains(message.to) else { return nil }
                return groups[message.to]
            }
            target?.deliver(message)
        }
    }
}

/// Records what a group reports.
final class RecordingDelegate: RaftGroupDelegate, @unchecked Sendable {
    private let lock = NIOLock()
    private(set) var replacedSuffixes = 0
    private(set) var highWatermark: Int64 = 0
    private(set) var leaders: [(NodeID?, UInt64)] = []

    func raftGroup(_ group: RaftGroup, persisted entries: [(entry: Entry, firstOffset: Int64)], replacedSuffix: Bool, proposedHere: Bool) {
        if replacedSuffix { lock.withLock { replacedSuffixes += 1 } }
    }

    func raftGroup(_ group: RaftGroup, committedThrough index: UInt64, nextOffset: Int64, entries: [Entry]) {
        lock.withLock {
            precondition(nextOffset >= highWatermark, "the high watermark went back")
            highWatermark = nextOffset
        }
    }

    func raftGroup(_ group: RaftGroup, leaderChanged leader: NodeID?, term: UInt64, isLeader: Bool) {
        lock.withLock { leaders.append((leader, term)) }
    }
}

/// Three replicas of one partition in one process: real partition logs, a deterministic executor and
/// a loopback network that can cut a node off.
final class ReplicaCluster {
    let directory = TemporaryDirectory("raft-group")
    let executor = ManualExecutor()
    let transport = LoopbackTransport()
    var groups: [NodeID: RaftGroup] = [:]
    var delegates: [NodeID: RecordingDelegate] = [:]
    var rng: SeededRandom
    let ids: [NodeID] = [1, 2, 3]

    init(seed: UInt64) throws {
        rng = SeededRandom(seed: seed)
        for id in ids { try start(id) }
    }

    func start(_ id: NodeID) throws {
        let path = directory.child("n\(id)")
        let log = try PartitionLog.open(directory: path)
        let storage = try PartitionRaftStorage(directory: path, log: log)
        let delegate = RecordingDelegate()
        let config = RaftConfig(id: id, peers: ids, noopPayload: {
            RecordBatch.leaderChangeMarker(leader: Int32(id), term: 0, timestamp: 1_700_000_000_000).bytes
        }, deliversCommittedEntries: false)
        let executor = self.executor
        let group = RaftGroup(id: GroupID(topic: "t", partition: 0), config: config, storage: storage, transport: transport,
                              delegate: delegate, random: SeededRandom(seed: rng.next()), schedule: { executor.schedule($0) },
                              validatePayload: { bytes in (try? RecordBatch(validating: bytes)) != nil }, logger: Logger(label: "test"))
        groups[id] = group
        delegates[id] = delegate
        transport.register(group, as: id)
    }

    func stop(_ id: NodeID) throws {
        guard let group = groups.removeValue(forKey: id) else { return }
        group.stop()
        executor.drain()
        try group.storage.log.close()
    }

    /// Ticks every group `count` times, running everything that follows each tick.
    func tick(_ count: Int = 1) {
        for _ in 0..<count {
            for id in ids { groups[id]?.tick() }
            executor.drain()
        }
    }

    func leader() -> NodeID? {
        let leaders = groups.filter { $0.value.status.isLeader }.map(\.key)
        return leaders.count == 1 ? leaders[0] : nil
    }

    /// Ticks until exactly one leader that a majority follows; nil after `maxTicks`.
    func awaitLeader(maxTicks: Int = 200, excluding: NodeID? = nil) -> NodeID? {
        for _ in 0..<maxTicks {
            tick()
            if let leader = leader(), leader != excluding,
               groups.values.filter({ $0.status.leader == leader }).count >= 2 { return leader }
        }
        return nil
    }

    func batch(_ value: String) throws -> [UInt8] {
        try RecordBatch.build(records: [Record(timestamp: 1_700_000_000_000, key: nil, value: Array(value.utf8))]).bytes
    }

    /// Proposes on `node`; the result arrives through the executor.
    func propose(_ value: String, on node: NodeID, ack: ProposalAck = .committed) throws -> ResultBox {
        let box = ResultBox()
        let payload = try batch(value)
        groups[node]?.propose(.init(admit: { _ in .propose(payload) }, ack: ack, completion: { box.set($0) }))
        return box
    }

    /// Every live replica's committed batches, as (offset, value) pairs.
    func committedValues(_ id: NodeID) throws -> [String] {
        guard let group = groups[id] else { return [] }
        let log = group.storage.log
        var values: [String] = []
        var offset = log.logStartOffset
        let end = group.status.highWatermark
        while offset < end {
            let read = try log.read(from: offset, maxBytes: 1 << 20, maxOffset: end)
            guard read.batchCount > 0 else { break }
            var position = 0
            for _ in 0..<read.batchCount {
                let size = Int(read.bytes.getBigEndian(at: position + 8, as: Int32.self)) + RecordBatchHeader.logOverhead
                let batch = RecordBatch(unchecked: Array(read.bytes[position..<(position + size)]))
                if !batch.header.isControl {
                    for record in try batch.records() { values.append("\(record.offset):" + String(decoding: record.value ?? [], as: UTF8.self)) }
                }
                position += size
            }
            offset = read.nextOffset
        }
        return values
    }
}

final class ResultBox: @unchecked Sendable {
    private let lock = NIOLock()
    private var value: Result<ProposalResult, any Error>?
    func set(_ result: Result<ProposalResult, any Error>) { lock.withLock { value = result } }
    var result: Result<ProposalResult, any Error>? { lock.withLock { value } }
    var succeeded: ProposalResult? { if case .success(let r) = result { return r }; return nil }
}

@Suite("Raft group over partition logs")
struct RaftGroupTests {
    @Test("a leader is elected, acks=all proposals commit on every replica with the same offsets")
    func replicates() throws {
        let seed = SeededRandom.fromEnvironment().seed
        let cluster = try ReplicaCluster(seed: seed)
        defer { cluster.directory.remove() }
        let leader = try #require(cluster.awaitLeader(), "seed \(seed)")
        var boxes: [ResultBox] = []
        for k in 0..<20 { boxes.append(try cluster.propose("v\(k)", on: leader)) }
        cluster.tick(3)
        let offsets = boxes.compactMap { $0.succeeded?.firstOffset }
        #expect(offsets.count == 20, "seed \(seed)")
        // The new leader's no-op occupies offset 0; values follow densely.
        #expect(offsets == Array(1...20).map(Int64.init), "seed \(seed)")
        let expected = (0..<20).map { "\($0 + 1):v\($0)" }
        for id in cluster.ids {
            #expect(try cluster.committedValues(id) == expected, "seed \(seed), node \(id)")
        }
        for id in cluster.ids { try cluster.stop(id) }
    }

    @Test("an isolated leader's uncommitted suffix is replaced after the heal; its proposals fail; logs converge")
    func divergentSuffix() throws {
        let seed = SeededRandom.fromEnvironment().seed
        let cluster = try ReplicaCluster(seed: seed)
        defer { cluster.directory.remove() }
        let old = try #require(cluster.awaitLeader(), "seed \(seed)")
        let first = try cluster.propose("before", on: old)
        cluster.tick(2)
        #expect(first.succeeded != nil, "seed \(seed)")

        cluster.transport.isolate(old)
        let lost = try (0..<3).map { try cluster.propose("lost\($0)", on: old) }
        let new = try #require(cluster.awaitLeader(excluding: old), "seed \(seed)")
        #expect(new != old)
        let kept = try (0..<3).map { try cluster.propose("kept\($0)", on: new) }
        cluster.tick(3)
        #expect(kept.allSatisfy { $0.succeeded != nil }, "seed \(seed)")

        cluster.transport.heal()
        cluster.tick(40)
        #expect(lost.allSatisfy { if case .failure = $0.result { true } else { false } }, "seed \(seed)")
        #expect((cluster.delegates[old]?.replacedSuffixes ?? 0) >= 1, "seed \(seed)")
        let reference = try cluster.committedValues(new)
        #expect(reference.contains { $0.hasSuffix(":kept2") } && !reference.contains { $0.contains("lost") }, "seed \(seed): \(reference)")
        for id in cluster.ids {
            #expect(try cluster.committedValues(id) == reference, "seed \(seed), node \(id)")
            #expect(cluster.groups[id]?.storage.endOffset == cluster.groups[new]?.storage.endOffset, "seed \(seed)")
        }
        for id in cluster.ids { try cluster.stop(id) }
    }

    @Test("a replica restarted from its directory keeps its term and vote, and catches up")
    func restartCatchesUp() throws {
        let seed = SeededRandom.fromEnvironment().seed
        let cluster = try ReplicaCluster(seed: seed)
        defer { cluster.directory.remove() }
        let leader = try #require(cluster.awaitLeader(), "seed \(seed)")
        let follower = try #require(cluster.ids.first { $0 != leader })
        let before = try (0..<5).map { try cluster.propose("a\($0)", on: leader) }
        cluster.tick(2)
        let term = try #require(cluster.groups[follower]?.status.term)
        try cluster.stop(follower)
        let during = try (0..<5).map { try cluster.propose("b\($0)", on: leader) }
        cluster.tick(2)
        #expect((before + during).allSatisfy { $0.succeeded != nil }, "seed \(seed): a majority of two commits")
        try cluster.start(follower)
        #expect(cluster.groups[follower]?.storage.initialState().term == term)
        cluster.tick(20)
        #expect(try cluster.committedValues(follower) == cluster.committedValues(leader), "seed \(seed)")
        #expect(try cluster.committedValues(follower).count == 10)
        for id in cluster.ids { try cluster.stop(id) }
    }

    @Test("a retry answered with an earlier copy's offsets waits until that copy commits")
    func settledRetryWaitsForCommit() throws {
        let seed = SeededRandom.fromEnvironment().seed
        let cluster = try ReplicaCluster(seed: seed)
        defer { cluster.directory.remove() }
        let leader = try #require(cluster.awaitLeader(), "seed \(seed)")
        // The followers stop hearing the leader: nothing new can commit.
        for id in cluster.ids where id != leader { cluster.transport.isolate(id) }
        let payload = try cluster.batch("once")
        let offset = LockedBox<Int64>(-1)
        let original = ResultBox()
        cluster.groups[leader]?.propose(.init(admit: { next in
            offset.set(next)
            return .propose(payload)
        }, ack: .committed, completion: { original.set($0) }))
        cluster.executor.drain()
        let retry = ResultBox()
        let first = offset.value
        cluster.groups[leader]?.propose(.init(admit: { _ in .settled(ProposalResult(index: 0, firstOffset: first, lastOffset: first)) },
                                              ack: .committed, completion: { retry.set($0) }))
        cluster.executor.drain()
        #expect(original.result == nil && retry.result == nil, "seed \(seed): answered before a majority had it")
        cluster.transport.heal()
        cluster.tick(3)
        #expect(original.succeeded?.firstOffset == first, "seed \(seed)")
        #expect(retry.succeeded?.firstOffset == first, "seed \(seed)")
        for id in cluster.ids { try cluster.stop(id) }
    }

    @Test("a leader whose log fails a CRC check drops it, is not elected while it abstains, and is repaired from the new leader")
    func corruptReplicaIsRepaired() throws {
        let seed = SeededRandom.fromEnvironment().seed
        let cluster = try ReplicaCluster(seed: seed)
        defer { cluster.directory.remove() }
        let old = try #require(cluster.awaitLeader(), "seed \(seed)")
        let behind = try #require(cluster.ids.first { $0 != old })
        let before = try (0..<3).map { try cluster.propose("a\($0)", on: old) }
        cluster.tick(2)
        try cluster.stop(behind)
        let after = try (0..<3).map { try cluster.propose("b\($0)", on: old) }
        cluster.tick(2)
        #expect((before + after).allSatisfy { $0.succeeded != nil }, "seed \(seed)")
        let committed = try cluster.committedValues(old)
        // Flip a byte inside the last batch the stopped follower lacks: the leader finds it when it
        // reads that batch to send it.
        let storage = try #require(cluster.groups[old]?.storage)
        let last = storage.offset(of: storage.lastIndex)
        let path = cluster.directory.child("n\(old)") + "/00000000000000000000.log"
        let read = try storage.log.read(from: last, maxBytes: 1 << 20)
        let position = try #require(read.position) + RecordBatchHeader.size + 2
        let file = try #require(FileHandle(forUpdatingAtPath: path))
        try file.seek(toOffset: UInt64(position))
        let byte = try #require(try file.read(upToCount: 1)?.first)
        try file.seek(toOffset: UInt64(position))
        try file.write(contentsOf: [byte ^ 0xFF])
        try file.close()

        try cluster.start(behind)
        for _ in 0..<200 {
            cluster.tick()
            if cluster.groups[old]?.status.abstaining == false, cluster.leader() != old, cluster.leader() != nil,
               try cluster.committedValues(old) == committed { break }
        }
        #expect(cluster.groups[old]?.status.abstaining == false, "seed \(seed): the repaired replica never caught up")
        #expect(cluster.leader() != old, "seed \(seed)")
        for id in cluster.ids {
            #expect(try cluster.committedValues(id) == committed, "seed \(seed), node \(id)")
        }
        for id in cluster.ids { try cluster.stop(id) }
    }
}

final class LockedBox<Value: Sendable>: @unchecked Sendable {
    private let lock = NIOLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    func set(_ value: Value) { lock.withLock { stored = value } }
    var value: Value { lock.withLock { stored } }
}