import ArgumentParser
import SluiceCore
import SluiceLog

/// `sluice-log`: inspection and benchmark tool for Sluice partition logs. One subcommand per file.
@main
struct SluiceLogTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice-log",
        abstract: "Write, inspect, verify and benchmark Sluice partition logs.",
        discussion: """
            A partition log is a directory of segments (<base offset>.log with .index and .timeindex) and \
            checkpoint files. `dump` and `verify` never modify it; `append` and `demo` open it through \
            PartitionLog, which recovers it first when the last shutdown was not clean.
            """,
        subcommands: [
            AppendCommand.self, DumpCommand.self, VerifyCommand.self, DemoCommand.self, BenchCommand.self,
        ]
    )
}

/// `--codec` values.
enum CodecOption: String, ExpressibleByArgument, CaseIterable {
    case none
    case lz4
    case zstd

    var codec: CompressionCodec {
        switch self {
        case .none: return .none
        case .lz4: return .lz4
        case .zstd: return .zstd
        }
    }
}

/// `--flush` values (`interval` takes its period from `--flush-interval-ms`).
enum FlushOption: String, ExpressibleByArgument, CaseIterable {
    case always
    case interval
    case os

    func policy(intervalMilliseconds: Int) -> FlushPolicy {
        switch self {
        case .always: return .always
        case .interval: return .interval(milliseconds: intervalMilliseconds)
        case .os: return .os
        }
    }
}

extension LogConfig {
    /// The configuration the tool writes with: no time-based roll or retention, because synthetic
    /// timestamps lie in 2023 and would make any age rule fire at once.
    static func tool(segmentBytes: Int?, flushPolicy: FlushPolicy) -> LogConfig {
        var config = LogConfig(segmentMilliseconds: nil, retentionMilliseconds: nil, flushPolicy: flushPolicy)
        if let segmentBytes { config.segmentBytes = segmentBytes }
        return config
    }
}
