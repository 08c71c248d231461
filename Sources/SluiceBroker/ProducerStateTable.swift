import SluiceCore
import SluiceWire

/// Per-partition state of idempotent producers: for each producer id, its epoch and its last few
/// batches' sequence ranges, so that a retried batch is recognised and answered with the offset it
/// got the first time instead of being stored twice.
///
/// Rules (Kafka's, protocol.md "Idempotent producers"): a batch with producer id −1 is not tracked, nor
/// is a control batch. An epoch below the known one is fenced. A new epoch must start at sequence 0.
/// Within an epoch the next batch's base sequence must be the last sequence + 1; a batch equal to one of
/// the last `batchesRememberedMax` batches is a duplicate; anything else is out of order. Sequences wrap
/// at `Int32.max` to 0.
///
/// Not thread-safe: the partition serialises check and append under its own lock.
struct ProducerStateTable {
    /// Batches remembered per producer: as many as a producer may have in flight per partition.
    static let batchesRememberedMax = 5
    /// Producers remembered per partition; the least recently written is forgotten beyond this.
    static let producersMax = 100_000

    struct BatchMetadata: Hashable {
        var firstSequence: Int32
        var lastSequence: Int32
        var firstOffset: Int64
        var lastOffset: Int64
    }

    struct Entry: Hashable {
        var epoch: Int16
        /// Oldest first.
        var batches: [BatchMetadata]
        /// Offset of the entry's last batch, used to pick what to forget first.
        var lastOffset: Int64
    }

    enum Verdict: Equatable {
        /// Append it.
        case append
        /// Already stored: answer with these offsets (after they are durable).
        case duplicate(firstOffset: Int64, lastOffset: Int64)
        case reject(WireError)
    }

    private(set) var producers: [Int64: Entry] = [:]

    /// Decides what to do with a producer's batch before it is appended.
    func check(_ header: RecordBatchHeader) -> Verdict {
        // A control batch carries no producer's records; produce refuses them before this check.
        guard header.producerId >= 0, !header.isControl else { return .append }
        let firstSequence = header.baseSequence
        guard firstSequence >= 0 else {
            return .reject(WireError(.invalidRecord, "producer \(header.producerId) sent base sequence \(firstSequence); idempotent batches need a sequence ≥ 0"))
        }
        let lastSequence = Self.lastSequence(header)
        guard let entry = producers[header.producerId] else {
            // Unknown producer: a new one starts at 0. A producer whose state was forgotten (too many
            // producers) is accepted at any sequence, as Kafka does after it expires producer ids.
            return .append
        }
        if header.producerEpoch < entry.epoch {
            return .reject(WireError(.invalidProducerEpoch,
                "producer \(header.producerId) epoch \(header.producerEpoch) is older than the current epoch \(entry.epoch): another producer instance with this id has taken over"))
        }
        if header.producerEpoch > entry.epoch {
            guard firstSequence == 0 else {
                return .reject(WireError(.outOfOrderSequence,
                    "producer \(header.producerId) started epoch \(header.producerEpoch) at sequence \(firstSequence); a new epoch starts at 0"))
            }
            return .append
        }
        if let stored = entry.batches.first(where: { $0.firstSequence == firstSequence && $0.lastSequence == lastSequence }) {
            return .duplicate(firstOffset: stored.firstOffset, lastOffset: stored.lastOffset)
        }
        let expected = entry.batches.last.map { $0.lastSequence == Int32.max ? 0 : $0.lastSequence + 1 } ?? 0
        guard firstSequence == expected else {
            return .reject(WireError(.outOfOrderSequence,
                "producer \(header.producerId) epoch \(header.producerEpoch) sent sequence \(firstSequence) but the broker expected \(expected): a batch in between was lost; the producer must reset"))
        }
        return .append
    }

    /// Records a batch that was appended (or found in the log while loading).
    mutating func record(_ header: RecordBatchHeader, firstOffset: Int64, lastOffset: Int64) {
        // A control batch (a leader's no-op entry) has no sequence of any producer's: whatever its producer
        // fields hold, it must not start, advance or fence an entry.
        guard header.producerId >= 0, header.baseSequence >= 0, !header.isControl else { return }
        let batch = BatchMetadata(firstSequence: header.baseSequence, lastSequence: Self.lastSequence(header),
                                  firstOffset: firstOffset, lastOffset: lastOffset)
        if var entry = producers[header.producerId], entry.epoch == header.producerEpoch {
            entry.batches.append(batch)
            if entry.batches.count > Self.batchesRememberedMax { entry.batches.removeFirst() }
            entry.lastOffset = lastOffset
            producers[header.producerId] = entry
        } else if producers[header.producerId].map({ $0.epoch < header.producerEpoch }) ?? true {
            producers[header.producerId] = Entry(epoch: header.producerEpoch, batches: [batch], lastOffset: lastOffset)
        }
        // Forget in bulk so the sort runs once per `forgetBatch` new producers, not on every batch.
        if producers.count > Self.producersMax + Self.forgetBatch { forgetOldest() }
    }

    /// Puts back an entry read from a snapshot.
    mutating func restore(id: Int64, entry: Entry) {
        producers[id] = entry
    }

    static let forgetBatch = 1000

    private mutating func forgetOldest() {
        let excess = producers.count - Self.producersMax
        guard excess > 0 else { return }
        let oldest = producers.sorted { $0.value.lastOffset < $1.value.lastOffset }.prefix(excess)
        for (id, _) in oldest { producers[id] = nil }
    }

    static func lastSequence(_ header: RecordBatchHeader) -> Int32 {
        let last = Int64(header.baseSequence) + Int64(header.lastOffsetDelta)
        return last > Int64(Int32.max) ? Int32(last - Int64(Int32.max) - 1) : Int32(last)
    }
}
