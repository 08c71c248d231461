import NIOCore

// Bodies of the broker-to-broker producer APIs (protocol.md, "Broker writes"): BrokerProduce (21) takes
// ProduceRequest / ProduceResponse unchanged, so only DescribeProducers (22) has bodies of its own here.
//
// A processor task that moves to another broker regenerates its output deterministically and must skip
// what its idempotent producer id already stored in each output partition (its "floor"): DescribeProducers
// asks each partition's leader for that count, counting committed records only.

/// Bounds on a DescribeProducers request and its answer, checked by the decoder before it allocates
/// anything for the entries and by the encoder (a sender breaking them is a programmer error: split the
/// request).
public enum DescribeProducersLimits {
    /// Most (topic, partition, producer id) entries in one request, and so in its answer: a few tens of
    /// kilobytes each way with short topic names. A caller with more (a task whose sink
    /// has more partitions) splits its request.
    public static let partitionsMax = 1_000
}

/// Asks, per partition, how many records a producer id has stored there: `timeout_ms int32,
/// partitions [Partition]`.
public struct DescribeProducersRequest: WireMessage, Hashable {
    /// `topic string, partition int32, producer_id int64`.
    public struct Partition: WireEntry, Hashable {
        /// The partition's topic.
        public var topic: String
        /// The partition number.
        public var partition: Int32
        /// The idempotent producer id to describe; a negative id is never tracked.
        public var producerId: Int64

        /// One entry to describe.
        public init(topic: String, partition: Int32, producerId: Int64) {
            self.topic = topic
            self.partition = partition
            self.producerId = producerId
        }

        /// Reads `topic string, partition int32, producer_id int64`.
        public init(from reader: inout WireReader) throws {
            topic = try reader.readString("topic")
            partition = try reader.readInt32("partition")
            producerId = try reader.readInt64("producer_id")
        }

        /// Writes `topic string, partition int32, producer_id int64`.
        public func encode(to writer: inout WireWriter) {
            writer.write(topic)
            writer.write(partition)
            writer.write(producerId)
        }
    }

    /// How long the leader may wait for a producer's last batch to commit before it answers that entry
    /// `request_timed_out`; 0 answers at once. The broker caps it.
    public var timeoutMs: Int32
    /// The entries, at most `DescribeProducersLimits.partitionsMax`; answered in this order.
    public var partitions: [Partition]

    /// A request for `partitions`.
    public init(timeoutMs: Int32, partitions: [Partition]) {
        self.timeoutMs = timeoutMs
        self.partitions = partitions
    }

    /// Reads the body; more entries than `DescribeProducersLimits.partitionsMax` is malformed.
    public init(from reader: inout WireReader, version: Int16) throws {
        timeoutMs = try reader.readInt32("timeout_ms")
        partitions = try reader.readArray("partitions", countMax: DescribeProducersLimits.partitionsMax,
                                          limit: "DescribeProducersLimits.partitionsMax") { try Partition(from: &$0) }
    }

    /// Writes the body. More entries than `DescribeProducersLimits.partitionsMax` is a programmer error.
    public func encode(to writer: inout WireWriter, version: Int16) {
        precondition(partitions.count <= DescribeProducersLimits.partitionsMax,
                     "\(partitions.count) entries; the wire limit is \(DescribeProducersLimits.partitionsMax)")
        writer.write(timeoutMs)
        writer.write(entries: partitions)
    }
}

/// The answer of DescribeProducers: `partitions [Partition]`, one per request entry, in request order.
public struct DescribeProducersResponse: WireMessage, Hashable {
    /// `topic string, partition int32, error int16, message string?, producer_epoch int16,
    /// records_written int64`.
    public struct Partition: WireEntry, WireErrorCarrying, Hashable {
        /// The entry's topic, as asked.
        public var topic: String
        /// The entry's partition, as asked.
        public var partition: Int32
        /// `.none` on success; `unknown_topic_or_partition`, `not_leader`, `request_timed_out`, …
        public var error: ErrorCode
        /// Why, for people; nil on success. Encoding cuts it to `WireError.messageBytesMax` bytes.
        public var errorMessage: String?
        /// The producer's current epoch in the partition; −1 when the partition does not know the
        /// producer, and on error.
        public var producerEpoch: Int16
        /// Records the producer has stored in the partition at `producerEpoch` (its last sequence + 1),
        /// counting committed records only; 0 for an unknown producer, −1 on error.
        public var recordsWritten: Int64

        /// An answer entry.
        public init(topic: String, partition: Int32, error: ErrorCode = .none, errorMessage: String? = nil,
                    producerEpoch: Int16, recordsWritten: Int64) {
            self.topic = topic
            self.partition = partition
            self.error = error
            self.errorMessage = errorMessage
            self.producerEpoch = producerEpoch
            self.recordsWritten = recordsWritten
        }

        /// A refused entry: the failure, epoch −1, records −1.
        public init(topic: String, partition: Int32, failure: WireError) {
            self.init(topic: topic, partition: partition, error: failure.code, errorMessage: failure.message,
                      producerEpoch: -1, recordsWritten: -1)
        }

        /// Reads the entry's fields.
        public init(from reader: inout WireReader) throws {
            topic = try reader.readString("topic")
            partition = try reader.readInt32("partition")
            (error, errorMessage) = try reader.readErrorPair()
            producerEpoch = try reader.readInt16("producer_epoch")
            recordsWritten = try reader.readInt64("records_written")
        }

        /// Writes the entry's fields.
        public func encode(to writer: inout WireWriter) {
            writer.write(topic)
            writer.write(partition)
            writer.write(error.rawValue)
            writer.write(message: errorMessage)
            writer.write(producerEpoch)
            writer.write(recordsWritten)
        }
    }

    /// One entry per request entry, in request order; at most `DescribeProducersLimits.partitionsMax`.
    public var partitions: [Partition]

    /// An answer of these entries.
    public init(partitions: [Partition]) { self.partitions = partitions }

    /// Reads the body; more entries than `DescribeProducersLimits.partitionsMax` is malformed.
    public init(from reader: inout WireReader, version: Int16) throws {
        partitions = try reader.readArray("partitions", countMax: DescribeProducersLimits.partitionsMax,
                                          limit: "DescribeProducersLimits.partitionsMax") { try Partition(from: &$0) }
    }

    /// Writes the body. More entries than `DescribeProducersLimits.partitionsMax` is a programmer error.
    public func encode(to writer: inout WireWriter, version: Int16) {
        precondition(partitions.count <= DescribeProducersLimits.partitionsMax,
                     "\(partitions.count) entries; the wire limit is \(DescribeProducersLimits.partitionsMax)")
        writer.write(entries: partitions)
    }
}
