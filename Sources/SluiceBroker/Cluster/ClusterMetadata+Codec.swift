// The bytes of metadata commands and snapshots (spec: storage-format/cluster-metadata.md).
//
// Both encodings are canonical: maps are written sorted by key bytes and the readers reject any other
// order, so one value has exactly one byte string. Brokers compare snapshots byte for byte, and a damaged
// input either fails or decodes to a value that encodes back to the same bytes.

import SluiceCore

/// Why bytes are not a metadata command or snapshot, and where the reader stopped.
struct MetadataFormatError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What is wrong.
    enum Reason: Equatable, Sendable {
        /// The bytes end inside `field`.
        case truncated(field: String)
        /// The format version is not one this code reads.
        case unsupportedVersion(Int)
        /// The command kind byte is not a known kind.
        case unknownKind(UInt8)
        /// A string is longer than its limit (or than its length field holds, when encoding).
        case tooLong(field: String, length: Int, limit: Int)
        /// A list has more elements than its limit.
        case tooMany(field: String, count: Int, limit: Int)
        /// A string is not UTF-8.
        case invalidUTF8(field: String)
        /// A flags field has bits set that mean nothing.
        case invalidFlags(field: String, value: Int)
        /// Map keys or list elements that must be strictly ascending by bytes are not, or repeat.
        case notAscending(field: String)
        /// Bytes follow the end of the value.
        case trailingBytes(count: Int)
        /// The snapshot does not start with `SLCM`.
        case badMagic
        /// The snapshot's CRC does not match its bytes.
        case crcMismatch(stored: UInt32, computed: UInt32)
        /// The snapshot's structure is sound but its content breaks a rule of the state.
        case invalidState(String)
    }

    /// `command` or `snapshot`.
    let subject: String
    /// What is wrong.
    let reason: Reason
    /// The byte at which the problem was found.
    let position: Int

    /// The error's text, naming the subject, the problem and the byte.
    var description: String {
        let what: String
        switch reason {
        case .truncated(let field): what = "truncated in the \(field)"
        case .unsupportedVersion(let version): what = "unsupported format version \(version) (this broker reads version 1)"
        case .unknownKind(let kind): what = "unknown command kind \(kind)"
        case .tooLong(let field, let length, let limit): what = "\(field) is \(length) bytes long; the limit is \(limit)"
        case .tooMany(let field, let count, let limit): what = "\(count) \(field)s; the limit is \(limit)"
        case .invalidUTF8(let field): what = "\(field) is not UTF-8"
        case .invalidFlags(let field, let value): what = "\(field) has unknown bits set (\(value))"
        case .notAscending(let field): what = "\(field)s are not in strictly ascending byte order"
        case .trailingBytes(let count): what = "\(count) bytes after the end"
        case .badMagic: what = "does not start with 'SLCM'"
        case .crcMismatch(let stored, let computed): what = "CRC mismatch (stored \(stored), computed \(computed))"
        case .invalidState(let detail): what = detail
        }
        return "cluster metadata \(subject): \(what), at byte \(position)"
    }
}

// MARK: Commands

extension MetadataCommand {
    /// The version byte every command starts with.
    static let formatVersion: UInt8 = 1

    /// The kind byte that follows the version.
    enum Kind: UInt8 {
        case createTopic = 1
        case deleteTopic = 2
        case alterTopicConfig = 3
        case createPartitions = 4
        case commitOffsets = 5
        case putProcessor = 6
        case deleteProcessor = 7
    }

