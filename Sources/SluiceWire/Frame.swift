import NIOCore

/// Bounds on frames, checked before a frame's bytes are buffered.
public struct FrameLimits: Sendable, Hashable {
    /// Largest frame (size field excluded) a peer may send. Larger frames are skipped as they arrive
    /// and answered with `frameTooLarge`; they are never held in memory.
    public var frameBytesMax: Int
    /// Longest client id accepted in a request header.
    public var clientIdBytesMax: Int

    public init(frameBytesMax: Int = 100 * 1024 * 1024, clientIdBytesMax: Int = 255) {
        precondition(frameBytesMax >= RequestHeader.sizeMin, "frameBytesMax below a request header")
        self.frameBytesMax = frameBytesMax
        self.clientIdBytesMax = clientIdBytesMax
    }
}

/// The fields that open every request frame (protocol.md, "Frames").
public struct RequestHeader: Sendable, Hashable {
    /// The raw key, so an unknown key can still be answered with its correlation id.
    public var apiKeyRaw: Int16
    public var apiVersion: Int16
    public var correlationId: Int32
    public var clientId: String?

    /// Key, version, correlation id and a null client id.
    public static let sizeMin = 2 + 2 + 4 + 2

    public init(apiKey: ApiKey, apiVersion: Int16, correlationId: Int32, clientId: String?) {
        self.apiKeyRaw = apiKey.rawValue
        self.apiVersion = apiVersion
        self.correlationId = correlationId
        self.clientId = clientId
    }

    public init(apiKeyRaw: Int16, apiVersion: Int16, correlationId: Int32, clientId: String?) {
        self.apiKeyRaw = apiKeyRaw
        self.apiVersion = apiVersion
        self.correlationId = correlationId
        self.clientId = clientId
    }

    public var apiKey: ApiKey? { ApiKey(rawValue: apiKeyRaw) }

    public init(from reader: inout WireReader, limits: FrameLimits) throws {
        apiKeyRaw = try reader.readInt16("api_key")
        apiVersion = try reader.readInt16("api_version")
        correlationId = try reader.readInt32("correlation_id")
        clientId = try reader.readNullableString("client_id")
        if let clientId, clientId.utf8.count > limits.clientIdBytesMax {
            throw WireDecodingError("client_id is \(clientId.utf8.count) bytes; the limit is \(limits.clientIdBytesMax)")
        }
    }

    public func encode(to writer: inout WireWriter) {
        writer.write(apiKeyRaw)
        writer.write(apiVersion)
        writer.write(correlationId)
        writer.write(clientId)
    }
}

/// A request frame's header and body, as the decoder hands it on.
public struct RequestFrame: Sendable {
    public var header: RequestHeader
    public var body: ByteBuffer
}

/// What the request decoder produces.
public enum InboundRequest: Sendable {
    /// A complete frame whose header parsed.
    case request(RequestFrame)
    /// A frame above `frameBytesMax`: its header (when the frame was long enough to hold one) and its
    /// declared size. Its bytes are being skipped; the connection stays usable.
    case tooLarge(header: RequestHeader?, size: Int)
}

/// Splits a byte stream into request frames (protocol.md, "Frames").
///
/// Returns `nil` while a frame is incomplete and throws only for input that cannot be framed (a size
/// below the smallest header): after that the stream has no frame boundaries left, so the connection
/// must close. A frame above the limit is reported at once and then discarded as it arrives, so it
/// never occupies memory.
public struct RequestFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = InboundRequest

    public let limits: FrameLimits
    /// Bytes of an oversized frame still to be thrown away.
    private var discardBytes = 0

    public init(limits: FrameLimits = FrameLimits()) { self.limits = limits }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let event = try next(&buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(event))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }

    /// The decoding step without a channel, so tests (and the client) can drive it directly.
    public mutating func next(_ buffer: inout ByteBuffer) throws -> InboundRequest? {
        while discardBytes > 0 {
            guard buffer.readableBytes > 0 else { return nil }
            let skip = min(discardBytes, buffer.readableBytes)
            buffer.moveReaderIndex(forwardBy: skip)
            discardBytes -= skip
        }
        guard let size = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: Int32.self) else { return nil }
        let frameSize = Int(size)
        guard frameSize >= RequestHeader.sizeMin else {
            throw WireDecodingError("frame size \(frameSize) is below the smallest request header (\(RequestHeader.sizeMin) bytes)")
        }
        if frameSize > limits.frameBytesMax {
            // Wait for the header so the refusal can name the request; the header is small.
            let headerBytes = min(frameSize, RequestHeader.sizeMin + limits.clientIdBytesMax)
            guard buffer.readableBytes >= 4 + headerBytes else { return nil }
            var reader = WireReader(buffer.getSlice(at: buffer.readerIndex + 4, length: headerBytes) ?? ByteBuffer())
            let header = try? RequestHeader(from: &reader, limits: limits)
            buffer.moveReaderIndex(forwardBy: 4)
            // Throw away what has arrived of this frame only; a frame behind it stays in the buffer.
            let skip = min(frameSize, buffer.readableBytes)
            buffer.moveReaderIndex(forwardBy: skip)
            discardBytes = frameSize - skip
            return .tooLarge(header: header, size: frameSize)
        }
        guard buffer.readableBytes >= 4 + frameSize else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        guard let frame = buffer.readSlice(length: frameSize) else { return nil }
        var reader = WireReader(frame)
        let header = try RequestHeader(from: &reader, limits: limits)
        return .request(RequestFrame(header: header, body: reader.buffer))
    }
}

