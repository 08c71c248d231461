import SluiceCore
import SluiceTestSupport
import Testing

/// CRC-32C: the published check values, and the optimised routines (slicing-by-8, the hardware
/// instruction with its three-way interleaving) against a bit-at-a-time reference over random input.
@Suite("CRC-32C")
struct CRC32CTests {
    /// The definition, one bit at a time: reflected polynomial 0x82F63B78, pre- and post-inversion.
    static func bitwise(_ bytes: some Sequence<UInt8>, continuing crc: UInt32 = 0) -> UInt32 {
        var c = ~crc
        for byte in bytes {
            c ^= UInt32(byte)
            for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        }
        return ~c
    }

    /// Every implementation the library has, by name: the dispatcher, the portable one, the hardware one
    /// when this CPU has the instruction.
    static func all(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> [(String, UInt32)] {
        var results = [
            ("checksum", CRC32C.checksum(bytes, continuing: crc)),
            ("portable", CRC32C.portableChecksum(bytes, continuing: crc)),
        ]
        if let hardware = CRC32C.hardwareChecksum(bytes, continuing: crc) { results.append(("hardware", hardware)) }
        return results
    }

    @Test("known vectors: \"123456789\", empty, 32 zeros, 32 × 0xFF, 0...31, 31...0 (RFC 3720 B.4)", arguments: [
        (Array("123456789".utf8), UInt32(0xE306_9283)),
        ([], 0),
        ([UInt8](repeating: 0, count: 32), 0x8A91_36AA),
        ([UInt8](repeating: 0xFF, count: 32), 0x62A8_AB43),
        (Array(0...31), 0x46DD_794E),
        (Array((0...31).reversed()), 0x113F_DB5C),
    ] as [([UInt8], UInt32)])
    func knownVectors(input: [UInt8], expected: UInt32) {
        input.withUnsafeBytes { raw in
            for (name, value) in Self.all(raw) {
                #expect(value == expected, "\(name) of \(input.count) bytes")
            }
        }
        #expect(CRC32C.checksum(input) == expected)
        #expect(Self.bitwise(input) == expected, "the test's reference itself")
    }

    @Test func hardwareIsUsedWhenTheCPUHasIt() {
        // On x86-64 every CPU Swift supports has SSE4.2 in practice; this documents which path ran.
        let data = Array("123456789".utf8)
        let hardware = data.withUnsafeBytes { CRC32C.hardwareChecksum($0) }
        #expect(CRC32C.hardwareAvailable == (hardware != nil))
    }

    @Test func implementationsAgreeWithTheReferenceOnRandomBuffersLengthsAndAlignments() throws {
        var rng = SeededRandom.fromEnvironment()
        // One pool, sliced at offsets 0–7 (alignment) and lengths that reach the hardware routine's
        // long (3 × 8192) and short (3 × 256) interleaved blocks as well as its byte and word tails.
        let pool = rng.fastBytes(4 * 8192 * 3 + 64)
        let boundaryLengths = [0, 1, 7, 8, 9, 15, 16, 63, 64, 65, 767, 768, 769, 1535, 1536, 1537,
                               24575, 24576, 24577, 49152, 49152 + 768 + 7, 3 * 24576 + 3]
        var cases: [(offset: Int, length: Int)] = []
        for length in boundaryLengths {
            for offset in 0..<8 { cases.append((offset, length)) }
        }
        for _ in 0..<3000 {
            let length: Int
            switch rng.int(0...9) {
            case 0...6: length = rng.int(0...1100)
            case 7...8: length = rng.int(0...9000)
            default: length = rng.int(0...(3 * 24576 + 40))
            }
            cases.append((rng.int(0...7), length))
        }
        try pool.withUnsafeBytes { raw in
            for (offset, length) in cases {
                let slice = UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + length)])
                let results = Self.all(slice)
                let portable = try #require(results.first { $0.0 == "portable" }?.1)
                for (name, value) in results {
                    #expect(value == portable, "\(name) at offset \(offset), length \(length), seed \(rng.seed)")
                }
                // The bit-at-a-time reference is slow in debug builds: check it on the short cases.
                if length <= 1100 {
                    #expect(portable == Self.bitwise(slice), "reference at offset \(offset), length \(length), seed \(rng.seed)")
                }
            }
        }
    }

    @Test func chainedComputationEqualsOneComputationOverTheConcatenation() {
        var rng = SeededRandom.fromEnvironment()
        let pool = rng.fastBytes(2 * 24576 + 1000)
        pool.withUnsafeBytes { raw in
            for _ in 0..<1000 {
                let start = rng.int(0...7)
                let length = rng.chance(0.9) ? rng.int(0...2000) : rng.int(0...(2 * 24576))
                let split = rng.int(0...length)
                let whole = UnsafeRawBufferPointer(rebasing: raw[start..<(start + length)])
                let a = UnsafeRawBufferPointer(rebasing: raw[start..<(start + split)])
                let b = UnsafeRawBufferPointer(rebasing: raw[(start + split)..<(start + length)])
                let expected = CRC32C.portableChecksum(whole)
                let context = "start \(start), length \(length), split \(split), seed \(rng.seed)"
                #expect(CRC32C.checksum(b, continuing: CRC32C.checksum(a)) == expected, "dispatcher, \(context)")
                #expect(CRC32C.portableChecksum(b, continuing: CRC32C.portableChecksum(a)) == expected, "portable, \(context)")
                if let first = CRC32C.hardwareChecksum(a) {
                    #expect(CRC32C.hardwareChecksum(b, continuing: first) == expected, "hardware, \(context)")
                }
            }
        }
    }

    @Test func emptyInputLeavesARunningChecksumUnchanged() {
        let running = CRC32C.checksum(Array("12345".utf8))
        for (name, value) in Self.all(UnsafeRawBufferPointer(start: nil, count: 0), continuing: running) {
            #expect(value == running, "\(name)")
        }
        #expect(CRC32C.checksum(Array("6789".utf8), continuing: running) == 0xE306_9283)
    }
}
