import SluiceCore
import SluiceTestSupport
import Testing

/// Every `BatchFormatError` the validator and the record decoder raise, provoked one at a time, and
/// seeded corruption that must end in a typed error, never a crash.
@Suite("Batch validation")
struct BatchValidationTests {
    /// Two small records at offsets 10 and 11.
    static let records = [
        Record(offset: 10, timestamp: 1_700_000_000_000, key: Array("k1".utf8), value: Array("hello".utf8),
               headers: [RecordHeader(key: "h", value: [1, 2])]),
        Record(offset: 11, timestamp: 1_700_000_000_005, key: nil, value: Array("v".utf8)),
    ]
    static let valid = RecordBatch.uncompressed(records: records).bytes

    static func validate(_ bytes: [UInt8], limits: Limits = .default) throws {
        _ = try bytes.withUnsafeBytes { try RecordBatch.validate($0, limits: limits) }
    }

    /// `valid` with a big-endian field replaced and (when `fixCRC`) the CRC recomputed.
    static func with<T: FixedWidthInteger>(_ value: T, at position: Int, fixCRC: Bool = true) -> [UInt8] {
        var bytes = valid
        bytes.setBigEndian(value, at: position)
        return fixCRC ? withFixedCRC(bytes) : bytes
    }

    /// A batch around a hand-written records section (`recordCount` as given), with a correct CRC.
    static func batch(section: [UInt8], recordCount: Int32, lastOffsetDelta: Int32 = 5) -> [UInt8] {
        let header = RecordBatchHeader(lastOffsetDelta: lastOffsetDelta, recordCount: recordCount)
        return RecordBatch.assemble(header: header, section: section).bytes
    }

    // MARK: Framing (level 1)

