import NIOCore
import SluiceBroker
import SluiceClient
import SluiceCompression
import SluiceCore
import SluiceTestSupport
import SluiceWire
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A running broker fed bytes no well-behaved client sends (protocol.md, "Limits and bad input"): each
/// case sends them over a raw socket, checks the answer's error code and that its message names the
/// problem, then checks that the broker still serves a normal client (a new topic, metadata, and a
/// produce + fetch round trip).
///
/// Raw sockets time out after a few seconds, so a broker that hangs fails the case instead of the run.
/// The suite is serialized because the compression-bomb case measures the process's peak memory.
@Suite("Bad input", .serialized, .timeLimit(.minutes(10)))
struct BadInputTests {
    // MARK: Helpers

    static let timestamp: Int64 = 1_700_000_000_000

    /// Runs `body` against a fresh broker and stops it afterwards, also when `body` throws.
    static func withBroker(_ label: String, configure: @escaping @Sendable (inout BrokerConfig) -> Void = { _ in },
                           _ body: (BrokerHarness) async throws -> Void) async throws {
        let harness = try await BrokerHarness.start(label, configure: configure)
        do {
            try await body(harness)
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    /// A request-level error answer: its correlation id, code, and a message that names the problem.
    static func expectError(_ frame: ResponseFrame, _ code: ErrorCode, correlationId: Int32, mentioning words: [String] = [],
                            sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(frame.correlationId == correlationId, "correlation id", sourceLocation: sourceLocation)
        #expect(frame.error?.code == code, "expected \(code), got \(frame.error.map { "\($0)" } ?? "no error")",
                sourceLocation: sourceLocation)
        #expect(frame.body.readableBytes == 0, "an error answer carries no body", sourceLocation: sourceLocation)
        expectMessage(frame.error?.message, mentioning: words, sourceLocation: sourceLocation)
    }

    /// A per-item error (one topic of a create, one partition of a produce or fetch).
    static func expectItem(_ what: String, _ code: ErrorCode, _ message: String?, is expected: ErrorCode, mentioning words: [String] = [],
                           sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(code == expected, "\(what): expected \(expected), got \(code): \(message ?? "nil")", sourceLocation: sourceLocation)
        expectMessage(message, mentioning: words, what, sourceLocation: sourceLocation)
    }

    static func expectMessage(_ message: String?, mentioning words: [String], _ what: String = "", sourceLocation: SourceLocation) {
        let message = message ?? ""
        #expect(!message.isEmpty, "\(what): the error message is empty", sourceLocation: sourceLocation)
        for word in words {
            #expect(message.lowercased().contains(word.lowercased()), "\(what): '\(message)' does not mention '\(word)'",
                    sourceLocation: sourceLocation)
        }
    }

    /// A valid uncompressed or compressed batch of `values`.
    static func batch(_ values: [String], codec: CompressionCodec = .none) throws -> [UInt8] {
        let records = values.enumerated().map { index, value in
            Record(offset: Int64(index), timestamp: timestamp + Int64(index), key: nil, value: Array(value.utf8))
        }
        return try RecordBatch.build(records: records, codec: codec).bytes
    }

    static func produceRequest(_ topic: String, _ partition: Int32, _ records: [UInt8], acks: Acks = .leader) -> ProduceRequest {
        ProduceRequest(acks: acks, timeoutMs: 5000, topics: [
            .init(name: topic, partitions: [.init(partition: partition, records: ByteBuffer(bytes: records))]),
        ])
    }

    /// Produces `records` over `raw` and returns the one partition's answer.
    static func produce(_ raw: RawConnection, _ topic: String, _ partition: Int32, _ records: [UInt8]) throws -> ProduceResponse.Partition {
        let id = try raw.send(.produce, produceRequest(topic, partition, records))
        let response = try raw.read(ProduceResponse.self, correlationId: id)
        let answer = try #require(response.topics.first?.partitions.first)
        #expect(answer.partition == partition)
        return answer
    }

    static func fetchRequest(_ topic: String, _ partitions: [(Int32, Int64)], maxWaitMs: Int32 = 0, minBytes: Int32 = 0) -> FetchRequest {
        FetchRequest(maxWaitMs: maxWaitMs, minBytes: minBytes, maxBytes: 1 << 20, topics: [
            .init(name: topic, partitions: partitions.map { .init(partition: $0.0, fetchOffset: $0.1, partitionMaxBytes: 1 << 20) }),
        ])
    }

    /// Every record of the batches in `buffer` (a fetch answer's records).
    static func records(in buffer: ByteBuffer) throws -> [Record] {
        let bytes = Array(buffer.readableBytesView)
        return try bytes.withUnsafeBytes { raw in
            var records: [Record] = []
            var start = 0
            while start < raw.count {
                let rest = UnsafeRawBufferPointer(rebasing: raw[start...])
                let header = try RecordBatch.validate(rest)
                records += try RecordBatch.records(in: UnsafeRawBufferPointer(rebasing: rest[0..<header.totalSize]))
                start += header.totalSize
            }
            return records
        }
    }

