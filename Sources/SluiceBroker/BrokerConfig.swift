import SluiceCore
import SluiceWire

/// Everything `sluiced` can be told, with embedded defaults: a single node with data in `./data`,
/// listening on `127.0.0.1:9400`.
///
/// Sources, highest precedence first: command-line flags, `SLUICE_*` environment variables, the TOML
/// file given with `--config`, the defaults here. (Flags beat the environment, which beats the file,
/// so a one-off override never needs an edited file.) After every source, `validate()` checks the settings
/// that depend on each other and fills in what the cluster entry implies.
public struct BrokerConfig: Sendable, Hashable {
    /// This broker's node id (`node-id`, default 1); with `cluster` set it must be given and be a member.
    public var nodeId: Int32 = 1 { didSet { nodeIdSource = nodeIdSource ?? "node-id" } }
    /// Host to bind (`listen` is `host:port`); with `cluster` set it may differ from the member entry's
    /// host (0.0.0.0 binds every interface) but the port may not.
    public var host = "127.0.0.1" { didSet { listenSource = listenSource ?? "listen" } }
    /// Port to bind; 0 picks a free one (tests), which a cluster member cannot do.
    public var port = 9400 { didSet { listenSource = listenSource ?? "listen" } }
    /// Where partitions and internal topics live (`data-dir`, default `./data`); one broker per directory.
    public var dataDirectory = "./data"
    /// Least severe log level printed (`log-level`, default `info`).
    public var logLevel = "info"
    /// Largest request frame accepted (`frame-bytes-max`).
    public var frameBytesMax = 100 * 1024 * 1024
    /// Requests of one connection being worked on or waiting to be answered; reading pauses beyond it.
    public var connectionRequestsInFlightMax = 256
    /// Threads for file I/O and fsync (never the event loops).
    public var ioThreads = 8
    /// Longest a fetch may be held waiting for data.
    public var fetchWaitMsMax: Int32 = 30_000
    /// Largest record bytes in one fetch response.
    public var fetchResponseBytesMax = 64 * 1024 * 1024
    /// How often retention and compaction run.
    public var retentionCheckIntervalMs: Int64 = 60_000
    /// Most topics the broker holds, and most partitions per topic.
    public var topicsMax = 10_000
    public var partitionsPerTopicMax: Int32 = 10_000
    /// Partitions of `__consumer_offsets`.
    public var offsetsTopicPartitions: Int32 = 1
    /// Threads that run processor tasks (CPU work: JSON, windows, output batches).
    public var processorThreads = 2
    /// Most window-state bytes one processor task may hold; reaching it pauses the task with an error.
    public var processorStateBytesMax = 64 << 20
    /// How often a processor task checkpoints its state and input offset (replay after a crash starts there).
    public var processorCheckpointIntervalMs: Int64 = 1_000
    /// Topic-setting defaults (`[topic-defaults]` table), by Kafka key.
    public var topicDefaults: [String: String] = [:]

    /// Static cluster membership (`cluster = "1@10.0.0.1:9400,2@10.0.0.2:9400,3@10.0.0.3:9400"`); nil
    /// (the default, or an empty value) runs one broker on its own, as before replication existed.
    public var cluster: ClusterConfig? = nil
    /// The length of one Raft tick (`raft-tick-ms`, 5...10000, default 50): every Raft group's timeouts
    /// count in ticks, so this scales them all together.
    public var raftTickMs: Int64 = 50
    /// Election timeout in ticks (`raft-election-ticks`, 2...1000, default 10): a follower that hears no
    /// leader for a random time in [ticks, 2 * ticks) campaigns. The default takes 0.5 to 1 s.
    public var raftElectionTicks = 10
    /// A leader's heartbeat interval in ticks (`raft-heartbeat-ticks`, default 1); must be below
    /// `raftElectionTicks` so that followers hear a live leader before they time out.
    public var raftHeartbeatTicks = 1
    /// Most entry bytes in one append message to a follower (`raft-append-bytes-max`, 1 KiB...1 GiB,
    /// default 1 MiB); one larger entry still travels alone, so a follower always makes progress.
    public var raftAppendBytesMax = 1 << 20

