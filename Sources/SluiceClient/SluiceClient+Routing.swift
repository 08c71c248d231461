import NIOConcurrencyHelpers
import NIOCore
import SluiceCore
import SluiceWire

// Routing in a cluster: each partition's writes go to its leader, admin changes to the controller
// (the metadata group's leader). The broker map and the leaders come from Metadata answers and are
// refreshed when a broker answers `not_leader`.

/// What the client has learned from metadata: broker addresses and partition leaders.
struct RoutingTable: Sendable {
    /// Partitions whose leader is remembered at most (the least useful are simply re-asked).
    static let leadersMax = 100_000

    var addresses: [Int32: BrokerAddress] = [:]
    var leaders: [TopicPartitionKey: Int32] = [:]
    /// Each partition's replicas: where to ask for its leader when the broker asked does not know it.
    var replicas: [TopicPartitionKey: [Int32]] = [:]
    var controller: Int32 = -1

    mutating func learn(_ response: MetadataResponse) {
        for broker in response.brokers { addresses[broker.nodeId] = BrokerAddress(host: broker.host, port: Int(broker.port)) }
        controller = response.controllerId
        if leaders.count > Self.leadersMax {
            leaders = [:]
            replicas = [:]
        }
        for topic in response.topics where topic.error == .none {
            for partition in topic.partitions {
                let key = TopicPartitionKey(topic: topic.name, partition: partition.partition)
                // A broker that holds no replica answers -1; keep a leader learned from one that does.
                if partition.leader >= 0 || leaders[key] == nil { leaders[key] = partition.leader }
                replicas[key] = partition.replicas
            }
        }
    }
}

extension SluiceClient {
    /// Asks any broker for metadata and remembers brokers, leaders and the controller.
    @discardableResult
    public func refreshRouting(topics: [String]? = nil) async throws -> MetadataResponse {
        let response = try await metadata(topics: topics)
        routingLock.withLock { routing.learn(response) }
        return response
    }

    /// Forgets the leader of `key` (a broker said it is not the leader): the next send asks again.
    public func forgetLeader(of key: TopicPartitionKey) {
        routingLock.withLock { _ = routing.leaders.removeValue(forKey: key) }
    }

    /// A connection to the leader of `key`, learning it from metadata when unknown.
    public func leaderConnection(for key: TopicPartitionKey) async throws -> BrokerConnection {
        guard let leader = try await leader(of: key) else { return try await connection(.general) }
        return try await connection(toNode: leader)
    }

    /// The node leading `key`, learning it from metadata when unknown; nil when the client talks to a
    /// broker running alone, which leads everything (it may advertise the address it binds, such as
    /// 0.0.0.0: keep the connection that reached it).
    func leader(of key: TopicPartitionKey) async throws -> Int32? {
        var leader = routingLock.withLock { routing.leaders[key] }
        if leader == nil || leader == -1 {
            try await refreshRouting(topics: [key.topic])
            leader = routingLock.withLock { routing.leaders[key] }
        }
        if leader == nil || leader == -1 {
            // The broker asked holds no replica of it: its replicas know their leader.
            for replica in routingLock.withLock({ routing.replicas[key] ?? [] }) {
                guard let connection = try? await connection(toNode: replica),
                      let answer = try? await connection.send(.metadata, MetadataRequest(topics: [key.topic], includeInternal: false),
                                                              expecting: MetadataResponse.self, timeoutMs: requestTimeoutMs) else { continue }
                routingLock.withLock { routing.learn(answer) }
                leader = routingLock.withLock { routing.leaders[key] }
                if let found = leader, found >= 0 { break }
            }
        }
        guard let leader, leader >= 0 else {
            throw SluiceClientError(.broker(.notLeader), "\(key) has no leader right now (an election is under way); retry shortly")
        }
        return routingLock.withLock { routing.addresses.count == 1 } ? nil : leader
    }

    /// Broker `node`'s address from metadata, asking for metadata when it is not known yet.
    func address(ofNode node: Int32) async throws -> BrokerAddress {
        if let known = routingLock.withLock({ routing.addresses[node] }) { return known }
        try await refreshRouting()
        guard let address = routingLock.withLock({ routing.addresses[node] }) else {
            throw SluiceClientError(.unreachable, "no address is known for broker \(node); is it in the cluster's member list?")
        }
        return address
    }

