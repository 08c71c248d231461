import SluiceCore
import SluiceLog
import SluiceWire

/// A topic's settings, named as in Kafka (`retention.ms`, `segment.bytes`, ...), with the broker's
/// defaults underneath. Only keys that were set on the topic are stored; the rest follow the defaults.
struct TopicConfig: Sendable, Hashable {
    /// The keys a topic accepts, in the order `describe` lists them.
    static let keys = [
        "cleanup.policy", "compression.type", "flush.interval.ms", "flush.policy", "max.message.bytes",
        "retention.bytes", "retention.ms", "segment.bytes", "segment.ms",
    ]

    /// Largest value `max.message.bytes` may take, and the bound every log applies to stored batches.
    static let maxMessageBytesCeiling = 64 * 1024 * 1024

    /// Values set on the topic (validated).
    private(set) var overrides: [String: String]

    init(overrides: [String: String] = [:]) { self.overrides = overrides }

    /// Validates and applies `entries`: a nil value removes the override.
    static func validated(_ base: [String: String], applying entries: [ConfigEntry], defaults: BrokerDefaults) throws -> TopicConfig {
        var overrides = base
        for entry in entries {
            guard keys.contains(entry.key) else {
                throw WireError(.invalidConfig, "unknown topic config '\(entry.key)'; known: \(keys.joined(separator: ", "))")
            }
            if let value = entry.value {
                try validate(key: entry.key, value: value)
                overrides[entry.key] = value
            } else {
                overrides[entry.key] = nil
            }
        }
        let config = TopicConfig(overrides: overrides)
        _ = try config.logConfig(defaults: defaults)
        return config
    }

    private static func validate(key: String, value: String) throws {
        func integer(min: Int64, allowMinusOne: Bool = false) throws {
            guard let number = Int64(value), number >= min || (allowMinusOne && number == -1) else {
                let extra = allowMinusOne ? " (or -1 for no limit)" : ""
                throw WireError(.invalidConfig, "\(key) must be an integer ≥ \(min)\(extra), got '\(value)'")
            }
        }
        switch key {
        case "cleanup.policy":
            guard CleanupPolicy(name: value) != nil else {
                throw WireError(.invalidConfig, "cleanup.policy must be delete, compact or compact,delete, got '\(value)'")
            }
        case "compression.type":
            guard ["producer", "none", "lz4", "zstd"].contains(value) else {
                throw WireError(.invalidConfig, "compression.type must be producer, none, lz4 or zstd, got '\(value)'")
            }
        case "flush.policy":
            guard FlushPolicy(name: value) != nil else {
                throw WireError(.invalidConfig, "flush.policy must be always, interval or os, got '\(value)'")
            }
        case "flush.interval.ms": try integer(min: 1)
        case "max.message.bytes":
            try integer(min: Int64(RecordBatchHeader.size))
            if let number = Int64(value), number > Int64(maxMessageBytesCeiling) {
                throw WireError(.invalidConfig, "max.message.bytes may be at most \(maxMessageBytesCeiling) (64 MiB), got \(value)")
            }
        case "retention.bytes", "retention.ms": try integer(min: 1, allowMinusOne: true)
        case "segment.bytes": try integer(min: 1024)
        case "segment.ms": try integer(min: 1)
        default: break
        }
    }

    /// The effective value of every key, and whether it is the default.
    func effective(defaults: BrokerDefaults) -> [ConfigEntry] {
        Self.keys.map { key in
            if let value = overrides[key] { return ConfigEntry(key: key, value: value, isDefault: false) }
            return ConfigEntry(key: key, value: defaults.value(for: key), isDefault: true)
        }
    }

    func value(_ key: String, defaults: BrokerDefaults) -> String {
        overrides[key] ?? defaults.value(for: key)
    }

    /// Largest batch a producer may send to this topic.
    func maxMessageBytes(defaults: BrokerDefaults) -> Int {
        Int(value("max.message.bytes", defaults: defaults)) ?? defaults.maxMessageBytes
    }

    /// The log settings these values mean.
    func logConfig(defaults: BrokerDefaults) throws -> LogConfig {
        func int(_ key: String) -> Int64? {
            let number = Int64(value(key, defaults: defaults)) ?? -1
            return number < 0 ? nil : number
        }
        let interval = Int(int("flush.interval.ms") ?? 1000)
        guard let flush = FlushPolicy(name: value("flush.policy", defaults: defaults), intervalMilliseconds: interval),
              let cleanup = CleanupPolicy(name: value("cleanup.policy", defaults: defaults)) else {
            throw WireError(.invalidConfig, "flush.policy or cleanup.policy has an invalid value")
        }
        // The log's own bound on stored batches is fixed: max.message.bytes only limits what producers
        // may send now. Tied to it, lowering the setting made recovery treat older, larger batches as
        // corrupt and cut them off.
        let limits = Limits(batchBytesMax: Self.maxMessageBytesCeiling,
                            batchDecompressedBytesMax: defaults.limits.batchDecompressedBytesMax,
                            batchRecordsMax: defaults.limits.batchRecordsMax, recordHeadersMax: defaults.limits.recordHeadersMax)
        let config = LogConfig(
            segmentBytes: Int(int("segment.bytes") ?? Int64(defaults.segmentBytes)),
            segmentMilliseconds: int("segment.ms"),
            retentionMilliseconds: int("retention.ms"),
            retentionBytes: int("retention.bytes"),
            flushPolicy: flush, cleanupPolicy: cleanup, limits: limits)
        do { try config.validate() } catch { throw WireError(.invalidConfig, "\(error)") }
        return config
    }
}

/// Broker-wide defaults for topic settings (`[topic-defaults]` in the config file).
struct BrokerDefaults: Sendable, Hashable {
    var values: [String: String] = [
        "cleanup.policy": "delete",
        "compression.type": "producer",
        "flush.interval.ms": "1000",
        "flush.policy": "always",
        "max.message.bytes": "\(1 << 20)",
        "retention.bytes": "-1",
        "retention.ms": "\(7 * 24 * 3_600_000)",
        "segment.bytes": "\(1 << 30)",
        "segment.ms": "\(7 * 24 * 3_600_000)",
    ]
    var limits = Limits.default

    func value(for key: String) -> String { values[key] ?? "" }
    var maxMessageBytes: Int { Int(value(for: "max.message.bytes")) ?? (1 << 20) }
    var segmentBytes: Int { Int(value(for: "segment.bytes")) ?? (1 << 30) }
}
