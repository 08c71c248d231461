import Logging
import SluiceCore

/// What opening a log found and repaired; also written to the logger.
public struct RecoveryReport: Sendable {
    /// A cut made at the first invalid batch of a segment.
    public struct Truncation: Sendable, Hashable, CustomStringConvertible {
        public var file: String
        public var position: Int
        public var reason: BatchFormatError
        public var bytesRemoved: Int

        public var description: String {
            "\(file): truncated at byte \(position) (\(bytesRemoved) bytes removed): \(reason)"
        }
    }

    /// The clean-shutdown marker was present, so no batch was scanned.
    public var cleanShutdown = false
    /// Bytes of `.log` files validated batch by batch.
    public var scannedBytes = 0
    /// Segments that were scanned.
    public var scannedSegments: [Int64] = []
    public var truncations: [Truncation] = []
    /// Segments removed because they followed a truncation (`.log` paths).
    public var removedSegments: [String] = []
    /// Index files rebuilt from the log, with the reason.
    public var rebuiltIndexes: [String] = []
    /// Leftovers of interrupted operations that were cleaned up (`.tmp`, `.cleaned`, `.deleted`, orphans).
    public var removedFiles: [String] = []
    /// Compaction swaps completed at open.
    public var completedSwaps: [String] = []
    /// Checkpoint files that were missing or unreadable, and what was done instead.
    public var checkpointProblems: [String] = []
}

/// The state `PartitionLog.init` starts from.
struct LoadedLog {
    var segments: [LogSegment]
    var logStartOffset: Int64
    var logEndOffset: Int64
    var recoveryPoint: Checkpoints.RecoveryPoint
    var report: RecoveryReport
}

extension PartitionLog {
    /// Opens (creating when missing) the partition log in `directory`, recovering it when the last
    /// shutdown was not clean: only segments from the recovery point on are scanned; each batch is
    /// validated and a torn or corrupt tail is cut off and reported; indexes are rebuilt where missing or
    /// inconsistent. See `recoveryReport` for what was found.
    public static func open(
        directory: String,
        config: LogConfig = LogConfig(),
        clock: any WallClock = SystemWallClock(),
        logger: Logger = Logger(label: "sluice.log")
    ) throws -> PartitionLog {
        try config.validate()
        try FileSystem.createDirectory(directory)
        var loader = LogLoader(directory: directory, config: config, now: clock.nowMilliseconds(), logger: logger)
        let loaded = try loader.load()
        return PartitionLog(directory: directory, config: config, clock: clock, logger: logger, loaded: loaded)
    }
}

/// Recovery at open. Owns the directory exclusively until the log is constructed.
struct LogLoader {
    let directory: String
    let config: LogConfig
    let now: Int64
    let logger: Logger
    var report = RecoveryReport()

    init(directory: String, config: LogConfig, now: Int64, logger: Logger) {
        self.directory = directory
        self.config = config
        self.now = now
        self.logger = logger
    }

    mutating func load() throws -> LoadedLog {
        try removeLeftovers()
        try completeSwaps()
        let clean = FileSystem.exists("\(directory)/\(Checkpoints.cleanShutdownFile)")
        if clean {
            // Remove the marker before any write, so a crash from now on is not mistaken for a clean stop.
            try FileSystem.remove("\(directory)/\(Checkpoints.cleanShutdownFile)")
            try FileSystem.syncDirectory(directory)
        }
        let storedStart = checkpointValue(Checkpoints.readLogStartOffset(directory), name: Checkpoints.logStartOffsetFile)
        let storedPoint = checkpointValue(Checkpoints.readRecoveryPoint(directory), name: Checkpoints.recoveryPointFile)

        var bases = try segmentBases()
        if bases.isEmpty {
            let base = storedStart ?? 0
            let segment = try LogSegment.create(directory: directory, baseOffset: base, config: config, now: now)
            let point = Checkpoints.RecoveryPoint(offset: base, segmentBaseOffset: base, position: 0)
            try Checkpoints.write(point, directory: directory)
            try Checkpoints.write(logStartOffset: base, directory: directory)
            return LoadedLog(segments: [segment], logStartOffset: base, logEndOffset: base, recoveryPoint: point, report: report)
        }
        bases = try dropSegmentsBelow(storedStart, bases)
        var segments: [LogSegment] = []
        for (i, base) in bases.enumerated() {
            segments.append(try LogSegment.open(directory: directory, baseOffset: base, config: config, now: now,
                                                sealed: i < bases.count - 1))
        }
        report.cleanShutdown = clean && storedPoint != nil
        if report.cleanShutdown, let active = segments.last {
            try noteRebuild(active, try active.recover(trustedBelow: Int.max))
        } else {
            segments = try recover(segments, from: storedPoint)
        }
        guard let active = segments.last else { preconditionFailure("recovery keeps at least one segment") }
        let logEnd = try active.nextOffset()
        let logStart = min(max(storedStart ?? 0, segments[0].baseOffset), logEnd)
        let point = Checkpoints.RecoveryPoint(offset: logEnd, segmentBaseOffset: active.baseOffset, position: Int64(active.size))
        try Checkpoints.write(point, directory: directory)
        if storedStart != logStart { try Checkpoints.write(logStartOffset: logStart, directory: directory) }
        log()
        return LoadedLog(segments: segments, logStartOffset: logStart, logEndOffset: logEnd, recoveryPoint: point, report: report)
    }

