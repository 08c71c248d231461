import Dispatch
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SluiceCore
import SluiceRaft
import SluiceTestSupport
import SluiceWire
import Testing

@testable import SluiceBroker

/// `PeerClient` against a real in-process broker, a port nothing listens on, and a stand-in broker that
/// reads requests and answers only when a test tells it to.
@Suite("PeerClient", .timeLimit(.minutes(10)))
struct PeerClientTests {
    static let decodeApiVersions: @Sendable (ByteBuffer) throws -> ApiVersionsResponse = { try ApiVersionsResponse.decode($0, version: 0) }
    static let decodeMetadata: @Sendable (ByteBuffer) throws -> MetadataResponse = { try MetadataResponse.decode($0, version: 0) }

    /// A client on its own event loops, as broker 1, knowing `addresses`.
    static func makeClient(_ addresses: [NodeID: Int], threads: Int = 2) -> (PeerClient, MultiThreadedEventLoopGroup) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        var logger = Logger(label: "peer-client-test")
        logger.logLevel = .critical
        let client = PeerClient(selfId: 1, addresses: addresses.mapValues { (host: "127.0.0.1", port: $0) }, group: group,
                                logger: logger, frameBytesMax: 1 << 20)
        return (client, group)
    }

    /// The `WireError` `future` fails with; records an issue when it succeeds or fails otherwise.
    static func failure<T: Sendable>(_ future: EventLoopFuture<T>, sourceLocation: SourceLocation = #_sourceLocation) async -> WireError? {
        do {
            let value = try await future.get()
            Issue.record("expected a failure, got \(value)", sourceLocation: sourceLocation)
        } catch let error as WireError {
            return error
        } catch {
            Issue.record("expected a WireError, got \(error)", sourceLocation: sourceLocation)
        }
        return nil
    }

    @Test("round trip: ApiVersions and Metadata answered by a real broker, decoded")
    func roundTrip() async throws {
        let broker = try await BrokerHarness.start("peer-client-round-trip")
        let (client, group) = Self.makeClient([2: broker.port])
        let versions = try await client.send(.apiVersions, ApiVersionsRequest(), to: 2, timeoutMs: 10_000, decode: Self.decodeApiVersions).get()
        #expect(versions.apis.contains { $0.apiKey == ApiKey.produce.rawValue })
        #expect(versions.apis.count == ApiKey.allCases.count)
        #expect(!versions.brokerSoftware.isEmpty)
        let metadata = try await client.send(.metadata, MetadataRequest(topics: ["absent"]), to: 2, timeoutMs: 10_000, decode: Self.decodeMetadata).get()
        #expect(metadata.brokers.map(\.port) == [Int32(broker.port)])
        #expect(metadata.topics.map(\.name) == ["absent"])
        #expect(metadata.topics.first?.error == .unknownTopicOrPartition)
        client.shutdown()
        await broker.stop()
        try await group.shutdownGracefully()
    }

    @Test("answers that carry an error: a request-level error is that WireError, an unreadable body a clear one")
    func errorAnswers() async throws {
        let broker = try await BrokerHarness.start("peer-client-errors")
        let (client, group) = Self.makeClient([2: broker.port])
        let unsupported = await Self.failure(client.send(.apiVersions, version: 7, ApiVersionsRequest(), to: 2, timeoutMs: 10_000, decode: Self.decodeApiVersions))
        #expect(unsupported?.code == .unsupportedVersion)
        // An ApiVersions body read as Metadata does not parse.
        let unreadable = await Self.failure(client.send(.apiVersions, ApiVersionsRequest(), to: 2, timeoutMs: 10_000, decode: Self.decodeMetadata))
        #expect(unreadable?.code == .unknownServerError)
        #expect(unreadable?.message.contains("answer to ApiVersions does not parse") == true, "\(String(describing: unreadable))")
        // The connection is still in step after both.
        let versions = try await client.send(.apiVersions, ApiVersionsRequest(), to: 2, timeoutMs: 10_000, decode: Self.decodeApiVersions).get()
        #expect(!versions.apis.isEmpty)
        let noAnswer = ProduceRequest(acks: .none, timeoutMs: 1_000, topics: [])
        let refused = await Self.failure(client.send(.produce, noAnswer, to: 2, timeoutMs: 10_000) { try ProduceResponse.decode($0, version: 0) })
        #expect(refused?.code == .invalidRequest)
        client.shutdown()
        await broker.stop()
        try await group.shutdownGracefully()
    }

    @Test("pipelining: 200 produces sent at once get base offsets 0...199 in send order")
    func pipelinedProduces() async throws {
        let broker = try await BrokerHarness.start("peer-client-pipeline")
        let admin = broker.client()
        try await admin.createTopic("pipe", partitions: 1)
        await admin.close()
        let (client, group) = Self.makeClient([2: broker.port])
        let count = 200
        var futures: [EventLoopFuture<ProduceResponse>] = []
        for index in 0..<count {
            let request = ProduceRequest(acks: .leader, timeoutMs: 10_000, topics: [
                .init(name: "pipe", partitions: [.init(partition: 0, records: try ProduceFetchTests.batch(["value-\(index)"]))]),
            ])
            futures.append(client.send(.produce, request, to: 2, timeoutMs: 30_000) { try ProduceResponse.decode($0, version: 0) })
        }
        for (index, future) in futures.enumerated() {
            let partition = try #require(try await future.get().topics.first?.partitions.first)
            #expect(partition.error == .none, "\(partition.errorMessage ?? "")")
            #expect(partition.baseOffset == Int64(index))
        }
        client.shutdown()
        await broker.stop()
        try await group.shutdownGracefully()
    }

    @Test("pipelining from many threads: each of 400 Metadata requests gets the answer naming its own topic")
    func concurrentSenders() async throws {
        let broker = try await BrokerHarness.start("peer-client-threads")
        let (client, group) = Self.makeClient([2: broker.port])
        let threads = 8
        let perThread = 50
        let futures = NIOLockedValueBox<[(String, EventLoopFuture<MetadataResponse>)]>([])
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            for index in 0..<perThread {
                let name = "t\(thread)-\(index)"
                let future = client.send(.metadata, MetadataRequest(topics: [name]), to: 2, timeoutMs: 30_000, decode: Self.decodeMetadata)
                futures.withLockedValue { $0.append((name, future)) }
            }
        }
        let all = futures.withLockedValue { $0 }
        #expect(all.count == threads * perThread)
        for (name, future) in all {
            #expect(try await future.get().topics.map(\.name) == [name])
        }
        client.shutdown()
        await broker.stop()
        try await group.shutdownGracefully()
    }

    @Test("an unreachable broker fails the request at once with the retriable code, on every send")
    func unreachable() async throws {
        let (client, group) = Self.makeClient([2: freeLoopbackPort()])
        for _ in 0..<2 {
            let started = MonotonicClock.nowNanoseconds()
            let error = await Self.failure(client.send(.apiVersions, ApiVersionsRequest(), to: 2, timeoutMs: 30_000, decode: Self.decodeApiVersions))
            let elapsedMs = (MonotonicClock.nowNanoseconds() - started) / 1_000_000
            #expect(error?.code == PeerClient.unreachableCode)
            #expect(error?.code.isRetriable == true)
            #expect(error?.message.contains("cannot connect to broker 2") == true, "\(String(describing: error))")
            // Far below the request's 30 s: the failed connection attempt failed the request. (The bound
            // leaves room for a loaded machine; a request waiting for its own timeout would take 30 s.)
            #expect(elapsedMs < 15_000, "failed after \(elapsedMs) ms")
        }
        let unknown = await Self.failure(client.send(.apiVersions, ApiVersionsRequest(), to: 9, timeoutMs: 30_000, decode: Self.decodeApiVersions))
        #expect(unknown?.code == PeerClient.unreachableCode)
        client.shutdown()
        try await group.shutdownGracefully()
    }

    @Test("timeout: a silent broker's connection is closed when its oldest request times out; a later timed-out request's answer is consumed in order; other brokers unaffected")
    func timeout() async throws {
        let silent = try await HeldServer.start()
        let broker = try await BrokerHarness.start("peer-client-timeout")
        // One event loop: every peer's, so `sendTogether` below runs on the peers' loop.
        let (client, group) = Self.makeClient([2: silent.port, 3: broker.port], threads: 1)
        let loop = group.next()
        var received = silent.received.makeAsyncIterator()

        /// Sends one request to the silent broker and answers it: afterwards the client holds an open
        /// connection, so the next requests are written at once. (A request's timer starts when it is
        /// queued, and one that expires while the connection is being made is never sent.)
        func connect() async throws -> any Channel {
            let probe = client.send(.apiVersions, ApiVersionsRequest(), to: 2, timeoutMs: 30_000, decode: Self.decodeApiVersions)
            let request = try #require(await received.next())
            request.answer(ApiVersionsResponse(apis: [], brokerSoftware: "connected"))
            #expect(try await probe.get().brokerSoftware == "connected")
            return request.channel
        }
        /// Sends two requests to the silent broker from a task on the peers' event loop: both are queued
        /// there before either's timer is armed, so the second is written before the first can expire
        /// however slowly this test's thread runs.
        func sendTogether(_ firstTimeoutMs: Int64, _ secondTimeoutMs: Int64)
            async throws -> (EventLoopFuture<ApiVersionsResponse>, EventLoopFuture<ApiVersionsResponse>) {
            try await loop.submit {
                (client.send(.apiVersions, ApiVersionsRequest(), to: 2, timeoutMs: firstTimeoutMs, decode: Self.decodeApiVersions),
                 client.send(.apiVersions, ApiVersionsRequest(), to: 2, timeoutMs: secondTimeoutMs, decode: Self.decodeApiVersions))
            }.get()
        }

        // The oldest request gets no answer in time: the broker is stuck, its connection is dropped, and
        // the request queued behind it fails as unreachable (its caller tries another replica).
        let oldConnection = try await connect()
        let (stuck, queued) = try await sendTogether(200, 30_000)
        #expect(try #require(await received.next()).channel === oldConnection)
        #expect(try #require(await received.next()).channel === oldConnection)
        #expect(await Self.failure(stuck)?.code == .requestTimedOut)
        #expect(await Self.failure(queued)?.code == PeerClient.unreachableCode)
        let versions = try await client.send(.apiVersions, ApiVersionsRequest(), to: 3, timeoutMs: 10_000, decode: Self.decodeApiVersions).get()
        #expect(!versions.apis.isEmpty)

        // A later request times out behind one still waiting: the connection stays, and the late answer
        // to the timed-out request is consumed in order, never taken for the next request's.
        let newConnection = try await connect()
        #expect(newConnection !== oldConnection, "the stuck connection was replaced")
        let (waiting, impatient) = try await sendTogether(30_000, 200)
        let first = try #require(await received.next())
        let second = try #require(await received.next())
        #expect(first.channel === newConnection && second.channel === newConnection, "both requests travel on one connection")
        #expect(await Self.failure(impatient)?.code == .requestTimedOut)
        first.answer(ApiVersionsResponse(apis: [], brokerSoftware: "answer to the waiting one"))
        second.answer(ApiVersionsResponse(apis: [], brokerSoftware: "late answer to the impatient one"))
        #expect(try await waiting.get().brokerSoftware == "answer to the waiting one")
        let next = client.send(.apiVersions, ApiVersionsRequest(), to: 2, timeoutMs: 30_000, decode: Self.decodeApiVersions)
        let third = try #require(await received.next())
        #expect(third.channel === newConnection)
        third.answer(ApiVersionsResponse(apis: [], brokerSoftware: "answer to the next"))
        #expect(try await next.get().brokerSoftware == "answer to the next")

        client.shutdown()
        await broker.stop()
        await silent.close()
        try await group.shutdownGracefully()
    }

    @Test("an answer with the wrong correlation id fails the connection; the next send reconnects")
    func correlationMismatch() async throws {
        let server = try await HeldServer.start()
        let (client, group) = Self.makeClient([2: server.port])
        var received = server.received.makeAsyncIterator()
        let one = client.send(.apiVersions, ApiVersionsRequest(), to: 2, timeoutMs: 30_000, decode: Self.decodeApiVersions)
        let two = client.send(.apiVersions, ApiVersionsRequest(), to: 2, timeoutMs: 30_000, decode: Self.decodeApiVersions)
        let request = try #require(await received.next())
        _ = try #require(await received.next())
        request.answer(ApiVersionsResponse(apis: [], brokerSoftware: "x"), correlationId: request.header.correlationId &+ 100)
        for future in [one, two] {
            let error = await Self.failure(future)
            #expect(error?.code == PeerClient.unreachableCode)
            #expect(error?.message.contains("correlation id") == true, "\(String(describing: error))")
        }
        let three = client.send(.apiVersions, ApiVersionsRequest(), to: 2, timeoutMs: 30_000, decode: Self.decodeApiVersions)
        let again = try #require(await received.next())
        #expect(again.channel !== request.channel, "a new connection")
        again.answer(ApiVersionsResponse(apis: [], brokerSoftware: "after reconnecting"))
        #expect(try await three.get().brokerSoftware == "after reconnecting")
        client.shutdown()
        await server.close()
        try await group.shutdownGracefully()
    }

    @Test("a broker closing the connection fails every request on it with the retriable code")
    func connectionLost() async throws {
        let server = try await HeldServer.start()
        let (client, group) = Self.makeClient([2: server.port])
        var received = server.received.makeAsyncIterator()
        let futures = (0..<3).map { _ in client.send(.apiVersions, ApiVersionsRequest(), to: 2, timeoutMs: 30_000, decode: Self.decodeApiVersions) }
        var last: HeldServer.Received?
        for _ in futures { last = await received.next() }
        try await #require(last).channel.close()
        for future in futures {
            let error = await Self.failure(future)
            #expect(error?.code == PeerClient.unreachableCode)
            #expect(error?.message.contains("lost the connection to broker 2") == true, "\(String(describing: error))")
        }
        client.shutdown()
        await server.close()
        try await group.shutdownGracefully()
    }

    @Test("beyond pendingRequestsMax a send fails at once; shutdown fails everything pending and every later send")
    func limitAndShutdown() async throws {
        let server = try await HeldServer.start()
        let (client, group) = Self.makeClient([2: server.port])
        let pending = (0..<PeerClient.pendingRequestsMax).map { _ in
            client.send(.apiVersions, ApiVersionsRequest(), to: 2, timeoutMs: 60_000, decode: Self.decodeApiVersions)
        }
        let overflow = await Self.failure(client.send(.apiVersions, ApiVersionsRequest(), to: 2, timeoutMs: 60_000, decode: Self.decodeApiVersions))
        #expect(overflow?.code.isRetriable == true)
        #expect(overflow?.message.contains("pendingRequestsMax") == true, "\(String(describing: overflow))")

        client.shutdown()
        for future in pending {
            #expect(await Self.failure(future)?.code == .brokerShuttingDown)
        }
        let later = await Self.failure(client.send(.apiVersions, ApiVersionsRequest(), to: 2, timeoutMs: 60_000, decode: Self.decodeApiVersions))
        #expect(later?.code == .brokerShuttingDown)
        await server.close()
        try await group.shutdownGracefully()
    }
}

