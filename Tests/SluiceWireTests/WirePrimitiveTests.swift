import NIOCore
import SluiceWire
import Testing

/// The primitives of protocol.md ("Primitive types") under hostile input: lengths and counts that
/// promise more than is there, negative lengths, bad booleans, bad UTF-8; and the bound on error
/// messages.
@Suite("Wire primitives")
struct WirePrimitiveTests {
    static func buffer(_ build: (inout WireWriter) -> Void) -> ByteBuffer {
        var writer = WireWriter(ByteBuffer())
        build(&writer)
        return writer.buffer
    }

    static func reason(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let error as WireDecodingError {
            return error.reason
        } catch {
            return "not a WireDecodingError: \(error)"
        }
    }

    // MARK: Hostile lengths

    @Test("a string length of 32767 with 3 bytes present throws")
    func stringLongerThanTheBytesThrows() {
        // DeleteTopicsRequest: one name whose length says 32767 bytes.
        let body = ByteBuffer(bytes: [0, 0, 0, 1, 0x7F, 0xFF, 0x61, 0x62, 0x63])
        let reason = Self.reason { _ = try DeleteTopicsRequest.decode(body, version: 0) }
        #expect(reason?.contains("32767") == true, "\(reason ?? "decoded")")
        #expect(reason?.contains("3 left") == true, "\(reason ?? "decoded")")
    }

    @Test("an array count of Int32.max throws before any element is read or allocated")
    func hugeArrayCountThrowsWithoutAllocating() {
        // Every element would take 32 bytes: reserving Int32.max of them (64 GiB) would fail loudly, so
        // passing this test shows the count is checked before `reserveCapacity`.
        var reader = WireReader(ByteBuffer(bytes: [0x7F, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4]))
        var elementsRead = 0
        let reason = Self.reason {
            _ = try reader.readArray("things") { r -> (Int64, Int64, Int64, Int64) in
                elementsRead += 1
                return (Int64(try r.readInt8()), 0, 0, 0)
            }
        }
        #expect(elementsRead == 0)
        #expect(reason?.contains("2147483647") == true, "\(reason ?? "decoded")")
        #expect(reason?.contains("things") == true, "\(reason ?? "decoded")")

        // The same through real bodies: a metadata topic list and a produce partition list.
        let metadata = ByteBuffer(bytes: [0x7F, 0xFF, 0xFF, 0xFF, 0])
        #expect(Self.reason { _ = try MetadataRequest.decode(metadata, version: 0) }?.contains("topics") == true)
        let produce = Self.buffer { w in
            w.write(Int16(1)); w.write(Int32(100)); w.write(Int32(1)); w.write("t"); w.write(Int32.max)
        }
        #expect(Self.reason { _ = try ProduceRequest.decode(produce, version: 0) }?.contains("partitions") == true)
    }

    @Test("a count just above the bytes left throws; equal to them is read")
    func countBoundaryIsTheBytesLeft() throws {
        // Three one-byte elements: a count of 3 reads them, 4 is refused up front.
        var exact = WireReader(ByteBuffer(bytes: [0, 0, 0, 3, 1, 0, 1]))
        #expect(try exact.readArray { try $0.readBool() } == [true, false, true])
        var over = WireReader(ByteBuffer(bytes: [0, 0, 0, 4, 1, 0, 1]))
        #expect(throws: WireDecodingError.self) { _ = try over.readArray { try $0.readBool() } }
    }

    @Test("a bytes length of Int32.max throws")
    func hugeBytesLengthThrows() {
        let produce = Self.buffer { w in
            w.write(Int16(1)); w.write(Int32(100)); w.write(Int32(1)); w.write("t"); w.write(Int32(1)); w.write(Int32(0))
            w.write(Int32.max); w.write(Int32(0))
        }
        let reason = Self.reason { _ = try ProduceRequest.decode(produce, version: 0) }
        #expect(reason?.contains("records") == true, "\(reason ?? "decoded")")
    }

    @Test("negative lengths and counts other than -1 are malformed", arguments: [Int32(-2), -1000, Int32.min])
    func negativeLengthsThrow(length: Int32) {
        var array = WireReader(Self.buffer { $0.write(length) })
        #expect(throws: WireDecodingError.self) { _ = try array.readNullableArray { try $0.readInt8() } }
        var bytes = WireReader(Self.buffer { $0.write(length) })
        #expect(throws: WireDecodingError.self) { _ = try bytes.readNullableBytes() }
        let short = Int16(clamping: length)
        var string = WireReader(Self.buffer { $0.write(short) })
        #expect(throws: WireDecodingError.self) { _ = try string.readNullableString() }
    }

