import NIOCore
import SluiceTestSupport
import SluiceWire
import Testing

extension WireSample {
    /// A query longer than a `string` can carry (int16 length), which `text` must.
    static let longSQL = "INSERT INTO out SELECT * FROM clicks WHERE "
        + Array(repeating: "action = 'click'", count: 2_500).joined(separator: " OR ")

    /// The processor-administration requests (ApiKey 15...18), in the shape of `requests`.
    static let processorRequests: [WireSample] = [
        make("CreateProcessorRequest (earliest)", .createProcessor, request: true, CreateProcessorRequest(
            name: "clicks_per_user",
            sql: "INSERT INTO clicks_per_user\nSELECT user, COUNT(*) AS clicks\nFROM clicks\nGROUP BY user, TUMBLE(ts, INTERVAL '10' SECOND)\nEMIT FINAL",
            startFrom: .earliest, validateOnly: false)),
        make("CreateProcessorRequest (latest, validate only, non-ASCII)", .createProcessor, request: true, CreateProcessorRequest(
            name: "p", sql: "INSERT INTO \"zürich\" SELECT '日本' AS city FROM t", startFrom: .latest, validateOnly: true)),
        make("CreateProcessorRequest (timestamp, empty strings)", .createProcessor, request: true,
             CreateProcessorRequest(name: "", sql: "", startFrom: .timestamp(1_795_946_400_000))),
        make("CreateProcessorRequest (timestamp 0 and Int64.max)", .createProcessor, request: true,
             CreateProcessorRequest(name: "a", sql: "x", startFrom: .timestamp(Int64.max))),
        make("CreateProcessorRequest (query above 32 KiB)", .createProcessor, request: true,
             CreateProcessorRequest(name: "long", sql: longSQL, startFrom: .timestamp(0))),
        make("ListProcessorsRequest", .listProcessors, request: true, ListProcessorsRequest()),
        make("DescribeProcessorRequest", .describeProcessor, request: true, DescribeProcessorRequest(name: "clicks_per_user")),
        make("AlterProcessorRequest (pause)", .alterProcessor, request: true, AlterProcessorRequest(name: "p", action: .pause)),
        make("AlterProcessorRequest (resume)", .alterProcessor, request: true, AlterProcessorRequest(name: "p", action: .resume)),
        make("AlterProcessorRequest (reset to earliest)", .alterProcessor, request: true,
             AlterProcessorRequest(name: "p", action: .reset(to: .earliest))),
        make("AlterProcessorRequest (reset to latest)", .alterProcessor, request: true,
             AlterProcessorRequest(name: "p", action: .reset(to: .latest))),
        make("AlterProcessorRequest (reset to a time)", .alterProcessor, request: true,
             AlterProcessorRequest(name: "p", action: .reset(to: .timestamp(1_700_000_000_000)))),
        make("AlterProcessorRequest (replace)", .alterProcessor, request: true,
             AlterProcessorRequest(name: "p", action: .replace(sql: "INSERT INTO o SELECT a FROM i"))),
        make("AlterProcessorRequest (replace with empty sql)", .alterProcessor, request: true,
             AlterProcessorRequest(name: "p", action: .replace(sql: ""))),
        make("AlterProcessorRequest (delete, keep output)", .alterProcessor, request: true,
             AlterProcessorRequest(name: "p", action: .delete(deleteOutput: false))),
        make("AlterProcessorRequest (delete with output)", .alterProcessor, request: true,
             AlterProcessorRequest(name: "p", action: .delete(deleteOutput: true))),
    ]

    /// A task status with every field away from its default.
    static let busyTask = DescribeProcessorResponse.TaskStatus(
        partition: 0, inputOffset: 1_000, inputEndOffset: 1_250, watermarkMs: 1_795_946_400_000, recordsIn: 1_000, recordsOut: 40,
        recordsLate: 3, recordsInvalid: 1, inRatePerSecond: 1234.5, outRatePerSecond: 0.25, lateRatePerSecond: 1e-9,
        stateBytes: 65_536, state: "running", lastError: nil)

