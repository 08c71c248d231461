// Control batches: batches whose records are not user data (attributes bit 5, as in Kafka's record batch
// v2). Each new Raft leader of a partition appends one as its no-op entry, so a control batch takes an
// offset like any record while no consumer, processor or internal-topic replay may ever show it.
//
// Layout (storage-format/record-batch.md, "Control batches"): one uncompressed record whose
//   key   = version int16 (0), type int16
//   value = for `leaderChange`: version int16 (0), leader int32
// The batch's producer id, epoch and base sequence are -1; the partition leader epoch is the term.

/// The kind of a control record: the `type` field of its key.
///
/// Numbered as Kafka numbers its control records (0 and 1 are its transaction markers, 2 its
/// leader-change record), so the bytes mean the same thing to a Kafka tool. New kinds get new cases;
/// a reader that meets a type it does not know still skips the batch, because the control bit alone
/// tells it the records are not user data.
public enum ControlRecordType: UInt16, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// A new partition leader's first entry of its term (the Raft no-op entry).
    case leaderChange = 2

    /// A readable name, as tools print it.
    public var description: String {
        switch self {
        case .leaderChange: return "leader change"
        }
    }
}

/// One control record, parsed from its key and value.
public enum ControlRecord: Sendable, Hashable, CustomStringConvertible {
    /// The partition got a new leader, broker `leader`; the term is the batch's partition leader epoch.
    case leaderChange(leader: Int32)
    /// A type this version does not know. Its value is not looked at: it is skipped like every control record.
    case unknown(type: UInt16)

    /// The only key version: the key is exactly `version int16, type int16`.
    public static let keyVersion: Int16 = 0
    /// The only leader-change value version: the value is exactly `version int16, leader int32`.
    public static let leaderChangeValueVersion: Int16 = 0
    /// Size of a control record key.
    public static let keyBytes = 4
    /// Size of a leader-change value.
    public static let leaderChangeValueBytes = 6

    /// The record's type (nil for one this version does not know).
    public var type: ControlRecordType? {
        switch self {
        case .leaderChange: return .leaderChange
        case .unknown: return nil
        }
    }

    /// `leader change, leader 2`; `unknown type 9` for types this version does not know.
    public var description: String {
        switch self {
        case .leaderChange(let leader): return "\(ControlRecordType.leaderChange), leader \(leader)"
        case .unknown(let type): return "unknown type \(type)"
        }
    }

    /// The key of a control record of `type`.
    public static func key(_ type: ControlRecordType) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(keyBytes)
        bytes.appendBigEndian(keyVersion)
        bytes.appendBigEndian(type.rawValue)
        return bytes
    }

    /// The value of a leader-change record naming `leader`.
    public static func leaderChangeValue(leader: Int32) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(leaderChangeValueBytes)
        bytes.appendBigEndian(leaderChangeValueVersion)
        bytes.appendBigEndian(leader)
        return bytes
    }

    /// Parses a control record's key and value. Strict about the kinds it knows (exact sizes, version 0),
    /// because those bytes are written only by brokers; an unknown type is returned as `.unknown`
    /// without looking at its value, so a newer broker's records do not make an older reader fail.
    public init(key: [UInt8]?, value: [UInt8]?) throws {
        guard let key else { throw ControlRecordError(.malformedKey, "the key is null") }
        guard key.count == Self.keyBytes else {
            throw ControlRecordError(.malformedKey, "the key is \(key.count) bytes, not \(Self.keyBytes)")
        }
        let version: Int16 = key.getBigEndian(at: 0)
        guard version == Self.keyVersion else {
            throw ControlRecordError(.unsupportedKeyVersion, "key version \(version) (this version reads \(Self.keyVersion))")
        }
        let typeID: UInt16 = key.getBigEndian(at: 2)
        switch ControlRecordType(rawValue: typeID) {
        case nil:
            self = .unknown(type: typeID)
        case .leaderChange:
            self = .leaderChange(leader: try Self.parseLeaderChange(value))
        }
    }

    private static func parseLeaderChange(_ value: [UInt8]?) throws -> Int32 {
        guard let value else { throw ControlRecordError(.malformedValue, "the leader change value is null") }
        guard value.count == leaderChangeValueBytes else {
            throw ControlRecordError(.malformedValue,
                                     "the leader change value is \(value.count) bytes, not \(leaderChangeValueBytes)")
        }
        let version: Int16 = value.getBigEndian(at: 0)
        guard version == leaderChangeValueVersion else {
            throw ControlRecordError(.unsupportedValueVersion,
                                     "leader change value version \(version) (this version reads \(leaderChangeValueVersion))")
        }
        return value.getBigEndian(at: 2)
    }
}

