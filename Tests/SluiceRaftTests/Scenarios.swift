/// The scenario scripts (see `ScenarioRunner` for the commands).
enum Scenarios {
    /// Raft §5.2: a candidate with votes from a majority becomes leader; its no-op (§8) commits everywhere.
    static let basicElection = """
        cluster 3
        campaign 1
        state 1: precandidate term 0       # pre-vote first: the term does not move yet (thesis §9.6)
        deliver
        state 1: leader term 1 commit 1 lead 1
        state 2: follower term 1 commit 1 lead 1 vote 1
        state 3: follower term 1 commit 1 lead 1 vote 1
        propose 1 "a"
        propose 2 "b" fails notLeader 1
        deliver
        values 2: a
        values 3: a
        state 3: follower term 1 commit 2
        log 3: 1 1
        """

    /// Raft thesis §9.6 (pre-vote) and §6.2 (check-quorum lease): a node cut off keeps campaigning, but
    /// never bumps its term without a pre-vote majority; on rejoining it does not depose the leader.
    static let preVoteRejoin = """
        cluster 3
        campaign 1
        deliver
        isolate 3
        propose 1 "a"
        deliver
        tick 3 x100                          # many election timeouts, alone
        state 3: precandidate term 1
        heal
        campaign 3                           # its pre-votes reach the others now
        deliver
        state 1: leader term 1
        state 2: follower term 1 lead 1
        tick 1                               # heartbeat: 3 learns the leader and catches up
        deliver
        state 3: follower term 1 lead 1 commit 2
        values 3: a
        """

    /// Raft §5.3: a follower's divergent uncommitted suffix is found and replaced; the conflict hint
    /// (etcd's fast back-off) skips a whole term's worth of entries in one round trip.
    static let divergenceRepair = """
        cluster 3
        campaign 1
        deliver
        partition 1 | 2 3
        propose 1 "x1"                       # leader 1 in term 1 appends five entries nobody else gets
        propose 1 "x2"
        propose 1 "x3"
        propose 1 "x4"
        propose 1 "x5"
        drop
        tick 3 x10                           # 3 stops hearing from 1: its leader lease runs out
        campaign 2
        deliver
        state 2: leader term 2 commit 2
        propose 2 "y1"
        propose 2 "y2"
        deliver
        transfer 2 3                         # 3 leads term 3: it starts with next = its last index + 1
        deliver
        state 3: leader term 3 commit 5 last 5
        log 1: 1 1 1 1 1 1
        heal
        tick 3                               # a heartbeat: 1 learns of term 3, 3 probes at index 5
        deliver
        rejects 1: 1                         # one rejection (hint: index 1), not one per entry back
        log 1: 1 2 2 2 3
        state 1: follower term 3 commit 5 lead 3
        values 1: y1 y2
        """

    /// Raft §5.4.2, Figure 8 (c): S1 leads term 4 and copies its term-2 entry at index 2 onto a majority
    /// (S1, S2, S3). It must not count that as committed — S5 (last term 3) can still win and replace it.
    static let figure8 = """
        cluster 5 maxEntriesPerAppend=1
        disk 1: term 3 commit 1 log 1 2
        disk 2: term 3 commit 1 log 1 2
        disk 3: term 3 vote 5 commit 1 log 1
        disk 4: term 3 vote 5 commit 1 log 1
        disk 5: term 3 vote 5 commit 1 log 1 3
        partition 1 2 3 4 | 5
        campaign 1
        deliver votes
        state 1: leader term 4 commit 1 last 3
        partition 1 2 3 | 4 | 5
        drop
        tick 1                               # heartbeats; 2 and 3 answer, 1 probes them
        deliver 1 -> 2
        deliver 1 -> 3
        deliver 2 -> 1
        deliver 3 -> 1
        deliver 1 -> 2                       # 2 holds index 2 (term 2): it takes the no-op at 3
        deliver 1 -> 3                       # 3 lacks index 2: rejected, probed back
        deliver 2 -> 1
        deliver 3 -> 1
        deliver 1 -> 3                       # 3 takes index 2 (term 2), one entry per message
        deliver 3 -> 1
        log 3: 1 2
        state 1: leader term 4 commit 1      # index 2 is on 1, 2, 3 but is of term 2: not committed
        crash 1
        partition 3 4 5 | 1 2
        tick 3 x10                           # 3's lease on leader 1 runs out
        campaign 5                           # 3 already voted in term 4: rejected, 5 learns term 4
        deliver
        campaign 5
        deliver
        state 5: leader term 5
        log 3: 1 3 5                         # which is why: 5 overwrote index 2 on a majority
        heal
        restart 1
        tick 5
        deliver
        log 1: 1 3 5
        log 2: 1 3 5
        state 1: follower term 5 commit 3
        """

    /// Raft thesis §3.10: the leader brings the target up to date, then sends timeoutNow; the target
    /// campaigns at once, skipping pre-vote, and wins in the next term.
    static let leadershipTransfer = """
        cluster 3
        campaign 1
        deliver
        isolate 3
        propose 1 "a"
        deliver
        heal
        transfer 1 3
        propose 1 "b" fails transferring
        deliver
        state 3: leader term 2 lead 3
        state 1: follower term 2 lead 3
        propose 3 "c"
        deliver
        values 1: a c
        values 3: a c
        """

    /// Raft §7: the leader has discarded (retention) entries a lagging follower needs, so it sends a
    /// snapshot — its log start — and then the entries after it.
    static let snapshotCatchUp = """
        cluster 3
        campaign 1
        deliver
        isolate 3
        propose 1 "a"
        propose 1 "b"
        propose 1 "c"
        deliver
        compact 1
        state 1: leader first 5 last 4 commit 4
        propose 1 "d"
        deliver
        heal
        tick 1
        deliver
        state 3: follower term 1 first 5 commit 5
        values 3: a b c d
        log 3: 1
        """

    /// Raft thesis §6.2 (check-quorum): a leader that hears from no majority for an election timeout
    /// steps down, so clients stop writing to it; the majority elects a new leader.
    static let checkQuorum = """
        cluster 3
        campaign 1
        deliver
        partition 1 | 2 3
        tick 1 x19                           # the first check still counts the acks before the cut
        state 1: leader term 1
        tick 1                               # the second finds no majority heard from
        state 1: follower term 1 lead none
        propose 1 "lost" fails notLeader none
        tick 3 x10
        campaign 2
        deliver
        state 2: leader term 2
        heal
        tick 2
        deliver
        state 1: follower term 2 lead 2
        """

    /// A crash loses what was never handed to the disk, nothing else: the hard state, the log and the
    /// commit come back, and the application replays committed entries.
    static let crashRestart = """
        cluster 3
        campaign 1
        deliver
        propose 1 "a"
        deliver
        tick 1
        deliver
        crash 2
        state 2: down
        restart 2
        state 2: follower term 1 vote 1 commit 2
        values 2: a
        crash 1
        tick 3 x10
        campaign 2
        deliver
        state 2: leader term 2
        propose 2 "b"
        deliver
        values 3: a b
        """
}
