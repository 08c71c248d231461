import NIOCore
import SluiceTestSupport
import SluiceWire
import Testing

extension WireSample {
    /// The broker-write requests (ApiKey 21, 22), in the shape of `requests`. BrokerProduce carries
    /// Produce's body, so its samples are ProduceRequests under key 21.
    static let producersRequests: [WireSample] = [
        make("BrokerProduceRequest (internal topic, acks all)", .brokerProduce, request: true, ProduceRequest(
            acks: .all, timeoutMs: 10_000, topics: [
                .init(name: "__processor_checkpoints", partitions: [.init(partition: 3, records: ByteBuffer(bytes: batchBytes))]),
                .init(name: "out", partitions: [.init(partition: 0, records: ByteBuffer())]),
            ]), equal: producesEqual),
        make("DescribeProducersRequest", .describeProducers, request: true, DescribeProducersRequest(timeoutMs: 5_000, partitions: [
            .init(topic: "out", partition: 0, producerId: 1_000),
            .init(topic: "__processor_checkpoints", partition: Int32.max, producerId: Int64.max),
            .init(topic: "zürich-日本", partition: -1, producerId: -1),
        ])),
        make("DescribeProducersRequest (no entries)", .describeProducers, request: true,
             DescribeProducersRequest(timeoutMs: Int32.min, partitions: [])),
    ]

    /// The broker-write responses, in the shape of `responses`.
    static let producersResponses: [WireSample] = [
        make("BrokerProduceResponse", .brokerProduce, request: false, ProduceResponse(topics: [
            .init(name: "__processor_checkpoints", partitions: [
                .init(partition: 3, baseOffset: 17, logStartOffset: 0),
                .init(partition: 4, error: .notLeader, errorMessage: "broker 2 leads it", baseOffset: -1, logStartOffset: -1),
            ]),
        ])),
        make("DescribeProducersResponse", .describeProducers, request: false, DescribeProducersResponse(partitions: [
            .init(topic: "out", partition: 0, producerEpoch: 0, recordsWritten: 10),
            .init(topic: "out", partition: 1, producerEpoch: -1, recordsWritten: 0),
            .init(topic: "out", partition: 2, producerEpoch: Int16.max, recordsWritten: Int64(Int32.max) + 1),
            .init(topic: "zürich-日本", partition: 9, failure: WireError(.unknownTopicOrPartition, "topic 'zürich-日本' does not exist")),
            .init(topic: "out", partition: 3, error: .requestTimedOut, errorMessage: nil, producerEpoch: -1, recordsWritten: -1),
        ])),
        make("DescribeProducersResponse (no entries)", .describeProducers, request: false, DescribeProducersResponse(partitions: [])),
    ]
}

/// BrokerProduce (21) and DescribeProducers (22), protocol.md "Broker writes": the byte layout, the named
/// limit, and refusal of truncated bodies.
///
/// Round trips, prefixes, trailing bytes, damage and frames also run over the samples above in
/// MessageRoundTripTests and FrameDecoderTests, which take every request and response sample.
@Suite("Broker-write message bodies")
struct ProducersMessagesTests {
    static func bytes<M: WireMessage>(_ message: M) -> [UInt8] {
        var writer = WireWriter(ByteBuffer())
        message.encode(to: &writer, version: 0)
        return Array(writer.buffer.readableBytesView)
    }

    /// An int64 whose value fits one byte, big-endian.
    static func int64(_ low: UInt8) -> [UInt8] { [0, 0, 0, 0, 0, 0, 0, low] }

    /// A DescribeProducersRequest body with `count` entries, written field by field (the encoder refuses
    /// more than the limit).
    static func requestBody(entries count: Int) -> [UInt8] {
        var writer = WireWriter(ByteBuffer())
        writer.write(Int32(100))
        writer.write(Int32(count))
        for index in 0..<count {
            writer.write("t")
            writer.write(Int32(index))
            writer.write(Int64(7))
        }
        return Array(writer.buffer.readableBytesView)
    }

    @Test("the samples cover both broker-write APIs, both directions")
    func samplesCoverBothApis() {
        for api: ApiKey in [.brokerProduce, .describeProducers] {
            #expect(WireSample.producersRequests.contains { $0.api == api }, "no request sample for \(api)")
            #expect(WireSample.producersResponses.contains { $0.api == api }, "no response sample for \(api)")
            #expect(WireSample.requests.contains { $0.api == api }, "\(api) samples are not in WireSample.requests")
            #expect(WireSample.responses.contains { $0.api == api }, "\(api) samples are not in WireSample.responses")
        }
    }

    @Test("encode then decode gives the same value", arguments: WireSample.producersRequests + WireSample.producersResponses)
    func roundTrip(sample: WireSample) throws {
        #expect(try sample.decodesEqual(ByteBuffer(bytes: sample.body)), "\(sample.name) changed in a round trip")
    }

