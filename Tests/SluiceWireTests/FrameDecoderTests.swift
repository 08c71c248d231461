import NIOCore
import NIOEmbedded
import SluiceTestSupport
import SluiceWire
import Testing

/// The frame decoders checked the way NIO's `ByteToMessageDecoderVerifier` checks decoders: the same
/// stream fed all at once, byte by byte and cut at random points must give the same frames. Then the
/// limits of protocol.md ("Limits and bad input"): oversized frames are reported and skipped without
/// being held in memory, frames too small to hold a header end the stream.
@Suite("Frame decoders")
struct FrameDecoderTests {
    /// What the request decoder produced, in a comparable form.
    enum DecodedRequest: Hashable, CustomStringConvertible {
        case request(RequestHeader, body: [UInt8])
        case tooLarge(RequestHeader?, size: Int)

        init(_ inbound: InboundRequest) {
            switch inbound {
            case .request(let frame): self = .request(frame.header, body: Array(frame.body.readableBytesView))
            case .tooLarge(let header, let size): self = .tooLarge(header, size: size)
            }
        }

        var description: String {
            switch self {
            case .request(let header, let body): "request(key \(header.apiKeyRaw), cid \(header.correlationId), \(body.count) bytes)"
            case .tooLarge(let header, let size): "tooLarge(cid \(header.map { "\($0.correlationId)" } ?? "nil"), \(size))"
            }
        }
    }

    /// What the response decoder produced, in a comparable form.
    struct DecodedResponse: Hashable {
        var correlationId: Int32
        var error: WireError?
        var body: [UInt8]

        init(correlationId: Int32, error: WireError?, body: [UInt8]) {
            self.correlationId = correlationId
            self.error = error
            self.body = body
        }

        init(_ frame: ResponseFrame) {
            self.init(correlationId: frame.correlationId, error: frame.error, body: Array(frame.body.readableBytesView))
        }
    }

    /// How a stream is cut into the pieces the decoder sees.
    enum Split: CustomStringConvertible {
        case allAtOnce
        case byteByByte
        /// Random cut points; each piece is 1 ... `pieceBytesMax` bytes.
        case random(pieceBytesMax: Int)

        func pieces(_ bytes: [UInt8], _ rng: inout SeededRandom) -> [[UInt8]] {
            switch self {
            case .allAtOnce: return [bytes]
            case .byteByByte: return bytes.map { [$0] }
            case .random(let pieceBytesMax):
                var pieces: [[UInt8]] = []
                var start = 0
                while start < bytes.count {
                    let end = min(bytes.count, start + rng.int(1...pieceBytesMax))
                    pieces.append(Array(bytes[start..<end]))
                    start = end
                }
                return pieces
            }
        }

        var description: String {
            switch self {
            case .allAtOnce: "all at once"
            case .byteByByte: "byte by byte"
            case .random(let max): "random pieces of 1...\(max) bytes"
            }
        }

        static let every: [Split] = [.allAtOnce, .byteByByte, .random(pieceBytesMax: 2), .random(pieceBytesMax: 17),
                                     .random(pieceBytesMax: 300), .random(pieceBytesMax: 5000)]
    }

    /// Feeds `pieces` to a request decoder the way `ByteToMessageHandler` does: append, then decode
    /// until it needs more; read bytes are sometimes discarded. Returns every frame and the most bytes
    /// the buffer held after a decoding step.
    static func decodeRequests(_ pieces: [[UInt8]], limits: FrameLimits, rng: inout SeededRandom) throws -> (frames: [DecodedRequest], bufferedMax: Int) {
        var decoder = RequestFrameDecoder(limits: limits)
        var buffer = ByteBuffer()
        var frames: [DecodedRequest] = []
        var bufferedMax = 0
        for piece in pieces {
            buffer.writeBytes(piece)
            while let inbound = try decoder.next(&buffer) { frames.append(DecodedRequest(inbound)) }
            bufferedMax = max(bufferedMax, buffer.readableBytes)
            if rng.chance(0.3) { buffer.discardReadBytes() }
        }
        return (frames, bufferedMax)
    }

    static func decodeResponses(_ pieces: [[UInt8]], rng: inout SeededRandom) throws -> [DecodedResponse] {
        var decoder = ResponseFrameDecoder()
        var buffer = ByteBuffer()
        var frames: [DecodedResponse] = []
        for piece in pieces {
            buffer.writeBytes(piece)
            while let frame = try decoder.next(&buffer) { frames.append(DecodedResponse(frame)) }
            if rng.chance(0.3) { buffer.discardReadBytes() }
        }
        #expect(buffer.readableBytes == 0, "bytes left after the last response frame")
        return frames
    }

