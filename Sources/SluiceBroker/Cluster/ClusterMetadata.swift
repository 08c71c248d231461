// The cluster metadata state machine: the state the metadata Raft group replicates.
//
// The metadata group's leader proposes `MetadataCommand`s; every broker applies the committed ones in log
// order to its own `ClusterMetadata` value and then creates or deletes its local partitions. Equal command
// sequences must give equal states on every broker, so everything here is pure and deterministic: no I/O,
// no clocks, no randomness, no dependence on a broker's own configuration, and nothing observable (the
// outcome, its message, the snapshot bytes, a list returned) depends on the iteration order of a
// dictionary. Byte layouts: storage-format/cluster-metadata.md.

import SluiceWire

/// Named bounds on the cluster metadata. They are part of the format: every broker applies the same
/// commands against the same bounds, so none of them may come from one broker's configuration.
///
/// Together they bound the snapshot (`ClusterMetadata.snapshotBytesMax`) and one command (under 1 MiB:
/// 10 000 partitions of 16 replicas take 650 000 bytes).
enum MetadataLimits {
    /// Longest topic name in UTF-8 bytes: the topic registry's bound, which keeps every file name built
    /// from a topic within the file system's 255 bytes.
    static let topicNameBytesMax = TopicRegistry.topicNameBytesMax
    /// Most topics in the cluster (the default of `BrokerConfig.topicsMax`, which bounds one broker).
    static let topicsMax = 10_000
    /// Most partitions of one topic (the default of `BrokerConfig.partitionsPerTopicMax`).
    static let partitionsPerTopicMax = 10_000
    /// Most partitions in the cluster, all topics together.
    static let partitionsMax = 200_000
    /// Most replicas of one partition (its count is stored in one byte).
    static let replicasPerPartitionMax = 16
    /// Most config overrides one topic holds, and most keys one command may set or remove.
    static let configsPerTopicMax = 32
    /// Longest config key in UTF-8 bytes (the longest known key, `flush.interval.ms`, has 17).
    static let configKeyBytesMax = 64
    /// Longest config value in UTF-8 bytes.
    static let configValueBytesMax = 256
    /// Longest consumer group id in UTF-8 bytes (`GroupCoordinator.groupIdBytesMax`).
    static let groupIdBytesMax = GroupCoordinator.groupIdBytesMax
    /// Most partitions one offset commit names.
    static let offsetsPerCommitMax = 2_000
    /// Longest metadata string of one committed offset (`GroupCoordinator.commitMetadataBytesMax`).
    static let commitMetadataBytesMax = GroupCoordinator.commitMetadataBytesMax
    /// Most metadata bytes of one commit, all partitions together: keeps the command under 1 MiB.
    static let commitMetadataTotalBytesMax = 256 << 10
    /// Most processors in the cluster (`ProcessorManager.processorsMax`, the bound of a broker alone).
    static let processorsMax = ProcessorManager.processorsMax
    /// Longest processor name in UTF-8 bytes (`ProcessorLimits.nameBytesMax`).
    static let processorNameBytesMax = ProcessorLimits.nameBytesMax
    /// Longest stored processor definition: its SQL (64 KiB at most) and two offset lists of one topic's
    /// partitions (8 bytes each, at most `partitionsPerTopicMax` each) fit with room to spare.
    static let processorDefinitionBytesMax = 256 << 10
}

/// One partition's offset in a `commitOffsets` command.
struct CommittedOffset: Equatable, Sendable {
    /// The consumed topic.
    var topic: String
    /// The partition index.
    var partition: Int32
    /// The next offset the group reads; 0 or more.
    var offset: Int64
    /// What the consumer stored with it.
    var metadata: String?
}

