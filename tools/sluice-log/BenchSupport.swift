#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SluiceCore
import SluiceLog

/// A file driven with plain system calls: the baseline the log is measured against, so it must not go
/// through any of the log's own code.
final class RawFile {
    let path: String
    private let descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    deinit { _ = close(descriptor) }

    /// Creates (or empties) `path` for writing.
    static func create(_ path: String) throws -> RawFile {
        let fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ToolError.io("open", path, errno) }
        return RawFile(path: path, descriptor: fd)
    }

    /// Opens `path` for reading.
    static func openForReading(_ path: String) throws -> RawFile {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ToolError.io("open", path, errno) }
        return RawFile(path: path, descriptor: fd)
    }

    /// `pwrite` until all of `bytes` is written.
    func write(_ bytes: UnsafeRawBufferPointer, at position: Int) throws {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let n = pwrite(descriptor, base + done, bytes.count - done, off_t(position + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ToolError.io("pwrite", path, errno) }
            done += n
        }
    }

    /// `pread` into `buffer` from `position`; returns the bytes read (fewer at the end of the file).
    func read(into buffer: UnsafeMutableRawBufferPointer, at position: Int) throws -> Int {
        guard let base = buffer.baseAddress else { return 0 }
        var done = 0
        while done < buffer.count {
            let n = pread(descriptor, base + done, buffer.count - done, off_t(position + done))
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw ToolError.io("pread", path, errno) }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// `fdatasync` (`fsync` where there is none).
    func sync() throws {
        #if os(Linux)
        let status = fdatasync(descriptor)
        #else
        let status = fsync(descriptor)
        #endif
        guard status == 0 else { throw ToolError.io("fdatasync", path, errno) }
    }
}

/// A scratch directory for the benchmark, made with `mkdtemp` inside a parent and removed with
/// everything in it at the end (only what the benchmark created: it never removes the parent).
struct BenchDirectory {
    let path: String

    init(parent: String) throws {
        try FileSystem.createDirectory(parent)
        var template = Array("\(parent)/sluice-bench-XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { buffer -> String? in
            guard let base = buffer.baseAddress, mkdtemp(base) != nil else { return nil }
            return String(cString: base)
        }
        guard let created else { throw ToolError.io("mkdtemp", parent, errno) }
        path = created
    }

    /// A fresh, empty path inside the scratch directory.
    func child(_ name: String) -> String { "\(path)/\(name)" }

    /// Removes `path` and everything under it.
    static func removeTree(_ path: String) throws {
        guard FileSystem.exists(path) else { return }
        if FileSystem.isDirectory(path) {
            for name in try FileSystem.list(path) { try removeTree("\(path)/\(name)") }
            guard rmdir(path) == 0 else { throw ToolError.io("rmdir", path, errno) }
        } else {
            try FileSystem.remove(path)
        }
    }

    func remove() throws { try Self.removeTree(path) }
}

/// The best (shortest) of repeated timings, in nanoseconds.
struct BestTime {
    private(set) var nanoseconds = UInt64.max

    mutating func record(_ value: UInt64) { nanoseconds = min(nanoseconds, value) }

    /// Runs `body` and records how long it took.
    mutating func measure(_ body: () throws -> Void) rethrows {
        let started = MonotonicClock.nowNanoseconds()
        try body()
        record(MonotonicClock.nowNanoseconds() - started)
    }
}

/// One line of the results table.
struct BenchRow {
    let name: String
    let sluice: String
    let baseline: String
    /// Sluice over baseline; nil for absolute targets.
    let ratio: Double?
    let target: String
    let pass: Bool

    /// A row comparing two rates against a minimum ratio.
    static func ratio(_ name: String, sluice: Double, baseline: Double, unit: BenchUnit, baselineName: String,
                      minimum: Double) -> BenchRow {
        let ratio = sluice / baseline
        return BenchRow(name: name, sluice: unit.format(sluice), baseline: "\(unit.format(baseline)) \(baselineName)",
                        ratio: ratio, target: "≥ \(Format.fixed(minimum, 2))", pass: ratio >= minimum)
    }

    /// A row holding a rate against an absolute minimum.
    static func absolute(_ name: String, sluice: Double, unit: BenchUnit, minimum: Double) -> BenchRow {
        BenchRow(name: name, sluice: unit.format(sluice), baseline: "—", ratio: nil,
                 target: "≥ \(unit.format(minimum))", pass: sluice >= minimum)
    }

    /// Prints rows as an aligned table.
    static func printTable(_ rows: [BenchRow]) {
        let header = ["scenario", "sluice", "baseline", "ratio", "target", "result"]
        // Ratios are cut, not rounded, to two decimals: 0.796 must not print as a passing 0.80.
        let cells = rows.map { row in
            [row.name, row.sluice, row.baseline, row.ratio.map { Format.fixed(($0 * 100).rounded(.down) / 100, 2) } ?? "—",
             row.target, row.pass ? "PASS" : "MISS"]
        }
        let widths = header.indices.map { column in ([header] + cells).map { $0[column].count }.max() ?? 0 }
        for row in [header] + cells {
            Console.line(row.indices.map { Format.pad(row[$0], widths[$0]) }.joined(separator: "  "))
        }
    }
}

/// Units of the figures the benchmark prints.
enum BenchUnit {
    case megabytesPerSecond
    case recordsPerSecond

    func format(_ value: Double) -> String {
        switch self {
        case .megabytesPerSecond: return "\(Format.fixed(value / 1e6, 1)) MB/s"
        case .recordsPerSecond: return "\(Format.fixed(value / 1e6, 2)) M rec/s"
        }
    }
}
