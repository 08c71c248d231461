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
}