/// Where one topic's partitions live, as the metadata group agreed.
struct TopicAssignment: Equatable, Sendable {
    /// The topic's name; equal to its key in `ClusterMetadata.topics`.
    let name: String
    /// Per partition, the node ids holding a replica; the first is the preferred leader.
    /// Invariant: 1 to `partitionsPerTopicMax` partitions, all with the same number of distinct,
    /// non-negative node ids.
    var replicas: [[Int32]]
    /// The config overrides set on the topic (validated); the rest follow each broker's defaults.
    var configs: [String: String]
    /// Whether the topic is one of the broker's own (`__consumer_offsets`, ...); the name starts with `__`.
    let isInternal: Bool
    /// The Raft index of the command that created the topic: a topic deleted and created again under the
    /// same name has a new one, so a broker can tell the two incarnations apart.
    let createdAtIndex: UInt64

    /// The number of partitions.
    var partitionCount: Int { replicas.count }

    /// The number of replicas of every partition.
    var replicationFactor: Int { replicas.first?.count ?? 0 }
}

/// One partition a node holds a replica of.
struct HostedPartition: Hashable, Sendable, CustomStringConvertible {
    /// The topic's name.
    var topic: String
    /// The partition index, `0..<partitionCount`.
    var partition: Int32
    /// The topic's `createdAtIndex`: tells a recreated topic's partition from the old one's.
    var topicCreatedAtIndex: UInt64
    /// The partition's replicas, preferred leader first.
    var replicas: [Int32]

    /// `topic-partition`, as Kafka's tools print it.
    var description: String { "\(topic)-\(partition)" }
}

/// A change to the cluster metadata. Each travels as the value of one record in the metadata log
/// (`encode()`/`decode(_:)`, layout in storage-format/cluster-metadata.md).
enum MetadataCommand: Equatable, Sendable {
    /// Creates a topic with these replicas per partition and config overrides.
    case createTopic(name: String, replicas: [[Int32]], configs: [String: String], isInternal: Bool)
    /// Deletes a topic and all its partitions. Whether a client may delete it (internal topics) is the
    /// proposer's decision: apply deletes any existing topic.
    case deleteTopic(name: String)
    /// Sets and removes config overrides of a topic. `remove` is kept sorted and without duplicates by
    /// the encoding: a decoded command lists the keys in byte order.
    case alterTopicConfig(name: String, set: [String: String], remove: [String])
    /// Adds partitions to a topic, numbered after the existing ones, with these replicas.
    case createPartitions(name: String, newReplicas: [[Int32]])
    /// Records a consumer group's committed offsets (the controller coordinates groups; every broker keeps
    /// the offsets). The encoding sorts `offsets` by topic bytes, then partition, and refuses repeats.
    /// Changes no topic: applying it checks the partitions exist; the broker stores the offsets.
    case commitOffsets(group: String, commitTimeMs: Int64, offsets: [CommittedOffset])
    /// Stores a processor's definition (the `__processors` value of a broker alone, storage-format/
    /// processors.md): a new processor when `isNew` (refused if the name is taken), else a change to an
    /// existing one (pause, resume, a new generation). Every broker runs the tasks it should from it.
    case putProcessor(name: String, definition: [UInt8], isNew: Bool)
    /// Removes a processor's definition; its tasks stop on every broker.
    case deleteProcessor(name: String)

    /// An offset commit: it changes no topic, and applying it twice stores the same offsets again.
    var isOffsetCommit: Bool {
        if case .commitOffsets = self { return true }
        return false
    }
}

/// What applying a command did.
enum MetadataOutcome: Equatable, Sendable {
    /// The state changed as the command says.
    case applied
    /// The command was invalid against the state it met; the state did not change (`appliedIndex` aside).
    case rejected(MetadataRejection)
}

