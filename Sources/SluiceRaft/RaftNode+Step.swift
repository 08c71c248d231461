extension RaftNode {
    /// Feeds one message from a peer. Stale, duplicated, reordered or malformed messages are ignored or
    /// answered; none can trap.
    public func step(_ m: Message) {
        guard m.to == id, m.from != id, members.contains(m.from), isPlausible(m) else { return }
        guard stepTerm(m) else { return }
        switch m.kind {
        case .preVote, .vote:
            handleVoteRequest(m)
        default:
            switch role {
            case .leader: stepLeader(m)
            case .candidate, .preCandidate: stepCandidate(m)
            case .follower: stepFollower(m)
            }
        }
        checkInvariants()
    }

    /// Counters a correct peer can never reach: anything beyond is corrupt, and index arithmetic on it
    /// could overflow.
    static let counterMax: UInt64 = 1 << 62

    func isPlausible(_ m: Message) -> Bool {
        let limit = Self.counterMax
        return m.term < limit && m.logTerm < limit && m.index < limit && m.commit < limit && m.rejectHint < limit
            && UInt64(m.entries.count) < limit - m.index
            && (m.snapshot.map { $0.metadata.index < limit && $0.metadata.term < limit } ?? true)
    }

    /// Raft §5.1 term rules, with the pre-vote and leader-lease refinements (etcd `Step`). False when the
    /// message is done with.
    func stepTerm(_ m: Message) -> Bool {
        if m.term > term {
            if m.kind == .preVote || m.kind == .vote {
                // Leader stickiness: while in touch with a leader, ignore campaigns (thesis §9.6) — this is
                // what stops a rejoining node from disrupting a healthy leader. A transfer overrides it.
                let inLease = config.checkQuorum && leader != nil && electionElapsed < config.electionTimeoutTicks
                if inLease && !m.transfer { return false }
            }
            switch m.kind {
            case .preVote:
                break  // a pre-vote never changes our term
            case .preVoteResponse where !m.reject:
                break  // granted pre-votes carry the proposed term; we bump it only on winning
            case .append, .heartbeat, .installSnapshot:
                becomeFollower(term: m.term, leader: m.from)
            default:
                becomeFollower(term: m.term, leader: nil)
            }
            return true
        }
        if m.term < term {
            switch m.kind {
            case .append, .heartbeat:
                // A stale leader (e.g. partitioned away): tell it the new term so it steps down. Needed
                // with check-quorum/pre-vote, where our higher term would otherwise never reach it.
                send(Message(kind: .appendResponse, from: id, to: m.from, term: term))
            case .preVote:
                send(Message(kind: .preVoteResponse, from: id, to: m.from, term: term, reject: true))
            default:
                break
            }
            return false
        }
        return true
    }

    /// Raft §5.2, §5.4.1: grant if we have not voted for another in this term and the log is up to date.
    func handleVoteRequest(_ m: Message) {
        let responseKind: Message.Kind = m.kind == .preVote ? .preVoteResponse : .voteResponse
        let canVote = !abstaining
            && (vote == m.from || (vote == nil && leader == nil) || (m.kind == .preVote && m.term > term))
        if canVote && log.isUpToDate(index: m.index, term: m.logTerm) {
            // A pre-vote grant carries the proposed term, so the pre-candidate counts it.
            send(Message(kind: responseKind, from: id, to: m.from, term: m.term))
            if m.kind == .vote {
                electionElapsed = 0
                vote = m.from
            }
        } else {
            send(Message(kind: responseKind, from: id, to: m.from, term: term, reject: true))
        }
    }

    func stepFollower(_ m: Message) {
        switch m.kind {
        case .append, .heartbeat, .installSnapshot:
            electionElapsed = 0
            leader = m.from
            handleFromLeader(m)
        case .timeoutNow:
            hup(transfer: true)
        default:
            break
        }
    }

    func stepCandidate(_ m: Message) {
        switch m.kind {
        case .append, .heartbeat, .installSnapshot:
            // Someone won this term (Raft §5.2).
            becomeFollower(term: m.term, leader: m.from)
            handleFromLeader(m)
        case .preVoteResponse where role == .preCandidate, .voteResponse where role == .candidate:
            if votes[m.from] == nil { votes[m.from] = !m.reject }
            tallyVotes()
        default:
            break
        }
    }

    func tallyVotes() {
        let granted = votes.values.filter { $0 }.count
        let rejected = votes.count - granted
        if granted >= quorum {
            if role == .preCandidate { campaign(preElection: false, transfer: false) } else { becomeLeader() }
        } else if rejected >= quorum {
            becomeFollower(term: term, leader: nil)
        }
    }

    func handleFromLeader(_ m: Message) {
        switch m.kind {
        case .append: handleAppend(m)
        case .heartbeat: handleHeartbeat(m)
        case .installSnapshot: handleSnapshot(m)
        default: break
        }
    }

    // MARK: - Elections

    func hup(transfer: Bool) {
        guard role != .leader, !abstaining else { return }
        campaign(preElection: config.preVote && !transfer, transfer: transfer)
    }

    func campaign(preElection: Bool, transfer: Bool) {
        let kind: Message.Kind
        let voteTerm: UInt64
        if preElection {
            becomePreCandidate()
            kind = .preVote
            voteTerm = term + 1
        } else {
            becomeCandidate()
            kind = .vote
            voteTerm = term
        }
        votes[id] = true
        if votes.count >= quorum {  // a group of one
            tallyVotes()
            return
        }
        for member in members where member != id {
            send(Message(
                kind: kind, from: id, to: member, term: voteTerm, logTerm: log.lastTerm, index: log.lastIndex,
                transfer: transfer))
        }
    }

    // MARK: - Follower side of replication

    /// Raft §5.3 AppendEntries receiver, with etcd's conflict hint for fast back-off.
    func handleAppend(_ m: Message) {
        if m.index < log.committed {
            // Everything up to our commit already matches the leader's log (Log Matching).
            send(Message(kind: .appendResponse, from: id, to: m.from, term: term, index: log.committed))
            return
        }
        guard isWellFormed(m) else { return }
        switch log.maybeAppend(index: m.index, logTerm: m.logTerm, commit: m.commit, entries: m.entries) {
        case .appended(let lastNew):
            // Holding the leader's log through its commit, we hold every committed entry again.
            if abstaining && lastNew >= m.commit { abstaining = false }
            send(Message(kind: .appendResponse, from: id, to: m.from, term: term, index: lastNew))
        case .mismatch:
            // Point the leader at the largest index that can still match: at most our last index, and
            // skipping every entry of ours with a term above the leader's prevLogTerm.
            let hint = log.findConflictByTerm(index: min(m.index, log.lastIndex), term: m.logTerm)
            send(Message(
                kind: .appendResponse, from: id, to: m.from, term: term, logTerm: hint.term, index: m.index,
                reject: true, rejectHint: hint.index))
        case .conflictsWithCommitted:
            break
        }
    }

    /// Entries must follow prevIndex contiguously with terms that never decrease and never pass the
    /// sender's term; anything else did not come from a correct leader.
    func isWellFormed(_ m: Message) -> Bool {
        var expected = m.index + 1
        var previousTerm = m.logTerm
        for entry in m.entries {
            guard entry.index == expected, entry.term >= previousTerm, entry.term <= m.term else { return false }
            expected += 1
            previousTerm = entry.term
        }
        return true
    }

    func handleHeartbeat(_ m: Message) {
        // The leader sends min(match, commit), so our log matches its up to there; clamp anyway.
        log.commitTo(min(m.commit, log.lastIndex))
        send(Message(kind: .heartbeatResponse, from: id, to: m.from, term: term))
    }

    /// Raft §7 InstallSnapshot receiver.
    func handleSnapshot(_ m: Message) {
        guard let snap = m.snapshot else { return }
        let meta = snap.metadata
        if meta.index <= log.committed {
            // Old news; tell the leader where we are.
        } else if log.matchTerm(meta.index, meta.term) {
            // We hold the snapshot's last entry, so everything before it matches too: just commit.
            log.commitTo(meta.index)
        } else {
            log.restore(snap)
        }
        // The commit, not the last index: entries past it may still diverge from the leader's log.
        send(Message(kind: .snapshotResponse, from: id, to: m.from, term: term, index: log.committed))
    }
}
