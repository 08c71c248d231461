import SluiceCore
import SluiceTestSupport
import SluiceWire
import Testing

@testable import SluiceBroker

/// The idempotent-producer rules and the snapshot written at clean shutdown.
@Suite("producer state")
struct ProducerStateTableTests {
    static func header(producer: Int64, epoch: Int16, sequence: Int32, count: Int32, base: Int64 = 0) -> RecordBatchHeader {
        var header = RecordBatchHeader(
            baseOffset: base, batchLength: 49, partitionLeaderEpoch: -1, magic: 2, crc: 0, attributes: 0,
            lastOffsetDelta: count - 1, baseTimestamp: 0, maxTimestamp: 0, producerId: producer, producerEpoch: epoch,
            baseSequence: sequence, recordCount: count)
        header.baseOffset = base
        return header
    }

    @Test("duplicates, gaps, old epochs and a new epoch's first sequence")
    func rules() {
        var table = ProducerStateTable()
        let first = Self.header(producer: 7, epoch: 0, sequence: 0, count: 3)
        #expect(table.check(first) == .append)
        table.record(first, firstOffset: 10, lastOffset: 12)
        #expect(table.check(first) == .duplicate(firstOffset: 10, lastOffset: 12))
        #expect(table.check(Self.header(producer: 7, epoch: 0, sequence: 3, count: 1)) == .append)
        guard case .reject(let gap) = table.check(Self.header(producer: 7, epoch: 0, sequence: 5, count: 1)) else {
            Issue.record("a gap was accepted")
            return
        }
        #expect(gap.code == .outOfOrderSequence)
        guard case .reject(let restart) = table.check(Self.header(producer: 7, epoch: 1, sequence: 4, count: 1)) else {
            Issue.record("a new epoch not starting at 0 was accepted")
            return
        }
        #expect(restart.code == .outOfOrderSequence)
        table.record(Self.header(producer: 7, epoch: 1, sequence: 0, count: 1), firstOffset: 13, lastOffset: 13)
        guard case .reject(let zombie) = table.check(Self.header(producer: 7, epoch: 0, sequence: 3, count: 1)) else {
            Issue.record("an old epoch was accepted")
            return
        }
        #expect(zombie.code == .invalidProducerEpoch)
    }

    @Test("a snapshot round-trips; a flipped bit, a truncation or a wrong magic reads as no snapshot")
    func snapshot() {
        var rng = SeededRandom.fromEnvironment()
        var table = ProducerStateTable()
        var offset: Int64 = 0
        for _ in 0..<500 {
            let producer = Int64(rng.int(0...40))
            let count = Int32(rng.int(1...5))
            let sequence = Int32(rng.int(0...1000))
            table.record(Self.header(producer: producer, epoch: Int16(rng.int(0...2)), sequence: sequence, count: count),
                         firstOffset: offset, lastOffset: offset + Int64(count) - 1)
            offset += Int64(count)
        }
        let bytes = table.encodeSnapshot(offset: offset)
        guard let (decoded, at) = ProducerStateTable.decodeSnapshot(bytes) else {
            Issue.record("seed \(rng.seed): a valid snapshot did not decode")
            return
        }
        #expect(at == offset)
        #expect(decoded.producers == table.producers, "seed \(rng.seed)")
        for _ in 0..<50 {
            var damaged = bytes
            let bit = rng.int(0...(damaged.count * 8 - 1))
            damaged[bit / 8] ^= UInt8(1 << (bit % 8))
            #expect(ProducerStateTable.decodeSnapshot(damaged) == nil, "seed \(rng.seed): bit \(bit) flipped")
        }
        #expect(ProducerStateTable.decodeSnapshot(Array(bytes.dropLast(3))) == nil)
        #expect(ProducerStateTable.decodeSnapshot([]) == nil)
    }
}
