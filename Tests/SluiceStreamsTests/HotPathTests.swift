@testable import SluiceStreams
import SluiceTestSupport
import Testing

/// The per-record fast paths (word-at-a-time string scanning, short integers, byte comparison, the emission
/// sort) checked against the plain code they stand in for.
@Suite("Hot paths")
struct HotPathTests {
    /// Every byte value at every position of an otherwise plain word: flagged exactly when special, and the
    /// lowest flag at its position even with a second special byte above it.
    @Test func specialStringBytesFindsTheFirstSpecialByte() {
        func isSpecial(_ byte: UInt8) -> Bool { byte < 0x20 || byte >= 0x80 || byte == 0x22 || byte == 0x5C }
        for position in 0..<8 {
            for value in 0...255 {
                let byte = UInt8(value)
                var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: 8)
                bytes[position] = byte
                if position < 7 { bytes[7] = 0x00 }  // a second special byte above it: borrows must not matter
                let word = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
                let mask = JSONScanner.specialStringBytes(word)
                let first = bytes.firstIndex(where: isSpecial)
                #expect((mask == 0) == (first == nil), "byte \(byte) at \(position)")
                if let first { #expect(mask.trailingZeroBitCount >> 3 == first, "byte \(byte) at \(position)") }
            }
        }
    }

    /// Strings with an escape, a non-ASCII character or an error at every offset parse as the byte loop did.
    @Test func stringsParseWithSpecialBytesAtEveryOffset() throws {
        for length in 0..<40 {
            for offset in 0...length {
                let plain = String(repeating: "x", count: length)
                let head = String(plain.prefix(offset)), tail = String(plain.dropFirst(offset))
                #expect(try JSONParser.parse("\"\(head)\\n\(tail)\"") == .string(head + "\n" + tail))
                #expect(try JSONParser.parse("\"\(head)é\(tail)\"") == .string(head + "é" + tail))
                #expect(try JSONParser.parse("[\"\(plain)\",\"\(head)\"]") == .array([.string(plain), .string(head)]))
                #expect((try? JSONParser.parse(Array("\"\(head)\u{01}\(tail)\"".utf8))) == nil)
                #expect((try? JSONParser.parse(Array("\"\(head)".utf8) + [0xFF] + Array("\(tail)\"".utf8))) == nil)
                #expect((try? JSONParser.parse("\"\(head)")) == nil)
            }
        }
    }

    @Test func shortIntegersParseLikeTheGeneralPath() throws {
        let accepted: [(String, JSONValue)] = [
            ("0", 0), ("-0", 0), ("7", 7), ("-7", -7), ("123456789012345678", .int(123_456_789_012_345_678)),
            ("-123456789012345678", .int(-123_456_789_012_345_678)), ("1234567890123456789", .int(1_234_567_890_123_456_789)),
            ("-9223372036854775808", .int(Int64.min)), ("9223372036854775808", .number(9_223_372_036_854_775_808)),
            ("1.5", 1.5), ("1e3", 1000.0), ("1E3", 1000.0), ("0.5", 0.5), ("[12,3]", [12, 3]), ("{\"a\":42}", ["a": 42]),
        ]
        for (text, value) in accepted {
            #expect(try JSONParser.parse(text) == value, "\(text)")
            let document = Array("{\"b\":\(text),\"a\":1}".utf8)
            let extracted = try document.withUnsafeBytes { bytes throws(JSONParseError) in
                try JSONFieldExtractor(paths: ["a"]).extract(from: bytes)
            }
            #expect(extracted == [1], "\(text)")
        }
        for text in ["-", "01", "-01", "1.", "1e", "--1", "1x", "00"] {
            #expect((try? JSONParser.parse(text)) == nil, "\(text)")
        }
    }

    @Test func compareBytesAgreesWithTheUTF8Views() {
        var random = SeededRandom(seed: 7)
        let alphabet: [String] = ["", "a", "b", "\u{0}", "é", "ab", "abcdefgh", "abcdefgi", "\u{10FFFF}", "z"]
        for _ in 0..<5_000 {
            let a = (0..<Int(random.next() % 5)).map { _ in alphabet[Int(random.next() % 10)] }.joined()
            let b = (0..<Int(random.next() % 5)).map { _ in alphabet[Int(random.next() % 10)] }.joined()
            let expected = Self.viewOrder(a, b)
            #expect(JSONValue.compareBytes(a, b).signum() == expected, "\(a.debugDescription) vs \(b.debugDescription)")
        }
    }

    /// The emission sort gives exactly the order of sorting by `emissionOrder`, over keys that share long
    /// prefixes, hold zero bytes, or are not strings.
    @Test func sortForEmissionMatchesSortingByEmissionOrder() {
        var random = SeededRandom(seed: 11)
        let keys: [JSONValue] = [
            .null, 1, 2.5, true, "", "a", "a\u{0}", "abcdefgh", "abcdefgh\u{0}", "abcdefghij", "abcdefgi", "é",
            "abcdefg", [1, "a"], ["k": 1],
        ]
        for _ in 0..<200 {
            var results: [WindowResult] = []
            var seen = Set<WindowState.GroupID>()
            for _ in 0..<Int(random.next() % 40) {
                let start = Int64(random.next() % 3) * 10
                let window = Window(start: start, end: start + 10 + Int64(random.next() % 2) * 10)
                let key = keys[Int(random.next() % UInt64(keys.count))]
                guard seen.insert(WindowState.GroupID(window: window, key: key)).inserted else { continue }
                results.append(WindowResult(key: key, window: window, values: [.int(Int64(results.count))]))
            }
            var fast = results
            WindowState.sortForEmission(&fast)
            #expect(fast == results.sorted(by: WindowState.emissionOrder))
        }
    }

    /// The order the old code computed: the UTF-8 views byte by byte, then the shorter first.
    static func viewOrder(_ a: String, _ b: String) -> Int {
        for (x, y) in zip(a.utf8, b.utf8) where x != y { return x < y ? -1 : 1 }
        return a.utf8.count == b.utf8.count ? 0 : (a.utf8.count < b.utf8.count ? -1 : 1)
    }
}