/// Why a batch or a record is not a well-formed control record. An operating error: the bytes came
/// from disk or the network.
public struct ControlRecordError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What is wrong, for callers that branch on it.
    public enum Code: Hashable, Sendable {
        /// The batch does not have attributes bit 5 set.
        case notControlBatch
        /// The batch is compressed; control batches are written uncompressed.
        case compressedBatch
        /// The batch holds other than exactly one record.
        case recordCount
        /// The records section does not decode (the `BatchFormatError` is in the detail).
        case undecodableRecords
        /// The key is null or not 4 bytes.
        case malformedKey
        /// The key version is not 0.
        case unsupportedKeyVersion
        /// The value of a known type is null or not the size its type has.
        case malformedValue
        /// The value version of a known type is not 0.
        case unsupportedValueVersion
    }

    /// What is wrong.
    public let code: Code
    /// The specifics, for people.
    public let detail: String

    /// An error with `code`, described by `detail`.
    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    /// `malformed control record: the key is 3 bytes, not 4`.
    public var description: String { "malformed control record: \(detail)" }
}

extension RecordBatchHeader {
    /// Attributes bit 5: the batch's records are control records, not user data.
    public static let controlAttribute: Int16 = 0x20
}

extension RecordBatch {
    /// The batch a new leader of a partition appends at the start of term `term`: a control batch of one
    /// leader-change record naming `leader`, with `term` in the partition leader epoch field. No producer
    /// (id, epoch and base sequence -1) and no compression; base offset 0, which the log overwrites.
    public static func leaderChangeMarker(leader: Int32, term: Int32, timestamp: Int64) -> RecordBatch {
        let record = Record(offset: 0, timestamp: timestamp, key: ControlRecord.key(.leaderChange),
                            value: ControlRecord.leaderChangeValue(leader: leader))
        var header = RecordBatchHeader(describing: [record], codec: .none, partitionLeaderEpoch: term)
        header.attributes |= RecordBatchHeader.controlAttribute
        var bytes = [UInt8](repeating: 0, count: RecordBatchHeader.size)
        encodeRecords([record], baseOffset: header.baseOffset, baseTimestamp: header.baseTimestamp, into: &bytes)
        return finish(header: header, bytes: bytes)
    }

    /// The control record of this batch, which must be a control batch, uncompressed, holding exactly
    /// one record (what Sluice writes). The CRC is not checked here: validate untrusted bytes first.
    public func controlRecord(limits: Limits = .default) throws -> ControlRecord {
        try bytes.withUnsafeBytes { raw in try RecordBatch.controlRecord(in: raw, limits: limits) }
    }

    /// The control record of the batch held in `batch` (header included); see `controlRecord(limits:)`.
    public static func controlRecord(in batch: UnsafeRawBufferPointer, limits: Limits = .default) throws -> ControlRecord {
        let header: RecordBatchHeader
        let records: [Record]
        do {
            header = try validateHeader(batch, limits: limits)
            guard header.isControl else {
                throw ControlRecordError(.notControlBatch, "attributes \(header.attributes) do not have the control bit (0x20)")
            }
            guard header.codec == CompressionCodec.none else {
                throw ControlRecordError(.compressedBatch, "the batch is compressed (codec id \(header.codecID))")
            }
            guard header.recordCount == 1 else {
                throw ControlRecordError(.recordCount, "a control batch holds one record, this one \(header.recordCount)")
            }
            guard batch.count >= header.totalSize else {
                throw BatchFormatError.truncated(needed: header.totalSize, available: batch.count)
            }
            let section = UnsafeRawBufferPointer(rebasing: batch[RecordBatchHeader.size..<header.totalSize])
            records = try decodeRecords(section: section, header: header, limits: limits)
        } catch let error as BatchFormatError {
            throw ControlRecordError(.undecodableRecords, "\(error)")
        }
        guard let record = records.first else { preconditionFailure("decodeRecords returns exactly recordCount (1) records") }
        return try ControlRecord(key: record.key, value: record.value)
    }
}
