import Foundation
import Logging
import NIOConcurrencyHelpers
import SluiceCore
import SluiceLog
import SluiceWire

/// A topic on this broker.
final class Topic: @unchecked Sendable {
    let name: String
    let partitions: [Partition]
    private let lock = NIOLock()
    private var storedConfig: TopicConfig

    init(name: String, config: TopicConfig, partitions: [Partition]) {
        self.name = name
        self.storedConfig = config
        self.partitions = partitions
    }

    var config: TopicConfig {
        get { lock.withLock { storedConfig } }
        set { lock.withLock { storedConfig = newValue } }
    }

    var isInternal: Bool { name.hasPrefix("__") }
}

/// The topics of this broker and where they live on disk.
///
/// Layout under the data directory: `meta/topics/<name>.topic` holds a topic's partition count and
/// its config overrides (`key=value` lines, written atomically); `<name>-<partition>/` holds each
/// partition's log. Creation writes the logs first and the `.topic` file last, deletion removes the
/// `.topic` file first: the file is the commit point, and partition directories without one are
/// leftovers that `open` removes.
final class TopicRegistry: @unchecked Sendable {
    let dataDirectory: String
    let defaults: BrokerDefaults
    let logger: Logger
    private let lock = NIOLock()
    private var topics: [String: Topic] = [:]
    let topicsMax: Int
    let partitionsPerTopicMax: Int32

    /// Longest topic name. Kafka allows 249, but every file name built from a topic must fit the
    /// file system's 255 bytes: `meta/topics/<name>.topic.tmp` and `<name>-<partition>.deleting`
    /// (partition up to 5 digits) need 10 and 15 more, and later features add suffixes of their own.
    static let topicNameBytesMax = 200

    var metaDirectory: String { dataDirectory + "/meta/topics" }

    init(dataDirectory: String, defaults: BrokerDefaults, topicsMax: Int, partitionsPerTopicMax: Int32, logger: Logger) {
        self.dataDirectory = dataDirectory
        self.defaults = defaults
        self.topicsMax = topicsMax
        self.partitionsPerTopicMax = partitionsPerTopicMax
        self.logger = logger
    }

