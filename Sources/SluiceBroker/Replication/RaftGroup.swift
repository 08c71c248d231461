import Logging
import NIOConcurrencyHelpers
import SluiceCore
import SluiceLog
import SluiceRaft

/// Names a Raft group: a partition, or the metadata group (`GroupID.metadata`).
struct GroupID: Hashable, Sendable, CustomStringConvertible {
    var topic: String
    var partition: Int32
    /// The topic's incarnation: the Raft index of the metadata command that created it
    /// (`TopicAssignment.createdAtIndex`; 0 for the metadata group). A topic deleted and created again
    /// under the same name is another group, so messages of the old one never reach the new one.
    var incarnation: UInt64 = 0

    /// The cluster metadata group travels under this reserved name (storage-format/protocol.md).
    static let metadata = GroupID(topic: "__cluster_metadata", partition: 0)

    var description: String { "\(topic)-\(partition)" }
}

/// Sends a group's messages to their `to` nodes. Must not block: a transport queues (boundedly) and
/// may drop; Raft tolerates loss, duplication and reordering.
protocol RaftTransport: AnyObject, Sendable {
    func send(_ messages: [Message], group: GroupID)
}

/// What the application does with a group's progress. Called on the group's thread, one call at a
/// time, in the order of the `Ready` steps.
protocol RaftGroupDelegate: AnyObject, Sendable {
    /// Entries are durable in the log (each with the offset it got). `replacedSuffix`: a divergent
    /// suffix was dropped first, so state derived from the log must be rebuilt. `proposedHere`: these
    /// entries were proposed by this node while it led their term (their producer state is recorded).
    func raftGroup(_ group: RaftGroup, persisted entries: [(entry: Entry, firstOffset: Int64)], replacedSuffix: Bool, proposedHere: Bool)
    /// The commit index moved to `index`, whose batch ends before `nextOffset` (the high watermark).
    /// `entries` are the newly committed entries when the group delivers them (the metadata group).
    func raftGroup(_ group: RaftGroup, committedThrough index: UInt64, nextOffset: Int64, entries: [Entry])
    /// The leader or term this node knows changed.
    func raftGroup(_ group: RaftGroup, leaderChanged leader: NodeID?, term: UInt64, isLeader: Bool)
}

/// When a proposal is answered.
enum ProposalAck: Sendable {
    /// Once this leader has it durably (`acks=leader`).
    case persisted
    /// Once a majority has it durably: committed (`acks=all`).
    case committed
}

/// Where a completed proposal landed.
struct ProposalResult: Sendable, Equatable {
    var index: UInt64
    var firstOffset: Int64
    var lastOffset: Int64
}

/// Why a proposal failed (the entry may still commit later, under another leader: retry idempotently).
enum ProposalError: Error, Equatable, Sendable {
    case notLeader(leader: NodeID?)
    case busy(limit: Int)
    case stopped
}

/// One Raft group on this broker: its `RaftNode`, its log storage, and the loop that drives them.
///
/// Inputs (messages, ticks, proposals) are queued and handled by one run at a time on the executor
/// it is given (the replication thread pool): the run steps the node, then carries out each `Ready` in
/// the documented order — persist (append + fsync, hard state), then send, then report commits — and
/// loops while the node has more. Proposals that arrive during an fsync wait in the queue and share the
/// next one (group commit).
///
/// Threads: `deliver`, `tick`, `propose` and `status` may be called from any thread. Everything else
/// runs on the executor, never on an event loop (it does file I/O).
final class RaftGroup: @unchecked Sendable {
    /// Queued inputs beyond which messages and ticks are dropped and proposals refused.
    static let inboxMax = 10_000
    /// Proposals waiting for their acknowledgement at once.
    static let pendingMax = 100_000

    /// The outcome of a proposal's admission check, run on the group's thread just before proposing.
    enum Admission {
        /// Propose this payload.
        case propose([UInt8])
        /// Answered without proposing (an idempotent producer's duplicate).
        case settled(ProposalResult)
    }

    struct Proposal {
        /// Runs on the group's thread with the offset the entry would start at (after every entry
        /// proposed before it), so checks and producer-state updates stay in proposal order.
        var admit: (_ nextOffset: Int64) throws -> Admission
        var ack: ProposalAck
        var completion: @Sendable (Result<ProposalResult, any Error>) -> Void
    }

