import NIOCore
import SluiceTestSupport
import SluiceWire
import Testing

/// Every request and response body of `Messages+*.swift`: encode → decode gives the same value, and
/// malformed bodies (cut short, with bytes left over, randomly damaged) are refused with a
/// `WireDecodingError`, never a crash or another error type (protocol.md, "Primitive types").
@Suite("Message bodies")
struct MessageRoundTripTests {
    /// Decodes `bytes` as the sample's type; returns what went wrong, nil for a successful decode.
    static func decodeError(_ sample: WireSample, _ bytes: [UInt8]) -> (any Error)? {
        do {
            _ = try sample.decodesEqual(ByteBuffer(bytes: bytes))
            return nil
        } catch {
            return error
        }
    }

    @Test("the samples cover every API, both directions")
    func samplesCoverEveryApi() {
        for api in ApiKey.allCases {
            #expect(WireSample.requests.contains { $0.api == api }, "no request sample for \(api)")
            #expect(WireSample.responses.contains { $0.api == api }, "no response sample for \(api)")
        }
    }

    @Test("encode then decode gives the same value", arguments: WireSample.all)
    func roundTrip(sample: WireSample) throws {
        #expect(try sample.decodesEqual(ByteBuffer(bytes: sample.body)), "\(sample.name) changed in a round trip")
    }

    @Test("every strict prefix of a body throws WireDecodingError", arguments: WireSample.all)
    func everyPrefixThrows(sample: WireSample) {
        for length in 0..<sample.body.count {
            let error = Self.decodeError(sample, Array(sample.body[..<length]))
            #expect(error is WireDecodingError,
                    "\(sample.name): prefix of \(length) of \(sample.body.count) bytes gave \(error.map { "\($0)" } ?? "a value")")
        }
    }

    @Test("bytes after the last field throw WireDecodingError", arguments: WireSample.all)
    func trailingBytesThrow(sample: WireSample) {
        for garbage: [UInt8] in [[0], [0xFF], [0, 0, 0, 0], Array(repeating: 0x41, count: 100)] {
            let error = Self.decodeError(sample, sample.body + garbage)
            #expect(error is WireDecodingError, "\(sample.name) + \(garbage.count) bytes gave \(error.map { "\($0)" } ?? "a value")")
            if let error = error as? WireDecodingError {
                #expect(error.reason.contains("unexpected bytes"), "\(sample.name): \(error.reason)")
            }
        }
    }

    @Test("randomly damaged bodies decode or throw WireDecodingError, never anything else", arguments: WireSample.all)
    func damagedBodiesNeverCrash(sample: WireSample) {
        var rng = SeededRandom.fromEnvironment()
        for round in 0..<300 {
            var bytes = sample.body
            for _ in 0..<rng.int(1...4) {
                switch rng.int(0...3) {
                case 0 where !bytes.isEmpty: bytes[rng.int(0...(bytes.count - 1))] = UInt8.random(in: 0...255, using: &rng)
                case 1 where !bytes.isEmpty: bytes[rng.int(0...(bytes.count - 1))] = [0x00, 0x7F, 0x80, 0xFF].randomElement(using: &rng)!
                case 2: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: rng.int(0...bytes.count))
                default: if !bytes.isEmpty { bytes.remove(at: rng.int(0...(bytes.count - 1))) }
                }
            }
            if let error = Self.decodeError(sample, bytes) {
                #expect(error is WireDecodingError, "\(sample.name) round \(round): \(type(of: error)) \(error), seed \(rng.seed)")
            }
        }
    }

    @Test("an unknown error code in a response body reads as unknown_server_error")
    func unknownErrorCodeReadsAsUnknownServerError() throws {
        var writer = WireWriter(ByteBuffer())
        TopicResultsResponse(topics: [TopicResult(name: "a", error: .invalidTopic, errorMessage: "m")]).encode(to: &writer, version: 0)
        var bytes = Array(writer.buffer.readableBytesView)
        // topics count (4) + name (2 + 1) put the error code at 7.
        bytes[7] = 0x03
        bytes[8] = 0xE7  // 999
        let decoded = try TopicResultsResponse.decode(ByteBuffer(bytes: bytes), version: 0)
        #expect(decoded.topics.first?.error == .unknownServerError)
        #expect(decoded.topics.first?.errorMessage == "m")
    }

    @Test("produce acks outside 0, 1, -1 are malformed")
    func produceAcksAreChecked() {
        for acks: Int16 in [2, -2, Int16.max] {
            var writer = WireWriter(ByteBuffer())
            writer.write(acks)
            writer.write(Int32(1000))
            writer.write(Int32(0))
            #expect(throws: WireDecodingError.self, "acks \(acks)") {
                try ProduceRequest.decode(writer.buffer, version: 0)
            }
        }
    }

    @Test("null where the protocol requires a value is malformed")
    func nullWhereRequiredThrows() {
        // ProduceRequest: acks, timeout, 1 topic "t", 1 partition 0, records null.
        var produce = WireWriter(ByteBuffer())
        produce.write(Int16(1))
        produce.write(Int32(1000))
        produce.write(Int32(1))
        produce.write("t")
        produce.write(Int32(1))
        produce.write(Int32(0))
        produce.write(bytes: nil as [UInt8]?)
        #expect(throws: WireDecodingError("records: null where bytes are required")) {
            try ProduceRequest.decode(produce.buffer, version: 0)
        }
        // DeleteTopicsRequest with a null array, then with a null name.
        var names = WireWriter(ByteBuffer())
        names.write(nil as [String]?) { $0.write($1) }
        #expect(throws: WireDecodingError.self) { try DeleteTopicsRequest.decode(names.buffer, version: 0) }
        var name = WireWriter(ByteBuffer())
        name.write(Int32(1))
        name.write(nil as String?)
        #expect(throws: WireDecodingError.self) { try DeleteTopicsRequest.decode(name.buffer, version: 0) }
    }
}