    @Test func fewerBytesThanTheHeaderIsTruncated() {
        for count in [0, 1, 12, 60] {
            #expect(throws: BatchFormatError.truncated(needed: 61, available: count)) {
                try Self.validate(Array(Self.valid[..<count]))
            }
        }
    }

    @Test func fewerBytesThanTheLengthFieldSaysIsTruncated() {
        let size = Self.valid.count
        for cut in [61, 62, size - 1] {
            #expect(throws: BatchFormatError.truncated(needed: size, available: cut)) {
                try Self.validate(Array(Self.valid[..<cut]))
            }
            #expect(throws: BatchFormatError.truncated(needed: size, available: cut)) {
                try RecordBatch(validating: Array(Self.valid[..<cut]))
            }
        }
    }

    @Test func validateAcceptsTrailingBytesButInitValidatingWantsExactlyOneBatch() throws {
        let longer = Self.valid + [0, 0, 0]
        #expect(try longer.withUnsafeBytes { try RecordBatch.validate($0) }.totalSize == Self.valid.count)
        let error = #expect(throws: BatchFormatError.self) { try RecordBatch(validating: longer) }
        #expect(isMalformedRecords(error))
    }

    @Test func batchLengthBelowTheHeaderOrNegativeIsOutOfRange() {
        let maximum = Limits.default.batchBytesMax - 12
        for length: Int32 in [48, 0, -1, Int32.min] {
            #expect(throws: BatchFormatError.lengthOutOfRange(length: Int64(length), minimum: 49, maximum: maximum)) {
                try Self.validate(Self.with(length, at: RecordBatchHeader.Field.batchLength, fixCRC: false))
            }
        }
    }

    @Test func batchBytesMaxBoundsTheWholeBatchIncludingTheTwelveBytesBeforeTheLength() throws {
        // A batch of exactly batchBytesMax bytes passes; one byte more does not.
        let size = Self.valid.count
        try Self.validate(Self.valid, limits: Limits(batchBytesMax: size))
        _ = try RecordBatch(validating: Self.valid, limits: Limits(batchBytesMax: size))
        #expect(throws: BatchFormatError.lengthOutOfRange(length: Int64(size - 12), minimum: 49, maximum: size - 13)) {
            try Self.validate(Self.valid, limits: Limits(batchBytesMax: size - 1))
        }
        // The length is checked before the bytes are asked for: a huge length field costs nothing.
        #expect(throws: BatchFormatError.lengthOutOfRange(length: Int64(Int32.max), minimum: 49,
                                                           maximum: Limits.default.batchBytesMax - 12)) {
            try Self.validate(Self.with(Int32.max, at: RecordBatchHeader.Field.batchLength, fixCRC: false))
        }
    }

    @Test(arguments: [Int8(0), 1, 3, -1, 127])
    func magicOtherThanTwoIsUnsupported(magic: Int8) {
        #expect(throws: BatchFormatError.unsupportedMagic(magic)) {
            try Self.validate(Self.with(magic, at: RecordBatchHeader.Field.magic, fixCRC: false))
        }
    }

    @Test func aChangedCoveredByteIsACRCMismatchWithBothValues() throws {
        let stored = Self.valid.getBigEndian(at: RecordBatchHeader.Field.crc, as: UInt32.self)
        for position in [21, 40, 61, Self.valid.count - 1] {
            var bytes = Self.valid
            bytes[position] ^= 0x40
            let computed = bytes.withUnsafeBytes { RecordBatch.computeCRC($0) }
            #expect(computed != stored)
            #expect(throws: BatchFormatError.crcMismatch(stored: stored, computed: computed), "byte \(position)") {
                try Self.validate(bytes)
            }
        }
        // A wrong stored CRC over intact bytes, too.
        #expect(throws: BatchFormatError.crcMismatch(stored: stored ^ 1, computed: stored)) {
            try Self.validate(Self.with(stored ^ 1, at: RecordBatchHeader.Field.crc, fixCRC: false))
        }
    }

    @Test("codec ids other than 0, 3 and 4 are unsupported", arguments: [Int16(1), 2, 5, 6, 7])
    func unsupportedCodec(codec: Int16) {
        #expect(throws: BatchFormatError.unsupportedCodec(UInt8(codec))) {
            try Self.validate(Self.with(codec, at: RecordBatchHeader.Field.attributes))
        }
    }

    @Test func reservedAttributeBitsAreIgnoredOnRead() throws {
        // Bits 4–15 carry no check: a batch with all of them set validates and decodes.
        let bytes = Self.with(Int16(bitPattern: 0xFFF0), at: RecordBatchHeader.Field.attributes)
        #expect(try validateAndDecode(bytes) == Self.records)
        // And the encoders write 0 there.
        #expect(RecordBatchHeader.attributes(codec: .none, timestampType: .logAppendTime) == 0x08)
        #expect(Self.valid.getBigEndian(at: RecordBatchHeader.Field.attributes, as: Int16.self) == 0)
    }

    @Test func negativeRecordCountIsOutOfRange() {
        for count: Int32 in [-1, Int32.min] {
            #expect(throws: BatchFormatError.recordCountOutOfRange(count, maximum: Limits.default.batchRecordsMax)) {
                try Self.validate(Self.with(count, at: RecordBatchHeader.Field.recordCount))
            }
        }
    }

    @Test func recordCountAboveTheLimitIsOutOfRange() throws {
        #expect(throws: BatchFormatError.recordCountOutOfRange(2, maximum: 1)) {
            try Self.validate(Self.valid, limits: Limits(batchRecordsMax: 1))
        }
        try Self.validate(Self.valid, limits: Limits(batchRecordsMax: 2))
        let tooMany = Int32(Limits.default.batchRecordsMax + 1)
        #expect(throws: BatchFormatError.recordCountOutOfRange(tooMany, maximum: Limits.default.batchRecordsMax)) {
            try Self.validate(Self.with(tooMany, at: RecordBatchHeader.Field.recordCount))
        }
    }

    @Test func negativeLastOffsetDeltaIsRefused() {
        let error = #expect(throws: BatchFormatError.self) {
            try Self.validate(Self.with(Int32(-1), at: RecordBatchHeader.Field.lastOffsetDelta))
        }
        #expect(isMalformedRecords(error))
    }

    @Test func checksRunInTheOrderLengthMagicCodecCountThenCRC() {
        // Each damage added hides the ones before: length, magic, codec, count, then the CRC last.
        var bytes = Self.valid
        bytes[40] ^= 1
        #expect(isCRCMismatch { try Self.validate(bytes) })
        bytes.setBigEndian(Int32(-1), at: RecordBatchHeader.Field.recordCount)
        #expect(throws: BatchFormatError.recordCountOutOfRange(-1, maximum: Limits.default.batchRecordsMax)) { try Self.validate(bytes) }
        bytes.setBigEndian(Int16(1), at: RecordBatchHeader.Field.attributes)
        #expect(throws: BatchFormatError.unsupportedCodec(1)) { try Self.validate(bytes) }
        bytes[RecordBatchHeader.Field.magic] = 1
        #expect(throws: BatchFormatError.unsupportedMagic(1)) { try Self.validate(bytes) }
        bytes.setBigEndian(Int32(10), at: RecordBatchHeader.Field.batchLength)
        #expect(throws: BatchFormatError.lengthOutOfRange(length: 10, minimum: 49, maximum: Limits.default.batchBytesMax - 12)) {
            try Self.validate(bytes)
        }
    }

    func isCRCMismatch(_ body: () throws -> Void) -> Bool {
        do { try body() } catch BatchFormatError.crcMismatch { return true } catch {}
        return false
    }

    // MARK: Records (level 2)

    @Test func recordLengthPastTheEndOfTheSectionIsMalformed() {
        var section = recordsSection(Self.valid)
        section[0] = 0x7E  // the first record's length varint: 63, far more than the section holds
        let error = #expect(throws: BatchFormatError.self) {
            try validateAndDecode(Self.batch(section: section, recordCount: 2))
        }
        #expect(isMalformedRecords(error))
    }

    @Test func bytesAfterTheLastRecordAreMalformed() {
        let section = recordsSection(Self.valid) + [0x00]
        let error = #expect(throws: BatchFormatError.self) {
            try validateAndDecode(Self.batch(section: section, recordCount: 2))
        }
        #expect(isMalformedRecords(error))
        #expect("\(error.map { "\($0)" } ?? "")".contains("left after"))
    }

    @Test func fewerRecordsThanTheCountIsMalformed() {
        let error = #expect(throws: BatchFormatError.self) {
            try validateAndDecode(Self.batch(section: recordsSection(Self.valid), recordCount: 3))
        }
        #expect(isMalformedRecords(error))
    }

    @Test("offset deltas must increase, start at or above 0 and stay within lastOffsetDelta", arguments: [
        ([0, 0], Int32(5)), ([3, 2], 5), ([0, 6], 5), ([-1, 0], 5), ([1, 2], 1),
    ] as [([Int64], Int32)])
    func badOffsetDeltasAreMalformed(deltas: [Int64], lastOffsetDelta: Int32) {
        let records = deltas.map { Record(offset: 100 + $0, timestamp: 0, key: nil, value: [1]) }
        var section: [UInt8] = []
        RecordBatch.encodeRecords(records, baseOffset: 100, baseTimestamp: 0, into: &section)
        let header = RecordBatchHeader(baseOffset: 100, lastOffsetDelta: lastOffsetDelta, recordCount: 2)
        let bytes = RecordBatch.assemble(header: header, section: section).bytes
        let error = #expect(throws: BatchFormatError.self, "deltas \(deltas)") { try validateAndDecode(bytes) }
        #expect(isMalformedRecords(error))
    }

    @Test func headerCountAboveTheLimitIsMalformed() throws {
        let headers = (0..<3).map { RecordHeader(key: "h\($0)", value: nil) }
        let bytes = RecordBatch.uncompressed(records: [Record(timestamp: 0, key: nil, value: nil, headers: headers)]).bytes
        #expect(try validateAndDecode(bytes, limits: Limits(recordHeadersMax: 3)).first?.headers == headers)
        let error = #expect(throws: BatchFormatError.self) { try validateAndDecode(bytes, limits: Limits(recordHeadersMax: 2)) }
        #expect(isMalformedRecords(error))

        let many = (0...Limits.default.recordHeadersMax).map { RecordHeader(key: "\($0)", value: []) }
        let large = RecordBatch.uncompressed(records: [Record(timestamp: 0, key: nil, value: nil, headers: many)]).bytes
        #expect(isMalformedRecords(#expect(throws: BatchFormatError.self) { try validateAndDecode(large) }))
    }

    /// Hand-written single records: `length attributes tsDelta offDelta key value headerCount headers…`.
    @Test("malformed record fields", arguments: [
        ("key length below -1", [0x0C, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00]),
        ("value runs past the record", [0x0C, 0x00, 0x00, 0x00, 0x01, 0x0A, 0x00]),
        ("negative header count", [0x0C, 0x00, 0x00, 0x00, 0x01, 0x01, 0x01]),
        ("null header key", [0x10, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x01, 0x01]),
        ("header key not UTF-8", [0x12, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x02, 0xFF, 0x01]),
        ("fields shorter than the record length", [0x0E, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00]),
        ("fields longer than the record length", [0x0A, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00]),
        ("negative record length", [0x01, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00]),
        ("offset delta varint wider than 32 bits", [0x14, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x01, 0x01, 0x00]),
        ("varint cut by the end of the section", [0x06, 0x00, 0x00, 0x80]),
    ] as [(String, [UInt8])])
    func malformedRecordFields(what: String, section: [UInt8]) {
        let error = #expect(throws: BatchFormatError.self, "\(what)") {
            try validateAndDecode(Self.batch(section: section, recordCount: 1))
        }
        #expect(isMalformedRecords(error), "\(what)")
    }

    @Test func theHandWrittenRecordFormatDecodes() throws {
        // The well-formed sibling of the cases above: null key, value "a", one header "k" → null.
        let section: [UInt8] = [0x14, 0x00, 0x00, 0x00, 0x01, 0x02, 0x61, 0x02, 0x02, 0x6B, 0x01]
        let records = try validateAndDecode(Self.batch(section: section, recordCount: 1))
        #expect(records == [Record(offset: 0, timestamp: 0, key: nil, value: [0x61], headers: [RecordHeader(key: "k", value: nil)])])
    }

    // MARK: Seeded corruption

    @Test func corruptedOrTruncatedBatchesFailWithATypedErrorAndNeverCrash() throws {
        var rng = SeededRandom.fromEnvironment()
        let batches = (0..<40).map { _ in rng.batch(maxCount: 12, maxValueBytes: 40) }
        var outcomes: [String: Int] = [:]
        for round in 0..<3000 {
            let original = batches[rng.int(0...(batches.count - 1))].bytes
            var bytes = original
            let mode = rng.int(0...3)
            switch mode {
            case 0, 1:
                // 1–4 random bytes anywhere; mode 1 recomputes the CRC so the damage reaches the
                // header checks and the record decoder.
                for _ in 0..<rng.int(1...4) { bytes[rng.int(0...(bytes.count - 1))] = UInt8(rng.int(0...255)) }
                if mode == 1 { bytes = withFixedCRC(bytes) }
            case 2:
                bytes = Array(bytes[..<rng.int(0...(bytes.count - 1))])
            default:
                // A consistent header around a cut records section.
                let section = recordsSection(original)
                let header = original.withUnsafeBytes { RecordBatchHeader(parsing: $0)! }
                bytes = RecordBatch.assemble(header: header, section: Array(section[..<rng.int(0...section.count)])).bytes
            }
            let context = "round \(round), mode \(mode), seed \(rng.seed)"
            do {
                _ = try validateAndDecode(bytes)
                outcomes["ok", default: 0] += 1
                if mode == 2 || (mode == 3 && bytes.count < original.count) {
                    Issue.record("a truncated batch validated, \(context)")
                }
            } catch let error as BatchFormatError {
                outcomes[Mirror(reflecting: error).children.first?.label ?? "\(error)", default: 0] += 1
                if mode == 2, case .truncated = error {} else if mode == 2 {
                    Issue.record("truncation gave \(error), \(context)")
                }
            } catch {
                Issue.record("untyped error \(error), \(context)")
            }
            // A single changed byte under the CRC is always caught (CRC-32C detects every burst ≤ 32 bits).
            if mode == 0, bytes.count == original.count {
                let changed = (0..<bytes.count).filter { bytes[$0] != original[$0] }
                if changed.count == 1, changed[0] >= RecordBatchHeader.Field.magic {
                    #expect(throws: BatchFormatError.self, "\(context)") { try Self.validate(bytes) }
                }
            }
        }
        #expect(outcomes.count > 3, "corruption should reach several different checks: \(outcomes), seed \(rng.seed)")
    }

    /// BUG: `baseOffset` is outside the CRC, so a damaged or hostile value passes `validate`, and then
    /// `lastOffset`/`nextOffset` (and every caller that walks batches by them) overflow Int64 and trap.
    /// Validation should refuse a base offset whose next offset does not fit.
    @Test func validationRefusesABaseOffsetWhoseNextOffsetOverflows() {
        // `valid` has lastOffsetDelta 1: its next offset is baseOffset + 2.
        for base in [Int64.max, Int64.max - 1] {
            #expect(throws: BatchFormatError.self, "base offset \(base)") {
                try Self.validate(Self.with(base, at: RecordBatchHeader.Field.baseOffset, fixCRC: false))
            }
        }
    }

    /// BUG, the crash itself (in a child process): a record whose offset delta (1000) is above the
    /// batch's lastOffsetDelta (5) must be refused as malformed, but `decodeRecord` first computes
    /// `baseOffset + offsetDelta`, which traps when the base offset is near Int64.max.
    @Test func decodingAnOutOfRangeOffsetDeltaNearTheTopOfTheOffsetSpaceDoesNotCrash() async {
        await #expect(processExitsWith: .success) {
            var section: [UInt8] = []
            RecordBatch.encodeRecords([Record(offset: 1000, timestamp: 0, key: nil, value: [1])],
                                      baseOffset: 0, baseTimestamp: 0, into: &section)
            let header = RecordBatchHeader(lastOffsetDelta: 5, recordCount: 1)
            var bytes = RecordBatch.assemble(header: header, section: section).bytes
            bytes.setBigEndian(Int64.max - 10, at: RecordBatchHeader.Field.baseOffset)  // not covered by the CRC
            guard let parsed = try? bytes.withUnsafeBytes({ try RecordBatch.validate($0) }) else { return }
            _ = try? bytes.withUnsafeBytes { raw in
                try RecordBatch.decodeRecords(section: UnsafeRawBufferPointer(rebasing: raw[61...]), header: parsed)
            }
        }
    }
}
