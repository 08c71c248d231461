import Testing

@testable import SluiceBroker

/// Configuration: the TOML subset, environment variables, precedence and readable errors.
@Suite("broker configuration")
struct BrokerConfigTests {
    @Test("a TOML file sets top-level keys and topic defaults; comments and quoted keys work")
    func toml() throws {
        var config = BrokerConfig()
        try config.apply(toml: """
            # a broker
            listen = "0.0.0.0:9500"   # all interfaces
            data-dir = '/var/lib/sluice'
            io-threads = 1_6
            log-level = "debug"

            [topic-defaults]
            "flush.policy" = "interval"
            "retention.ms" = 86400000
            """, path: "sluiced.toml")
        #expect(config.host == "0.0.0.0" && config.port == 9500)
        #expect(config.dataDirectory == "/var/lib/sluice")
        #expect(config.ioThreads == 16)
        #expect(config.logLevel == "debug")
        #expect(config.topicDefaults == ["flush.policy": "interval", "retention.ms": "86400000"])
        #expect(config.defaults.value(for: "flush.policy") == "interval")
    }

    @Test("errors name the file, the line and what is accepted")
    func tomlErrors() {
        let cases: [(String, String)] = [
            ("listen = 9400", "line 1"),
            ("io-threads = \"many\"", "io-threads must be an integer"),
            ("nonsense = 1", "unknown setting 'nonsense'"),
            ("[topic-defaults]\n\"flush.policy\" = \"sometimes\"", "flush.policy must be always, interval or os"),
            ("ports = [1, 2]", "arrays and inline tables are not supported"),
            ("name = \"unterminated", "unterminated string"),
            ("just words", "expected key = value"),
        ]
        for (text, expected) in cases {
            var config = BrokerConfig()
            do {
                try config.apply(toml: text, path: "b.toml")
                Issue.record("'\(text)' was accepted")
            } catch {
                let message = "\(error)"
                #expect(message.contains("b.toml"), "\(message)")
                #expect(message.contains(expected), "'\(text)': \(message)")
            }
        }
    }

    @Test("SLUICE_* variables apply on top of the file; unknown variables are ignored; bad values are refused")
    func environment() throws {
        var config = BrokerConfig()
        try config.apply(toml: "listen = \"127.0.0.1:9000\"\ndata-dir = \"/from/file\"", path: "f.toml")
        try config.apply(environment: ["SLUICE_DATA_DIR": "/from/env", "SLUICE_BROKERS": "x:1", "HOME": "/root"])
        #expect(config.dataDirectory == "/from/env")
        #expect(config.port == 9000)
        try config.set("data-dir", "/from/flag", source: "--data-dir")
        #expect(config.dataDirectory == "/from/flag")
        #expect(throws: BrokerConfig.Error.self) { try config.apply(environment: ["SLUICE_IO_THREADS": "0"]) }
        #expect(throws: BrokerConfig.Error.self) { try config.set("listen", "nohost", source: "--listen") }
    }

    static let threeBrokers = "1@127.0.0.1:9401,2@127.0.0.1:9402,3@127.0.0.1:9403"

