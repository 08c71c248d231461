import SluiceCompression
import SluiceCore
import SluiceLog

/// The first corruption `verify` found: the file, the byte position in it, and why.
struct Corruption: Error, CustomStringConvertible {
    let file: String
    let position: Int
    let reason: String

    var description: String { "CORRUPT \(file) at byte \(position): \(reason)" }
}

/// What one segment holds, for the per-segment summary line.
struct SegmentSummary {
    var base: Int64
    var logBytes = 0
    var batches = 0
    var records = 0
    var firstOffset: Int64?
    /// The offset after the last batch (the base when empty).
    var nextOffset: Int64
    var offsetIndexEntries = 0
    var timeIndexEntries = 0
    var codecs: [String] = []

    init(base: Int64) {
        self.base = base
        self.nextOffset = base
    }
}

/// What a clean verification found.
struct VerifyResult {
    var segments: [SegmentSummary] = []
    var records = 0
    var logStartOffset: Int64?
    var logEndOffset: Int64?
    /// Findings that are not corruption: missing checkpoints, leftovers the next open cleans up.
    var warnings: [String] = []
    /// One line per checkpoint file, saying what it holds.
    var checkpoints: [String] = []
}

/// Checks a partition directory without modifying it (it never calls `PartitionLog.open`, which would
/// repair what it finds): every batch of every segment (length, magic, CRC, records including
/// decompression, offsets and leader epochs in order within and across segments), both index files of
/// every segment, and the checkpoint files. Throws the first `Corruption`; other errors are I/O.
///
/// Base offset and leader epoch lie outside the CRC, so a flipped bit there shows only as a batch that
/// disagrees with its neighbours. `BatchChain` then blames the batch whose removal makes the others
/// agree, so the reported position is the damaged batch, not the innocent one after it.
struct PartitionVerifier {
    let directory: PartitionDirectory
    let limits: Limits
    /// When set, every record must be the synthetic record of its offset with values of this size.
    let syntheticValueBytes: Int?

    init(directory: PartitionDirectory, limits: Limits = .default, syntheticValueBytes: Int? = nil) {
        self.directory = directory
        self.limits = limits
        self.syntheticValueBytes = syntheticValueBytes
    }

    /// Verifies everything, calling `onSegment` after each segment checked clean.
    func run(onSegment: (SegmentSummary) -> Void = { _ in }) throws -> VerifyResult {
        var result = VerifyResult()
        result.warnings = fileWarnings()
        let checkpoints = CheckpointVerifier(directory: directory)
        let recoveryPoint = checkpoints.recoveryPoint()
        var chain = BatchChain()
        var probe: BoundaryProbe?
        for base in directory.segmentBases {
            try chain.enterSegment(base: base, file: directory.file(base, .log))
            let target = recoveryPoint.flatMap { $0.segmentBaseOffset == base ? Int($0.position) : nil }
            var segment = try SegmentVerifier(directory: directory, base: base, limits: limits,
                                              syntheticValueBytes: syntheticValueBytes, probePosition: target)
            let summary = try segment.run(chain: &chain)
            result.warnings += segment.warnings
            if target != nil { probe = segment.probe }
            result.segments.append(summary)
            result.records += summary.records
            onSegment(summary)
        }
        if directory.segmentBases.isEmpty {
            result.warnings.append("no segments: the log is empty (the next open creates the first segment)")
        }
        result.logEndOffset = result.segments.last?.nextOffset
        try checkpoints.check(result: &result, probe: probe, lastBatch: chain.last)
        return result
    }

    private func fileWarnings() -> [String] {
        var warnings: [String] = []
        for name in directory.leftovers {
            warnings.append("\(directory.child(name)): left by an interrupted operation; the next open finishes or removes it")
        }
        for name in directory.orphanIndexes {
            warnings.append("\(directory.child(name)): index without its .log; the next open removes it")
        }
        for name in directory.unknown { warnings.append("\(directory.child(name)): not a partition log file") }
        return warnings
    }
}

/// The last batch seen, kept to decide which of two batches that disagree is the damaged one.
struct BatchMark {
    var file: String
    var position: Int
    var baseOffset: Int64
    var nextOffset: Int64
    var leaderEpoch: Int32
    /// The lowest base offset this batch could have: the offset after the batch before it, or its
    /// segment's base offset.
    var offsetFloor: Int64
    /// The leader epoch of the batch before it (-1 when none).
    var epochFloor: Int32