    /// The processor-administration responses, in the shape of `responses`.
    static let processorResponses: [WireSample] = [
        make("ProcessorResultResponse (CreateProcessor, success)", .createProcessor, request: false, ProcessorResultResponse()),
        make("ProcessorResultResponse (CreateProcessor, invalid query)", .createProcessor, request: false, ProcessorResultResponse(
            error: .invalidQuery, errorMessage: "line 3, column 14: expected ',' or FROM after select item, found 'FORM' (did you mean FROM?)")),
        make("ProcessorResultResponse (AlterProcessor, unknown)", .alterProcessor, request: false,
             ProcessorResultResponse(WireError(.unknownProcessor, "processor 'p' does not exist"))),
        make("ProcessorResultResponse (AlterProcessor, error without message)", .alterProcessor, request: false,
             ProcessorResultResponse(error: .processorStateInvalid, errorMessage: nil)),
        make("ListProcessorsResponse", .listProcessors, request: false, ListProcessorsResponse(processors: [
            .init(name: "clicks_per_user", state: "running", source: "clicks", sink: "clicks_per_user"),
            .init(name: "b", state: "failed", source: "zürich", sink: ""),
        ])),
        make("ListProcessorsResponse (none)", .listProcessors, request: false, ListProcessorsResponse(processors: [])),
        make("ListProcessorsResponse (error)", .listProcessors, request: false,
             ListProcessorsResponse(error: .brokerShuttingDown, errorMessage: "shutting down", processors: [])),
        make("DescribeProcessorResponse", .describeProcessor, request: false, DescribeProcessorResponse(
            name: "clicks_per_user", sql: "INSERT INTO clicks_per_user SELECT user, COUNT(*) FROM clicks GROUP BY user",
            state: "failed", lastError: "partition 1: the processor state limit was reached", createdMs: 1_700_000_000_000,
            source: "clicks", sink: "clicks_per_user", tasks: [
                busyTask,
                .init(partition: 1, inputOffset: 0, inputEndOffset: 0, state: "failed", lastError: "state limit ✗"),
                .init(partition: Int32.max, inputOffset: Int64.min, inputEndOffset: Int64.max, watermarkMs: Int64.max,
                      recordsIn: Int64.max, recordsOut: Int64.min, recordsLate: -1, recordsInvalid: 0,
                      inRatePerSecond: Double.greatestFiniteMagnitude, outRatePerSecond: Double.leastNonzeroMagnitude,
                      lateRatePerSecond: 0, stateBytes: Int64.max, state: "", lastError: ""),
            ])),
        make("DescribeProcessorResponse (query above 32 KiB, no tasks)", .describeProcessor, request: false, DescribeProcessorResponse(
            name: "long", sql: longSQL, state: "paused", lastError: nil, createdMs: 0, source: "clicks", sink: "out", tasks: [])),
        make("DescribeProcessorResponse (unknown)", .describeProcessor, request: false,
             DescribeProcessorResponse(name: "nope", failure: WireError(.unknownProcessor, "processor 'nope' does not exist"))),
    ]

    /// Both directions.
    static let processorSamples = processorRequests + processorResponses
}

/// The bodies of `Messages+Processors.swift` (protocol.md, "Processors"): every message round-trips,
/// malformed bodies throw `WireDecodingError` and never crash, and the rules that make each request have
/// one encoding (positions, unused alter fields, rates, text lengths) hold.
@Suite("Processor message bodies")
struct ProcessorMessagesTests {
    static func bytes<M: WireMessage>(_ message: M) -> [UInt8] {
        var writer = WireWriter(ByteBuffer())
        message.encode(to: &writer, version: 0)
        return Array(writer.buffer.readableBytesView)
    }

    // MARK: Every sample

