/// A node's identity within one Raft group. Static membership: the set is fixed by `RaftConfig.peers`.
public typealias NodeID = UInt64

/// One log entry. For a partition log, an entry is a record batch and `term` its leader epoch.
public struct Entry: Equatable, Sendable {
    /// The term of the leader that created the entry.
    public var term: UInt64
    /// The entry's position in the log; the first entry ever is 1.
    public var index: UInt64
    /// Opaque bytes; an empty payload is the no-op a new leader appends (Raft §8).
    public var payload: [UInt8]

    public init(term: UInt64, index: UInt64, payload: [UInt8] = []) {
        self.term = term
        self.index = index
        self.payload = payload
    }
}

/// The state that must be on stable storage before any message that depends on it is sent (Raft Figure 2,
/// "Persistent state on all servers"; `commit` is kept too so a restart does not re-expose less).
public struct HardState: Equatable, Sendable {
    /// The latest term this node has seen.
    public var term: UInt64
    /// The candidate this node voted for in `term`, if any.
    public var vote: NodeID?
    /// The highest index known committed. Invariant: commit <= last persisted index.
    public var commit: UInt64

    public init(term: UInt64 = 0, vote: NodeID? = nil, commit: UInt64 = 0) {
        self.term = term
        self.vote = vote
        self.commit = commit
    }
}

/// The position a snapshot (or a log start after retention) covers: every entry up to `index` is in it.
public struct SnapshotMetadata: Equatable, Sendable {
    /// The last index the snapshot covers.
    public var index: UInt64
    /// The term of the entry at `index`.
    public var term: UInt64

    public init(index: UInt64, term: UInt64) {
        self.index = index
        self.term = term
    }
}

/// A snapshot: its position plus opaque application bytes (empty for a partition log, whose "snapshot" is
/// just a new log start).
public struct Snapshot: Equatable, Sendable {
    public var metadata: SnapshotMetadata
    public var data: [UInt8]

    public init(metadata: SnapshotMetadata, data: [UInt8] = []) {
        self.metadata = metadata
        self.data = data
    }
}

/// A message between two nodes of a group. One flat shape for every kind, as in etcd's raftpb.Message; the
/// doc of each `Kind` says which fields it uses. Messages come from the network: `RaftNode.step(_:)`
/// ignores or answers anything stale or malformed, it never traps on one.
public struct Message: Equatable, Sendable {
    public enum Kind: Equatable, Sendable, CaseIterable {
        /// "Would you vote for me in `term`?" without changing anyone's term (Raft thesis §9.6).
        /// index/logTerm: the candidate's last entry.
        case preVote
        /// Answer to `preVote`: `reject` or a grant carrying the proposed term.
        case preVoteResponse
        /// RequestVote (Raft §5.2). index/logTerm: the candidate's last entry; `transfer` marks a
        /// campaign started by `timeoutNow`, which skips the leader lease check.
        case vote
        /// Answer to `vote`.
        case voteResponse
        /// AppendEntries (Raft §5.3): entries after (index, logTerm), and the leader's commit.
        case append
        /// Answer to `append`: on success index is the follower's last new index; on `reject`, index is
        /// the rejected prevIndex and rejectHint/logTerm point at a candidate match (fast back-off).
        case appendResponse
        /// Leader liveness and commit propagation; commit never exceeds what the follower is known to hold.
        case heartbeat
        /// Answer to `heartbeat`: tells the leader the follower is alive (check-quorum).
        case heartbeatResponse
        /// Leadership transfer: "campaign now, skipping pre-vote" (Raft thesis §3.10).
        case timeoutNow
        /// InstallSnapshot (Raft §7): `snapshot` replaces the follower's log up to its index.
        case installSnapshot
        /// Answer to `installSnapshot`: index is the follower's last index afterwards.
        case snapshotResponse
    }

    public var kind: Kind
    public var from: NodeID
    public var to: NodeID
    public var term: UInt64
    public var logTerm: UInt64
    public var index: UInt64
    public var entries: [Entry]
    public var commit: UInt64
    public var reject: Bool
    public var rejectHint: UInt64
    public var snapshot: Snapshot?
    public var transfer: Bool

