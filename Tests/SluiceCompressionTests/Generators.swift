import SluiceCore
import SluiceTestSupport

// Seeded inputs for the compression tests: incompressible bytes, JSON-like text, runs, and records.
// Failure messages carry `rng.seed`; `SLUICE_TEST_SEED=<seed>` replays a run.

extension SeededRandom {
    /// About `count` bytes of JSON lines, the kind of payload that compresses well.
    mutating func jsonLike(_ count: Int) -> [UInt8] {
        let names = ["alice", "bob", "carol", "dave", "eve", "mallory"]
        let events = ["click", "view", "purchase", "refund", "login"]
        var text: [UInt8] = []
        text.reserveCapacity(count + 200)
        while text.count < count {
            let line = "{\"id\":\(int(0...9_999_999)),\"user\":\"\(names[int(0...5)])-\(int(0...999))\","
                + "\"event\":\"\(events[int(0...4)])\",\"amount\":\(int(0...100_000)).\(int(10...99)),"
                + "\"ts\":\(1_700_000_000_000 + int(0...86_400_000)),\"ok\":\(chance(0.9))}\n"
            text += line.utf8
        }
        return Array(text[..<count])
    }

    /// Input of `count` bytes whose compressibility varies: random, runs, text or a repeated pattern.
    mutating func mixedInput(_ count: Int) -> [UInt8] {
        switch int(0...3) {
        case 0: return fastBytes(count)
        case 1: return [UInt8](repeating: UInt8(int(0...255)), count: count)
        case 2: return jsonLike(count)
        default:
            let pattern = fastBytes(int(1...300))
            return (0..<count).map { pattern[$0 % pattern.count] }
        }
    }

    /// `count` records from offset 0 with keys, values (some compressible) and headers, some null.
    mutating func records(count: Int, maxValueBytes: Int = 300) -> [Record] {
        (0..<count).map { i in
            let value: [UInt8]? = chance(0.1) ? nil : (chance(0.5) ? jsonLike(int(0...maxValueBytes)) : fastBytes(int(0...maxValueBytes)))
            let headers = chance(0.3) ? [RecordHeader(key: "trace", value: chance(0.5) ? nil : fastBytes(8))] : []
            return Record(offset: Int64(i), timestamp: 1_700_000_000_000 + Int64(int(-5000...5000)),
                          key: chance(0.2) ? nil : Array("key-\(int(0...50))".utf8), value: value, headers: headers)
        }
    }
}
