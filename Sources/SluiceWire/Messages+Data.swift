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
    public struct Partition: Sendable {
        public var partition: Int32
        /// One or more record batches back to back, in the storage format.
        public var records: ByteBuffer

        public init(partition: Int32, records: ByteBuffer) {
            self.partition = partition
            self.records = records
        }
    }

    public struct Topic: Sendable {
        public var name: String
        public var partitions: [Partition]

        public init(name: String, partitions: [Partition]) {
            self.name = name
            self.partitions = partitions
        }
    }

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
        topics = try reader.readArray("topics") { r in
            Topic(name: try r.readString("name"), partitions: try r.readArray("partitions") { p in
                Partition(partition: try p.readInt32("partition"), records: try p.readBytes("records"))
            })
        }
    }

    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(acks.rawValue)
        writer.write(timeoutMs)
        writer.write(topics) { w, t in
            w.write(t.name)
            w.write(t.partitions) { w, p in
                w.write(p.partition)
                w.write(bytes: p.records)
            }
        }
    }
}

public struct ProduceResponse: WireMessage, Hashable {
    public struct Partition: Sendable, Hashable {
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

        public var wireError: WireError? { error == .none ? nil : WireError(error, errorMessage ?? "") }
    }

    public struct Topic: Sendable, Hashable {
        public var name: String
        public var partitions: [Partition]

        public init(name: String, partitions: [Partition]) {
            self.name = name
            self.partitions = partitions
        }
    }

    public var topics: [Topic]

    public init(topics: [Topic]) { self.topics = topics }

    public init(from reader: inout WireReader, version: Int16) throws {
        topics = try reader.readArray("topics") { r in
            Topic(name: try r.readString("name"), partitions: try r.readArray("partitions") { p in
                Partition(partition: try p.readInt32("partition"), error: try p.readErrorCode(),
                          errorMessage: try p.readNullableString("error_message"), baseOffset: try p.readInt64("base_offset"),
                          logStartOffset: try p.readInt64("log_start_offset"))
            })
        }
    }

    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(topics) { w, t in
            w.write(t.name)
            w.write(t.partitions) { w, p in
                w.write(p.partition)
                w.write(p.error.rawValue)
                w.write(p.errorMessage)
                w.write(p.baseOffset)
                w.write(p.logStartOffset)
            }
        }
    }
}

public struct FetchRequest: WireMessage, Hashable {
    public struct Partition: Sendable, Hashable {
        public var partition: Int32
        public var fetchOffset: Int64
        public var partitionMaxBytes: Int32

        public init(partition: Int32, fetchOffset: Int64, partitionMaxBytes: Int32) {
            self.partition = partition
            self.fetchOffset = fetchOffset
            self.partitionMaxBytes = partitionMaxBytes
        }
    }

    public struct Topic: Sendable, Hashable {
        public var name: String
        public var partitions: [Partition]

        public init(name: String, partitions: [Partition]) {
            self.name = name
            self.partitions = partitions
        }
    }

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
        topics = try reader.readArray("topics") { r in
            Topic(name: try r.readString("name"), partitions: try r.readArray("partitions") { p in
                Partition(partition: try p.readInt32("partition"), fetchOffset: try p.readInt64("fetch_offset"),
                          partitionMaxBytes: try p.readInt32("partition_max_bytes"))
            })
        }
    }

    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(maxWaitMs)
        writer.write(minBytes)
        writer.write(maxBytes)
        writer.write(topics) { w, t in
            w.write(t.name)
            w.write(t.partitions) { w, p in
                w.write(p.partition)
                w.write(p.fetchOffset)
                w.write(p.partitionMaxBytes)
            }
        }
    }
}

/// The fixed fields of one partition in a fetch response; the records follow as `bytes`.
public struct FetchPartitionHead: Sendable, Hashable {
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
        writer.write(error.rawValue)
        writer.write(errorMessage)
        writer.write(highWatermark)
        writer.write(logStartOffset)
    }

    public init(from reader: inout WireReader) throws {
        partition = try reader.readInt32("partition")
        error = try reader.readErrorCode()
        errorMessage = try reader.readNullableString("error_message")
        highWatermark = try reader.readInt64("high_watermark")
        logStartOffset = try reader.readInt64("log_start_offset")
    }
}

