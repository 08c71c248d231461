import ArgumentParser
import Foundation
import NIOConcurrencyHelpers
import SluiceClient
import SluiceCore
import SluiceWire

struct ProduceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "produce",
        abstract: "Produce records read line by line from stdin or --file.",
        discussion: "Each line is one record. With -k DELIM the text before the first DELIM is the key.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Topic to produce to.") var topic: String
    @Option(name: .long, help: "Read records from this file instead of stdin.") var file: String?
    @Option(name: .customShort("k"), help: "Split each line into key and value at the first occurrence of this delimiter.") var keyDelimiter: String?
    @Option(name: .customShort("H"), help: "Header key=value added to every record (repeatable).") var header: [String] = []
    @Option(name: .short, help: "Produce to this partition (default: by key, or sticky for keyless records).") var partition: Int32?
    @Option(name: .long, help: "Acknowledgements: none, leader or all.") var acks: String = "all"
    @Option(name: .customShort("z"), help: "Compression: none, lz4 or zstd.") var compression: String = "none"
    @Option(name: .long, help: "Milliseconds a batch waits for more records.") var lingerMs: Int64 = 5
    @Option(name: .long, help: "Batch size in bytes before compression.") var batchBytes: Int = 256 * 1024

    func validate() throws {
        guard Acks(name: acks) != nil else { throw ValidationError("--acks must be none, leader or all, got '\(acks)'") }
        guard CompressionCodec(name: compression) != nil else { throw ValidationError("-z must be none, lz4 or zstd, got '\(compression)'") }
        if let keyDelimiter, keyDelimiter.isEmpty { throw ValidationError("-k needs a non-empty delimiter") }
        if let partition, partition < 0 { throw ValidationError("-p must be ≥ 0, got \(partition)") }
        guard lingerMs >= 0, batchBytes > 0 else { throw ValidationError("--linger-ms must be ≥ 0 and --batch-bytes > 0") }
    }

    func run() async throws {
        let headers = try parseKeyValues(header, flag: "-H").map { RecordHeader(key: $0.0, value: Array($0.1.utf8)) }
        var config = ProducerConfig()
        config.acks = Acks(name: acks) ?? .all
        config.codec = CompressionCodec(name: compression) ?? .none
        config.lingerMs = lingerMs
        config.batchBytes = batchBytes
        config.idempotent = config.acks != .none
        let input: LineReader
        do { input = try LineReader(path: file) } catch {
            throw ValidationError("cannot read \(file ?? "stdin"): \(error)")
        }
        let totalBytes = file.flatMap { try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int64 } ?? nil
        var progress = ProgressLine(total: totalBytes, isTerminal: file != nil && ProgressLine.isTerminal(fd: 2))
        let failures = NIOLockedValueBox<(count: Int, first: String?)>((0, nil))
        let delimiter = keyDelimiter.map { Array($0.utf8) }
        let started = MonotonicClock.nowNanoseconds()
        var records: Int64 = 0
        var bytes: Int64 = 0
        try await withClient(connection) { client in
            _ = try await client.topicMetadata(topic)
            let producer = Producer(client: client, config: config)
            // Lines go to the producer a thousand at a time: one actor call per chunk, not per record.
            var chunk: [ProducerRecord] = []
            chunk.reserveCapacity(Self.chunkRecords)
            let report: @Sendable (Int, Result<RecordMetadata, SluiceClientError>) -> Void = { _, result in
                if case .failure(let error) = result {
                    failures.withLockedValue { state in
                        state.count += 1
                        if state.first == nil { state.first = error.message }
                    }
                }
            }
            var more = true
            while more {
                if let line = input.next() {
                    let (key, value) = Self.split(line, delimiter)
                    records += 1
                    bytes += Int64(line.count + 1)
                    chunk.append(ProducerRecord(topic: topic, key: key, value: value, headers: headers, partition: partition))
                } else {
                    more = false
                }
                guard chunk.count >= Self.chunkRecords || (!more && !chunk.isEmpty) else { continue }
                try await producer.enqueue(contentsOf: chunk, completion: report)
                chunk.removeAll(keepingCapacity: true)
                if let text = progress.update(done: input.bytesRead, records: records, nowNanos: MonotonicClock.nowNanoseconds()) {
                    FileHandle.standardError.write(Data(text.utf8))
                }
                if failures.withLockedValue({ $0.count }) > 0 { break }
            }
            await producer.flush()
        }
        if let text = progress.finish(done: input.bytesRead, records: records, nowNanos: MonotonicClock.nowNanoseconds()) {
            FileHandle.standardError.write(Data(text.utf8))
        }
        let seconds = Double(MonotonicClock.nowNanoseconds() - started) / 1e9
        let (failed, first) = failures.withLockedValue { ($0.count, $0.first) }
        let summary = "produced \(NumberText.grouped(records - Int64(failed))) records (\(formatBytes(bytes))) to \(topic) in \(NumberText.fixed(seconds, decimals: 2)) s: \(NumberText.grouped(Int64(Double(records) / max(seconds, 1e-9)))) records/s, \(NumberText.fixed(Double(bytes) / max(seconds, 1e-9) / 1e6, decimals: 1)) MB/s"
        printError(summary)
        if failed > 0 {
            throw CLIFailure("the broker refused \(failed) record\(failed == 1 ? "" : "s"): \(first ?? "unknown error")")
        }
    }

    /// Records handed to the producer per call.
    static let chunkRecords = 1000

    static func split(_ line: [UInt8], _ delimiter: [UInt8]?) -> ([UInt8]?, [UInt8]) {
        guard let delimiter, let index = find(delimiter, in: line) else { return (nil, line) }
        return (Array(line[..<index]), Array(line[(index + delimiter.count)...]))
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        outer: for start in 0...(haystack.count - needle.count) {
            for offset in 0..<needle.count where haystack[start + offset] != needle[offset] { continue outer }
            return start
        }
        return nil
    }
}