    /// The command's bytes. Throws when a string or list is beyond `MetadataLimits`; a command that
    /// `ClusterMetadata.check` accepts always encodes.
    func encode() throws(MetadataFormatError) -> [UInt8] {
        var writer = MetadataWriter(subject: "command")
        writer.bytes.append(Self.formatVersion)
        switch self {
        case .createTopic(let name, let replicas, let configs, let isInternal):
            writer.bytes.append(Kind.createTopic.rawValue)
            writer.topicName(name)
            writer.bytes.append(isInternal ? 1 : 0)
            writer.replicas(replicas)
            writer.configs(configs)
        case .deleteTopic(let name):
            writer.bytes.append(Kind.deleteTopic.rawValue)
            writer.topicName(name)
        case .alterTopicConfig(let name, let set, let remove):
            writer.bytes.append(Kind.alterTopicConfig.rawValue)
            writer.topicName(name)
            writer.configs(set)
            writer.keys(remove)
        case .createPartitions(let name, let newReplicas):
            writer.bytes.append(Kind.createPartitions.rawValue)
            writer.topicName(name)
            writer.replicas(newReplicas)
        case .commitOffsets(let group, let commitTimeMs, let offsets):
            writer.bytes.append(Kind.commitOffsets.rawValue)
            writer.string(group, field: "group id", limit: MetadataLimits.groupIdBytesMax)
            writer.bytes.appendBigEndian(commitTimeMs)
            writer.offsets(offsets)
        case .putProcessor(let name, let definition, let isNew):
            writer.bytes.append(Kind.putProcessor.rawValue)
            writer.processorName(name)
            writer.bytes.append(isNew ? 1 : 0)
            writer.definition(definition)
        case .deleteProcessor(let name):
            writer.bytes.append(Kind.deleteProcessor.rawValue)
            writer.processorName(name)
        }
        if let failure = writer.failure { throw failure }
        return writer.bytes
    }

    /// Reads a command. Never traps: anything but exactly one well-formed command within the limits
    /// throws an error naming the problem and its byte.
    static func decode(_ bytes: [UInt8]) throws(MetadataFormatError) -> MetadataCommand {
        var reader = MetadataReader(bytes: bytes, end: bytes.count, subject: "command")
        let version = try reader.u8("version")
        guard version == formatVersion else { throw reader.failure(.unsupportedVersion(Int(version)), at: 0) }
        let kindByte = try reader.u8("kind")
        guard let kind = Kind(rawValue: kindByte) else { throw reader.failure(.unknownKind(kindByte), at: 1) }
        switch kind {
        case .commitOffsets:
            let group = try reader.string("group id", limit: MetadataLimits.groupIdBytesMax)
            let time: Int64 = try reader.integer("commit time")
            let command = MetadataCommand.commitOffsets(group: group, commitTimeMs: time, offsets: try reader.offsets())
            try reader.expectEnd()
            return command
        case .putProcessor:
            let name = try reader.processorName()
            let isNew = try reader.flag("new flag")
            let command = MetadataCommand.putProcessor(name: name, definition: try reader.definition(), isNew: isNew)
            try reader.expectEnd()
            return command
        case .deleteProcessor:
            let command = MetadataCommand.deleteProcessor(name: try reader.processorName())
            try reader.expectEnd()
            return command
        case .createTopic, .deleteTopic, .alterTopicConfig, .createPartitions:
            break
        }
        let name = try reader.topicName()
        let command: MetadataCommand
        switch kind {
        case .createTopic:
            let isInternal = try reader.flag("internal flag")
            let replicas = try reader.replicas()
            command = .createTopic(name: name, replicas: replicas, configs: try reader.configs(), isInternal: isInternal)
        case .deleteTopic:
            command = .deleteTopic(name: name)
        case .alterTopicConfig:
            let set = try reader.configs()
            command = .alterTopicConfig(name: name, set: set, remove: try reader.keys())
        case .createPartitions:
            command = .createPartitions(name: name, newReplicas: try reader.replicas())
        case .commitOffsets, .putProcessor, .deleteProcessor:
            throw reader.failure(.unknownKind(kindByte), at: 1)  // read above; not reached
        }
        try reader.expectEnd()
        return command
    }
}

// MARK: Snapshots