    // Round trips, prefixes, trailing bytes, damage and frames run over these samples in
    // MessageRoundTripTests and FrameDecoderTests, which take every request and response sample.
    @Test("the samples cover the four processor APIs, both directions")
    func samplesCoverEveryProcessorApi() {
        for api: ApiKey in [.createProcessor, .listProcessors, .describeProcessor, .alterProcessor] {
            #expect(WireSample.processorRequests.contains { $0.api == api }, "no request sample for \(api)")
            #expect(WireSample.processorResponses.contains { $0.api == api }, "no response sample for \(api)")
        }
    }

    // MARK: Layout (protocol.md, byte by byte)

    @Test("CreateProcessorRequest is laid out as protocol.md says")
    func createRequestLayout() {
        let body = Self.bytes(CreateProcessorRequest(name: "p", sql: "é", startFrom: .timestamp(258), validateOnly: true))
        #expect(body == [
            0, 1, 0x70,                      // name string "p"
            0, 0, 0, 2, 0xC3, 0xA9,          // sql text "é": int32 length, UTF-8
            2, 0, 0, 0, 0, 0, 0, 1, 2,       // start_from: kind 2, timestamp_ms 258
            1,                               // validate_only
        ])
        let earliest = Self.bytes(CreateProcessorRequest(name: "", sql: "", startFrom: .earliest))
        #expect(earliest == [0, 0, 0, 0, 0, 0] + [0] + Array(repeating: 0, count: 8) + [0])
        let latest = Self.bytes(CreateProcessorRequest(name: "", sql: "", startFrom: .latest))
        #expect(latest[6] == 1)
    }

    @Test("AlterProcessorRequest is laid out as protocol.md says, unused fields zero")
    func alterRequestLayout() {
        let tail: [UInt8] = Array(repeating: 0, count: 9) + [0, 0, 0, 0] + [0]  // earliest, empty sql, false
        #expect(Self.bytes(AlterProcessorRequest(name: "p", action: .pause)) == [0, 1, 0x70, 0] + tail)
        #expect(Self.bytes(AlterProcessorRequest(name: "p", action: .resume)) == [0, 1, 0x70, 1] + tail)
        #expect(Self.bytes(AlterProcessorRequest(name: "p", action: .reset(to: .latest)))
                == [0, 1, 0x70, 2, 1] + Array(repeating: 0, count: 8) + [0, 0, 0, 0, 0])
        #expect(Self.bytes(AlterProcessorRequest(name: "p", action: .replace(sql: "x")))
                == [0, 1, 0x70, 3] + Array(repeating: 0, count: 9) + [0, 0, 0, 1, 0x78, 0])
        #expect(Self.bytes(AlterProcessorRequest(name: "p", action: .delete(deleteOutput: true)))
                == [0, 1, 0x70, 4] + Array(repeating: 0, count: 9) + [0, 0, 0, 0, 1])
    }

    @Test("DescribeProcessorResponse task rates are IEEE 754 binary64, big-endian")
    func rateLayout() {
        let task = DescribeProcessorResponse.TaskStatus(partition: 0, inputOffset: 0, inputEndOffset: 0, watermarkMs: 0,
                                                        inRatePerSecond: 1.5, outRatePerSecond: 0, lateRatePerSecond: 2,
                                                        state: "")
        var writer = WireWriter(ByteBuffer())
        task.encode(to: &writer)
        let body = Array(writer.buffer.readableBytesView)
        // partition (4) + seven int64 (56) put in_rate at 60.
        #expect(Array(body[60..<68]) == [0x3F, 0xF8, 0, 0, 0, 0, 0, 0])
        #expect(Array(body[68..<76]) == [0, 0, 0, 0, 0, 0, 0, 0])
        #expect(Array(body[76..<84]) == [0x40, 0, 0, 0, 0, 0, 0, 0])
    }

    // MARK: One encoding per value

    @Test("start positions: unknown kinds, negative times and a time beside earliest/latest are malformed")
    func startPositionRules() throws {
        func create(kind: Int8, timestamp: Int64) -> ByteBuffer {
            WirePrimitiveTests.buffer { w in w.write("p"); w.write(text: "q"); w.write(kind); w.write(timestamp); w.write(false) }
        }
        #expect(try CreateProcessorRequest.decode(create(kind: 2, timestamp: 0), version: 0).startFrom == .timestamp(0))
        for (kind, timestamp, fragment) in [(Int8(3), Int64(0), "kind must be 0"), (-1, 0, "got -1"), (2, -1, "≥ 0"),
                                            (2, Int64.min, "≥ 0"), (0, 5, "must be 0 with kind 0"), (1, -2, "must be 0 with kind 1")] {
            let reason = WirePrimitiveTests.reason { _ = try CreateProcessorRequest.decode(create(kind: kind, timestamp: timestamp), version: 0) }
            #expect(reason?.contains("start_from") == true && reason?.contains(fragment) == true, "\(kind) \(timestamp): \(reason ?? "decoded")")
        }
    }

    @Test("alter: unknown actions and fields the action does not use are malformed")
    func alterRules() throws {
        func alter(action: Int8, kind: Int8 = 0, timestamp: Int64 = 0, sql: String = "", deleteOutput: Bool = false) -> ByteBuffer {
            WirePrimitiveTests.buffer { w in
                w.write("p"); w.write(action); w.write(kind); w.write(timestamp); w.write(text: sql); w.write(deleteOutput)
            }
        }
        let cases: [(ByteBuffer, String)] = [
            (alter(action: 5), "action must be"),
            (alter(action: -1), "action must be"),
            (alter(action: 0, kind: 1), "position"),
            (alter(action: 1, kind: 2, timestamp: 9), "position"),
            (alter(action: 4, kind: 1, deleteOutput: true), "position"),
            (alter(action: 0, sql: "x"), "sql"),
            (alter(action: 2, kind: 1, sql: " "), "sql"),
            (alter(action: 1, deleteOutput: true), "delete_output"),
            (alter(action: 3, sql: "x", deleteOutput: true), "delete_output"),
            (alter(action: 2, kind: 2, timestamp: -5), "≥ 0"),
        ]
        for (body, fragment) in cases {
            let reason = WirePrimitiveTests.reason { _ = try AlterProcessorRequest.decode(body, version: 0) }
            #expect(reason?.contains(fragment) == true, "expected '\(fragment)': \(reason ?? "decoded")")
        }
        #expect(try AlterProcessorRequest.decode(alter(action: 2, kind: 2, timestamp: 9), version: 0).action == .reset(to: .timestamp(9)))
    }

    @Test("a rate that is NaN, infinite or negative is malformed; encoding writes such a rate as 0")
    func rateRules() throws {
        for bad in [Double.nan, .infinity, -.infinity, -1, -Double.leastNonzeroMagnitude] {
            var writer = WireWriter(ByteBuffer())
            writer.write(Int32(1))
            var task = WireSample.busyTask
            task.encode(to: &writer)
            var bytes = Array(writer.buffer.readableBytesView)
            // count (4) + partition (4) + seven int64 (56): in_rate at 64.
            withUnsafeBytes(of: bad.bitPattern.bigEndian) { bytes.replaceSubrange(64..<72, with: $0) }
            let reason = WirePrimitiveTests.reason {
                var reader = WireReader(ByteBuffer(bytes: bytes))
                _ = try reader.readEntries("tasks", as: DescribeProcessorResponse.TaskStatus.self)
            }
            #expect(reason?.contains("in_rate") == true, "\(bad): \(reason ?? "decoded")")

            task.inRatePerSecond = bad
            task.lateRatePerSecond = bad
            var encoded = WireWriter(ByteBuffer())
            task.encode(to: &encoded)
            var reader = WireReader(encoded.buffer)
            let decoded = try DescribeProcessorResponse.TaskStatus(from: &reader)
            #expect(decoded.inRatePerSecond == 0 && decoded.lateRatePerSecond == 0 && decoded.outRatePerSecond == task.outRatePerSecond)
        }
    }

    // MARK: Bounds

    @Test("sql longer than ProcessorLimits.sqlBytesMax is refused before it is copied; exactly the limit is read")
    func sqlLengthIsBounded() throws {
        let atLimit = String(repeating: "x", count: ProcessorLimits.sqlBytesMax)
        let ok = WirePrimitiveTests.buffer { w in w.write("p"); w.write(text: atLimit); w.write(startPosition: .earliest); w.write(false) }
        #expect(try CreateProcessorRequest.decode(ok, version: 0).sql.utf8.count == ProcessorLimits.sqlBytesMax)

        let over = WirePrimitiveTests.buffer { w in w.write("p"); w.write(text: atLimit + "x"); w.write(startPosition: .earliest); w.write(false) }
        let reason = WirePrimitiveTests.reason { _ = try CreateProcessorRequest.decode(over, version: 0) }
        #expect(reason == "sql: \(ProcessorLimits.sqlBytesMax + 1) bytes; the limit is \(ProcessorLimits.sqlBytesMax)")

        // A hostile length with nothing behind it: refused by the limit, then by the bytes present.
        for length: Int32 in [Int32.max, Int32(ProcessorLimits.sqlBytesMax)] {
            let hostile = WirePrimitiveTests.buffer { w in w.write("p"); w.write(length) }
            let why = WirePrimitiveTests.reason { _ = try CreateProcessorRequest.decode(hostile, version: 0) }
            #expect(why?.contains("sql") == true, "\(length): \(why ?? "decoded")")
        }
        let negative = WirePrimitiveTests.buffer { w in w.write(""); w.write(Int32(-1)) }
        #expect(WirePrimitiveTests.reason { _ = try CreateProcessorRequest.decode(negative, version: 0) } == "sql: negative text length -1")
    }

    @Test("sql that is not UTF-8 is refused, not repaired")
    func sqlMustBeUTF8() {
        let body = WirePrimitiveTests.buffer { w in
            w.write("p"); w.write(Int32(3)); w.buffer.writeBytes([0x61, 0xC3, 0x28]); w.write(startPosition: .latest); w.write(false)
        }
        #expect(WirePrimitiveTests.reason { _ = try CreateProcessorRequest.decode(body, version: 0) } == "sql: not valid UTF-8")
    }

    @Test("messages and last errors are cut to WireError.messageBytesMax when encoded, so they always fit")
    func longMessagesAreCut() throws {
        let huge = String(repeating: "é", count: 40_000)  // 80,000 bytes: above a string's int16 length
        let result = try ProcessorResultResponse.decode(
            ByteBuffer(bytes: Self.bytes(ProcessorResultResponse(error: .invalidQuery, errorMessage: huge))), version: 0)
        #expect(result.error == .invalidQuery)
        #expect((result.errorMessage?.utf8.count ?? 0) <= WireError.messageBytesMax)
        #expect(result.errorMessage?.hasSuffix("...") == true)

        var described = DescribeProcessorResponse(name: "p", sql: "q", state: "failed", lastError: huge, createdMs: 1,
                                                  source: "s", sink: "t", tasks: [WireSample.busyTask])
        described.tasks[0].lastError = huge
        described.errorMessage = huge
        let decoded = try DescribeProcessorResponse.decode(ByteBuffer(bytes: Self.bytes(described)), version: 0)
        for text in [decoded.lastError, decoded.tasks.first?.lastError, decoded.errorMessage] {
            #expect((text?.utf8.count ?? 0) <= WireError.messageBytesMax && text?.hasPrefix("éé") == true)
        }
        let list = ListProcessorsResponse(error: .unknownServerError, errorMessage: huge, processors: [])
        #expect((try ListProcessorsResponse.decode(ByteBuffer(bytes: Self.bytes(list)), version: 0).errorMessage?.utf8.count ?? 0)
                <= WireError.messageBytesMax)
    }

    @Test("an unknown error code reads as unknown_server_error and keeps its message")
    func unknownErrorCode() throws {
        var bytes = Self.bytes(ProcessorResultResponse(error: .unknownProcessor, errorMessage: "m"))
        bytes[0] = 0x03
        bytes[1] = 0xE7  // 999
        let decoded = try ProcessorResultResponse.decode(ByteBuffer(bytes: bytes), version: 0)
        #expect(decoded.error == .unknownServerError && decoded.errorMessage == "m")
        #expect(decoded.wireError == WireError(.unknownServerError, "m"))
    }

    // MARK: Values

    @Test("API keys 15...18 and error codes 31...35 keep their numbers and names")
    func numbersAndNames() {
        #expect([ApiKey.createProcessor, .listProcessors, .describeProcessor, .alterProcessor].map(\.rawValue) == [15, 16, 17, 18])
        #expect([ApiKey.createProcessor, .listProcessors, .describeProcessor, .alterProcessor].map(\.description)
                == ["CreateProcessor", "ListProcessors", "DescribeProcessor", "AlterProcessor"])
        let codes: [ErrorCode] = [.invalidQuery, .processorAlreadyExists, .unknownProcessor, .processorStateInvalid, .invalidProcessorName]
        #expect(codes.map(\.rawValue) == [31, 32, 33, 34, 35])
        #expect(codes.map(\.description) == ["invalid_query", "processor_already_exists", "unknown_processor",
                                             "processor_state_invalid", "invalid_processor_name"])
        #expect(codes.allSatisfy { !$0.isRetriable })
    }

    @Test("lag is end − offset, never negative, saturating instead of overflowing")
    func lag() {
        func task(_ offset: Int64, _ end: Int64) -> DescribeProcessorResponse.TaskStatus {
            .init(partition: 0, inputOffset: offset, inputEndOffset: end, state: "running")
        }
        #expect(task(1_000, 1_250).lag == 250)
        #expect(task(5, 5).lag == 0)
        #expect(task(9, 5).lag == 0)
        #expect(task(Int64.min, Int64.max).lag == Int64.max)
        #expect(task(Int64.max, Int64.min).lag == 0)
        #expect(task(0, 0).watermark == nil)
        #expect(WireSample.busyTask.watermark == 1_795_946_400_000)
    }

    @Test("processor names: the topic alphabet, 1 to nameBytesMax bytes")
    func names() {
        for good in ["p", "clicks_per_user", "a.b-c_D9", String(repeating: "x", count: ProcessorLimits.nameBytesMax), "__p"] {
            #expect(ProcessorLimits.nameProblem(good) == nil, "\(good)")
        }
        let bad: [(String, String)] = [
            ("", "empty"), (String(repeating: "x", count: ProcessorLimits.nameBytesMax + 1), "the limit is 100"),
            (".", "reserved"), ("..", "reserved"), ("a b", "ASCII letters"), ("a/b", "ASCII letters"), ("zürich", "ASCII letters"),
        ]
        for (name, fragment) in bad {
            #expect(ProcessorLimits.nameProblem(name)?.contains(fragment) == true, "\(name): \(ProcessorLimits.nameProblem(name) ?? "valid")")
        }
    }

    @Test("start positions and actions read as the CLI spells them")
    func descriptions() {
        #expect(ProcessorStartPosition.earliest.description == "earliest")
        #expect(ProcessorStartPosition.latest.description == "latest")
        #expect(ProcessorStartPosition.timestamp(5).description == "@5")
        let actions: [AlterProcessorRequest.Action] = [.pause, .resume, .reset(to: .latest), .replace(sql: ""), .delete(deleteOutput: true)]
        #expect(actions.map(\.description) == ["pause", "resume", "reset", "replace", "delete"])
        #expect(actions.map(\.code) == [0, 1, 2, 3, 4])
    }
}
