import NIOCore
import SluiceWire

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A blocking loopback TCP connection that sends whatever bytes a test hands it, for feeding the
/// broker input no well-behaved client would produce.
///
/// Every send and receive is bounded by `timeoutMs` (`SO_SNDTIMEO`, `SO_RCVTIMEO`), so a broker that
/// hangs fails the test with `RawConnectionError.timedOut` instead of stalling the run. Blocking calls
/// hold one thread of the caller's executor for at most that long; the broker runs on its own
/// event loops and thread pool, so it is never starved by them. Not thread-safe: one task uses it.
final class RawConnection {
    private var descriptor: Int32
    let timeoutMs: Int

    /// Correlation id used by `send(_:_:)` when none is given; increases with every request.
    private(set) var nextCorrelationId: Int32 = 1

    /// Largest response frame `readFrame` accepts: a bound on what a confused broker can make us buffer.
    static let responseBytesMax = 64 * 1024 * 1024

    init(port: Int, timeoutMs: Int = 3000) throws {
        self.timeoutMs = timeoutMs
        #if canImport(Glibc)
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { throw RawConnectionError.io("socket: \(Self.lastError())") }
        var timeout = timeval(tv_sec: timeoutMs / 1000, tv_usec: .init((timeoutMs % 1000) * 1000))
        let size = socklen_t(MemoryLayout<timeval>.size)
        guard setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, size) == 0,
              setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, size) == 0 else {
            let error = Self.lastError()
            close()
            throw RawConnectionError.io("setsockopt: \(error)")
        }
        #if canImport(Darwin)
        var one: Int32 = 1
        _ = setsockopt(descriptor, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
        #endif
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            let error = Self.lastError()
            close()
            throw RawConnectionError.io("connect to 127.0.0.1:\(port): \(error)")
        }
    }

    deinit { close() }

    /// Closes the socket (idempotent).
    func close() {
        guard descriptor >= 0 else { return }
        #if canImport(Glibc)
        _ = Glibc.close(descriptor)
        #else
        _ = Darwin.close(descriptor)
        #endif
        descriptor = -1
    }

    // MARK: Sending

    /// Sends all of `bytes`.
    func send(bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                socketSend(descriptor, raw.baseAddress! + sent, raw.count - sent, Self.sendFlags)
            }
            if n > 0 {
                sent += n
                continue
            }
            let code = errno
            if n < 0 && code == EINTR { continue }
            if n < 0 && (code == EAGAIN || code == EWOULDBLOCK) {
                throw RawConnectionError.timedOut("sending: \(sent) of \(bytes.count) bytes went out within \(timeoutMs) ms")
            }
            throw RawConnectionError.closed("sending after \(sent) of \(bytes.count) bytes: \(Self.describe(code))")
        }
    }

    func send(buffer: ByteBuffer) throws { try send(bytes: Array(buffer.readableBytesView)) }

    /// Sends a request frame; returns its correlation id.
    @discardableResult
    func send<M: WireMessage>(_ api: ApiKey, _ message: M, version: Int16 = 0, correlationId: Int32? = nil) throws -> Int32 {
        let id = takeCorrelationId(correlationId)
        try send(buffer: Self.frame(apiKeyRaw: api.rawValue, version: version, correlationId: id, message))
        return id
    }

    /// Sends a request frame with any key and version and a hand-made body; returns its correlation id.
    @discardableResult
    func send(apiKeyRaw: Int16, version: Int16 = 0, correlationId: Int32? = nil, body: [UInt8]) throws -> Int32 {
        let id = takeCorrelationId(correlationId)
        try send(bytes: Self.frame(apiKeyRaw: apiKeyRaw, version: version, correlationId: id, body: body))
        return id
    }

    private func takeCorrelationId(_ given: Int32?) -> Int32 {
        let id = given ?? nextCorrelationId
        nextCorrelationId = id &+ 1
        return id
    }

    /// A whole request frame for `message`.
    static func frame<M: WireMessage>(apiKeyRaw: Int16, version: Int16 = 0, correlationId: Int32, clientId: String? = "raw-test",
                                      _ message: M) -> ByteBuffer {
        var buffer = ByteBuffer()
        FrameEncoder.encodeRequest(message, header: RequestHeader(apiKeyRaw: apiKeyRaw, apiVersion: version,
                                                                  correlationId: correlationId, clientId: clientId), into: &buffer)
        return buffer
    }

    /// A whole request frame around a hand-made body.
    static func frame(apiKeyRaw: Int16, version: Int16 = 0, correlationId: Int32, clientId: String? = "raw-test", body: [UInt8]) -> [UInt8] {
        var writer = WireWriter(ByteBuffer())
        RequestHeader(apiKeyRaw: apiKeyRaw, apiVersion: version, correlationId: correlationId, clientId: clientId).encode(to: &writer)
        writer.buffer.writeBytes(body)
        var frame: [UInt8] = []
        frame.reserveCapacity(4 + writer.buffer.readableBytes)
        withUnsafeBytes(of: Int32(writer.buffer.readableBytes).bigEndian) { frame.append(contentsOf: $0) }
        frame.append(contentsOf: writer.buffer.readableBytesView)
        return frame
    }

    // MARK: Receiving

    /// Reads one response frame.
    func readFrame() throws -> ResponseFrame {
        let sizeBytes = try read(exactly: 4)
        let size = Int(Int32(bigEndian: sizeBytes.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }))
        guard size >= ResponseFrame.headerSize && size <= Self.responseBytesMax else {
            throw RawConnectionError.protocolViolation("response frame size \(size) is outside \(ResponseFrame.headerSize)...\(Self.responseBytesMax)")
        }
        var buffer = ByteBuffer(bytes: sizeBytes + (try read(exactly: size)))
        var decoder = ResponseFrameDecoder(frameBytesMax: Self.responseBytesMax)
        guard let frame = try decoder.next(&buffer), buffer.readableBytes == 0 else {
            throw RawConnectionError.protocolViolation("a whole response frame did not decode as one")
        }
        return frame
    }

    /// Reads one response frame, checks its correlation id and that it carries no request-level
    /// error, and decodes its body.
    func read<M: WireMessage>(_ type: M.Type, correlationId: Int32) throws -> M {
        let frame = try readFrame()
        guard frame.correlationId == correlationId else {
            throw RawConnectionError.protocolViolation("expected correlation id \(correlationId), got \(frame.correlationId)")
        }
        if let error = frame.error { throw error }
        return try M.decode(frame.body, version: 0)
    }

    /// Waits until the broker closes the connection; false if data arrives or nothing happens within
    /// the timeout.
    func waitForClose() -> Bool {
        var byte: UInt8 = 0
        while true {
            let n = recv(descriptor, &byte, 1, 0)
            if n == 0 { return true }
            if n > 0 { return false }
            let code = errno
            if code == EINTR { continue }
            return code == ECONNRESET || code == EPIPE
        }
    }

    private func read(exactly count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var received = 0
        while received < count {
            let n = bytes.withUnsafeMutableBytes { raw in recv(descriptor, raw.baseAddress! + received, count - received, 0) }
            if n > 0 {
                received += n
                continue
            }
            if n == 0 { throw RawConnectionError.closed("the broker closed the connection after \(received) of \(count) bytes") }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK {
                throw RawConnectionError.timedOut("no answer within \(timeoutMs) ms (\(received) of \(count) bytes)")
            }
            throw RawConnectionError.closed("receiving: \(Self.describe(code))")
        }
        return bytes
    }

    // MARK: Platform

    #if canImport(Glibc)
    /// Never raise SIGPIPE when the broker has closed: that would kill the test process.
    private static let sendFlags = Int32(MSG_NOSIGNAL)
    #else
    private static let sendFlags: Int32 = 0  // SO_NOSIGPIPE is set on the socket instead
    #endif

    private static func lastError() -> String { describe(errno) }

    private static func describe(_ code: Int32) -> String { String(cString: strerror(code)) }
}

/// `send(2)`, named apart from `RawConnection.send` so the methods can call it.
private func socketSend(_ descriptor: Int32, _ pointer: UnsafeRawPointer, _ count: Int, _ flags: Int32) -> Int {
    send(descriptor, pointer, count, flags)
}

/// Why a raw exchange with the broker failed.
enum RawConnectionError: Error, CustomStringConvertible {
    case io(String)
    /// The broker did not answer (or accept bytes) within the timeout: it may hang.
    case timedOut(String)
    case closed(String)
    case protocolViolation(String)

    var description: String {
        switch self {
        case .io(let detail): "socket error: \(detail)"
        case .timedOut(let detail): "timed out: \(detail)"
        case .closed(let detail): "connection closed: \(detail)"
        case .protocolViolation(let detail): "protocol violation: \(detail)"
        }
    }
}
