import ArgumentParser
import Foundation
import SluiceClient
import SluiceWire

/// `sluice`: produce, consume, administer topics and groups, and benchmark a Sluice broker.
public struct SluiceCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "Produce, consume and administer a Sluice broker.",
        discussion: "Connects to --brokers (or SLUICE_BROKERS), default 127.0.0.1:9400.",
        subcommands: [TopicCommand.self, ProduceCommand.self, ConsumeCommand.self, GroupCommand.self, ProcessorCommand.self, ClusterCommand.self,
                      BenchCommand.self])

    public init() {}
}

/// Where the brokers are; shared by every command.
struct ConnectionOptions: ParsableArguments {
    @Option(name: [.customShort("b"), .long], help: "Bootstrap brokers, host:port[,host:port] (default: $SLUICE_BROKERS or 127.0.0.1:9400).")
    var brokers: String?

    @Option(name: .long, help: "Client id the broker logs and shows in group descriptions.")
    var clientId: String = "sluice-cli"

    @Option(name: .long, help: "How long to wait for any answer from the broker, in milliseconds.")
    var requestTimeoutMs: Int64 = 30_000

    /// The brokers to use, from the flag, then the environment, then the default.
    func addresses() throws -> [BrokerAddress] {
        let text = brokers ?? ProcessInfo.processInfo.environment["SLUICE_BROKERS"] ?? "127.0.0.1:9400"
        do { return try BrokerAddress.parseList(text) } catch let error as SluiceClientError {
            throw ValidationError(error.message)
        }
    }

    func client() throws -> SluiceClient {
        guard requestTimeoutMs > 0 else { throw ValidationError("--request-timeout-ms must be positive") }
        return SluiceClient(brokers: try addresses(), clientId: clientId, requestTimeoutMs: requestTimeoutMs)
    }
}

/// Runs `body` with a client and always closes it; client errors become readable failures.
func withClient<T>(_ options: ConnectionOptions, _ body: (SluiceClient) async throws -> T) async throws -> T {
    let client = try options.client()
    do {
        let result = try await body(client)
        await client.close()
        return result
    } catch {
        await client.close()
        throw error
    }
}

/// Buffered writes to stdout (records are printed by the hundred thousand).
final class OutputBuffer {
    private var bytes: [UInt8] = []
    static let flushBytes = 64 * 1024

    init() { bytes.reserveCapacity(Self.flushBytes * 2) }

    func append(_ text: String) { bytes.append(contentsOf: text.utf8) }
    func append(_ data: [UInt8]) { bytes.append(contentsOf: data) }

    /// Hands `body` the buffer to append to in place.
    func withBytes(_ body: (inout [UInt8]) -> Void) {
        body(&bytes)
        if bytes.count >= Self.flushBytes { flush() }
    }

    func flush() {
        guard !bytes.isEmpty else { return }
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(1, raw.baseAddress! + offset, raw.count - offset)
                if written <= 0 { break }
                offset += written
            }
        }
        bytes.removeAll(keepingCapacity: true)
    }
}

/// Prints to stderr.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// A small JSON value for listing output (records use the faster `RecordFormat.json`).
indirect enum JSON {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)
    case null
    case array([JSON])
    case object([(String, JSON)])

    func render() -> String {
        var out: [UInt8] = []
        render(into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    func render(into out: inout [UInt8]) {
        switch self {
        case .string(let text): JSONBytes.appendString(text, to: &out)
        case .int(let value): out.append(contentsOf: String(value).utf8)
        case .double(let value): out.append(contentsOf: (value.isFinite ? String(value) : "null").utf8)
        case .bool(let value): out.append(contentsOf: (value ? "true" : "false").utf8)
        case .null: out.append(contentsOf: "null".utf8)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                item.render(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let fields):
            out.append(UInt8(ascii: "{"))
            for (index, (key, value)) in fields.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                JSONBytes.appendString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                value.render(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }
}

/// Left-aligned text columns.
func table(_ header: [String], _ rows: [[String]]) -> String {
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { $0.indices.contains(column) ? $0[column].count : 0 }.max() ?? 0 }
    return all.map { row in
        row.enumerated().map { index, cell in
            index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }.joined(separator: "\n")
}

/// Parses repeated `key=value` options.
func parseKeyValues(_ items: [String], flag: String) throws -> [(String, String)] {
    try items.map { item in
        guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
            throw ValidationError("\(flag) takes key=value, got '\(item)'")
        }
        return (String(item[..<equals]), String(item[item.index(after: equals)...]))
    }
}

extension SluiceCommand {
    /// Moves `-b`/`--brokers` (with its value) given before the subcommand to after it, where the
    /// subcommands' `ConnectionOptions` parse it: `sluice -b host:9400 topic list` works as in kcat.
    public static func movingConnectionOptions(_ arguments: [String]) -> [String] {
        var leading: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "-b" || argument == "--brokers", index + 1 < arguments.count {
                leading += [argument, arguments[index + 1]]
                index += 2
            } else if argument.hasPrefix("--brokers=") {
                leading.append(argument)
                index += 1
            } else {
                break
            }
        }
        return Array(arguments[index...]) + leading
    }
}
