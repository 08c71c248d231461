/// One member of a Raft group as a deterministic state machine (etcd-io/raft's `raft` + `RawNode`).
///
/// Drive it with `tick()`, `step(_:)`, `propose(_:)`, `campaign()` and `transferLeadership(to:)`; after any
/// of them, if `hasReady`, take `ready()`, carry it out in the order documented on `Ready`, and call
/// `advance()`. Not thread-safe: one driver owns a node.
public final class RaftNode {
    let config: RaftConfig
    /// `config.peers`, sorted, so every iteration is deterministic (dictionary order is not).
    let members: [NodeID]
    var random: any RandomNumberGenerator
    var log: RaftLog

    /// The current term. Invariant: never decreases.
    public internal(set) var term: UInt64
    /// The vote cast in `term`. Invariant: at most one per term (it changes only together with `term`).
    public internal(set) var vote: NodeID?
    /// The leader of `term` this node knows of.
    public internal(set) var leader: NodeID?
    public internal(set) var role: RaftRole = .follower

    /// Ticks since the last election timeout reset (follower: since hearing from the leader).
    var electionElapsed = 0
    var heartbeatElapsed = 0
    /// In [T, 2T), redrawn on every role change (Raft §5.2, randomized timeouts).
    var randomizedElectionTimeout = 0
    /// Votes received in the current (pre-)campaign.
    var votes: [NodeID: Bool] = [:]
    /// Leader only: per member, including itself.
    var progress: [NodeID: Progress] = [:]
    /// Leader only: the member leadership is being handed to.
    public internal(set) var leadTransferee: NodeID?
    /// Neither campaigning nor voting until a leader caught this node up (`RaftConfig.startsAbstaining`).
    public internal(set) var abstaining: Bool

    var outbox: [Message] = []
    var prevHardState: HardState
    /// What the outstanding `Ready` handed out, for `advance()`.
    var handedOut: (lastEntry: Entry?, snapshotIndex: UInt64?, appliedTo: UInt64?)?

    /// Starts (or restarts) a node from what `storage` holds. `random` draws the election timeouts.
    public init(config: RaftConfig, storage: any RaftStorage, random: some RandomNumberGenerator) {
        precondition(config.peers.contains(config.id), "peers must include the node itself")
        precondition(Set(config.peers).count == config.peers.count, "duplicate peers")
        precondition(config.heartbeatTicks > 0 && config.heartbeatTicks < config.electionTimeoutTicks)
        precondition(config.maxEntriesPerAppend > 0)
        self.config = config
        self.members = config.peers.sorted()
        self.random = random
        let state = storage.initialState()
        self.log = RaftLog(storage: storage, committed: state.commit)
        self.term = state.term
        self.vote = state.vote
        self.prevHardState = state
        self.abstaining = config.startsAbstaining
        becomeFollower(term: state.term, leader: nil)
    }

    /// This node's id.
    public var id: NodeID { config.id }
    /// The highest index known committed.
    public var commitIndex: UInt64 { log.committed }
    /// The highest index handed to the application.
    public var appliedIndex: UInt64 { log.applied }
    /// The last index in the log (persisted or not).
    public var lastIndex: UInt64 { log.lastIndex }
    /// The first index still held as an entry.
    public var firstIndex: UInt64 { log.firstIndex }
    /// The term of the entry at `index`, nil if compacted or beyond the log.
    public func term(at index: UInt64) -> UInt64? { log.term(at: index) }
    /// What a leader knows of each member's log: the highest index known replicated there, and
    /// whether the member was heard from since the last check-quorum round. Empty unless leader.
    public var replicaProgress: [NodeID: (match: UInt64, recentlyActive: Bool)] {
        guard role == .leader else { return [:] }
        return progress.mapValues { ($0.match, $0.recentActive) }
    }
    /// Entries `lo..<hi` of the node's log (persisted or not), nil if `lo` is compacted.
    public func entries(from lo: UInt64, to hi: UInt64) -> [Entry]? { log.entries(from: lo, to: hi) }

    var hardState: HardState { HardState(term: term, vote: vote, commit: log.committed) }
    var quorum: Int { members.count / 2 + 1 }

    // MARK: - Inputs

    /// One logical clock tick.
    public func tick() {
        if role == .leader { tickLeader() } else { tickElection() }
        checkInvariants()
    }

    /// Starts an election now (pre-vote first when configured), as if the election timeout had expired.
    public func campaign() {
        hup(transfer: false)
        checkInvariants()
    }

    /// Appends `payload` to the leader's log and returns its index. It is committed once replicated on a
    /// majority, which the application learns from `Ready.committedEntries`.
    public func propose(_ payload: [UInt8]) throws(RaftError) -> UInt64 {
        guard role == .leader else { throw .notLeader(leaderHint: leader) }
        guard leadTransferee == nil else { throw .leadershipTransferInProgress }
        let index = appendEntry(payload)
        checkInvariants()
        return index
    }

