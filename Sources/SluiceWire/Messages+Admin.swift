import NIOCore

// Bodies of the version, metadata and topic-administration APIs (protocol.md, "APIs").

/// ApiVersions request: empty. Every broker answers it at version 0.
public struct ApiVersionsRequest: WireMessage, Hashable {
    public init() {}
    public init(from reader: inout WireReader, version: Int16) throws {}
    public func encode(to writer: inout WireWriter, version: Int16) {}
}

public struct ApiVersionsResponse: WireMessage, Hashable {
    public var apis: [ApiVersionRange]
    /// The broker's software version, for people.
    public var brokerSoftware: String

    public init(apis: [ApiVersionRange], brokerSoftware: String) {
        self.apis = apis
        self.brokerSoftware = brokerSoftware
    }

    public init(from reader: inout WireReader, version: Int16) throws {
        apis = try reader.readArray("apis") { r in
            ApiVersionRange(apiKey: try r.readInt16("api_key"), minVersion: try r.readInt16("min_version"),
                            maxVersion: try r.readInt16("max_version"))
        }
        brokerSoftware = try reader.readString("broker_software")
    }

    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(apis) { w, api in
            w.write(api.apiKey)
            w.write(api.minVersion)
            w.write(api.maxVersion)
        }
        writer.write(brokerSoftware)
    }
}

/// Metadata request: `topics == nil` asks for every topic.
public struct MetadataRequest: WireMessage, Hashable {
    public var topics: [String]?
    public var includeInternal: Bool

    public init(topics: [String]?, includeInternal: Bool = false) {
        self.topics = topics
        self.includeInternal = includeInternal
    }

    public init(from reader: inout WireReader, version: Int16) throws {
        topics = try reader.readNullableArray("topics") { try $0.readString("topic") }
        includeInternal = try reader.readBool("include_internal")
    }

    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(topics) { $0.write($1) }
        writer.write(includeInternal)
    }
}

public struct BrokerMetadata: Sendable, Hashable {
    public var nodeId: Int32
    public var host: String
    public var port: Int32

    public init(nodeId: Int32, host: String, port: Int32) {
        self.nodeId = nodeId
        self.host = host
        self.port = port
    }
}

public struct PartitionMetadata: Sendable, Hashable {
    public var error: ErrorCode
    public var partition: Int32
    public var leader: Int32
    public var replicas: [Int32]
    public var logStartOffset: Int64
    /// The offset after the last record consumers may read.
    public var highWatermark: Int64
    /// Bytes of the partition's segment files.
    public var sizeBytes: Int64

    public init(error: ErrorCode = .none, partition: Int32, leader: Int32, replicas: [Int32], logStartOffset: Int64,
                highWatermark: Int64, sizeBytes: Int64) {
        self.error = error
        self.partition = partition
        self.leader = leader
        self.replicas = replicas
        self.logStartOffset = logStartOffset
        self.highWatermark = highWatermark
        self.sizeBytes = sizeBytes
    }
}

public struct TopicMetadata: WireErrorCarrying, Sendable, Hashable {
    public var error: ErrorCode
    public var errorMessage: String?
    public var name: String
    public var isInternal: Bool
    public var partitions: [PartitionMetadata]

    public init(error: ErrorCode = .none, errorMessage: String? = nil, name: String, isInternal: Bool, partitions: [PartitionMetadata]) {
        self.error = error
        self.errorMessage = errorMessage
        self.name = name
        self.isInternal = isInternal
        self.partitions = partitions
    }
}

public struct MetadataResponse: WireMessage, Hashable {
    public var brokers: [BrokerMetadata]
    public var controllerId: Int32
    public var topics: [TopicMetadata]

    public init(brokers: [BrokerMetadata], controllerId: Int32, topics: [TopicMetadata]) {
        self.brokers = brokers
        self.controllerId = controllerId
        self.topics = topics
    }

