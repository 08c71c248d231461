import NIOCore
import SluiceRaft
import SluiceTestSupport
import SluiceWire
import Testing

// Short names for this file; `Message` alone would read as any message.
private typealias RaftMessage = SluiceRaft.Message
private typealias Group = RaftMessagesRequest.Group

extension WireSample {
    /// One message of every kind, each with the fields its kind uses set away from zero, plus entries
    /// (a record batch, an empty no-op), snapshots (with and without data) and extreme numbers.
    static let everyKind: [SluiceRaft.Message] = [
        .init(kind: .preVote, from: 1, to: 2, term: 8, logTerm: 7, index: 42),
        .init(kind: .preVoteResponse, from: 2, to: 1, term: 8, reject: true),
        .init(kind: .vote, from: 1, to: 3, term: 8, logTerm: 7, index: 42, transfer: true),
        .init(kind: .voteResponse, from: 3, to: 1, term: 8),
        .init(kind: .append, from: 1, to: 2, term: 8, logTerm: 7, index: 40, entries: [
            .init(term: 7, index: 41, payload: batchBytes), .init(term: 8, index: 42, payload: []),
        ], commit: 40),
        .init(kind: .appendResponse, from: 2, to: 1, term: 8, logTerm: 5, index: 40, reject: true, rejectHint: 31),
        .init(kind: .heartbeat, from: 1, to: 2, term: 8, commit: 42),
        .init(kind: .heartbeatResponse, from: 2, to: 1, term: 8),
        .init(kind: .timeoutNow, from: 1, to: 3, term: 8),
        .init(kind: .installSnapshot, from: 1, to: 3, term: 8,
              snapshot: Snapshot(metadata: SnapshotMetadata(index: 1_000, term: 6), data: Array("state".utf8))),
        .init(kind: .snapshotResponse, from: 3, to: 1, term: 8, index: 1_000),
        .init(kind: .installSnapshot, from: UInt64.max, to: 0, term: UInt64.max, logTerm: UInt64(Int64.max) + 1,
              index: UInt64.max, commit: UInt64.max, rejectHint: UInt64.max,
              snapshot: Snapshot(metadata: SnapshotMetadata(index: UInt64.max, term: 0), data: [])),
    ]

    /// The replication requests (ApiKey 19, 20), in the shape of `requests`.
    static let replicationRequests: [WireSample] = [
        make("RaftMessagesRequest (every kind, metadata group, empty group)", .raftMessages, request: true,
             RaftMessagesRequest(fromNode: 1, votersChecksum: 0xA1B2_C3D4, groups: [
                 .init(topic: "events", partition: 3, messages: everyKind),
                 .init(topic: RaftWireLimits.metadataTopic, partition: RaftWireLimits.metadataPartition, messages: [
                     .init(kind: .heartbeat, from: 1, to: 2, term: 3, commit: 17),
                 ]),
                 .init(topic: "zürich-日本", partition: Int32.max, messages: []),
             ]), equal: ==),
        make("RaftMessagesRequest (no groups)", .raftMessages, request: true,
             RaftMessagesRequest(fromNode: Int32.min, votersChecksum: .max, groups: []), equal: ==),
        make("DescribeClusterRequest (user topics)", .describeCluster, request: true, DescribeClusterRequest()),
        make("DescribeClusterRequest (internal too)", .describeCluster, request: true, DescribeClusterRequest(includeInternal: true)),
    ]