/// A stand-in broker on a loopback port: it reads request frames and hands each to the test, which may
/// answer it (or not). Requests arrive on `received` in the order read.
final class HeldServer: Sendable {
    /// One request as read, with the connection it came on.
    struct Received: Sendable {
        let header: RequestHeader
        let channel: any Channel

        /// Writes a response frame; `correlationId` defaults to the request's.
        func answer<M: WireMessage>(_ message: M, correlationId: Int32? = nil) {
            var buffer = channel.allocator.buffer(capacity: 64)
            FrameEncoder.encodeResponse(message, correlationId: correlationId ?? header.correlationId, version: 0, into: &buffer)
            channel.writeAndFlush(buffer, promise: nil)
        }
    }

    let received: AsyncStream<Received>
    private let continuation: AsyncStream<Received>.Continuation
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel

    var port: Int { channel.localAddress?.port ?? 0 }

    private init(received: AsyncStream<Received>, continuation: AsyncStream<Received>.Continuation, group: MultiThreadedEventLoopGroup, channel: any Channel) {
        self.received = received
        self.continuation = continuation
        self.group = group
        self.channel = channel
    }

    static func start() async throws -> HeldServer {
        let (stream, continuation) = AsyncStream.makeStream(of: Received.self)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(ByteToMessageHandler(RequestFrameDecoder()))
                    try child.pipeline.syncOperations.addHandler(Holder(continuation: continuation))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return HeldServer(received: stream, continuation: continuation, group: group, channel: channel)
    }

    func close() async {
        continuation.finish()
        try? await channel.close()
        try? await group.shutdownGracefully()
    }

    private final class Holder: ChannelInboundHandler, Sendable {
        typealias InboundIn = InboundRequest
        let continuation: AsyncStream<Received>.Continuation

        init(continuation: AsyncStream<Received>.Continuation) { self.continuation = continuation }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .request(let frame) = unwrapInboundIn(data) else { return }
            continuation.yield(Received(header: frame.header, channel: context.channel))
        }
    }
}
