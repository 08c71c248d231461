import NIOCore
import SluiceRaft

// Body of RaftMessages (protocol.md, "Replication"): the broker-to-broker transport of SluiceRaft.
//
// A request carries one-way Raft messages, grouped by the Raft group they belong to (a partition, or the
// metadata group at `__cluster_metadata` partition 0). Raft already tolerates lost, duplicated and
// reordered messages, so the transport promises nothing more: the sender does not wait for the answer
// before it sends again, and the answer only says whether the receiver could hand the messages on.
//
// `SluiceRaft.Message` is carried as it is, field for field, so the broker's driver sends what `Ready`
// lists and steps exactly the values that arrive. Raft's unsigned numbers (node ids, terms, indexes)
// travel as `int64` holding the same 64 bits.

/// Bounds on a RaftMessages request, shared by the sender (which splits what it sends with
/// `RaftMessagesRequest.batched`) and the receiver (which refuses a body that breaks them before it
/// allocates anything for the elements).
public enum RaftWireLimits {
    /// Most Raft groups in one request. A broker shares at most a few thousand groups with a peer, so one
    /// request can carry a whole heartbeat round for all of them.
    public static let groupsPerRequestMax = 10_000

    /// Most messages for one group in one request. A `Ready` sends a few messages per peer; the margin
    /// covers a sender that coalesced several rounds.
    public static let messagesPerGroupMax = 1_024

    /// Most entries in one message. Far above `RaftConfig.maxEntriesPerAppend` (64 by default), which must
    /// stay at or below it, since a message cannot be split.
    public static let entriesPerMessageMax = 4_096

    /// Most bytes `RaftMessagesRequest.batched` packs into one request body: well below the receiver's
    /// default `frame-bytes-max` (100 MiB), so a request of many small messages is never refused as a
    /// whole. Payload bytes have no bound of their own: the receiver's frame limit bounds them.
    public static let requestBytesMax = 64 * 1024 * 1024

    /// The topic that addresses the metadata Raft group (with `metadataPartition`). Topic names starting
    /// with `__` cannot be created by users, so it never names a user partition.
    public static let metadataTopic = "__cluster_metadata"

    /// The partition that addresses the metadata Raft group (with `metadataTopic`).
    public static let metadataPartition: Int32 = 0
}

// MARK: Message kinds

extension SluiceRaft.Message.Kind {
    /// The kind's number on the wire (protocol.md, "RaftMessages"). Numbers never change meaning; a new
    /// kind takes the next free number. The switch is exhaustive, so a kind added to SluiceRaft does not
    /// compile until it has a number here.
    public var wireCode: Int8 {
        switch self {
        case .preVote: 0
        case .preVoteResponse: 1
        case .vote: 2
        case .voteResponse: 3
        case .append: 4
        case .appendResponse: 5
        case .heartbeat: 6
        case .heartbeatResponse: 7
        case .timeoutNow: 8
        case .installSnapshot: 9
        case .snapshotResponse: 10
        }
    }

    /// The kind numbered `wireCode`; nil for a number this build does not know.
    public init?(wireCode: Int8) {
        // Derived from `wireCode` so the numbering is written down once.
        guard let kind = Self.allCases.first(where: { $0.wireCode == wireCode }) else { return nil }
        self = kind
    }
}

// MARK: Reading

extension WireReader {
    /// An `int64` read as the unsigned 64-bit number whose bits it holds (Raft ids, terms, indexes).
    mutating func readUInt64(_ field: StaticString) throws -> UInt64 {
        UInt64(bitPattern: try readInt64(field))
    }

    /// `bytes` (never null) copied out of the frame, for Raft's `[UInt8]` payloads.
    mutating func readByteArray(_ field: StaticString) throws -> [UInt8] {
        Array(try readBytes(field).readableBytesView)
    }

    /// One Raft `message` (protocol.md, "RaftMessages"), field for field. An unknown kind is malformed:
    /// stepping a message of a kind the node does not know could only be wrong.
    public mutating func readRaftMessage() throws -> SluiceRaft.Message {
        let code = try readInt8("kind")
        guard let kind = SluiceRaft.Message.Kind(wireCode: code) else {
            let known = SluiceRaft.Message.Kind.allCases.map(\.wireCode)
            throw WireDecodingError("kind: unknown Raft message kind \(code); this build knows \(known.min() ?? 0)...\(known.max() ?? 0)")
        }
        var message = SluiceRaft.Message(
            kind: kind, from: try readUInt64("from"), to: try readUInt64("to"), term: try readUInt64("term"))
        message.logTerm = try readUInt64("log_term")
        message.index = try readUInt64("index")
        message.commit = try readUInt64("commit")
        message.reject = try readBool("reject")
        message.rejectHint = try readUInt64("reject_hint")
        message.transfer = try readBool("transfer")
        message.entries = try readArray("entries", countMax: RaftWireLimits.entriesPerMessageMax,
                                        limit: "RaftWireLimits.entriesPerMessageMax") { r in
            SluiceRaft.Entry(term: try r.readUInt64("entry_term"), index: try r.readUInt64("entry_index"),
                             payload: try r.readByteArray("payload"))
        }
        message.snapshot = try readRaftSnapshot()
        return message
    }

