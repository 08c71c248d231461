import SluiceCore

/// The synthetic records `append`, `demo` and `bench` write, and that `verify --synthetic-size` and the
/// crash tests check after the fact.
///
/// **Contract.** The record at absolute offset `o`, for a value size of `valueBytes` and a filler
/// style, is a pure function of those three (tests re-implement it; change it only together with them):
///
/// - key: the UTF-8 bytes of `"key-\(o % 1000)"`;
/// - timestamp: `1_700_000_000_000 + o` (milliseconds, CreateTime);
/// - no headers, attributes 0;
/// - value: the UTF-8 bytes of `"record-\(o)|"` (the prefix), then filler bytes up to exactly
///   `valueBytes` bytes. When `valueBytes` is at most the prefix length, the value is the prefix alone
///   (and may be longer than `valueBytes`).
///
/// The filler comes from SplitMix64 seeded with `UInt64(o)` — the generator of `SeededRandom` in
/// `Tests/SluiceTestSupport`: each `next()` does `state &+= 0x9E3779B97F4A7C15; z = state;
/// z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) &* 0x94D049BB133111EB;
/// return z ^ (z >> 31)`.
///
/// - `.random` (written with codec `none`): the eight bytes of each output, least significant byte
///   first, one output after another; the last output is cut to fit.
/// - `.json` (written with `lz4` and `zstd`, so that the records compress): fragments back to back, one
///   output `r` per fragment: `{"user":"u<r % 1000>","action":"<A>","amount":<(r >> 16) % 1000>.<(r >> 32) % 10>}`
///   where `<A>` is `["click", "view", "purchase", "scroll"][(r >> 10) % 4]` and numbers are decimal
///   without padding; the last fragment is cut to fit.
///
/// The style follows the codec of the batch the record is in (`FillerStyle(codec:)`), so a checker
/// can derive it from the batch header.
struct SyntheticRecords: Sendable {
    /// How the bytes after the prefix are made.
    enum FillerStyle: Sendable, Hashable {
        /// Incompressible bytes.
        case random
        /// JSON-like text that compresses well.
        case json

        /// `.random` for uncompressed batches, `.json` for compressed ones.
        init(codec: CompressionCodec) {
            self = codec == .none ? .random : .json
        }
    }

    /// The first timestamp: the record at offset `o` has `timestampBase + o`.
    static let timestampBase: Int64 = 1_700_000_000_000

    let valueBytes: Int
    let style: FillerStyle

    /// The timestamp of the record at `offset`.
    static func timestamp(at offset: Int64) -> Int64 { timestampBase + offset }

    /// The key of the record at `offset`.
    static func key(at offset: Int64) -> [UInt8] { Array("key-\(offset % 1000)".utf8) }

    /// The record at `offset`.
    func record(at offset: Int64) -> Record {
        Record(offset: offset, timestamp: Self.timestamp(at: offset), key: Self.key(at: offset), value: value(at: offset))
    }

    /// `count` consecutive records starting at `offset`.
    func records(from offset: Int64, count: Int) -> [Record] {
        (0..<count).map { record(at: offset + Int64($0)) }
    }

    /// The value of the record at `offset`.
    func value(at offset: Int64) -> [UInt8] {
        let prefix = Array("record-\(offset)|".utf8)
        guard valueBytes > prefix.count else { return prefix }
        return [UInt8](unsafeUninitializedCapacity: valueBytes) { buffer, initialized in
            var writer = FillerWriter(buffer: buffer)
            writer.append(prefix)
            var random = SplitMix64(seed: UInt64(bitPattern: offset))
            switch style {
            case .random: writer.fillRandom(&random)
            case .json: writer.fillJSON(&random)
            }
            initialized = writer.count
        }
    }

    /// Why `record` is not the synthetic record at its offset (for a batch of `codec`), nil when it is.
    static func mismatch(_ record: Record, valueBytes: Int, codec: CompressionCodec) -> String? {
        let o = record.offset
        let expected = SyntheticRecords(valueBytes: valueBytes, style: FillerStyle(codec: codec)).record(at: o)
        if record.timestamp != expected.timestamp {
            return "offset \(o): timestamp \(record.timestamp), expected \(expected.timestamp)"
        }
        if record.key != expected.key { return "offset \(o): key \(Format.quoted(record.key, maxBytes: 32)) differs" }
        if !record.headers.isEmpty { return "offset \(o): \(record.headers.count) headers, expected none" }
        guard let value = record.value, let want = expected.value else { return "offset \(o): null value" }
        if value.count != want.count { return "offset \(o): value of \(value.count) bytes, expected \(want.count)" }
        if let i = value.indices.first(where: { value[$0] != want[$0] }) {
            return "offset \(o): value differs from the synthetic one at byte \(i)"
        }
        return nil
    }
}

/// Writes a value into its uninitialized buffer, stopping exactly at the buffer's end.
private struct FillerWriter {
    let buffer: UnsafeMutableBufferPointer<UInt8>
    var count = 0

    init(buffer: UnsafeMutableBufferPointer<UInt8>) { self.buffer = buffer }

    var remaining: Int { buffer.count - count }

    mutating func append(_ byte: UInt8) {
        guard count < buffer.count else { return }
        buffer[count] = byte
        count += 1
    }

    mutating func append(_ bytes: [UInt8]) {
        for byte in bytes {
            guard count < buffer.count else { return }
            buffer[count] = byte
            count += 1
        }
    }

    /// Decimal digits of `value`, no padding.
    mutating func appendDecimal(_ value: UInt64) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { raw in
            repeat {
                raw[n] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                n += 1
            } while rest > 0
            while n > 0 {
                n -= 1
                append(raw[n])
            }
        }
    }

    /// Eight little-endian bytes per output until full.
    mutating func fillRandom(_ random: inout SplitMix64) {
        while remaining > 0 {
            var word = random.next()
            for _ in 0..<min(8, remaining) {
                buffer[count] = UInt8(truncatingIfNeeded: word)
                count += 1
                word >>= 8
            }
        }
    }

    private static let actions: [[UInt8]] = ["click", "view", "purchase", "scroll"].map { Array($0.utf8) }
    private static let userPart = Array("{\"user\":\"u".utf8)
    private static let actionPart = Array("\",\"action\":\"".utf8)
    private static let amountPart = Array("\",\"amount\":".utf8)

    /// JSON-like fragments until full (see the contract on `SyntheticRecords`).
    mutating func fillJSON(_ random: inout SplitMix64) {
        while remaining > 0 {
            let r = random.next()
            append(Self.userPart)
            appendDecimal(r % 1000)
            append(Self.actionPart)
            append(Self.actions[Int((r >> 10) % 4)])
            append(Self.amountPart)
            appendDecimal((r >> 16) % 1000)
            append(UInt8(ascii: "."))
            appendDecimal((r >> 32) % 10)
            append(UInt8(ascii: "}"))
        }
    }
}