/// A failure the CLI reports as one sentence and a non-zero exit.
struct CLIFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Reads lines (without the newline, and without a trailing '\r') from a file or stdin in large chunks.
final class LineReader {
    private let descriptor: Int32
    private var buffer: [UInt8] = []
    private var start = 0
    private var eof = false
    private(set) var bytesRead: Int64 = 0
    static let chunkBytes = 1 << 20
    /// Longest line accepted; longer lines are cut into pieces of this size.
    static let lineBytesMax = 16 << 20

    init(path: String?) throws {
        if let path {
            descriptor = open(path, O_RDONLY)
            guard descriptor >= 0 else { throw CLIFailure(String(cString: strerror(errno))) }
        } else {
            descriptor = 0
        }
    }

    deinit { if descriptor > 0 { close(descriptor) } }

    func next() -> [UInt8]? {
        while true {
            if let newline = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
                var end = newline
                if end > start && buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                let line = Array(buffer[start..<end])
                start = newline + 1
                return line
            }
            if buffer.count - start >= Self.lineBytesMax {
                let line = Array(buffer[start..<(start + Self.lineBytesMax)])
                start += Self.lineBytesMax
                return line
            }
            if eof {
                guard start < buffer.count else { return nil }
                let line = Array(buffer[start...])
                start = buffer.count
                return line
            }
            fill()
        }
    }

    private func fill() {
        if start > 0 {
            buffer.removeFirst(start)
            start = 0
        }
        let old = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: Self.chunkBytes))
        let count = buffer.withUnsafeMutableBytes { raw in read(descriptor, raw.baseAddress! + old, Self.chunkBytes) }
        if count <= 0 {
            eof = true
            buffer.removeLast(Self.chunkBytes)
        } else {
            buffer.removeLast(Self.chunkBytes - count)
            bytesRead += Int64(count)
        }
    }
}