    /// The replication responses, in the shape of `responses`.
    static let replicationResponses: [WireSample] = [
        make("RaftMessagesResponse (delivered)", .raftMessages, request: false, RaftMessagesResponse()),
        make("RaftMessagesResponse (unknown group)", .raftMessages, request: false, RaftMessagesResponse(
            WireError(.unknownTopicOrPartition, "broker 2 hosts no replica of events-7, zürich-0"))),
        make("RaftMessagesResponse (error without message)", .raftMessages, request: false,
             RaftMessagesResponse(error: .brokerShuttingDown, errorMessage: nil)),
        make("DescribeClusterResponse (one broker down, a leaderless partition)", .describeCluster, request: false,
             DescribeClusterResponse(controllerId: 1, brokers: [
                 .init(nodeId: 1, host: "127.0.0.1", port: 9401, isUp: true),
                 .init(nodeId: 2, host: "127.0.0.1", port: 9402, isUp: false),
                 .init(nodeId: 3, host: "broker-3.example", port: 9403, isUp: true),
             ], partitions: [
                 .init(topic: RaftWireLimits.metadataTopic, partition: 0, leader: 1, term: 4, highWatermark: 120, replicas: [
                     .init(nodeId: 1, logEndOffset: 120, lag: 0, inSync: true),
                     .init(nodeId: 2, logEndOffset: -1, lag: -1, inSync: false),
                     .init(nodeId: 3, logEndOffset: 118, lag: 2, inSync: true),
                 ]),
                 .init(topic: "events", partition: 0, leader: -1, term: Int64.max, highWatermark: 0, replicas: []),
             ])),
        make("DescribeClusterResponse (refused)", .describeCluster, request: false,
             DescribeClusterResponse(failure: WireError(.unknownServerError, "metadata not loaded yet"))),
    ]
}

/// RaftMessages (19) and DescribeCluster (20), protocol.md "Replication": the byte layout, every Raft
/// message kind carried field for field, the kind numbering, the named limits, and `batched`.
///
/// Round trips, prefixes, trailing bytes, damage and frames run over the samples above in
/// MessageRoundTripTests and FrameDecoderTests, which take every request and response sample.
@Suite("Replication message bodies")
struct RaftMessagesTests {
    static func bytes<M: WireMessage>(_ message: M) -> [UInt8] {
        var writer = WireWriter(ByteBuffer())
        message.encode(to: &writer, version: 0)
        return Array(writer.buffer.readableBytesView)
    }

    /// An int64 whose value fits one byte, big-endian.
    static func int64(_ low: UInt8) -> [UInt8] { [0, 0, 0, 0, 0, 0, 0, low] }

    @Test("the samples cover both replication APIs, both directions, and every message kind")
    func samplesCoverEveryApiAndKind() {
        for api: ApiKey in [.raftMessages, .describeCluster] {
            #expect(WireSample.replicationRequests.contains { $0.api == api }, "no request sample for \(api)")
            #expect(WireSample.replicationResponses.contains { $0.api == api }, "no response sample for \(api)")
        }
        for kind in RaftMessage.Kind.allCases {
            #expect(WireSample.everyKind.contains { $0.kind == kind }, "no sample message of kind \(kind)")
        }
    }

    // MARK: Layout (protocol.md, byte by byte)

    @Test("RaftMessagesRequest is laid out as protocol.md says")
    func requestLayout() {
        let message = RaftMessage(
            kind: .append, from: 1, to: 2, term: 3, logTerm: 4, index: 5,
            entries: [Entry(term: 3, index: 6, payload: [0xAB])], commit: 7, reject: false, rejectHint: 8,
            snapshot: Snapshot(metadata: SnapshotMetadata(index: 9, term: 10), data: [0xCD]), transfer: true)
        let body = Self.bytes(RaftMessagesRequest(fromNode: 1, votersChecksum: 0xA1B2_C3D4, groups: [Group(topic: "t", partition: 2, incarnation: 11, messages: [message])]))
        let expected: [UInt8] = [0, 0, 0, 1]    // from_node
            + [0xA1, 0xB2, 0xC3, 0xD4]          // voters_checksum
            + [0, 0, 0, 1]                      // groups: 1
            + [0, 1, 0x74]                      // topic "t"
            + [0, 0, 0, 2]                      // partition
            + Self.int64(11)                    // incarnation
            + [0, 0, 0, 1]                      // messages: 1
            + [4]                               // kind: append
            + Self.int64(1) + Self.int64(2)     // from, to
            + Self.int64(3) + Self.int64(4)     // term, log_term
            + Self.int64(5) + Self.int64(7)     // index, commit
            + [0]                               // reject
            + Self.int64(8)                     // reject_hint
            + [1]                               // transfer
            + [0, 0, 0, 1]                      // entries: 1
            + Self.int64(3) + Self.int64(6)     // entry term, index
            + [0, 0, 0, 1, 0xAB]                // payload bytes
            + [1]                               // has_snapshot
            + Self.int64(9) + Self.int64(10)    // snapshot index, term
            + [0, 0, 0, 1, 0xCD]                // snapshot data bytes
        #expect(body == expected)
        #expect(message.wireBytes == body.count - 31, "wireBytes counts the message alone")
    }

