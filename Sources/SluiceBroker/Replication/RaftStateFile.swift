import SluiceCore
import SluiceRaft

/// The bytes of a partition replica's `raft-state` file and of a partition snapshot's data, specified in
/// storage-format/replication.md.
///
/// ```
/// 0  magic "SRST"   4  version u8 = 1   5  term u64   13 vote u64 (0 = none)   21 commit u64
/// 29 anchor index u64   37 anchor term u64   45 anchor offset i64   53 crc32c u32 over bytes 0..<53
/// ```
enum RaftStateFile {
    static let name = "raft-state"
    static let size = 57
    static let magic: [UInt8] = Array("SRST".utf8)
    static let version: UInt8 = 1

    /// The position just before the first batch a replica holds: index and term of the entry before
    /// it (0, 0 for a log that never lost a prefix) and the offset where that first batch starts.
    struct Anchor: Equatable, Sendable {
        var index: UInt64
        var term: UInt64
        var offset: Int64
    }

    struct State: Equatable, Sendable {
        var hardState: HardState
        var anchor: Anchor
    }

    static func encode(_ state: State) -> [UInt8] {
        var bytes = magic
        bytes.reserveCapacity(size)
        bytes.append(version)
        bytes.appendBigEndian(state.hardState.term)
        bytes.appendBigEndian(state.hardState.vote ?? 0)
        bytes.appendBigEndian(state.hardState.commit)
        bytes.appendBigEndian(state.anchor.index)
        bytes.appendBigEndian(state.anchor.term)
        bytes.appendBigEndian(state.anchor.offset)
        bytes.appendBigEndian(CRC32C.checksum(bytes))
        assert(bytes.count == size)
        return bytes
    }

    static func decode(_ bytes: [UInt8], path: String) throws -> State {
        func damaged(_ reason: String) -> ReplicationError { .damagedStateFile(path: path, reason: reason) }
        guard bytes.count == size else { throw damaged("it holds \(bytes.count) bytes, not \(size)") }
        guard Array(bytes[0..<4]) == magic else { throw damaged("it does not start with \"SRST\"") }
        guard bytes[4] == version else { throw damaged("unknown version \(bytes[4])") }
        let stored: UInt32 = bytes.getBigEndian(at: 53)
        let computed = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<53])) }
        guard stored == computed else { throw damaged("its CRC is \(stored), the bytes give \(computed)") }
        let vote: UInt64 = bytes.getBigEndian(at: 13)
        let state = State(
            hardState: HardState(term: bytes.getBigEndian(at: 5), vote: vote == 0 ? nil : vote, commit: bytes.getBigEndian(at: 21)),
            anchor: Anchor(index: bytes.getBigEndian(at: 29), term: bytes.getBigEndian(at: 37), offset: bytes.getBigEndian(at: 45)))
        // The anchor's term may exceed the saved term: a snapshot's anchor is written before the Ready's
        // hard state, and a crash may fall in between.
        guard state.anchor.offset >= 0 else { throw damaged("negative anchor offset \(state.anchor.offset)") }
        return state
    }

    /// A partition snapshot carries no data but the offset its log restarts at: version u8 = 1, offset i64.
    static func snapshotData(offset: Int64) -> [UInt8] {
        var bytes: [UInt8] = [version]
        bytes.appendBigEndian(offset)
        return bytes
    }

    static func snapshotOffset(_ data: [UInt8]) throws -> Int64 {
        guard data.count == 9, data[0] == version else {
            throw ReplicationError.malformedSnapshot("a partition snapshot is 9 bytes starting with version 1; got \(data.count) bytes")
        }
        let offset: Int64 = data.getBigEndian(at: 1)
        guard offset >= 0 else { throw ReplicationError.malformedSnapshot("negative log start offset \(offset)") }
        return offset
    }
}

/// Operating errors of replication: each names the replica (directory) or the input, and what to do.
enum ReplicationError: Error, Equatable, CustomStringConvertible {
    case damagedStateFile(path: String, reason: String)
    case termGoesBack(directory: String, offset: Int64, term: UInt64, previous: UInt64)
    case termTooLarge(UInt64)
    case malformedSnapshot(String)
    case malformedEntry(String)
    case tooManyGroups(limit: Int)

    var description: String {
        switch self {
        case .damagedStateFile(let path, let reason):
            return "the Raft state file \(path) is damaged (\(reason)); this replica cannot know whom it voted for. "
                + "Remove the partition directory so it rejoins empty and copies the log from the leader"
        case .termGoesBack(let directory, let offset, let term, let previous):
            return "the batch at offset \(offset) in \(directory) has leader epoch \(term), below the \(previous) of the "
                + "batches before it; the log was not written by replication. Remove the partition directory to re-copy it"
        case .termTooLarge(let term):
            return "Raft term \(term) does not fit a batch's 32-bit leader epoch"
        case .malformedSnapshot(let reason):
            return "malformed partition snapshot: \(reason)"
        case .malformedEntry(let reason):
            return "malformed replicated entry: \(reason)"
        case .tooManyGroups(let limit):
            return "this broker already runs \(limit) Raft groups, its limit; spread partitions over more brokers"
        }
    }
}