    /// Where `listen` and `node-id` were given (a flag, variable or file line; a direct assignment counts
    /// as "given" too); nil while they are defaults, which is when `validate()` may fill them in.
    private(set) var listenSource: String?
    private(set) var nodeIdSource: String?

    /// The embedded defaults.
    public init() {}

    /// The `host:port` form.
    public var listen: String { "\(host):\(port)" }

    /// A refused setting, naming where it came from and what is accepted.
    public struct Error: Swift.Error, CustomStringConvertible, Sendable {
        /// The readable message.
        public var description: String
        /// An error with message `description`.
        public init(_ description: String) { self.description = description }
    }

    /// Applies one setting by its file/flag name; `source` names where it came from for error messages.
    public mutating func set(_ key: String, _ value: String, source: String) throws {
        func int(_ range: ClosedRange<Int>) throws -> Int {
            guard let number = Int(value), range.contains(number) else {
                throw Error("\(source): \(key) must be an integer in \(range.lowerBound)...\(range.upperBound), got '\(value)'")
            }
            return number
        }
        switch key {
        case "node-id":
            nodeId = Int32(try int(0...Int(Int32.max)))
            nodeIdSource = source
        case "listen":
            guard let (host, port) = Self.parseHostPort(value) else {
                throw Error("\(source): listen must be host:port (for example 127.0.0.1:9400), got '\(value)'")
            }
            self.host = host
            self.port = port
            listenSource = source
        case "data-dir":
            guard !value.isEmpty else { throw Error("\(source): data-dir must not be empty") }
            dataDirectory = value
        case "log-level":
            guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(value) else {
                throw Error("\(source): log-level must be trace, debug, info, notice, warning, error or critical, got '\(value)'")
            }
            logLevel = value
        case "frame-bytes-max": frameBytesMax = try int(1024...(1 << 30))
        case "io-threads": ioThreads = try int(1...256)
        case "fetch-wait-ms-max": fetchWaitMsMax = Int32(try int(0...300_000))
        case "retention-check-interval-ms": retentionCheckIntervalMs = Int64(try int(100...86_400_000))
        case "processor-threads": processorThreads = try int(1...64)
        case "processor-state-bytes-max": processorStateBytesMax = try int((1 << 20)...(1 << 40))
        case "processor-checkpoint-interval-ms": processorCheckpointIntervalMs = Int64(try int(10...3_600_000))
        case "cluster": cluster = try Self.parseCluster(value, source: source)
        case "raft-tick-ms": raftTickMs = Int64(try int(5...10_000))
        case "raft-election-ticks": raftElectionTicks = try int(2...1_000)
        // Below the largest election timeout; validate() compares it with the one actually set.
        case "raft-heartbeat-ticks": raftHeartbeatTicks = try int(1...999)
        case "raft-append-bytes-max": raftAppendBytesMax = try int((1 << 10)...(1 << 30))
        default:
            if key.hasPrefix("topic-defaults.") {
                let topicKey = String(key.dropFirst("topic-defaults.".count))
                do {
                    _ = try TopicConfig.validated([:], applying: [ConfigEntry(key: topicKey, value: value)], defaults: BrokerDefaults())
                } catch let error as WireError {
                    throw Error("\(source): \(error.message)")
                }
                topicDefaults[topicKey] = value
                return
            }
            throw Error("\(source): unknown setting '\(key)'; known: \(Self.settingKeys.joined(separator: ", ")), [topic-defaults] keys")
        }
    }