    public init(from reader: inout WireReader, version: Int16) throws {
        brokers = try reader.readArray("brokers") { r in
            BrokerMetadata(nodeId: try r.readInt32("node_id"), host: try r.readString("host"), port: try r.readInt32("port"))
        }
        controllerId = try reader.readInt32("controller_id")
        topics = try reader.readArray("topics") { r in
            let (error, message) = try r.readErrorPair()
            let name = try r.readString("name")
            let isInternal = try r.readBool("is_internal")
            let partitions = try r.readArray("partitions") { p in
                PartitionMetadata(
                    error: try p.readErrorCode(), partition: try p.readInt32("partition"), leader: try p.readInt32("leader"),
                    replicas: try p.readArray("replicas") { try $0.readInt32("replica") },
                    logStartOffset: try p.readInt64("log_start_offset"), highWatermark: try p.readInt64("high_watermark"),
                    sizeBytes: try p.readInt64("size_bytes"))
            }
            return TopicMetadata(error: error, errorMessage: message, name: name, isInternal: isInternal, partitions: partitions)
        }
    }

    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(brokers) { w, b in
            w.write(b.nodeId)
            w.write(b.host)
            w.write(b.port)
        }
        writer.write(controllerId)
        writer.write(topics) { w, t in
            w.write(error: t.error, message: t.errorMessage)
            w.write(t.name)
            w.write(t.isInternal)
            w.write(t.partitions) { w, p in
                w.write(p.error.rawValue)
                w.write(p.partition)
                w.write(p.leader)
                w.write(p.replicas) { $0.write($1) }
                w.write(p.logStartOffset)
                w.write(p.highWatermark)
                w.write(p.sizeBytes)
            }
        }
    }
}

/// A topic-level config entry; `value == nil` in AlterConfigs resets the key to its default.
public struct ConfigEntry: Sendable, Hashable {
    public var key: String
    public var value: String?
    /// In DescribeConfigs answers: the value is the broker default, not set on the topic.
    public var isDefault: Bool

    public init(key: String, value: String?, isDefault: Bool = false) {
        self.key = key
        self.value = value
        self.isDefault = isDefault
    }
}

extension WireReader {
    mutating func readConfigs(withDefaultFlag: Bool) throws -> [ConfigEntry] {
        try readArray("configs") { r in
            ConfigEntry(key: try r.readString("key"), value: try r.readNullableString("value"),
                        isDefault: withDefaultFlag ? try r.readBool("is_default") : false)
        }
    }

    /// An error code; unknown codes (from a newer broker) read as `unknownServerError`.
    public mutating func readErrorCode() throws -> ErrorCode {
        let raw = try readInt16("error_code")
        return ErrorCode(rawValue: raw) ?? .unknownServerError
    }
}

extension WireWriter {
    mutating func write(configs: [ConfigEntry], withDefaultFlag: Bool) {
        write(configs) { w, c in
            w.write(c.key)
            w.write(c.value)
            if withDefaultFlag { w.write(c.isDefault) }
        }
    }
}

public struct CreateTopicsRequest: WireMessage, Hashable {
    /// `name string, partitions int32, replication_factor int16, configs [key string, value string?]`.
    public struct Topic: WireEntry, Hashable {
        public var name: String
        public var partitions: Int32
        public var replicationFactor: Int16
        public var configs: [ConfigEntry]

        public init(name: String, partitions: Int32, replicationFactor: Int16 = 1, configs: [ConfigEntry] = []) {
            self.name = name
            self.partitions = partitions
            self.replicationFactor = replicationFactor
            self.configs = configs
        }

        public init(from reader: inout WireReader) throws {
            name = try reader.readString("name")
            partitions = try reader.readInt32("partitions")
            replicationFactor = try reader.readInt16("replication_factor")
            configs = try reader.readConfigs(withDefaultFlag: false)
        }

        public func encode(to writer: inout WireWriter) {
            writer.write(name)
            writer.write(partitions)
            writer.write(replicationFactor)
            writer.write(configs: configs, withDefaultFlag: false)
        }
    }

    public var topics: [Topic]
    public var validateOnly: Bool

    public init(topics: [Topic], validateOnly: Bool = false) {
        self.topics = topics
        self.validateOnly = validateOnly
    }