/// Why a command was not applied, with a message for the person who asked for the change.
struct MetadataRejection: Error, Equatable, Sendable, CustomStringConvertible {
    /// The class of the rejection.
    enum Code: Equatable, Sendable {
        /// A topic of that name exists.
        case topicExists
        /// No topic of that name exists.
        case unknownTopic
        /// The name is not a legal topic name, or does not match the internal flag.
        case invalidTopicName
        /// A partition's replicas are empty, repeated, negative or not as many as the topic's others.
        case invalidReplicas
        /// The partition count is out of range.
        case invalidPartitions
        /// A config key or value is unknown, invalid or too long.
        case invalidConfig
        /// The cluster holds as many topics or partitions as `MetadataLimits` allows.
        case limitReached
        /// The entry's bytes are not a command (`apply(encoded:index:)`).
        case malformedCommand
        /// An offset commit names no partition, a negative offset, or too much metadata.
        case invalidCommit
        /// Valid, but the broker could not do its part (a disk error storing offsets); not from `apply`.
        case notStored
        /// A processor of that name exists.
        case processorExists
        /// No processor of that name exists.
        case unknownProcessor
        /// The processor's name or stored definition is not valid.
        case invalidProcessor
    }

    /// The class of the rejection.
    let code: Code
    /// What is wrong, in words.
    let message: String

    /// A rejection of class `code`.
    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The error code a client gets for it.
    var errorCode: ErrorCode {
        switch code {
        case .topicExists: .topicAlreadyExists
        case .unknownTopic: .unknownTopicOrPartition
        case .invalidTopicName: .invalidTopic
        case .invalidReplicas: .invalidReplicationFactor
        case .invalidPartitions: .invalidPartitions
        case .invalidConfig: .invalidConfig
        case .limitReached, .malformedCommand: .invalidRequest
        case .invalidCommit: .invalidCommitOffset
        case .notStored: .storageError
        case .processorExists: .processorAlreadyExists
        case .unknownProcessor: .unknownProcessor
        case .invalidProcessor: .invalidRequest
        }
    }

    /// The message.
    var description: String { message }
}

/// The replicated cluster metadata: the topics, their partitions' replicas and their configs, and the
/// processors' definitions.
///
/// Owned by one broker's metadata driver; a value type, not thread-safe by itself.
/// Invariants: every topic satisfies `TopicAssignment`'s; `topics[name].name == name`; every
/// `createdAtIndex` is in `1...appliedIndex`; at most `topicsMax` topics and `partitionsMax` partitions;
/// at most `processorsMax` processors, each with a valid name and a definition that decodes.
struct ClusterMetadata: Equatable, Sendable {
    /// The topics by name.
    private(set) var topics: [String: TopicAssignment] = [:]
    /// The processors' definitions (`ProcessorDefinition.encodeValue` bytes) by processor name.
    private(set) var processors: [String: [UInt8]] = [:]
    /// The Raft index of the last command applied (0 before the first).
    private(set) var appliedIndex: UInt64 = 0

    /// Empty metadata, before any command.
    init() {}

    /// Metadata restored as it was (a decoded snapshot, already checked).
    init(topics: [String: TopicAssignment], processors: [String: [UInt8]] = [:], appliedIndex: UInt64) {
        self.topics = topics
        self.processors = processors
        self.appliedIndex = appliedIndex
    }

    /// The processors' definitions in name order; one that does not decode (impossible after the checks
    /// of apply and the snapshot reader) is left out.
    var processorDefinitions: [ProcessorDefinition] {
        processors.keys.sorted(by: Self.precedes).compactMap { name in
            processors[name].flatMap { ProcessorDefinition.decode(name: name, value: $0) }
        }
    }

    /// The replicas of one partition (preferred leader first), or nil when it does not exist.
    func assignment(topic: String, partition: Int32) -> [Int32]? {
        guard let found = topics[topic], partition >= 0, Int(partition) < found.partitionCount else { return nil }
        return found.replicas[Int(partition)]
    }

    /// The partitions `node` holds a replica of, ordered by topic name (bytes), then partition.
    func partitions(hostedBy node: Int32) -> [HostedPartition] {
        var hosted: [HostedPartition] = []
        for topic in sortedTopics {
            for (index, replicas) in topic.replicas.enumerated() where replicas.contains(node) {
                hosted.append(HostedPartition(topic: topic.name, partition: Int32(index),
                                              topicCreatedAtIndex: topic.createdAtIndex, replicas: replicas))
            }
        }
        return hosted
    }

