import SluiceWire

// The state of a cluster (protocol.md, "DescribeCluster"), for `sluice cluster status`. One broker's
// answer is partial: only a partition's leader knows how far each replica lags, and a broker judges its
// peers' liveness from its own connections. So the status asks every member and merges the answers.

extension SluiceClient {
    /// The cluster as the connected broker sees it; `includeInternal` adds internal topics' partitions
    /// and the metadata group. Throws the broker's refusal as a `SluiceClientError`.
    public func describeCluster(includeInternal: Bool = false) async throws -> DescribeClusterResponse {
        try await describeCluster(on: connection(), includeInternal: includeInternal)
    }

    /// DescribeCluster over `connection`; the broker's refusal thrown.
    private func describeCluster(on connection: BrokerConnection, includeInternal: Bool) async throws -> DescribeClusterResponse {
        let response = try await connection.send(.describeCluster, DescribeClusterRequest(includeInternal: includeInternal),
                                                 expecting: DescribeClusterResponse.self, timeoutMs: requestTimeoutMs)
        if let error = response.wireError { throw SluiceClientError(error) }
        return response
    }

    /// The cluster as every member sees it, merged (`ClusterStatusMerge`). The connected broker names the
    /// members; each is then asked over its own connection, all at once. A member that cannot be reached,
    /// or refuses, is reported down — with the reason in the answer's `errorMessage` — rather than failing
    /// the call; only a failure of the first broker asked is thrown.
    public func describeClusterFromEveryBroker(includeInternal: Bool = false) async throws -> DescribeClusterResponse {
        let first = try await describeCluster(includeInternal: includeInternal)
        // A broker running alone has nothing to merge (and may name itself by an address, such as
        // 0.0.0.0, that is no use to connect to).
        guard first.brokers.count > 1 else { return first }
        // The members' addresses come with the answer: no Metadata round trip before connecting.
        routingLock.withLock {
            for broker in first.brokers {
                routing.addresses[broker.nodeId] = BrokerAddress(host: broker.host, port: Int(broker.port))
            }
        }
        var merge = ClusterStatusMerge(members: first.brokers)
        await withTaskGroup(of: (Int32, Result<DescribeClusterResponse, any Error>).self) { group in
            for broker in first.brokers {
                group.addTask { [self] in
                    do {
                        let answer = try await describeCluster(on: connection(toNode: broker.nodeId), includeInternal: includeInternal)
                        return (broker.nodeId, .success(answer))
                    } catch {
                        return (broker.nodeId, .failure(error))
                    }
                }
            }
            for await (node, result) in group {
                switch result {
                case .success(let answer): merge.add(answer, from: node)
                case .failure(let error): merge.addFailure(of: node, reason: (error as? SluiceClientError)?.message ?? "\(error)")
                }
            }
        }
        return merge.result
    }
}

/// Merges DescribeCluster answers from the members of one cluster into one view.
///
/// - A broker is up when it answered this client: the client heard from it just now, which no peer's
///   report can beat (a paused broker keeps its connections open, so its peers may still count it up).
/// - Each partition's row comes from the broker that says it leads it (only a leader has lag figures),
///   the highest term winning when two claim it during an election; failing that, from the answer with
///   the highest term.
/// - The controller is the broker that says it is; failing that, the one most answers name.
public struct ClusterStatusMerge: Sendable {
    private var members: [Int32: DescribeClusterResponse.Broker] = [:]
    private var answered: Set<Int32> = []
    private var rows: [TopicPartitionKey: (row: DescribeClusterResponse.Partition, fromLeader: Bool)] = [:]
    private var controllerVotes: [Int32: Int] = [:]
    private var selfDeclaredController: Int32?
    private var notes: [Int32: String] = [:]

    /// A merge over `members`, every one down until it answers.
    public init(members: [DescribeClusterResponse.Broker]) {
        for member in members.prefix(ClusterLimits.brokersMax) { self.members[member.nodeId] = member }
    }

    /// Takes broker `node`'s answer.
    public mutating func add(_ answer: DescribeClusterResponse, from node: Int32) {
        answered.insert(node)
        for broker in answer.brokers where members[broker.nodeId] == nil && members.count < ClusterLimits.brokersMax {
            members[broker.nodeId] = broker
        }
        if answer.controllerId >= 0 {
            controllerVotes[answer.controllerId, default: 0] += 1
            if answer.controllerId == node { selfDeclaredController = node }
        }
        if let message = answer.errorMessage { notes[node] = "broker \(node): \(message)" }
        for row in answer.partitions {
            let key = TopicPartitionKey(topic: row.topic, partition: row.partition)
            let fromLeader = row.leader == node
            if let kept = rows[key], !Self.replaces(row, fromLeader: fromLeader, kept.row, keptFromLeader: kept.fromLeader) { continue }
            // Bounded like one answer: the members' answers describe the same partitions.
            guard rows[key] != nil || rows.count < ClusterLimits.partitionsMax else { continue }
            rows[key] = (row, fromLeader)
        }
    }

    /// Records that broker `node` did not answer, and why.
    public mutating func addFailure(of node: Int32, reason: String) {
        let address = members[node].map { " at \($0.host):\($0.port)" } ?? ""
        notes[node] = "broker \(node)\(address) did not answer: \(reason)"
    }

    /// Whether `candidate` should replace the row kept so far.
    private static func replaces(_ candidate: DescribeClusterResponse.Partition, fromLeader: Bool,
                                 _ kept: DescribeClusterResponse.Partition, keptFromLeader: Bool) -> Bool {
        if fromLeader != keptFromLeader { return fromLeader }
        return candidate.term > kept.term
    }

    /// The merged view: brokers by id (up when they answered), the controller, partitions by topic then
    /// partition, and in `errorMessage` what went wrong on the way (nil when nothing did).
    public var result: DescribeClusterResponse {
        let brokers = members.values.sorted { $0.nodeId < $1.nodeId }.map { member in
            var broker = member
            broker.isUp = answered.contains(member.nodeId)
            return broker
        }
        let mostNamed = controllerVotes.max { ($0.value, -$0.key) < ($1.value, -$1.key) }?.key
        let partitions = rows.sorted { $0.key < $1.key }.map(\.value.row)
        let message = notes.sorted { $0.key < $1.key }.map(\.value).joined(separator: "; ")
        return DescribeClusterResponse(errorMessage: message.isEmpty ? nil : message,
                                       controllerId: selfDeclaredController ?? mostNamed ?? -1,
                                       brokers: brokers, partitions: partitions)
    }
}
