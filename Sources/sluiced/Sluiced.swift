import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SluiceBroker

/// `sluiced`: the Sluice broker daemon.
@main
struct Sluiced: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluiced",
        abstract: "The Sluice broker.",
        discussion: """
            Settings come from flags, then SLUICE_* environment variables (SLUICE_DATA_DIR, SLUICE_LISTEN, \
            SLUICE_NODE_ID, SLUICE_LOG_LEVEL, ...), then the TOML file given with --config, then the embedded \
            defaults: a single node with data in ./data listening on 127.0.0.1:9400. SIGINT or SIGTERM stop it \
            cleanly.

            A cluster: start every broker with the same --cluster list and its own --node-id, e.g. \
            sluiced --node-id 1 --data-dir data1 --cluster 1@127.0.0.1:9401,2@127.0.0.1:9402,3@127.0.0.1:9403 \
            (and likewise nodes 2 and 3). Each entry is the address other brokers and clients use to reach that \
            node; without --listen a broker binds its own entry, and with it the port must match the entry.
            """)

    @Option(help: "TOML configuration file.") var config: String?
    @Option(help: "Data directory (default ./data).") var dataDir: String?
    @Option(help: "Address to listen on, host:port (default 127.0.0.1:9400, or this node's --cluster entry).") var listen: String?
    @Option(help: "This broker's node id (default 1; required with --cluster).") var nodeId: Int32?
    @Option(help: "Every broker of a static cluster: ID@HOST:PORT,ID@HOST:PORT,... (default: a single broker).")
    var cluster: String?
    @Option(help: "trace, debug, info, notice, warning, error or critical.") var logLevel: String?

    func run() async throws {
        var settings = BrokerConfig()
        do {
            if let config {
                guard let text = try? String(contentsOfFile: config, encoding: .utf8) else {
                    throw BrokerConfig.Error("cannot read the config file \(config)")
                }
                try settings.apply(toml: text, path: config)
            }
            try settings.apply(environment: ProcessInfo.processInfo.environment)
            if let dataDir { try settings.set("data-dir", dataDir, source: "--data-dir") }
            if let listen { try settings.set("listen", listen, source: "--listen") }
            if let nodeId { try settings.set("node-id", "\(nodeId)", source: "--node-id") }
            if let logLevel { try settings.set("log-level", logLevel, source: "--log-level") }
            if let cluster { try settings.set("cluster", cluster, source: "--cluster") }
            // Only now are all sources in: cross-checks must see the final value of every setting.
            try settings.validate()
        } catch let error as BrokerConfig.Error {
            throw ValidationError(error.description)
        }
        let level = Logger.Level(rawValue: settings.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "sluiced")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let broker = Broker(config: settings, eventLoopGroup: group, logger: logger)
        let service = BrokerService(broker: broker)
        let serviceGroup = ServiceGroup(configuration: .init(
            services: [.init(service: service)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await serviceGroup.run()
        } catch {
            try? await group.shutdownGracefully()
            FileHandle.standardError.write(Data("sluiced: \(error)\n".utf8))
            throw ExitCode.failure
        }
        try? await group.shutdownGracefully()
    }
}