    /// A connection to broker `node` (its address from metadata), shared by everything sent there.
    public func connection(toNode node: Int32) async throws -> BrokerConnection {
        try checkOpen()
        if let open = routingLock.withLock({ nodeConnections[node] }), open.isActive { return open }
        let address = try await address(ofNode: node)
        let fresh = try await openConnection(to: address)
        let (kept, extra): (BrokerConnection, BrokerConnection?) = routingLock.withLock {
            if let raced = nodeConnections[node], raced.isActive { return (raced, fresh) }
            nodeConnections[node] = fresh
            return (fresh, nil)
        }
        if let extra { await extra.close() }
        return kept
    }

    /// Sends an admin request (CreateTopics, DeleteTopics, AlterConfigs) to the controller; an answer in
    /// which every topic says `not_leader` came from a broker that is not it.
    func sendToController<Request: WireMessage>(_ api: ApiKey, _ request: Request) async throws -> TopicResultsResponse {
        try await sendToController(api, request, expecting: TopicResultsResponse.self) { answer in
            !answer.topics.isEmpty && answer.topics.allSatisfy { $0.error == .notLeader }
        }
    }

    /// Sends a request only the controller (the metadata group's leader) serves: admin changes, and in a
    /// cluster consumer-group requests. It goes where the last metadata said the controller is (alone, or
    /// before any metadata, to the connected broker) and follows the controller when it moves: a broker
    /// answers `not_coordinator` (or an answer `answerMoved` recognises), or the controller's own broker
    /// stops answering. While none is elected (a cluster just started, or its controller just failed) it
    /// asks again every `controllerRetryMs`, all within one request timeout. A broker reached without
    /// knowing the controller fails at once if it cannot be reached: there is nowhere else to go.
    func sendToController<Request: WireMessage, Response: WireMessage>(
        _ api: ApiKey, _ request: Request, expecting: Response.Type, answerMoved: (Response) -> Bool = { _ in false }
    ) async throws -> Response {
        let deadline = MonotonicClock.nowNanoseconds() + UInt64(requestTimeoutMs) * 1_000_000
        while true {
            let node = routingLock.withLock { routing.addresses.count > 1 && routing.controller >= 0 ? routing.controller : nil }
            let leftMs = max(1, Int64((deadline &- min(deadline, MonotonicClock.nowNanoseconds())) / 1_000_000))
            do {
                let answer: Response
                if let node {
                    answer = try await connection(toNode: node).send(api, request, expecting: Response.self, timeoutMs: leftMs)
                } else {
                    answer = try await send(api, request, expecting: Response.self, timeoutMs: leftMs)
                }
                guard answerMoved(answer), MonotonicClock.nowNanoseconds() < deadline else { return answer }
            } catch let error as SluiceClientError where Self.controllerMoved(error, knownController: node != nil)
                && MonotonicClock.nowNanoseconds() < deadline {
            }
            let learned = (try? await refreshRouting(topics: []))?.controllerId ?? -1
            // The first redirect goes at once; asking again while an election runs waits a little.
            if node != nil || learned < 0 { try await Task.sleep(nanoseconds: UInt64(Self.controllerRetryMs) * 1_000_000) }
        }
    }

    /// The controller is elsewhere now, or was lost with its broker (or hangs: a paused process). Only a
    /// controller the metadata named counts as lost when it does not answer.
    private static func controllerMoved(_ error: SluiceClientError, knownController: Bool) -> Bool {
        switch error.kind {
        case .broker(.notCoordinator): true
        case .broker(.brokerShuttingDown), .unreachable, .connectionClosed, .timeout: knownController
        default: false
        }
    }

    /// Pause between attempts to find the controller.
    static let controllerRetryMs = 100

    /// Closes the per-broker connections.
    func closeNodeConnections() async {
        let open = routingLock.withLock { () -> [BrokerConnection] in
            defer { nodeConnections.removeAll() }
            return Array(nodeConnections.values)
        }
        for connection in open { await connection.close() }
    }
}