extension ClusterMetadata {
    /// The first four bytes of a snapshot.
    static let snapshotMagic: [UInt8] = Array("SLCM".utf8)
    /// The snapshot format version.
    static let snapshotVersion: UInt16 = 1
    /// Magic, version, flags, applied index and topic count, then the CRC at the end.
    static let snapshotFixedBytes = 4 + 2 + 2 + 8 + 4 + 4
    /// Snapshot flag: a processor section follows the topics. Without it the snapshot is the layout of
    /// builds before processors were replicated, which stay readable.
    static let snapshotHasProcessors: UInt16 = 1

    /// Largest snapshot the limits allow: the bound for whoever reads one from disk or the network.
    static var snapshotBytesMax: Int {
        let string = { (limit: Int) in 2 + limit }
        let topic = string(MetadataLimits.topicNameBytesMax) + 1 + 8 + 4 + 2
            + MetadataLimits.configsPerTopicMax * (string(MetadataLimits.configKeyBytesMax) + string(MetadataLimits.configValueBytesMax))
        let partition = 1 + 4 * MetadataLimits.replicasPerPartitionMax
        let processor = string(MetadataLimits.processorNameBytesMax) + 4 + MetadataLimits.processorDefinitionBytesMax
        return snapshotFixedBytes + MetadataLimits.topicsMax * topic + MetadataLimits.partitionsMax * partition
            + 4 + MetadataLimits.processorsMax * processor
    }

    /// The whole state as bytes, topics sorted by name: equal states give equal bytes.
    func encodeSnapshot() -> [UInt8] {
        var writer = MetadataWriter(subject: "snapshot")
        writer.bytes = Self.snapshotMagic
        writer.bytes.appendBigEndian(Self.snapshotVersion)
        writer.bytes.appendBigEndian(processors.isEmpty ? UInt16(0) : Self.snapshotHasProcessors)
        writer.bytes.appendBigEndian(appliedIndex)
        writer.bytes.appendBigEndian(UInt32(topics.count))
        for topic in sortedTopics {
            writer.topicName(topic.name)
            writer.bytes.append(topic.isInternal ? 1 : 0)
            writer.bytes.appendBigEndian(topic.createdAtIndex)
            writer.replicas(topic.replicas)
            writer.configs(topic.configs)
        }
        if !processors.isEmpty {
            writer.bytes.appendBigEndian(UInt32(processors.count))
            for name in processors.keys.sorted(by: Self.precedes) {
                writer.processorName(name)
                writer.definition(processors[name] ?? [])
            }
        }
        // The state's invariants keep every field within the limits the writer checks.
        assert(writer.failure == nil, "metadata state beyond its limits: \(writer.failure.map { "\($0)" } ?? "")")
        writer.bytes.appendBigEndian(CRC32C.checksum(writer.bytes))
        return writer.bytes
    }