    /// A leader's view of one member's log.
    struct ReplicaProgress: Sendable, Equatable {
        /// The end offset of the member's log as far as the leader knows (after its matched entry).
        var endOffset: Int64
        /// Heard from within the current check-quorum round (an election timeout).
        var recentlyActive: Bool
    }

    /// What other threads may read.
    struct Status: Sendable, Equatable {
        var leader: NodeID?
        var term: UInt64 = 0
        var isLeader = false
        var commitIndex: UInt64 = 0
        /// The term of the entry at `commitIndex` (0 when unknown). A leader whose own term it is has
        /// committed its first entry, and so knows everything committed before it (Raft §5.4.2, §8).
        var committedTerm: UInt64 = 0
        var highWatermark: Int64 = 0
        var lastIndex: UInt64 = 0
        /// This replica's log end offset.
        var endOffset: Int64 = 0
        /// Leader only: every member's progress (this node included).
        var replicas: [NodeID: ReplicaProgress] = [:]
        /// Dropped corrupt entries and waits for a leader to copy them back before it votes again.
        var abstaining = false
        /// Where the log's first batch Raft still needs starts: segments wholly below it may be deleted.
        var anchorOffset: Int64 = 0

        /// Leads and has committed an entry of its own term: everything committed anywhere is committed
        /// (and delivered) here too, so it may answer from what it applied.
        var leadsCaughtUp: Bool { isLeader && committedTerm == term }
    }

    private enum Input {
        case message(Message)
        case tick
        case propose(Proposal)
        case campaign
        case transfer(NodeID)
        case retention
        /// Reopens the log with new settings: given the committed end offset, returns the log in place.
        case reopenLog(@Sendable (_ committedEnd: Int64) -> PartitionLog)
    }

    private struct Pending {
        var index: UInt64
        var term: UInt64
        var ack: ProposalAck
        var completion: @Sendable (Result<ProposalResult, any Error>) -> Void
    }

    let id: GroupID
    let storage: PartitionRaftStorage
    private var node: RaftNode
    private let config: RaftConfig
    /// Seeds the node made again after a repair.
    private var reseed: UInt64
    private let transport: any RaftTransport
    private weak var delegate: (any RaftGroupDelegate)?
    private let schedule: @Sendable (@escaping @Sendable () -> Void) -> Void
    /// Checks an entry's payload from the network before the node sees it (a record batch, CRC).
    private let validatePayload: ([UInt8]) -> Bool
    private let logger: Logger

    private let lock = NIOLock()
    private var inbox: [Input] = []
    private var running = false
    private var stopped = false
    private var published = Status()

    /// The member that should lead when it can (a partition's first assigned replica), so that
    /// leadership spreads as placement intended instead of staying where elections happened to land.
    private let preferredLeader: NodeID?
    /// Ticks to lead before handing over to the preferred member (lets a restarted one catch up first).
    private let handOverAfterTicks: Int

    // Owned by the running loop.
    private var ticksLeading = 0
    /// Work that needs the node and the storage to agree (nothing unsaved, no in-memory suffix replacing
    /// one on disk): retention and log reopens wait here until the next drain has persisted everything.
    private var retentionDue = false
    private var reopensDue: [@Sendable (_ committedEnd: Int64) -> PartitionLog] = []
    private var pending: [Pending] = []
    /// Idempotent retries answered with an earlier copy's offsets: they wait until that copy is as
    /// safe as their `ack` asks (its copy may still be in flight, or be replaced by a new leader).
    private var settledWaiting: [(result: ProposalResult, ack: ProposalAck, completion: @Sendable (Result<ProposalResult, any Error>) -> Void)] = []
    private var ledTerm: UInt64 = 0
    private struct Leadership: Equatable {
        var leader: NodeID?
        var term: UInt64
        var isLeader: Bool
    }
    private var lastReported: Leadership?

