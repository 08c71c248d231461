import Logging
import NIOConcurrencyHelpers
import NIOCore
import SluiceCore
import SluiceLog
import SluiceRaft
import SluiceWire

/// This broker's copy of the cluster metadata, kept by the metadata Raft group: every committed
/// command is applied in log order to `ClusterMetadata`, then handed to the broker to act on (open
/// or remove partitions, store offsets), then the state is saved to `cluster-metadata.snapshot`;
/// entries at or below the saved index are skipped at a restart. The state is saved after every change
/// to the topics, and otherwise every `entriesPerSnapshotMax` entries: offset commits change no topic
/// and storing one again is harmless, so a restart re-applies at most that many of them rather than
/// every commit paying for a snapshot write on every broker.
///
/// Each command travels as the value of the single record of one record batch (one command per Raft
/// entry, as `ClusterMetadata.apply` requires).
///
/// Threads: the delegate calls come from the group's thread; `state` and `propose` from any thread.
final class MetadataReplica: RaftGroupDelegate, @unchecked Sendable {
    static let snapshotFile = "cluster-metadata.snapshot"
    /// Outcomes remembered for proposers that have not collected theirs yet.
    static let outcomesMax = 10_000
    /// Most applied entries between two snapshot saves when no topic changes (bounds what a restart
    /// applies again).
    static let entriesPerSnapshotMax = 1_000
    /// How long a proposer waits for its command to be applied before it is told `request_timed_out`
    /// (the command may still be applied later: a majority of the brokers may be unreachable).
    static let proposalTimeoutMs: Int64 = 15_000

    let directory: String
    private let logger: Logger
    /// Acts on an applied command (the broker opening or removing partitions). Runs on the group's thread.
    /// Throws when the broker could not do its part (store committed offsets): applying stops there.
    private let onApplied: @Sendable (MetadataCommand, ClusterMetadata) throws -> Void
    /// Told when this broker starts or stops leading the metadata group (it coordinates groups then).
    private let onLeadershipChanged: @Sendable (_ isLeader: Bool) -> Void
    private let lock = NIOLock()
    private var current: ClusterMetadata
    private var outcomes: [UInt64: MetadataOutcome] = [:]
    /// Entries applied since the snapshot was last saved (the group's thread only).
    private var entriesSinceSave = 0
    private var metadataGroup: RaftGroup?

    /// The metadata Raft group (set once during start).
    var group: RaftGroup? {
        get { lock.withLock { metadataGroup } }
        set { lock.withLock { metadataGroup = newValue } }
    }

    init(directory: String, logger: Logger, onApplied: @escaping @Sendable (MetadataCommand, ClusterMetadata) throws -> Void,
         onLeadershipChanged: @escaping @Sendable (_ isLeader: Bool) -> Void = { _ in }) {
        self.directory = directory
        self.logger = logger
        self.onApplied = onApplied
        self.onLeadershipChanged = onLeadershipChanged
        current = ClusterMetadata()
    }

    /// Reads the state saved after the last applied command (none: nothing applied yet).
    func load() throws {
        try FileSystem.createDirectory(directory)
        let path = directory + "/" + Self.snapshotFile
        guard let bytes = try FileSystem.readSmallFile(path, limit: ClusterMetadata.snapshotBytesMax) else { return }
        do {
            let saved = try ClusterMetadata.decodeSnapshot(bytes)
            lock.withLock { current = saved }
        } catch {
            throw BrokerError.corruptMetadata(path: path, reason: "\(error); remove it to rebuild the metadata from the metadata log")
        }
    }

    /// The metadata as applied so far.
    var state: ClusterMetadata { lock.withLock { current } }

    // MARK: RaftGroupDelegate

    func raftGroup(_ group: RaftGroup, persisted entries: [(entry: Entry, firstOffset: Int64)], replacedSuffix: Bool, proposedHere: Bool) {}

