import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SluiceCore
import SluiceWire

/// A broker address, `host:port`.
public struct BrokerAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port[,host:port...]`.
    public static func parseList(_ text: String) throws -> [BrokerAddress] {
        let parts = text.split(separator: ",").map { String($0).filter { !$0.isWhitespace } }
        guard !parts.isEmpty else {
            throw SluiceClientError(.invalidArgument, "no broker address given; use host:port, for example 127.0.0.1:9400")
        }
        return try parts.map { part in
            guard let colon = part.lastIndex(of: ":"), let port = Int(part[part.index(after: colon)...]),
                  (1...65535).contains(port), colon != part.startIndex else {
                throw SluiceClientError(.invalidArgument, "'\(part)' is not a broker address; use host:port, for example 127.0.0.1:9400")
            }
            return BrokerAddress(host: String(part[..<colon]), port: port)
        }
    }

    public var description: String { "\(host):\(port)" }
}

/// A topic as `describeTopic` reports it.
public struct TopicDescription: Sendable, Hashable {
    public var name: String
    public var isInternal: Bool
    public var partitions: [PartitionMetadata]
    public var configs: [ConfigEntry]
}

/// What a connection carries. Answers come back in request order on a connection, so long-polling
/// fetches get one of their own: on a shared one, every produce or commit answer behind a fetch would
/// wait out the fetch's long poll.
public enum ConnectionPurpose: Sendable, Hashable, CaseIterable {
    /// Produce, admin and group requests.
    case general
    /// Fetch requests (which may be held by the broker up to their max wait).
    case fetch
}

/// The async client: admin calls and the building blocks `Producer` and `Consumer` use.
///
/// Talks to the first reachable bootstrap broker over pipelined connections (one per
/// `ConnectionPurpose`), reconnecting when one drops. In a cluster, produce goes to each partition's
/// leader and topic creation and deletion to the controller, over one more connection per broker.
public final class SluiceClient: @unchecked Sendable {
    public let brokers: [BrokerAddress]
    public let clientId: String
    public let requestTimeoutMs: Int64
    let group: any EventLoopGroup
    private let ownsGroup: Bool
    private let lock = NIOLock()
    private var connections: [ConnectionPurpose: BrokerConnection] = [:]
    private var connecting: [ConnectionPurpose: Task<BrokerConnection, any Error>] = [:]
    /// Set by `close`: background work still running (a producer's retries, its identity refresh)
    /// then fails at once instead of using event loops that are shutting down.
    private var closed = false
    /// Cluster routing: brokers, leaders, and one connection per broker (`SluiceClient+Routing.swift`).
    let routingLock = NIOLock()
    var routing = RoutingTable()
    var nodeConnections: [Int32: BrokerConnection] = [:]

    public init(brokers: [BrokerAddress], clientId: String = "sluice", requestTimeoutMs: Int64 = 30_000,
                eventLoopGroup: (any EventLoopGroup)? = nil) {
        precondition(!brokers.isEmpty, "at least one bootstrap broker")
        self.brokers = brokers
        self.clientId = clientId
        self.requestTimeoutMs = requestTimeoutMs
        if let eventLoopGroup {
            self.group = eventLoopGroup
            self.ownsGroup = false
        } else {
            self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            self.ownsGroup = true
        }
    }

    /// Closes the connections (and the event loop the client made for itself).
    public func close() async {
        let open = lock.withLock { () -> [BrokerConnection] in
            closed = true
            defer { connections.removeAll() }
            return Array(connections.values)
        }
        for connection in open { await connection.close() }
        await closeNodeConnections()
        if ownsGroup { try? await group.shutdownGracefully() }
    }

    /// The connection for `purpose` if one is open (no connecting).
    public func currentConnection(_ purpose: ConnectionPurpose = .general) -> BrokerConnection? {
        lock.withLock { connections[purpose].flatMap { $0.isActive ? $0 : nil } }
    }

    /// The live connection for `purpose`, connecting to the bootstrap brokers in turn when there is
    /// none. Callers that arrive while a connect is under way share it (one connection per purpose, so
    /// request order holds).
    public func connection(_ purpose: ConnectionPurpose = .general) async throws -> BrokerConnection {
        try checkOpen()
        if let current = currentConnection(purpose) { return current }
        let attempt: Task<BrokerConnection, any Error> = lock.withLock {
            if let pending = connecting[purpose] { return pending }
            let task = Task { try await self.connectToAnyBroker(purpose) }
            connecting[purpose] = task
            return task
        }
        return try await attempt.value
    }

    /// Throws once `close` has begun.
    func checkOpen() throws {
        if lock.withLock({ closed }) { throw SluiceClientError(.connectionClosed, "the client is closed") }
    }

    private func connectToAnyBroker(_ purpose: ConnectionPurpose) async throws -> BrokerConnection {
        var failures: [String] = []
        for address in brokers {
            do {
                let fresh = try await openConnection(to: address)
                lock.withLock {
                    connections[purpose] = fresh
                    connecting[purpose] = nil
                }
                return fresh
            } catch {
                failures.append((error as? SluiceClientError)?.message ?? "\(address): \(error)")
            }
        }
        lock.withLock { connecting[purpose] = nil }
        if failures.count == 1 { throw SluiceClientError(.unreachable, failures[0]) }
        throw SluiceClientError(.unreachable, "no broker reachable:\n  " + failures.joined(separator: "\n  "))
    }

    /// A new connection to `address`, after the handshake (closed again when the handshake fails).
    func openConnection(to address: BrokerAddress) async throws -> BrokerConnection {
        let fresh = try await BrokerConnection.connect(host: address.host, port: address.port, clientId: clientId, group: group)
        do {
            try await Self.handshake(fresh)
        } catch {
            await fresh.close()
            throw error
        }
        return fresh
    }

    /// Asks the broker which API versions it speaks and checks it speaks every one this client uses.
    static func handshake(_ connection: BrokerConnection) async throws {
        let answer: ApiVersionsResponse
        do {
            answer = try await connection.send(.apiVersions, ApiVersionsRequest(), expecting: ApiVersionsResponse.self, timeoutMs: 10_000)
        } catch {
            await connection.close()
            throw error
        }
        let spoken = Dictionary(answer.apis.map { ($0.apiKey, $0.minVersion...$0.maxVersion) }, uniquingKeysWith: { first, _ in first })
        let missing = ApiKey.allCases.filter { api in
            guard let range = spoken[api.rawValue] else { return true }
            return !range.overlaps(api.supportedVersions)
        }
        guard missing.isEmpty else {
            await connection.close()
            throw SluiceClientError(.broker(.unsupportedVersion),
                "the broker at \(connection.host):\(connection.port) (\(answer.brokerSoftware)) does not speak \(missing.map { "\($0)" }.joined(separator: ", ")) in a version this client knows; upgrade the broker or use a matching client")
        }
    }

    /// Sends one request, reconnecting once if the connection had dropped.
    public func send<Request: WireMessage, Response: WireMessage>(_ api: ApiKey, _ request: Request, expecting: Response.Type,
                                                                  timeoutMs: Int64? = nil) async throws -> Response {
        let connection = try await connection(api == .fetch ? .fetch : .general)
        return try await connection.send(api, request, expecting: Response.self, timeoutMs: timeoutMs ?? requestTimeoutMs)
    }

    // MARK: Admin

    public func apiVersions() async throws -> ApiVersionsResponse {
        try await send(.apiVersions, ApiVersionsRequest(), expecting: ApiVersionsResponse.self)
    }

    public func metadata(topics: [String]? = nil, includeInternal: Bool = false) async throws -> MetadataResponse {
        try await send(.metadata, MetadataRequest(topics: topics, includeInternal: includeInternal), expecting: MetadataResponse.self)
    }

    /// A topic's metadata; while the broker does not know the topic, asks again every 20 ms for up to
    /// `waitMs` (a topic just created elsewhere in a cluster), then throws `unknown_topic_or_partition`.
    public func topicMetadata(_ name: String, waitMs: Int64) async throws -> TopicMetadata {
        let deadline = MonotonicClock.nowNanoseconds() + UInt64(max(0, waitMs)) * 1_000_000
        while true {
            do {
                return try await topicMetadata(name)
            } catch let error as SluiceClientError where error.code == .unknownTopicOrPartition && MonotonicClock.nowNanoseconds() < deadline {
                try await Task.sleep(nanoseconds: 20_000_000)
            }
        }
    }

    /// A topic's metadata, or an `unknown_topic_or_partition` error naming it.
    public func topicMetadata(_ name: String) async throws -> TopicMetadata {
        let response = try await metadata(topics: [name])
        guard let topic = response.topics.first(where: { $0.name == name }) else {
            throw SluiceClientError(.protocolViolation, "the broker's metadata does not mention topic '\(name)'")
        }
        if topic.error != .none {
            throw SluiceClientError(WireError(topic.error, topic.errorMessage ?? "topic '\(name)' does not exist"))
        }
        return topic
    }

    public func createTopic(_ name: String, partitions: Int32, replicationFactor: Int16 = 1, configs: [String: String] = [:]) async throws {
        let request = CreateTopicsRequest(topics: [.init(name: name, partitions: partitions, replicationFactor: replicationFactor,
                                                         configs: configs.sorted { $0.key < $1.key }.map { ConfigEntry(key: $0.key, value: $0.value) })])
        let response = try await sendToController(.createTopics, request)
        if let error = response.topics.first?.wireError { throw SluiceClientError(error) }
        // In a cluster the controller answers once it applied the topic; the broker this client asks
        // for metadata may apply it a moment later. Wait for that, so a create is usable at once.
        _ = try? await topicMetadata(name, waitMs: requestTimeoutMs)
    }

    public func deleteTopic(_ name: String) async throws {
        let response = try await sendToController(.deleteTopics, DeleteTopicsRequest(names: [name]))
        if let error = response.topics.first?.wireError { throw SluiceClientError(error) }
    }

    /// Sets (value) or resets to the default (nil) topic configs.
    public func alterTopic(_ name: String, configs: [String: String?]) async throws {
        let entries = configs.sorted { $0.key < $1.key }.map { ConfigEntry(key: $0.key, value: $0.value) }
        let response = try await sendToController(.alterConfigs, AlterConfigsRequest(topics: [.init(name: name, configs: entries)]))
        if let error = response.topics.first?.wireError { throw SluiceClientError(error) }
    }

    public func describeTopic(_ name: String) async throws -> TopicDescription {
        let topic = try await topicMetadata(name)
        let configs = try await send(.describeConfigs, DescribeConfigsRequest(topics: [name]), expecting: DescribeConfigsResponse.self)
        guard let entry = configs.topics.first else {
            throw SluiceClientError(.protocolViolation, "the broker's config answer does not mention topic '\(name)'")
        }
        if let error = entry.wireError { throw SluiceClientError(error) }
        return TopicDescription(name: name, isInternal: topic.isInternal, partitions: topic.partitions, configs: entry.configs)
    }

    /// Offsets per partition for a timestamp (`ListOffsetsRequest.latestTimestamp`, `earliestTimestamp`, or epoch ms).
    /// In a cluster each partition is asked at its leader, which knows its high watermark and log start.
    /// While a leader moves (it answers `not_leader`, or its broker cannot be reached) the partition is
    /// asked again where metadata then says, every `controllerRetryMs` within the request timeout.
    public func listOffsets(topic: String, partitions: [Int32], timestamp: Int64) async throws -> [Int32: Int64] {
        var result: [Int32: Int64] = [:]
        var remaining = partitions
        let deadline = MonotonicClock.nowNanoseconds() + UInt64(requestTimeoutMs) * 1_000_000
        while !remaining.isEmpty {
            var retry: [Int32] = []
            var lastFailure: SluiceClientError?
            for (connection, asked) in try await routeToLeaders(topic: topic, remaining, failed: &retry, lastFailure: &lastFailure) {
                let request = ListOffsetsRequest(topics: [.init(name: topic, partitions: asked.map { .init(partition: $0, timestamp: timestamp) })])
                let response: ListOffsetsResponse
                do {
                    response = try await connection.send(.listOffsets, request, expecting: ListOffsetsResponse.self, timeoutMs: requestTimeoutMs)
                } catch let error as SluiceClientError where error.isRetriable {
                    retry += asked
                    lastFailure = error
                    continue
                }
                for p in response.topics.first?.partitions ?? [] {
                    if let error = p.wireError {
                        guard error.code == .notLeader else { throw SluiceClientError(error) }
                        retry.append(p.partition)
                        lastFailure = SluiceClientError(error)
                        continue
                    }
                    result[p.partition] = p.offset
                }
            }
            for partition in retry { forgetLeader(of: TopicPartitionKey(topic: topic, partition: partition)) }
            if let lastFailure, !retry.isEmpty, MonotonicClock.nowNanoseconds() >= deadline { throw lastFailure }
            if !retry.isEmpty { try await Task.sleep(nanoseconds: UInt64(Self.controllerRetryMs) * 1_000_000) }
            remaining = retry
        }
        return result
    }

    /// `partitions` of `topic` grouped by their leader's connection; those whose leader cannot be found
    /// or reached now go to `failed`.
    private func routeToLeaders(topic: String, _ partitions: [Int32], failed: inout [Int32],
                                lastFailure: inout SluiceClientError?) async throws -> [(BrokerConnection, [Int32])] {
        var routes: [(BrokerConnection, [Int32])] = []
        for partition in partitions {
            do {
                let connection = try await leaderConnection(for: TopicPartitionKey(topic: topic, partition: partition))
                if let index = routes.firstIndex(where: { $0.0 === connection }) {
                    routes[index].1.append(partition)
                } else {
                    routes.append((connection, [partition]))
                }
            } catch let error as SluiceClientError where error.isRetriable {
                failed.append(partition)
                lastFailure = error
            }
        }
        return routes
    }

    public func initProducerId(existing: Int64 = -1, epoch: Int16 = -1) async throws -> (Int64, Int16) {
        let response = try await send(.initProducerId, InitProducerIdRequest(producerId: existing, producerEpoch: epoch),
                                      expecting: InitProducerIdResponse.self)
        return (response.producerId, response.producerEpoch)
    }

    // MARK: Groups

    public func listGroups() async throws -> [ListGroupsResponse.Group] {
        try await sendToController(.listGroups, ListGroupsRequest(), expecting: ListGroupsResponse.self).groups
    }

    public func describeGroup(_ id: String) async throws -> DescribeGroupsResponse.Group {
        let response = try await sendToController(.describeGroups, DescribeGroupsRequest(groupIds: [id]), expecting: DescribeGroupsResponse.self)
        guard let group = response.groups.first else {
            throw SluiceClientError(.protocolViolation, "the broker's answer does not mention group '\(id)'")
        }
        if let error = group.wireError { throw SluiceClientError(error) }
        return group
    }

    /// Committed offsets of a group (−1 where none); all of them when `topics` is nil.
    public func fetchOffsets(group: String, topics: [TopicPartitions]? = nil) async throws -> [TopicPartitionKey: Int64] {
        let response = try await sendToController(.offsetFetch, OffsetFetchRequest(groupId: group, topics: topics), expecting: OffsetFetchResponse.self)
        var result: [TopicPartitionKey: Int64] = [:]
        for topic in response.topics {
            for p in topic.partitions { result[TopicPartitionKey(topic: topic.name, partition: p.partition)] = p.offset }
        }
        return result
    }

    /// Commits offsets; `memberId` "" and epoch −1 commit outside membership (only for a group with
    /// no members, as `group reset` does).
    public func commitOffsets(group: String, memberId: String = "", memberEpoch: Int32 = -1,
                              offsets: [TopicPartitionKey: Int64]) async throws {
        var byTopic: [String: [OffsetCommitRequest.Partition]] = [:]
        for (key, offset) in offsets { byTopic[key.topic, default: []].append(.init(partition: key.partition, offset: offset)) }
        let request = OffsetCommitRequest(groupId: group, memberId: memberId, memberEpoch: memberEpoch,
                                          topics: byTopic.sorted { $0.key < $1.key }.map { .init(name: $0.key, partitions: $0.value.sorted { $0.partition < $1.partition }) })
        let response = try await sendToController(.offsetCommit, request, expecting: PartitionErrorsResponse.self)
        for topic in response.topics {
            for p in topic.partitions where p.error != .none {
                throw SluiceClientError(WireError(p.error, "\(topic.name)[\(p.partition)]: \(p.errorMessage ?? "")"))
            }
        }
    }
}

/// A topic and partition, as a dictionary key.
public struct TopicPartitionKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public static func < (a: Self, b: Self) -> Bool { (a.topic, a.partition) < (b.topic, b.partition) }

    public var description: String { "\(topic)[\(partition)]" }
}