    init(id: GroupID, config: RaftConfig, storage: PartitionRaftStorage, transport: any RaftTransport,
         delegate: any RaftGroupDelegate, random: some RandomNumberGenerator,
         schedule: @escaping @Sendable (@escaping @Sendable () -> Void) -> Void,
         validatePayload: @escaping ([UInt8]) -> Bool, logger: Logger, preferredLeader: NodeID? = nil) {
        self.id = id
        self.preferredLeader = preferredLeader
        self.handOverAfterTicks = 2 * config.electionTimeoutTicks
        self.storage = storage
        var random = random
        self.reseed = random.next()
        self.config = config
        self.node = RaftNode(config: config, storage: storage, random: random)
        self.transport = transport
        self.delegate = delegate
        self.schedule = schedule
        self.validatePayload = validatePayload
        self.logger = logger
        // A group that applies its entries has applied none yet: the node hands them over again from the
        // log's start, and its published commit follows what it was handed.
        let commit = config.deliversCommittedEntries ? storage.firstIndex - 1 : node.commitIndex
        published = Status(term: node.term, commitIndex: commit, highWatermark: storage.endOffset(of: commit), lastIndex: node.lastIndex)
        published.anchorOffset = storage.anchor.offset
    }

    // MARK: Inputs (any thread)

    /// A message from a peer.
    func deliver(_ message: Message) { enqueue(.message(message)) }
    /// One logical clock tick.
    func tick() { enqueue(.tick) }
    /// Campaign now (tests; a broker's first start of a single-member group).
    func campaign() { enqueue(.campaign) }
    /// Hand leadership to `node` (clean shutdown, rebalancing).
    func transferLeadership(to node: NodeID) { enqueue(.transfer(node)) }
    /// Apply the log's retention, on the group's thread: committed segments past it are deleted once the
    /// Raft anchor has moved above them (`PartitionRaftStorage.compactForRetention`).
    func enforceRetention() { enqueue(.retention) }
    /// Reopen the log with new settings on the group's thread, where nothing appends meanwhile. `reopen`
    /// gets the committed end offset (the new log's replicated high watermark) and returns the log in
    /// place afterwards (the old settings' one again if the new ones could not be opened).
    /// False when the group refused it (stopped, or its inbox full).
    @discardableResult
    func reopenLog(_ reopen: @escaping @Sendable (_ committedEnd: Int64) -> PartitionLog) -> Bool { enqueue(.reopenLog(reopen)) }

    /// Proposes an entry; `completion` runs on the group's thread when `ack` is reached or it fails.
    func propose(_ proposal: Proposal) {
        if !enqueue(.propose(proposal)) {
            proposal.completion(.failure(stoppedOrBusy()))
        }
    }

    /// The latest leader, term, commit and high watermark.
    var status: Status { lock.withLock { published } }

    /// Leads and has committed an entry of its own term: everything committed anywhere is committed (and
    /// delivered) here too, so it may answer from what it applied.
    var leadsCaughtUp: Bool { status.leadsCaughtUp }

    /// Stops taking inputs; pending proposals fail. Waits for nothing: the running loop ends itself.
    func stop() {
        let (dropped, start): ([Input], Bool) = lock.withLock {
            stopped = true
            defer { inbox = [] }
            // No run going: start one, which sees `stopped` and fails what is pending.
            let start = !running
            running = true
            return (inbox, start)
        }
        for case .propose(let proposal) in dropped { proposal.completion(.failure(ProposalError.stopped)) }
        if start { schedule { [self] in run() } }
    }

    private func stoppedOrBusy() -> ProposalError {
        lock.withLock { stopped } ? .stopped : .busy(limit: Self.inboxMax)
    }

    /// Queues an input and starts a run unless one is going; false when stopped or full.
    @discardableResult
    private func enqueue(_ input: Input) -> Bool {
        let (accepted, start): (Bool, Bool) = lock.withLock {
            guard !stopped, inbox.count < Self.inboxMax else { return (false, false) }
            inbox.append(input)
            if running { return (true, false) }
            running = true
            return (true, true)
        }
        if start { schedule { [self] in run() } }
        return accepted
    }

    // MARK: The loop (executor thread)

