/// The leader's view of one follower's log (etcd's `tracker.Progress`).
struct Progress {
    enum State: Equatable {
        /// Unknown match: send one append at a time, waiting for its answer, and back off on rejects.
        case probe
        /// Known match: stream appends optimistically, advancing `next` as they are sent.
        case replicate
        /// The follower needs a snapshot; wait until it reports having it.
        case snapshot
    }

    /// The highest index known replicated on the follower. Invariant: match < next.
    var match: UInt64 = 0
    /// The next index to send.
    var next: UInt64
    var state: State = .probe
    /// In probe state: an append is out and unanswered.
    var probeSent = false
    /// In snapshot state: the index of the snapshot sent.
    var pendingSnapshot: UInt64 = 0
    /// Heard from since the last check-quorum round.
    var recentActive = false

    init(next: UInt64) { self.next = next }

    var isPaused: Bool {
        switch state {
        case .probe: return probeSent
        case .replicate: return false
        case .snapshot: return true
        }
    }

    /// The follower has everything up to `index`; false if that is old news.
    mutating func maybeUpdate(_ index: UInt64) -> Bool {
        var updated = false
        if index > match {
            match = index
            updated = true
            probeSent = false
        }
        next = max(next, index + 1)
        return updated
    }

    mutating func becomeProbe() {
        // After a snapshot the follower has at least that; start probing just past it.
        next = state == .snapshot ? max(match + 1, pendingSnapshot + 1) : match + 1
        state = .probe
        probeSent = false
        pendingSnapshot = 0
    }

    mutating func becomeReplicate() {
        state = .replicate
        next = match + 1
        probeSent = false
    }

    mutating func becomeSnapshot(_ index: UInt64) {
        state = .snapshot
        pendingSnapshot = index
        probeSent = false
    }

    /// An append at prevIndex `rejected` was refused; `matchHint` is the highest index that may match.
    /// False if the rejection is stale (an answer to an older append).
    mutating func maybeDecrTo(rejected: UInt64, matchHint: UInt64) -> Bool {
        if state == .replicate {
            guard rejected > match else { return false }
            next = match + 1
            return true
        }
        guard next == rejected + 1 else { return false }
        next = max(min(rejected, matchHint + 1), match + 1)
        probeSent = false
        return true
    }
}