    func raftGroup(_ group: RaftGroup, committedThrough index: UInt64, nextOffset: Int64, entries: [Entry]) {
        var applied = 0
        var topicsChanged = false
        for entry in entries where entry.index > lock.withLock({ current.appliedIndex }) {
            var (command, outcome) = decodeAndApply(entry)
            if let command, outcome == .applied {
                do {
                    try onApplied(command, state)
                } catch {
                    // Saving the snapshot past this entry would skip it for good: stop applying here and stop
                    // the group, as a failed persist does. A restart applies it again from the log.
                    logger.error("cannot act on a committed metadata command; the metadata group stops on this broker",
                                 metadata: ["index": "\(entry.index)", "command": "\(command)", "error": "\(error)"])
                    outcome = .rejected(MetadataRejection(.notStored, "broker \(directory) could not store the change: \(error)"))
                    lock.withLock { outcomes[entry.index] = outcome }
                    group.stop()
                    return
                }
            }
            // Only a leader's proposers collect outcomes (a follower proposes nothing). Entries apply in index
            // order, so when too many wait uncollected the older half goes at once: no scan per entry.
            if group.status.isLeader {
                lock.withLock {
                    outcomes[entry.index] = outcome
                    if outcomes.count > Self.outcomesMax {
                        let keepFrom = entry.index - UInt64(Self.outcomesMax / 2)  // index > outcomesMax here
                        outcomes = outcomes.filter { $0.key > keepFrom }
                    }
                }
            }
            applied += 1
            if let command, outcome == .applied, !command.isOffsetCommit { topicsChanged = true }
        }
        group.storage.log.setReplicatedHighWatermark(nextOffset)
        entriesSinceSave += applied
        guard applied > 0, topicsChanged || entriesSinceSave >= Self.entriesPerSnapshotMax else { return }
        do {
            try FileSystem.writeAtomically(state.encodeSnapshot(), to: directory + "/" + Self.snapshotFile, directory: directory)
            entriesSinceSave = 0
        } catch {
            // The log still holds every command: a restart re-applies what the snapshot missed.
            logger.error("cannot save the cluster metadata snapshot", metadata: ["directory": "\(directory)", "error": "\(error)"])
        }
    }

    func raftGroup(_ group: RaftGroup, leaderChanged leader: NodeID?, term: UInt64, isLeader: Bool) {
        onLeadershipChanged(isLeader)
        logger.info("metadata leadership", metadata: ["leader": "\(leader.map { "\($0)" } ?? "none")", "term": "\(term)", "here": "\(isLeader)"])
    }

    /// A control batch (a leader's no-op) only advances the index; anything else must be one record
    /// holding a command.
    private func decodeAndApply(_ entry: Entry) -> (MetadataCommand?, MetadataOutcome) {
        let batch = RecordBatch(unchecked: entry.payload)
        if entry.payload.count >= RecordBatchHeader.size, batch.header.isControl {
            lock.withLock { current.advance(to: entry.index) }
            return (nil, .applied)
        }
        guard let records = try? batch.records(), records.count == 1, let value = records[0].value else {
            lock.withLock { current.advance(to: entry.index) }
            return (nil, .rejected(MetadataRejection(.malformedCommand, "metadata entry \(entry.index) is not one record holding a command")))
        }
        do {
            let command = try MetadataCommand.decode(value)
            return (command, lock.withLock { current.apply(command, index: entry.index) })
        } catch {
            // Every broker rejects the same bytes alike (and still advances its applied index).
            return (nil, lock.withLock { current.apply(encoded: value, index: entry.index) })
        }
    }

    // MARK: Proposing

    /// Proposes `command` if this broker leads the metadata group; the future gives the outcome of
    /// applying it (here, before it completes).
    func propose(_ command: MetadataCommand, on eventLoop: any EventLoop) -> EventLoopFuture<MetadataOutcome> {
        guard let group else { return eventLoop.makeFailedFuture(WireError(.brokerShuttingDown, "the metadata group is not running")) }
        let bytes: [UInt8]
        let batch: RecordBatch
        do {
            bytes = try command.encode()
            batch = try RecordBatch.build(records: [Record(timestamp: SystemWallClock().nowMilliseconds(), key: nil, value: bytes)])
        } catch {
            return eventLoop.makeFailedFuture(WireError(.invalidRequest, "cannot encode the metadata command: \(error)"))
        }
        let promise = eventLoop.makePromise(of: MetadataOutcome.self)
        let timeout = eventLoop.scheduleTask(in: .milliseconds(Self.proposalTimeoutMs)) {
            promise.fail(WireError(.requestTimedOut,
                "the metadata change was not committed within \(Self.proposalTimeoutMs) ms (a majority of the brokers may be unreachable); it may still take effect, check before retrying"))
        }
        promise.futureResult.whenComplete { _ in timeout.cancel() }
        group.propose(.init(admit: { _ in .propose(batch.bytes) }, ack: .committed, completion: { [self] result in
            switch result {
            case .success(let placed):
                let outcome = lock.withLock { outcomes.removeValue(forKey: placed.index) }
                promise.succeed(outcome ?? .applied)
            case .failure(let error):
                promise.fail(error)
            }
        }))
        return promise.futureResult
    }
}
