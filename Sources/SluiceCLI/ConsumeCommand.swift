import ArgumentParser
import Dispatch
import Foundation
import NIOConcurrencyHelpers
import SluiceClient
import SluiceCore
import SluiceWire

struct ConsumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consume",
        abstract: "Print records of a topic.",
        discussion: """
            -o takes earliest, latest, an offset, -N (N records before the end of each partition) or @TIMESTAMP \
            (epoch milliseconds or ISO-8601). With -g the group's committed offsets win; -o applies to partitions \
            without one. -f takes a kcat-style format: %t topic, %p partition, %o offset, %k key, %s value, \
            %T timestamp, %h headers, %K/%S key/value length, \\n, \\t.
            """)

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Topic to consume.") var topic: String
    @Option(name: .shortAndLong, help: "Consume as a member of this group, committing positions.") var group: String?
    @Option(name: .short, parsing: .unconditional, help: "Where to start: earliest, latest, OFFSET, -N or @TIMESTAMP.") var offset: String = "earliest"
    @Option(name: .short, help: "Consume only this partition (repeatable; not with -g).") var partition: [Int32] = []
    @Option(name: .customShort("n"), help: "Exit after this many records.") var count: Int64?
    @Flag(name: .short, help: "Exit when the end of every partition is reached.") var exitAtEnd = false
    @Option(name: .short, help: "Output format (kcat style).") var format: String = "%s\\n"
    @Flag(help: "Print one JSON object per record.") var json = false
    @Flag(name: .customLong("from-connected-broker"),
          help: "Read every partition from the broker reached through --brokers (its own replica, committed records only) instead of from each partition's leader; for comparing replicas.")
    var fromConnectedBroker = false

    func validate() throws {
        if group != nil && !partition.isEmpty { throw ValidationError("-p cannot be combined with -g: the group assigns partitions") }
        if let count, count <= 0 { throw ValidationError("-n must be positive") }
        do { _ = try OffsetSpec(parsing: offset) } catch { throw ValidationError("-o: \(error)") }
        do { _ = try RecordFormat(parsing: format) } catch { throw ValidationError("-f: \(error)") }
    }

    func run() async throws {
        let spec = try OffsetSpec(parsing: offset)
        let formatter = try RecordFormat(parsing: format)
        let stop = StopSignal()
        var config = ConsumerConfig(groupId: group)
        config.start = spec.startPosition
        config.autoCommit = false  // commits what was printed, not what was fetched
        config.fetchFromConnectedBroker = fromConnectedBroker
        let out = OutputBuffer()
        try await withClient(connection) { client in
            let metadata = try await client.topicMetadata(topic)
            let consumer = Consumer(client: client, config: config)
            if group != nil {
                try await consumer.subscribe([topic])
            } else {
                let partitions = partition.isEmpty ? metadata.partitions.map(\.partition) : partition
                for p in partitions where !metadata.partitions.contains(where: { $0.partition == p }) {
                    throw CLIFailure("topic '\(topic)' has partitions 0...\(metadata.partitions.count - 1); partition \(p) does not exist")
                }
                try await consumer.assign(Dictionary(uniqueKeysWithValues: partitions.map { (TopicPartitionKey(topic: topic, partition: $0), spec.startPosition) }))
            }
            var printed: Int64 = 0
            var consumed: [TopicPartitionKey: Int64] = [:]
            var lastCommit = MonotonicClock.nowNanoseconds()
            var emptyPolls = 0
            loop: while !stop.stopped {
                let records = try await consumer.poll()
                for record in records {
                    out.withBytes { bytes in
                        let formatted = FormattedRecord(topic: record.topic, partition: record.partition, offset: record.offset,
                                                        timestamp: record.timestamp, key: record.key, value: record.value,
                                                        headers: record.headers.map { ($0.key, $0.value) })
                        if json {
                            RecordFormat.json(formatted, into: &bytes)
                            bytes.append(UInt8(ascii: "\n"))
                        } else {
                            formatter.render(formatted, into: &bytes)
                        }
                    }
                    consumed[TopicPartitionKey(topic: record.topic, partition: record.partition)] = record.offset + 1
                    printed += 1
                    if let count, printed >= count { break loop }
                }
                // Following a topic, each poll's records show at once.
                if !records.isEmpty && !exitAtEnd && count == nil { out.flush() }
                if group != nil && MonotonicClock.nowNanoseconds() - lastCommit > 5_000_000_000 {
                    out.flush()
                    try await Self.commit(consumer, &consumed)
                    lastCommit = MonotonicClock.nowNanoseconds()
                }
                if exitAtEnd {
                    if await consumer.reachedEnd { break }
                    // A group member with nothing assigned (more members than partitions) is at its end too.
                    let joined = await consumer.isJoined
                    let unassigned = await consumer.assignment.isEmpty
                    emptyPolls = records.isEmpty && joined && unassigned ? emptyPolls + 1 : 0
                    if emptyPolls >= 3 { break }
                }
            }
            out.flush()
            if group != nil { try await Self.commit(consumer, &consumed) }
            await consumer.close()
        }
    }

    private static func commit(_ consumer: Consumer, _ consumed: inout [TopicPartitionKey: Int64]) async throws {
        guard !consumed.isEmpty else { return }
        try await consumer.commit(consumed)
        consumed.removeAll()
    }
}

extension OffsetSpec {
    var startPosition: StartPosition {
        switch self {
        case .earliest: .earliest
        case .latest: .latest
        case .offset(let value): .offset(value)
        case .fromEnd(let count): .fromEnd(count)
        case .timestamp(let time): .timestamp(time)
        }
    }
}

/// Set by SIGINT/SIGTERM so loops can finish, commit and exit cleanly.
final class StopSignal: @unchecked Sendable {
    private let box = NIOLockedValueBox(false)
    private var sources: [any DispatchSourceSignal] = []

    init() {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { [box] in box.withLockedValue { $0 = true } }
            source.resume()
            sources.append(source)
        }
    }

    var stopped: Bool { box.withLockedValue { $0 } }
}
