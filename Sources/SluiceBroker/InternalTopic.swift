import SluiceCompression
import SluiceCore
import SluiceLog
import SluiceWire

/// Helpers for the broker's internal compacted topics (`__consumer_offsets`, `__processors`,
/// `__processor_checkpoints`): creating them with the settings that make them a durable key-value store,
/// replaying them at start, and appending records to them.
enum InternalTopic {
    /// Settings of every internal topic: compacted by key, fsynced before the write returns, kept forever.
    static let configs = [
        ConfigEntry(key: "cleanup.policy", value: "compact"), ConfigEntry(key: "flush.policy", value: "always"),
        ConfigEntry(key: "retention.ms", value: "-1"),
    ]

    /// Opens `name`, creating it with `partitions` partitions if missing (with `extra` settings on top).
    static func open(_ name: String, partitions: Int32, registry: TopicRegistry, extra: [ConfigEntry] = []) throws -> Topic {
        try registry.topic(name) ?? registry.create(name: name, partitions: partitions, configs: configs + extra, allowInternal: true)
    }

    /// Calls `body` with every record of `partition` below `end` (default: the log end) in offset order
    /// (key, value; a nil value deletes the key), skipping control batches. Returns how many records were read.
    @discardableResult
    static func replay(_ partition: Partition, through end: Int64? = nil,
                       _ body: (_ key: [UInt8]?, _ value: [UInt8]?) throws -> Void) throws -> Int {
        let log = partition.log
        let end = end ?? log.logEndOffset
        var offset = log.logStartOffset
        var records = 0
        while offset < end {
            let result = try log.read(from: offset, maxBytes: 1 << 20, maxOffset: end)
            guard result.batchCount > 0 else { break }
            try result.bytes.withUnsafeBytes { raw in
                try RecordBatch.forEachBatch(in: raw, limits: log.config.limits) { header, batch in
                    // A control batch (a leader's no-op entry) holds no key of this store: its key bytes
                    // must never be read as one, or they would overwrite or delete a real entry.
                    guard !header.isControl else { return }
                    for record in try RecordBatch.records(in: batch, limits: log.config.limits) where record.offset >= offset && record.offset < end {
                        records += 1
                        try body(record.key, record.value)
                    }
                }
            }
            offset = result.nextOffset
        }
        return records
    }

    /// Appends one record and waits until it is durable.
    static func write(_ partition: Partition, key: [UInt8], value: [UInt8]?, timestampMs: Int64) throws {
        _ = try partition.appendInternal(batch(key: key, value: value, timestampMs: timestampMs))
    }

    /// The batch of one record of this key-value store (a nil value deletes the key).
    static func batch(key: [UInt8], value: [UInt8]?, timestampMs: Int64) throws -> RecordBatch {
        try RecordBatch.build(records: [Record(offset: 0, timestamp: timestampMs, key: key, value: value)])
    }
}