    @Test("-1 is null for strings, arrays and bytes")
    func minusOneIsNull() throws {
        var reader = WireReader(ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]))
        #expect(try reader.readNullableString() == nil)
        #expect(try reader.readNullableArray { try $0.readInt8() } == nil)
        #expect(try reader.readNullableBytes() == nil)
        try reader.expectEnd("nulls")
    }

    @Test("a boolean byte other than 0 or 1 is malformed", arguments: [UInt8(2), 0x7F, 0x80, 0xFF])
    func badBooleanThrows(byte: UInt8) {
        // MetadataRequest: null topic list, then include_internal.
        let body = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF, byte])
        let reason = Self.reason { _ = try MetadataRequest.decode(body, version: 0) }
        #expect(reason?.contains("include_internal") == true, "\(reason ?? "decoded")")
    }

    @Test("invalid UTF-8 in a string is malformed, not repaired")
    func invalidUTF8Throws() {
        // protocol.md: "other negative lengths and invalid UTF-8 are malformed".
        for bad: [UInt8] in [[0xFF], [0xC3], [0x61, 0xED, 0xA0, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80]] {
            let body = ByteBuffer(bytes: [0, 0, 0, 1, 0, UInt8(bad.count)] + bad)
            let result = Result { try DeleteTopicsRequest.decode(body, version: 0) }
            switch result {
            case .success(let request):
                Issue.record("\(bad) decoded as \(request.names.map { Array($0.unicodeScalars) }) instead of throwing")
            case .failure(let error):
                #expect(error is WireDecodingError, "\(bad): \(error)")
            }
        }
    }

    // MARK: Headers

    @Test("a request header's client id is bounded by FrameLimits.clientIdBytesMax")
    func clientIdIsBounded() throws {
        let limits = FrameLimits(frameBytesMax: 1 << 20, clientIdBytesMax: 255)
        for (length, accepted) in [(0, true), (255, true), (256, false), (1000, false)] {
            let header = RequestHeader(apiKey: .metadata, apiVersion: 0, correlationId: 9, clientId: String(repeating: "c", count: length))
            var writer = WireWriter(ByteBuffer())
            header.encode(to: &writer)
            var reader = WireReader(writer.buffer)
            if accepted {
                let decoded = try RequestHeader(from: &reader, limits: limits)
                #expect(decoded == header)
            } else {
                #expect(throws: WireDecodingError.self, "client id of \(length) bytes") {
                    _ = try RequestHeader(from: &reader, limits: limits)
                }
            }
        }
    }

    @Test("an unknown API key survives the header, so it can be answered")
    func unknownApiKeyIsKept() throws {
        var writer = WireWriter(ByteBuffer())
        RequestHeader(apiKeyRaw: 999, apiVersion: 3, correlationId: -5, clientId: nil).encode(to: &writer)
        var reader = WireReader(writer.buffer)
        let header = try RequestHeader(from: &reader, limits: FrameLimits())
        #expect(header.apiKeyRaw == 999 && header.apiKey == nil && header.correlationId == -5 && header.clientId == nil)
    }

    // MARK: Error messages

    @Test("WireError.bounded leaves short messages alone")
    func boundedKeepsShortMessages() {
        for message in ["", "short", String(repeating: "x", count: WireError.messageBytesMax)] {
            let error = WireError(.invalidRecord, message)
            #expect(error.bounded == error)
        }
    }

    @Test("WireError.bounded cuts long messages on a character boundary and marks the cut")
    func boundedCutsLongMessages() throws {
        let family = "👨‍👩‍👧"  // one Character of 18 bytes
        let messages = [
            String(repeating: "x", count: WireError.messageBytesMax + 1),
            String(repeating: "abcdefghij", count: 10_000),
            String(repeating: "日", count: 3000),
            String(repeating: family, count: 1000),
        ]
        for message in messages {
            let bounded = WireError(.corruptMessage, message).bounded
            #expect(bounded.code == .corruptMessage)
            #expect(bounded.message.utf8.count <= WireError.messageBytesMax, "\(bounded.message.utf8.count) bytes")
            #expect(bounded.message.utf8.count > WireError.messageBytesMax - 32, "cut far too short: \(bounded.message.utf8.count)")
            #expect(bounded.message.hasSuffix("..."))
            let kept = String(bounded.message.dropLast(3))
            #expect(message.hasPrefix(kept))
            #expect(message.count > kept.count)
        }
        let families = WireError(.corruptMessage, messages[3]).bounded.message.dropLast(3)
        #expect(families.allSatisfy { $0 == Character(family) }, "a family emoji was split")

        // A bounded message fits an error frame and reads back unchanged.
        let bounded = WireError(.invalidRequest, String(repeating: "é", count: 40_000)).bounded
        var frame = ByteBuffer()
        FrameEncoder.encodeError(bounded, correlationId: 12, into: &frame)
        var decoder = ResponseFrameDecoder()
        let decoded = try #require(try decoder.next(&frame))
        #expect(decoded.correlationId == 12 && decoded.error == bounded && decoded.body.readableBytes == 0)
    }
}
