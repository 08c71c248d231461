/// One header of a record: a UTF-8 key and an optional byte value.
public struct RecordHeader: Hashable, Sendable {
    public var key: String
    public var value: [UInt8]?

    public init(key: String, value: [UInt8]?) {
        self.key = key
        self.value = value
    }
}

/// A decoded record with its absolute offset and timestamp.
///
/// In a batch a record is stored with offset and timestamp deltas from the batch header; decoding adds
/// them back, encoding subtracts them, so decode → encode reproduces the same bytes.
public struct Record: Hashable, Sendable {
    /// Absolute offset in the partition (batch base offset + offset delta).
    public var offset: Int64
    /// Milliseconds since the epoch (batch base timestamp + timestamp delta).
    public var timestamp: Int64
    /// nil is a null key.
    public var key: [UInt8]?
    /// nil is a null value: a tombstone in a compacted topic.
    public var value: [UInt8]?
    public var headers: [RecordHeader]
    /// The record's attribute byte; unused by the format and always 0 when we write.
    public var attributes: Int8

    public init(
        offset: Int64 = 0,
        timestamp: Int64,
        key: [UInt8]?,
        value: [UInt8]?,
        headers: [RecordHeader] = [],
        attributes: Int8 = 0
    ) {
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self.headers = headers
        self.attributes = attributes
    }
}
