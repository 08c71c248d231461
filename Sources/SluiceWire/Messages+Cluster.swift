import NIOCore

// Body of DescribeCluster (protocol.md, "Replication"): the state of a cluster as one broker sees it, for
// `sluice cluster status` — which brokers are up, and per partition its leader, term, high watermark and
// how far each replica lags.

/// Bounds on a DescribeCluster answer, checked by the decoder before it allocates anything for the
/// elements and by the encoder (a broker breaking them is a programmer error).
public enum ClusterLimits {
    /// Most brokers in a cluster. Membership is static and every broker exchanges Raft messages with every
    /// other, so clusters stay far smaller.
    public static let brokersMax = 1_024

    /// Most replicas of one partition: one per broker.
    public static let replicasPerPartitionMax = brokersMax

    /// Most partitions in one answer (internal ones included). A partition with three replicas and a short
    /// topic name takes about 100 bytes, so an answer at this bound is near 100 MiB.
    public static let partitionsMax = 1_000_000
}

/// Asks for the cluster's state: `include_internal bool` (also list the partitions of internal topics
/// and the metadata group, `__cluster_metadata` partition 0).
public struct DescribeClusterRequest: WireMessage, Hashable {
    /// Also list internal topics' partitions and the metadata group.
    public var includeInternal: Bool

    /// A request; user topics only unless `includeInternal`.
    public init(includeInternal: Bool = false) { self.includeInternal = includeInternal }

    /// Reads the body.
    public init(from reader: inout WireReader, version: Int16) throws {
        includeInternal = try reader.readBool("include_internal")
    }

    /// Writes the body.
    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(includeInternal)
    }
}

/// The cluster as the answering broker sees it: `error int16, message string?, controller_id int32,
/// brokers [Broker], partitions [Partition]`. On error the lists are empty and `controller_id` is −1.
public struct DescribeClusterResponse: WireMessage, WireErrorCarrying, Hashable {
    /// A member of the cluster: `node_id int32, host string, port int32, up bool`.
    public struct Broker: WireEntry, Hashable {
        /// The broker's node id (`--node-id`).
        public var nodeId: Int32
        /// The host it listens on, as configured in `--cluster`.
        public var host: String
        /// The port it listens on.
        public var port: Int32
        /// The answering broker heard from it within the last election timeout (always true for itself).
        public var isUp: Bool

        /// A broker row.
        public init(nodeId: Int32, host: String, port: Int32, isUp: Bool) {
            self.nodeId = nodeId
            self.host = host
            self.port = port
            self.isUp = isUp
        }

        /// Reads `node_id int32, host string, port int32, up bool`.
        public init(from reader: inout WireReader) throws {
            nodeId = try reader.readInt32("node_id")
            host = try reader.readString("host")
            port = try reader.readInt32("port")
            isUp = try reader.readBool("up")
        }

        /// Writes `node_id int32, host string, port int32, up bool`.
        public func encode(to writer: inout WireWriter) {
            writer.write(nodeId)
            writer.write(host)
            writer.write(port)
            writer.write(isUp)
        }
    }

    /// One replica of a partition: `node_id int32, log_end_offset int64, lag int64, in_sync bool`.
    public struct Replica: WireEntry, Hashable {
        /// The broker holding the replica.
        public var nodeId: Int32
        /// The offset after the replica's last record, as its leader last learned it; −1 unknown.
        public var logEndOffset: Int64
        /// How many offsets the replica's log end is behind the leader's (0 for the leader); −1 unknown.
        public var lag: Int64
        /// The replica counts towards `acks=all` now: the leader heard from it within the last election
        /// timeout.
        public var inSync: Bool

        /// A replica row.
        public init(nodeId: Int32, logEndOffset: Int64, lag: Int64, inSync: Bool) {
            self.nodeId = nodeId
            self.logEndOffset = logEndOffset
            self.lag = lag
            self.inSync = inSync
        }

        /// Reads `node_id int32, log_end_offset int64, lag int64, in_sync bool`.
        public init(from reader: inout WireReader) throws {
            nodeId = try reader.readInt32("node_id")
            logEndOffset = try reader.readInt64("log_end_offset")
            lag = try reader.readInt64("lag")
            inSync = try reader.readBool("in_sync")
        }

        /// Writes `node_id int32, log_end_offset int64, lag int64, in_sync bool`.
        public func encode(to writer: inout WireWriter) {
            writer.write(nodeId)
            writer.write(logEndOffset)
            writer.write(lag)
            writer.write(inSync)
        }
    }

