/// Raft as a pure state machine (issue 5; ARCHITECTURE.md, "Replication").
///
/// Inputs are `step(message)` and logical `tick()`; the output is a `Ready` value listing what to persist
/// (term, vote, entries), what to send and what became committed. The caller persists before it sends.
/// No I/O, no clocks, no threads; randomness only from a seeded source passed in. The broker's driver loop
/// (SluiceBroker) does the I/O; the deterministic simulation tests drive many nodes in one process.
enum SluiceRaftModule {}
