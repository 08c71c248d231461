import NIOCore

// Bodies of the produce, fetch, list-offsets and producer-id APIs (protocol.md, "APIs").

/// How many acknowledgements a produce waits for.
public enum Acks: Int16, Sendable, Hashable, CaseIterable {
    /// No response at all: the broker sends nothing back, as in Kafka.
    case none = 0
    /// After the leader has appended (and, with `flush.policy=always`, fsynced) the batch.
    case leader = 1
    /// After every in-sync replica has it; on a single broker the same as `leader`.
    case all = -1

    public init?(name: String) {
        switch name.lowercased() {
        case "none", "0": self = .none
        case "leader", "1": self = .leader
        case "all", "-1": self = .all
        default: return nil
        }
    }
}

public struct ProduceRequest: WireMessage {
    /// `partition int32, records bytes`.
    public struct Partition: WireEntry {
        public var partition: Int32
        /// One or more record batches back to back, in the storage format.
        public var records: ByteBuffer

        public init(partition: Int32, records: ByteBuffer) {
            self.partition = partition
            self.records = records
        }

        public init(from reader: inout WireReader) throws {
            partition = try reader.readInt32("partition")
            records = try reader.readBytes("records")
        }

        public func encode(to writer: inout WireWriter) {
            writer.write(partition)
            writer.write(bytes: records)
        }
    }

    /// A topic and the batches for its partitions.
    public typealias Topic = TopicEntries<Partition>

    public var acks: Acks
    public var timeoutMs: Int32
    public var topics: [Topic]

    public init(acks: Acks, timeoutMs: Int32, topics: [Topic]) {
        self.acks = acks
        self.timeoutMs = timeoutMs
        self.topics = topics
    }

    public init(from reader: inout WireReader, version: Int16) throws {
        let rawAcks = try reader.readInt16("acks")
        guard let acks = Acks(rawValue: rawAcks) else { throw WireDecodingError("acks must be 0, 1 or -1, got \(rawAcks)") }
        self.acks = acks
        timeoutMs = try reader.readInt32("timeout_ms")
        topics = try reader.readEntries("topics")
    }

    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(acks.rawValue)
        writer.write(timeoutMs)
        writer.write(entries: topics)
    }
}

public struct ProduceResponse: TopicsMessage, Hashable {
    /// `partition int32, error int16, message string?, base_offset int64, log_start_offset int64`.
    public struct Partition: WireEntry, WireErrorCarrying, Hashable {
        public var partition: Int32
        public var error: ErrorCode
        public var errorMessage: String?
        /// Offset of the first record of the first batch; −1 on error.
        public var baseOffset: Int64
        public var logStartOffset: Int64

        public init(partition: Int32, error: ErrorCode = .none, errorMessage: String? = nil, baseOffset: Int64, logStartOffset: Int64) {
            self.partition = partition
            self.error = error
            self.errorMessage = errorMessage
            self.baseOffset = baseOffset
            self.logStartOffset = logStartOffset
        }

        public init(from reader: inout WireReader) throws {
            partition = try reader.readInt32("partition")
            (error, errorMessage) = try reader.readErrorPair()
            baseOffset = try reader.readInt64("base_offset")
            logStartOffset = try reader.readInt64("log_start_offset")
        }

        public func encode(to writer: inout WireWriter) {
            writer.write(partition)
            writer.write(error: error, message: errorMessage)
            writer.write(baseOffset)
            writer.write(logStartOffset)
        }
    }

    /// A topic and the outcome for each of its partitions.
    public typealias Topic = TopicEntries<Partition>

    public var topics: [Topic]

    public init(topics: [Topic]) { self.topics = topics }
}

public struct FetchRequest: WireMessage, Hashable {
    /// `partition int32, fetch_offset int64, partition_max_bytes int32`.
    public struct Partition: WireEntry, Hashable {
        public var partition: Int32
        public var fetchOffset: Int64
        public var partitionMaxBytes: Int32

        public init(partition: Int32, fetchOffset: Int64, partitionMaxBytes: Int32) {
            self.partition = partition
            self.fetchOffset = fetchOffset
            self.partitionMaxBytes = partitionMaxBytes
        }

        public init(from reader: inout WireReader) throws {
            partition = try reader.readInt32("partition")
            fetchOffset = try reader.readInt64("fetch_offset")
            partitionMaxBytes = try reader.readInt32("partition_max_bytes")
        }

        public func encode(to writer: inout WireWriter) {
            writer.write(partition)
            writer.write(fetchOffset)
            writer.write(partitionMaxBytes)
        }
    }

    /// A topic and where to read each of its partitions.
    public typealias Topic = TopicEntries<Partition>

    /// How long the broker may hold the request waiting for `minBytes`.
    public var maxWaitMs: Int32
    public var minBytes: Int32
    /// Bound on the whole response's record bytes (the first batch is sent even if larger, so a
    /// consumer always makes progress; it is still bounded by the topic's `max.message.bytes`).
    public var maxBytes: Int32
    public var topics: [Topic]

    public init(maxWaitMs: Int32, minBytes: Int32, maxBytes: Int32, topics: [Topic]) {
        self.maxWaitMs = maxWaitMs
        self.minBytes = minBytes
        self.maxBytes = maxBytes
        self.topics = topics
    }

    public init(from reader: inout WireReader, version: Int16) throws {
        maxWaitMs = try reader.readInt32("max_wait_ms")
        minBytes = try reader.readInt32("min_bytes")
        maxBytes = try reader.readInt32("max_bytes")
        topics = try reader.readEntries("topics")
    }

    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(maxWaitMs)
        writer.write(minBytes)
        writer.write(maxBytes)
        writer.write(entries: topics)
    }
}