    /// The partitions `node` must open and close to go from `old` to `new`, each in `partitions(hostedBy:)`
    /// order. A recreated topic's partitions appear in both lists: the old incarnation goes, the new comes
    /// (as would a partition whose replica list changed, which no command does yet).
    static func hostedChanges(from old: ClusterMetadata, to new: ClusterMetadata, node: Int32)
        -> (added: [HostedPartition], removed: [HostedPartition]) {
        let before = old.partitions(hostedBy: node)
        let after = new.partitions(hostedBy: node)
        let beforeSet = Set(before)
        let afterSet = Set(after)
        return (after.filter { !beforeSet.contains($0) }, before.filter { !afterSet.contains($0) })
    }

    /// The topics, ordered by name bytes: the order of every list and of the snapshot.
    var sortedTopics: [TopicAssignment] {
        topics.values.sorted { Self.precedes($0.name, $1.name) }
    }

    /// The number of partitions of all topics together.
    var partitionCount: Int { topics.values.reduce(0) { $0 + $1.partitionCount } }

    /// How many partitions each node is the preferred leader of (nodes without any are absent).
    var preferredLeaderCounts: [Int32: Int] {
        var counts: [Int32: Int] = [:]
        for topic in topics.values {
            for replicas in topic.replicas { if let leader = replicas.first { counts[leader, default: 0] += 1 } }
        }
        return counts
    }

    /// Byte order of UTF-8: unlike `String.<`, it never treats two different byte strings as equal.
    static func precedes(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }
}

// MARK: Applying commands

extension ClusterMetadata {
    /// What a valid command changes, worked out before anything changes.
    private enum Change {
        case create(TopicAssignment)
        case delete(String)
        case setConfigs(String, [String: String])
        case addPartitions(String, [[Int32]])
        case putProcessor(String, [UInt8])
        case deleteProcessor(String)
        /// Offsets are kept by the broker, not in this state.
        case none
    }

    /// Applies a committed command. `index` is its Raft index and must be above `appliedIndex`: one
    /// command per entry, applied in log order. A rejected command changes nothing but `appliedIndex`.
    mutating func apply(_ command: MetadataCommand, index: UInt64) -> MetadataOutcome {
        precondition(index > appliedIndex, "metadata command at index \(index) applied after index \(appliedIndex)")
        appliedIndex = index
        do {
            perform(try plan(command, index: index))
            return .applied
        } catch {
            return .rejected(error)
        }
    }

    /// Decodes and applies a committed entry's command; bytes that are not a command are rejected as
    /// `malformedCommand` (every broker rejects the same bytes alike).
    mutating func apply(encoded bytes: [UInt8], index: UInt64) -> MetadataOutcome {
        do {
            return apply(try MetadataCommand.decode(bytes), index: index)
        } catch {
            advance(to: index)
            return .rejected(MetadataRejection(.malformedCommand, error.description))
        }
    }

    /// Records that the entry at `index` holds no command (a new leader's empty entry).
    mutating func advance(to index: UInt64) {
        precondition(index > appliedIndex, "metadata entry at index \(index) applied after index \(appliedIndex)")
        appliedIndex = index
    }

    /// What `apply` would answer now, without applying: the proposer's check before it proposes.
    func check(_ command: MetadataCommand) -> MetadataRejection? {
        do {
            _ = try plan(command, index: appliedIndex + 1)
            return nil
        } catch {
            return error
        }
    }

