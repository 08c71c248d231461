import SluiceCore

/// When appended bytes are forced to stable storage.
public enum FlushPolicy: Sendable, Hashable, CustomStringConvertible {
    /// fsync before `append` returns; appends that arrive while an fsync runs share the next one.
    case always
    /// fsync at most every so many milliseconds (and at roll and close).
    case interval(milliseconds: Int)
    /// Leave it to the operating system (fsync only at roll, checkpoints and close).
    case os

    /// Parses `always`, `os` or `interval` (with `intervalMilliseconds`).
    public init?(name: String, intervalMilliseconds: Int = 1000) {
        switch name.lowercased() {
        case "always": self = .always
        case "interval": self = .interval(milliseconds: intervalMilliseconds)
        case "os": self = .os
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .always: return "always"
        case .interval(let ms): return "interval(\(ms) ms)"
        case .os: return "os"
        }
    }
}

/// What happens to old data: deleted by retention, compacted by key, or both.
public struct CleanupPolicy: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    public static let delete = CleanupPolicy(rawValue: 1)
    public static let compact = CleanupPolicy(rawValue: 2)

    /// Parses Kafka's spelling: `delete`, `compact` or `compact,delete`.
    public init?(name: String) {
        var policy: CleanupPolicy = []
        for part in name.split(separator: ",") {
            switch part.trimmingWhitespace() {
            case "delete": policy.insert(.delete)
            case "compact": policy.insert(.compact)
            default: return nil
            }
        }
        guard !policy.isEmpty else { return nil }
        self = policy
    }
}

extension Substring {
    func trimmingWhitespace() -> Substring {
        var s = self
        while let first = s.first, first.isWhitespace { s.removeFirst() }
        while let last = s.last, last.isWhitespace { s.removeLast() }
        return s
    }
}

/// Per-log settings, named after the Kafka topic configs they mirror.
public struct LogConfig: Sendable, Hashable {
    /// Roll the active segment before it would exceed this many bytes (`segment.bytes`).
    public var segmentBytes: Int
    /// Roll the active segment once it is this old (`segment.ms`); nil = never by age.
    public var segmentMilliseconds: Int64?
    /// Delete closed segments whose newest record is older than this (`retention.ms`); nil = forever.
    public var retentionMilliseconds: Int64?
    /// Delete the oldest closed segments while the log is larger than this (`retention.bytes`); nil = no bound.
    public var retentionBytes: Int64?
    /// Bytes between sparse index entries (`index.interval.bytes`).
    public var indexIntervalBytes: Int
    public var flushPolicy: FlushPolicy
    public var cleanupPolicy: CleanupPolicy
    /// How long a tombstone survives compaction after its timestamp (`delete.retention.ms`).
    public var deleteRetentionMilliseconds: Int64
    /// Write the recovery-point checkpoint after this many newly flushed bytes, which bounds the scan
    /// after a crash.
    public var recoveryCheckpointIntervalBytes: Int
    /// Most distinct keys one compaction pass holds in memory; the pass cleans what the map covers.
    public var compactionKeysMax: Int
    public var limits: Limits

    /// Largest segment the index format can address (positions are uint32).
    public static let segmentBytesMax = Int(Int32.max)

    public init(
        segmentBytes: Int = 1 << 30,
        segmentMilliseconds: Int64? = 7 * 24 * 3_600_000,
        retentionMilliseconds: Int64? = 7 * 24 * 3_600_000,
        retentionBytes: Int64? = nil,
        indexIntervalBytes: Int = 4096,
        flushPolicy: FlushPolicy = .always,
        cleanupPolicy: CleanupPolicy = .delete,
        deleteRetentionMilliseconds: Int64 = 24 * 3_600_000,
        recoveryCheckpointIntervalBytes: Int = 64 << 20,
        compactionKeysMax: Int = 1 << 20,
        limits: Limits = .default
    ) {
        self.segmentBytes = segmentBytes
        self.segmentMilliseconds = segmentMilliseconds
        self.retentionMilliseconds = retentionMilliseconds
        self.retentionBytes = retentionBytes
        self.indexIntervalBytes = indexIntervalBytes
        self.flushPolicy = flushPolicy
        self.cleanupPolicy = cleanupPolicy
        self.deleteRetentionMilliseconds = deleteRetentionMilliseconds
        self.recoveryCheckpointIntervalBytes = recoveryCheckpointIntervalBytes
        self.compactionKeysMax = compactionKeysMax
        self.limits = limits
    }

    /// Checks ranges; the log refuses to open with a configuration that fails.
    public func validate() throws {
        guard segmentBytes >= RecordBatchHeader.size && segmentBytes <= LogConfig.segmentBytesMax else {
            throw LogError.invalidConfig("segment.bytes \(segmentBytes) outside \(RecordBatchHeader.size)...\(LogConfig.segmentBytesMax)")
        }
        guard indexIntervalBytes > 0 else { throw LogError.invalidConfig("index.interval.bytes must be positive") }
        if let ms = segmentMilliseconds, ms <= 0 { throw LogError.invalidConfig("segment.ms must be positive") }
        if case .interval(let ms) = flushPolicy, ms <= 0 {
            throw LogError.invalidConfig("flush.interval.ms must be positive")
        }
        guard recoveryCheckpointIntervalBytes > 0 else {
            throw LogError.invalidConfig("recovery checkpoint interval must be positive")
        }
        guard compactionKeysMax > 0 else { throw LogError.invalidConfig("compaction key map size must be positive") }
    }
}