    /// One partition's Raft group: `topic string, partition int32, leader int32, term int64,
    /// high_watermark int64, replicas [Replica]`.
    public struct Partition: WireEntry, Hashable {
        /// The partition's topic.
        public var topic: String
        /// The partition number.
        public var partition: Int32
        /// The node id of the group's leader; −1 when it has none (an election is under way).
        public var leader: Int32
        /// The group's current term (the leader epoch of the batches its leader writes).
        public var term: Int64
        /// The commit index as an offset: consumers read below it.
        public var highWatermark: Int64
        /// One row per replica, leader included, at most `ClusterLimits.replicasPerPartitionMax`.
        public var replicas: [Replica]

        /// A partition row.
        public init(topic: String, partition: Int32, leader: Int32, term: Int64, highWatermark: Int64, replicas: [Replica]) {
            self.topic = topic
            self.partition = partition
            self.leader = leader
            self.term = term
            self.highWatermark = highWatermark
            self.replicas = replicas
        }

        /// Reads the partition's fields.
        public init(from reader: inout WireReader) throws {
            topic = try reader.readString("topic")
            partition = try reader.readInt32("partition")
            leader = try reader.readInt32("leader")
            term = try reader.readInt64("term")
            highWatermark = try reader.readInt64("high_watermark")
            replicas = try reader.readArray("replicas", countMax: ClusterLimits.replicasPerPartitionMax,
                                            limit: "ClusterLimits.replicasPerPartitionMax") { try Replica(from: &$0) }
        }

        /// Writes the partition's fields.
        public func encode(to writer: inout WireWriter) {
            precondition(replicas.count <= ClusterLimits.replicasPerPartitionMax,
                         "\(replicas.count) replicas; the wire limit is \(ClusterLimits.replicasPerPartitionMax)")
            writer.write(topic)
            writer.write(partition)
            writer.write(leader)
            writer.write(term)
            writer.write(highWatermark)
            writer.write(entries: replicas)
        }
    }

    /// `.none` unless the broker could not describe the cluster.
    public var error: ErrorCode
    /// Why, for people; nil on success. Encoding cuts it to `WireError.messageBytesMax` bytes.
    public var errorMessage: String?
    /// The leader of the metadata Raft group; −1 when unknown.
    public var controllerId: Int32
    /// Every member of the cluster, by node id.
    public var brokers: [Broker]
    /// Every partition, by topic then partition number.
    public var partitions: [Partition]

    /// A description, or (with an error) a refusal with empty lists.
    public init(error: ErrorCode = .none, errorMessage: String? = nil, controllerId: Int32, brokers: [Broker], partitions: [Partition]) {
        self.error = error
        self.errorMessage = errorMessage
        self.controllerId = controllerId
        self.brokers = brokers
        self.partitions = partitions
    }

    /// A refusal: the failure, no controller, no brokers, no partitions.
    public init(failure: WireError) {
        self.init(error: failure.code, errorMessage: failure.message, controllerId: -1, brokers: [], partitions: [])
    }

    /// Reads the body; a list above its `ClusterLimits` bound is malformed.
    public init(from reader: inout WireReader, version: Int16) throws {
        (error, errorMessage) = try reader.readErrorPair()
        controllerId = try reader.readInt32("controller_id")
        brokers = try reader.readArray("brokers", countMax: ClusterLimits.brokersMax,
                                       limit: "ClusterLimits.brokersMax") { try Broker(from: &$0) }
        partitions = try reader.readArray("partitions", countMax: ClusterLimits.partitionsMax,
                                          limit: "ClusterLimits.partitionsMax") { try Partition(from: &$0) }
    }

    /// Writes the body. Lists above their `ClusterLimits` bound are a programmer error.
    public func encode(to writer: inout WireWriter, version: Int16) {
        precondition(brokers.count <= ClusterLimits.brokersMax,
                     "\(brokers.count) brokers; the wire limit is \(ClusterLimits.brokersMax)")
        precondition(partitions.count <= ClusterLimits.partitionsMax,
                     "\(partitions.count) partitions; the wire limit is \(ClusterLimits.partitionsMax)")
        writer.write(error.rawValue)
        writer.write(message: errorMessage)
        writer.write(controllerId)
        writer.write(entries: brokers)
        writer.write(entries: partitions)
    }
}
