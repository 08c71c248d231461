import ArgumentParser
import SluiceClient
import SluiceWire

struct GroupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "group", abstract: "List, describe and reset consumer groups.",
        subcommands: [List.self, Describe.self, Reset.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List consumer groups.")
        @OptionGroup var connection: ConnectionOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let groups = try await withClient(connection) { try await $0.listGroups() }
            if json {
                print(JSON.array(groups.map { .object([("group", .string($0.groupId)), ("state", .string($0.state)), ("members", .int(Int64($0.memberCount)))]) }).render())
                return
            }
            guard !groups.isEmpty else { print("no consumer groups"); return }
            print(table(["GROUP", "STATE", "MEMBERS"], groups.map { [$0.groupId, $0.state, "\($0.memberCount)"] }))
        }
    }

    struct PartitionLag {
        var key: TopicPartitionKey
        var committed: Int64
        var end: Int64
        var owner: String?
        var lag: Int64 { committed < 0 ? end : max(0, end - committed) }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a group's members, assignment, committed offsets and lag.")
        @OptionGroup var connection: ConnectionOptions
        @Argument var group: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let (description, lags) = try await withClient(connection) { client in
                let description = try await client.describeGroup(group)
                let committed = try await client.fetchOffsets(group: group)
                var owners: [TopicPartitionKey: String] = [:]
                for member in description.members {
                    for tp in member.assignment { for p in tp.partitions { owners[TopicPartitionKey(topic: tp.topic, partition: p)] = member.memberId } }
                }
                let keys = Set(committed.keys).union(owners.keys)
                var lags: [PartitionLag] = []
                for (topic, partitions) in Dictionary(grouping: keys, by: \.topic).sorted(by: { $0.key < $1.key }) {
                    let ends = (try? await client.listOffsets(topic: topic, partitions: partitions.map(\.partition), timestamp: ListOffsetsRequest.latestTimestamp)) ?? [:]
                    for key in partitions.sorted() {
                        lags.append(PartitionLag(key: key, committed: committed[key] ?? -1, end: ends[key.partition] ?? -1, owner: owners[key]))
                    }
                }
                return (description, lags)
            }
            if json {
                print(JSON.object([
                    ("group", .string(group)), ("state", .string(description.state)), ("epoch", .int(Int64(description.groupEpoch))),
                    ("assignor", .string(description.assignor)),
                    ("members", .array(description.members.map { m in
                        .object([("member_id", .string(m.memberId)), ("client_id", .string(m.clientId)), ("host", .string(m.clientHost)),
                                 ("epoch", .int(Int64(m.memberEpoch))), ("topics", .array(m.subscribedTopics.map { .string($0) })),
                                 ("assignment", .array(m.assignment.map { tp in .object([("topic", .string(tp.topic)), ("partitions", .array(tp.partitions.map { .int(Int64($0)) }))]) }))])
                    })),
                    ("partitions", .array(lags.map { l in
                        .object([("topic", .string(l.key.topic)), ("partition", .int(Int64(l.key.partition))),
                                 ("committed_offset", l.committed < 0 ? .null : .int(l.committed)), ("end_offset", .int(l.end)),
                                 ("lag", .int(l.lag)), ("member_id", l.owner.map { .string($0) } ?? .null)])
                    })),
                ]).render())
                return
            }
            print("group \(group): \(description.state), epoch \(description.groupEpoch), assignor \(description.assignor), \(description.members.count) member(s)")
            if !description.members.isEmpty {
                print(table(["MEMBER", "CLIENT", "HOST", "EPOCH", "ASSIGNMENT"], description.members.map { m in
                    [m.memberId, m.clientId, m.clientHost, "\(m.memberEpoch)",
                     m.assignment.map { "\($0.topic)[\($0.partitions.map(String.init).joined(separator: ","))]" }.joined(separator: " ")]
                }))
            }
            print("")
            print(table(["TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "MEMBER"], lags.map { l in
                [l.key.topic, "\(l.key.partition)", l.committed < 0 ? "-" : "\(l.committed)", "\(l.end)", "\(l.lag)", l.owner ?? "-"]
            }))
        }
    }

    struct Reset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move a group's committed offsets for a topic (prints the plan; --execute applies it).",
            discussion: "The group must have no active members: stop its consumers first.")
        @OptionGroup var connection: ConnectionOptions
        @Argument var group: String
        @Option(name: .long, help: "Topic whose offsets to reset.") var topic: String
        @Option(name: .long, parsing: .unconditional, help: "earliest, latest, OFFSET, -N or @TIMESTAMP.") var to: String
        @Flag(help: "Apply the plan (without it nothing changes).") var execute = false
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            do { _ = try OffsetSpec(parsing: to) } catch { throw ValidationError("--to: \(error)") }
        }

        func run() async throws {
            let spec = try OffsetSpec(parsing: to)
            let plan: [(TopicPartitionKey, Int64, Int64)] = try await withClient(connection) { client in
                let metadata = try await client.topicMetadata(topic)
                let partitions = metadata.partitions.map(\.partition)
                let committed = try await client.fetchOffsets(group: group, topics: [TopicPartitions(topic: topic, partitions: partitions)])
                let targets = try await Self.targets(client, topic: topic, partitions: metadata.partitions, spec: spec)
                let plan = partitions.map { p in
                    let key = TopicPartitionKey(topic: topic, partition: p)
                    return (key, committed[key] ?? -1, targets[p] ?? 0)
                }
                if execute {
                    try await client.commitOffsets(group: group, offsets: Dictionary(uniqueKeysWithValues: plan.map { ($0.0, $0.2) }))
                }
                return plan
            }
            if json {
                print(JSON.object([("group", .string(group)), ("executed", .bool(execute)), ("partitions", .array(plan.map { key, current, target in
                    .object([("topic", .string(key.topic)), ("partition", .int(Int64(key.partition))),
                             ("current_offset", current < 0 ? .null : .int(current)), ("new_offset", .int(target))])
                }))]).render())
                return
            }
            print(table(["TOPIC", "PARTITION", "CURRENT", "NEW"], plan.map { key, current, target in
                [key.topic, "\(key.partition)", current < 0 ? "-" : "\(current)", "\(target)"]
            }))
            print(execute ? "offsets of group \(group) reset" : "dry run: nothing changed; add --execute to apply")
        }

        static func targets(_ client: SluiceClient, topic: String, partitions: [PartitionMetadata], spec: OffsetSpec) async throws -> [Int32: Int64] {
            let ids = partitions.map(\.partition)
            switch spec {
            case .earliest: return try await client.listOffsets(topic: topic, partitions: ids, timestamp: ListOffsetsRequest.earliestTimestamp)
            case .latest: return try await client.listOffsets(topic: topic, partitions: ids, timestamp: ListOffsetsRequest.latestTimestamp)
            case .timestamp(let time): return try await client.listOffsets(topic: topic, partitions: ids, timestamp: time)
            case .offset(let offset):
                return Dictionary(uniqueKeysWithValues: partitions.map { ($0.partition, min(max(offset, $0.logStartOffset), $0.highWatermark)) })
            case .fromEnd(let count):
                return Dictionary(uniqueKeysWithValues: partitions.map { ($0.partition, max($0.logStartOffset, $0.highWatermark - count)) })
            }
        }
    }
}