    /// Checks a user-supplied topic name.
    static func validateName(_ name: String, allowInternal: Bool = false) throws {
        guard !name.isEmpty else { throw WireError(.invalidTopic, "topic name is empty") }
        guard name.utf8.count <= topicNameBytesMax else {
            throw WireError(.invalidTopic, "topic name is \(name.utf8.count) characters long; the limit is \(topicNameBytesMax)")
        }
        guard name != "." && name != ".." else { throw WireError(.invalidTopic, "topic name '\(name)' is reserved") }
        let legal = name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2E || c == 0x5F || c == 0x2D
        }
        guard legal else {
            throw WireError(.invalidTopic, "topic name '\(name)' may contain only ASCII letters, digits, '.', '_' and '-'")
        }
        if !allowInternal && name.hasPrefix("__") {
            throw WireError(.invalidTopic, "topic names starting with '__' are reserved for the broker's internal topics")
        }
    }

    // MARK: Loading

    /// Opens every topic found on disk (recovering logs as needed) and removes leftovers of
    /// interrupted creations and deletions.
    func load() throws {
        try FileSystem.createDirectory(dataDirectory + "/meta")
        try FileSystem.createDirectory(metaDirectory)
        var found: [String: (Int32, [String: String])] = [:]
        for file in try FileSystem.list(metaDirectory) where file.hasSuffix(".topic") {
            let name = String(file.dropLast(".topic".count))
            found[name] = try readTopicFile(metaDirectory + "/" + file)
        }
        for (name, (count, overrides)) in found.sorted(by: { $0.key < $1.key }) {
            let config = TopicConfig(overrides: overrides)
            let topic = try openTopic(name: name, partitionCount: count, config: config)
            lock.withLock { topics[name] = topic }
        }
        try removeLeftovers(known: found.mapValues { $0.0 })
    }

    private func readTopicFile(_ path: String) throws -> (Int32, [String: String]) {
        guard let bytes = try FileSystem.readSmallFile(path, limit: 1 << 20), let text = String(validating: bytes, as: UTF8.self) else {
            throw BrokerError.corruptMetadata(path: path, reason: "unreadable or not UTF-8")
        }
        var partitions: Int32?
        var overrides: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = String(line[..<equals])
            let value = String(line[line.index(after: equals)...])
            if key == "partitions" { partitions = Int32(value) } else if key.hasPrefix("config.") { overrides[String(key.dropFirst(7))] = value }
        }
        guard let partitions, partitions > 0 else {
            throw BrokerError.corruptMetadata(path: path, reason: "no valid 'partitions=' line")
        }
        return (partitions, overrides)
    }

    private func writeTopicFile(name: String, partitions: Int32, config: TopicConfig) throws {
        var text = "partitions=\(partitions)\n"
        for (key, value) in config.overrides.sorted(by: { $0.key < $1.key }) { text += "config.\(key)=\(value)\n" }
        try FileSystem.writeAtomically(Array(text.utf8), to: metaDirectory + "/\(name).topic", directory: metaDirectory)
    }

    private func partitionDirectory(_ topic: String, _ partition: Int32) -> String {
        "\(dataDirectory)/\(topic)-\(partition)"
    }

    private func openTopic(name: String, partitionCount: Int32, config: TopicConfig) throws -> Topic {
        let logConfig = try config.logConfig(defaults: defaults)
        var partitions: [Partition] = []
        for index in 0..<partitionCount {
            let directory = partitionDirectory(name, index)
            let log = try PartitionLog.open(directory: directory, config: logConfig, logger: logger)
            let partition = Partition(topic: name, index: index, directory: directory, log: log)
            try partition.loadProducerState()
            partitions.append(partition)
        }
        return Topic(name: name, config: config, partitions: partitions)
    }

    /// Removes partition directories of topics that no longer exist (deleted, or created but never
    /// committed) and directories renamed for deletion.
    private func removeLeftovers(known: [String: Int32]) throws {
        for entry in try FileSystem.list(dataDirectory) where entry != "meta" && !entry.hasPrefix(".") {
            let path = dataDirectory + "/" + entry
            guard FileSystem.isDirectory(path) else { continue }
            if entry.hasSuffix(".deleting") {
                try removeTree(path)
                continue
            }
            guard let dash = entry.lastIndex(of: "-"), let partition = Int32(entry[entry.index(after: dash)...]) else { continue }
            let topic = String(entry[..<dash])
            if let count = known[topic], partition < count { continue }
            logger.warning("removing partition directory of a topic that does not exist", metadata: ["path": "\(path)"])
            try removeTree(path)
        }
    }

    private func removeTree(_ path: String) throws {
        do { try FileManager.default.removeItem(atPath: path) } catch {
            throw BrokerError.io(path: path, reason: "\(error)")
        }
    }

    // MARK: Queries

    func topic(_ name: String) -> Topic? { lock.withLock { topics[name] } }

    var allTopics: [Topic] { lock.withLock { topics.values.sorted { $0.name < $1.name } } }

    /// Partition counts of the topics clients use (internal ones left out), unsorted: what group
    /// assignment needs on every heartbeat.
    var clientTopicPartitionCounts: [String: Int32] {
        lock.withLock {
            topics.values.reduce(into: [:]) { counts, topic in
                if !topic.isInternal { counts[topic.name] = Int32(topic.partitions.count) }
            }
        }
    }

    /// The partition, or an error a person can act on.
    func partition(_ topic: String, _ index: Int32) throws -> Partition {
        guard let found = self.topic(topic) else {
            throw WireError(.unknownTopicOrPartition, "topic '\(topic)' does not exist")
        }
        guard index >= 0 && Int(index) < found.partitions.count else {
            throw WireError(.unknownTopicOrPartition, "topic '\(topic)' has partitions 0...\(found.partitions.count - 1); partition \(index) does not exist")
        }
        return found.partitions[Int(index)]
    }

    // MARK: Changes

    /// Names being created or deleted: their directories are in flux, so the name is not available.
    private var busy: Set<String> = []

    /// Creates a topic (internal names only when `allowInternal`). The name is reserved under the lock;
    /// the logs are opened outside it, so metadata and heartbeats never wait for file creation.
    @discardableResult
    func create(name: String, partitions: Int32, configs: [ConfigEntry], allowInternal: Bool = false, validateOnly: Bool = false) throws -> Topic {
        try Self.validateName(name, allowInternal: allowInternal)
        guard partitions >= 1 && partitions <= partitionsPerTopicMax else {
            throw WireError(.invalidPartitions, "a topic needs 1...\(partitionsPerTopicMax) partitions, got \(partitions)")
        }
        let config = try TopicConfig.validated([:], applying: configs, defaults: defaults)
        try lock.withLock {
            guard topics[name] == nil else { throw WireError(.topicAlreadyExists, "topic '\(name)' already exists") }
            guard !busy.contains(name) else {
                throw WireError(.topicAlreadyExists, "topic '\(name)' is being created or deleted; retry in a moment")
            }
            guard topics.count + busy.count < topicsMax else {
                throw WireError(.invalidRequest, "the broker already holds \(topicsMax) topics, its limit")
            }
            if !validateOnly { busy.insert(name) }
        }
        if validateOnly { return Topic(name: name, config: config, partitions: []) }
        defer { lock.withLock { _ = busy.remove(name) } }
        // Leftover directories of an uncommitted earlier attempt would be adopted: clear them.
        for index in 0..<partitions where FileSystem.exists(partitionDirectory(name, index)) {
            try removeTree(partitionDirectory(name, index))
        }
        let topic = try openTopic(name: name, partitionCount: partitions, config: config)
        do {
            // The new directories must be durable before the .topic file commits the topic.
            try FileSystem.syncDirectory(dataDirectory)
            try writeTopicFile(name: name, partitions: partitions, config: config)
        } catch {
            for partition in topic.partitions { try? partition.close() }
            throw error
        }
        lock.withLock { topics[name] = topic }
        logger.info("created topic", metadata: ["topic": "\(name)", "partitions": "\(partitions)"])
        return topic
    }

    /// Deletes a topic: its .topic file first (the commit point), then its directories. The name stays
    /// reserved until the directories are gone, so a create of the same name cannot adopt them.
    /// Deletes a topic; internal ones only when `allowInternal` (the broker removing a processor's
    /// repartition topic), never at a client's request.
    func delete(name: String, allowInternal: Bool = false) throws {
        let topic: Topic = try lock.withLock {
            guard let topic = topics[name] else { throw WireError(.unknownTopicOrPartition, "topic '\(name)' does not exist") }
            guard allowInternal || !topic.isInternal else { throw WireError(.invalidTopic, "'\(name)' is an internal topic and cannot be deleted") }
            try FileSystem.remove(metaDirectory + "/\(name).topic")
            try FileSystem.syncDirectory(metaDirectory)
            topics[name] = nil
            busy.insert(name)
            return topic
        }
        defer { lock.withLock { _ = busy.remove(name) } }
        for partition in topic.partitions {
            try? partition.close()
            let doomed = partition.directory + ".deleting"
            try FileSystem.rename(partition.directory, to: doomed)
            try removeTree(doomed)
        }
        logger.info("deleted topic", metadata: ["topic": "\(name)"])
    }

    /// Changes a topic's settings: validated against the current ones and written under the lock (so
    /// concurrent alters do not lose updates and a deleted or recreated topic is not resurrected), then
    /// the logs reopen with the new settings.
    func alter(name: String, configs: [ConfigEntry], validateOnly: Bool) throws {
        let (topic, logConfig) = try alterSettings(name: name, configs: configs, validateOnly: validateOnly)
        guard !validateOnly else { return }
        for partition in topic.partitions where partition.log.config != logConfig {
            try partition.reopen(config: logConfig, logger: logger)
        }
    }

    /// `alter` without reopening the logs: validates, and unless `validateOnly` saves the new settings.
    /// Returns the topic and the log settings its partitions must reopen with (a replicated one does
    /// so on its Raft group's thread).
    func alterSettings(name: String, configs: [ConfigEntry], validateOnly: Bool) throws -> (Topic, LogConfig) {
        try lock.withLock {
            guard let topic = topics[name] else { throw WireError(.unknownTopicOrPartition, "topic '\(name)' does not exist") }
            let config = try TopicConfig.validated(topic.config.overrides, applying: configs, defaults: defaults)
            let logConfig = try config.logConfig(defaults: defaults)
            if !validateOnly {
                try writeTopicFile(name: name, partitions: Int32(topic.partitions.count), config: config)
                topic.config = config
            }
            return (topic, logConfig)
        }
    }

    /// Answers every long-polling fetch now (at shutdown).
    func wakeAllWaiters() {
        for topic in allTopics { for partition in topic.partitions { partition.wakeWaiters() } }
    }

    /// Closes every log cleanly (writing the clean-shutdown markers).
    func closeAll() {
        for topic in allTopics {
            for partition in topic.partitions {
                do { try partition.close() } catch {
                    logger.error("closing partition failed", metadata: ["directory": "\(partition.directory)", "error": "\(error)"])
                }
            }
        }
    }
}

/// Operating errors of the broker itself (as opposed to a request's).
enum BrokerError: Error, CustomStringConvertible {
    case corruptMetadata(path: String, reason: String)
    case io(path: String, reason: String)
    case dataDirectoryLocked(path: String)
    /// The data directory's Raft groups voted with other member ids than `--cluster` lists now.
    case membersChanged(path: String, saved: String, given: String)

    var description: String {
        switch self {
        case .corruptMetadata(let path, let reason):
            "\(path): \(reason). The file records a topic's partition count and settings; restore it from a backup or remove it together with the topic's directories."
        case .io(let path, let reason): "\(path): \(reason)"
        case .dataDirectoryLocked(let path):
            "\(path) is in use by another sluiced process (its lock file is held). Stop that broker or pass a different --data-dir."
        case .membersChanged(let path, let saved, let given):
            "\(path) says this data belongs to a cluster of nodes \(saved), but --cluster lists nodes \(given). Changing the members is not supported (a different voter set can lose acknowledged writes): start with the original list, or with an empty --data-dir for a new cluster."
        }
    }
}