    /// Scans from the recovery point (or from the first segment when there is no usable one), cutting
    /// the first invalid batch and everything after it.
    private mutating func recover(_ segments: [LogSegment], from point: Checkpoints.RecoveryPoint?) throws -> [LogSegment] {
        var startIndex = 0
        var trustedBelow = 0
        if let point {
            if let i = segments.firstIndex(where: { $0.baseOffset == point.segmentBaseOffset }),
               Int64(segments[i].size) >= point.position {
                startIndex = i
                trustedBelow = Int(point.position)
            } else {
                report.checkpointProblems.append(
                    "\(Checkpoints.recoveryPointFile) names segment \(point.segmentBaseOffset) at byte \(point.position), "
                        + "which does not exist: scanning every segment")
            }
        }
        for i in startIndex..<segments.count {
            let segment = segments[i]
            let result = try segment.recover(trustedBelow: i == startIndex ? trustedBelow : 0)
            report.scannedSegments.append(segment.baseOffset)
            report.scannedBytes += result.scannedBytes
            try noteRebuild(segment, result)
            if let invalid = result.invalid {
                report.truncations.append(RecoveryReport.Truncation(
                    file: segment.path, position: invalid.position, reason: invalid.reason,
                    bytesRemoved: result.bytesRemoved))
                // Nothing after the first invalid batch can be trusted to continue the log.
                for later in segments[(i + 1)...] {
                    try remove(later)
                    report.removedSegments.append(later.path)
                }
                var kept = Array(segments[...i])
                if segment.size == 0 && kept.count > 1 {
                    try remove(segment)
                    report.removedSegments.append(segment.path)
                    kept.removeLast()
                }
                kept[kept.count - 1].unseal()
                return kept
            }
        }
        return segments
    }

    private mutating func noteRebuild(_ segment: LogSegment, _ result: LogSegment.LoadResult) throws {
        if let reason = result.rebuiltReason {
            report.rebuiltIndexes.append("\(SegmentFiles.path(directory, segment.baseOffset, .index)): \(reason)")
        }
    }

    private mutating func checkpointValue<T>(_ result: Checkpoints.ReadResult<T>, name: String) -> T? {
        switch result {
        case .valid(let value): return value
        case .missing:
            if let bases = try? segmentBases(), !bases.isEmpty {
                report.checkpointProblems.append("\(name) is missing")
            }
            return nil
        case .invalid(let problem):
            report.checkpointProblems.append("\(name) is unreadable (\(problem)); using the safe default")
            return nil
        }
    }

    /// Base offsets of the `.log` files, ascending.
    private func segmentBases() throws -> [Int64] {
        try FileSystem.list(directory).compactMap { name -> Int64? in
            guard let parsed = SegmentFiles.parse(name), parsed.kind == .log, parsed.suffix == nil else { return nil }
            return parsed.baseOffset
        }.sorted()
    }

