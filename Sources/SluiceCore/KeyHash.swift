/// Kafka's key hash, shared by the client's partitioner and the broker's processors (which route
/// their output the way a client would), so a key lands on the same partition whoever writes it.
public enum KeyHash {
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

    /// The partition Kafka's default partitioner gives `key` among `partitionCount` partitions:
    /// `(murmur2(key) & 0x7fffffff) % partitionCount`.
    ///
    /// - Precondition: `partitionCount > 0` (a topic always has a partition).
    public static func partition(forKey key: UnsafeRawBufferPointer, partitionCount: Int32) -> Int32 {
        precondition(partitionCount > 0, "partitionCount must be positive, got \(partitionCount)")
        return (murmur2(key) & 0x7fff_ffff) % partitionCount
    }
}