    /// Reads a snapshot and checks it against every invariant of the state. Never traps.
    static func decodeSnapshot(_ bytes: [UInt8]) throws(MetadataFormatError) -> ClusterMetadata {
        var reader = MetadataReader(bytes: bytes, end: max(0, bytes.count - 4), subject: "snapshot")
        guard bytes.count >= snapshotMagic.count else { throw reader.failure(.truncated(field: "magic"), at: bytes.count) }
        guard Array(bytes.prefix(4)) == snapshotMagic else { throw reader.failure(.badMagic, at: 0) }
        guard bytes.count >= snapshotFixedBytes else { throw reader.failure(.truncated(field: "header"), at: bytes.count) }
        let stored = bytes.getBigEndian(at: bytes.count - 4, as: UInt32.self)
        let computed = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[..<(bytes.count - 4)])) }
        guard stored == computed else { throw reader.failure(.crcMismatch(stored: stored, computed: computed), at: bytes.count - 4) }
        reader.position = 4
        let version: UInt16 = try reader.integer("version")
        guard version == snapshotVersion else { throw reader.failure(.unsupportedVersion(Int(version)), at: 4) }
        let flags: UInt16 = try reader.integer("flags")
        guard flags & ~snapshotHasProcessors == 0 else { throw reader.failure(.invalidFlags(field: "snapshot flags", value: Int(flags)), at: 6) }
        let appliedIndex: UInt64 = try reader.integer("applied index")
        let count = try reader.count(UInt32.self, "topic", limit: MetadataLimits.topicsMax)
        var topics: [String: TopicAssignment] = [:]
        var previous: String?
        var partitions = 0
        for _ in 0..<count {
            let start = reader.position
            let topic = try readTopic(&reader)
            if let previous, !precedes(previous, topic.name) { throw reader.failure(.notAscending(field: "topic name"), at: start) }
            previous = topic.name
            try checkRestored(topic, appliedIndex: appliedIndex, reader: reader, at: start)
            partitions += topic.partitionCount
            guard partitions <= MetadataLimits.partitionsMax else {
                throw reader.failure(.tooMany(field: "partition", count: partitions, limit: MetadataLimits.partitionsMax), at: start)
            }
            topics[topic.name] = topic
        }
        let processors = flags & snapshotHasProcessors == 0 ? [:] : try readProcessors(&reader)
        try reader.expectEnd()
        return ClusterMetadata(topics: topics, processors: processors, appliedIndex: appliedIndex)
    }

    /// The processor section: a u32 count, then per processor (ascending name bytes) its name and its
    /// definition, each checked as apply checks them.
    private static func readProcessors(_ reader: inout MetadataReader) throws(MetadataFormatError) -> [String: [UInt8]] {
        let countStart = reader.position
        let count = try reader.count(UInt32.self, "processor", limit: MetadataLimits.processorsMax)
        // The flag is set exactly when there are processors: an empty section would not encode back the same.
        guard count > 0 else { throw reader.failure(.invalidState("the processor flag is set but the section is empty"), at: countStart) }
        var processors: [String: [UInt8]] = [:]
        var previous: String?
        for _ in 0..<count {
            let start = reader.position
            let name = try reader.processorName()
            if let previous, !precedes(previous, name) { throw reader.failure(.notAscending(field: "processor name"), at: start) }
            previous = name
            let definition = try reader.definition()
            do {
                try checkProcessor(name: name, definition: definition)
            } catch {
                throw reader.failure(.invalidState(error.message), at: start)
            }
            processors[name] = definition
        }
        return processors
    }

    private static func readTopic(_ reader: inout MetadataReader) throws(MetadataFormatError) -> TopicAssignment {
        let name = try reader.topicName()
        let isInternal = try reader.flag("internal flag")
        let createdAtIndex: UInt64 = try reader.integer("created-at index")
        let replicas = try reader.replicas()
        return TopicAssignment(name: name, replicas: replicas, configs: try reader.configs(), isInternal: isInternal,
                               createdAtIndex: createdAtIndex)
    }

    /// The rules apply enforces, checked again on a restored topic: a snapshot that passes its CRC may
    /// still come from a buggy or foreign writer.
    private static func checkRestored(_ topic: TopicAssignment, appliedIndex: UInt64, reader: MetadataReader, at start: Int)
        throws(MetadataFormatError) {
        guard topic.createdAtIndex >= 1 && topic.createdAtIndex <= appliedIndex else {
            throw reader.failure(.invalidState("topic '\(topic.name)' was created at index \(topic.createdAtIndex), outside 1...\(appliedIndex)"), at: start)
        }
        do {
            try checkName(topic.name, isInternal: topic.isInternal)
            try checkPartitionCount(topic.partitionCount, topic: topic.name)
            try checkReplicas(topic.replicas, topic: topic.name, firstPartition: 0, factor: topic.replicationFactor)
            _ = try mergedConfigs([:], set: topic.configs, remove: [], topic: topic.name)
        } catch {
            throw reader.failure(.invalidState(error.message), at: start)
        }
    }
}

// MARK: Primitives

