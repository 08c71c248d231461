extension RecordBatch {
    /// What `checkRecords` learned from walking a records section.
    public struct RecordsSummary: Sendable, Hashable {
        public var recordCount: Int
        /// The largest record timestamp.
        public var maxTimestamp: Int64
    }

    /// Walks an uncompressed records section without decoding into values: checks that exactly
    /// `header.recordCount` well-formed records fill it, with offset deltas 0, 1, 2, ... (what a
    /// producer sends), header counts within `limits`, and returns the largest timestamp. The broker
    /// runs this on every produced batch instead of decoding records it never looks at.
    public static func checkRecords(section: UnsafeRawBufferPointer, header: RecordBatchHeader,
                                    limits: Limits = .default) throws -> RecordsSummary {
        var count = 0
        var maxTimestamp = Int64.min
        try visitRecords(section: section, header: header, limits: limits) { record in
            let delta = record.offset &- header.baseOffset
            guard delta == Int64(count) else {
                throw BatchFormatError.malformedRecords("record \(count): offset delta \(delta) where \(count) was expected")
            }
            maxTimestamp = max(maxTimestamp, record.timestamp)
            count += 1
        }
        return RecordsSummary(recordCount: count, maxTimestamp: count == 0 ? header.baseTimestamp : maxTimestamp)
    }

    private static func skipLengthPrefixed(_ reader: inout ByteReader, end: Int, record: Int, field: String,
                                           allowNull: Bool = true) throws {
        let position = reader.position
        guard let length = reader.readVarint(maxBytes: 5), length >= (allowNull ? -1 : 0) else {
            throw malformed(record, position, "bad \(field) length")
        }
        if length == -1 { return }
        guard reader.position + Int(length) <= end, reader.skip(Int(length)) else {
            throw malformed(record, position, "\(field) length \(length) runs past the record")
        }
    }
}

/// A record seen in place: key, value and headers point into the batch's bytes and are valid only
/// during the visit.
public struct RecordView {
    public var offset: Int64
    public var timestamp: Int64
    public var key: UnsafeRawBufferPointer?
    public var value: UnsafeRawBufferPointer?
    /// The encoded headers (count and entries); decode with `headers()` when needed.
    public var headerCount: Int
    public var headerBytes: UnsafeRawBufferPointer

    /// The headers, decoded (allocates).
    public func headers() -> [RecordHeader] {
        var reader = ByteReader(headerBytes)
        var result: [RecordHeader] = []
        result.reserveCapacity(headerCount)
        for _ in 0..<headerCount {
            guard let keyLength = reader.readVarint(maxBytes: 5), let keyBytes = reader.readBytes(Int(keyLength)),
                  let valueLength = reader.readVarint(maxBytes: 5) else { break }
            let value = valueLength < 0 ? nil : reader.readBytes(Int(valueLength))
            result.append(RecordHeader(key: String(decoding: keyBytes, as: UTF8.self), value: value))
        }
        return result
    }
}

extension RecordBatch {
    /// Calls `body` with each record of an uncompressed records section without copying anything:
    /// the consumer's fast path. Checks the same structure as `decodeRecords` (count, increasing offset
    /// deltas within `lastOffsetDelta`, lengths, header counts); headers are validated when walked.
    public static func visitRecords(section: UnsafeRawBufferPointer, header: RecordBatchHeader, limits: Limits = .default,
                                    _ body: (RecordView) throws -> Void) throws {
        var reader = ByteReader(section)
        var previousDelta: Int64 = -1
        for index in 0..<max(0, Int(header.recordCount)) {
            guard let length = reader.readVarint(maxBytes: 5), length >= 0, length <= reader.remaining else {
                throw malformed(index, reader.position, "bad record length")
            }
            let end = reader.position + Int(length)
            guard reader.readInt8() != nil, let timestampDelta = reader.readVarint(maxBytes: 10),
                  let offsetDelta = reader.readVarint(maxBytes: 5) else {
                throw malformed(index, reader.position, "truncated record header")
            }
            guard offsetDelta > previousDelta && offsetDelta <= Int64(header.lastOffsetDelta) else {
                throw malformed(index, reader.position, "offset delta \(offsetDelta) not above \(previousDelta) and within \(header.lastOffsetDelta)")
            }
            previousDelta = offsetDelta
            let key = try view(&reader, section, end: end, record: index, field: "key")
            let value = try view(&reader, section, end: end, record: index, field: "value")
            guard let headerCount = reader.readVarint(maxBytes: 5), headerCount >= 0, headerCount <= Int64(limits.recordHeadersMax) else {
                throw malformed(index, reader.position, "bad header count (limit \(limits.recordHeadersMax))")
            }
            let headersStart = reader.position
            for _ in 0..<Int(headerCount) {
                try skipLengthPrefixed(&reader, end: end, record: index, field: "header key", allowNull: false)
                try skipLengthPrefixed(&reader, end: end, record: index, field: "header value")
            }
            guard reader.position == end else {
                throw malformed(index, reader.position, "record length \(length) does not match its fields")
            }
            try body(RecordView(offset: header.baseOffset &+ offsetDelta, timestamp: header.baseTimestamp &+ timestampDelta,
                                key: key, value: value, headerCount: Int(headerCount),
                                headerBytes: UnsafeRawBufferPointer(rebasing: section[headersStart..<end])))
        }
        guard reader.remaining == 0 else {
            throw BatchFormatError.malformedRecords("\(reader.remaining) bytes left after \(header.recordCount) records")
        }
    }

    private static func view(_ reader: inout ByteReader, _ section: UnsafeRawBufferPointer, end: Int, record: Int,
                             field: String) throws -> UnsafeRawBufferPointer? {
        let position = reader.position
        guard let length = reader.readVarint(maxBytes: 5), length >= -1 else { throw malformed(record, position, "bad \(field) length") }
        if length == -1 { return nil }
        let start = reader.position
        guard start + Int(length) <= end, reader.skip(Int(length)) else {
            throw malformed(record, position, "\(field) length \(length) runs past the record")
        }
        return UnsafeRawBufferPointer(rebasing: section[start..<(start + Int(length))])
    }
}
