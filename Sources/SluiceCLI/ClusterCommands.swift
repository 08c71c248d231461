import ArgumentParser
import SluiceClient
import SluiceWire

/// `sluice cluster …`: the state of a cluster of brokers.
struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Show the state of a cluster of brokers.",
        subcommands: [Status.self])

    /// `sluice cluster status`: brokers up or down, and per partition its leader, term and replicas' lag.
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show which brokers are up, the controller, and per partition its leader, term, high watermark and each replica's lag.",
            discussion: "Asks every broker of the cluster: a broker that does not answer is shown down; a replica's lag comes from its partition's leader.")
        @OptionGroup var connection: ConnectionOptions
        @Flag(name: .customLong("internal"), help: "Include internal topics and the metadata group (__cluster_metadata).")
        var includeInternal = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let status = try await withClient(connection) { try await $0.describeClusterFromEveryBroker(includeInternal: includeInternal) }
            if json {
                print(ClusterStatusFormat.json(status).render())
                return
            }
            print(ClusterStatusFormat.text(status))
            if let message = status.errorMessage { printError("note: \(message)") }
        }
    }
}

/// The pure formatting of `sluice cluster status`, tested without a broker.
enum ClusterStatusFormat {
    /// The brokers table, a blank line, then the partitions table (or a line saying there are none).
    static func text(_ status: DescribeClusterResponse) -> String {
        let brokers = table(["ID", "ADDRESS", "STATE", "CONTROLLER"], status.brokers.map { broker in
            ["\(broker.nodeId)", "\(broker.host):\(broker.port)", broker.isUp ? "up" : "down",
             broker.nodeId == status.controllerId ? "yes" : ""]
        })
        let up = Set(status.brokers.filter(\.isUp).map(\.nodeId))
        let partitions = status.partitions.isEmpty
            ? "no partitions; create a topic with: sluice topic create NAME -p 3 -r 3"
            : table(["TOPIC", "PARTITION", "LEADER", "TERM", "HW", "REPLICAS", "LAG"], status.partitions.map { partition in
                [partition.topic, "\(partition.partition)", partition.leader >= 0 ? "\(partition.leader)" : "none",
                 "\(partition.term)", "\(partition.highWatermark)", partition.replicas.map { "\($0.nodeId)" }.joined(separator: ","),
                 partition.replicas.map { "\($0.nodeId):\(replicaState($0, up: up))" }.joined(separator: " ")]
            })
        return trimmingTrailingBlanks(brokers + "\n\n" + partitions)
    }

    /// One replica's lag as shown: the number of offsets behind the leader; `down` when its broker did
    /// not answer or the leader has not heard from it within an election timeout (it does not count
    /// towards `acks=all`); `?` when no leader reported it (the leader is down or being elected).
    static func replicaState(_ replica: DescribeClusterResponse.Replica, up: Set<Int32>) -> String {
        if !up.contains(replica.nodeId) { return "down" }
        if replica.lag < 0 { return "?" }
        return replica.inSync ? "\(replica.lag)" : "down"
    }

    /// Every field of the status, with snake_case names as in protocol.md; `message` is null when every
    /// broker answered.
    static func json(_ status: DescribeClusterResponse) -> JSON {
        .object([
            ("controller", .int(Int64(status.controllerId))),
            ("brokers", .array(status.brokers.map { broker in
                .object([("id", .int(Int64(broker.nodeId))), ("host", .string(broker.host)), ("port", .int(Int64(broker.port))),
                         ("up", .bool(broker.isUp)), ("controller", .bool(broker.nodeId == status.controllerId))])
            })),
            ("partitions", .array(status.partitions.map { partition in
                .object([("topic", .string(partition.topic)), ("partition", .int(Int64(partition.partition))),
                         ("leader", .int(Int64(partition.leader))), ("term", .int(partition.term)),
                         ("high_watermark", .int(partition.highWatermark)),
                         ("replicas", .array(partition.replicas.map { replica in
                             .object([("id", .int(Int64(replica.nodeId))), ("log_end_offset", .int(replica.logEndOffset)),
                                      ("lag", .int(replica.lag)), ("in_sync", .bool(replica.inSync))])
                         }))])
            })),
            ("message", status.errorMessage.map { .string($0) } ?? .null),
        ])
    }

    /// `table` pads every column but the last, so an empty last cell leaves blanks at a line's end.
    private static func trimmingTrailingBlanks(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            var trimmed = line
            while trimmed.last == " " { trimmed = trimmed.dropLast() }
            return String(trimmed)
        }.joined(separator: "\n")
    }
}