/// Appends the shared field encodings, remembering the first field beyond its limit.
struct MetadataWriter {
    /// What is written: `command` or `snapshot`.
    let subject: String
    /// The bytes so far.
    var bytes: [UInt8] = []
    /// The first field found beyond its limit; the bytes are not usable when set.
    private(set) var failure: MetadataFormatError?

    /// A writer for `subject`.
    init(subject: String) { self.subject = subject }

    private mutating func fail(_ reason: MetadataFormatError.Reason) {
        if failure == nil { failure = MetadataFormatError(subject: subject, reason: reason, position: bytes.count) }
    }

    /// u16 byte length, then the UTF-8 bytes.
    mutating func string(_ value: String, field: String, limit: Int) {
        let length = value.utf8.count
        if length > limit { fail(.tooLong(field: field, length: length, limit: limit)) }
        bytes.appendBigEndian(UInt16(truncatingIfNeeded: length))
        bytes.append(contentsOf: value.utf8)
    }

    /// A topic name.
    mutating func topicName(_ name: String) {
        string(name, field: "topic name", limit: MetadataLimits.topicNameBytesMax)
    }

    /// A processor name.
    mutating func processorName(_ name: String) {
        string(name, field: "processor name", limit: MetadataLimits.processorNameBytesMax)
    }

    /// u32 byte length, then a processor definition's bytes.
    mutating func definition(_ value: [UInt8]) {
        if value.count > MetadataLimits.processorDefinitionBytesMax {
            fail(.tooLong(field: "processor definition", length: value.count, limit: MetadataLimits.processorDefinitionBytesMax))
        }
        bytes.appendBigEndian(UInt32(truncatingIfNeeded: value.count))
        bytes.append(contentsOf: value)
    }

    /// u32 partition count; per partition a u8 replica count and the i32 node ids.
    mutating func replicas(_ replicas: [[Int32]]) {
        if replicas.count > MetadataLimits.partitionsPerTopicMax {
            fail(.tooMany(field: "partition", count: replicas.count, limit: MetadataLimits.partitionsPerTopicMax))
        }
        bytes.appendBigEndian(UInt32(truncatingIfNeeded: replicas.count))
        for nodes in replicas {
            if nodes.count > MetadataLimits.replicasPerPartitionMax {
                fail(.tooMany(field: "replica", count: nodes.count, limit: MetadataLimits.replicasPerPartitionMax))
            }
            bytes.append(UInt8(truncatingIfNeeded: nodes.count))
            for node in nodes { bytes.appendBigEndian(node) }
        }
    }

    /// u16 count, then key and value strings, sorted by key bytes.
    mutating func configs(_ configs: [String: String]) {
        if configs.count > MetadataLimits.configsPerTopicMax {
            fail(.tooMany(field: "config", count: configs.count, limit: MetadataLimits.configsPerTopicMax))
        }
        bytes.appendBigEndian(UInt16(truncatingIfNeeded: configs.count))
        for (key, value) in configs.sorted(by: { ClusterMetadata.precedes($0.key, $1.key) }) {
            string(key, field: "config key", limit: MetadataLimits.configKeyBytesMax)
            string(value, field: "config value", limit: MetadataLimits.configValueBytesMax)
        }
    }

    /// u16 count, then per partition (sorted by topic bytes, then partition) the topic name, i32 partition,
    /// i64 offset and a u8 flag (1: a metadata string follows). A repeated partition is a failure.
    mutating func offsets(_ offsets: [CommittedOffset]) {
        if offsets.count > MetadataLimits.offsetsPerCommitMax {
            fail(.tooMany(field: "offset", count: offsets.count, limit: MetadataLimits.offsetsPerCommitMax))
        }
        bytes.appendBigEndian(UInt16(truncatingIfNeeded: offsets.count))
        var previous: CommittedOffset?
        for entry in ClusterMetadata.sortedOffsets(offsets) {
            if let previous, !ClusterMetadata.offsetPrecedes(previous, entry) { fail(.notAscending(field: "partition")) }
            previous = entry
            topicName(entry.topic)
            bytes.appendBigEndian(entry.partition)
            bytes.appendBigEndian(entry.offset)
            bytes.append(entry.metadata == nil ? 0 : 1)
            if let metadata = entry.metadata { string(metadata, field: "commit metadata", limit: MetadataLimits.commitMetadataBytesMax) }
        }
    }

