import ArgumentParser
import Foundation
import NIOConcurrencyHelpers
import SluiceClient
import SluiceCore
import SluiceWire

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure produce, consume and end-to-end throughput and latency.",
        subcommands: [Produce.self, Consume.self, EndToEnd.self])

    struct Options: ParsableArguments {
        @OptionGroup var connection: ConnectionOptions
        @Option(help: "Topic to use (created if missing).") var topic: String = "sluice-bench"
        @Option(help: "Records to send or read.") var count: Int64 = 1_000_000
        @Option(help: "Value size in bytes.") var size: Int = 100
        @Option(help: "Partitions when the topic is created.") var partitions: Int32 = 1
        @Option(name: [.short, .customLong("replicas")], help: "Replication factor when the topic is created (a cluster).") var replicas: Int16 = 1
        @Option(help: "Compression: none, lz4 or zstd.") var codec: String = "none"
        @Option(help: "Acknowledgements: none, leader or all.") var acks: String = "leader"
        @Option(help: "Target records per second (default: as fast as possible).") var rate: Double?
        @Option(help: "Producer batch size in bytes.") var batchBytes: Int = 256 * 1024
        @Option(help: "Producer linger in milliseconds.") var lingerMs: Int64 = 2
        @Flag(help: "Print one JSON object instead of text.") var json = false

        func validate() throws {
            guard count > 0 else { throw ValidationError("--count must be positive") }
            guard size >= 8 && size <= 16 << 20 else { throw ValidationError("--size must be 8 bytes ... 16 MiB") }
            guard partitions > 0 else { throw ValidationError("--partitions must be positive") }
            guard CompressionCodec(name: codec) != nil else { throw ValidationError("--codec must be none, lz4 or zstd") }
            guard Acks(name: acks) != nil else { throw ValidationError("--acks must be none, leader or all") }
            if let rate, rate <= 0 { throw ValidationError("--rate must be positive") }
        }

        var producerConfig: ProducerConfig {
            var config = ProducerConfig()
            config.acks = Acks(name: acks) ?? .leader
            config.codec = CompressionCodec(name: codec) ?? .none
            config.batchBytes = batchBytes
            config.lingerMs = lingerMs
            config.idempotent = config.acks != .none
            config.bufferedRecordsMax = 200_000
            return config
        }

        /// Values: printable pseudo-random bytes (seeded, so runs compare) that compress like text.
        func payload() -> [UInt8] {
            var state: UInt64 = 0x9E37_79B9_7F4A_7C15
            return (0..<size).map { _ in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return UInt8(ascii: "a") + UInt8((state >> 59) % 26)
            }
        }

        func ensureTopic(_ client: SluiceClient) async throws -> TopicMetadata {
            do { return try await client.topicMetadata(topic) } catch let error as SluiceClientError where error.code == .unknownTopicOrPartition {
                try await client.createTopic(topic, partitions: partitions, replicationFactor: replicas)
                return try await client.topicMetadata(topic)
            }
        }
    }

    /// Produces `count` records, pacing to `rate` when given; latency is send → acknowledgement.
    static func produce(_ options: Options, client: SluiceClient, stampTime: Bool, quiet: Bool) async throws -> BenchReport {
        let producer = Producer(client: client, config: options.producerConfig)
        let stats = NIOLockedValueBox(LatencyStats())
        let failures = NIOLockedValueBox<(Int, String?)>((0, nil))
        var value = options.payload()
        var progress = ProgressLine(total: nil, isTerminal: !quiet && ProgressLine.isTerminal(fd: 2))
        let start = MonotonicClock.nowNanoseconds()
        let interval = options.rate.map { 1e9 / $0 }
        // Records go to the producer in chunks (one actor call each); paced runs use chunks of about
        // a millisecond's worth so pacing stays fine-grained.
        let chunkMax = Int64(options.rate.map { max(1, min(1000, $0 / 1000)) } ?? 1000)
        var index: Int64 = 0
        while index < options.count {
            let chunk = min(chunkMax, options.count - index)
            if let interval {
                let due = start + UInt64(Double(index) * interval)
                let now = MonotonicClock.nowNanoseconds()
                if due > now + 200_000 { try await Task.sleep(nanoseconds: due - now) }
            }
            let sentAt = MonotonicClock.nowNanoseconds()
            if stampTime { value.withUnsafeMutableBytes { $0.storeBytes(of: sentAt.bigEndian, as: UInt64.self) } }
            let records = [ProducerRecord](repeating: ProducerRecord(topic: options.topic, value: value), count: Int(chunk))
            try await producer.enqueue(contentsOf: records) { _, result in
                switch result {
                case .success: stats.withLockedValue { $0.record(nanos: MonotonicClock.nowNanoseconds() - sentAt) }
                case .failure(let error): failures.withLockedValue { if $0.0 == 0 { $0.1 = error.message }; $0.0 += 1 }
                }
            }
            index += chunk
            if let text = progress.update(done: index * Int64(options.size), records: index, nowNanos: MonotonicClock.nowNanoseconds()) {
                FileHandle.standardError.write(Data(text.utf8))
            }
        }
        await producer.flush()
        let seconds = Double(MonotonicClock.nowNanoseconds() - start) / 1e9
        if let text = progress.finish(done: options.count * Int64(options.size), records: options.count, nowNanos: MonotonicClock.nowNanoseconds()) {
            FileHandle.standardError.write(Data(text.utf8))
        }
        let (failed, first) = failures.withLockedValue { $0 }
        if failed > 0 { throw CLIFailure("\(failed) records failed: \(first ?? "")") }
        return BenchReport(records: options.count, bytes: options.count * Int64(options.size), seconds: seconds,
                           latency: stats.withLockedValue { $0.percentiles() })
    }

    static func emit(_ report: BenchReport, _ options: Options, title: String) {
        if options.json { print(report.json()) } else {
            print(title)
            print(report.text())
        }
    }

    struct Produce: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Produce records as fast as possible (or at --rate).")
        @OptionGroup var options: Options

        func run() async throws {
            let report = try await withClient(options.connection) { client in
                _ = try await options.ensureTopic(client)
                return try await BenchCommand.produce(options, client: client, stampTime: false, quiet: options.json)
            }
            BenchCommand.emit(report, options, title: "produce \(options.count) × \(options.size) B to \(options.topic) (acks=\(options.acks), codec=\(options.codec)); latency = send → ack")
        }
    }

    struct Consume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Read --count records from the start of the topic (producing them first if missing).")
        @OptionGroup var options: Options

        func run() async throws {
            let report = try await withClient(options.connection) { client in
                let metadata = try await options.ensureTopic(client)
                let held = metadata.partitions.reduce(0) { $0 + $1.highWatermark - $1.logStartOffset }
                if held < options.count {
                    if !options.json { printError("topic holds \(held) records; producing \(options.count - held) first (not timed)") }
                    var fill = options
                    fill.count = options.count - held
                    fill.rate = nil
                    _ = try await BenchCommand.produce(fill, client: client, stampTime: false, quiet: true)
                }
                var config = ConsumerConfig()
                config.fetchMaxWaitMs = 100
                let consumer = Consumer(client: client, config: config)
                try await consumer.assign(Dictionary(uniqueKeysWithValues: metadata.partitions.map { (TopicPartitionKey(topic: options.topic, partition: $0.partition), .earliest) }))
                var stats = LatencyStats()
                var read: Int64 = 0
                var bytes: Int64 = 0
                var progress = ProgressLine(total: nil, isTerminal: !options.json && ProgressLine.isTerminal(fd: 2))
                let start = MonotonicClock.nowNanoseconds()
                while read < options.count {
                    let before = MonotonicClock.nowNanoseconds()
                    // Records are read in place (every CRC checked, every record walked and its value
                    // touched), as an application using FetchedRecords.forEach would.
                    let fetched = try await consumer.pollBatches()
                    var polled: Int64 = 0
                    let wanted = options.count - read
                    try fetched.forEach { _, record in
                        guard polled < wanted else { return }
                        polled += 1
                        bytes += Int64(record.value?.count ?? 0)
                    }
                    stats.record(nanos: MonotonicClock.nowNanoseconds() - before)
                    read += polled
                    if polled == 0, await consumer.reachedEnd { throw CLIFailure("the topic ended after \(read) records") }
                    if let text = progress.update(done: bytes, records: read, nowNanos: MonotonicClock.nowNanoseconds()) {
                        FileHandle.standardError.write(Data(text.utf8))
                    }
                }
                let seconds = Double(MonotonicClock.nowNanoseconds() - start) / 1e9
                if let text = progress.finish(done: bytes, records: read, nowNanos: MonotonicClock.nowNanoseconds()) { FileHandle.standardError.write(Data(text.utf8)) }
                return BenchReport(records: min(read, options.count), bytes: bytes, seconds: seconds, latency: stats.percentiles())
            }
            BenchCommand.emit(report, options, title: "consume \(options.count) records of \(options.topic) from the start; latency = one fetch round trip")
        }
    }

    struct EndToEnd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "e2e", abstract: "Produce and consume at once; latency = send → received by the consumer.")
        @OptionGroup var options: Options

        func run() async throws {
            let report = try await withClient(options.connection) { client in
                let metadata = try await options.ensureTopic(client)
                var config = ConsumerConfig()
                config.fetchMaxWaitMs = 100
                // The client fetches on a connection of its own, so produce answers never queue behind
                // the consumer's long polls (see ConnectionPurpose).
                return try await Self.measure(options, client: client, metadata: metadata, config: config)
            }
            BenchCommand.emit(report, options, title: "end to end \(options.count) × \(options.size) B through \(options.topic); latency = send → consumed")
        }

        static func measure(_ options: Options, client: SluiceClient, metadata: TopicMetadata,
                            config: ConsumerConfig) async throws -> BenchReport {
            let consumer = Consumer(client: client, config: config)
            try await consumer.assign(Dictionary(uniqueKeysWithValues: metadata.partitions.map { (TopicPartitionKey(topic: options.topic, partition: $0.partition), .latest) }))
            let start = MonotonicClock.nowNanoseconds()
            let count = options.count
            let reader = Task { () throws -> (LatencyStats, Int64, UInt64) in
                var stats = LatencyStats()
                var read: Int64 = 0
                var lastProgress = MonotonicClock.nowNanoseconds()
                while read < count {
                    let fetched = try await consumer.pollBatches()
                    let now = MonotonicClock.nowNanoseconds()
                    var polled = 0
                    try fetched.forEach { _, record in
                        polled += 1
                        guard let value = record.value, value.count >= 8 else { return }
                        let sent = UInt64(bigEndian: value.loadUnaligned(as: UInt64.self))
                        if sent >= start && sent <= now { stats.record(nanos: now - sent) }
                    }
                    read += Int64(polled)
                    if polled > 0 { lastProgress = now }
                    if now - lastProgress > 30_000_000_000 { throw CLIFailure("no records arrived for 30 s after \(read) of \(count)") }
                }
                return (stats, read, MonotonicClock.nowNanoseconds())
            }
            _ = try await BenchCommand.produce(options, client: client, stampTime: true, quiet: options.json)
            let (stats, read, end) = try await reader.value
            return BenchReport(records: read, bytes: read * Int64(options.size), seconds: Double(end - start) / 1e9, latency: stats.percentiles())
        }
    }
}