    /// The message `body` throws, or a note that it threw nothing.
    private func message(_ body: () throws -> Void) -> String {
        do {
            try body()
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test("without cluster the configuration is what it was: validate() changes nothing")
    func noCluster() throws {
        var config = BrokerConfig()
        let defaults = config
        try config.validate()
        #expect(config == defaults)
        #expect(config.cluster == nil && config.listen == "127.0.0.1:9400" && config.nodeId == 1)

        try config.apply(toml: "listen = \"0.0.0.0:9500\"\nnode-id = 0", path: "f.toml")
        let fromFile = config
        try config.validate()
        #expect(config == fromFile)
        #expect(config.listen == "0.0.0.0:9500" && config.nodeId == 0)
        // An empty value is "no cluster", so the environment can undo a file's list.
        try config.apply(toml: "cluster = \"\(Self.threeBrokers)\"", path: "f.toml")
        #expect(config.cluster != nil)
        try config.apply(environment: ["SLUICE_CLUSTER": ""])
        #expect(config.cluster == nil)
    }

    @Test("a member without --listen binds its own cluster entry; with it, any host on the entry's port")
    func listenFromCluster() throws {
        var config = BrokerConfig()
        try config.set("cluster", Self.threeBrokers, source: "--cluster")
        try config.set("node-id", "2", source: "--node-id")
        try config.validate()
        #expect(config.listen == "127.0.0.1:9402")
        #expect(config.cluster?.peers(of: config.nodeId).map(\.id) == [1, 3])
        try config.validate()  // a second call finds the defaulted address consistent
        #expect(config.listen == "127.0.0.1:9402")

        var everywhere = BrokerConfig()
        try everywhere.set("cluster", Self.threeBrokers, source: "--cluster")
        try everywhere.set("node-id", "3", source: "--node-id")
        try everywhere.set("listen", "0.0.0.0:9403", source: "--listen")
        try everywhere.validate()
        #expect(everywhere.listen == "0.0.0.0:9403")
    }

    @Test("cluster cross-checks: listen port, node-id membership, node-id given")
    func clusterCrossChecks() throws {
        var mismatch = BrokerConfig()
        try mismatch.set("cluster", Self.threeBrokers, source: "--cluster")
        try mismatch.set("node-id", "1", source: "--node-id")
        try mismatch.set("listen", "0.0.0.0:9500", source: "--listen")
        #expect(message { try mismatch.validate() } == "--listen: listen port 9500 differs from this broker's cluster entry 1@127.0.0.1:9401; other brokers and clients connect to 127.0.0.1:9401, so listen on port 9401 (any host, e.g. 0.0.0.0:9401) or correct the entry")

        // A port assigned in code (as the test harness does) counts as given, so port 0 is refused too.
        var assigned = BrokerConfig()
        assigned.port = 0
        assigned.nodeId = 1
        assigned.cluster = try ClusterConfig.parse(Self.threeBrokers)
        #expect(message { try assigned.validate() }.hasPrefix("listen: listen port 0 differs from this broker's cluster entry 1@127.0.0.1:9401"))

        var stranger = BrokerConfig()
        try stranger.apply(environment: ["SLUICE_CLUSTER": Self.threeBrokers, "SLUICE_NODE_ID": "4"])
        #expect(message { try stranger.validate() } == "environment variable SLUICE_NODE_ID: node-id 4 is not a member of the cluster; its members are 1, 2, 3")

        var anonymous = BrokerConfig()
        try anonymous.set("cluster", Self.threeBrokers, source: "--cluster")
        #expect(message { try anonymous.validate() } == "node-id must be given with cluster: say which of the members 1, 2, 3 this broker is")
    }

    @Test("cluster in the TOML file and the environment; errors name the source and the entry")
    func clusterSources() throws {
        var config = BrokerConfig()
        try config.apply(toml: "node-id = 3\ncluster = \"\(Self.threeBrokers)\"", path: "c.toml")
        #expect(config.cluster?.ids == [1, 2, 3])
        try config.apply(environment: ["SLUICE_CLUSTER": "3@10.0.0.3:9400,1@10.0.0.1:9400"])
        try config.validate()
        #expect(config.cluster?.description == "1@10.0.0.1:9400,3@10.0.0.3:9400")
        #expect(config.listen == "10.0.0.3:9400")

        let bad = "1@127.0.0.1:9401,2@host"
        var fresh = BrokerConfig()
        #expect(message { try fresh.set("cluster", bad, source: "--cluster") } == "--cluster: entry 2 '2@host' has no port; write ID@HOST:PORT")
        #expect(message { try fresh.apply(toml: "\ncluster = \"\(bad)\"", path: "b.toml") } == "b.toml line 2, cluster: entry 2 '2@host' has no port; write ID@HOST:PORT")
        #expect(message { try fresh.apply(environment: ["SLUICE_CLUSTER": bad]) } == "environment variable SLUICE_CLUSTER: entry 2 '2@host' has no port; write ID@HOST:PORT")
        // The TOML subset has no arrays: the list is one string.
        #expect(message { try fresh.apply(toml: "cluster = [\"1@a:1\"]", path: "b.toml") } == "b.toml: line 1: arrays and inline tables are not supported")
        #expect(fresh.cluster == nil)
    }

    @Test("Raft timing: defaults, range edges, every source, and heartbeats faster than elections")
    func raftTiming() throws {
        let defaults = BrokerConfig()
        #expect(defaults.raftTickMs == 50 && defaults.raftElectionTicks == 10)
        #expect(defaults.raftHeartbeatTicks == 1 && defaults.raftAppendBytesMax == 1 << 20)
        let ranges: [(key: String, low: Int, high: Int)] = [
            ("raft-tick-ms", 5, 10_000), ("raft-election-ticks", 2, 1_000),
            ("raft-heartbeat-ticks", 1, 999), ("raft-append-bytes-max", 1024, 1 << 30),
        ]
        for (key, low, high) in ranges {
            var config = BrokerConfig()
            try config.set(key, "\(low)", source: "--x")
            try config.set(key, "\(high)", source: "--x")
            for outside in [low - 1, high + 1] {
                #expect(message { try config.set(key, "\(outside)", source: "--x") } == "--x: \(key) must be an integer in \(low)...\(high), got '\(outside)'")
            }
        }
        var config = BrokerConfig()
        try config.apply(toml: "raft-tick-ms = 20\nraft-election-ticks = 4\nraft-append-bytes-max = 65_536", path: "t.toml")
        try config.apply(environment: ["SLUICE_RAFT_HEARTBEAT_TICKS": "3"])
        try config.validate()
        #expect(config.raftTickMs == 20 && config.raftElectionTicks == 4)
        #expect(config.raftHeartbeatTicks == 3 && config.raftAppendBytesMax == 65_536)

        try config.set("raft-heartbeat-ticks", "4", source: "--x")
        #expect(message { try config.validate() } == "raft-heartbeat-ticks (4) must be less than raft-election-ticks (4): followers would time out between a live leader's heartbeats")
        #expect(message { try config.set("nonsense", "1", source: "--x") }.contains("raft-tick-ms, raft-election-ticks, raft-heartbeat-ticks, raft-append-bytes-max"))
    }
}