    /// u16 count, then the key strings, sorted by bytes and without repeats.
    mutating func keys(_ keys: [String]) {
        var unique: [String] = []
        for key in keys.sorted(by: ClusterMetadata.precedes) where unique.last.map({ Array($0.utf8) != Array(key.utf8) }) ?? true {
            unique.append(key)
        }
        if unique.count > MetadataLimits.configsPerTopicMax {
            fail(.tooMany(field: "removed key", count: unique.count, limit: MetadataLimits.configsPerTopicMax))
        }
        bytes.appendBigEndian(UInt16(truncatingIfNeeded: unique.count))
        for key in unique { string(key, field: "removed key", limit: MetadataLimits.configKeyBytesMax) }
    }
}

/// Reads the shared field encodings from `bytes[..<end]`, throwing at the first problem.
struct MetadataReader {
    /// The whole input.
    let bytes: [UInt8]
    /// Where the value ends (a snapshot's CRC follows it).
    let end: Int
    /// What is read: `command` or `snapshot`.
    let subject: String
    /// The next byte to read.
    var position = 0

    /// An error at `position`.
    func failure(_ reason: MetadataFormatError.Reason, at position: Int) -> MetadataFormatError {
        MetadataFormatError(subject: subject, reason: reason, position: position)
    }

    /// One byte.
    mutating func u8(_ field: String) throws(MetadataFormatError) -> UInt8 {
        guard position < end else { throw failure(.truncated(field: field), at: position) }
        defer { position += 1 }
        return bytes[position]
    }

    /// A big-endian integer.
    mutating func integer<T: FixedWidthInteger>(_ field: String) throws(MetadataFormatError) -> T {
        let size = MemoryLayout<T>.size
        guard end - position >= size else { throw failure(.truncated(field: field), at: end) }
        defer { position += size }
        return bytes.getBigEndian(at: position, as: T.self)
    }

    /// A flag byte: 0 or 1.
    mutating func flag(_ field: String) throws(MetadataFormatError) -> Bool {
        let start = position
        let value = try u8(field)
        guard value <= 1 else { throw failure(.invalidFlags(field: field, value: Int(value)), at: start) }
        return value == 1
    }

    /// An element count of width `T`, at most `limit`.
    mutating func count<T: FixedWidthInteger>(_: T.Type, _ field: String, limit: Int) throws(MetadataFormatError) -> Int {
        let start = position
        let value: T = try integer("\(field) count")
        guard let count = Int(exactly: value), count >= 0, count <= limit else {
            throw failure(.tooMany(field: field, count: Int(clamping: value), limit: limit), at: start)
        }
        return count
    }

    /// A u16-length-prefixed UTF-8 string of at most `limit` bytes.
    mutating func string(_ field: String, limit: Int) throws(MetadataFormatError) -> String {
        let start = position
        let length = Int(try integer("\(field) length") as UInt16)
        guard length <= limit else { throw failure(.tooLong(field: field, length: length, limit: limit), at: start) }
        guard end - position >= length else { throw failure(.truncated(field: field), at: end) }
        guard let text = String(validating: bytes[position..<(position + length)], as: UTF8.self) else {
            throw failure(.invalidUTF8(field: field), at: position)
        }
        position += length
        return text
    }

    /// A topic name.
    mutating func topicName() throws(MetadataFormatError) -> String {
        try string("topic name", limit: MetadataLimits.topicNameBytesMax)
    }

    /// A processor name.
    mutating func processorName() throws(MetadataFormatError) -> String {
        try string("processor name", limit: MetadataLimits.processorNameBytesMax)
    }