    private func plan(_ command: MetadataCommand, index: UInt64) throws(MetadataRejection) -> Change {
        switch command {
        case .createTopic(let name, let replicas, let configs, let isInternal):
            try Self.checkName(name, isInternal: isInternal)
            guard topics[name] == nil else { throw MetadataRejection(.topicExists, "topic '\(name)' already exists") }
            guard topics.count < MetadataLimits.topicsMax else {
                throw MetadataRejection(.limitReached, "the cluster already holds \(MetadataLimits.topicsMax) topics, its limit")
            }
            try Self.checkPartitionCount(replicas.count, topic: name)
            try Self.checkReplicas(replicas, topic: name, firstPartition: 0, factor: replicas.first?.count ?? 0)
            try checkClusterPartitions(adding: replicas.count)
            let overrides = try Self.mergedConfigs([:], set: configs, remove: [], topic: name)
            return .create(TopicAssignment(name: name, replicas: replicas, configs: overrides, isInternal: isInternal,
                                           createdAtIndex: index))
        case .deleteTopic(let name):
            _ = try existing(name)
            return .delete(name)
        case .alterTopicConfig(let name, let set, let remove):
            let topic = try existing(name)
            return .setConfigs(name, try Self.mergedConfigs(topic.configs, set: set, remove: remove, topic: name))
        case .createPartitions(let name, let newReplicas):
            let topic = try existing(name)
            guard !newReplicas.isEmpty else {
                throw MetadataRejection(.invalidPartitions, "adding partitions to topic '\(name)' needs at least one new partition")
            }
            try Self.checkPartitionCount(topic.partitionCount + newReplicas.count, topic: name)
            try Self.checkReplicas(newReplicas, topic: name, firstPartition: topic.partitionCount, factor: topic.replicationFactor)
            try checkClusterPartitions(adding: newReplicas.count)
            return .addPartitions(name, newReplicas)
        case .commitOffsets(let group, _, let offsets):
            try checkCommit(group: group, offsets)
            return .none
        case .putProcessor(let name, let definition, let isNew):
            try Self.checkProcessor(name: name, definition: definition)
            if isNew {
                guard processors[name] == nil else { throw MetadataRejection(.processorExists, "processor '\(name)' already exists") }
                guard processors.count < MetadataLimits.processorsMax else {
                    throw MetadataRejection(.limitReached, "the cluster already holds \(MetadataLimits.processorsMax) processors, its limit")
                }
            } else {
                _ = try existingProcessor(name)
            }
            return .putProcessor(name, definition)
        case .deleteProcessor(let name):
            _ = try existingProcessor(name)
            return .deleteProcessor(name)
        }
    }

    private func existingProcessor(_ name: String) throws(MetadataRejection) -> [UInt8] {
        // Checked first, for the same reason as topic names: only legal (ASCII) names are looked up.
        if let problem = ProcessorLimits.nameProblem(name) { throw MetadataRejection(.invalidProcessor, problem) }
        guard let definition = processors[name] else { throw MetadataRejection(.unknownProcessor, "processor '\(name)' does not exist") }
        return definition
    }

    /// A legal name and a definition within bounds that decodes and carries no other name's data.
    static func checkProcessor(name: String, definition: [UInt8]) throws(MetadataRejection) {
        if let problem = ProcessorLimits.nameProblem(name) { throw MetadataRejection(.invalidProcessor, problem) }
        guard definition.count <= MetadataLimits.processorDefinitionBytesMax else {
            throw MetadataRejection(.invalidProcessor,
                "processor '\(name)': its definition is \(definition.count) bytes; the limit is \(MetadataLimits.processorDefinitionBytesMax)")
        }
        guard ProcessorDefinition.decode(name: name, value: definition) != nil else {
            throw MetadataRejection(.invalidProcessor, "processor '\(name)': the definition does not decode")
        }
    }

