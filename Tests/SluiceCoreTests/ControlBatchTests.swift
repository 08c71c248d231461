import SluiceCore
import SluiceTestSupport
import Testing

/// Control batches (storage-format/record-batch.md, "Control batches"): the leader-change marker's exact
/// bytes, build → parse round trips, and a typed error for every malformed key, value and batch shape.
@Suite("control batches")
struct ControlBatchTests {
    /// The marker for leader 2, term 7, at 1_700_000_000_000 ms, as the spec's example lays it out. The CRC
    /// was computed by an independent CRC-32C (Python, bitwise over bytes 21..77).
    static let goldenMarkerHex = """
        0000000000000000 00000042 00000007 02 7813406c 0020 00000000
        0000018bcfe56800 0000018bcfe56800 ffffffffffffffff ffff ffffffff 00000001
        20 00 00 00 08 00000002 0c 0000 00000002 00
        """

    @Test("leader-change marker: exact bytes of the spec's example")
    func goldenMarker() throws {
        let expected = try GoldenVectors.parseHex(Self.goldenMarkerHex)
        let marker = RecordBatch.leaderChangeMarker(leader: 2, term: 7, timestamp: 1_700_000_000_000)
        #expect(marker.bytes == expected)
        // The bytes are a valid batch, and every header field is what the spec says.
        let header = try RecordBatch(validating: expected).header
        #expect(header.isControl && !header.isTransactional && header.codec == CompressionCodec.none)
        #expect(header.attributes == RecordBatchHeader.controlAttribute)
        #expect(header.partitionLeaderEpoch == 7)
        #expect((header.producerId, header.producerEpoch, header.baseSequence) == (-1, -1, -1))
        #expect((header.recordCount, header.lastOffsetDelta) == (1, 0))
        #expect((header.baseTimestamp, header.maxTimestamp) == (1_700_000_000_000, 1_700_000_000_000))
        #expect(try RecordBatch(validating: expected).controlRecord() == .leaderChange(leader: 2))
    }

    @Test("key and value encodings")
    func encodings() {
        #expect(ControlRecord.key(.leaderChange) == [0x00, 0x00, 0x00, 0x02])
        #expect(ControlRecord.leaderChangeValue(leader: 2) == [0x00, 0x00, 0x00, 0x00, 0x00, 0x02])
        #expect(ControlRecord.leaderChangeValue(leader: -1) == [0x00, 0x00, 0xff, 0xff, 0xff, 0xff])
        #expect("\(ControlRecord.leaderChange(leader: 2))" == "leader change, leader 2")
        #expect("\(ControlRecord.unknown(type: 9))" == "unknown type 9")
    }

    @Test("build → parse round trip over random leaders, terms and timestamps")
    func roundTrip() throws {
        var random = SeededRandom.fromEnvironment()
        for _ in 0..<500 {
            let leader = Int32(truncatingIfNeeded: random.next())
            let term = Int32(truncatingIfNeeded: random.next())
            let timestamp = Int64(bitPattern: random.next())
            let marker = RecordBatch.leaderChangeMarker(leader: leader, term: term, timestamp: timestamp)
            let context = "seed \(random.seed): leader \(leader) term \(term) timestamp \(timestamp)"
            let validated = try RecordBatch(validating: marker.bytes)
            #expect(try validated.controlRecord() == .leaderChange(leader: leader), "\(context)")
            #expect(validated.partitionLeaderEpoch == term, "\(context)")
            #expect(validated.baseTimestamp == timestamp && validated.maxTimestamp == timestamp, "\(context)")
            #expect(validated.bytes.count == RecordBatchHeader.size + 17, "\(context)")
        }
    }

    @Test("malformed keys and values give typed errors", arguments: [
        (nil, [0, 0, 0, 0, 0, 2], ControlRecordError.Code.malformedKey),
        ([0, 0, 2], [0, 0, 0, 0, 0, 2], .malformedKey),
        ([0, 0, 0, 2, 0], [0, 0, 0, 0, 0, 2], .malformedKey),
        ([0, 1, 0, 2], [0, 0, 0, 0, 0, 2], .unsupportedKeyVersion),
        ([0xff, 0xff, 0, 2], [0, 0, 0, 0, 0, 2], .unsupportedKeyVersion),
        ([0, 0, 0, 2], nil, .malformedValue),
        ([0, 0, 0, 2], [0, 0, 0, 0, 2], .malformedValue),
        ([0, 0, 0, 2], [0, 0, 0, 0, 0, 0, 2], .malformedValue),
        ([0, 0, 0, 2], [0, 1, 0, 0, 0, 2], .unsupportedValueVersion),
    ] as [([UInt8]?, [UInt8]?, ControlRecordError.Code)])
    func malformedRecord(key: [UInt8]?, value: [UInt8]?, code: ControlRecordError.Code) {
        let error = #expect(throws: ControlRecordError.self) { try ControlRecord(key: key, value: value) }
        #expect(error?.code == code, "\(String(describing: error))")
        #expect(error.map { "\($0)".hasPrefix("malformed control record: ") } == true)
    }

