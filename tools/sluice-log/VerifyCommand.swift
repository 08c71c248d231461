import ArgumentParser
import SluiceLog

/// `verify DIR`: checks a partition directory without modifying it. Exit status 0 when clean, 1 at
/// the first corruption (printed as `CORRUPT <file> at byte <position>: <reason>`), 2 when it could
/// not be checked (not a directory, I/O error).
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every batch, index and checkpoint of a partition directory, read-only.",
        discussion: """
            Exit status: 0 clean, 1 corruption found (the first one is printed as \
            `CORRUPT <file> at byte <position>: <reason>`), 2 the directory could not be checked.
            """
    )

    @Argument(help: "The partition directory.")
    var directory: String

    @Option(name: .customLong("synthetic-size"),
            help: "Also check that every record is the synthetic record `append --size BYTES` writes at its offset.")
    var syntheticValueBytes: Int?

    func run() throws {
        let partition: PartitionDirectory
        do {
            partition = try PartitionDirectory(directory)
        } catch {
            Console.warn("error: \(error)")
            throw ExitCode(2)
        }
        Console.line("verify \(directory): \(Format.plural(partition.segmentBases.count, "segment"))")
        do {
            let verifier = PartitionVerifier(directory: partition, syntheticValueBytes: syntheticValueBytes)
            let result = try verifier.run(onSegment: { Console.line("  " + Self.describe($0)) })
            Self.printResult(result)
        } catch let corruption as Corruption {
            Console.line(corruption.description)
            throw ExitCode(1)
        } catch {
            Console.warn("error: \(error)")
            throw ExitCode(2)
        }
    }

    /// One summary line for a segment.
    static func describe(_ s: SegmentSummary) -> String {
        let offsets = s.firstOffset.map { "offsets \($0)..\(s.nextOffset - 1)" } ?? "empty"
        let codecs = s.codecs.isEmpty ? "" : ", \(s.codecs.joined(separator: "+"))"
        return "\(SegmentFiles.baseName(s.base)).log  \(Format.count(s.logBytes)) bytes, \(Format.count(s.batches)) batches, "
            + "\(Format.count(s.records)) records, \(offsets)\(codecs); index \(s.offsetIndexEntries) entries, "
            + "timeindex \(s.timeIndexEntries) entries: ok"
    }

    /// Checkpoints, warnings and the closing line of a clean verification.
    static func printResult(_ result: VerifyResult) {
        for line in result.checkpoints { Console.line("  " + line + ": ok") }
        for warning in result.warnings { Console.line("  warning: " + warning) }
        let range: String
        if let start = result.logStartOffset, let end = result.logEndOffset {
            range = "offsets \(start)..<\(end)"
        } else {
            range = "no offsets"
        }
        Console.line("OK: \(Format.plural(result.segments.count, "segment")), \(Format.plural(result.records, "record")), \(range), "
            + "\(Format.plural(result.warnings.count, "warning")), no corruption found")
    }
}