    /// A group id within bounds; 1...`offsetsPerCommitMax` partitions that exist; offsets not negative;
    /// metadata within bounds. Checked in canonical order, so every broker reports the same first error.
    private func checkCommit(group: String, _ offsets: [CommittedOffset]) throws(MetadataRejection) {
        guard !group.isEmpty, group.utf8.count <= MetadataLimits.groupIdBytesMax else {
            throw MetadataRejection(.invalidCommit, "group id must be 1...\(MetadataLimits.groupIdBytesMax) bytes, got \(group.utf8.count)")
        }
        guard !offsets.isEmpty, offsets.count <= MetadataLimits.offsetsPerCommitMax else {
            throw MetadataRejection(.invalidCommit, "an offset commit names 1...\(MetadataLimits.offsetsPerCommitMax) partitions, got \(offsets.count)")
        }
        var metadataBytes = 0
        for entry in Self.sortedOffsets(offsets) {
            let topic = try existing(entry.topic)
            guard entry.partition >= 0, Int(entry.partition) < topic.partitionCount else {
                throw MetadataRejection(.unknownTopic, "topic '\(entry.topic)' has no partition \(entry.partition)")
            }
            guard entry.offset >= 0 else {
                throw MetadataRejection(.invalidCommit, "\(entry.topic)-\(entry.partition): offset \(entry.offset) is negative")
            }
            let length = entry.metadata?.utf8.count ?? 0
            guard length <= MetadataLimits.commitMetadataBytesMax else {
                throw MetadataRejection(.invalidCommit,
                    "\(entry.topic)-\(entry.partition): commit metadata is \(length) bytes; the limit is \(MetadataLimits.commitMetadataBytesMax)")
            }
            metadataBytes += length
        }
        guard metadataBytes <= MetadataLimits.commitMetadataTotalBytesMax else {
            throw MetadataRejection(.invalidCommit,
                "the commit's metadata is \(metadataBytes) bytes together; the limit is \(MetadataLimits.commitMetadataTotalBytesMax)")
        }
    }

    /// Offsets in canonical order: topic name bytes, then partition.
    static func sortedOffsets(_ offsets: [CommittedOffset]) -> [CommittedOffset] {
        offsets.sorted(by: offsetPrecedes)
    }

    /// The canonical order of offsets: topic name bytes, then partition.
    static func offsetPrecedes(_ a: CommittedOffset, _ b: CommittedOffset) -> Bool {
        a.topic.utf8.elementsEqual(b.topic.utf8) ? a.partition < b.partition : precedes(a.topic, b.topic)
    }

    private mutating func perform(_ change: Change) {
        switch change {
        case .create(let topic): topics[topic.name] = topic
        case .delete(let name): topics[name] = nil
        case .setConfigs(let name, let configs): topics[name]?.configs = configs
        case .addPartitions(let name, let replicas): topics[name]?.replicas += replicas
        case .putProcessor(let name, let definition): processors[name] = definition
        case .deleteProcessor(let name): processors[name] = nil
        case .none: break
        }
    }

    private func existing(_ name: String) throws(MetadataRejection) -> TopicAssignment {
        // Only legal (ASCII) names are looked up: Swift's String equality is canonical equivalence, so a
        // name like "\u{212A}afka" (Kelvin sign) would otherwise find the topic "Kafka".
        try Self.checkName(name, isInternal: name.hasPrefix("__"))
        guard let topic = topics[name] else { throw MetadataRejection(.unknownTopic, "topic '\(name)' does not exist") }
        return topic
    }

    private func checkClusterPartitions(adding count: Int) throws(MetadataRejection) {
        let total = partitionCount + count
        guard total <= MetadataLimits.partitionsMax else {
            throw MetadataRejection(.limitReached, "the cluster would hold \(total) partitions; its limit is \(MetadataLimits.partitionsMax)")
        }
    }
}

// MARK: Validation, shared by apply and the snapshot reader

extension ClusterMetadata {
    /// A legal name, internal exactly when it starts with `__` (the rule `Topic.isInternal` relies on).
    static func checkName(_ name: String, isInternal: Bool) throws(MetadataRejection) {
        do {
            try TopicRegistry.validateName(name, allowInternal: isInternal)
        } catch let error as WireError {
            throw MetadataRejection(.invalidTopicName, error.message)
        } catch {
            throw MetadataRejection(.invalidTopicName, "\(error)")
        }
        guard !isInternal || name.hasPrefix("__") else {
            throw MetadataRejection(.invalidTopicName, "internal topic '\(name)' must have a name starting with '__'")
        }
    }

