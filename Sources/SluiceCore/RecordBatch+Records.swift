// Encoding and decoding of the (uncompressed) records section of a batch.
//
// Record layout (storage-format/record-batch.md): length varint, attributes int8, timestampDelta varlong,
// offsetDelta varint, keyLength varint (-1 null), key, valueLength varint (-1 null), value,
// headerCount varint, then per header keyLength varint, key, valueLength varint (-1 null), value.

extension RecordBatchHeader {
    /// The header of a batch holding `records` (absolute offsets and timestamps): the base offset is
    /// the first record's unless given, the base timestamp the first record's, the max timestamp the
    /// largest; length and CRC are filled in when the batch is finished.
    public init(
        describing records: [Record],
        codec: CompressionCodec,
        baseOffset: Int64? = nil,
        lastOffsetDelta: Int32? = nil,
        partitionLeaderEpoch: Int32 = -1,
        producerId: Int64 = -1,
        producerEpoch: Int16 = -1,
        baseSequence: Int32 = -1,
        timestampType: TimestampType = .createTime
    ) {
        let base = baseOffset ?? records.first?.offset ?? 0
        let baseTimestamp = records.first?.timestamp ?? 0
        self.init(
            baseOffset: base,
            partitionLeaderEpoch: partitionLeaderEpoch,
            attributes: RecordBatchHeader.attributes(codec: codec, timestampType: timestampType),
            lastOffsetDelta: lastOffsetDelta ?? Int32(clamping: (records.last?.offset ?? base) - base),
            baseTimestamp: baseTimestamp,
            maxTimestamp: RecordBatch.maxTimestamp(records, default: baseTimestamp),
            producerId: producerId,
            producerEpoch: producerEpoch,
            baseSequence: baseSequence,
            recordCount: Int32(records.count)
        )
    }
}