    /// An empty value means "no cluster", so `--cluster ''` or `SLUICE_CLUSTER=` undoes a file's list.
    private static func parseCluster(_ value: String, source: String) throws -> ClusterConfig? {
        guard !value.trimmed().isEmpty else { return nil }
        do {
            return try ClusterConfig.parse(value)
        } catch {
            // "--cluster: entry 2 ..." needs no key name; "b.toml line 3, cluster: entry 2 ..." does.
            let context = source.lowercased().contains("cluster") ? source : "\(source), cluster"
            throw Error("\(context): \(error)")
        }
    }

    /// Checks the settings that depend on each other, once every source is applied, and fills in what
    /// the cluster implies: without an explicit `listen`, a member binds its own entry's `host:port`.
    /// Without `cluster` only the Raft timing is checked, and nothing changes.
    public mutating func validate() throws {
        guard raftHeartbeatTicks < raftElectionTicks else {
            throw Error("raft-heartbeat-ticks (\(raftHeartbeatTicks)) must be less than raft-election-ticks (\(raftElectionTicks)): followers would time out between a live leader's heartbeats")
        }
        guard let cluster else { return }
        let ids = cluster.ids.map(String.init).joined(separator: ", ")
        guard let nodeIdSource else {
            throw Error("node-id must be given with cluster: say which of the members \(ids) this broker is")
        }
        guard let entry = cluster.member(nodeId) else {
            throw Error("\(nodeIdSource): node-id \(nodeId) is not a member of the cluster; its members are \(ids)")
        }
        guard let listenSource else {
            (host, port) = (entry.host, entry.port)
            return
        }
        // Others reach this broker at its entry, so binding another port would leave them knocking at
        // a closed door. Another host is fine: 0.0.0.0 or an internal interface behind the advertised name.
        guard port == entry.port else {
            throw Error("\(listenSource): listen port \(port) differs from this broker's cluster entry \(entry); other brokers and clients connect to \(entry.address), so listen on port \(entry.port) (any host, e.g. 0.0.0.0:\(entry.port)) or correct the entry")
        }
    }

    /// Applies `SLUICE_*` variables: `SLUICE_DATA_DIR` sets `data-dir`, and so on.
    public mutating func apply(environment: [String: String]) throws {
        for (name, value) in environment.sorted(by: { $0.key < $1.key }) where name.hasPrefix("SLUICE_") {
            let key = String(name.dropFirst("SLUICE_".count).lowercased().map { $0 == "_" ? "-" : $0 })
            guard Self.environmentKeys.contains(key) else { continue }
            try set(key, value, source: "environment variable \(name)")
        }
    }

    /// Every top-level setting, in the order error messages list them.
    static let settingKeys = [
        "node-id", "listen", "data-dir", "log-level", "frame-bytes-max", "io-threads", "fetch-wait-ms-max",
        "retention-check-interval-ms", "processor-threads", "processor-state-bytes-max", "processor-checkpoint-interval-ms",
        "cluster", "raft-tick-ms", "raft-election-ticks", "raft-heartbeat-ticks", "raft-append-bytes-max",
    ]

    static let environmentKeys = Set(settingKeys)

    /// Applies a TOML file's text (the subset `TOMLSubset` reads).
    public mutating func apply(toml text: String, path: String) throws {
        let entries: [(key: String, value: String, line: Int)]
        do { entries = try TOMLSubset.parse(text) } catch let error as TOMLSubset.Error {
            throw Error("\(path): \(error)")
        }
        for entry in entries {
            try set(entry.key, entry.value, source: "\(path) line \(entry.line)")
        }
    }

    static func parseHostPort(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let host = String(text[..<colon])
        guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        return (host, port)
    }

    var defaults: BrokerDefaults {
        var defaults = BrokerDefaults()
        for (key, value) in topicDefaults { defaults.values[key] = value }
        return defaults
    }
}