    @Test("Raft's unsigned numbers travel as the int64 with the same bits; no snapshot is a single 0")
    func unsignedBitsAndAbsentSnapshot() throws {
        let message = RaftMessage(kind: .heartbeat, from: UInt64.max, to: UInt64(Int64.max) + 1, term: 0)
        let body = Self.bytes(RaftMessagesRequest(fromNode: -1, votersChecksum: 0, groups: [Group(topic: "", partition: 0, messages: [message])]))
        #expect(Array(body[0..<4]) == [0xFF, 0xFF, 0xFF, 0xFF])
        // from_node, voters_checksum, count, topic "", partition, incarnation, count: the message starts at 30.
        #expect(body[30] == 6)
        #expect(Array(body[31..<39]) == Array(repeating: 0xFF, count: 8))
        #expect(Array(body[39..<47]) == [0x80, 0, 0, 0, 0, 0, 0, 0])
        #expect(body.count == 30 + 64 && body.last == 0, "entries count 0 then has_snapshot 0")
        let decoded = try RaftMessagesRequest.decode(ByteBuffer(bytes: body), version: 0)
        #expect(decoded.groups.first?.messages == [message])
    }

    @Test("DescribeClusterResponse is laid out as protocol.md says")
    func describeClusterLayout() {
        let response = DescribeClusterResponse(
            controllerId: 2, brokers: [.init(nodeId: 2, host: "h", port: 9402, isUp: true)],
            partitions: [.init(topic: "t", partition: 1, leader: -1, term: 3, highWatermark: 4,
                               replicas: [.init(nodeId: 2, logEndOffset: -1, lag: 5, inSync: false)])])
        let expected: [UInt8] = [0, 0, 0xFF, 0xFF]                          // error none, message null
            + [0, 0, 0, 2]                                                  // controller_id
            + [0, 0, 0, 1] + [0, 0, 0, 2, 0, 1, 0x68, 0, 0, 0x24, 0xBA, 1]  // brokers: node 2, "h", 9402, up
            + [0, 0, 0, 1] + [0, 1, 0x74, 0, 0, 0, 1]                       // partitions: "t", 1
            + [0xFF, 0xFF, 0xFF, 0xFF] + Self.int64(3) + Self.int64(4)      // leader −1, term, high_watermark
            + [0, 0, 0, 1, 0, 0, 0, 2] + Array(repeating: 0xFF, count: 8)   // replicas: node 2, log_end_offset −1
            + Self.int64(5) + [0]                                           // lag, in_sync
        #expect(Self.bytes(response) == expected)
        #expect(Self.bytes(DescribeClusterRequest(includeInternal: true)) == [1])
    }

    // MARK: Kinds

    @Test("message kinds keep their wire numbers; every other int8 is unknown")
    func kindNumbers() {
        let numbered: [(RaftMessage.Kind, Int8)] = [
            (.preVote, 0), (.preVoteResponse, 1), (.vote, 2), (.voteResponse, 3), (.append, 4), (.appendResponse, 5),
            (.heartbeat, 6), (.heartbeatResponse, 7), (.timeoutNow, 8), (.installSnapshot, 9), (.snapshotResponse, 10),
        ]
        #expect(numbered.count == RaftMessage.Kind.allCases.count, "a kind without a documented number")
        for (kind, code) in numbered {
            #expect(kind.wireCode == code, "\(kind)")
        }
        for code in Int8.min...Int8.max {
            let expected: Int8? = (0...10).contains(code) ? code : nil
            #expect(RaftMessage.Kind(wireCode: code)?.wireCode == expected, "code \(code)")
        }
    }

