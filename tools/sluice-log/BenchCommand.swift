#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import SluiceCompression
import SluiceCore
import SluiceLog

/// `bench [--dir DIR] [--quick]`: the log against the machine's own baselines, measured in the same run
/// (durable appends vs pwrite+fdatasync, compressed appends vs the codec libraries, small-record append
/// rate, sequential reads vs pread). Prints a table of figures, ratios, targets and PASS/MISS.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark the log against raw disk I/O and the codec libraries (ratios measured in the same run).",
        discussion: """
            Build with -c release. Data goes to a scratch directory inside --dir (default /tmp), removed at the end; \
            point --dir at the disk you care about. The exit status is 0 even when a target is missed: this is a \
            measurement, not a test.
            """
    )

    @Option(help: "Parent directory for the scratch data (default $TMPDIR or /tmp).")
    var dir: String?

    @Flag(help: "Much smaller sizes and one repetition: a smoke run of a few seconds.")
    var quick = false

    @Option(name: .customLong("only"), parsing: .upToNextOption,
            help: "Run only these scenarios (a b c d), e.g. to profile one.")
    var scenarios: [Scenario] = Scenario.allCases

    /// The scenarios, named as in the table.
    enum Scenario: String, ExpressibleByArgument, CaseIterable {
        case a, b, c, d
    }

    func run() throws {
        let sizes = quick ? BenchSizes.quick : BenchSizes.full
        let scratch = try BenchDirectory(parent: dir ?? Self.temporaryDirectory())
        Console.line("sluice-log bench\(quick ? " --quick" : ""): data in \(scratch.path), CRC-32C "
            + "\(CRC32C.hardwareAvailable ? "hardware" : "portable"), timings are the best of repeated runs")
        let started = MonotonicClock.nowNanoseconds()
        do {
            let rows = try Self.runScenarios(Set(scenarios), sizes, scratch)
            try scratch.remove()
            Console.line()
            BenchRow.printTable(rows)
            Console.line()
            let elapsed = MonotonicClock.nowNanoseconds() - started
            Console.line("\(rows.filter(\.pass).count) of \(rows.count) targets met in \(Format.seconds(elapsed))")
        } catch {
            try? scratch.remove()
            throw error
        }
    }

    private static func runScenarios(_ selected: Set<Scenario>, _ sizes: BenchSizes, _ scratch: BenchDirectory) throws -> [BenchRow] {
        var rows: [BenchRow] = []
        if selected.contains(.a) {
            rows += try DurableAppendScenario(directory: scratch, totalBytes: sizes.appendBytes, repetitions: sizes.repetitions).run()
        }
        if selected.contains(.b) {
            for codec in [CompressionCodec.lz4, .zstd] {
                rows += try CompressedAppendScenario(directory: scratch, codec: codec, records: sizes.compressedRecords,
                                                     repetitions: sizes.repetitions).run()
            }
        }
        if selected.contains(.c) {
            rows += try SmallRecordScenario(directory: scratch, records: sizes.smallRecords, repetitions: sizes.repetitions).run()
        }
        if selected.contains(.d) {
            rows += try SequentialReadScenario(directory: scratch, totalBytes: sizes.readBytes, passes: sizes.readPasses).run()
        }
        return rows
    }

    private static func temporaryDirectory() -> String {
        if let value = getenv("TMPDIR").map({ String(cString: $0) }), !value.isEmpty { return value }
        return "/tmp"
    }
}
