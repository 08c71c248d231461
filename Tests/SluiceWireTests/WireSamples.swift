import NIOCore
import SluiceCore
import SluiceWire
import Testing

/// One value of a request or response body type, type-erased so that tests can run the same checks
/// (round trip, truncation, trailing bytes, framing) over every message of `Messages+*.swift`.
///
/// Samples cover null strings, arrays and bytes wherever the protocol allows them, empty arrays,
/// non-ASCII strings and extreme integers.
struct WireSample: Sendable {
    /// For messages: "MetadataRequest (all topics)".
    let name: String
    let api: ApiKey
    let isRequest: Bool
    /// The body exactly as `WireWriter` encodes it (version 0).
    let body: [UInt8]
    /// Appends the whole frame: a request frame with `header`, or a response frame carrying the
    /// header's correlation id.
    let appendFrame: @Sendable (RequestHeader, inout ByteBuffer) -> Void
    /// Decodes a body as the sample's type; true when the result equals the sample.
    let decodesEqual: @Sendable (ByteBuffer) throws -> Bool

    /// A sample of a type without `Hashable`, compared by `equal` (field by field).
    static func make<M: WireMessage>(
        _ name: String, _ api: ApiKey, request: Bool, _ message: M,
        equal: @escaping @Sendable (M, M) -> Bool
    ) -> WireSample {
        var writer = WireWriter(ByteBuffer())
        message.encode(to: &writer, version: 0)
        return WireSample(
            name: name, api: api, isRequest: request, body: Array(writer.buffer.readableBytesView),
            appendFrame: { header, buffer in
                if request {
                    FrameEncoder.encodeRequest(message, header: header, into: &buffer)
                } else {
                    FrameEncoder.encodeResponse(message, correlationId: header.correlationId, version: header.apiVersion, into: &buffer)
                }
            },
            decodesEqual: { buffer in equal(try M.decode(buffer, version: 0), message) })
    }

    /// A sample of a `Hashable` type, compared with `==`.
    static func make<M: WireMessage & Hashable>(_ name: String, _ api: ApiKey, request: Bool, _ message: M) -> WireSample {
        make(name, api, request: request, message, equal: ==)
    }

    /// A small valid record batch, as a produce request or fetch response carries it.
    static let batchBytes: [UInt8] = RecordBatch.uncompressed(records: [
        Record(offset: 0, timestamp: 1_700_000_000_000, key: Array("k".utf8), value: Array("hello".utf8),
               headers: [RecordHeader(key: "h", value: nil)]),
        Record(offset: 1, timestamp: 1_700_000_000_001, key: nil, value: nil),
    ]).bytes