    /// `has_snapshot bool`, then (when true) `index int64, term int64, data bytes`.
    mutating func readRaftSnapshot() throws -> SluiceRaft.Snapshot? {
        guard try readBool("has_snapshot") else { return nil }
        let metadata = SnapshotMetadata(index: try readUInt64("snapshot_index"), term: try readUInt64("snapshot_term"))
        return SluiceRaft.Snapshot(metadata: metadata, data: try readByteArray("snapshot_data"))
    }
}

// MARK: Writing

extension WireWriter {
    /// An unsigned 64-bit number as the `int64` with the same bits.
    mutating func write(uint64 value: UInt64) {
        write(Int64(bitPattern: value))
    }

    /// One Raft `message`, field for field. More than `RaftWireLimits.entriesPerMessageMax` entries is a
    /// programmer error: the receiver would refuse the whole request.
    public mutating func write(raftMessage message: SluiceRaft.Message) {
        precondition(message.entries.count <= RaftWireLimits.entriesPerMessageMax,
                     "Raft message of \(message.entries.count) entries; the wire limit is \(RaftWireLimits.entriesPerMessageMax)")
        write(message.kind.wireCode)
        write(uint64: message.from)
        write(uint64: message.to)
        write(uint64: message.term)
        write(uint64: message.logTerm)
        write(uint64: message.index)
        write(uint64: message.commit)
        write(message.reject)
        write(uint64: message.rejectHint)
        write(message.transfer)
        write(message.entries) { w, entry in
            w.write(uint64: entry.term)
            w.write(uint64: entry.index)
            w.write(bytes: entry.payload)
        }
        write(message.snapshot != nil)
        if let snapshot = message.snapshot {
            write(uint64: snapshot.metadata.index)
            write(uint64: snapshot.metadata.term)
            write(bytes: snapshot.data)
        }
    }
}

extension SluiceRaft.Message {
    /// Bytes `write(raftMessage:)` produces for this message: 64 of fixed fields, 20 plus the payload per
    /// entry, 20 plus the data for a snapshot.
    public var wireBytes: Int {
        let entries = self.entries.reduce(0) { $0 + 20 + $1.payload.count }
        return 64 + entries + (snapshot.map { 20 + $0.data.count } ?? 0)
    }
}

// MARK: RaftMessages (19)

/// Raft messages from one broker to another: `from_node int32, groups [topic string, partition int32,
/// messages [message]]`. One-way: the answer only says whether the receiver could hand them on.
public struct RaftMessagesRequest: WireMessage, Equatable {
    /// The messages for one Raft group, in the order its node produced them.
    public struct Group: WireEntry, Equatable {
        /// The group's topic; `RaftWireLimits.metadataTopic` for the metadata group.
        public var topic: String
        /// The group's partition; `RaftWireLimits.metadataPartition` for the metadata group.
        public var partition: Int32
        /// The topic's incarnation (the metadata index that created it; 0 for the metadata group): a
        /// receiver holding another incarnation of the topic drops the messages.
        public var incarnation: UInt64
        /// At most `RaftWireLimits.messagesPerGroupMax` messages.
        public var messages: [SluiceRaft.Message]

        /// The messages for the group at (`topic`, `partition`, `incarnation`).
        public init(topic: String, partition: Int32, incarnation: UInt64 = 0, messages: [SluiceRaft.Message]) {
            self.topic = topic
            self.partition = partition
            self.incarnation = incarnation
            self.messages = messages
        }

        /// Reads `topic string, partition int32, incarnation int64, messages [message]`.
        public init(from reader: inout WireReader) throws {
            topic = try reader.readString("topic")
            partition = try reader.readInt32("partition")
            incarnation = try reader.readUInt64("incarnation")
            messages = try reader.readArray("messages", countMax: RaftWireLimits.messagesPerGroupMax,
                                            limit: "RaftWireLimits.messagesPerGroupMax") { try $0.readRaftMessage() }
        }

        /// Writes `topic string, partition int32, incarnation int64, messages [message]`.
        public func encode(to writer: inout WireWriter) {
            precondition(messages.count <= RaftWireLimits.messagesPerGroupMax,
                         "\(messages.count) Raft messages for one group; the wire limit is \(RaftWireLimits.messagesPerGroupMax)")
            writer.write(topic)
            writer.write(partition)
            writer.write(uint64: incarnation)
            writer.write(messages) { w, message in w.write(raftMessage: message) }
        }

