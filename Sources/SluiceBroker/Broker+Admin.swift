import SluiceLog
import SluiceWire

// Metadata and topic administration.

extension Broker {
    /// Alone: this broker leads every partition. In a cluster: `clusterMetadata`.
    func metadata(_ request: MetadataRequest) -> MetadataResponse {
        if let replicaManager { return clusterMetadata(request, manager: replicaManager) }
        let broker = BrokerMetadata(nodeId: config.nodeId, host: config.host, port: Int32(boundPort))
        let topics = topicsMetadata(request) { _, _ in (config.nodeId, [config.nodeId]) }
        return MetadataResponse(brokers: [broker], controllerId: config.nodeId, topics: topics)
    }

    /// The requested topics (every visible one when the request names none), each partition's leader
    /// and replicas given by `placement`.
    func topicsMetadata(_ request: MetadataRequest,
                        placement: (Topic, Partition) -> (leader: Int32, replicas: [Int32])) -> [TopicMetadata] {
        let names = request.topics ?? registry.allTopics.filter { request.includeInternal || !$0.isInternal }.map(\.name)
        return names.map { name in
            guard let topic = registry.topic(name) else {
                return TopicMetadata(error: .unknownTopicOrPartition, errorMessage: "topic '\(name)' does not exist",
                                     name: name, isInternal: false, partitions: [])
            }
            let partitions = topic.partitions.map { partition in
                let log = partition.log
                let (leader, replicas) = placement(topic, partition)
                return PartitionMetadata(partition: partition.index, leader: leader, replicas: replicas,
                                         logStartOffset: log.logStartOffset, highWatermark: log.highWatermark,
                                         sizeBytes: Int64(log.sizeInBytes))
            }
            return TopicMetadata(name: topic.name, isInternal: topic.isInternal, partitions: partitions)
        }
    }

    func createTopics(_ request: CreateTopicsRequest) -> TopicResultsResponse {
        TopicResultsResponse(topics: request.topics.map { topic in
            do {
                guard topic.replicationFactor == 1 || topic.replicationFactor == -1 else {
                    throw WireError(.invalidReplicationFactor,
                        "replication factor \(topic.replicationFactor) needs \(topic.replicationFactor) brokers; this cluster has 1")
                }
                try registry.create(name: topic.name, partitions: topic.partitions, configs: topic.configs, validateOnly: request.validateOnly)
                groups.topicsChanged()
                return TopicResult(name: topic.name)
            } catch {
                let wire = wireError(for: error, api: .createTopics)
                return TopicResult(name: topic.name, error: wire.code, errorMessage: wire.message)
            }
        })
    }

    func deleteTopics(_ request: DeleteTopicsRequest) -> TopicResultsResponse {
        TopicResultsResponse(topics: request.names.map { name in
            do {
                try registry.delete(name: name)
                groups.topicsChanged()
                return TopicResult(name: name)
            } catch {
                let wire = wireError(for: error, api: .deleteTopics)
                return TopicResult(name: name, error: wire.code, errorMessage: wire.message)
            }
        })
    }

    func describeConfigs(_ request: DescribeConfigsRequest) -> DescribeConfigsResponse {
        DescribeConfigsResponse(topics: request.topics.map { name in
            guard let topic = registry.topic(name) else {
                return .init(name: name, error: .unknownTopicOrPartition, errorMessage: "topic '\(name)' does not exist", configs: [])
            }
            return .init(name: name, configs: topic.config.effective(defaults: registry.defaults))
        })
    }

    func alterConfigs(_ request: AlterConfigsRequest) -> TopicResultsResponse {
        TopicResultsResponse(topics: request.topics.map { topic in
            do {
                try registry.alter(name: topic.name, configs: topic.configs, validateOnly: request.validateOnly)
                return TopicResult(name: topic.name)
            } catch {
                let wire = wireError(for: error, api: .alterConfigs)
                return TopicResult(name: topic.name, error: wire.code, errorMessage: wire.message)
            }
        })
    }

    func listOffsets(_ request: ListOffsetsRequest) -> ListOffsetsResponse {
        ListOffsetsResponse(topics: request.topics.map { topic in
            ListOffsetsResponse.Topic(name: topic.name, partitions: topic.partitions.map { requested in
                do {
                    let log = try servedPartition(topic.name, requested.partition).log
                    let position: ProcessorStartPosition
                    switch requested.timestamp {
                    case ListOffsetsRequest.latestTimestamp: position = .latest
                    case ListOffsetsRequest.earliestTimestamp: position = .earliest
                    case let timestamp where timestamp >= 0: position = .timestamp(timestamp)
                    default:
                        throw WireError(.invalidRequest, "timestamp \(requested.timestamp) is not -1 (latest), -2 (earliest) or an epoch-millisecond time")
                    }
                    return .init(partition: requested.partition, offset: try log.offset(of: position))
                } catch {
                    let wire = wireError(for: error, api: .listOffsets)
                    return .init(partition: requested.partition, error: wire.code, errorMessage: wire.message, offset: -1)
                }
            })
        })
    }
}

extension PartitionLog {
    /// The offset a reader starting at `position` begins with: the log start, the high watermark, or the
    /// first record at or after a time (the high watermark when there is none). ListOffsets and
    /// processors both start here.
    func offset(of position: ProcessorStartPosition) throws -> Int64 {
        switch position {
        case .earliest: return logStartOffset
        case .latest: return highWatermark
        case .timestamp(let ms): return min(try offset(forTimestamp: ms) ?? highWatermark, highWatermark)
        }
    }
}