    /// Deletes segments wholly below the stored log start offset (a retention pass that crashed after
    /// moving the log start but before unlinking).
    private mutating func dropSegmentsBelow(_ logStart: Int64?, _ bases: [Int64]) throws -> [Int64] {
        guard let logStart else { return bases }
        var bases = bases
        while bases.count > 1 && bases[1] <= logStart {
            try removeFiles(of: bases[0], suffix: nil)
            report.removedSegments.append(SegmentFiles.path(directory, bases[0], .log))
            bases.removeFirst()
        }
        return bases
    }

    /// Removes `.tmp`, `.cleaned` and `.deleted` files, and index files without a `.log`.
    private mutating func removeLeftovers() throws {
        let names = try FileSystem.list(directory)
        let logs = Set(names.compactMap { name -> Int64? in
            guard let p = SegmentFiles.parse(name), p.kind == .log, p.suffix != .cleaned, p.suffix != .deleted else { return nil }
            return p.baseOffset
        })
        for name in names {
            let path = "\(directory)/\(name)"
            if name.hasSuffix(".tmp") {
                try FileSystem.remove(path)
                report.removedFiles.append(path)
                continue
            }
            guard let parsed = SegmentFiles.parse(name) else { continue }
            let orphanIndex = parsed.kind != .log && !logs.contains(parsed.baseOffset)
            if parsed.suffix == .cleaned || parsed.suffix == .deleted || orphanIndex {
                try FileSystem.remove(path)
                report.removedFiles.append(path)
            }
        }
        try FileSystem.syncDirectory(directory)
    }

    /// Completes compaction swaps that were committed (their `.log.swap` exists): removes the segments
    /// the swap replaces, then renames the swap files to their final names.
    private mutating func completeSwaps() throws {
        let names = try FileSystem.list(directory)
        let swaps = names.compactMap { name -> Int64? in
            guard let p = SegmentFiles.parse(name), p.kind == .log, p.suffix == .swap else { return nil }
            return p.baseOffset
        }.sorted()
        for base in swaps {
            let swapLog = try LogFile.open(SegmentFiles.path(directory, base, .log, .swap))
            let scanner = BatchScanner(file: swapLog, position: 0, endPosition: try swapLog.size(), limits: config.limits)
            var next = base + 1
            while case .batch(let header, _, _) = try scanner.next() { next = max(next, header.nextOffset) }
            for replaced in try segmentBases() where replaced >= base && replaced < next {
                try removeFiles(of: replaced, suffix: nil)
            }
            for kind in [SegmentFiles.Kind.index, .timeIndex, .log] {
                let from = SegmentFiles.path(directory, base, kind, .swap)
                if FileSystem.exists(from) { try FileSystem.rename(from, to: SegmentFiles.path(directory, base, kind)) }
            }
            try FileSystem.syncDirectory(directory)
            report.completedSwaps.append(SegmentFiles.path(directory, base, .log))
        }
        // Index swaps whose log swap is gone were renamed already or belong to an aborted pass.
        for name in try FileSystem.list(directory) {
            if let p = SegmentFiles.parse(name), p.suffix == .swap {
                try FileSystem.remove("\(directory)/\(name)")
                report.removedFiles.append("\(directory)/\(name)")
            }
        }
    }

    private func removeFiles(of base: Int64, suffix: SegmentFiles.Suffix?) throws {
        for kind in SegmentFiles.Kind.allCases { try FileSystem.remove(SegmentFiles.path(directory, base, kind, suffix)) }
    }

    private func remove(_ segment: LogSegment) throws {
        try removeFiles(of: segment.baseOffset, suffix: nil)
        try FileSystem.syncDirectory(directory)
    }

    private func log() {
        for truncation in report.truncations {
            logger.warning("recovery truncated a torn or corrupt tail", metadata: ["detail": "\(truncation)"])
        }
        for rebuilt in report.rebuiltIndexes { logger.warning("rebuilt index", metadata: ["detail": "\(rebuilt)"]) }
        for problem in report.checkpointProblems { logger.warning("checkpoint problem", metadata: ["detail": "\(problem)"]) }
        for removed in report.removedSegments { logger.warning("removed segment", metadata: ["file": "\(removed)"]) }
        logger.info("opened partition log", metadata: [
            "directory": "\(directory)", "clean": "\(report.cleanShutdown)", "scannedBytes": "\(report.scannedBytes)",
        ])
    }
}