    @Test("an unknown message kind is malformed, with a reason naming it")
    func unknownKindIsRefused() {
        let heartbeat = RaftMessage(kind: .heartbeat, from: 1, to: 2, term: 3)
        let valid = Self.bytes(RaftMessagesRequest(fromNode: 1, votersChecksum: 0xA1B2_C3D4, groups: [Group(topic: "t", partition: 0, messages: [heartbeat])]))
        for code: Int8 in [11, 12, 127, -1, -128] {
            var body = valid
            body[31] = UInt8(bitPattern: code)  // from_node, voters_checksum, count, topic "t", partition, incarnation, count: the kind at 31
            let reason = WirePrimitiveTests.reason { _ = try RaftMessagesRequest.decode(ByteBuffer(bytes: body), version: 0) }
            #expect(reason == "kind: unknown Raft message kind \(code); this build knows 0...10")
        }
    }

    @Test("every kind survives a round trip with random field values", arguments: SluiceRaft.Message.Kind.allCases)
    func everyKindRoundTrips(kind: SluiceRaft.Message.Kind) throws {
        var rng = SeededRandom.fromEnvironment()
        for round in 0..<200 {
            let messages = (0..<rng.int(1...3)).map { _ in Self.randomMessage(kind, &rng) }
            let request = RaftMessagesRequest(fromNode: Int32.random(in: .min ... .max, using: &rng),
                                              votersChecksum: UInt32(truncatingIfNeeded: rng.next()), groups: [Group(topic: "t", partition: Int32(rng.int(0...99)), incarnation: rng.next(), messages: messages)])
            let body = Self.bytes(request)
            let decoded = try RaftMessagesRequest.decode(ByteBuffer(bytes: body), version: 0)
            #expect(decoded == request, "\(kind) round \(round), seed \(rng.seed)")
            #expect(body.count == RaftMessagesRequest.headBytes + request.groups[0].wireBytes, "\(kind) round \(round), seed \(rng.seed)")
        }
    }

    /// A message of `kind` with every field random, extremes likely.
    private static func randomMessage(_ kind: RaftMessage.Kind, _ rng: inout SeededRandom) -> RaftMessage {
        func number() -> UInt64 {
            rng.chance(0.3) ? [0, 1, UInt64(Int64.max), UInt64(Int64.max) + 1, UInt64.max].randomElement(using: &rng) ?? 0 : rng.next()
        }
        func payload() -> [UInt8] {
            let count = rng.int(0...40)
            return rng.bytes(count)
        }
        let entries = (0..<rng.int(0...3)).map { _ in Entry(term: number(), index: number(), payload: payload()) }
        let snapshot = rng.chance(0.5) ? Snapshot(metadata: SnapshotMetadata(index: number(), term: number()), data: payload()) : nil
        return RaftMessage(kind: kind, from: number(), to: number(), term: number(), logTerm: number(), index: number(),
                           entries: entries, commit: number(), reject: rng.chance(0.5), rejectHint: number(),
                           snapshot: snapshot, transfer: rng.chance(0.5))
    }

    // MARK: Limits

    /// A RaftMessages body of one group ("", 0) holding `messages`, each a heartbeat with `entries` empty entries.
    static func body(groups: Int = 1, messages: Int = 1, entries: Int = 0) -> ByteBuffer {
        WirePrimitiveTests.buffer { w in
            w.write(Int32(7))
            w.write(Int32(0))  // voters_checksum
            w.write(Int32(groups))
            for _ in 0..<groups {
                w.write("")
                w.write(Int32(0))
                w.write(Int64(0))  // incarnation
                w.write(Int32(messages))
                for _ in 0..<messages {
                    w.write(Int8(6))
                    for _ in 0..<6 { w.write(Int64(0)) }
                    w.write(false)
                    w.write(Int64(0))
                    w.write(false)
                    w.write(Int32(entries))
                    for _ in 0..<entries { w.write(Int64(1)); w.write(Int64(2)); w.write(bytes: [] as [UInt8]) }
                    w.write(false)
                }
            }
        }
    }