extension RecordBatch {
    /// Appends `records` encoded relative to `baseOffset` and `baseTimestamp`. Sizes are computed
    /// first, so the array grows once and records are written through a pointer.
    public static func encodeRecords(
        _ records: [Record],
        baseOffset: Int64,
        baseTimestamp: Int64,
        into bytes: inout [UInt8]
    ) {
        // First pass: each record's body size (kept for the second pass) and the total.
        var bodySizes = [Int](repeating: 0, count: records.count)
        var total = 0
        records.withUnsafeBufferPointer { buffer in
            for i in buffer.indices {
                let body = bodySize(buffer[i], baseOffset: baseOffset, baseTimestamp: baseTimestamp)
                bodySizes[i] = body
                total += varintSize(Int64(body)) + body
            }
        }
        // One allocation of the final size: the existing prefix, then the records written in place.
        let start = bytes.count
        bytes = [UInt8](unsafeUninitializedCapacity: start + total) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            guard let base = raw.baseAddress else { return }
            bytes.withUnsafeBytes { prefix in
                if let source = prefix.baseAddress { base.copyMemory(from: source, byteCount: start) }
            }
            var writer = RawWriter(base + start)
            records.withUnsafeBufferPointer { records in
                for i in records.indices {
                    writeRecord(records[i], bodySize: bodySizes[i], baseOffset: baseOffset, baseTimestamp: baseTimestamp, to: &writer)
                }
            }
            precondition(writer.written == total, "record size computed \(total), wrote \(writer.written)")
            initialized = start + total
        }
    }

    /// Bytes `record` takes encoded, its length prefix included.
    @inlinable
    public static func encodedSize(_ record: borrowing Record, baseOffset: Int64, baseTimestamp: Int64) -> Int {
        let body = bodySize(record, baseOffset: baseOffset, baseTimestamp: baseTimestamp)
        return varintSize(Int64(body)) + body
    }

    @inlinable
    static func bodySize(_ record: borrowing Record, baseOffset: Int64, baseTimestamp: Int64) -> Int {
        var size = 1 + varintSize(record.timestamp &- baseTimestamp) + varintSize(record.offset &- baseOffset)
        size += lengthPrefixedSize(record.key) + lengthPrefixedSize(record.value)
        size += varintSize(Int64(record.headers.count))
        for header in record.headers {
            let keyCount = header.key.utf8.count
            size += varintSize(Int64(keyCount)) + keyCount + lengthPrefixedSize(header.value)
        }
        return size
    }

    @inlinable
    static func lengthPrefixedSize(_ field: [UInt8]?) -> Int {
        guard let field else { return 1 }
        return varintSize(Int64(field.count)) + field.count
    }

    @inlinable
    static func writeRecord(_ record: borrowing Record, bodySize: Int, baseOffset: Int64, baseTimestamp: Int64,
                            to writer: inout RawWriter) {
        writer.varint(Int64(bodySize))
        writer.byte(UInt8(bitPattern: record.attributes))
        writer.varint(record.timestamp &- baseTimestamp)
        writer.varint(record.offset &- baseOffset)
        writer.lengthPrefixed(record.key)
        writer.lengthPrefixed(record.value)
        writer.varint(Int64(record.headers.count))
        for header in record.headers {
            writer.varint(Int64(header.key.utf8.count))
            writer.utf8(header.key)
            writer.lengthPrefixed(header.value)
        }
    }

    /// Decodes an uncompressed records section. Checks that exactly `header.recordCount` records fill
    /// the section, that offset deltas increase and stay within `lastOffsetDelta`, and header counts.
    public static func decodeRecords(
        section: UnsafeRawBufferPointer,
        header: RecordBatchHeader,
        limits: Limits = .default
    ) throws -> [Record] {
        var reader = ByteReader(section)
        var records: [Record] = []
        // A record takes at least 7 bytes, so the section bounds how many can really be there.
        records.reserveCapacity(min(max(0, Int(header.recordCount)), section.count / 7))
        var previousDelta: Int64 = -1
        for index in 0..<max(0, Int(header.recordCount)) {
            let record = try decodeRecord(&reader, index: index, header: header, limits: limits)
            let delta = record.offset &- header.baseOffset
            guard delta > previousDelta && delta <= Int64(header.lastOffsetDelta) else {
                throw BatchFormatError.malformedRecords(
                    "record \(index): offset delta \(delta) not above \(previousDelta) and within last offset delta \(header.lastOffsetDelta)")
            }
            previousDelta = delta
            records.append(record)
        }
        guard reader.remaining == 0 else {
            throw BatchFormatError.malformedRecords("\(reader.remaining) bytes left after \(header.recordCount) records")
        }
        return records
    }

    static func decodeRecord(
        _ reader: inout ByteReader,
        index: Int,
        header: RecordBatchHeader,
        limits: Limits
    ) throws -> Record {
        guard let length = reader.readVarint(maxBytes: 5), length >= 0, length <= reader.remaining else {
            throw malformed(index, reader.position, "bad record length")
        }
        let end = reader.position + Int(length)
        guard let attributes = reader.readInt8() else { throw malformed(index, reader.position, "missing attributes") }
        guard let timestampDelta = reader.readVarint(maxBytes: 10) else {
            throw malformed(index, reader.position, "bad timestamp delta")
        }
        guard let offsetDelta = reader.readVarint(maxBytes: 5) else {
            throw malformed(index, reader.position, "bad offset delta")
        }
        let key = try readLengthPrefixed(&reader, end: end, record: index, field: "key")
        let value = try readLengthPrefixed(&reader, end: end, record: index, field: "value")
        guard let headerCount = reader.readVarint(maxBytes: 5), headerCount >= 0,
            headerCount <= Int64(limits.recordHeadersMax)
        else { throw malformed(index, reader.position, "bad header count (limit \(limits.recordHeadersMax))") }
        var headers: [RecordHeader] = []
        headers.reserveCapacity(Int(headerCount))
        for _ in 0..<Int(headerCount) {
            let position = reader.position
            guard let keyBytes = try readLengthPrefixed(&reader, end: end, record: index, field: "header key") else {
                throw malformed(index, position, "null header key")
            }
            guard let keyString = String(validating: keyBytes, as: UTF8.self) else {
                throw malformed(index, position, "header key is not UTF-8")
            }
            let headerValue = try readLengthPrefixed(&reader, end: end, record: index, field: "header value")
            headers.append(RecordHeader(key: keyString, value: headerValue))
        }
        guard reader.position == end else {
            throw malformed(index, reader.position, "record length \(length) does not match its fields")
        }
        return Record(
            offset: header.baseOffset &+ offsetDelta,
            timestamp: header.baseTimestamp &+ timestampDelta,
            key: key,
            value: value,
            headers: headers,
            attributes: attributes
        )
    }

    static func malformed(_ record: Int, _ position: Int, _ what: String) -> BatchFormatError {
        BatchFormatError.malformedRecords("record \(record) at records-section byte \(position): \(what)")
    }

    static func readLengthPrefixed(
        _ reader: inout ByteReader,
        end: Int,
        record: Int,
        field: String
    ) throws -> [UInt8]? {
        let position = reader.position
        guard let length = reader.readVarint(maxBytes: 5), length >= -1 else {
            throw malformed(record, position, "bad \(field) length")
        }
        if length == -1 { return nil }
        guard reader.position + Int(length) <= end, let bytes = reader.readBytes(Int(length)) else {
            throw malformed(record, position, "\(field) length \(length) runs past the record")
        }
        return bytes
    }

    /// Builds the header and records section of an uncompressed batch; SluiceCompression adds the
    /// compressed variants. Offsets and timestamps of `records` are absolute; the base offset is the
    /// first record's offset unless given, deltas are computed from it.
    public static func uncompressed(
        records: [Record],
        baseOffset: Int64? = nil,
        lastOffsetDelta: Int32? = nil,
        partitionLeaderEpoch: Int32 = -1,
        producerId: Int64 = -1,
        producerEpoch: Int16 = -1,
        baseSequence: Int32 = -1,
        timestampType: TimestampType = .createTime
    ) -> RecordBatch {
        let header = RecordBatchHeader(
            describing: records, codec: .none, baseOffset: baseOffset, lastOffsetDelta: lastOffsetDelta,
            partitionLeaderEpoch: partitionLeaderEpoch, producerId: producerId, producerEpoch: producerEpoch,
            baseSequence: baseSequence, timestampType: timestampType)
        // Records go straight after room for the header: one buffer, no copy.
        var bytes = [UInt8](repeating: 0, count: RecordBatchHeader.size)
        encodeRecords(records, baseOffset: header.baseOffset, baseTimestamp: header.baseTimestamp, into: &bytes)
        return finish(header: header, bytes: bytes)
    }

    /// The largest record timestamp, `fallback` for no records.
    @inlinable
    public static func maxTimestamp(_ records: [Record], default fallback: Int64) -> Int64 {
        guard var result = records.first?.timestamp else { return fallback }
        for record in records where record.timestamp > result { result = record.timestamp }
        return result
    }

    /// Joins a header (whose length and CRC are filled in here) and an already encoded (possibly
    /// compressed) records section into a batch.
    public static func assemble(header: RecordBatchHeader, section: [UInt8]) -> RecordBatch {
        var bytes = [UInt8](repeating: 0, count: RecordBatchHeader.size)
        bytes.append(contentsOf: section)
        return finish(header: header, bytes: bytes)
    }

    /// Writes `header` (with its length set from `bytes.count`) over the first 61 bytes of `bytes`, which
    /// already hold the records section after them, and computes the CRC.
    public static func finish(header: RecordBatchHeader, bytes: [UInt8]) -> RecordBatch {
        precondition(bytes.count >= RecordBatchHeader.size, "a batch is at least its header")
        var header = header
        header.batchLength = Int32(bytes.count - RecordBatchHeader.logOverhead)
        var encoded: [UInt8] = []
        encoded.reserveCapacity(RecordBatchHeader.size)
        header.append(to: &encoded)
        var bytes = bytes
        bytes.withUnsafeMutableBytes { raw in
            encoded.withUnsafeBytes { source in
                guard let target = raw.baseAddress, let from = source.baseAddress else { return }
                target.copyMemory(from: from, byteCount: RecordBatchHeader.size)
            }
        }
        var batch = RecordBatch(unchecked: bytes)
        batch.updateCRC()
        return batch
    }
}