    static let requests: [WireSample] = [
        make("ApiVersionsRequest", .apiVersions, request: true, ApiVersionsRequest()),
        make("MetadataRequest (null topics = all)", .metadata, request: true, MetadataRequest(topics: nil, includeInternal: true)),
        make("MetadataRequest (empty topic list)", .metadata, request: true, MetadataRequest(topics: [], includeInternal: false)),
        make("MetadataRequest (named, non-ASCII, empty name)", .metadata, request: true,
             MetadataRequest(topics: ["orders", "zürich-日本", ""], includeInternal: false)),
        make("CreateTopicsRequest", .createTopics, request: true, CreateTopicsRequest(topics: [
            .init(name: "events", partitions: 12, replicationFactor: -1, configs: [
                ConfigEntry(key: "retention.ms", value: "3600000"), ConfigEntry(key: "cleanup.policy", value: nil),
                ConfigEntry(key: "segment.bytes", value: ""),
            ]),
            .init(name: "x", partitions: Int32.min, replicationFactor: Int16.max),
        ], validateOnly: true)),
        make("CreateTopicsRequest (no topics)", .createTopics, request: true, CreateTopicsRequest(topics: [])),
        make("DeleteTopicsRequest", .deleteTopics, request: true, DeleteTopicsRequest(names: ["a", "b-c.d_e"])),
        make("DescribeConfigsRequest", .describeConfigs, request: true, DescribeConfigsRequest(topics: ["a", "é"])),
        make("AlterConfigsRequest (null value resets)", .alterConfigs, request: true, AlterConfigsRequest(topics: [
            .init(name: "a", configs: [ConfigEntry(key: "retention.ms", value: nil), ConfigEntry(key: "flush.policy", value: "os")]),
            .init(name: "b", configs: []),
        ], validateOnly: true)),
        make("ProduceRequest (acks all, a batch and empty records)", .produce, request: true, ProduceRequest(
            acks: .all, timeoutMs: 30_000, topics: [
                .init(name: "events", partitions: [
                    .init(partition: 0, records: ByteBuffer(bytes: batchBytes)),
                    .init(partition: Int32.max, records: ByteBuffer()),
                ]),
                .init(name: "empty", partitions: []),
            ]), equal: producesEqual),
        make("ProduceRequest (acks none)", .produce, request: true,
             ProduceRequest(acks: .none, timeoutMs: -1, topics: []), equal: producesEqual),
        make("FetchRequest", .fetch, request: true, FetchRequest(maxWaitMs: 500, minBytes: 1, maxBytes: Int32.max, topics: [
            .init(name: "events", partitions: [
                .init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20),
                .init(partition: 3, fetchOffset: Int64.max, partitionMaxBytes: -1),
            ]),
        ])),
        make("ListOffsetsRequest", .listOffsets, request: true, ListOffsetsRequest(topics: [
            .init(name: "events", partitions: [
                .init(partition: 0, timestamp: ListOffsetsRequest.latestTimestamp),
                .init(partition: 1, timestamp: ListOffsetsRequest.earliestTimestamp),
                .init(partition: 2, timestamp: 1_700_000_000_000),
            ]),
        ])),
        make("InitProducerIdRequest (new)", .initProducerId, request: true, InitProducerIdRequest()),
        make("InitProducerIdRequest (bump)", .initProducerId, request: true, InitProducerIdRequest(producerId: 4242, producerEpoch: 7)),
        make("GroupHeartbeatRequest (join, null optionals)", .groupHeartbeat, request: true, GroupHeartbeatRequest(
            groupId: "g", memberId: "", memberEpoch: 0, sessionTimeoutMs: 10_000,
            subscribedTopics: nil, assignor: nil, ownedPartitions: nil)),
        make("GroupHeartbeatRequest (every field)", .groupHeartbeat, request: true, GroupHeartbeatRequest(
            groupId: "g", memberId: "m-1", memberEpoch: 5, sessionTimeoutMs: 45_000,
            subscribedTopics: ["a", "b"], assignor: "range",
            ownedPartitions: [TopicPartitions(topic: "a", partitions: [0, 2]), TopicPartitions(topic: "b", partitions: [])])),
        make("GroupHeartbeatRequest (leave, empty lists)", .groupHeartbeat, request: true, GroupHeartbeatRequest(
            groupId: "g", memberId: "m-1", memberEpoch: -1, sessionTimeoutMs: 0,
            subscribedTopics: [], assignor: "", ownedPartitions: [])),
        make("OffsetCommitRequest", .offsetCommit, request: true, OffsetCommitRequest(
            groupId: "g", memberId: "", memberEpoch: -1, topics: [
                .init(name: "a", partitions: [.init(partition: 0, offset: 10, metadata: nil), .init(partition: 1, offset: 0, metadata: "note ✓")]),
            ])),
        make("OffsetFetchRequest (null = all)", .offsetFetch, request: true, OffsetFetchRequest(groupId: "g", topics: nil)),
        make("OffsetFetchRequest (named)", .offsetFetch, request: true,
             OffsetFetchRequest(groupId: "g", topics: [TopicPartitions(topic: "a", partitions: [0, 1, 2])])),
        make("ListGroupsRequest", .listGroups, request: true, ListGroupsRequest()),
        make("DescribeGroupsRequest", .describeGroups, request: true, DescribeGroupsRequest(groupIds: ["g1", "g2"])),
    ] + processorRequests + replicationRequests + producersRequests

    static let responses: [WireSample] = [
        make("ApiVersionsResponse", .apiVersions, request: false, ApiVersionsResponse(
            apis: ApiKey.allCases.map { ApiVersionRange(apiKey: $0.rawValue, minVersion: 0, maxVersion: 0) } + [
                ApiVersionRange(apiKey: -1, minVersion: Int16.min, maxVersion: Int16.max),
            ], brokerSoftware: "sluiced 0.3.0")),
        make("MetadataResponse", .metadata, request: false, MetadataResponse(
            brokers: [BrokerMetadata(nodeId: 1, host: "127.0.0.1", port: 9400)], controllerId: 1, topics: [
                TopicMetadata(name: "events", isInternal: false, partitions: [
                    PartitionMetadata(partition: 0, leader: 1, replicas: [1], logStartOffset: 0, highWatermark: 42, sizeBytes: 4096),
                    PartitionMetadata(error: .notLeader, partition: 1, leader: -1, replicas: [], logStartOffset: -1,
                                      highWatermark: Int64.max, sizeBytes: 0),
                ]),
                TopicMetadata(error: .unknownTopicOrPartition, errorMessage: "topic 'x' does not exist", name: "x",
                              isInternal: false, partitions: []),
                TopicMetadata(name: "__consumer_offsets", isInternal: true, partitions: []),
            ])),
        make("MetadataResponse (no brokers, no topics)", .metadata, request: false,
             MetadataResponse(brokers: [], controllerId: -1, topics: [])),
        make("TopicResultsResponse", .createTopics, request: false, TopicResultsResponse(topics: [
            TopicResult(name: "a"), TopicResult(name: "b", error: .invalidTopic, errorMessage: "topic name is empty"),
            TopicResult(name: "c", error: .topicAlreadyExists, errorMessage: nil),
        ])),
        make("TopicResultsResponse (DeleteTopics, none)", .deleteTopics, request: false, TopicResultsResponse(topics: [])),
        make("TopicResultsResponse (AlterConfigs)", .alterConfigs, request: false, TopicResultsResponse(topics: [
            TopicResult(name: "a", error: .invalidConfig, errorMessage: "retention.ms must be an integer ≥ 1, got 'soon'"),
        ])),
        make("DescribeConfigsResponse", .describeConfigs, request: false, DescribeConfigsResponse(topics: [
            .init(name: "a", configs: [
                ConfigEntry(key: "retention.ms", value: "1000", isDefault: false),
                ConfigEntry(key: "segment.bytes", value: nil, isDefault: true),
            ]),
            .init(name: "missing", error: .unknownTopicOrPartition, errorMessage: "nope", configs: []),
        ])),
        make("ProduceResponse", .produce, request: false, ProduceResponse(topics: [
            .init(name: "a", partitions: [
                .init(partition: 0, baseOffset: 100, logStartOffset: 0),
                .init(partition: 1, error: .corruptMessage, errorMessage: "CRC mismatch", baseOffset: -1, logStartOffset: -1),
            ]),
        ])),
        make("FetchResponse", .fetch, request: false, FetchResponse(topics: [
            .init(name: "a", partitions: [
                .init(head: FetchPartitionHead(partition: 0, highWatermark: 2, logStartOffset: 0), records: ByteBuffer(bytes: batchBytes)),
                .init(head: FetchPartitionHead(partition: 1, error: .offsetOutOfRange, errorMessage: "offset 9 is outside 0...2",
                                               highWatermark: -1, logStartOffset: -1), records: ByteBuffer()),
            ]),
        ]), equal: fetchesEqual),
        make("ListOffsetsResponse", .listOffsets, request: false, ListOffsetsResponse(topics: [
            .init(name: "a", partitions: [
                .init(partition: 0, offset: 7),
                .init(partition: 9, error: .unknownTopicOrPartition, errorMessage: "no partition 9", offset: -1),
            ]),
        ])),
        make("InitProducerIdResponse", .initProducerId, request: false, InitProducerIdResponse(producerId: Int64.max, producerEpoch: 0)),
        make("GroupHeartbeatResponse (assignment unchanged = null)", .groupHeartbeat, request: false,
             GroupHeartbeatResponse(memberId: "m-1", memberEpoch: 3, heartbeatIntervalMs: 3000, assignment: nil)),
        make("GroupHeartbeatResponse (new assignment)", .groupHeartbeat, request: false, GroupHeartbeatResponse(
            memberId: "m-1", memberEpoch: 4, heartbeatIntervalMs: 3000,
            assignment: [TopicPartitions(topic: "a", partitions: [1, 3]), TopicPartitions(topic: "b", partitions: [])])),
        make("PartitionErrorsResponse", .offsetCommit, request: false, PartitionErrorsResponse(topics: [
            .init(name: "a", partitions: [
                .init(partition: 0), .init(partition: 1, error: .invalidCommitOffset, errorMessage: "offsets are ≥ 0"),
            ]),
        ])),
        make("OffsetFetchResponse", .offsetFetch, request: false, OffsetFetchResponse(topics: [
            .init(name: "a", partitions: [.init(partition: 0, offset: -1, metadata: nil), .init(partition: 1, offset: 12, metadata: "m")]),
        ])),
        make("ListGroupsResponse", .listGroups, request: false, ListGroupsResponse(groups: [
            .init(groupId: "g1", state: "stable", memberCount: 2), .init(groupId: "g2", state: "empty", memberCount: 0),
        ])),
        make("DescribeGroupsResponse", .describeGroups, request: false, DescribeGroupsResponse(groups: [
            .init(groupId: "g1", state: "stable", groupEpoch: 9, assignor: "sticky", members: [
                .init(memberId: "m-1", clientId: "c", clientHost: "10.0.0.1", memberEpoch: 9, subscribedTopics: ["a"],
                      assignment: [TopicPartitions(topic: "a", partitions: [0])]),
                .init(memberId: "m-2", clientId: "", clientHost: "", memberEpoch: 8, subscribedTopics: [], assignment: []),
            ]),
            .init(groupId: "nope", error: .unknownGroup, errorMessage: "no such group", state: "", groupEpoch: -1, assignor: "",
                  members: []),
        ])),
    ] + processorResponses + replicationResponses + producersResponses

    static let all = requests + responses

    /// `ProduceRequest` has no `Hashable` (its records are a buffer): compare field by field.
    static func producesEqual(_ a: ProduceRequest, _ b: ProduceRequest) -> Bool {
        a.acks == b.acks && a.timeoutMs == b.timeoutMs && a.topics.count == b.topics.count
            && zip(a.topics, b.topics).allSatisfy { ta, tb in
                ta.name == tb.name && ta.partitions.count == tb.partitions.count
                    && zip(ta.partitions, tb.partitions).allSatisfy { $0.partition == $1.partition && $0.records == $1.records }
            }
    }

    /// `FetchResponse` has no `Hashable` either.
    static func fetchesEqual(_ a: FetchResponse, _ b: FetchResponse) -> Bool {
        a.topics.count == b.topics.count
            && zip(a.topics, b.topics).allSatisfy { ta, tb in
                ta.name == tb.name && ta.partitions.count == tb.partitions.count
                    && zip(ta.partitions, tb.partitions).allSatisfy { $0.head == $1.head && $0.records == $1.records }
            }
    }
}

extension WireSample: CustomTestStringConvertible {
    /// Parameterised tests name the sample, not its closures.
    var testDescription: String { name }
}