    @Test("a count above a RaftWireLimits bound is refused, naming the limit; exactly the bound is read")
    func raftLimits() throws {
        let groupsMax = RaftWireLimits.groupsPerRequestMax
        let messagesMax = RaftWireLimits.messagesPerGroupMax
        let entriesMax = RaftWireLimits.entriesPerMessageMax
        #expect(try RaftMessagesRequest.decode(Self.body(groups: groupsMax, messages: 0), version: 0).groups.count == groupsMax)
        #expect(try RaftMessagesRequest.decode(Self.body(messages: messagesMax), version: 0).groups[0].messages.count == messagesMax)
        #expect(try RaftMessagesRequest.decode(Self.body(entries: entriesMax), version: 0).groups[0].messages[0].entries.count == entriesMax)

        let over: [(ByteBuffer, String)] = [
            (Self.body(groups: groupsMax + 1, messages: 0), "groups: \(groupsMax + 1) elements; the limit is \(groupsMax) (RaftWireLimits.groupsPerRequestMax)"),
            (Self.body(messages: messagesMax + 1), "messages: \(messagesMax + 1) elements; the limit is \(messagesMax) (RaftWireLimits.messagesPerGroupMax)"),
            (Self.body(entries: entriesMax + 1), "entries: \(entriesMax + 1) elements; the limit is \(entriesMax) (RaftWireLimits.entriesPerMessageMax)"),
            (WirePrimitiveTests.buffer { $0.write(Int32(1)); $0.write(Int32(0)); $0.write(Int32.max) },
             "groups: \(Int32.max) elements; the limit is \(groupsMax) (RaftWireLimits.groupsPerRequestMax)"),
            (WirePrimitiveTests.buffer { $0.write(Int32(1)); $0.write(Int32(0)); $0.write(Int32(-1)) }, "groups: null where an array is required"),
            (WirePrimitiveTests.buffer { $0.write(Int32(1)); $0.write(Int32(0)); $0.write(Int32(-2)) }, "groups: negative array count -2"),
        ]
        for (body, reason) in over {
            #expect(WirePrimitiveTests.reason { _ = try RaftMessagesRequest.decode(body, version: 0) } == reason)
        }
    }

