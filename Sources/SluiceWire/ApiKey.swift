/// The requests the protocol knows. Numbers are part of the protocol and never change meaning.
public enum ApiKey: Int16, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case apiVersions = 0
    case metadata = 1
    case createTopics = 2
    case deleteTopics = 3
    case describeConfigs = 4
    case alterConfigs = 5
    case produce = 6
    case fetch = 7
    case listOffsets = 8
    case initProducerId = 9
    case groupHeartbeat = 10
    case offsetCommit = 11
    case offsetFetch = 12
    case listGroups = 13
    case describeGroups = 14
    case createProcessor = 15
    case listProcessors = 16
    case describeProcessor = 17
    /// Pause, resume, reset, replace or delete one processor.
    case alterProcessor = 18
    /// Broker to broker: one-way Raft messages for partition groups and the metadata group.
    case raftMessages = 19
    /// The cluster's brokers and, per partition, leader, term and replica lag (`sluice cluster status`).
    case describeCluster = 20
    /// Broker to broker: Produce whose partitions may belong to internal topics (a processor task's
    /// output and checkpoints written to partitions another broker leads).
    case brokerProduce = 21
    /// Per partition, how many records an idempotent producer id has stored (committed) at its current
    /// epoch: where a processor task resumes its output after a failover.
    case describeProducers = 22

    public var description: String {
        switch self {
        case .apiVersions: "ApiVersions"
        case .metadata: "Metadata"
        case .createTopics: "CreateTopics"
        case .deleteTopics: "DeleteTopics"
        case .describeConfigs: "DescribeConfigs"
        case .alterConfigs: "AlterConfigs"
        case .produce: "Produce"
        case .fetch: "Fetch"
        case .listOffsets: "ListOffsets"
        case .initProducerId: "InitProducerId"
        case .groupHeartbeat: "GroupHeartbeat"
        case .offsetCommit: "OffsetCommit"
        case .offsetFetch: "OffsetFetch"
        case .listGroups: "ListGroups"
        case .describeGroups: "DescribeGroups"
        case .createProcessor: "CreateProcessor"
        case .listProcessors: "ListProcessors"
        case .describeProcessor: "DescribeProcessor"
        case .alterProcessor: "AlterProcessor"
        case .raftMessages: "RaftMessages"
        case .describeCluster: "DescribeCluster"
        case .brokerProduce: "BrokerProduce"
        case .describeProducers: "DescribeProducers"
        }
    }

    /// The versions this build speaks, inclusive. A client picks the highest both sides support
    /// (learned from `ApiVersions`, which every version of every broker answers at version 0).
    public var supportedVersions: ClosedRange<Int16> { 0...0 }
}

/// One row of the `ApiVersions` answer.
public struct ApiVersionRange: Sendable, Hashable {
    public var apiKey: Int16
    public var minVersion: Int16
    public var maxVersion: Int16

    public init(apiKey: Int16, minVersion: Int16, maxVersion: Int16) {
        self.apiKey = apiKey
        self.minVersion = minVersion
        self.maxVersion = maxVersion
    }
}
