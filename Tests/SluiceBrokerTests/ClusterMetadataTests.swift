import SluiceCore
import SluiceTestSupport
import SluiceWire
import Testing

@testable import SluiceBroker

/// The cluster metadata state machine: command and snapshot bytes (storage-format/cluster-metadata.md),
/// apply, determinism across replicas, and replica placement.
@Suite("cluster metadata")
struct ClusterMetadataTests {
    // MARK: Golden vectors

    /// The ```hex blocks of storage-format/cluster-metadata.md, in order: the command, then the snapshot.
    static func documentedExamples() throws -> [[UInt8]] {
        let path = repositoryRoot() + "/storage-format/cluster-metadata.md"
        guard let text = readFileBytes(path).map({ String(decoding: $0, as: UTF8.self) }) else {
            throw GoldenVectorError("cannot read \(path)")
        }
        var blocks: [[UInt8]] = []
        var current: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```hex") {
                current = ""
            } else if line.hasPrefix("```"), let block = current {
                blocks.append(try GoldenVectors.parseHex(block))
                current = nil
            } else if current != nil {
                current? += line + "\n"
            }
        }
        return blocks
    }

    static let exampleCommand = MetadataCommand.createTopic(
        name: "clicks", replicas: [[1, 2], [2, 3], [3, 1]],
        configs: ["retention.ms": "3600000", "cleanup.policy": "compact"], isInternal: false)

    static func exampleState() -> ClusterMetadata {
        var state = ClusterMetadata()
        _ = state.apply(.createTopic(name: "__processors", replicas: [[2, 3, 1]], configs: ["cleanup.policy": "compact"],
                                     isInternal: true), index: 3)
        _ = state.apply(.createTopic(name: "clicks", replicas: [[1, 2], [2, 3], [3, 1]], configs: [:], isInternal: false), index: 7)
        state.advance(to: 9)
        return state
    }

    @Test("the documented command example decodes, and encodes back byte for byte")
    func goldenCommand() throws {
        let examples = try Self.documentedExamples()
        try #require(examples.count == 2)
        #expect(examples[0].count == 92)
        #expect(try MetadataCommand.decode(examples[0]) == Self.exampleCommand)
        #expect(try Self.exampleCommand.encode() == examples[0])
    }

    @Test("the documented snapshot example decodes, and encodes back byte for byte")
    func goldenSnapshot() throws {
        let examples = try Self.documentedExamples()
        try #require(examples.count == 2)
        let decoded = try ClusterMetadata.decodeSnapshot(examples[1])
        #expect(decoded == Self.exampleState())
        #expect(decoded.appliedIndex == 9)
        #expect(decoded.topics["__processors"]?.isInternal == true)
        #expect(decoded.topics["clicks"]?.createdAtIndex == 7)
        #expect(Self.exampleState().encodeSnapshot() == examples[1])
    }

    // MARK: Command encoding

    @Test("every command kind survives encode and decode with random contents")
    func commandRoundTrip() throws {
        var random = SeededRandom.fromEnvironment()
        for iteration in 0..<420 {
            let command = Self.randomCommand(&random, kind: iteration % 7)
            let bytes = try command.encode()
            let decoded = try MetadataCommand.decode(bytes)
            #expect(decoded == command, "seed \(random.seed), iteration \(iteration)")
            #expect(try decoded.encode() == bytes, "seed \(random.seed), iteration \(iteration)")
        }
    }

    @Test("every proper prefix of a command fails as truncated at its own end")
    func commandTruncation() throws {
        var random = SeededRandom.fromEnvironment()
        for iteration in 0..<40 {
            let bytes = try Self.randomCommand(&random, kind: iteration % 5).encode()
            for length in 0..<bytes.count {
                do {
                    let decoded = try MetadataCommand.decode(Array(bytes.prefix(length)))
                    Issue.record("seed \(random.seed): a \(length)-byte prefix decoded as \(decoded)")
                } catch {
                    guard case .truncated = error.reason else {
                        Issue.record("seed \(random.seed): prefix \(length): \(error)")
                        continue
                    }
                    #expect(error.position == length, "seed \(random.seed): \(error)")
                }
            }
            #expect(throws: MetadataFormatError.self, "seed \(random.seed)") { try MetadataCommand.decode(bytes + [0]) }
        }
    }

    @Test("damaged commands fail, or decode to a command that encodes to the damaged bytes")
    func commandDamage() throws {
        var random = SeededRandom.fromEnvironment()
        var failed = 0
        let iterations = 2000
        for iteration in 0..<iterations {
            var bytes = try Self.randomCommand(&random, kind: iteration % 5).encode()
            for _ in 0..<random.int(1...3) {
                bytes[random.int(0...bytes.count - 1)] ^= UInt8(random.int(1...255))
            }
            do {
                let decoded = try MetadataCommand.decode(bytes)
                // Canonical encoding: whatever decodes has exactly these bytes.
                #expect(try decoded.encode() == bytes, "seed \(random.seed), iteration \(iteration)")
            } catch {
                failed += 1
                #expect(error.description.hasPrefix("cluster metadata command: "), "seed \(random.seed)")
            }
        }
        // Damage to a name's or value's content can still decode; damage to lengths and counts cannot.
        #expect(failed > iterations / 10 && failed < iterations, "seed \(random.seed): \(failed) failed")
    }

    @Test("malformed commands name the problem and the byte")
    func commandErrors() throws {
        func reason(_ bytes: [UInt8]) -> (MetadataFormatError.Reason, Int)? {
            do {
                _ = try MetadataCommand.decode(bytes)
                return nil
            } catch {
                return (error.reason, error.position)
            }
        }
        let name: [UInt8] = [0x00, 0x01, 0x61]
        #expect(reason([2, 1]).map { $0.0 } == .unsupportedVersion(2))
        #expect(reason([1, 9] + name).map { $0.0 } == .unknownKind(9))
        #expect(reason([1, 2, 0x00, 0xC9] + [UInt8](repeating: 0x61, count: 201)).map { $0.0 }
                == .tooLong(field: "topic name", length: 201, limit: 200))
        let tooManyPartitions = reason([1, 1] + name + [0, 0x00, 0x00, 0x27, 0x11])
        #expect(tooManyPartitions?.0 == .tooMany(field: "partition", count: 10_001, limit: 10_000))
        #expect(tooManyPartitions?.1 == 6)
        #expect(reason([1, 1] + name + [0, 0, 0, 0, 1, 17]).map { $0.0 } == .tooMany(field: "replica", count: 17, limit: 16))
        #expect(reason([1, 2, 0x00, 0x01, 0xFF]).map { $0.0 } == .invalidUTF8(field: "topic name"))
        #expect(reason([1, 1] + name + [2]).map { $0.0 } == .invalidFlags(field: "internal flag", value: 2))
        #expect(reason([1, 2] + name + [0]).map { $0.0 } == .trailingBytes(count: 1))
        let unsorted: [UInt8] = [1, 3] + name + [0, 2, 0, 1, 0x62, 0, 0, 0, 1, 0x61, 0, 0, 0, 0]
        #expect(reason(unsorted).map { $0.0 } == .notAscending(field: "config key"))
        let repeated: [UInt8] = [1, 3] + name + [0, 0, 0, 2, 0, 1, 0x61, 0, 1, 0x61]
        #expect(reason(repeated).map { $0.0 } == .notAscending(field: "removed key"))
        do {
            _ = try MetadataCommand.decode([1, 9] + name)
        } catch {
            #expect(error.description == "cluster metadata command: unknown command kind 9, at byte 1")
        }
        #expect(throws: MetadataFormatError.self) {
            try MetadataCommand.deleteTopic(name: String(repeating: "x", count: 201)).encode()
        }
    }

    // MARK: Apply

    @Test("create, duplicate create, delete, recreate: outcomes and createdAtIndex")
    func applyCreateDelete() throws {
        var state = ClusterMetadata()
        let create = MetadataCommand.createTopic(name: "orders", replicas: [[1, 2], [2, 3], [3, 1]],
                                                 configs: ["retention.ms": "60000"], isInternal: false)
        #expect(state.check(create) == nil)
        #expect(state.apply(create, index: 1) == .applied)
        #expect(state.topics["orders"]?.createdAtIndex == 1)
        #expect(state.topics["orders"]?.configs == ["retention.ms": "60000"])
        #expect(state.assignment(topic: "orders", partition: 2) == [3, 1])
        #expect(state.assignment(topic: "orders", partition: 3) == nil)
        #expect(state.assignment(topic: "orders", partition: -1) == nil)

        let before = state
        let duplicate = state.apply(create, index: 2)
        #expect(duplicate == .rejected(MetadataRejection(.topicExists, "topic 'orders' already exists")))
        #expect(state.topics == before.topics && state.appliedIndex == 2)

        #expect(state.apply(.deleteTopic(name: "orders"), index: 3) == .applied)
        #expect(state.topics.isEmpty)
        #expect(Self.code(state.apply(.deleteTopic(name: "orders"), index: 4)) == .unknownTopic)
        #expect(state.apply(create, index: 5) == .applied)
        #expect(state.topics["orders"]?.createdAtIndex == 5)
        #expect(state.appliedIndex == 5)
    }

    @Test("alter config sets and removes overrides; invalid configs are rejected with the registry's message")
    func applyAlterConfig() throws {
        var state = ClusterMetadata()
        _ = state.apply(.createTopic(name: "t", replicas: [[1]], configs: ["retention.ms": "1000"], isInternal: false), index: 1)
        let alter = MetadataCommand.alterTopicConfig(name: "t", set: ["cleanup.policy": "compact"], remove: ["retention.ms"])
        #expect(state.apply(alter, index: 2) == .applied)
        #expect(state.topics["t"]?.configs == ["cleanup.policy": "compact"])

        let badValue = state.apply(.alterTopicConfig(name: "t", set: ["retention.ms": "soon"], remove: []), index: 3)
        #expect(Self.code(badValue) == .invalidConfig)
        #expect(Self.message(badValue).contains("retention.ms must be an integer"))
        let unknownKey = state.apply(.alterTopicConfig(name: "t", set: ["colour": "blue"], remove: []), index: 4)
        #expect(Self.message(unknownKey).contains("unknown topic config 'colour'"))
        let both = state.apply(.alterTopicConfig(name: "t", set: ["segment.ms": "5"], remove: ["segment.ms"]), index: 5)
        #expect(Self.message(both) == "config 'segment.ms' of topic 't' is both set and removed")
        let badCreate = state.apply(.createTopic(name: "u", replicas: [[1]], configs: ["flush.policy": "sometimes"], isInternal: false), index: 6)
        #expect(Self.code(badCreate) == .invalidConfig)
        #expect(state.topics["u"] == nil)
        #expect(Self.code(state.apply(.alterTopicConfig(name: "nope", set: [:], remove: []), index: 7)) == .unknownTopic)
        #expect(state.topics["t"]?.configs == ["cleanup.policy": "compact"])
    }

    @Test("create partitions appends with the topic's replication factor")
    func applyCreatePartitions() throws {
        var state = ClusterMetadata()
        _ = state.apply(.createTopic(name: "t", replicas: [[1, 2], [2, 1]], configs: [:], isInternal: false), index: 1)
        #expect(state.apply(.createPartitions(name: "t", newReplicas: [[2, 3]]), index: 2) == .applied)
        #expect(state.topics["t"]?.partitionCount == 3)
        #expect(state.assignment(topic: "t", partition: 2) == [2, 3])
        let wrongFactor = state.apply(.createPartitions(name: "t", newReplicas: [[3]]), index: 3)
        #expect(Self.message(wrongFactor) == "partition 3 of topic 't' has 1 replicas; every partition of the topic needs 2")
        #expect(Self.code(state.apply(.createPartitions(name: "t", newReplicas: []), index: 4)) == .invalidPartitions)
        let tooMany = [[Int32]](repeating: [1, 2], count: MetadataLimits.partitionsPerTopicMax - 2)
        #expect(Self.code(state.apply(.createPartitions(name: "t", newReplicas: tooMany), index: 5)) == .invalidPartitions)
        #expect(state.topics["t"]?.partitionCount == 3)
    }

    @Test("bad names, replicas and partition counts are rejected with readable messages")
    func applyRejectsBadTopics() throws {
        let state = ClusterMetadata()
        func rejection(_ name: String, _ replicas: [[Int32]], internal: Bool = false) -> MetadataRejection? {
            state.check(.createTopic(name: name, replicas: replicas, configs: [:], isInternal: `internal`))
        }
        #expect(rejection("t", [[1, 1]])?.message == "partition 0 of topic 't' names node 1 twice")
        #expect(rejection("t", [[1, 2], [1]])?.message == "partition 1 of topic 't' has 1 replicas; every partition of the topic needs 2")
        #expect(rejection("t", [[-1]])?.message == "partition 0 of topic 't' names node -1; node ids are 0 or more")
        #expect(rejection("t", [])?.code == .invalidPartitions)
        #expect(rejection("t", [[]])?.code == .invalidReplicas)
        #expect(rejection("t", [Array(0...16)])?.code == .invalidReplicas)
        #expect(rejection("bad name!", [[1]])?.code == .invalidTopicName)
        #expect(rejection("__secret", [[1]])?.code == .invalidTopicName)
        #expect(rejection("plain", [[1]], internal: true)?.message == "internal topic 'plain' must have a name starting with '__'")
        #expect(rejection("__consumer_offsets", [[1]], internal: true) == nil)
        #expect(rejection("t", [[1, 1]])?.errorCode == .invalidReplicationFactor)
    }

    @Test("an offset commit applies to existing partitions only, leaves the topics alone, and refuses bad offsets")
    func applyCommitOffsets() throws {
        var state = ClusterMetadata()
        #expect(state.apply(.createTopic(name: "t", replicas: [[1], [2]], configs: [:], isInternal: false), index: 1) == .applied)
        let topics = state.topics
        func commit(_ offsets: [CommittedOffset], group: String = "g") -> MetadataRejection? {
            let command = MetadataCommand.commitOffsets(group: group, commitTimeMs: 5, offsets: offsets)
            let checked = state.check(command)
            let outcome = state.apply(command, index: state.appliedIndex + 1)
            #expect((checked == nil) == (outcome == .applied), "check and apply disagree: \(String(describing: checked)) vs \(outcome)")
            if case .rejected(let rejection) = outcome { return rejection }
            return nil
        }
        #expect(commit([.init(topic: "t", partition: 0, offset: 7, metadata: "m"), .init(topic: "t", partition: 1, offset: 0)]) == nil)
        #expect(state.topics == topics && state.appliedIndex == 2)
        #expect(commit([.init(topic: "t", partition: 2, offset: 1)])?.code == .unknownTopic)
        #expect(commit([.init(topic: "u", partition: 0, offset: 1)])?.code == .unknownTopic)
        #expect(commit([.init(topic: "t", partition: 0, offset: -1)])?.code == .invalidCommit)
        #expect(commit([])?.code == .invalidCommit)
        #expect(commit([.init(topic: "t", partition: 0, offset: 1)], group: "")?.code == .invalidCommit)
        let long = String(repeating: "x", count: MetadataLimits.commitMetadataBytesMax + 1)
        #expect(commit([.init(topic: "t", partition: 0, offset: 1, metadata: long)])?.code == .invalidCommit)
        #expect(commit([.init(topic: "t", partition: 0, offset: 1)]) == nil)
        #expect(MetadataRejection(.invalidCommit, "").errorCode == .invalidCommitOffset)
        #expect(state.appliedIndex == 9 && state.topics == topics)
    }

    @Test("an offset commit's partitions must be in ascending order without repeats")
    func commitOffsetsOrder() throws {
        let entry = CommittedOffset(topic: "t", partition: 1, offset: 3)
        #expect(throws: MetadataFormatError.self) {
            try MetadataCommand.commitOffsets(group: "g", commitTimeMs: 0, offsets: [entry, entry]).encode()
        }
        // Written out of order by hand: the reader refuses it rather than reorder it.
        let ordered = try MetadataCommand.commitOffsets(group: "g", commitTimeMs: 0, offsets: [
            .init(topic: "t", partition: 1, offset: 3), .init(topic: "t", partition: 2, offset: 4)]).encode()
        let entryBytes = 2 + 1 + 4 + 8 + 1
        let start = 2 + 3 + 8 + 2
        var swapped = Array(ordered[..<start])
        swapped += ordered[(start + entryBytes)...] + ordered[start..<(start + entryBytes)]
        #expect(swapped.count == ordered.count)
        do {
            _ = try MetadataCommand.decode(swapped)
            Issue.record("an out-of-order commit decoded")
        } catch {
            guard case .notAscending = error.reason else { Issue.record("\(error)"); return }
            #expect(error.position == start + entryBytes)
        }
    }

    @Test("bytes that are not a command are rejected and still advance the applied index")
    func applyMalformedBytes() throws {
        var state = ClusterMetadata()
        let outcome = state.apply(encoded: [1, 77], index: 4)
        #expect(Self.code(outcome) == .malformedCommand)
        #expect(Self.message(outcome).contains("unknown command kind 77"))
        #expect(state.appliedIndex == 4 && state.topics.isEmpty)
        #expect(state.apply(encoded: try Self.exampleCommand.encode(), index: 5) == .applied)
        #expect(state.topics["clicks"]?.createdAtIndex == 5)
    }

    @Test("hosted partitions, and what a node opens and closes when a topic is recreated")
    func hostedPartitions() throws {
        var state = ClusterMetadata()
        _ = state.apply(.createTopic(name: "b", replicas: [[1, 2], [2, 3]], configs: [:], isInternal: false), index: 1)
        _ = state.apply(.createTopic(name: "a", replicas: [[3, 1]], configs: [:], isInternal: false), index: 2)
        #expect(state.partitions(hostedBy: 1).map(\.description) == ["a-0", "b-0"])
        #expect(state.partitions(hostedBy: 3).map(\.description) == ["a-0", "b-1"])
        #expect(state.partitions(hostedBy: 9).isEmpty)
        let old = state
        _ = state.apply(.deleteTopic(name: "b"), index: 3)
        _ = state.apply(.createTopic(name: "b", replicas: [[2, 1]], configs: [:], isInternal: false), index: 4)
        let changes = ClusterMetadata.hostedChanges(from: old, to: state, node: 1)
        #expect(changes.added.map { "\($0)@\($0.topicCreatedAtIndex)" } == ["b-0@4"])
        #expect(changes.removed.map { "\($0)@\($0.topicCreatedAtIndex)" } == ["b-0@1"])
    }

    // MARK: Determinism and snapshots

    @Test("replicas applying one command sequence, directly, encoded or from a snapshot, agree byte for byte")
    func replicasAgree() throws {
        var random = SeededRandom.fromEnvironment()
        for round in 0..<20 {
            let commands = (0..<200).map { _ in Self.randomApplyCommand(&random) }
            let cut = random.int(0...commands.count)
            var direct = ClusterMetadata()
            var encoded = ClusterMetadata()
            var restored = ClusterMetadata()
            var applied = 0
            for (offset, command) in commands.enumerated() {
                let index = UInt64(offset + 1)
                let outcome = direct.apply(command, index: index)
                if outcome == .applied { applied += 1 }
                #expect(encoded.apply(encoded: try command.encode(), index: index) == outcome, "seed \(random.seed), round \(round)")
                if offset == cut { restored = try ClusterMetadata.decodeSnapshot(direct.encodeSnapshot()) }
                if offset > cut { _ = restored.apply(command, index: index) }
            }
            if cut == commands.count { restored = try ClusterMetadata.decodeSnapshot(direct.encodeSnapshot()) }
            #expect(direct == encoded && direct == restored, "seed \(random.seed), round \(round)")
            #expect(direct.encodeSnapshot() == encoded.encodeSnapshot(), "seed \(random.seed), round \(round)")
            #expect(direct.encodeSnapshot() == restored.encodeSnapshot(), "seed \(random.seed), round \(round)")
            // The mix must exercise both outcomes, or the comparison proves little.
            #expect(applied > 20 && applied < 190, "seed \(random.seed): \(applied) of 200 applied")
        }
    }

    @Test("snapshots round-trip, including the empty state")
    func snapshotRoundTrip() throws {
        var random = SeededRandom.fromEnvironment()
        let empty = ClusterMetadata()
        #expect(try ClusterMetadata.decodeSnapshot(empty.encodeSnapshot()) == empty)
        #expect(empty.encodeSnapshot().count == ClusterMetadata.snapshotFixedBytes)
        for round in 0..<30 {
            let state = Self.randomState(&random, commands: 100)
            let bytes = state.encodeSnapshot()
            let decoded = try ClusterMetadata.decodeSnapshot(bytes)
            #expect(decoded == state, "seed \(random.seed), round \(round)")
            #expect(decoded.encodeSnapshot() == bytes, "seed \(random.seed), round \(round)")
            #expect(bytes.count <= ClusterMetadata.snapshotBytesMax)
        }
    }

    @Test("truncated or damaged snapshots fail; with a recomputed CRC they fail or decode canonically")
    func snapshotDamage() throws {
        var random = SeededRandom.fromEnvironment()
        let bytes = Self.randomState(&random, commands: 60).encodeSnapshot()
        for length in 0..<bytes.count {
            #expect(throws: MetadataFormatError.self, "seed \(random.seed), prefix \(length)") {
                try ClusterMetadata.decodeSnapshot(Array(bytes.prefix(length)))
            }
        }
        var failedBehindCRC = 0
        for iteration in 0..<1000 {
            var damaged = bytes
            damaged[random.int(0...bytes.count - 1)] ^= UInt8(random.int(1...255))
            // One changed byte is a burst under 32 bits: CRC-32C always sees it.
            #expect(throws: MetadataFormatError.self, "seed \(random.seed), iteration \(iteration)") {
                try ClusterMetadata.decodeSnapshot(damaged)
            }
            let fixed = Self.withSnapshotCRC(damaged)
            do {
                let decoded = try ClusterMetadata.decodeSnapshot(fixed)
                #expect(decoded.encodeSnapshot() == fixed, "seed \(random.seed), iteration \(iteration)")
            } catch {
                failedBehindCRC += 1
            }
        }
        #expect(failedBehindCRC > 100, "seed \(random.seed): \(failedBehindCRC) failed")
    }

    @Test("a snapshot that passes its CRC but breaks a rule of the state is refused")
    func snapshotInvalidState() throws {
        func error(_ topics: [TopicAssignment], applied: UInt64) -> MetadataFormatError.Reason? {
            let state = ClusterMetadata(topics: Dictionary(uniqueKeysWithValues: topics.map { ($0.name, $0) }), appliedIndex: applied)
            do {
                _ = try ClusterMetadata.decodeSnapshot(state.encodeSnapshot())
                return nil
            } catch {
                return error.reason
            }
        }
        func topic(_ name: String, _ replicas: [[Int32]], at index: UInt64 = 1, configs: [String: String] = [:]) -> TopicAssignment {
            TopicAssignment(name: name, replicas: replicas, configs: configs, isInternal: false, createdAtIndex: index)
        }
        #expect(error([topic("a", [[1]])], applied: 1) == nil)
        #expect(error([topic("a", [[1]], at: 5)], applied: 4) == .invalidState("topic 'a' was created at index 5, outside 1...4"))
        #expect(error([topic("a", [[1]], at: 0)], applied: 4) != nil)
        #expect(error([topic("a", [[1, 1]])], applied: 1) == .invalidState("partition 0 of topic 'a' names node 1 twice"))
        #expect(error([topic("a", [])], applied: 1) != nil)
        #expect(error([topic("a b", [[1]])], applied: 1) != nil)
        #expect(error([topic("a", [[1]], configs: ["segment.ms": "-5"])], applied: 1) != nil)
        var swapped = ClusterMetadata.snapshotMagic
        swapped[3] = 0x58
        #expect(throws: MetadataFormatError.self) { try ClusterMetadata.decodeSnapshot(swapped + [UInt8](repeating: 0, count: 20)) }
    }

    // MARK: Placement

    @Test("6 partitions with 3 replicas on 3 brokers: each broker leads 2 and holds 6")
    func placementSixByThree() throws {
        let placed = try ClusterMetadata.place(partitions: 6, replicationFactor: 3, brokers: [1, 2, 3], existing: ClusterMetadata())
        #expect(Self.leaderCounts(placed) == [1: 2, 2: 2, 3: 2])
        #expect(Self.replicaCounts(placed) == [1: 6, 2: 6, 3: 6])
        #expect(placed.allSatisfy { Set($0).count == 3 })
        let pairs = try ClusterMetadata.place(partitions: 6, replicationFactor: 2, brokers: [3, 1, 2], existing: ClusterMetadata())
        #expect(Self.leaderCounts(pairs) == [1: 2, 2: 2, 3: 2])
        #expect(Self.replicaCounts(pairs) == [1: 4, 2: 4, 3: 4])
        #expect(pairs == [[1, 2], [2, 3], [3, 1], [1, 3], [2, 1], [3, 2]])
        #expect(ClusterMetadata().check(.createTopic(name: "t", replicas: pairs, configs: [:], isInternal: false)) == nil)
        // The shift: the followers of each broker's partitions are all the other brokers, not just its neighbour.
        let spread = try ClusterMetadata.place(partitions: 12, replicationFactor: 2, brokers: [1, 2, 3, 4], existing: ClusterMetadata())
        for leader: Int32 in 1...4 {
            let followers = spread.filter { $0.first == leader }.map { $0[1] }
            #expect(Set(followers) == Set([1, 2, 3, 4]).subtracting([leader]), "leader \(leader): \(followers)")
        }
    }

    @Test("a new topic starts on the broker with the fewest preferred leaders, lowest id on ties")
    func placementCountsExistingLeaders() throws {
        var state = ClusterMetadata()
        _ = state.apply(.createTopic(name: "old", replicas: [[1], [1], [1]], configs: [:], isInternal: false), index: 1)
        let placed = try ClusterMetadata.place(partitions: 4, replicationFactor: 1, brokers: [1, 2, 3], existing: state)
        #expect(placed == [[2], [3], [2], [3]])
        let fresh = try ClusterMetadata.place(partitions: 4, replicationFactor: 1, brokers: [7, 5], existing: ClusterMetadata())
        #expect(fresh == [[5], [7], [5], [7]])
    }

    @Test("many topics keep preferred leaders balanced and replicas spread")
    func placementManyTopics() throws {
        var random = SeededRandom.fromEnvironment()
        for round in 0..<20 {
            let brokers = Self.randomBrokers(&random, count: random.int(3...7))
            var state = ClusterMetadata()
            for index in 1...60 {
                let factor = random.int(1...3)
                let replicas = try ClusterMetadata.place(partitions: random.int(1...12), replicationFactor: factor, brokers: brokers, existing: state)
                #expect(state.apply(.createTopic(name: "t\(index)", replicas: replicas, configs: [:], isInternal: false),
                                    index: UInt64(index)) == .applied, "seed \(random.seed)")
                let leaders = brokers.map { state.preferredLeaderCounts[$0] ?? 0 }
                #expect((leaders.max() ?? 0) - (leaders.min() ?? 0) <= 1, "seed \(random.seed), round \(round): \(leaders)")
            }
            let held = brokers.map { node in state.topics.values.reduce(0) { $0 + $1.replicas.filter { $0.contains(node) }.count } }
            let mean = Double(held.reduce(0, +)) / Double(held.count)
            // Followers are spread by a shifted round robin, which does not bound the spread exactly: a
            // rough-balance check. Over 400 seeded rounds the worst deviation measured was 7%; one run of
            // 20 rounds exceeded 10%, so the bound is 15%. Leaders (above) are balanced exactly.
            #expect(held.allSatisfy { abs(Double($0) - mean) <= mean * 0.15 }, "seed \(random.seed), round \(round): \(held)")
        }
    }

    @Test("placement errors: replication factor beyond the brokers, bad counts, bad broker lists")
    func placementErrors() throws {
        let none = ClusterMetadata()
        do {
            _ = try ClusterMetadata.place(partitions: 3, replicationFactor: 3, brokers: [1, 2], existing: none)
            Issue.record("placed 3 replicas on 2 brokers")
        } catch {
            #expect(error == .replicationFactorExceedsBrokers(factor: 3, brokers: 2))
            #expect(error.description == "replication factor 3 exceeds the 2 available brokers")
            #expect(error.errorCode == .invalidReplicationFactor)
        }
        #expect(throws: PlacementError.invalidPartitionCount(0)) {
            try ClusterMetadata.place(partitions: 0, replicationFactor: 1, brokers: [1], existing: none)
        }
        #expect(throws: PlacementError.invalidReplicationFactor(0)) {
            try ClusterMetadata.place(partitions: 1, replicationFactor: 0, brokers: [1], existing: none)
        }
        #expect(throws: PlacementError.noBrokers) { try ClusterMetadata.place(partitions: 1, replicationFactor: 1, brokers: [], existing: none) }
        #expect(throws: PlacementError.duplicateBroker(2)) {
            try ClusterMetadata.place(partitions: 1, replicationFactor: 1, brokers: [2, 1, 2], existing: none)
        }
        #expect(throws: PlacementError.negativeBroker(-3)) {
            try ClusterMetadata.place(partitions: 1, replicationFactor: 1, brokers: [1, -3], existing: none)
        }
        #expect(try ClusterMetadata.place(partitions: 3, replicationFactor: 1, brokers: [4], existing: none) == [[4], [4], [4]])
    }

    @Test("placement puts every replica of a partition on a distinct listed broker, whatever the input")
    func placementDistinct() throws {
        var random = SeededRandom.fromEnvironment()
        var state = Self.randomState(&random, commands: 40)
        for iteration in 0..<500 {
            let brokers = Self.randomBrokers(&random, count: random.int(1...20))
            let factor = random.int(1...min(brokers.count, MetadataLimits.replicasPerPartitionMax))
            let count = random.int(1...50)
            let placed = try ClusterMetadata.place(partitions: count, replicationFactor: factor, brokers: brokers, existing: state)
            let shuffled = try ClusterMetadata.place(partitions: count, replicationFactor: factor, brokers: brokers.shuffled(using: &random), existing: state)
            #expect(placed == shuffled, "seed \(random.seed), iteration \(iteration)")
            #expect(placed.count == count, "seed \(random.seed)")
            let valid = placed.allSatisfy { $0.count == factor && Set($0).count == factor && $0.allSatisfy(brokers.contains) }
            #expect(valid, "seed \(random.seed), iteration \(iteration): \(placed)")
            let create = MetadataCommand.createTopic(name: "p\(iteration)", replicas: placed, configs: [:], isInternal: false)
            _ = state.apply(create, index: state.appliedIndex + 1)
        }
    }

    // MARK: Helpers

    static func code(_ outcome: MetadataOutcome) -> MetadataRejection.Code? {
        if case .rejected(let rejection) = outcome { return rejection.code }
        return nil
    }

    static func message(_ outcome: MetadataOutcome) -> String {
        if case .rejected(let rejection) = outcome { return rejection.message }
        return "applied"
    }

    static func leaderCounts(_ replicas: [[Int32]]) -> [Int32: Int] {
        replicas.reduce(into: [:]) { counts, nodes in if let leader = nodes.first { counts[leader, default: 0] += 1 } }
    }

    static func replicaCounts(_ replicas: [[Int32]]) -> [Int32: Int] {
        replicas.reduce(into: [:]) { counts, nodes in for node in nodes { counts[node, default: 0] += 1 } }
    }

    static func withSnapshotCRC(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.count >= 4 else { return bytes }
        var fixed = bytes
        fixed.setBigEndian(CRC32C.checksum(Array(bytes.dropLast(4))), at: bytes.count - 4)
        return fixed
    }

    static func randomBrokers(_ random: inout SeededRandom, count: Int) -> [Int32] {
        var ids: Set<Int32> = []
        while ids.count < count { ids.insert(Int32(random.int(0...1000))) }
        return Array(ids).sorted()
    }

    /// Text of up to `maxBytes` UTF-8 bytes, mixing ASCII with two-, three- and four-byte characters.
    static func randomText(_ random: inout SeededRandom, maxBytes: Int) -> String {
        let pool: [Character] = ["a", "Z", "0", ".", "-", "_", " ", "\u{0}", "é", "€", "日", "𝄞"]
        var text = ""
        let target = random.int(0...maxBytes)
        while true {
            let next = pool[random.int(0...pool.count - 1)]
            if text.utf8.count + String(next).utf8.count > target { return text }
            text.append(next)
        }
    }

    static func randomReplicas(_ random: inout SeededRandom) -> [[Int32]] {
        (0..<random.int(0...20)).map { _ in
            (0..<random.int(0...MetadataLimits.replicasPerPartitionMax)).map { _ in Int32(truncatingIfNeeded: random.next()) }
        }
    }

    static func randomConfigs(_ random: inout SeededRandom) -> [String: String] {
        var configs: [String: String] = [:]
        for _ in 0..<random.int(0...6) {
            configs[randomText(&random, maxBytes: MetadataLimits.configKeyBytesMax)] =
                randomText(&random, maxBytes: MetadataLimits.configValueBytesMax)
        }
        return configs
    }

    /// Any command within the format's limits (not necessarily one apply accepts).
    static func randomCommand(_ random: inout SeededRandom, kind: Int) -> MetadataCommand {
        let name = randomText(&random, maxBytes: MetadataLimits.topicNameBytesMax)
        switch kind {
        case 0:
            return .createTopic(name: name, replicas: randomReplicas(&random), configs: randomConfigs(&random), isInternal: random.chance(0.5))
        case 1:
            return .deleteTopic(name: name)
        case 2:
            let remove = Set((0..<random.int(0...5)).map { _ in randomText(&random, maxBytes: MetadataLimits.configKeyBytesMax) })
            return .alterTopicConfig(name: name, set: randomConfigs(&random), remove: remove.sorted(by: ClusterMetadata.precedes))
        case 3:
            return .createPartitions(name: name, newReplicas: randomReplicas(&random))
        case 5:
            let definition = (0..<random.int(0...300)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            return .putProcessor(name: randomText(&random, maxBytes: MetadataLimits.processorNameBytesMax), definition: definition,
                                 isNew: random.chance(0.5))
        case 6:
            return .deleteProcessor(name: randomText(&random, maxBytes: MetadataLimits.processorNameBytesMax))
        default:
            return .commitOffsets(group: randomText(&random, maxBytes: MetadataLimits.groupIdBytesMax),
                                  commitTimeMs: Int64(bitPattern: random.next()), offsets: randomOffsets(&random))
        }
    }

    /// Up to 20 offsets in canonical order without repeats, some with metadata.
    static func randomOffsets(_ random: inout SeededRandom) -> [CommittedOffset] {
        let topics = (0..<random.int(1...3)).map { _ in randomText(&random, maxBytes: 20) }
        let drawn = (0..<random.int(0...20)).map { _ in
            CommittedOffset(topic: topics[random.int(0...topics.count - 1)], partition: Int32(random.int(-2...5)),
                            offset: Int64(bitPattern: random.next()), metadata: random.chance(0.5) ? randomText(&random, maxBytes: 40) : nil)
        }
        var unique: [CommittedOffset] = []
        for entry in ClusterMetadata.sortedOffsets(drawn) where unique.last.map({ ClusterMetadata.offsetPrecedes($0, entry) }) ?? true {
            unique.append(entry)
        }
        return unique
    }

    /// A command over a few names, nodes and config values, so that some apply and some are rejected.
    static func randomApplyCommand(_ random: inout SeededRandom) -> MetadataCommand {
        let names = ["a", "b", "c", "d", "__internal"]
        let name = names[random.int(0...names.count - 1)]
        let values = ["cleanup.policy": ["delete", "compact", "bogus"], "retention.ms": ["-1", "1000", "x"], "segment.ms": ["5", "0"]]
        var set: [String: String] = [:]
        for (key, options) in values.sorted(by: { $0.key < $1.key }) where random.chance(0.3) {
            set[key] = options[random.int(0...options.count - 1)]
        }
        let factor = random.int(1...3)
        let replicas = (0..<random.int(1...4)).map { _ in
            random.chance(0.05) ? [1, 1] : Array([Int32(1), 2, 3, 4].shuffled(using: &random).prefix(factor))
        }
        switch random.int(0...11) {
        case 0...3: return .createTopic(name: name, replicas: replicas, configs: set, isInternal: name.hasPrefix("__"))
        case 4...5: return .deleteTopic(name: name)
        case 6...7: return .alterTopicConfig(name: name, set: set, remove: random.chance(0.5) ? ["retention.ms"] : [])
        case 8: return .createPartitions(name: name, newReplicas: replicas)
        case 9...10:
            let processor = ["p", "q", "bad name"][random.int(0...2)]
            let definition = random.chance(0.1) ? [0xFF, 0x00] : processorDefinition(processor, generation: Int32(random.int(0...3))).encodeValue()
            return .putProcessor(name: processor, definition: definition, isNew: random.chance(0.5))
        default: return .deleteProcessor(name: ["p", "q"][random.int(0...1)])
        }
    }

    /// A definition that decodes: what a controller stores for processor `name`.
    static func processorDefinition(_ name: String, generation: Int32 = 0, state: ProcessorDefinition.State = .running) -> ProcessorDefinition {
        ProcessorDefinition(name: name, sql: "INSERT INTO out SELECT a FROM src", state: state, generation: generation, producerId: 1 << 32,
                            createdMs: 1_700_000_000_000, startOffsets: [0, 5, 9])
    }

    @Test("processor definitions: create once, update and delete only existing ones, refuse bad names and bytes; snapshots keep them")
    func processorCommands() throws {
        var state = ClusterMetadata()
        let running = Self.processorDefinition("p").encodeValue()
        let paused = Self.processorDefinition("p", state: .paused).encodeValue()
        #expect(state.apply(.putProcessor(name: "p", definition: running, isNew: false), index: 1) == .rejected(.init(.unknownProcessor, "processor 'p' does not exist")))
        #expect(state.apply(.putProcessor(name: "p", definition: running, isNew: true), index: 2) == .applied)
        #expect(Self.code(state.apply(.putProcessor(name: "p", definition: paused, isNew: true), index: 3)) == .processorExists)
        #expect(state.processors["p"] == running)
        #expect(state.apply(.putProcessor(name: "p", definition: paused, isNew: false), index: 4) == .applied)
        #expect(state.processorDefinitions.map(\.state) == [.paused])
        #expect(Self.code(state.apply(.putProcessor(name: "q", definition: [1, 2, 3], isNew: true), index: 5)) == .invalidProcessor)
        #expect(Self.code(state.apply(.putProcessor(name: "no/slash", definition: running, isNew: true), index: 6)) == .invalidProcessor)
        #expect(Self.code(state.apply(.deleteProcessor(name: "q"), index: 7)) == .unknownProcessor)
        #expect(Self.code(state.apply(.putProcessor(name: "q", definition: running, isNew: true), index: 8)) == nil)
        #expect(state.processors.keys.sorted() == ["p", "q"])

        // The snapshot carries them (flag bit 0) and gives them back; without processors the flag is clear.
        let bytes = state.encodeSnapshot()
        #expect(bytes[7] == 1, "flags \(bytes[6]) \(bytes[7])")
        #expect(try ClusterMetadata.decodeSnapshot(bytes) == state)
        #expect(state.apply(.deleteProcessor(name: "p"), index: 9) == .applied)
        #expect(state.apply(.deleteProcessor(name: "q"), index: 10) == .applied)
        #expect(state.encodeSnapshot()[7] == 0)
        #expect(try ClusterMetadata.decodeSnapshot(state.encodeSnapshot()) == state)

        // A snapshot whose processor section breaks a rule of apply is refused even with a good CRC.
        var broken = ClusterMetadata(topics: [:], processors: ["p": [9, 9]], appliedIndex: 3).encodeSnapshot()
        broken = Self.withSnapshotCRC(broken)
        #expect(throws: MetadataFormatError.self) { try ClusterMetadata.decodeSnapshot(broken) }
        // An unknown flag bit is refused.
        var flagged = ClusterMetadata().encodeSnapshot()
        flagged[7] = 2
        #expect(throws: MetadataFormatError.self) { try ClusterMetadata.decodeSnapshot(Self.withSnapshotCRC(flagged)) }
    }

    static func randomState(_ random: inout SeededRandom, commands: Int) -> ClusterMetadata {
        var state = ClusterMetadata()
        for index in 1...commands { _ = state.apply(randomApplyCommand(&random), index: UInt64(index)) }
        return state
    }

    @Test("a name equal only by Unicode equivalence finds no topic (String equality is canonical)")
    func lookupsNeedLegalNames() {
        var state = ClusterMetadata()
        #expect(state.apply(.createTopic(name: "Kafka", replicas: [[1]], configs: [:], isInternal: false), index: 1) == .applied)
        let outcome = state.apply(.deleteTopic(name: "\u{212A}afka"), index: 2)
        #expect(outcome != .applied)
        #expect(state.topics["Kafka"] != nil)
    }
}
