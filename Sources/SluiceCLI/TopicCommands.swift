import ArgumentParser
import SluiceClient
import SluiceWire

struct TopicCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topic", abstract: "Create, list, describe, alter and delete topics.",
        subcommands: [Create.self, List.self, Describe.self, Alter.self, Delete.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a topic.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Topic name: letters, digits, '.', '_' and '-'.") var name: String
        @Option(name: [.short, .customLong("partitions")], help: "Number of partitions.") var partitions: Int32 = 1
        @Option(name: [.short, .customLong("replicas")], help: "Replication factor.") var replicas: Int16 = 1
        @Option(name: [.short, .customLong("config")], help: "Topic config key=value (repeatable), e.g. retention.ms=86400000.")
        var config: [String] = []

        func run() async throws {
            let configs = Dictionary(try parseKeyValues(config, flag: "-c"), uniquingKeysWith: { $1 })
            try await withClient(connection) { client in
                try await client.createTopic(name, partitions: partitions, replicationFactor: replicas, configs: configs)
            }
            print("created topic \(name) with \(partitions) partition\(partitions == 1 ? "" : "s")")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List topics.")
        @OptionGroup var connection: ConnectionOptions
        @Flag(name: .customLong("internal"), help: "Include internal topics (names starting with __).") var includeInternal = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let metadata = try await withClient(connection) { try await $0.metadata(topics: nil, includeInternal: includeInternal) }
            if json {
                print(JSON.array(metadata.topics.map { topic in
                    .object([("name", .string(topic.name)), ("partitions", .int(Int64(topic.partitions.count))),
                             ("internal", .bool(topic.isInternal)),
                             ("records", .int(topic.partitions.reduce(0) { $0 + $1.highWatermark - $1.logStartOffset })),
                             ("size_bytes", .int(topic.partitions.reduce(0) { $0 + $1.sizeBytes }))])
                }).render())
                return
            }
            guard !metadata.topics.isEmpty else { print("no topics; create one with: sluice topic create NAME -p 3"); return }
            print(table(["TOPIC", "PARTITIONS", "RECORDS", "SIZE"], metadata.topics.map { topic in
                [topic.name, "\(topic.partitions.count)", "\(topic.partitions.reduce(0) { $0 + $1.highWatermark - $1.logStartOffset })",
                 formatBytes(topic.partitions.reduce(0) { $0 + $1.sizeBytes })]
            }))
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a topic's partitions, offsets, sizes and configs.")
        @OptionGroup var connection: ConnectionOptions
        @Argument var name: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let topic = try await withClient(connection) { try await $0.describeTopic(name) }
            if json {
                print(JSON.object([
                    ("name", .string(topic.name)), ("internal", .bool(topic.isInternal)),
                    ("partitions", .array(topic.partitions.map { p in
                        .object([("partition", .int(Int64(p.partition))), ("leader", .int(Int64(p.leader))),
                                 ("replicas", .array(p.replicas.map { .int(Int64($0)) })),
                                 ("log_start_offset", .int(p.logStartOffset)), ("high_watermark", .int(p.highWatermark)),
                                 ("size_bytes", .int(p.sizeBytes))])
                    })),
                    ("configs", .object(topic.configs.map { ($0.key, .string($0.value ?? "")) })),
                ]).render())
                return
            }
            print("topic \(topic.name)\(topic.isInternal ? " (internal)" : ""): \(topic.partitions.count) partitions")
            print(table(["PARTITION", "LEADER", "START", "END", "RECORDS", "SIZE"], topic.partitions.map { p in
                ["\(p.partition)", "\(p.leader)", "\(p.logStartOffset)", "\(p.highWatermark)", "\(p.highWatermark - p.logStartOffset)", formatBytes(p.sizeBytes)]
            }))
            print("")
            print(table(["CONFIG", "VALUE", "SOURCE"], topic.configs.map { [$0.key, $0.value ?? "", $0.isDefault ? "default" : "topic"] }))
        }
    }

    struct Alter: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change topic configs (key=value; key= resets to the default).")
        @OptionGroup var connection: ConnectionOptions
        @Argument var name: String
        @Option(name: [.short, .customLong("config")], help: "key=value to set, or key= to reset (repeatable).") var config: [String] = []

        func run() async throws {
            guard !config.isEmpty else { throw ValidationError("give at least one -c key=value") }
            var changes: [String: String?] = [:]
            for (key, value) in try parseKeyValues(config, flag: "-c") { changes[key] = value.isEmpty ? nil : value }
            try await withClient(connection) { try await $0.alterTopic(name, configs: changes) }
            print("altered topic \(name): " + changes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value ?? "(default)")" }.joined(separator: ", "))
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a topic and all its records.")
        @OptionGroup var connection: ConnectionOptions
        @Argument var name: String

        func run() async throws {
            try await withClient(connection) { try await $0.deleteTopic(name) }
            print("deleted topic \(name)")
        }
    }
}

/// 1.5 MiB style sizes.
func formatBytes(_ bytes: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : NumberText.fixed(value, decimals: 1) + " " + units[unit]
}