    /// Hands leadership to `target` (Raft thesis §3.10): brings it up to date, then tells it to campaign
    /// at once. Proposals are refused meanwhile; the transfer is abandoned after an election timeout.
    public func transferLeadership(to target: NodeID) throws(RaftError) {
        guard role == .leader else { throw .notLeader(leaderHint: leader) }
        guard members.contains(target) else { throw .unknownNode(target) }
        guard target != id, leadTransferee != target else { return }
        leadTransferee = target
        electionElapsed = 0
        if progress[target]?.match == log.lastIndex {
            send(Message(kind: .timeoutNow, from: id, to: target, term: term))
        } else {
            sendAppend(to: target)
        }
    }

    // MARK: - Output

    /// Whether `ready()` has anything to hand out.
    public var hasReady: Bool {
        hardState != prevHardState || !log.unstable.entries.isEmpty || log.unstable.snapshot != nil
            || !outbox.isEmpty || log.committed > log.applied
    }

    /// The work for the driver; see `Ready` for the order to do it in. Call `advance()` before the next.
    public func ready() -> Ready {
        precondition(handedOut == nil, "ready() called twice without advance()")
        let state = hardState
        let deliver = config.deliversCommittedEntries
        let ready = Ready(
            hardState: state == prevHardState ? nil : state,
            entries: log.unstable.entries,
            snapshot: log.unstable.snapshot,
            messages: outbox,
            committedEntries: deliver ? log.nextCommittedEntries() : []
        )
        outbox = []
        prevHardState = state
        // Without delivery the commit index itself is what the application uses: count it applied.
        let appliedTo = deliver ? ready.committedEntries.last?.index
            : (log.unstable.snapshot == nil && log.committed > log.applied ? log.committed : nil)
        handedOut = (ready.entries.last, ready.snapshot?.metadata.index, appliedTo)
        return ready
    }

    /// Acknowledges the last `Ready`: its entries and snapshot are persisted and its committed entries
    /// applied.
    public func advance() {
        guard let handed = handedOut else { preconditionFailure("advance() without ready()") }
        handedOut = nil
        if let snapshotIndex = handed.snapshotIndex, log.unstable.snapshot?.metadata.index == snapshotIndex {
            log.unstable.snapshot = nil
            log.applied = max(log.applied, snapshotIndex)
        }
        if let last = handed.lastEntry {
            log.unstable.stableTo(index: last.index, term: last.term)
        }
        if let appliedTo = handed.appliedTo { log.applied = max(log.applied, appliedTo) }
        checkInvariants()
    }

    // MARK: - Roles

    func reset(term newTerm: UInt64) {
        if newTerm != term {
            term = newTerm
            vote = nil
        }
        leader = nil
        electionElapsed = 0
        heartbeatElapsed = 0
        randomizedElectionTimeout = config.electionTimeoutTicks
            + Int(random.next(upperBound: UInt64(config.electionTimeoutTicks)))
        votes = [:]
        leadTransferee = nil
        progress = [:]
    }

    func becomeFollower(term newTerm: UInt64, leader newLeader: NodeID?) {
        reset(term: newTerm)
        role = .follower
        leader = newLeader
    }

    func becomePreCandidate() {
        // Neither the term nor the vote changes: that is the point of pre-vote (Raft thesis §9.6).
        votes = [:]
        leader = nil
        role = .preCandidate
    }

    func becomeCandidate() {
        reset(term: term + 1)
        vote = id
        role = .candidate
    }

    func becomeLeader() {
        reset(term: term)
        role = .leader
        leader = id
        for member in members {
            var pr = Progress(next: log.lastIndex + 1)
            if member == id { pr.match = log.lastIndex }
            pr.recentActive = true
            progress[member] = pr
        }
        // Raft §8: a no-op of the new term, so entries of earlier terms commit with it (§5.4.2).
        _ = appendEntry(config.noopPayload())
    }

    // MARK: - Ticks

    func tickElection() {
        electionElapsed += 1
        if electionElapsed >= randomizedElectionTimeout {
            electionElapsed = 0
            hup(transfer: false)
        }
    }

    func tickLeader() {
        heartbeatElapsed += 1
        electionElapsed += 1
        if electionElapsed >= config.electionTimeoutTicks {
            electionElapsed = 0
            if config.checkQuorum && !quorumActive() {
                becomeFollower(term: term, leader: nil)
                return
            }
            leadTransferee = nil  // a transfer that did not finish within an election timeout is abandoned
        }
        if heartbeatElapsed >= config.heartbeatTicks {
            heartbeatElapsed = 0
            for member in members where member != id { sendHeartbeat(to: member) }
        }
    }

    /// Whether a majority (counting this leader) was heard from since the last check; resets the marks.
    func quorumActive() -> Bool {
        var active = 0
        for member in members {
            if member == id || progress[member]?.recentActive == true { active += 1 }
            if member != id { progress[member]?.recentActive = false }
        }
        return active >= quorum
    }

    // MARK: - Invariants

    func checkInvariants() {
        assert(log.committed <= log.lastIndex, "Invariant: commit <= lastIndex")
        assert(log.applied <= log.committed, "Invariant: applied <= committed")
        assert(log.committed + 1 >= log.firstIndex, "Invariant: committed >= firstIndex - 1")
        assert(role != .leader || leader == id, "Invariant: a leader knows itself as leader")
        assert(role != .candidate || vote == id, "Invariant: a candidate voted for itself")
    }

    func send(_ message: Message) {
        outbox.append(message)
    }
}