    public init(
        kind: Kind, from: NodeID, to: NodeID, term: UInt64, logTerm: UInt64 = 0, index: UInt64 = 0,
        entries: [Entry] = [], commit: UInt64 = 0, reject: Bool = false, rejectHint: UInt64 = 0,
        snapshot: Snapshot? = nil, transfer: Bool = false
    ) {
        self.kind = kind
        self.from = from
        self.to = to
        self.term = term
        self.logTerm = logTerm
        self.index = index
        self.entries = entries
        self.commit = commit
        self.reject = reject
        self.rejectHint = rejectHint
        self.snapshot = snapshot
        self.transfer = transfer
    }
}

/// A node's role (Raft §5.1, plus the pre-candidate of the thesis §9.6).
public enum RaftRole: Equatable, Sendable {
    case follower, preCandidate, candidate, leader
}

/// Errors of the calls an application makes on a node (operating errors, not programmer errors).
public enum RaftError: Error, Equatable, Sendable {
    /// Only the leader accepts proposals; `leaderHint` is the leader this node last heard from.
    case notLeader(leaderHint: NodeID?)
    /// The leader is handing over; proposals resume on the new leader.
    case leadershipTransferInProgress
    /// The node is not a member of this group.
    case unknownNode(NodeID)
}

/// A node's static configuration.
public struct RaftConfig: Sendable {
    /// This node.
    public var id: NodeID
    /// Every member of the group, including `id`. Static membership.
    public var peers: [NodeID]
    /// T: a follower campaigns after a random timeout in [T, 2T) ticks without a leader; a leader steps
    /// down if it has not heard from a majority within T ticks (check-quorum).
    public var electionTimeoutTicks: Int
    /// A leader sends heartbeats every this many ticks. Invariant: heartbeatTicks < electionTimeoutTicks.
    public var heartbeatTicks: Int
    /// Campaign with a pre-vote round first, so a rejoining node does not bump terms (Raft thesis §9.6).
    public var preVote: Bool
    /// Leader steps down without a majority's contact in an election timeout; followers in contact with a
    /// leader ignore (pre-)votes (Raft thesis §6.2, §9.6 "leader stickiness").
    public var checkQuorum: Bool
    /// Bound on the entries in one append message.
    public var maxEntriesPerAppend: Int
    /// The payload of the no-op a new leader appends (Raft §8). A partition log stores it as a control
    /// batch naming the leader; the bytes are made once, by the leader, so every replica stores the same.
    public var noopPayload: @Sendable () -> [UInt8]
    /// Whether `Ready.committedEntries` carries the committed entries. A partition group has nothing to
    /// apply (its log is the data; the commit index is the high watermark), so it turns this off rather
    /// than read every committed batch back from disk.
    public var deliversCommittedEntries: Bool
    /// Start as a node that lost entries it may have acknowledged (its storage found them corrupt and
    /// dropped them): it neither campaigns nor grants (pre-)votes until a leader has brought its log up
    /// to that leader's commit. Its vote could otherwise elect a candidate lacking an entry whose commit
    /// counted this node's lost copy. Raft assumes disks never forget; this is the repair when one does.
    public var startsAbstaining: Bool

    public init(
        id: NodeID, peers: [NodeID], electionTimeoutTicks: Int = 10, heartbeatTicks: Int = 1,
        preVote: Bool = true, checkQuorum: Bool = true, maxEntriesPerAppend: Int = 64,
        noopPayload: @escaping @Sendable () -> [UInt8] = { [] }, deliversCommittedEntries: Bool = true,
        startsAbstaining: Bool = false
    ) {
        self.id = id
        self.peers = peers
        self.electionTimeoutTicks = electionTimeoutTicks
        self.heartbeatTicks = heartbeatTicks
        self.preVote = preVote
        self.checkQuorum = checkQuorum
        self.maxEntriesPerAppend = maxEntriesPerAppend
        self.noopPayload = noopPayload
        self.deliversCommittedEntries = deliversCommittedEntries
        self.startsAbstaining = startsAbstaining
    }
}