    private func run() {
        while true {
            let inputs: [Input]? = lock.withLock {
                if inbox.isEmpty || stopped {
                    running = false
                    return nil
                }
                defer { inbox.removeAll(keepingCapacity: true) }
                return inbox
            }
            guard let inputs else { break }
            for input in inputs { handle(input) }
            do {
                try drainReady()
                if storage.corruptIndex != nil {
                    try repair()
                    try drainReady()
                }
                runDeferredStorageWork()
            } catch {
                // A failed persist (disk full, I/O error) must not be followed by sends: stop this group
                // so no acknowledgement leaves for what is not on disk.
                logger.error("replica stopped: persisting failed", metadata: ["group": "\(id)", "error": "\(error)"])
                stop()
                failPending(with: ProposalError.stopped)
                // Admitted batches that never reached the disk must not stay in the producer state.
                delegate?.raftGroup(self, persisted: [], replacedSuffix: true, proposedHere: false)
            }
        }
        if lock.withLock({ stopped }) { failPending(with: ProposalError.stopped) }
    }

    private func handle(_ input: Input) {
        switch input {
        case .message(let message):
            // A term the batch epoch field cannot hold would be adopted and then fail every persist.
            guard message.term <= UInt64(Int32.max), message.entries.allSatisfy({ $0.term <= UInt64(Int32.max) }) else {
                logger.warning("dropped a Raft message with a term beyond 2^31-1", metadata: ["group": "\(id)", "from": "\(message.from)"])
                return
            }
            if message.entries.contains(where: { !validatePayload($0.payload) }) {
                logger.warning("dropped a Raft message with a malformed entry", metadata: ["group": "\(id)", "from": "\(message.from)"])
                return
            }
            node.step(message)
        case .tick:
            node.tick()
            ticksLeading = node.role == .leader ? ticksLeading + 1 : 0
            handOverToPreferred()
        case .campaign:
            node.campaign()
        case .transfer(let target):
            try? node.transferLeadership(to: target)
        case .reopenLog(let reopen):
            reopensDue.append(reopen)
        case .retention:
            retentionDue = true
        case .propose(let proposal):
            admitAndPropose(proposal)
        }
    }

    /// Retention and log reopens, once a drain has left nothing unsaved: the storage then holds exactly
    /// the node's log, so every index up to the commit is a committed batch on disk. (Before the drain, a
    /// new leader's append may have replaced an on-disk suffix in memory only, and the commit may cover
    /// entries not yet written.)
    private func runDeferredStorageWork() {
        guard (retentionDue || !reopensDue.isEmpty), !node.hasReady, node.lastIndex == storage.lastIndex else { return }
        let commit = min(node.commitIndex, storage.lastIndex)
        for reopen in reopensDue { storage.replaceLog(reopen(storage.endOffset(of: commit))) }
        reopensDue = []
        guard retentionDue else { return }
        retentionDue = false
        do {
            // The next drain publishes the new anchor (`Status.anchorOffset`) with the rest of the status.
            if let anchor = try storage.compactForRetention(commit: commit) {
                logger.info("retention moved the Raft anchor", metadata: ["group": "\(id)", "offset": "\(anchor)"])
            }
        } catch {
            logger.error("retention failed", metadata: ["group": "\(id)", "directory": "\(storage.directory)", "error": "\(error)"])
        }
    }

    private func admitAndPropose(_ proposal: Proposal) {
        guard node.role == .leader else {
            proposal.completion(.failure(ProposalError.notLeader(leader: node.leader)))
            return
        }
        guard pending.count < Self.pendingMax else {
            proposal.completion(.failure(ProposalError.busy(limit: Self.pendingMax)))
            return
        }
        // `admit` records the batch in the producer state: after it, `propose` must not fail. It only
        // fails for a follower or during a leadership transfer, both refused here first.
        guard node.leadTransferee == nil else {
            proposal.completion(.failure(ProposalError.notLeader(leader: node.leader)))
            return
        }
        do {
            switch try proposal.admit(proposedEndOffset()) {
            case .settled(let result):
                settledWaiting.append((result, proposal.ack, proposal.completion))
                completeSettled()
            case .propose(let payload):
                let index: UInt64
                do {
                    index = try node.propose(payload)
                } catch {
                    preconditionFailure("propose failed after admission (leader, no transfer): \(error)")
                }
                ledTerm = node.term
                pending.append(Pending(index: index, term: node.term, ack: proposal.ack, completion: proposal.completion))
            }
        } catch {
            // The admission refused the batch (an idempotent producer's sequence or epoch).
            proposal.completion(.failure(error))
        }
    }