    static let clientIds: [String?] = [nil, "", "sluice-cli", "ünïcode-client", String(repeating: "c", count: 255)]

    /// Every request sample as a frame, in one stream, with varied headers.
    static func requestStream() -> (bytes: [UInt8], expected: [DecodedRequest]) {
        var buffer = ByteBuffer()
        var expected: [DecodedRequest] = []
        for (index, sample) in WireSample.requests.enumerated() {
            let header = RequestHeader(apiKey: sample.api, apiVersion: 0, correlationId: Int32(index) * 7919 - 100,
                                       clientId: clientIds[index % clientIds.count])
            sample.appendFrame(header, &buffer)
            expected.append(.request(header, body: sample.body))
        }
        // An unknown key and version still frame: the broker answers them with their correlation id.
        let unknown = RequestHeader(apiKeyRaw: 999, apiVersion: 7, correlationId: Int32.max, clientId: nil)
        FrameEncoder.encodeRequest(ApiVersionsRequest(), header: unknown, into: &buffer)
        expected.append(.request(unknown, body: []))
        return (Array(buffer.readableBytesView), expected)
    }

    /// Every response sample as a frame, plus error frames, in one stream.
    static func responseStream() -> (bytes: [UInt8], expected: [DecodedResponse]) {
        var buffer = ByteBuffer()
        var expected: [DecodedResponse] = []
        for (index, sample) in WireSample.responses.enumerated() {
            let correlationId = Int32(index) * 104_729 - 3
            sample.appendFrame(RequestHeader(apiKey: sample.api, apiVersion: 0, correlationId: correlationId, clientId: nil), &buffer)
            expected.append(DecodedResponse(correlationId: correlationId, error: nil, body: sample.body))
            if index % 3 == 0 {
                let error = WireError(ErrorCode.allCases[1 + index % (ErrorCode.allCases.count - 1)], "error after \(sample.name)")
                FrameEncoder.encodeError(error, correlationId: correlationId + 1, into: &buffer)
                expected.append(DecodedResponse(correlationId: correlationId + 1, error: error, body: []))
            }
        }
        // Error codes this build does not know, with and without a message; the broker could not read a
        // correlation id (−1).
        var writer = WireWriter(buffer)
        for (code, message) in [(Int16(999), "from the future" as String?), (Int16(-7), nil)] {
            writer.write(Int32(ResponseFrame.headerSize + (message?.utf8.count ?? 0)))
            writer.write(Int32(-1))
            writer.write(code)
            writer.write(message)
            expected.append(DecodedResponse(correlationId: -1, error: WireError(.unknownServerError, "unknown error code \(code): \(message ?? "")"),
                                            body: []))
        }
        // A known code with a null message.
        writer.write(Int32(ResponseFrame.headerSize))
        writer.write(Int32(5))
        writer.write(ErrorCode.requestTimedOut.rawValue)
        writer.write(nil as String?)
        expected.append(DecodedResponse(correlationId: 5, error: WireError(.requestTimedOut, ""), body: []))
        return (Array(writer.buffer.readableBytesView), expected)
    }

    // MARK: Same frames however the stream is cut

    @Test("request frames: all at once, byte by byte and random cuts give the same frames", arguments: Split.every)
    func requestFramesSurviveAnySplit(split: Split) throws {
        var rng = SeededRandom.fromEnvironment()
        let (bytes, expected) = Self.requestStream()
        for round in 0..<(split.isRandom ? 20 : 1) {
            let pieces = split.pieces(bytes, &rng)
            let (frames, bufferedMax) = try Self.decodeRequests(pieces, limits: FrameLimits(), rng: &rng)
            #expect(frames == expected, "\(split), round \(round), seed \(rng.seed)")
            #expect(bufferedMax <= bytes.count, "seed \(rng.seed)")
        }
    }

    @Test("response frames: all at once, byte by byte and random cuts give the same frames", arguments: Split.every)
    func responseFramesSurviveAnySplit(split: Split) throws {
        var rng = SeededRandom.fromEnvironment()
        let (bytes, expected) = Self.responseStream()
        for round in 0..<(split.isRandom ? 20 : 1) {
            let frames = try Self.decodeResponses(split.pieces(bytes, &rng), rng: &rng)
            #expect(frames == expected, "\(split), round \(round), seed \(rng.seed)")
        }
    }

    @Test("decoded bodies parse as the message that was sent")
    func decodedBodiesParse() throws {
        var rng = SeededRandom.fromEnvironment()
        let (bytes, _) = Self.requestStream()
        let (frames, _) = try Self.decodeRequests(Split.random(pieceBytesMax: 64).pieces(bytes, &rng), limits: FrameLimits(), rng: &rng)
        for (sample, frame) in zip(WireSample.requests, frames) {
            guard case .request(_, let body) = frame else {
                Issue.record("\(sample.name): \(frame), seed \(rng.seed)")
                continue
            }
            #expect(try sample.decodesEqual(ByteBuffer(bytes: body)), "\(sample.name), seed \(rng.seed)")
        }
    }

