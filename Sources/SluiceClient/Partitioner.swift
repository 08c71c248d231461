/// Choosing a partition for a record, the way Kafka's Java producer does.
///
/// Keyed records hash with Kafka's murmur2 (seed `0x9747b28c`) and take
/// `(hash & 0x7fffffff) % partitionCount`, exactly as `BuiltInPartitioner.partitionForKey` does, so a
/// team moving from Kafka to Sluice keeps every key on the partition it was on, and per-key ordering
/// survives the move. Keyless records go through ``StickyPartitioner``.
///
/// Pure functions, no state: safe from any thread.
public enum Partitioner {
    /// Kafka's 32-bit murmur2 of `key` (`org.apache.kafka.common.utils.Utils.murmur2`), bit for bit.
    ///
    /// Java computes on signed `int`s with wrapping multiplication and logical shifts (`>>>`); the same
    /// is done here on `UInt32` with `&*` and `>>`, and the bits are reinterpreted as `Int32` at the end.
    public static func murmur2(_ key: UnsafeRawBufferPointer) -> Int32 {
        let seed: UInt32 = 0x9747_b28c
        // Mixing constants from Austin Appleby's MurmurHash2; Kafka uses them unchanged.
        let m: UInt32 = 0x5bd1_e995
        let r: UInt32 = 24
        let length = key.count
        // Java's `seed ^ length` takes the length as an `int`; keys never approach 2 GiB, and a longer
        // one still hashes deterministically because only the low 32 bits take part.
        var h = seed ^ UInt32(truncatingIfNeeded: length)

        let wholeWords = length / 4
        for word in 0..<wholeWords {
            let i = word * 4
            // Little-endian assembly, byte by byte: the buffer need not be aligned.
            var k = UInt32(key[i]) | UInt32(key[i + 1]) << 8 | UInt32(key[i + 2]) << 16 | UInt32(key[i + 3]) << 24
            k = k &* m
            k ^= k >> r
            k = k &* m
            h = h &* m
            h ^= k
        }

        // The 1 to 3 trailing bytes, as Java's fall-through switch handles them.
        let tail = wholeWords * 4
        switch length % 4 {
        case 3:
            h ^= UInt32(key[tail + 2]) << 16
            h ^= UInt32(key[tail + 1]) << 8
            h ^= UInt32(key[tail])
            h = h &* m
        case 2:
            h ^= UInt32(key[tail + 1]) << 8
            h ^= UInt32(key[tail])
            h = h &* m
        case 1:
            h ^= UInt32(key[tail])
            h = h &* m
        default:
            break
        }

        h ^= h >> 13
        h = h &* m
        h ^= h >> 15
        return Int32(bitPattern: h)
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
        precondition(partitionCount > 0, "partitionCount must be positive, got \(partitionCount)")
        return (murmur2(key) & 0x7fff_ffff) % partitionCount
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