    /// A batch failed its CRC when read back to send it: drop it and everything after it, and restart
    /// the node abstaining (`RaftConfig.startsAbstaining`) — a replica that lost entries it may have
    /// acknowledged must not be elected, nor elect, until a leader has copied them back.
    private func repair() throws {
        logger.error("a batch of this replica failed its CRC check: dropping it and the rest of the log, copying them again from the leader; this replica does not vote until then",
                     metadata: ["group": "\(id)", "directory": "\(storage.directory)", "index": "\(storage.corruptIndex ?? 0)"])
        failPending(with: ProposalError.notLeader(leader: nil))
        try storage.dropCorrupt()
        ledTerm = 0
        var abstaining = config
        abstaining.startsAbstaining = true
        reseed = reseed &* 6_364_136_223_846_793_005 &+ 1
        node = RaftNode(config: abstaining, storage: storage, random: SplitMix64(seed: reseed))
        ticksLeading = 0
        let committedEnd = storage.endOffset(of: storage.initialState().commit)
        storage.log.resetReplicatedHighWatermark(committedEnd)
        lock.withLock {
            published.commitIndex = storage.initialState().commit
            published.highWatermark = committedEnd
        }
        delegate?.raftGroup(self, persisted: [], replacedSuffix: true, proposedHere: false)
        lastReported = nil
    }

    /// Hands leadership to the preferred member once it holds the whole log and answers: the
    /// transfer (Raft thesis §3.10) costs only a moment of refused proposals, which producers retry.
    private func handOverToPreferred() {
        guard let preferred = preferredLeader, preferred != node.id, node.role == .leader,
              ticksLeading >= handOverAfterTicks, node.leadTransferee == nil,
              let progress = node.replicaProgress[preferred], progress.recentlyActive, progress.match == node.lastIndex
        else { return }
        ticksLeading = 0
        try? node.transferLeadership(to: preferred)
    }

    /// The offset after every entry in the node's log, persisted or not.
    private func proposedEndOffset() -> Int64 {
        var end = storage.endOffset
        guard node.lastIndex > storage.lastIndex,
              let unstable = node.entries(from: storage.lastIndex + 1, to: node.lastIndex + 1) else { return end }
        for entry in unstable where entry.payload.count >= RecordBatchHeader.size {
            end += Int64(entry.payload.getBigEndian(at: RecordBatchHeader.Field.lastOffsetDelta, as: Int32.self)) + 1
        }
        return end
    }

    private func drainReady() throws {
        reportLeadership()
        while node.hasReady && storage.corruptIndex == nil {
            let ready = node.ready()
            if ready.isEmpty {
                // Only committed entries to deliver, and the storage could not read them (an I/O error):
                // try again on the next input rather than spin.
                node.advance()
                break
            }
            if let snapshot = ready.snapshot { try storage.applySnapshot(snapshot) }
            if !ready.entries.isEmpty {
                let replaced = try storage.persist(ready.entries)
                let persisted = ready.entries.filter { $0.index > storage.anchor.index }
                    .map { (entry: $0, firstOffset: storage.offset(of: $0.index)) }
                // Recorded at admission only while still leading; otherwise (stepped down meanwhile, the
                // table rebuilt from the log) these are recorded now, as any replica's would be.
                let own = node.role == .leader && (persisted.first.map { $0.entry.term == ledTerm } ?? false)
                delegate?.raftGroup(self, persisted: persisted, replacedSuffix: replaced || ready.snapshot != nil, proposedHere: own)
                if replaced { failReplaced() }
            }
            if let hardState = ready.hardState { try storage.setHardState(hardState) }
            if !ready.messages.isEmpty { transport.send(ready.messages, group: id) }
            completePersisted()
            completeSettled()
            // A group that applies its entries counts as committed only what it was handed: a storage may
            // return a prefix, and a proposer or a reader of the applied state must not run ahead of it.
            let commit = config.deliversCommittedEntries ? (ready.committedEntries.last?.index ?? published.commitIndex) : node.commitIndex
            if commit > published.commitIndex || !ready.committedEntries.isEmpty {
                let nextOffset = storage.endOffset(of: min(commit, storage.lastIndex))
                delegate?.raftGroup(self, committedThrough: commit, nextOffset: nextOffset, entries: ready.committedEntries)
                completeCommitted(through: commit)
                let committedTerm = node.term(at: commit) ?? 0
                lock.withLock {
                    published.commitIndex = commit
                    published.committedTerm = committedTerm
                    published.highWatermark = nextOffset
                }
            }
            node.advance()
            reportLeadership()
        }
        let replicas = node.replicaProgress.compactMapValues { progress -> ReplicaProgress? in
            guard progress.match >= storage.anchor.index, progress.match <= storage.lastIndex else { return nil }
            return ReplicaProgress(endOffset: storage.endOffset(of: progress.match), recentlyActive: progress.recentlyActive)
        }
        lock.withLock {
            published.lastIndex = node.lastIndex
            published.endOffset = storage.endOffset
            published.abstaining = node.abstaining
            published.replicas = replicas
            published.anchorOffset = storage.anchor.offset
        }
    }