/// The part of TOML a broker config needs: `key = value` lines, `[table]` headers (keys inside are
/// prefixed `table.`), `#` comments, basic strings with `\"`, `\\`, `\n`, `\t` escapes, literal
/// strings, integers (with `_`), booleans and floats, and quoted keys (`"retention.ms" = ...`).
/// Arrays, inline tables and multi-line strings are refused with the line number.
enum TOMLSubset {
    struct Error: Swift.Error, CustomStringConvertible {
        var line: Int
        var reason: String
        var description: String { "line \(line): \(reason)" }
    }

    static func parse(_ text: String) throws -> [(key: String, value: String, line: Int)] {
        var entries: [(key: String, value: String, line: Int)] = []
        var table = ""
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let line = stripComment(rawLine).trimmed()
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]"), !line.hasPrefix("[[") else {
                    throw Error(line: number, reason: "a table header looks like [name]")
                }
                table = String(line.dropFirst().dropLast()).trimmed()
                guard !table.isEmpty else { throw Error(line: number, reason: "empty table name") }
                continue
            }
            guard let equals = keyValueSplit(line) else {
                throw Error(line: number, reason: "expected key = value, got '\(line)'")
            }
            var key = String(line[..<equals]).trimmed()
            if key.hasPrefix("\"") && key.hasSuffix("\"") && key.count >= 2 { key = String(key.dropFirst().dropLast()) }
            guard !key.isEmpty else { throw Error(line: number, reason: "missing key before '='") }
            let value = try parseValue(String(line[line.index(after: equals)...]).trimmed(), line: number)
            entries.append((table.isEmpty ? key : "\(table).\(key)", value, number))
        }
        return entries
    }

    /// The '=' outside a quoted key.
    private static func keyValueSplit(_ line: String) -> String.Index? {
        var quoted = false
        for index in line.indices {
            if line[index] == "\"" { quoted.toggle() }
            if line[index] == "=" && !quoted { return index }
        }
        return nil
    }

    private static func stripComment(_ line: Substring) -> Substring {
        var quote: Character? = nil
        var escaped = false
        for index in line.indices {
            let c = line[index]
            if let q = quote {
                if escaped { escaped = false } else if c == "\\" && q == "\"" { escaped = true } else if c == q { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == "#" {
                return line[..<index]
            }
        }
        return line
    }

    private static func parseValue(_ text: String, line: Int) throws -> String {
        if text.hasPrefix("\"\"\"") || text.hasPrefix("'''") {
            throw Error(line: line, reason: "multi-line strings are not supported")
        }
        if text.hasPrefix("\"") {
            guard text.count >= 2, text.hasSuffix("\"") else { throw Error(line: line, reason: "unterminated string") }
            var result = ""
            var escaped = false
            for c in text.dropFirst().dropLast() {
                if escaped {
                    switch c {
                    case "n": result.append("\n")
                    case "t": result.append("\t")
                    case "\\": result.append("\\")
                    case "\"": result.append("\"")
                    default: throw Error(line: line, reason: "unsupported escape \\\(c)")
                    }
                    escaped = false
                } else if c == "\\" {
                    escaped = true
                } else {
                    result.append(c)
                }
            }
            return result
        }
        if text.hasPrefix("'") {
            guard text.count >= 2, text.hasSuffix("'") else { throw Error(line: line, reason: "unterminated string") }
            return String(text.dropFirst().dropLast())
        }
        if text == "true" || text == "false" { return text }
        let digits = text.filter { $0 != "_" }
        if Int64(digits) != nil || Double(digits) != nil { return digits }
        if text.hasPrefix("[") || text.hasPrefix("{") {
            throw Error(line: line, reason: "arrays and inline tables are not supported")
        }
        throw Error(line: line, reason: "cannot read value '\(text)': strings need quotes")
    }
}

extension StringProtocol {
    func trimmed() -> String {
        var s = Substring(self)
        while let first = s.first, first.isWhitespace { s.removeFirst() }
        while let last = s.last, last.isWhitespace { s.removeLast() }
        return String(s)
    }
}