    /// A partition count in 1...`partitionsPerTopicMax`.
    static func checkPartitionCount(_ count: Int, topic: String) throws(MetadataRejection) {
        guard count >= 1 && count <= MetadataLimits.partitionsPerTopicMax else {
            throw MetadataRejection(.invalidPartitions,
                                    "topic '\(topic)' needs 1...\(MetadataLimits.partitionsPerTopicMax) partitions, got \(count)")
        }
    }

    /// Every partition has `factor` distinct, non-negative node ids; `factor` is within the limit.
    static func checkReplicas(_ replicas: [[Int32]], topic: String, firstPartition: Int, factor: Int) throws(MetadataRejection) {
        guard factor >= 1 && factor <= MetadataLimits.replicasPerPartitionMax else {
            throw MetadataRejection(.invalidReplicas,
                                    "topic '\(topic)' needs 1...\(MetadataLimits.replicasPerPartitionMax) replicas per partition, got \(factor)")
        }
        for (offset, nodes) in replicas.enumerated() {
            let partition = firstPartition + offset
            guard nodes.count == factor else {
                throw MetadataRejection(.invalidReplicas,
                                        "partition \(partition) of topic '\(topic)' has \(nodes.count) replicas; every partition of the topic needs \(factor)")
            }
            // Quadratic, but over at most `replicasPerPartitionMax` ids.
            for (position, node) in nodes.enumerated() {
                guard node >= 0 else {
                    throw MetadataRejection(.invalidReplicas, "partition \(partition) of topic '\(topic)' names node \(node); node ids are 0 or more")
                }
                guard !nodes[..<position].contains(node) else {
                    throw MetadataRejection(.invalidReplicas, "partition \(partition) of topic '\(topic)' names node \(node) twice")
                }
            }
        }
    }

    /// `base` with `set` applied and `remove` removed, each key and value validated the way the topic
    /// registry validates them. Keys are checked in byte order, so every broker reports the same first error.
    static func mergedConfigs(_ base: [String: String], set: [String: String], remove: [String], topic: String)
        throws(MetadataRejection) -> [String: String] {
        let limit = MetadataLimits.configsPerTopicMax
        guard set.count <= limit && remove.count <= limit else {
            throw MetadataRejection(.invalidConfig, "a change to topic '\(topic)' may set and remove at most \(limit) config keys each")
        }
        let setKeys = set.keys.sorted(by: precedes)
        for key in setKeys + remove.sorted(by: precedes) {
            guard key.utf8.count <= MetadataLimits.configKeyBytesMax else {
                throw MetadataRejection(.invalidConfig, "config key of \(key.utf8.count) bytes; the limit is \(MetadataLimits.configKeyBytesMax)")
            }
            if let value = set[key], value.utf8.count > MetadataLimits.configValueBytesMax {
                throw MetadataRejection(.invalidConfig,
                                        "config '\(key)' has a value of \(value.utf8.count) bytes; the limit is \(MetadataLimits.configValueBytesMax)")
            }
        }
        if let both = remove.sorted(by: precedes).first(where: { set[$0] != nil }) {
            throw MetadataRejection(.invalidConfig, "config '\(both)' of topic '\(topic)' is both set and removed")
        }
        let entries = setKeys.map { ConfigEntry(key: $0, value: set[$0]) } + remove.sorted(by: precedes).map { ConfigEntry(key: $0, value: nil) }
        let merged: TopicConfig
        do {
            // The built-in defaults, not this broker's [topic-defaults]: apply must not depend on a broker's
            // own configuration. A combination one broker's defaults make invalid shows when it opens the log.
            merged = try TopicConfig.validated(base, applying: entries, defaults: BrokerDefaults())
        } catch let error as WireError {
            throw MetadataRejection(.invalidConfig, "topic '\(topic)': \(error.message)")
        } catch {
            throw MetadataRejection(.invalidConfig, "topic '\(topic)': \(error)")
        }
        guard merged.overrides.count <= limit else {
            throw MetadataRejection(.invalidConfig, "topic '\(topic)' would have \(merged.overrides.count) config overrides; the limit is \(limit)")
        }
        return merged.overrides
    }
}
