/// Raft as a pure state machine (issue 5; ARCHITECTURE.md, "Replication"), modelled on etcd-io/raft.
///
/// Inputs are `RaftNode.step(_:)` (a message from a peer) and `RaftNode.tick()` (one logical clock tick);
/// proposals enter through `RaftNode.propose(_:)`. The output is a `Ready` value listing what to persist
/// (hard state, entries, a snapshot), what to send and what became committed. The caller persists before
/// it sends and applies after it persists (see `Ready`), then calls `RaftNode.advance()`.
///
/// No I/O, no clocks, no threads; randomness (the election timeout jitter) only from a seeded source
/// passed in. The broker's driver loop (SluiceBroker) does the I/O; the deterministic simulation tests
/// drive many nodes in one process.
///
/// The stable log is read through `RaftStorage`; the driver writes to the same object. For a partition, an
/// entry is a record batch and its term is the batch's leader epoch.
enum SluiceRaftModule {}