    /// The partition's log end offset, from ListOffsets.
    static func logEndOffset(_ raw: RawConnection, _ topic: String, _ partition: Int32 = 0) throws -> Int64 {
        let id = try raw.send(.listOffsets, ListOffsetsRequest(topics: [
            .init(name: topic, partitions: [.init(partition: partition, timestamp: ListOffsetsRequest.latestTimestamp)]),
        ]))
        let answer = try #require(try raw.read(ListOffsetsResponse.self, correlationId: id).topics.first?.partitions.first)
        #expect(answer.error == ErrorCode.none, "\(answer.errorMessage ?? "")")
        return answer.offset
    }

    /// The broker still serves a well-behaved client: it creates a topic, lists it, and a record
    /// produced through `Producer` comes back from a fetch.
    static func expectServes(_ harness: BrokerHarness, after label: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let client = harness.client()
        do {
            let topic = "healthy-after-" + String(label.map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "-" })
            try await client.createTopic(topic, partitions: 2)
            let metadata = try await client.metadata(topics: [topic])
            #expect(metadata.topics.first?.error == ErrorCode.none, sourceLocation: sourceLocation)
            #expect(metadata.topics.first?.partitions.count == 2, sourceLocation: sourceLocation)
            let value = Array("still serving after \(label)".utf8)
            let sent = try await Producer(client: client).send(ProducerRecord(topic: topic, value: value, partition: 1))
            let fetched = try await client.send(.fetch, fetchRequest(topic, [(1, sent.offset)]), expecting: FetchResponse.self)
            let partition = try #require(fetched.topics.first?.partitions.first, sourceLocation: sourceLocation)
            #expect(partition.head.error == ErrorCode.none, "\(partition.head.errorMessage ?? "")", sourceLocation: sourceLocation)
            let records = try Self.records(in: partition.records)
            #expect(records.map(\.value) == [value], sourceLocation: sourceLocation)
        } catch {
            await client.close()
            throw error
        }
        await client.close()
    }

    /// Peak resident memory of this process (`VmHWM`), in bytes; nil where /proc is missing.
    static func peakResidentBytes() -> Int? {
        guard let status = readFileBytes("/proc/self/status"), let text = String(validating: status, as: UTF8.self) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let digits = line.filter(\.isNumber)
            return Int(digits).map { $0 * 1024 }
        }
        return nil
    }

    // MARK: Framing

    @Test("a truncated frame followed by a close does not harm the broker")
    func truncatedFrameThenClose() async throws {
        try await Self.withBroker("truncated") { harness in
            let frame = Array(RawConnection.frame(apiKeyRaw: ApiKey.produce.rawValue, correlationId: 1,
                                                  Self.produceRequest("nowhere", 0, try Self.batch(["a", "b"]))).readableBytesView)
            // Inside the size field, inside the header, inside the body, one byte short.
            for cut in [2, 4, 9, 30, frame.count / 2, frame.count - 1] {
                let raw = try RawConnection(port: harness.port)
                try raw.send(bytes: Array(frame[..<cut]))
                raw.close()
            }
            // A client that goes away while its fetch long-polls.
            let client = harness.client()
            try await client.createTopic("quiet", partitions: 1)
            await client.close()
            let raw = try RawConnection(port: harness.port)
            try raw.send(.fetch, Self.fetchRequest("quiet", [(0, 0)], maxWaitMs: 300, minBytes: 1))
            raw.close()
            try await Self.expectServes(harness, after: "truncated frames")
        }
    }

    @Test("an oversized frame is answered frame_too_large and skipped; the same connection goes on")
    func oversizedFrame() async throws {
        try await Self.withBroker("oversized", configure: { $0.frameBytesMax = 4096 }) { harness in
            let client = harness.client()
            try await client.createTopic("big", partitions: 1)
            await client.close()
            var rng = SeededRandom.fromEnvironment()
            let batch = try RecordBatch.build(records: [Record(timestamp: Self.timestamp, key: nil, value: rng.fastBytes(64 * 1024))]).bytes
            let frame = Array(RawConnection.frame(apiKeyRaw: ApiKey.produce.rawValue, correlationId: 41,
                                                  Self.produceRequest("big", 0, batch)).readableBytesView)
            let raw = try RawConnection(port: harness.port)
            // The refusal comes as soon as the header is in, before the body is sent.
            try raw.send(bytes: Array(frame[..<300]))
            Self.expectError(try raw.readFrame(), .frameTooLarge, correlationId: 41,
                             mentioning: ["\(frame.count - 4)", "4096", "frame-bytes-max"])
            var offset = 300
            while offset < frame.count {
                let end = min(frame.count, offset + rng.int(1...3000))
                try raw.send(bytes: Array(frame[offset..<end]))
                offset = end
            }
            let id = try raw.send(.apiVersions, ApiVersionsRequest(), correlationId: 42)
            let versions = try raw.read(ApiVersionsResponse.self, correlationId: id)
            #expect(versions.apis.count == ApiKey.allCases.count, "seed \(rng.seed)")

            // Two more in one write, then a normal request: two refusals, then its answer.
            let twice = frame.replacingCorrelationId(43) + frame.replacingCorrelationId(44)
                + Array(RawConnection.frame(apiKeyRaw: ApiKey.metadata.rawValue, correlationId: 45, MetadataRequest(topics: ["big"])).readableBytesView)
            try raw.send(bytes: twice)
            Self.expectError(try raw.readFrame(), .frameTooLarge, correlationId: 43)
            Self.expectError(try raw.readFrame(), .frameTooLarge, correlationId: 44)
            let metadata = try raw.read(MetadataResponse.self, correlationId: 45)
            #expect(metadata.topics.first?.partitions.first?.highWatermark == 0, "a refused frame's batch was appended")

            // A frame just over the limit with a request right behind it, in one write: both usually
            // reach the decoder in the same read, and the request must not be lost with the skipped bytes.
            let justOver = Array(RawConnection.frame(apiKeyRaw: ApiKey.produce.rawValue, correlationId: 46,
                                                     Self.produceRequest("big", 0, Array(batch[..<5000]))).readableBytesView)
            try raw.send(bytes: justOver + Array(RawConnection.frame(apiKeyRaw: ApiKey.apiVersions.rawValue, correlationId: 47,
                                                                     ApiVersionsRequest()).readableBytesView))
            Self.expectError(try raw.readFrame(), .frameTooLarge, correlationId: 46)
            do {
                _ = try raw.read(ApiVersionsResponse.self, correlationId: 47)
            } catch let error as RawConnectionError {
                Issue.record("the request right behind a skipped frame was never answered: \(error)")
            }
            try await Self.expectServes(harness, after: "oversized frames")
        }
    }

    @Test("a frame size below the smallest header is answered with correlation id -1, then the connection closes",
          arguments: [Int32(5), 0, -1, Int32.min])
    func frameBelowHeaderMinimum(size: Int32) async throws {
        try await Self.withBroker("tiny-frame") { harness in
            let raw = try RawConnection(port: harness.port)
            // A normal request first: it is answered before the connection ends.
            var bytes = Array(RawConnection.frame(apiKeyRaw: ApiKey.apiVersions.rawValue, correlationId: 1, ApiVersionsRequest()).readableBytesView)
            withUnsafeBytes(of: size.bigEndian) { bytes.append(contentsOf: $0) }
            bytes += [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
            try raw.send(bytes: bytes)
            _ = try raw.read(ApiVersionsResponse.self, correlationId: 1)
            Self.expectError(try raw.readFrame(), .invalidRequest, correlationId: -1, mentioning: ["\(size)", "header"])
            #expect(raw.waitForClose(), "the connection stays open after an unframeable frame")
            try await Self.expectServes(harness, after: "a frame of size \(size)")
        }
    }

    // MARK: Request headers and bodies

    @Test("an unknown API key and an unsupported version are refused; the connection stays usable")
    func unknownApiAndUnsupportedVersion() async throws {
        try await Self.withBroker("unknown-api") { harness in
            let raw = try RawConnection(port: harness.port)
            try raw.send(apiKeyRaw: 999, correlationId: 7, body: [])
            Self.expectError(try raw.readFrame(), .unknownApi, correlationId: 7, mentioning: ["999"])
            try raw.send(apiKeyRaw: -1, correlationId: 8, body: [1, 2, 3])
            Self.expectError(try raw.readFrame(), .unknownApi, correlationId: 8, mentioning: ["-1"])
            try raw.send(apiKeyRaw: ApiKey.apiVersions.rawValue, version: 7, correlationId: 9, body: [])
            Self.expectError(try raw.readFrame(), .unsupportedVersion, correlationId: 9, mentioning: ["ApiVersions", "7"])
            try raw.send(.metadata, MetadataRequest(topics: nil), version: -1, correlationId: 10)
            Self.expectError(try raw.readFrame(), .unsupportedVersion, correlationId: 10, mentioning: ["Metadata", "-1"])
            _ = try raw.read(ApiVersionsResponse.self, correlationId: try raw.send(.apiVersions, ApiVersionsRequest(), correlationId: 11))
            _ = try raw.read(MetadataResponse.self, correlationId: try raw.send(.metadata, MetadataRequest(topics: nil), correlationId: 12))
            try await Self.expectServes(harness, after: "unknown APIs")
        }
    }

    @Test("bodies that do not parse are invalid_request naming the field; the connection stays usable")
    func malformedBodies() async throws {
        try await Self.withBroker("malformed") { harness in
            let raw = try RawConnection(port: harness.port)
            let cases: [(ApiKey, [UInt8], [String])] = [
                // A topic count of 1000 with four bytes behind it.
                (.metadata, [0, 0, 0x03, 0xE8, 0, 1, 0x61, 0], ["Metadata", "topics"]),
                (.metadata, [0xFF, 0xFF, 0xFF, 0xFF, 2], ["include_internal"]),
                (.apiVersions, [0], ["unexpected bytes"]),
                (.produce, [0, 5, 0, 0, 0x13, 0x88, 0, 0, 0, 0], ["acks"]),
                // A name length of 32767 with three bytes behind it.
                (.createTopics, [0, 0, 0, 1, 0x7F, 0xFF, 0x61, 0x62, 0x63], ["name"]),
                (.fetch, [0, 0, 0, 100], ["min_bytes"]),
                (.deleteTopics, [0xFF, 0xFF, 0xFF, 0xFE], ["names"]),
                (.listOffsets, [0x7F, 0xFF, 0xFF, 0xFF], ["topics"]),
                (.groupHeartbeat, [], ["group_id"]),
            ]
            for (index, (api, body, words)) in cases.enumerated() {
                let id = try raw.send(apiKeyRaw: api.rawValue, correlationId: Int32(100 + index), body: body)
                Self.expectError(try raw.readFrame(), .invalidRequest, correlationId: id, mentioning: words)
            }
            _ = try raw.read(MetadataResponse.self, correlationId: try raw.send(.metadata, MetadataRequest(topics: nil)))
            try await Self.expectServes(harness, after: "malformed bodies")
        }
    }

    @Test("invalid UTF-8 in a string field is invalid_request")
    func invalidUTF8IsInvalidRequest() async throws {
        try await Self.withBroker("utf8") { harness in
            let raw = try RawConnection(port: harness.port)
            // CreateTopics: one topic named [0x6F, 0xFF], 1 partition, replication 1, no configs; validate_only false.
            let body: [UInt8] = [0, 0, 0, 1, 0, 2, 0x6F, 0xFF, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0]
            let id = try raw.send(apiKeyRaw: ApiKey.createTopics.rawValue, correlationId: 5, body: body)
            Self.expectError(try raw.readFrame(), .invalidRequest, correlationId: id, mentioning: ["UTF-8"])
            try await Self.expectServes(harness, after: "invalid UTF-8")
        }
    }

    // MARK: Topic administration

    @Test("invalid topic names are invalid_topic, each with its reason")
    func invalidTopicNames() async throws {
        try await Self.withBroker("topic-names") { harness in
            let raw = try RawConnection(port: harness.port)
            let cases: [(String, [String])] = [
                ("", ["empty"]), ("a/b", ["a/b"]), ("..", ["reserved"]), (".", ["reserved"]),
                (String(repeating: "a", count: 201), ["201", "200"]), ("__x", ["__"]), ("a b", ["a b"]),
                ("tab\tname", ["letters"]), ("zürich", ["zürich"]), ("../../etc", ["letters"]),
            ]
            let id = try raw.send(.createTopics, CreateTopicsRequest(topics: cases.map { .init(name: $0.0, partitions: 1) }))
            let response = try raw.read(TopicResultsResponse.self, correlationId: id)
            #expect(response.topics.map(\.name) == cases.map(\.0))
            for (result, (name, words)) in zip(response.topics, cases) {
                Self.expectItem("topic '\(name)'", result.error, result.errorMessage, is: .invalidTopic, mentioning: words)
            }
            // The longest legal name is accepted; none of the refused ones exists.
            let longest = String(repeating: "b", count: 200)  // TopicRegistry.topicNameBytesMax
            let accepted = try raw.read(TopicResultsResponse.self, correlationId: try raw.send(.createTopics, CreateTopicsRequest(topics: [.init(name: longest, partitions: 1)])))
            #expect(accepted.topics.first?.error == ErrorCode.none, "\(accepted.topics.first?.errorMessage ?? "")")
            let deleted = try raw.read(TopicResultsResponse.self, correlationId: try raw.send(.deleteTopics, DeleteTopicsRequest(names: [longest])))
            #expect(deleted.topics.first?.error == ErrorCode.none, "\(deleted.topics.first?.errorMessage ?? "")")
            let metadata = try raw.read(MetadataResponse.self, correlationId: try raw.send(.metadata, MetadataRequest(topics: nil, includeInternal: true)))
            #expect(Set(metadata.topics.map(\.name)).isDisjoint(with: cases.map(\.0)))
            try await Self.expectServes(harness, after: "invalid topic names")
        }
    }

    @Test("partition counts outside 1...10000 are invalid_partitions")
    func invalidPartitionCounts() async throws {
        try await Self.withBroker("partitions") { harness in
            let raw = try RawConnection(port: harness.port)
            let counts: [Int32] = [0, -1, Int32.min, 10_001, Int32.max]
            let id = try raw.send(.createTopics, CreateTopicsRequest(topics: counts.map { .init(name: "p\($0)".replacingMinus(), partitions: $0) }))
            let response = try raw.read(TopicResultsResponse.self, correlationId: id)
            #expect(response.topics.count == counts.count)
            for (result, count) in zip(response.topics, counts) {
                Self.expectItem("\(count) partitions", result.error, result.errorMessage, is: .invalidPartitions, mentioning: ["\(count)"])
            }
            try await Self.expectServes(harness, after: "invalid partition counts")
        }
    }

    @Test("unknown config keys and bad values are invalid_config naming the key")
    func invalidConfigs() async throws {
        try await Self.withBroker("configs") { harness in
            let raw = try RawConnection(port: harness.port)
            let cases: [(String, String, String?, [String])] = [
                ("cfg-unknown", "retention.foo", "1", ["retention.foo"]),
                ("cfg-not-a-number", "max.message.bytes", "lots", ["max.message.bytes", "lots"]),
                ("cfg-below-header", "max.message.bytes", "60", ["max.message.bytes"]),
                ("cfg-policy", "cleanup.policy", "sometimes", ["cleanup.policy", "sometimes"]),
                ("cfg-flush", "flush.policy", "never", ["flush.policy"]),
                ("cfg-segment", "segment.bytes", "10", ["segment.bytes"]),
                ("cfg-retention", "retention.ms", "-5", ["retention.ms"]),
                ("cfg-codec", "compression.type", "gzip", ["compression.type", "gzip"]),
            ]
            let request = CreateTopicsRequest(topics: cases.map { .init(name: $0.0, partitions: 1, configs: [ConfigEntry(key: $0.1, value: $0.2)]) })
            let response = try raw.read(TopicResultsResponse.self, correlationId: try raw.send(.createTopics, request))
            for (result, (name, _, _, words)) in zip(response.topics, cases) {
                Self.expectItem(name, result.error, result.errorMessage, is: .invalidConfig, mentioning: words)
            }
            let metadata = try raw.read(MetadataResponse.self, correlationId: try raw.send(.metadata, MetadataRequest(topics: nil)))
            #expect(metadata.topics.isEmpty, "refused topics were created: \(metadata.topics.map(\.name))")

            // The same checks guard AlterConfigs, and a refused change leaves the topic as it was.
            let client = harness.client()
            try await client.createTopic("existing", partitions: 1, configs: ["retention.ms": "60000"])
            await client.close()
            let alter = AlterConfigsRequest(topics: [.init(name: "existing", configs: [ConfigEntry(key: "retention.ms", value: "soon")])])
            let altered = try raw.read(TopicResultsResponse.self, correlationId: try raw.send(.alterConfigs, alter))
            Self.expectItem("alter", altered.topics.first?.error ?? ErrorCode.none, altered.topics.first?.errorMessage, is: .invalidConfig,
                            mentioning: ["retention.ms", "soon"])
            let described = try raw.read(DescribeConfigsResponse.self, correlationId: try raw.send(.describeConfigs, DescribeConfigsRequest(topics: ["existing"])))
            #expect(described.topics.first?.configs.first { $0.key == "retention.ms" }?.value == "60000")
            try await Self.expectServes(harness, after: "invalid configs")
        }
    }

    // MARK: Produce

    @Test("produce to an unknown topic or partition is unknown_topic_or_partition; other partitions are unaffected")
    func produceToUnknownTopicOrPartition() async throws {
        try await Self.withBroker("unknown-partition") { harness in
            let client = harness.client()
            try await client.createTopic("two", partitions: 2)
            await client.close()
            let raw = try RawConnection(port: harness.port)
            let batch = ByteBuffer(bytes: try Self.batch(["x"]))
            let request = ProduceRequest(acks: .all, timeoutMs: 5000, topics: [
                .init(name: "missing", partitions: [.init(partition: 0, records: batch)]),
                .init(name: "two", partitions: [-1, 2, Int32.max, 0].map { .init(partition: $0, records: batch) }),
                .init(name: "__consumer_offsets", partitions: [.init(partition: 0, records: batch)]),
            ])
            let response = try raw.read(ProduceResponse.self, correlationId: try raw.send(.produce, request))
            #expect(response.topics.map(\.name) == ["missing", "two", "__consumer_offsets"])
            guard response.topics.count == 3 else { return }
            let missing = try #require(response.topics[0].partitions.first)
            Self.expectItem("missing[0]", missing.error, missing.errorMessage, is: .unknownTopicOrPartition, mentioning: ["missing"])
            let two = response.topics[1].partitions
            #expect(two.map(\.partition) == [-1, 2, Int32.max, 0])
            for answer in two.prefix(3) {
                Self.expectItem("two[\(answer.partition)]", answer.error, answer.errorMessage, is: .unknownTopicOrPartition,
                                mentioning: ["\(answer.partition)"])
                #expect(answer.baseOffset == -1)
            }
            #expect(two.last?.error == ErrorCode.none, "\(two.last?.errorMessage ?? "")")
            #expect(two.last?.baseOffset == 0)
            let internalTopic = try #require(response.topics[2].partitions.first)
            Self.expectItem("__consumer_offsets[0]", internalTopic.error, internalTopic.errorMessage, is: .invalidTopic, mentioning: ["internal"])
            try await Self.expectServes(harness, after: "produce to unknown partitions")
        }
    }

    @Test("corrupt batches are refused with the right code and nothing is appended")
    func corruptBatches() async throws {
        try await Self.withBroker("corrupt") { harness in
            let client = harness.client()
            try await client.createTopic("c", partitions: 1)
            await client.close()
            let raw = try RawConnection(port: harness.port)
            let valid = try Self.batch(["one", "two", "three"])
            func with<T: FixedWidthInteger>(_ value: T, at field: Int, fixCRC: Bool) -> [UInt8] {
                var bytes = valid
                bytes.setBigEndian(value, at: field)
                return fixCRC ? withFixedCRC(bytes) : bytes
            }
            typealias Field = RecordBatchHeader.Field
            var flipped = valid
            flipped[flipped.count - 1] ^= 0x01
            // Count and last offset delta agree with each other, and the CRC is right: only the walk
            // over the records can tell that the fourth record is missing.
            var overCount = valid
            overCount.setBigEndian(Int32(4), at: Field.recordCount)
            overCount.setBigEndian(Int32(3), at: Field.lastOffsetDelta)
            overCount = withFixedCRC(overCount)
            let cases: [(String, [UInt8], ErrorCode, [String])] = [
                ("a flipped bit (CRC mismatch)", flipped, .corruptMessage, ["CRC"]),
                ("a record count above the records present", overCount, .invalidRecord, ["record"]),
                ("a record count that disagrees with the last offset delta", with(Int32(4), at: Field.recordCount, fixCRC: true),
                 .invalidRecord, ["record"]),
                ("a length field beyond the bytes", with(Int32(valid.count - 12 + 100), at: Field.batchLength, fixCRC: false),
                 .corruptMessage, ["length"]),
                ("a length field below the header", with(Int32(10), at: Field.batchLength, fixCRC: false), .corruptMessage, ["length"]),
                ("fewer bytes than a header", Array(valid[..<40]), .corruptMessage, ["truncated"]),
                ("magic 1", with(Int8(1), at: Field.magic, fixCRC: false), .corruptMessage, ["magic"]),
                ("the gzip codec", with(Int16(1), at: Field.attributes, fixCRC: true), .corruptMessage, ["codec"]),
                ("a wrong max timestamp", with(Self.timestamp + 99, at: Field.maxTimestamp, fixCRC: true), .invalidRecord, ["timestamp"]),
                ("no batch at all", [], .invalidRecord, ["batch"]),
            ]
            for (what, bytes, code, words) in cases {
                let answer = try Self.produce(raw, "c", 0, bytes)
                Self.expectItem(what, answer.error, answer.errorMessage, is: code, mentioning: words)
            }
            #expect(try Self.logEndOffset(raw, "c") == 0, "a refused batch was appended")
            let accepted = try Self.produce(raw, "c", 0, valid)
            #expect(accepted.error == ErrorCode.none && accepted.baseOffset == 0, "\(accepted.errorMessage ?? "")")
            try await Self.expectServes(harness, after: "corrupt batches")
        }
    }

    @Test("a batch above the topic's max.message.bytes is message_too_large")
    func batchAboveMaxMessageBytes() async throws {
        try await Self.withBroker("too-large") { harness in
            let client = harness.client()
            try await client.createTopic("small", partitions: 1, configs: ["max.message.bytes": "1024"])
            await client.close()
            let raw = try RawConnection(port: harness.port)
            let large = try Self.batch([String(repeating: "x", count: 2000)])
            let refused = try Self.produce(raw, "small", 0, large)
            Self.expectItem("2 KB batch", refused.error, refused.errorMessage, is: .messageTooLarge, mentioning: ["1024", "\(large.count)"])
            let fits = try Self.produce(raw, "small", 0, try Self.batch([String(repeating: "y", count: 500)]))
            #expect(fits.error == ErrorCode.none && fits.baseOffset == 0, "\(fits.errorMessage ?? "")")
            try await Self.expectServes(harness, after: "a batch above max.message.bytes")
        }
    }

    /// A records section of `count` records, each holding `valueBytes` zero bytes: small compressed,
    /// large decompressed.
    static func zeroRecordsSection(count: Int, valueBytes: Int) -> [UInt8] {
        let zeros = [UInt8](repeating: 0, count: valueBytes)
        let records = (0..<count).map { Record(offset: Int64($0), timestamp: timestamp, key: nil, value: zeros) }
        var section: [UInt8] = []
        RecordBatch.encodeRecords(records, baseOffset: 0, baseTimestamp: timestamp, into: &section)
        return section
    }

    /// A batch whose header declares `recordCount` records and whose records section is `compressed`.
    static func compressedBatch(_ compressed: [UInt8], codec: CompressionCodec, recordCount: Int32) -> [UInt8] {
        let header = RecordBatchHeader(attributes: RecordBatchHeader.attributes(codec: codec), lastOffsetDelta: recordCount - 1,
                                       baseTimestamp: timestamp, maxTimestamp: timestamp, recordCount: recordCount)
        return RecordBatch.assemble(header: header, section: compressed).bytes
    }

    /// Bombs that fit `max.message.bytes` (1 MiB) and decompress far beyond the 64 MiB limit.
    static func makeCompressionBombs() throws -> [(String, [UInt8])] {
        let mebibyte = 1 << 20
        // 80 well-formed records of 1 MiB each: only their decompressed size is wrong.
        let section = zeroRecordsSection(count: 80, valueBytes: mebibyte)
        let zstd = compressedBatch(Array(try Codecs.compress(section, codec: .zstd)), codec: .zstd, recordCount: 80)
        let lz4 = compressedBatch(Array(try Codecs.compress(section, codec: .lz4)), codec: .lz4, recordCount: 80)
        // 1024 zstd frames back to back, each declaring 1 MiB: no frame header tells the 1 GiB total.
        let frame = try Codecs.compress(zeroRecordsSection(count: 1, valueBytes: mebibyte), codec: .zstd)
        let frames = compressedBatch(Array((0..<1024).map { _ in frame }.joined()), codec: .zstd, recordCount: 1024)
        return [("zstd, 80 MiB in one frame", zstd), ("lz4, 80 MiB in one frame", lz4), ("zstd, 1 GiB in 1024 frames", frames)]
    }

    @Test("compressed batches that decompress beyond 64 MiB are invalid_record, and memory stays bounded")
    func compressionBombs() async throws {
        try await Self.withBroker("bombs") { harness in
            let client = harness.client()
            try await client.createTopic("bomb", partitions: 1)
            await client.close()
            let bombs = try Self.makeCompressionBombs()
            let raw = try RawConnection(port: harness.port)
            let peakBefore = Self.peakResidentBytes()
            for (what, batch) in bombs {
                #expect(batch.count < 1 << 20, "\(what) is \(batch.count) bytes: above max.message.bytes, not a bomb")
                let answer = try Self.produce(raw, "bomb", 0, batch)
                Self.expectItem(what, answer.error, answer.errorMessage, is: .invalidRecord, mentioning: ["decompress", "\(64 << 20)"])
            }
            if let peakBefore, let peakAfter = Self.peakResidentBytes() {
                // Decompressing into the 64 MiB bound costs at most a few times that; the 1 GiB bomb
                // decompressed in full would cost far more.
                #expect(peakAfter - peakBefore < 400 << 20, "peak memory grew by \((peakAfter - peakBefore) >> 20) MiB")
            }
            #expect(try Self.logEndOffset(raw, "bomb") == 0)
            try await Self.expectServes(harness, after: "compression bombs")
        }
    }

    // MARK: Fetch

    @Test("fetch outside the partition's offsets is offset_out_of_range for that partition only")
    func fetchOffsetOutOfRange() async throws {
        try await Self.withBroker("fetch-range") { harness in
            let client = harness.client()
            try await client.createTopic("f", partitions: 1)
            await client.close()
            let raw = try RawConnection(port: harness.port)
            #expect(try Self.produce(raw, "f", 0, try Self.batch(["only"])).error == ErrorCode.none)
            let request = Self.fetchRequest("f", [(0, 1000), (0, -5), (0, 1), (0, 0), (7, 0)], maxWaitMs: 2000, minBytes: 1)
            let response = try raw.read(FetchResponse.self, correlationId: try raw.send(.fetch, request))
            let partitions = try #require(response.topics.first?.partitions)
            #expect(partitions.count == 5)
            guard partitions.count == 5 else { return }
            Self.expectItem("offset 1000", partitions[0].head.error, partitions[0].head.errorMessage, is: .offsetOutOfRange, mentioning: ["1000"])
            Self.expectItem("offset -5", partitions[1].head.error, partitions[1].head.errorMessage, is: .offsetOutOfRange, mentioning: ["-5"])
            #expect(partitions[2].head.error == ErrorCode.none && partitions[2].records.readableBytes == 0 && partitions[2].head.highWatermark == 1)
            #expect(partitions[3].head.error == ErrorCode.none)
            #expect(try Self.records(in: partitions[3].records).map(\.value) == [Array("only".utf8)])
            Self.expectItem("partition 7", partitions[4].head.error, partitions[4].head.errorMessage, is: .unknownTopicOrPartition, mentioning: ["7"])
            try await Self.expectServes(harness, after: "fetch out of range")
        }
    }

    // MARK: Pipelining

    @Test("pipelined requests are answered in request order")
    func pipelinedRequestsInOrder() async throws {
        try await Self.withBroker("pipeline") { harness in
            let raw = try RawConnection(port: harness.port)
            var bytes: [UInt8] = []
            for index in 0..<100 {
                let id = Int32(1000 + index)
                let frame = index % 2 == 0
                    ? RawConnection.frame(apiKeyRaw: ApiKey.apiVersions.rawValue, correlationId: id, ApiVersionsRequest())
                    : RawConnection.frame(apiKeyRaw: ApiKey.metadata.rawValue, correlationId: id, MetadataRequest(topics: nil))
                bytes += frame.readableBytesView
            }
            try raw.send(bytes: bytes)
            for index in 0..<100 {
                let id = Int32(1000 + index)
                if index % 2 == 0 {
                    _ = try raw.read(ApiVersionsResponse.self, correlationId: id)
                } else {
                    _ = try raw.read(MetadataResponse.self, correlationId: id)
                }
            }

            // More than connection-requests-in-flight-max (256) at once: reading pauses, nothing is lost.
            let many = (0..<600).flatMap { index in
                RawConnection.frame(apiKeyRaw: ApiKey.apiVersions.rawValue, correlationId: Int32(5000 + index), ApiVersionsRequest()).readableBytesView
            }
            try raw.send(bytes: many)
            for index in 0..<600 { _ = try raw.read(ApiVersionsResponse.self, correlationId: Int32(5000 + index)) }
            try await Self.expectServes(harness, after: "pipelined requests")
        }
    }

    @Test("a long-polling fetch holds back the answers behind it; acks=0 produce takes no place in the order")
    func longPollHoldsBackLaterAnswers() async throws {
        try await Self.withBroker("long-poll") { harness in
            let client = harness.client()
            try await client.createTopic("waiting", partitions: 1)
            try await client.createTopic("fire-and-forget", partitions: 1)
            await client.close()
            let raw = try RawConnection(port: harness.port)
            var bytes: [UInt8] = []
            bytes += RawConnection.frame(apiKeyRaw: ApiKey.fetch.rawValue, correlationId: 1,
                                         Self.fetchRequest("waiting", [(0, 0)], maxWaitMs: 400, minBytes: 1)).readableBytesView
            bytes += RawConnection.frame(apiKeyRaw: ApiKey.apiVersions.rawValue, correlationId: 2, ApiVersionsRequest()).readableBytesView
            bytes += RawConnection.frame(apiKeyRaw: ApiKey.produce.rawValue, correlationId: 3,
                                         Self.produceRequest("fire-and-forget", 0, try Self.batch(["quiet"]), acks: .none)).readableBytesView
            bytes += RawConnection.frame(apiKeyRaw: ApiKey.metadata.rawValue, correlationId: 4, MetadataRequest(topics: nil)).readableBytesView
            let start = ContinuousClock.now
            try raw.send(bytes: bytes)
            let fetched = try raw.read(FetchResponse.self, correlationId: 1)
            #expect(ContinuousClock.now - start >= .milliseconds(300), "the fetch did not wait")
            #expect(fetched.topics.first?.partitions.first?.records.readableBytes == 0)
            _ = try raw.read(ApiVersionsResponse.self, correlationId: 2)
            _ = try raw.read(MetadataResponse.self, correlationId: 4)
            // Nothing acknowledges an acks=0 append: poll for it briefly.
            var appended = try Self.logEndOffset(raw, "fire-and-forget")
            for _ in 0..<20 where appended == 0 {
                try await Task.sleep(for: .milliseconds(100))
                appended = try Self.logEndOffset(raw, "fire-and-forget")
            }
            #expect(appended == 1, "the acks=0 batch was not appended")
            try await Self.expectServes(harness, after: "a long poll")
        }
    }
}

extension Array where Element == UInt8 {
    /// A request frame with its correlation id (bytes 8..<12: after size, key and version) replaced.
    func replacingCorrelationId(_ id: Int32) -> [UInt8] {
        var bytes = self
        bytes.setBigEndian(id, at: 8)
        return bytes
    }
}

extension String {
    /// "p-1" → "p_1": keeps names built from numbers legal.
    func replacingMinus() -> String { String(map { $0 == "-" ? "_" : $0 }) }
}
