import XCTest
import SluiceClient
import SluiceTestSupport

final class PartitionerTests: XCTestCase {
    /// Kafka's own vectors: clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java,
    /// `testMurmur2`. A mismatch here would send keys to other partitions than Kafka's producer does.
    func testMurmur2MatchesKafkaUtilsTestVectors() {
        let vectors: [(String, Int32)] = [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            ("abc", 479_470_107),
        ]
        for (key, expected) in vectors {
            XCTAssertEqual(Partitioner.murmur2(Array(key.utf8)), expected, "murmur2(\"\(key)\")")
            let viaBuffer = Array(key.utf8).withUnsafeBytes { Partitioner.murmur2($0) }
            XCTAssertEqual(viaBuffer, expected, "murmur2(\"\(key)\") through the buffer form")
        }
    }

    func testMurmur2OfTheEmptyKey() {
        // Not in Kafka's test; computed by the Java algorithm (seed ^ 0, no body, no tail).
        XCTAssertEqual(Partitioner.murmur2([]), 275_646_681)
    }

    func testMurmur2AgreesWithALiteralTranslationOfTheJavaCode() {
        var rng = SeededRandom(seed: 0x5eed)
        for _ in 0..<5_000 {
            let length = Int(rng.next() % 70)
            let key = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            XCTAssertEqual(Partitioner.murmur2(key), javaMurmur2(key), "key \(key)")
        }
    }

    func testPartitionForKeyIsKafkasFormula() {
        // (murmur2 & 0x7fffffff) % n for the Kafka vectors.
        XCTAssertEqual(Partitioner.partition(forKey: Array("21".utf8), partitionCount: 16), 12)
        XCTAssertEqual(Partitioner.partition(forKey: Array("foobar".utf8), partitionCount: 16), 14)
        XCTAssertEqual(Partitioner.partition(forKey: Array("foobar".utf8), partitionCount: 100), 66)
        XCTAssertEqual(Partitioner.partition(forKey: Array("a-little-bit-long-string".utf8), partitionCount: 3), 2)
        XCTAssertEqual(Partitioner.partition(forKey: Array("abc".utf8), partitionCount: 100), 7)
        XCTAssertEqual(Partitioner.partition(forKey: Array("abc".utf8), partitionCount: 1), 0)
    }

    func testPartitionForKeyStaysInRangeAndIsStable() {
        var rng = SeededRandom(seed: 42)
        for count in [1, 2, 3, 7, 16, 1_000, Int32.max] as [Int32] {
            for _ in 0..<500 {
                let key = (0..<Int(rng.next() % 40)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                let partition = Partitioner.partition(forKey: key, partitionCount: count)
                XCTAssert((0..<count).contains(partition), "partition \(partition) of \(count)")
                XCTAssertEqual(Partitioner.partition(forKey: key, partitionCount: count), partition)
            }
        }
    }

    func testPartitionForKeyUsesTheMaskNotAbs() {
        // Find a key whose hash is negative and whose masked and abs() results differ modulo 7.
        var rng = SeededRandom(seed: 7)
        var checked = 0
        while checked < 100 {
            let key = (0..<8).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let hash = Partitioner.murmur2(key)
            guard hash < 0, hash != Int32.min else { continue }
            XCTAssertEqual(Partitioner.partition(forKey: key, partitionCount: 7), (hash & 0x7fff_ffff) % 7)
            checked += 1
        }
    }

    func testStickyPartitionerStartsFromTheSeedAndSticks() {
        let sticky = StickyPartitioner(partitionCount: 4, seed: 10)
        XCTAssertEqual(sticky.current, 2)
        for _ in 0..<100 {
            XCTAssertEqual(sticky.partition(), 2)
        }
    }

    func testStickyPartitionerMovesRoundRobinOnBatchFullAndNext() {
        var sticky = StickyPartitioner(partitionCount: 3, seed: 1)
        XCTAssertEqual(sticky.partition(), 1)
        sticky.batchFull()
        XCTAssertEqual(sticky.partition(), 2)
        XCTAssertEqual(sticky.next(), 0)
        XCTAssertEqual(sticky.partition(), 0)
        sticky.batchFull()
        XCTAssertEqual(sticky.partition(), 1)
    }

    func testStickyPartitionerVisitsEveryPartitionEquallyOverFullRounds() {
        var sticky = StickyPartitioner(partitionCount: 5, seed: UInt64.max)
        var visits = [Int](repeating: 0, count: 5)
        for _ in 0..<50 {
            visits[Int(sticky.partition())] += 1
            sticky.batchFull()
        }
        XCTAssertEqual(visits, [10, 10, 10, 10, 10])
    }

    func testStickyPartitionerIsDeterministicForASeed() {
        var a = StickyPartitioner(partitionCount: 7, seed: 123_456)
        var b = StickyPartitioner(partitionCount: 7, seed: 123_456)
        for _ in 0..<20 {
            XCTAssertEqual(a.next(), b.next())
        }
    }

    func testStickyPartitionerFollowsAPartitionCountChange() {
        var sticky = StickyPartitioner(partitionCount: 8, seed: 6)
        sticky.updatePartitionCount(12)
        XCTAssertEqual(sticky.partition(), 6, "a growing topic keeps the current partition")
        sticky.updatePartitionCount(4)
        XCTAssertEqual(sticky.partition(), 2, "a partition that no longer exists wraps into range")
        XCTAssertEqual(sticky.partitionCount, 4)
        XCTAssertEqual(sticky.next(), 3)
        XCTAssertEqual(sticky.next(), 0)
    }

    func testSinglePartitionStickyPartitionerNeverMoves() {
        var sticky = StickyPartitioner(partitionCount: 1, seed: 99)
        for _ in 0..<10 {
            XCTAssertEqual(sticky.next(), 0)
        }
    }
}

/// Kafka's `Utils.murmur2` transcribed line by line on signed 32-bit integers, Java's `>>>` written as a
/// shift of the bit pattern: the naive reference the optimised form is checked against.
private func javaMurmur2(_ data: [UInt8]) -> Int32 {
    func ushr(_ value: Int32, _ shift: Int32) -> Int32 {
        Int32(bitPattern: UInt32(bitPattern: value) >> UInt32(shift))
    }
    func byte(_ index: Int) -> Int32 { Int32(data[index]) & 0xff }
    let length = Int32(data.count)
    let seed = Int32(bitPattern: 0x9747_b28c)
    let m: Int32 = 0x5bd1_e995
    let r: Int32 = 24
    var h = seed ^ length
    let length4 = length / 4
    for i in 0..<Int(length4) {
        let i4 = i * 4
        var k = byte(i4 + 0) &+ (byte(i4 + 1) << 8) &+ (byte(i4 + 2) << 16) &+ (byte(i4 + 3) << 24)
        k = k &* m
        k ^= ushr(k, r)
        k = k &* m
        h = h &* m
        h ^= k
    }
    let base = Int(length & ~3)
    let remainder = length % 4
    if remainder >= 3 { h ^= byte(base + 2) << 16 }
    if remainder >= 2 { h ^= byte(base + 1) << 8 }
    if remainder >= 1 {
        h ^= byte(base)
        h = h &* m
    }
    h ^= ushr(h, 13)
    h = h &* m
    h ^= ushr(h, 15)
    return h
}