    @Test("DescribeCluster lists above a ClusterLimits bound are refused, naming the limit")
    func clusterLimits() {
        let brokers = WirePrimitiveTests.buffer { w in
            w.write(error: .none, message: nil); w.write(Int32(1)); w.write(Int32(ClusterLimits.brokersMax + 1))
        }
        #expect(WirePrimitiveTests.reason { _ = try DescribeClusterResponse.decode(brokers, version: 0) }
                == "brokers: \(ClusterLimits.brokersMax + 1) elements; the limit is \(ClusterLimits.brokersMax) (ClusterLimits.brokersMax)")
        let replicas = WirePrimitiveTests.buffer { w in
            w.write(error: .none, message: nil); w.write(Int32(1)); w.write(Int32(0)); w.write(Int32(1))
            w.write("t"); w.write(Int32(0)); w.write(Int32(1)); w.write(Int64(1)); w.write(Int64(0))
            w.write(Int32(ClusterLimits.replicasPerPartitionMax + 1))
        }
        #expect(WirePrimitiveTests.reason { _ = try DescribeClusterResponse.decode(replicas, version: 0) }?
            .hasPrefix("replicas: \(ClusterLimits.replicasPerPartitionMax + 1) elements; the limit is") == true)
        let partitions = WirePrimitiveTests.buffer { w in
            w.write(error: .none, message: nil); w.write(Int32(1)); w.write(Int32(0)); w.write(Int32(ClusterLimits.partitionsMax + 1))
        }
        #expect(WirePrimitiveTests.reason { _ = try DescribeClusterResponse.decode(partitions, version: 0) }?
            .contains("(ClusterLimits.partitionsMax)") == true)
    }

    // MARK: Batching

    @Test("batched keeps every group's messages in order and every request within the limits")
    func batchedRespectsLimits() throws {
        var rng = SeededRandom.fromEnvironment()
        for round in 0..<20 {
            let bytesMax = rng.int(200...20_000)
            let groups = (0..<rng.int(0...6)).map { g in
                Group(topic: "t\(g % 3)", partition: Int32(g), messages: (0..<rng.int(0...1_500)).map { _ in
                    RaftMessage(kind: .append, from: 1, to: 2, term: 1,
                                entries: rng.chance(0.01) ? [Entry(term: 1, index: 1, payload: Array(repeating: 7, count: rng.int(0...30_000)))] : [])
                })
            }
            let context = "round \(round), bytesMax \(bytesMax), seed \(rng.seed)"
            let requests = RaftMessagesRequest.batched(fromNode: 4, votersChecksum: 9, groups: groups, bytesMax: bytesMax)
            // One #expect per round: thousands of small requests would make per-request expectations slow.
            let broken = requests.filter { request in
                let size = Self.bytes(request).count
                let alone = request.groups.count == 1 && request.groups[0].messages.count == 1
                return request.fromNode != 4 || request.groups.isEmpty || (size > bytesMax && !alone)
                    || request.groups.contains { $0.messages.isEmpty || $0.messages.count > RaftWireLimits.messagesPerGroupMax }
            }
            #expect(broken.isEmpty, "\(context): \(broken.count) of \(requests.count) requests break a limit")
            for group in groups {
                let sent = requests.flatMap(\.groups).filter { $0.partition == group.partition }.flatMap(\.messages)
                #expect(sent == group.messages, "\(context): group \(group.partition)")
            }
        }
    }

    @Test("batched starts a new request after groupsPerRequestMax groups")
    func batchedSplitsGroups() {
        let heartbeat = RaftMessage(kind: .heartbeat, from: 1, to: 2, term: 1)
        let groups = (0...RaftWireLimits.groupsPerRequestMax).map { Group(topic: "t", partition: Int32($0), messages: [heartbeat]) }
        let requests = RaftMessagesRequest.batched(fromNode: 1, votersChecksum: 9, groups: groups)
        #expect(requests.map(\.groups.count) == [RaftWireLimits.groupsPerRequestMax, 1])
        #expect(requests.last?.groups.first?.partition == Int32(RaftWireLimits.groupsPerRequestMax))
        #expect(RaftMessagesRequest.batched(fromNode: 1, votersChecksum: 9, groups: [Group(topic: "t", partition: 0, messages: [])]).isEmpty)
    }

    // MARK: Values

    @Test("API keys 19, 20, error codes 36, 37 and the metadata group's address keep their numbers and names")
    func numbersAndNames() {
        #expect([ApiKey.raftMessages, .describeCluster].map(\.rawValue) == [19, 20])
        #expect([ApiKey.raftMessages, .describeCluster].map(\.description) == ["RaftMessages", "DescribeCluster"])
        #expect(ErrorCode.notEnoughReplicas.rawValue == 36 && ErrorCode.notEnoughReplicas.description == "not_enough_replicas")
        #expect(ErrorCode.notEnoughReplicas.isRetriable && ErrorCode.notLeader.isRetriable)
        #expect(ErrorCode(rawValue: 36) == .notEnoughReplicas && ErrorCode(rawValue: 29) == .notLeader)
        #expect(ErrorCode(rawValue: 37) == .notCoordinator && ErrorCode.notCoordinator.description == "not_coordinator")
        #expect(ErrorCode.notCoordinator.isRetriable)
        #expect(RaftWireLimits.metadataTopic == "__cluster_metadata" && RaftWireLimits.metadataPartition == 0)
    }
}