    public init(from reader: inout WireReader, version: Int16) throws {
        topics = try reader.readEntries("topics")
        validateOnly = try reader.readBool("validate_only")
    }

    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(entries: topics)
        writer.write(validateOnly)
    }
}

/// Per-topic outcome of CreateTopics, DeleteTopics and AlterConfigs: `name string, error int16, message string?`.
public struct TopicResult: WireEntry, WireErrorCarrying, Hashable {
    public var name: String
    public var error: ErrorCode
    public var errorMessage: String?

    public init(name: String, error: ErrorCode = .none, errorMessage: String? = nil) {
        self.name = name
        self.error = error
        self.errorMessage = errorMessage
    }

    public init(from reader: inout WireReader) throws {
        name = try reader.readString("name")
        (error, errorMessage) = try reader.readErrorPair()
    }

    public func encode(to writer: inout WireWriter) {
        writer.write(name)
        writer.write(error: error, message: errorMessage)
    }
}

/// Answer of CreateTopics, DeleteTopics and AlterConfigs: one result per topic.
public struct TopicResultsResponse: TopicsMessage, Hashable {
    public var topics: [TopicResult]

    public init(topics: [TopicResult]) { self.topics = topics }
}

public struct DeleteTopicsRequest: WireMessage, Hashable {
    public var names: [String]

    public init(names: [String]) { self.names = names }

    public init(from reader: inout WireReader, version: Int16) throws {
        names = try reader.readArray("names") { try $0.readString("name") }
    }

    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(names) { $0.write($1) }
    }
}

public struct DescribeConfigsRequest: WireMessage, Hashable {
    public var topics: [String]

    public init(topics: [String]) { self.topics = topics }

    public init(from reader: inout WireReader, version: Int16) throws {
        topics = try reader.readArray("topics") { try $0.readString("topic") }
    }

    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(topics) { $0.write($1) }
    }
}

public struct DescribeConfigsResponse: TopicsMessage, Hashable {
    /// `name string, error int16, message string?, configs [key string, value string?, is_default bool]`.
    public struct Topic: WireEntry, WireErrorCarrying, Hashable {
        public var name: String
        public var error: ErrorCode
        public var errorMessage: String?
        public var configs: [ConfigEntry]

        public init(name: String, error: ErrorCode = .none, errorMessage: String? = nil, configs: [ConfigEntry]) {
            self.name = name
            self.error = error
            self.errorMessage = errorMessage
            self.configs = configs
        }

        public init(from reader: inout WireReader) throws {
            name = try reader.readString("name")
            (error, errorMessage) = try reader.readErrorPair()
            configs = try reader.readConfigs(withDefaultFlag: true)
        }

        public func encode(to writer: inout WireWriter) {
            writer.write(name)
            writer.write(error: error, message: errorMessage)
            writer.write(configs: configs, withDefaultFlag: true)
        }
    }

    public var topics: [Topic]

    public init(topics: [Topic]) { self.topics = topics }
}

public struct AlterConfigsRequest: WireMessage, Hashable {
    /// `name string, configs [key string, value string?]`.
    public struct Topic: WireEntry, Hashable {
        public var name: String
        public var configs: [ConfigEntry]

        public init(name: String, configs: [ConfigEntry]) {
            self.name = name
            self.configs = configs
        }

        public init(from reader: inout WireReader) throws {
            name = try reader.readString("name")
            configs = try reader.readConfigs(withDefaultFlag: false)
        }

        public func encode(to writer: inout WireWriter) {
            writer.write(name)
            writer.write(configs: configs, withDefaultFlag: false)
        }
    }

    public var topics: [Topic]
    public var validateOnly: Bool

    public init(topics: [Topic], validateOnly: Bool = false) {
        self.topics = topics
        self.validateOnly = validateOnly
    }

    public init(from reader: inout WireReader, version: Int16) throws {
        topics = try reader.readEntries("topics")
        validateOnly = try reader.readBool("validate_only")
    }

    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(entries: topics)
        writer.write(validateOnly)
    }
}
