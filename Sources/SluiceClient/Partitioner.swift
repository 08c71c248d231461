import SluiceCore

/// Choosing a partition for a record, the way Kafka's Java producer does.
///
/// Keyed records hash with Kafka's murmur2 (seed `0x9747b28c`) and take
/// `(hash & 0x7fffffff) % partitionCount`, exactly as `BuiltInPartitioner.partitionForKey` does, so a
/// team moving from Kafka to Sluice keeps every key on the partition it was on, and per-key ordering
/// survives the move. Keyless records go through ``StickyPartitioner``.
///
/// Pure functions, no state: safe from any thread.
public enum Partitioner {
    /// Kafka's 32-bit murmur2 of `key` (`org.apache.kafka.common.utils.Utils.murmur2`), bit for bit;
    /// see `KeyHash.murmur2`, which the broker's processors share so they route keys as clients do.
    public static func murmur2(_ key: UnsafeRawBufferPointer) -> Int32 {
        KeyHash.murmur2(key)
    }

    /// Kafka's murmur2 of `key`; the same hash as the buffer form.
    public static func murmur2(_ key: [UInt8]) -> Int32 {
        key.withUnsafeBytes { murmur2($0) }
    }

    /// The partition Kafka's default partitioner gives `key` among `partitionCount` partitions:
    /// `(murmur2(key) & 0x7fffffff) % partitionCount`, always in `0..<partitionCount`.
    ///
    /// The mask, not `abs`, makes the hash non-negative; that is Kafka's `Utils.toPositive`, and using
    /// `abs` would move the keys whose hash is negative.
    ///
    /// - Precondition: `partitionCount > 0`. Callers take it from topic metadata, where a topic
    ///   always has at least one partition; zero is a programming error, not an input error.
    public static func partition(forKey key: [UInt8], partitionCount: Int32) -> Int32 {
        key.withUnsafeBytes { KeyHash.partition(forKey: $0, partitionCount: partitionCount) }
    }
}

/// Picks partitions for keyless records: every record goes to the same partition until the batch for
/// it fills (``batchFull()``) or the caller asks to move on (``next()``), then the next partition in
/// round-robin order takes over.
///
/// Sticking fills whole batches, so a keyless stream sends few, large batches instead of one small
/// batch per partition per linger period (the reason Kafka 2.4 added its sticky partitioner, KIP-480).
/// Unlike Kafka's, which picks the next partition at random, this one is deterministic: the first
/// partition comes from `seed`, and each move adds one. Tests and benchmarks replay exactly.
///
/// A value type with no locking: one per producer, used from its own task.
///
/// Invariant: `0 <= current < partitionCount`.
public struct StickyPartitioner: Sendable, Hashable {
    /// How many partitions the topic has.
    public private(set) var partitionCount: Int32
    /// The partition keyless records go to now.
    public private(set) var current: Int32

    /// A partitioner over `partitionCount` partitions that starts at `seed % partitionCount`.
    ///
    /// - Precondition: `partitionCount > 0` (a topic always has a partition; see
    ///   ``Partitioner/partition(forKey:partitionCount:)``).
    public init(partitionCount: Int32, seed: UInt64) {
        precondition(partitionCount > 0, "partitionCount must be positive, got \(partitionCount)")
        self.partitionCount = partitionCount
        self.current = Int32(truncatingIfNeeded: seed % UInt64(partitionCount))
        checkInvariant()
    }

    /// The partition for the next keyless record; does not move.
    public func partition() -> Int32 {
        current
    }

    /// Called when the batch for ``current`` is full (or sent): later records go to the next partition.
    public mutating func batchFull() {
        advance()
    }

    /// Moves to the next partition and returns it.
    @discardableResult
    public mutating func next() -> Int32 {
        advance()
        return current
    }

    /// Follows a change in the topic's partition count (metadata refresh). The current partition is kept
    /// while it still exists, so a growing topic does not cut a batch short.
    ///
    /// - Precondition: `newCount > 0`.
    public mutating func updatePartitionCount(_ newCount: Int32) {
        precondition(newCount > 0, "partitionCount must be positive, got \(newCount)")
        partitionCount = newCount
        if current >= newCount {
            current %= newCount
        }
        checkInvariant()
    }

    private mutating func advance() {
        // `current + 1` cannot overflow: current < partitionCount <= Int32.max.
        current = (current + 1) % partitionCount
        checkInvariant()
    }

    private func checkInvariant() {
        assert(current >= 0 && current < partitionCount, "sticky partition \(current) outside 0..<\(partitionCount)")
    }
}
