import ServiceLifecycle

/// Runs a broker under swift-service-lifecycle: starts it, prints where it listens and where its data
/// is, and on graceful shutdown (SIGINT/SIGTERM) stops it cleanly.
public struct BrokerService: Service {
    public let broker: Broker

    public init(broker: Broker) { self.broker = broker }

    public func run() async throws {
        try await broker.start()
        print("sluiced listening on \(broker.config.host):\(broker.boundPort), data in \(broker.config.dataDirectory)")
        fflush(nil)
        try? await gracefulShutdown()
        await broker.shutdown()
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