    /// Whether this batch's offsets could lie between its floor and `nextBase`, so that a damaged base
    /// offset of this batch alone explains a conflict with what follows.
    func fits(before nextBase: Int64) -> Bool {
        nextBase - offsetFloor >= nextOffset - baseOffset
    }
}

/// The order rules that span batches and segments: base offsets at or above the offset after the
/// previous batch and the segment base, leader epochs never decreasing and never below -1.
struct BatchChain {
    private(set) var last: BatchMark?
    private var segmentBase: Int64 = 0

    /// A new segment starts: its base (from the file name) must not lie below the previous batch's end.
    mutating func enterSegment(base: Int64, file: String) throws {
        segmentBase = base
        guard let x = last, base < x.nextOffset else { return }
        if x.fits(before: base) { throw Self.misplaced(x, nextBase: base) }
        throw Corruption(file: file, position: 0, reason:
            "the segment's base offset \(base) (from its file name) is below \(x.nextOffset), the offset after the previous "
                + "segment's last batch")
    }

    /// Checks the batch `h` at `position` of `file` against the previous one, then remembers it.
    mutating func add(_ h: RecordBatchHeader, position: Int, file: String) throws {
        guard h.baseOffset >= segmentBase else {
            throw Corruption(file: file, position: position, reason:
                "base offset \(h.baseOffset) is below the segment's base offset \(segmentBase) (from its file name)")
        }
        guard h.lastOffset - segmentBase <= Int64(UInt32.max) else {
            throw Corruption(file: file, position: position, reason:
                "last offset \(h.lastOffset) is too far above the segment base \(segmentBase) for the index format")
        }
        guard h.partitionLeaderEpoch >= -1 else {
            throw Corruption(file: file, position: position, reason:
                "leader epoch \(h.partitionLeaderEpoch) is negative (only -1, unknown, is allowed; the field is outside the CRC)")
        }
        if let x = last { try checkAfter(x, h, position: position, file: file) }
        let floor = max(last?.nextOffset ?? segmentBase, segmentBase)
        last = BatchMark(file: file, position: position, baseOffset: h.baseOffset, nextOffset: h.nextOffset,
                         leaderEpoch: h.partitionLeaderEpoch, offsetFloor: floor, epochFloor: last?.leaderEpoch ?? -1)
    }

    private func checkAfter(_ x: BatchMark, _ h: RecordBatchHeader, position: Int, file: String) throws {
        if h.baseOffset < x.nextOffset {
            // If x's records fit between the batch before it and this one, x's base offset is the odd one out.
            if x.fits(before: h.baseOffset) { throw Self.misplaced(x, nextBase: h.baseOffset) }
            throw Corruption(file: file, position: position, reason:
                BatchFormatError.offsetsOutOfOrder(baseOffset: h.baseOffset, expectedAtLeast: x.nextOffset).description)
        }
        if h.partitionLeaderEpoch < x.leaderEpoch {
            if h.partitionLeaderEpoch >= x.epochFloor {
                throw Corruption(file: x.file, position: x.position, reason:
                    "leader epoch \(x.leaderEpoch) is above both neighbours (\(x.epochFloor) before, \(h.partitionLeaderEpoch) "
                        + "after); the field is outside the CRC")
            }
            throw Corruption(file: file, position: position, reason:
                "leader epoch \(h.partitionLeaderEpoch) is below \(x.leaderEpoch), the previous batch's; epochs never decrease in a log")
        }
    }

    private static func misplaced(_ x: BatchMark, nextBase: Int64) -> Corruption {
        Corruption(file: x.file, position: x.position, reason:
            "base offset \(x.baseOffset) does not fit between its neighbours (the batch before ends at \(x.offsetFloor), "
                + "what follows starts at \(nextBase)); the field is outside the CRC, so damage to it shows only here")
    }
}

/// Where the batches of a segment stand at one byte position (the recovery point's).
struct BoundaryProbe {
    let position: Int
    /// The offset after the batches before the position.
    var offsetBefore: Int64?
    /// The base offset of the batch at the position; nil when the position is the end of the batches.
    var baseOffsetAt: Int64?
    /// Whether the position is a batch boundary (or the end) of the valid batches.
    var isBoundary = false
    /// Where the valid batches of the segment end.
    var validEnd = 0
}