    @Test("through a channel pipeline (ByteToMessageHandler) the frames are the same")
    func requestFramesThroughAPipeline() throws {
        var rng = SeededRandom.fromEnvironment()
        let (bytes, expected) = Self.requestStream()
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(RequestFrameDecoder()))
        for piece in Split.random(pieceBytesMax: 100).pieces(bytes, &rng) {
            try channel.writeInbound(ByteBuffer(bytes: piece))
        }
        var frames: [DecodedRequest] = []
        while let inbound = try channel.readInbound(as: InboundRequest.self) { frames.append(DecodedRequest(inbound)) }
        #expect(frames == expected, "seed \(rng.seed)")
        #expect(try channel.finish().isClean)
    }

    // MARK: Oversized frames

    /// A CreateTopics request of about 2 KB: far above the small limits below.
    static func bigRequest(correlationId: Int32, clientId: String?) -> [UInt8] {
        let topics = (0..<60).map { CreateTopicsRequest.Topic(name: "topic-number-\($0)", partitions: 3) }
        var buffer = ByteBuffer()
        FrameEncoder.encodeRequest(CreateTopicsRequest(topics: topics),
                                   header: RequestHeader(apiKey: .createTopics, apiVersion: 0, correlationId: correlationId, clientId: clientId),
                                   into: &buffer)
        return Array(buffer.readableBytesView)
    }

    static func smallRequest(_ api: ApiKey, correlationId: Int32) -> (bytes: [UInt8], expected: DecodedRequest) {
        let header = RequestHeader(apiKey: api, apiVersion: 0, correlationId: correlationId, clientId: "c")
        var buffer = ByteBuffer()
        FrameEncoder.encodeRequest(ApiVersionsRequest(), header: header, into: &buffer)
        return (Array(buffer.readableBytesView), .request(header, body: []))
    }

    @Test("an oversized frame is reported with its header and skipped; the frames around it decode", arguments: Split.every)
    func oversizedFrameIsSkipped(split: Split) throws {
        var rng = SeededRandom.fromEnvironment()
        let limits = FrameLimits(frameBytesMax: 64)
        let big = Self.bigRequest(correlationId: 77, clientId: "big-client")
        let before = Self.smallRequest(.apiVersions, correlationId: 76)
        let after = Self.smallRequest(.listGroups, correlationId: 78)
        let bigHeader = RequestHeader(apiKey: .createTopics, apiVersion: 0, correlationId: 77, clientId: "big-client")
        let expected: [DecodedRequest] = [before.expected, .tooLarge(bigHeader, size: big.count - 4), after.expected]
        for round in 0..<(split.isRandom ? 20 : 1) {
            let pieces = split.pieces(before.bytes + big + after.bytes, &rng)
            let (frames, _) = try Self.decodeRequests(pieces, limits: limits, rng: &rng)
            #expect(frames == expected, "\(split), round \(round), seed \(rng.seed)")
        }
    }

    @Test("an oversized frame's bytes are discarded as they arrive, never buffered")
    func oversizedFrameIsNotBuffered() throws {
        var rng = SeededRandom.fromEnvironment()
        let limits = FrameLimits(frameBytesMax: 64)
        // The decoder may hold the size field and at most one header while it waits to name the frame.
        let waitingBytesMax = 4 + RequestHeader.sizeMin + limits.clientIdBytesMax
        let big = Self.bigRequest(correlationId: 1234, clientId: "x")
        let after = Self.smallRequest(.metadata, correlationId: 1235)
        var decoder = RequestFrameDecoder(limits: limits)
        var buffer = ByteBuffer()
        var reported = false
        var offset = 0
        while offset < big.count {
            let end = min(big.count, offset + rng.int(1...40))
            buffer.writeBytes(big[offset..<end])
            offset = end
            if let inbound = try decoder.next(&buffer) {
                #expect(!reported, "reported twice, seed \(rng.seed)")
                #expect(DecodedRequest(inbound) == .tooLarge(RequestHeader(apiKey: .createTopics, apiVersion: 0, correlationId: 1234, clientId: "x"),
                                                              size: big.count - 4), "seed \(rng.seed)")
                reported = true
            }
            #expect(buffer.readableBytes <= waitingBytesMax, "\(buffer.readableBytes) bytes buffered at \(offset), seed \(rng.seed)")
            if reported {
                #expect(buffer.readableBytes == 0, "\(buffer.readableBytes) bytes of the oversized frame kept at \(offset), seed \(rng.seed)")
            }
            #expect(try decoder.next(&buffer) == nil, "seed \(rng.seed)")
        }
        #expect(reported, "seed \(rng.seed)")
        buffer.writeBytes(after.bytes)
        let next = try decoder.next(&buffer).map(DecodedRequest.init)
        #expect(next == after.expected, "seed \(rng.seed)")
        #expect(buffer.readableBytes == 0)
    }

    @Test("an oversized frame whose header cannot be read is reported without one and still skipped")
    func oversizedFrameWithUnreadableHeader() throws {
        let limits = FrameLimits(frameBytesMax: 64)
        // The client id is longer than the limit, so the header never parses.
        let big = Self.bigRequest(correlationId: 5, clientId: String(repeating: "z", count: 300))
        let after = Self.smallRequest(.apiVersions, correlationId: 6)
        var rng = SeededRandom.fromEnvironment()
        for split in Split.every {
            let (frames, _) = try Self.decodeRequests(split.pieces(big + after.bytes, &rng), limits: limits, rng: &rng)
            #expect(frames == [.tooLarge(nil, size: big.count - 4), after.expected], "\(split), seed \(rng.seed)")
        }
    }

    @Test("a frame of exactly frameBytesMax is delivered; one byte more is refused")
    func frameLimitIsInclusive() throws {
        let request = Self.smallRequest(.apiVersions, correlationId: 1)
        let size = request.bytes.count - 4
        var rng = SeededRandom(seed: 1)
        let (atLimit, _) = try Self.decodeRequests([request.bytes], limits: FrameLimits(frameBytesMax: size), rng: &rng)
        #expect(atLimit == [request.expected])
        let (overLimit, _) = try Self.decodeRequests([request.bytes], limits: FrameLimits(frameBytesMax: size - 1), rng: &rng)
        guard case .request(let header, _) = request.expected else { return }
        #expect(overLimit == [.tooLarge(header, size: size)])
    }

    // MARK: Unframeable input

    @Test("a request frame size below the smallest header throws", arguments: [Int32(9), 0, -1, Int32.min])
    func requestSizeBelowHeaderThrows(size: Int32) {
        var buffer = ByteBuffer()
        buffer.writeInteger(size)
        buffer.writeBytes([0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF])
        var decoder = RequestFrameDecoder()
        #expect(throws: WireDecodingError.self, "size \(size)") { _ = try decoder.next(&buffer) }
    }

    @Test("a request frame of exactly the smallest header decodes with an empty body")
    func requestOfExactlyTheHeader() throws {
        var buffer = ByteBuffer(bytes: [0, 0, 0, 10, 0, 13, 0, 0, 0, 0, 0, 42, 0xFF, 0xFF])
        var decoder = RequestFrameDecoder()
        let frame = try #require(try decoder.next(&buffer))
        #expect(DecodedRequest(frame) == .request(RequestHeader(apiKey: .listGroups, apiVersion: 0, correlationId: 42, clientId: nil), body: []))
    }

    @Test("a request header that does not fit its frame throws")
    func requestHeaderLongerThanTheFrameThrows() {
        // Size 12: key, version, correlation id, then a client id of 5 bytes of which 2 are in the frame.
        var buffer = ByteBuffer(bytes: [0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 1, 0, 5, 0x61, 0x62, 0x63, 0x64, 0x65])
        var decoder = RequestFrameDecoder()
        #expect(throws: WireDecodingError.self) { _ = try decoder.next(&buffer) }
    }

    @Test("a response frame size outside headerSize...frameBytesMax throws as soon as the size is read")
    func responseSizeOutOfRangeThrows() {
        for size in [Int32(7), 0, -1, 101] {
            var buffer = ByteBuffer()
            buffer.writeInteger(size)
            var decoder = ResponseFrameDecoder(frameBytesMax: 100)
            #expect(throws: WireDecodingError.self, "size \(size)") { _ = try decoder.next(&buffer) }
        }
    }

    @Test("an incomplete frame is not consumed")
    func incompleteFramesWait() throws {
        let request = Self.smallRequest(.apiVersions, correlationId: 3)
        for cut in 0..<request.bytes.count {
            var buffer = ByteBuffer(bytes: request.bytes[..<cut])
            var decoder = RequestFrameDecoder()
            #expect(try decoder.next(&buffer) == nil, "cut at \(cut)")
            #expect(buffer.readableBytes == cut, "cut at \(cut)")
        }
    }
}

extension FrameDecoderTests.Split {
    var isRandom: Bool {
        if case .random = self { return true }
        return false
    }
}