/// A fetch response as the client decodes it. The broker writes the same layout itself so that the
/// records can go out as file regions (see protocol.md, "Fetch").
public struct FetchResponse: WireMessage {
    public struct Partition: Sendable {
        public var head: FetchPartitionHead
        /// Whole batches, as stored.
        public var records: ByteBuffer

        public init(head: FetchPartitionHead, records: ByteBuffer) {
            self.head = head
            self.records = records
        }
    }

    public struct Topic: Sendable {
        public var name: String
        public var partitions: [Partition]

        public init(name: String, partitions: [Partition]) {
            self.name = name
            self.partitions = partitions
        }
    }

    public var topics: [Topic]

    public init(topics: [Topic]) { self.topics = topics }

    public init(from reader: inout WireReader, version: Int16) throws {
        topics = try reader.readArray("topics") { r in
            Topic(name: try r.readString("name"), partitions: try r.readArray("partitions") { p in
                Partition(head: try FetchPartitionHead(from: &p), records: try p.readBytes("records"))
            })
        }
    }

    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(topics) { w, t in
            w.write(t.name)
            w.write(t.partitions) { w, p in
                p.head.encode(to: &w)
                w.write(bytes: p.records)
            }
        }
    }
}

public struct ListOffsetsRequest: WireMessage, Hashable {
    /// Special timestamps: the offset after the last record, and the first offset held.
    public static let latestTimestamp: Int64 = -1
    public static let earliestTimestamp: Int64 = -2

    public struct Partition: Sendable, Hashable {
        public var partition: Int32
        /// −1 latest, −2 earliest, otherwise the first offset whose timestamp is ≥ this (epoch ms).
        public var timestamp: Int64

        public init(partition: Int32, timestamp: Int64) {
            self.partition = partition
            self.timestamp = timestamp
        }
    }

    public struct Topic: Sendable, Hashable {
        public var name: String
        public var partitions: [Partition]

        public init(name: String, partitions: [Partition]) {
            self.name = name
            self.partitions = partitions
        }
    }

    public var topics: [Topic]

    public init(topics: [Topic]) { self.topics = topics }

    public init(from reader: inout WireReader, version: Int16) throws {
        topics = try reader.readArray("topics") { r in
            Topic(name: try r.readString("name"), partitions: try r.readArray("partitions") { p in
                Partition(partition: try p.readInt32("partition"), timestamp: try p.readInt64("timestamp"))
            })
        }
    }

    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(topics) { w, t in
            w.write(t.name)
            w.write(t.partitions) { w, p in
                w.write(p.partition)
                w.write(p.timestamp)
            }
        }
    }
}

public struct ListOffsetsResponse: WireMessage, Hashable {
    public struct Partition: Sendable, Hashable {
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
    }

    public struct Topic: Sendable, Hashable {
        public var name: String
        public var partitions: [Partition]

        public init(name: String, partitions: [Partition]) {
            self.name = name
            self.partitions = partitions
        }
    }

    public var topics: [Topic]

    public init(topics: [Topic]) { self.topics = topics }

    public init(from reader: inout WireReader, version: Int16) throws {
        topics = try reader.readArray("topics") { r in
            Topic(name: try r.readString("name"), partitions: try r.readArray("partitions") { p in
                Partition(partition: try p.readInt32("partition"), error: try p.readErrorCode(),
                          errorMessage: try p.readNullableString("error_message"), offset: try p.readInt64("offset"))
            })
        }
    }

    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(topics) { w, t in
            w.write(t.name)
            w.write(t.partitions) { w, p in
                w.write(p.partition)
                w.write(p.error.rawValue)
                w.write(p.errorMessage)
                w.write(p.offset)
            }
        }
    }
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
