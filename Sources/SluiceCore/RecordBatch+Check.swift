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
        var reader = ByteReader(section)
        var maxTimestamp = Int64.min
        let count = max(0, Int(header.recordCount))
        for index in 0..<count {
            guard let length = reader.readVarint(maxBytes: 5), length >= 0, length <= reader.remaining else {
                throw malformed(index, reader.position, "bad record length")
            }
            let end = reader.position + Int(length)
            guard reader.readInt8() != nil, let timestampDelta = reader.readVarint(maxBytes: 10),
                  let offsetDelta = reader.readVarint(maxBytes: 5) else {
                throw malformed(index, reader.position, "truncated record header")
            }
            guard offsetDelta == Int64(index) else {
                throw malformed(index, reader.position, "offset delta \(offsetDelta) where \(index) was expected")
            }
            maxTimestamp = max(maxTimestamp, header.baseTimestamp &+ timestampDelta)
            try skipLengthPrefixed(&reader, end: end, record: index, field: "key")
            try skipLengthPrefixed(&reader, end: end, record: index, field: "value")
            guard let headerCount = reader.readVarint(maxBytes: 5), headerCount >= 0, headerCount <= Int64(limits.recordHeadersMax) else {
                throw malformed(index, reader.position, "bad header count (limit \(limits.recordHeadersMax))")
            }
            for _ in 0..<Int(headerCount) {
                try skipLengthPrefixed(&reader, end: end, record: index, field: "header key", allowNull: false)
                try skipLengthPrefixed(&reader, end: end, record: index, field: "header value")
            }
            guard reader.position == end else {
                throw malformed(index, reader.position, "record length \(length) does not match its fields")
            }
        }
        guard reader.remaining == 0 else {
            throw BatchFormatError.malformedRecords("\(reader.remaining) bytes left after \(header.recordCount) records")
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