    private func reportLeadership() {
        let now = Leadership(leader: node.leader, term: node.term, isLeader: node.role == .leader)
        guard lastReported != now else { return }
        let wasLeader = lastReported?.isLeader == true
        lastReported = now
        lock.withLock {
            published.leader = now.leader
            published.term = now.term
            published.isLeader = now.isLeader
        }
        if !now.isLeader { failPending(with: ProposalError.notLeader(leader: now.leader)) }
        if wasLeader && !now.isLeader {
            // Batches admitted while leading may never reach the disk (a new leader's entries can replace
            // them before they are persisted): rebuild the producer state from what the log holds.
            delegate?.raftGroup(self, persisted: [], replacedSuffix: true, proposedHere: false)
        }
        delegate?.raftGroup(self, leaderChanged: now.leader, term: now.term, isLeader: now.isLeader)
    }

    private func result(_ index: UInt64) -> ProposalResult {
        ProposalResult(index: index, firstOffset: storage.offset(of: index), lastOffset: storage.endOffset(of: index) - 1)
    }

    private func completePersisted() {
        pending.removeAll { p in
            guard p.ack == .persisted, p.index <= storage.lastIndex else { return false }
            if storage.term(at: p.index) == p.term {
                p.completion(.success(result(p.index)))
            } else {
                p.completion(.failure(ProposalError.notLeader(leader: node.leader)))
            }
            return true
        }
    }

    /// Retries whose earlier copy is now durable here (`persisted`) or committed (`committed`).
    private func completeSettled() {
        guard !settledWaiting.isEmpty else { return }
        let committedEnd = storage.endOffset(of: min(node.commitIndex, storage.lastIndex))
        settledWaiting.removeAll { waiting in
            let safeEnd = waiting.ack == .committed ? committedEnd : storage.endOffset
            guard waiting.result.lastOffset < safeEnd else { return false }
            waiting.completion(.success(waiting.result))
            return true
        }
    }

    private func completeCommitted(through commit: UInt64) {
        pending.removeAll { p in
            guard p.index <= commit, p.index <= storage.lastIndex else { return false }
            // A committed index holding another term's entry means ours was replaced.
            guard storage.term(at: p.index) == p.term else {
                p.completion(.failure(ProposalError.notLeader(leader: node.leader)))
                return true
            }
            guard p.ack == .committed else { return false }  // answered by completePersisted
            p.completion(.success(result(p.index)))
            return true
        }
    }

    /// Proposals whose entries a new leader replaced.
    private func failReplaced() {
        pending.removeAll { p in
            guard p.index <= storage.lastIndex, storage.term(at: p.index) != p.term else { return false }
            p.completion(.failure(ProposalError.notLeader(leader: node.leader)))
            return true
        }
    }

    private func failPending(with error: ProposalError) {
        let failed = pending
        let settled = settledWaiting
        pending = []
        settledWaiting = []
        for p in failed { p.completion(.failure(error)) }
        for waiting in settled { waiting.completion(.failure(error)) }
    }
}
