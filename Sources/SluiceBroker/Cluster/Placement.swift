// Choosing the replicas of new partitions.
//
// Kafka's rack-unaware assignment with its randomness replaced by the cluster's own state, so that the
// same inputs always give the same answer:
// - Preferred leaders: each new partition goes to the broker with the fewest preferred leaders so far
//   (existing topics counted); the first partition breaks ties by lowest id, later ones by the next
//   broker after the previous partition's leader. On a balanced cluster this is plain round robin and
//   keeps max - min of the leader counts at most 1.
// - Followers: Kafka's shift. With brokers sorted b[0..<n] and the leader at b[i], follower j is
//   b[(i + 1 + (shift + j) mod (n - 1)) mod n]; the offsets 1...n-1 from the leader are distinct, so a
//   partition never lists a broker twice. The shift grows by one every n partitions, counting the
//   cluster's existing partitions first, so a broker's followers are spread over all the others instead
//   of always being its next neighbours.

import SluiceWire

/// Why replicas could not be placed.
enum PlacementError: Error, Equatable, Sendable, CustomStringConvertible {
    /// More replicas per partition were asked for than there are brokers.
    case replicationFactorExceedsBrokers(factor: Int, brokers: Int)
    /// The replication factor is below 1 or above `MetadataLimits.replicasPerPartitionMax`.
    case invalidReplicationFactor(Int)
    /// The partition count is below 1 or above `MetadataLimits.partitionsPerTopicMax`.
    case invalidPartitionCount(Int)
    /// The broker list is empty.
    case noBrokers
    /// The broker list names a node twice.
    case duplicateBroker(Int32)
    /// The broker list holds a negative node id.
    case negativeBroker(Int32)

    /// What is wrong, in words.
    var description: String {
        switch self {
        case .replicationFactorExceedsBrokers(let factor, let brokers):
            "replication factor \(factor) exceeds the \(brokers) available brokers"
        case .invalidReplicationFactor(let factor):
            "replication factor must be 1...\(MetadataLimits.replicasPerPartitionMax), got \(factor)"
        case .invalidPartitionCount(let count):
            "a topic needs 1...\(MetadataLimits.partitionsPerTopicMax) partitions, got \(count)"
        case .noBrokers: "no brokers to place replicas on"
        case .duplicateBroker(let node): "broker \(node) is listed twice"
        case .negativeBroker(let node): "broker id \(node) is negative; node ids are 0 or more"
        }
    }

    /// The error code a client gets for it.
    var errorCode: ErrorCode {
        switch self {
        case .invalidPartitionCount: .invalidPartitions
        case .replicationFactorExceedsBrokers, .invalidReplicationFactor, .noBrokers, .duplicateBroker, .negativeBroker:
            .invalidReplicationFactor
        }
    }
}

extension ClusterMetadata {
    /// Replicas for `partitions` new partitions of `replicationFactor` replicas each on `brokers` (in any
    /// order), preferred leader first, balanced against the leaders `existing` already has. Deterministic.
    /// For `createPartitions` pass the metadata that already holds the topic: the new partitions continue
    /// its balance.
    static func place(partitions: Int, replicationFactor: Int, brokers: [Int32], existing: ClusterMetadata)
        throws(PlacementError) -> [[Int32]] {
        let nodes = try sortedBrokers(brokers)
        guard partitions >= 1 && partitions <= MetadataLimits.partitionsPerTopicMax else {
            throw .invalidPartitionCount(partitions)
        }
        guard replicationFactor >= 1 && replicationFactor <= MetadataLimits.replicasPerPartitionMax else {
            throw .invalidReplicationFactor(replicationFactor)
        }
        guard replicationFactor <= nodes.count else {
            throw .replicationFactorExceedsBrokers(factor: replicationFactor, brokers: nodes.count)
        }
        let existingCounts = existing.preferredLeaderCounts
        var leaderCounts = nodes.map { existingCounts[$0] ?? 0 }
        let shiftStart = existing.partitionCount
        var previous: Int?
        var placed: [[Int32]] = []
        for partition in 0..<partitions {
            let leader = nextLeader(leaderCounts, after: previous)
            leaderCounts[leader] += 1
            previous = leader
            let shift = (shiftStart + partition) / nodes.count
            placed.append(replicaSet(leader: leader, shift: shift, factor: replicationFactor, nodes: nodes))
        }
        return placed
    }

    /// The brokers sorted by id, or an error for an empty, repeating or negative list.
    private static func sortedBrokers(_ brokers: [Int32]) throws(PlacementError) -> [Int32] {
        let nodes = brokers.sorted()
        guard let first = nodes.first else { throw .noBrokers }
        guard first >= 0 else { throw .negativeBroker(first) }
        for index in nodes.indices.dropFirst() where nodes[index] == nodes[index - 1] {
            throw .duplicateBroker(nodes[index])
        }
        return nodes
    }

    /// The index of the broker with the fewest preferred leaders, searching from the one after
    /// `previous` (from the lowest id when nil) so that ties go round robin.
    private static func nextLeader(_ counts: [Int], after previous: Int?) -> Int {
        precondition(!counts.isEmpty, "no brokers")
        let fewest = counts.min() ?? 0
        let start = previous.map { $0 + 1 } ?? 0
        for step in 0..<counts.count where counts[(start + step) % counts.count] == fewest {
            return (start + step) % counts.count
        }
        preconditionFailure("the minimum of the counts is one of them")
    }

    /// The leader `nodes[leader]` followed by `factor - 1` followers chosen by Kafka's shift.
    private static func replicaSet(leader: Int, shift: Int, factor: Int, nodes: [Int32]) -> [Int32] {
        let n = nodes.count
        var replicas = [nodes[leader]]
        for j in 0..<(factor - 1) {
            // factor <= n, so j only runs when n >= 2 and n - 1 is never 0 here.
            replicas.append(nodes[(leader + 1 + (shift + j) % (n - 1)) % n])
        }
        assert(Set(replicas).count == factor, "placement put two replicas of a partition on one broker")
        return replicas
    }
}
