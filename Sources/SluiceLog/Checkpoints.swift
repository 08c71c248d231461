import SluiceCore

/// The per-partition checkpoint files (storage-format/checkpoints.md). Each is a fixed-size record with
/// a magic, a version and a trailing CRC-32C, written through `FileSystem.writeAtomically`. A file whose
/// size, magic, version or CRC is wrong reads as `.invalid`, and recovery falls back to the safe value.
public enum Checkpoints {
    public static let recoveryPointFile = "recovery-point.checkpoint"
    public static let logStartOffsetFile = "log-start-offset.checkpoint"
    public static let cleanShutdownFile = "clean-shutdown"

    /// Where recovery may start: every batch below `offset` is durable, with its index entries.
    public struct RecoveryPoint: Hashable, Sendable {
        public var offset: Int64
        /// The segment holding the recovery point.
        public var segmentBaseOffset: Int64
        /// Byte position in that segment's `.log` where the first batch at or after `offset` starts.
        public var position: Int64

        public init(offset: Int64, segmentBaseOffset: Int64, position: Int64) {
            self.offset = offset
            self.segmentBaseOffset = segmentBaseOffset
            self.position = position
        }
    }

    /// The outcome of reading a checkpoint file.
    public enum ReadResult<Value: Sendable>: Sendable {
        case missing
        case invalid(String)
        case valid(Value)
    }

    static let recoveryPointMagic: [UInt8] = Array("SLRP".utf8)
    static let logStartMagic: [UInt8] = Array("SLLS".utf8)
    static let version: UInt16 = 1

    public static func encode(_ point: RecoveryPoint) -> [UInt8] {
        var bytes = recoveryPointMagic
        bytes.appendBigEndian(version)
        bytes.appendBigEndian(UInt16(0))
        bytes.appendBigEndian(point.offset)
        bytes.appendBigEndian(point.segmentBaseOffset)
        bytes.appendBigEndian(point.position)
        bytes.appendBigEndian(CRC32C.checksum(bytes))
        return bytes
    }

    public static func decodeRecoveryPoint(_ bytes: [UInt8]) -> ReadResult<RecoveryPoint> {
        if let problem = checkFrame(bytes, magic: recoveryPointMagic, size: 36) { return .invalid(problem) }
        let point = RecoveryPoint(
            offset: bytes.getBigEndian(at: 8),
            segmentBaseOffset: bytes.getBigEndian(at: 16),
            position: bytes.getBigEndian(at: 24))
        guard point.offset >= 0, point.segmentBaseOffset >= 0, point.position >= 0,
            point.segmentBaseOffset <= point.offset
        else { return .invalid("fields out of range: \(point)") }
        return .valid(point)
    }

    public static func encode(logStartOffset: Int64) -> [UInt8] {
        var bytes = logStartMagic
        bytes.appendBigEndian(version)
        bytes.appendBigEndian(UInt16(0))
        bytes.appendBigEndian(logStartOffset)
        bytes.appendBigEndian(CRC32C.checksum(bytes))
        return bytes
    }

    public static func decodeLogStartOffset(_ bytes: [UInt8]) -> ReadResult<Int64> {
        if let problem = checkFrame(bytes, magic: logStartMagic, size: 20) { return .invalid(problem) }
        let offset: Int64 = bytes.getBigEndian(at: 8)
        guard offset >= 0 else { return .invalid("negative log start offset \(offset)") }
        return .valid(offset)
    }

    /// nil when size, magic, version and CRC are right; otherwise what is wrong.
    static func checkFrame(_ bytes: [UInt8], magic: [UInt8], size: Int) -> String? {
        guard bytes.count == size else { return "\(bytes.count) bytes, expected \(size)" }
        guard Array(bytes[0..<4]) == magic else { return "bad magic" }
        let version: UInt16 = bytes.getBigEndian(at: 4)
        guard version == Checkpoints.version else { return "unsupported version \(version)" }
        let stored: UInt32 = bytes.getBigEndian(at: size - 4)
        let computed = CRC32C.checksum(Array(bytes[0..<(size - 4)]))
        guard stored == computed else { return "CRC mismatch" }
        return nil
    }

    static func read<Value>(
        _ directory: String,
        _ name: String,
        decode: ([UInt8]) -> ReadResult<Value>
    ) -> ReadResult<Value> {
        do {
            guard let bytes = try FileSystem.readSmallFile("\(directory)/\(name)", limit: 4096) else { return .missing }
            return decode(bytes)
        } catch {
            return .invalid("\(error)")
        }
    }

    public static func readRecoveryPoint(_ directory: String) -> ReadResult<RecoveryPoint> {
        read(directory, recoveryPointFile, decode: decodeRecoveryPoint)
    }

    public static func readLogStartOffset(_ directory: String) -> ReadResult<Int64> {
        read(directory, logStartOffsetFile, decode: decodeLogStartOffset)
    }

    public static func write(_ point: RecoveryPoint, directory: String) throws {
        try FileSystem.writeAtomically(encode(point), to: "\(directory)/\(recoveryPointFile)", directory: directory)
    }

    public static func write(logStartOffset: Int64, directory: String) throws {
        try FileSystem.writeAtomically(
            encode(logStartOffset: logStartOffset), to: "\(directory)/\(logStartOffsetFile)", directory: directory)
    }
}