    /// The bytes `MetadataWriter.definition` writes.
    mutating func definition() throws(MetadataFormatError) -> [UInt8] {
        let start = position
        let length = Int(try integer("processor definition length") as UInt32)
        guard length <= MetadataLimits.processorDefinitionBytesMax else {
            throw failure(.tooLong(field: "processor definition", length: length, limit: MetadataLimits.processorDefinitionBytesMax), at: start)
        }
        guard end - position >= length else { throw failure(.truncated(field: "processor definition"), at: end) }
        defer { position += length }
        return Array(bytes[position..<(position + length)])
    }

    /// The replica lists `MetadataWriter.replicas` writes. No capacity is reserved from a count: memory
    /// grows only with bytes actually present.
    mutating func replicas() throws(MetadataFormatError) -> [[Int32]] {
        let partitions = try count(UInt32.self, "partition", limit: MetadataLimits.partitionsPerTopicMax)
        var replicas: [[Int32]] = []
        for _ in 0..<partitions {
            let nodes = try count(UInt8.self, "replica", limit: MetadataLimits.replicasPerPartitionMax)
            var ids: [Int32] = []
            for _ in 0..<nodes { ids.append(try integer("node id")) }
            replicas.append(ids)
        }
        return replicas
    }

    /// The config map `MetadataWriter.configs` writes; keys must be strictly ascending.
    mutating func configs() throws(MetadataFormatError) -> [String: String] {
        let start = position
        let count = try count(UInt16.self, "config", limit: MetadataLimits.configsPerTopicMax)
        var configs: [String: String] = [:]
        var previous: String?
        for _ in 0..<count {
            let keyStart = position
            let key = try string("config key", limit: MetadataLimits.configKeyBytesMax)
            if let previous, !ClusterMetadata.precedes(previous, key) { throw failure(.notAscending(field: "config key"), at: keyStart) }
            previous = key
            configs[key] = try string("config value", limit: MetadataLimits.configValueBytesMax)
        }
        // Different bytes may still be one String (canonically equivalent Unicode): the map then merged them.
        guard configs.count == count else { throw failure(.notAscending(field: "config key"), at: start) }
        return configs
    }

    /// The offsets `MetadataWriter.offsets` writes; (topic bytes, partition) must be strictly ascending.
    mutating func offsets() throws(MetadataFormatError) -> [CommittedOffset] {
        let count = try count(UInt16.self, "offset", limit: MetadataLimits.offsetsPerCommitMax)
        var offsets: [CommittedOffset] = []
        for _ in 0..<count {
            let start = position
            let topic = try topicName()
            let partition: Int32 = try integer("partition")
            let offset: Int64 = try integer("offset")
            let metadata = try flag("metadata flag") ? try string("commit metadata", limit: MetadataLimits.commitMetadataBytesMax) : nil
            let entry = CommittedOffset(topic: topic, partition: partition, offset: offset, metadata: metadata)
            if let last = offsets.last, !ClusterMetadata.offsetPrecedes(last, entry) { throw failure(.notAscending(field: "partition"), at: start) }
            offsets.append(entry)
        }
        return offsets
    }

    /// The key list `MetadataWriter.keys` writes; keys must be strictly ascending.
    mutating func keys() throws(MetadataFormatError) -> [String] {
        let count = try count(UInt16.self, "removed key", limit: MetadataLimits.configsPerTopicMax)
        var keys: [String] = []
        for _ in 0..<count {
            let keyStart = position
            let key = try string("removed key", limit: MetadataLimits.configKeyBytesMax)
            if let last = keys.last, !ClusterMetadata.precedes(last, key) { throw failure(.notAscending(field: "removed key"), at: keyStart) }
            keys.append(key)
        }
        return keys
    }

    /// Throws unless every byte up to `end` was read.
    func expectEnd() throws(MetadataFormatError) {
        guard position == end else { throw failure(.trailingBytes(count: end - position), at: position) }
    }
}