    @Test("an unknown type parses as unknown whatever its value holds")
    func unknownType() throws {
        #expect(try ControlRecord(key: [0, 0, 0, 9], value: nil) == .unknown(type: 9))
        #expect(try ControlRecord(key: [0, 0, 0xff, 0xff], value: [1, 2, 3]) == .unknown(type: 0xffff))
        #expect(try ControlRecord(key: [0, 0, 0, 9], value: nil).type == nil)
        #expect(ControlRecord.leaderChange(leader: 1).type == .leaderChange)
    }

    /// The parser against a naive restatement of the spec, over random short keys and values.
    @Test("parser agrees with the spec's rules on random keys and values")
    func parserOracle() {
        var random = SeededRandom.fromEnvironment()
        for _ in 0..<5_000 {
            let key = Self.randomField(&random)
            let value = Self.randomField(&random)
            let parsed = try? ControlRecord(key: key, value: value)
            let context = "seed \(random.seed): key \(String(describing: key)) value \(String(describing: value))"
            #expect(parsed == Self.naiveParse(key: key, value: value), "\(context)")
        }
    }

    @Test("batch-level parse: not control, compressed, record count, undecodable records")
    func malformedBatches() throws {
        let marker = RecordBatch.leaderChangeMarker(leader: 3, term: 1, timestamp: 5)
        let record = Record(offset: 0, timestamp: 5, key: ControlRecord.key(.leaderChange), value: ControlRecord.leaderChangeValue(leader: 3))
        let data = RecordBatch.uncompressed(records: [record])
        #expect(try code(of: data.bytes) == .notControlBatch)
        #expect(try code(of: Self.withAttributes(marker.bytes, RecordBatchHeader.controlAttribute | 3)) == .compressedBatch)
        let two = RecordBatch.uncompressed(records: [record, Record(offset: 1, timestamp: 5, key: record.key, value: record.value)])
        #expect(try code(of: Self.withAttributes(two.bytes, RecordBatchHeader.controlAttribute)) == .recordCount)
        // The record's length varint says 0x7f bytes where 16 follow.
        var truncated = marker.bytes
        truncated[RecordBatchHeader.size] = 0xfe
        #expect(try code(of: withFixedCRC(truncated)) == .undecodableRecords)
        // A control batch whose record is well framed but whose key is not a control key.
        let badKey = RecordBatch.uncompressed(records: [Record(offset: 0, timestamp: 5, key: [1], value: nil)])
        #expect(try code(of: Self.withAttributes(badKey.bytes, RecordBatchHeader.controlAttribute)) == .malformedKey)
    }

    private func code(of bytes: [UInt8]) throws -> ControlRecordError.Code? {
        let batch = RecordBatch(unchecked: bytes)
        let error = #expect(throws: ControlRecordError.self) { try batch.controlRecord() }
        return error?.code
    }

    static func withAttributes(_ bytes: [UInt8], _ attributes: Int16) -> [UInt8] {
        var bytes = bytes
        bytes.setBigEndian(attributes, at: RecordBatchHeader.Field.attributes)
        return withFixedCRC(bytes)
    }

    /// nil, or 0 to 8 bytes that are, half of the time, close to a valid key or value.
    static func randomField(_ random: inout SeededRandom) -> [UInt8]? {
        guard !random.chance(0.1) else { return nil }
        var bytes = random.chance(0.5) ? [0, 0, 0, 2, 0, 0] : random.bytes(random.int(0...8))
        if random.chance(0.3) && !bytes.isEmpty { bytes[random.int(0...(bytes.count - 1))] = UInt8(random.int(0...3)) }
        if random.chance(0.3) { bytes = Array(bytes.prefix(random.int(0...bytes.count))) }
        return bytes
    }

    /// The layout rules, restated without the parser's code.
    static func naiveParse(key: [UInt8]?, value: [UInt8]?) -> ControlRecord? {
        guard let key, key.count == 4, key[0] == 0, key[1] == 0 else { return nil }
        let type = UInt16(key[2]) << 8 | UInt16(key[3])
        guard type == 2 else { return .unknown(type: type) }
        guard let value, value.count == 6, value[0] == 0, value[1] == 0 else { return nil }
        let leader = value[2...].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        return .leaderChange(leader: Int32(bitPattern: leader))
    }
}
