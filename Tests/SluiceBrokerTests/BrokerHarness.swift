import Logging
import NIOCore
import NIOPosix
import SluiceBroker
import SluiceClient
import SluiceCore
import SluiceTestSupport

/// An in-process broker on an ephemeral loopback port with its own temporary data directory.
///
/// `start` returns once it accepts connections; `restart` stops it cleanly and opens the same data
/// directory again; `stop` shuts it down and removes the directory.
final class BrokerHarness: @unchecked Sendable {
    let directory: TemporaryDirectory
    let group: MultiThreadedEventLoopGroup
    private(set) var broker: Broker
    private var configure: @Sendable (inout BrokerConfig) -> Void

    private init(directory: TemporaryDirectory, group: MultiThreadedEventLoopGroup, broker: Broker,
                 configure: @escaping @Sendable (inout BrokerConfig) -> Void) {
        self.directory = directory
        self.group = group
        self.broker = broker
        self.configure = configure
    }

    static func makeConfig(_ dataDirectory: String, _ configure: (inout BrokerConfig) -> Void) -> BrokerConfig {
        var config = BrokerConfig()
        config.dataDirectory = dataDirectory
        config.host = "127.0.0.1"
        config.port = 0
        config.ioThreads = 4
        configure(&config)
        return config
    }

    static func start(_ label: String = "broker", configure: @escaping @Sendable (inout BrokerConfig) -> Void = { _ in }) async throws -> BrokerHarness {
        let directory = TemporaryDirectory(label)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var logger = Logger(label: "test-broker")
        logger.logLevel = .warning
        let broker = Broker(config: makeConfig(directory.child("data"), configure), eventLoopGroup: group, logger: logger)
        try await broker.start()
        return BrokerHarness(directory: directory, group: group, broker: broker, configure: configure)
    }

    var port: Int { broker.boundPort }
    var address: BrokerAddress { BrokerAddress(host: "127.0.0.1", port: port) }

    /// A client connected to this broker (close it when done).
    func client(clientId: String = "test") -> SluiceClient {
        SluiceClient(brokers: [address], clientId: clientId, requestTimeoutMs: 10_000, eventLoopGroup: group)
    }

    /// Stops cleanly and starts again on the same data directory (a new port), with `reconfigure` applied
    /// to the settings from then on.
    func restart(reconfigure: @escaping @Sendable (inout BrokerConfig) -> Void) async throws {
        let previous = configure
        configure = { config in
            previous(&config)
            reconfigure(&config)
        }
        try await restart()
    }

    /// Stops cleanly and starts again on the same data directory (a new port).
    func restart() async throws {
        await broker.shutdown()
        var logger = Logger(label: "test-broker")
        logger.logLevel = .warning
        broker = Broker(config: Self.makeConfig(directory.child("data"), configure), eventLoopGroup: group, logger: logger)
        try await broker.start()
    }

    func stop() async {
        await broker.shutdown()
        try? await group.shutdownGracefully()
        directory.remove()
    }
}

/// Polls `condition` every 20 ms until it holds (true) or `timeoutMs` pass (false): for states nothing
/// signals, such as an election's outcome or a processor's progress.
func pollUntil(timeoutMs: Int, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = MonotonicClock.nowNanoseconds() + UInt64(timeoutMs) * 1_000_000
    while MonotonicClock.nowNanoseconds() < deadline {
        if try await condition() { return true }
        try await Task.sleep(nanoseconds: 20_000_000)
    }
    return false
}