/// The fixed fields of one partition in a fetch response; the records follow as `bytes`.
public struct FetchPartitionHead: WireEntry, WireErrorCarrying, Hashable {
    public var partition: Int32
    public var error: ErrorCode
    public var errorMessage: String?
    public var highWatermark: Int64
    public var logStartOffset: Int64

    public init(partition: Int32, error: ErrorCode = .none, errorMessage: String? = nil, highWatermark: Int64, logStartOffset: Int64) {
        self.partition = partition
        self.error = error
        self.errorMessage = errorMessage
        self.highWatermark = highWatermark
        self.logStartOffset = logStartOffset
    }

    public func encode(to writer: inout WireWriter) {
        writer.write(partition)
        writer.write(error: error, message: errorMessage)
        writer.write(highWatermark)
        writer.write(logStartOffset)
    }

    public init(from reader: inout WireReader) throws {
        partition = try reader.readInt32("partition")
        (error, errorMessage) = try reader.readErrorPair()
        highWatermark = try reader.readInt64("high_watermark")
        logStartOffset = try reader.readInt64("log_start_offset")
    }
}

/// A fetch response as the client decodes it. The broker writes the same layout itself so that the
/// records can go out as file regions (see protocol.md, "Fetch").
public struct FetchResponse: TopicsMessage {
    /// The partition's `FetchPartitionHead` fields, then `records bytes`.
    public struct Partition: WireEntry {
        public var head: FetchPartitionHead
        /// Whole batches, as stored.
        public var records: ByteBuffer

        public init(head: FetchPartitionHead, records: ByteBuffer) {
            self.head = head
            self.records = records
        }

        public init(from reader: inout WireReader) throws {
            head = try FetchPartitionHead(from: &reader)
            records = try reader.readBytes("records")
        }

        public func encode(to writer: inout WireWriter) {
            head.encode(to: &writer)
            writer.write(bytes: records)
        }
    }

    /// A topic and the records read from each of its partitions.
    public typealias Topic = TopicEntries<Partition>

    public var topics: [Topic]

    public init(topics: [Topic]) { self.topics = topics }
}

public struct ListOffsetsRequest: TopicsMessage, Hashable {
    /// Special timestamps: the offset after the last record, and the first offset held.
    public static let latestTimestamp: Int64 = -1
    public static let earliestTimestamp: Int64 = -2

    /// `partition int32, timestamp int64`.
    public struct Partition: WireEntry, Hashable {
        public var partition: Int32
        /// −1 latest, −2 earliest, otherwise the first offset whose timestamp is ≥ this (epoch ms).
        public var timestamp: Int64

        public init(partition: Int32, timestamp: Int64) {
            self.partition = partition
            self.timestamp = timestamp
        }

        public init(from reader: inout WireReader) throws {
            partition = try reader.readInt32("partition")
            timestamp = try reader.readInt64("timestamp")
        }

        public func encode(to writer: inout WireWriter) {
            writer.write(partition)
            writer.write(timestamp)
        }
    }

    /// A topic and the timestamp to look up in each of its partitions.
    public typealias Topic = TopicEntries<Partition>

    public var topics: [Topic]

    public init(topics: [Topic]) { self.topics = topics }
}

public struct ListOffsetsResponse: TopicsMessage, Hashable {
    /// `partition int32, error int16, message string?, offset int64`.
    public struct Partition: WireEntry, WireErrorCarrying, Hashable {
        public var partition: Int32
        public var error: ErrorCode
        public var errorMessage: String?
        /// The offset found; for a timestamp later than every record, the log end offset.
        public var offset: Int64

        public init(partition: Int32, error: ErrorCode = .none, errorMessage: String? = nil, offset: Int64) {
            self.partition = partition
            self.error = error
            self.errorMessage = errorMessage
            self.offset = offset
        }

        public init(from reader: inout WireReader) throws {
            partition = try reader.readInt32("partition")
            (error, errorMessage) = try reader.readErrorPair()
            offset = try reader.readInt64("offset")
        }

        public func encode(to writer: inout WireWriter) {
            writer.write(partition)
            writer.write(error: error, message: errorMessage)
            writer.write(offset)
        }
    }

    /// A topic and the offset found in each of its partitions.
    public typealias Topic = TopicEntries<Partition>

    public var topics: [Topic]

    public init(topics: [Topic]) { self.topics = topics }
}

/// Asks for a producer id for an idempotent producer. Sending the current id and epoch bumps the
/// epoch (a restarted producer fences its old self).
public struct InitProducerIdRequest: WireMessage, Hashable {
    public var producerId: Int64
    public var producerEpoch: Int16

    public init(producerId: Int64 = -1, producerEpoch: Int16 = -1) {
        self.producerId = producerId
        self.producerEpoch = producerEpoch
    }

    public init(from reader: inout WireReader, version: Int16) throws {
        producerId = try reader.readInt64("producer_id")
        producerEpoch = try reader.readInt16("producer_epoch")
    }

    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(producerId)
        writer.write(producerEpoch)
    }
}

public struct InitProducerIdResponse: WireMessage, Hashable {
    public var producerId: Int64
    public var producerEpoch: Int16

    public init(producerId: Int64, producerEpoch: Int16) {
        self.producerId = producerId
        self.producerEpoch = producerEpoch
    }

    public init(from reader: inout WireReader, version: Int16) throws {
        producerId = try reader.readInt64("producer_id")
        producerEpoch = try reader.readInt16("producer_epoch")
    }

    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(producerId)
        writer.write(producerEpoch)
    }
}