        /// Bytes `encode(to:)` produces.
        public var wireBytes: Int {
            2 + topic.utf8.count + 4 + 8 + 4 + messages.reduce(0) { $0 + $1.wireBytes }
        }
    }

    /// The sending broker's node id.
    public var fromNode: Int32
    /// CRC-32C of the sender's member ids (`ClusterConfig.votersChecksum`): a receiver started with a
    /// different member list refuses the request, since two lists could elect two leaders in one term.
    public var votersChecksum: UInt32
    /// At most `RaftWireLimits.groupsPerRequestMax` groups.
    public var groups: [Group]

    /// A request from broker `fromNode`.
    public init(fromNode: Int32, votersChecksum: UInt32, groups: [Group]) {
        self.fromNode = fromNode
        self.votersChecksum = votersChecksum
        self.groups = groups
    }

    /// Reads the body; a count above a `RaftWireLimits` bound or an unknown message kind is malformed.
    public init(from reader: inout WireReader, version: Int16) throws {
        fromNode = try reader.readInt32("from_node")
        votersChecksum = UInt32(bitPattern: try reader.readInt32("voters_checksum"))
        groups = try reader.readArray("groups", countMax: RaftWireLimits.groupsPerRequestMax,
                                      limit: "RaftWireLimits.groupsPerRequestMax") { try Group(from: &$0) }
    }

    /// Writes the body. Counts above the `RaftWireLimits` bounds are a programmer error (use `batched`).
    public func encode(to writer: inout WireWriter, version: Int16) {
        precondition(groups.count <= RaftWireLimits.groupsPerRequestMax,
                     "\(groups.count) Raft groups in one request; the wire limit is \(RaftWireLimits.groupsPerRequestMax)")
        writer.write(fromNode)
        writer.write(Int32(bitPattern: votersChecksum))
        writer.write(entries: groups)
    }

    /// Bytes of a body without groups (`from_node`, `voters_checksum` and the groups count); a body is
    /// this plus each group's `wireBytes`.
    public static let headBytes = 12

    /// Packs `groups` into as few requests as the `RaftWireLimits` bounds and `bytesMax` allow, keeping
    /// each group's messages in order (requests sent in order on one connection arrive in order). Groups
    /// without messages are left out; a single message above `bytesMax` travels alone.
    public static func batched(fromNode: Int32, votersChecksum: UInt32, groups: [Group],
                               bytesMax: Int = RaftWireLimits.requestBytesMax) -> [RaftMessagesRequest] {
        let chunks = groups.flatMap { $0.chunks(bytesMax: bytesMax - headBytes) }
        return pack(chunks, countMax: RaftWireLimits.groupsPerRequestMax, bytesMax: bytesMax, baseBytes: headBytes, size: \.wireBytes)
            .map { RaftMessagesRequest(fromNode: fromNode, votersChecksum: votersChecksum, groups: $0) }
    }

    /// Cuts `items` in order into runs of at most `countMax` items whose sizes add up, with `baseBytes`,
    /// to at most `bytesMax`, except that an item alone above it forms a run of its own.
    static func pack<Item>(_ items: [Item], countMax: Int, bytesMax: Int, baseBytes: Int, size: (Item) -> Int) -> [[Item]] {
        var runs: [[Item]] = []
        var run: [Item] = []
        var bytes = baseBytes
        for item in items {
            let itemBytes = size(item)
            if !run.isEmpty, run.count == countMax || bytes + itemBytes > bytesMax {
                runs.append(run)
                run = []
                bytes = baseBytes
            }
            run.append(item)
            bytes += itemBytes
        }
        if !run.isEmpty { runs.append(run) }
        return runs
    }
}

extension RaftMessagesRequest.Group {
    /// The group's messages cut into groups of at most `RaftWireLimits.messagesPerGroupMax` messages and
    /// (unless one message alone is larger) `bytesMax` bytes; none when there are no messages.
    func chunks(bytesMax: Int) -> [Self] {
        let emptyBytes = Self(topic: topic, partition: partition, incarnation: incarnation, messages: []).wireBytes
        return RaftMessagesRequest.pack(messages, countMax: RaftWireLimits.messagesPerGroupMax, bytesMax: bytesMax,
                                        baseBytes: emptyBytes, size: \.wireBytes)
            .map { Self(topic: topic, partition: partition, incarnation: incarnation, messages: $0) }
    }
}

/// The answer to RaftMessages: `error int16, message string?` (the same body as CreateProcessor's).
/// `.none` when every group was handed to its Raft node; `unknown_topic_or_partition` when this broker
/// hosts no replica of some groups (the message names them; the other groups were still delivered). A
/// malformed body never gets here: it is the frame's `invalid_request`, and nothing of it is delivered.
public typealias RaftMessagesResponse = ProcessorResultResponse
