import NIOConcurrencyHelpers
import SluiceLog
import SluiceWire

/// Hands out producer ids for idempotent producers, unique across restarts.
///
/// Ids are reserved in blocks: `meta/producer-ids` holds the first id of the next block and is written
/// (atomically, fsynced) before any id of the current block is handed out, so a crash can skip ids but
/// never reuse one.
///
/// In a cluster every broker hands out ids, so each has its own space: node n allocates from n · 2^32
/// on (keyed by node id, not list position, so adding a member moves nobody). Two brokers giving the
/// same id to two producers would make one producer's batches look like retries of the other's,
/// acknowledged and dropped.
final class ProducerIdAllocator: @unchecked Sendable {
    static let blockSize: Int64 = 1000
    /// Ids in one broker's space.
    static let spaceSize: Int64 = 1 << 32
    private let directory: String
    private let space: Range<Int64>
    private let lock = NIOLock()
    private var next: Int64
    private var blockEnd: Int64

    /// `spaceIndex`: this broker's node id in a cluster (0 alone).
    init(directory: String, spaceIndex: Int = 0) {
        precondition(spaceIndex >= 0 && spaceIndex < Int(Int64.max / Self.spaceSize), "space index \(spaceIndex) out of range")
        self.directory = directory
        let start = Int64(spaceIndex) * Self.spaceSize
        space = start..<(start + Self.spaceSize)
        next = start
        blockEnd = start
    }

    private var path: String { directory + "/producer-ids" }

    /// A new id with epoch 0, or, for an existing id, the same id with the next epoch (which fences
    /// the previous instance of that producer).
    func allocate(existing: Int64, epoch: Int16) throws -> (Int64, Int16) {
        if existing >= 0 {
            guard epoch >= 0 && epoch < Int16.max else {
                throw WireError(.invalidProducerEpoch, "producer \(existing) epoch \(epoch) cannot be bumped; request a new producer id")
            }
            return (existing, epoch + 1)
        }
        return (try allocateRange(count: 1).lowerBound, 0)
    }

    /// `count` consecutive new ids (epoch 0): a processor takes one per task, so that each task numbers
    /// its own output sequences.
    func allocateRange(count: Int64) throws -> Range<Int64> {
        precondition(count > 0 && count <= Self.rangeMax, "allocateRange: count \(count) outside 1...\(Self.rangeMax)")
        return try lock.withLock {
            if next + count > blockEnd {
                var start = next
                if let bytes = try FileSystem.readSmallFile(path, limit: 64) {
                    // Starting over at 0 would hand out ids that partitions still remember: refuse instead.
                    guard let text = String(validating: bytes, as: UTF8.self), let stored = Int64(text.trimmed()), stored >= 0 else {
                        throw WireError(.storageError, "\(path) does not hold a producer id; restore it or write a number above every id in use")
                    }
                    start = max(stored, next)
                }
                let end = start + max(Self.blockSize, count)
                guard space.contains(start), end <= space.upperBound else {
                    throw WireError(.storageError, "\(path) says \(start), outside this broker's producer id space \(space); "
                        + "the file belongs to another broker or the space is used up")
                }
                try FileSystem.createDirectory(directory)
                try FileSystem.writeAtomically(Array("\(end)\n".utf8), to: path, directory: directory)
                next = start
                blockEnd = end
            }
            defer { next += count }
            return next..<(next + count)
        }
    }

    /// Most ids one call may take.
    static let rangeMax: Int64 = 1 << 20
}
