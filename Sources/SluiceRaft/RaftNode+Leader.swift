extension RaftNode {
    /// Appends one entry of the current term to the leader's own log and replicates it.
    func appendEntry(_ payload: [UInt8]) -> UInt64 {
        let index = log.lastIndex + 1
        log.append([Entry(term: term, index: index, payload: payload)])
        // Counting ourselves before the entry is persisted is safe: no message revealing the commit leaves
        // before the Ready that carries the entry has been persisted.
        _ = progress[id]?.maybeUpdate(index)
        if !maybeCommit() {
            for member in members where member != id { sendAppend(to: member) }
        }
        return index
    }

    func stepLeader(_ m: Message) {
        guard progress[m.from] != nil else { return }
        progress[m.from]?.recentActive = true
        switch m.kind {
        case .appendResponse: handleAppendResponse(m)
        case .heartbeatResponse: handleHeartbeatResponse(m)
        case .snapshotResponse: handleSnapshotResponse(m)
        default: break
        }
    }

    func handleAppendResponse(_ m: Message) {
        guard var pr = progress[m.from] else { return }
        if m.reject {
            // Fast back-off: jump over the follower's whole conflicting term at once (etcd).
            var matchHint = m.rejectHint
            if m.logTerm > 0 { matchHint = log.findConflictByTerm(index: m.rejectHint, term: m.logTerm).index }
            if pr.maybeDecrTo(rejected: m.index, matchHint: matchHint) {
                if pr.state == .replicate { pr.becomeProbe() }
                progress[m.from] = pr
                sendAppend(to: m.from)
            }
            return
        }
        let wasPaused = pr.isPaused
        guard pr.maybeUpdate(m.index) else {
            progress[m.from] = pr
            return
        }
        if pr.state != .replicate { pr.becomeReplicate() }
        progress[m.from] = pr
        // A new commit is broadcast by maybeCommit; otherwise keep this follower's stream going.
        if !maybeCommit() && (wasPaused || pr.next <= log.lastIndex) {
            sendAppend(to: m.from)
        }
        if m.from == leadTransferee && pr.match == log.lastIndex {
            send(Message(kind: .timeoutNow, from: id, to: m.from, term: term))
        }
    }

    func handleHeartbeatResponse(_ m: Message) {
        guard var pr = progress[m.from] else { return }
        // A lost probe or snapshot must not stall the follower forever: retry on each heartbeat round.
        if pr.state == .snapshot { pr.becomeProbe() }
        pr.probeSent = false
        progress[m.from] = pr
        if pr.match < log.lastIndex { sendAppend(to: m.from) }
    }

    func handleSnapshotResponse(_ m: Message) {
        guard var pr = progress[m.from] else { return }
        _ = pr.maybeUpdate(m.index)
        if pr.state == .snapshot { pr.becomeProbe() }
        pr.probeSent = false
        progress[m.from] = pr
        sendAppend(to: m.from)
    }

    /// Raft §5.3, §5.4.2: advance the commit to the highest index on a majority — but only when that
    /// entry is of the current term; older entries commit indirectly with it (Figure 8).
    @discardableResult
    func maybeCommit() -> Bool {
        let matches = members.map { progress[$0]?.match ?? 0 }.sorted(by: >)
        let candidate = matches[quorum - 1]
        guard candidate > log.committed, log.term(at: candidate) == term else { return false }
        log.commitTo(candidate)
        for member in members where member != id { sendAppend(to: member) }
        return true
    }

    /// Sends what `to` is missing: entries after its `next`, or a snapshot when they are compacted away.
    func sendAppend(to member: NodeID) {
        guard var pr = progress[member], !pr.isPaused else { return }
        let prevIndex = pr.next - 1
        guard let prevTerm = log.term(at: prevIndex),
            let entries = log.entries(from: pr.next, to: log.lastIndex + 1, maxCount: config.maxEntriesPerAppend)
        else {
            sendSnapshot(to: member, progress: &pr)
            progress[member] = pr
            return
        }
        send(Message(
            kind: .append, from: id, to: member, term: term, logTerm: prevTerm, index: prevIndex,
            entries: entries, commit: log.committed))
        switch pr.state {
        case .replicate: if let last = entries.last { pr.next = last.index + 1 }
        case .probe: pr.probeSent = true
        case .snapshot: break
        }
        progress[member] = pr
    }

    func sendSnapshot(to member: NodeID, progress pr: inout Progress) {
        let snap = log.storage.snapshot()
        // The storage's snapshot covers everything before its first index, which is ours (a leader never
        // holds an unstable snapshot: it restores one only as a follower and advances before leading).
        guard snap.metadata.index + 1 >= log.firstIndex else { return }
        send(Message(kind: .installSnapshot, from: id, to: member, term: term, snapshot: snap))
        pr.becomeSnapshot(snap.metadata.index)
    }

    func sendHeartbeat(to member: NodeID) {
        // Never more than the follower is known to hold: its log past `match` may still diverge.
        let commit = min(progress[member]?.match ?? 0, log.committed)
        send(Message(kind: .heartbeat, from: id, to: member, term: term, commit: commit))
    }
}