/// Splits a byte stream into response frames: a correlation id and the body. Used by the client.
public struct ResponseFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ResponseFrame

    public let frameBytesMax: Int

    public init(frameBytesMax: Int = 1024 * 1024 * 1024) { self.frameBytesMax = frameBytesMax }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try next(&buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }

    public mutating func next(_ buffer: inout ByteBuffer) throws -> ResponseFrame? {
        guard let size = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: Int32.self) else { return nil }
        let frameSize = Int(size)
        guard frameSize >= ResponseFrame.headerSize, frameSize <= frameBytesMax else {
            throw WireDecodingError("response frame size \(frameSize) is outside \(ResponseFrame.headerSize)...\(frameBytesMax)")
        }
        guard buffer.readableBytes >= 4 + frameSize else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        guard var frame = buffer.readSlice(length: frameSize) else { return nil }
        var reader = WireReader(frame)
        let correlationId = try reader.readInt32("correlation_id")
        let code = try reader.readInt16("error_code")
        let message = try reader.readNullableString("error_message")
        let error: WireError?
        if code == 0 {
            error = nil
        } else if let known = ErrorCode(rawValue: code) {
            error = WireError(known, message ?? "")
        } else {
            error = WireError(.unknownServerError, "unknown error code \(code): \(message ?? "")")
        }
        frame = reader.buffer
        return ResponseFrame(correlationId: correlationId, error: error, body: frame)
    }
}

/// A response: correlation id, the request-level error (when set the body is empty) and the body.
public struct ResponseFrame: Sendable {
    /// Correlation id, error code and a null message.
    public static let headerSize = 4 + 2 + 2

    public var correlationId: Int32
    public var error: WireError?
    public var body: ByteBuffer

    public init(correlationId: Int32, error: WireError?, body: ByteBuffer) {
        self.correlationId = correlationId
        self.error = error
        self.body = body
    }
}

/// Frame encoding helpers shared by the broker and the client.
public enum FrameEncoder {
    /// Appends a whole request frame: size, header, body.
    public static func encodeRequest<M: WireMessage>(_ message: M, header: RequestHeader, into buffer: inout ByteBuffer) {
        let start = buffer.writerIndex
        buffer.writeInteger(Int32(0), endianness: .big)
        var writer = WireWriter(buffer)
        header.encode(to: &writer)
        message.encode(to: &writer, version: header.apiVersion)
        buffer = writer.buffer
        buffer.setInteger(Int32(buffer.writerIndex - start - 4), at: start, endianness: .big)
    }

    /// Appends the start of a response frame whose body is `bodySize` bytes still to be written.
    public static func encodeResponseHead(correlationId: Int32, error: WireError?, bodySize: Int, into buffer: inout ByteBuffer) {
        var writer = WireWriter(buffer)
        let message: String? = error.map { $0.message }
        let headSize = ResponseFrame.headerSize + (message.map { $0.utf8.count } ?? 0)
        writer.write(Int32(headSize + bodySize))
        writer.write(correlationId)
        writer.write(error?.code.rawValue ?? 0)
        writer.write(message)
        buffer = writer.buffer
    }

    /// Appends a whole response frame.
    public static func encodeResponse<M: WireMessage>(_ message: M, correlationId: Int32, version: Int16, into buffer: inout ByteBuffer) {
        let start = buffer.writerIndex
        encodeResponseHead(correlationId: correlationId, error: nil, bodySize: 0, into: &buffer)
        var writer = WireWriter(buffer)
        message.encode(to: &writer, version: version)
        buffer = writer.buffer
        buffer.setInteger(Int32(buffer.writerIndex - start - 4), at: start, endianness: .big)
    }

    /// Appends an error-only response frame.
    public static func encodeError(_ error: WireError, correlationId: Int32, into buffer: inout ByteBuffer) {
        encodeResponseHead(correlationId: correlationId, error: error, bodySize: 0, into: &buffer)
    }
}

/// Limits the size of a message string so it fits the protocol's int16 length.
extension WireError {
    /// Messages are for people; anything longer than this is cut.
    public static let messageBytesMax = 4096

    /// The same error with its message cut to `messageBytesMax` bytes on a character boundary.
    public var bounded: WireError {
        guard message.utf8.count > Self.messageBytesMax else { return self }
        var cut = ""
        for character in message {
            if cut.utf8.count + character.utf8.count > Self.messageBytesMax - 3 { break }
            cut.append(character)
        }
        return WireError(code, cut + "...")
    }
}
