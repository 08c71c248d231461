// The shapes that repeat across message bodies (protocol.md, "APIs"): arrays of self-encoding entries,
// `topics [name string, partitions [...]]`, and the per-item `error_code` + `error_message` pair.

/// One element of an array in a message body (a topic, a partition, a config entry) that reads and
/// writes its own fields, in the order protocol.md lists them.
public protocol WireEntry: Sendable {
    /// Reads the entry's fields; throws naming the field that does not parse.
    init(from reader: inout WireReader) throws
    /// Writes the entry's fields.
    func encode(to writer: inout WireWriter)
}

/// `name string, partitions [Entry]`: one topic and its per-partition entries, the element of every
/// `topics` array of the partition-level APIs (Produce, Fetch, ListOffsets, OffsetCommit, OffsetFetch).
/// Messages expose it as `Topic` (`public typealias Topic = TopicEntries<Partition>`).
public struct TopicEntries<Entry: WireEntry>: WireEntry {
    /// The topic's name.
    public var name: String
    /// One entry per partition, in the order sent.
    public var partitions: [Entry]

    /// A topic with its partition entries.
    public init(name: String, partitions: [Entry]) {
        self.name = name
        self.partitions = partitions
    }

    /// Reads `name string, partitions [Entry]`.
    public init(from reader: inout WireReader) throws {
        name = try reader.readString("name")
        partitions = try reader.readEntries("partitions")
    }

    /// Writes `name string, partitions [Entry]`.
    public func encode(to writer: inout WireWriter) {
        writer.write(name)
        writer.write(entries: partitions)
    }
}

extension TopicEntries: Equatable where Entry: Equatable {}
extension TopicEntries: Hashable where Entry: Hashable {}

/// An answer item that carries the protocol's per-item failure: `error_code` (0 for success) and an
/// `error_message` for people.
public protocol WireErrorCarrying {
    /// The item's error; `.none` on success.
    var error: ErrorCode { get }
    /// Why, for people; nil when `error` is `.none`.
    var errorMessage: String? { get }
}

extension WireErrorCarrying {
    /// The error as a throwable value, or nil on success.
    public var wireError: WireError? { error == .none ? nil : WireError(error, errorMessage ?? "") }
}

extension WireReader {
    /// `[Entry]`: an int32 count then the entries (see `readArray`).
    public mutating func readEntries<Entry: WireEntry>(_ field: StaticString, as type: Entry.Type = Entry.self) throws -> [Entry] {
        try readArray(field) { try Entry(from: &$0) }
    }

    /// `error_code int16, error_message string?`, the per-item failure pair.
    public mutating func readErrorPair() throws -> (ErrorCode, String?) {
        (try readErrorCode(), try readNullableString("error_message"))
    }
}

extension WireWriter {
    /// `[Entry]`: an int32 count then the entries.
    public mutating func write<Entry: WireEntry>(entries: [Entry]) {
        write(entries) { w, entry in entry.encode(to: &w) }
    }

    /// `error_code int16, error_message string?`, the per-item failure pair.
    public mutating func write(error: ErrorCode, message: String?) {
        write(error.rawValue)
        write(message)
    }
}

/// A body that is exactly `topics [Topic]` (most answers of the partition-level and admin APIs); it
/// gets its decoding and encoding from the entries.
public protocol TopicsMessage: WireMessage {
    /// The element of `topics`.
    associatedtype Topic: WireEntry
    /// One entry per topic, in the order sent.
    var topics: [Topic] { get }
    /// A body of these entries.
    init(topics: [Topic])
}

extension TopicsMessage {
    /// Reads `topics [Topic]`.
    public init(from reader: inout WireReader, version: Int16) throws {
        self.init(topics: try reader.readEntries("topics"))
    }

    /// Writes `topics [Topic]`.
    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(entries: topics)
    }
}