    @Test("DescribeProducersRequest is laid out as protocol.md says")
    func requestLayout() throws {
        let request = DescribeProducersRequest(timeoutMs: 258, partitions: [.init(topic: "t", partition: 2, producerId: 9)])
        let expected: [UInt8] = [0, 0, 1, 2]    // timeout_ms 258
            + [0, 0, 0, 1]                      // partitions: 1
            + [0, 1, 0x74]                      // topic "t"
            + [0, 0, 0, 2]                      // partition
            + Self.int64(9)                     // producer_id
        #expect(Self.bytes(request) == expected)
        #expect(try DescribeProducersRequest.decode(ByteBuffer(bytes: expected), version: 0) == request)
    }

    @Test("DescribeProducersResponse is laid out as protocol.md says")
    func responseLayout() throws {
        let response = DescribeProducersResponse(partitions: [
            .init(topic: "t", partition: 1, producerEpoch: 3, recordsWritten: 10),
            .init(topic: "u", partition: 0, failure: WireError(.notLeader, "x")),
        ])
        let expected: [UInt8] = [0, 0, 0, 2]                    // partitions: 2
            + [0, 1, 0x74] + [0, 0, 0, 1]                       // topic "t", partition 1
            + [0, 0, 0xFF, 0xFF]                                // error none, message null
            + [0, 3] + Self.int64(10)                           // producer_epoch, records_written
            + [0, 1, 0x75] + [0, 0, 0, 0]                       // topic "u", partition 0
            + [0, 29, 0, 1, 0x78]                               // error not_leader, message "x"
            + [0xFF, 0xFF] + Array(repeating: 0xFF, count: 8)   // producer_epoch −1, records_written −1
        #expect(Self.bytes(response) == expected)
        #expect(try DescribeProducersResponse.decode(ByteBuffer(bytes: expected), version: 0) == response)
    }

    @Test("more entries than DescribeProducersLimits.partitionsMax are refused, naming the limit; exactly the limit passes")
    func tooManyEntries() throws {
        let limit = DescribeProducersLimits.partitionsMax
        #expect(limit == 1_000)
        let atLimit = try DescribeProducersRequest.decode(ByteBuffer(bytes: Self.requestBody(entries: limit)), version: 0)
        #expect(atLimit.partitions.count == limit)
        let reason = WirePrimitiveTests.reason {
            _ = try DescribeProducersRequest.decode(ByteBuffer(bytes: Self.requestBody(entries: limit + 1)), version: 0)
        }
        #expect(reason == "partitions: 1001 elements; the limit is 1000 (DescribeProducersLimits.partitionsMax)")
        // The answer has the same bound: a count above it is refused before any entry is read.
        let responseReason = WirePrimitiveTests.reason {
            _ = try DescribeProducersResponse.decode(ByteBuffer(bytes: [0, 0, 0x03, 0xE9]), version: 0)
        }
        #expect(responseReason == "partitions: 1001 elements; the limit is 1000 (DescribeProducersLimits.partitionsMax)")
    }

    @Test("truncated bodies are refused with a reason naming the field", arguments: [
        ([0, 0, 1], "truncated: timeout_ms needs 4 bytes, 3 left"),
        ([0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0x74, 0, 0, 0, 2, 0, 0, 0], "truncated: producer_id needs 8 bytes, 3 left"),
        ([0, 0, 0, 1, 0, 0, 0, 2, 0, 1, 0x74, 0, 0, 0, 2] + int64(9), "truncated: topic needs 2 bytes, 0 left"),
    ] as [([UInt8], String)])
    func truncatedRequests(body: [UInt8], expected: String) {
        #expect(WirePrimitiveTests.reason { _ = try DescribeProducersRequest.decode(ByteBuffer(bytes: body), version: 0) } == expected)
    }

    @Test("a response cut anywhere is refused")
    func truncatedResponses() throws {
        let body = Self.bytes(DescribeProducersResponse(partitions: [.init(topic: "t", partition: 1, producerEpoch: 3, recordsWritten: 10)]))
        for length in 0..<body.count {
            let reason = WirePrimitiveTests.reason { _ = try DescribeProducersResponse.decode(ByteBuffer(bytes: Array(body[..<length])), version: 0) }
            #expect(reason != nil && reason?.hasPrefix("not a") == false, "prefix \(length): \(reason ?? "decoded")")
        }
        let last = WirePrimitiveTests.reason { _ = try DescribeProducersResponse.decode(ByteBuffer(bytes: Array(body.dropLast())), version: 0) }
        #expect(last == "truncated: records_written needs 8 bytes, 7 left")
    }

    @Test("API keys 21 and 22 keep their numbers and names")
    func numbersAndNames() {
        #expect([ApiKey.brokerProduce, .describeProducers].map(\.rawValue) == [21, 22])
        #expect([ApiKey.brokerProduce, .describeProducers].map(\.description) == ["BrokerProduce", "DescribeProducers"])
    }
}
