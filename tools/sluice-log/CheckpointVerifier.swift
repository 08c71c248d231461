import SluiceLog

/// Checks the checkpoint files of a partition against the segments (storage-format/checkpoints.md).
///
/// A missing file is a warning: the next open falls back to a full scan or the first segment. An
/// unreadable one, or one that contradicts the batches (a recovery point inside a batch, a log start
/// above the end), is corruption, reported at the byte of the offending field.
struct CheckpointVerifier {
    let directory: PartitionDirectory

    /// Byte positions of the fields (storage-format/checkpoints.md).
    private enum Field {
        static let offset = 8
        static let segmentBase = 16
        static let position = 24
    }

    var recoveryPointPath: String { directory.child(Checkpoints.recoveryPointFile) }
    var logStartPath: String { directory.child(Checkpoints.logStartOffsetFile) }

    /// The recovery point when the file is valid.
    func recoveryPoint() -> Checkpoints.RecoveryPoint? {
        if case .valid(let point) = Checkpoints.readRecoveryPoint(directory.path) { return point }
        return nil
    }

    /// Checks both checkpoints; `probe` describes the batches at the recovery point's position and
    /// `lastBatch` is the log's last batch.
    func check(result: inout VerifyResult, probe: BoundaryProbe?, lastBatch: BatchMark?) throws {
        try checkRecoveryPoint(&result, probe: probe, lastBatch: lastBatch)
        try checkLogStart(&result)
    }

    private func checkRecoveryPoint(_ result: inout VerifyResult, probe: BoundaryProbe?, lastBatch: BatchMark?) throws {
        let clean = directory.contains(Checkpoints.cleanShutdownFile)
        switch Checkpoints.readRecoveryPoint(directory.path) {
        case .missing:
            result.checkpoints.append("\(Checkpoints.recoveryPointFile): missing")
            if !directory.segmentBases.isEmpty {
                result.warnings.append("\(recoveryPointPath) is missing; the next open scans every segment")
            }
        case .invalid(let problem):
            throw Corruption(file: recoveryPointPath, position: 0, reason: "unreadable checkpoint: \(problem)")
        case .valid(let point):
            result.checkpoints.append("\(Checkpoints.recoveryPointFile): offset \(point.offset), segment "
                + "\(SegmentFiles.baseName(point.segmentBaseOffset)) at byte \(point.position)"
                + (clean ? " (clean shutdown)" : " (no clean-shutdown marker: the next open recovers from here)"))
            try checkRecoveryPoint(point, &result, probe: probe, lastBatch: lastBatch, clean: clean)
        }
    }

    private func checkRecoveryPoint(_ point: Checkpoints.RecoveryPoint, _ result: inout VerifyResult, probe: BoundaryProbe?,
                                    lastBatch: BatchMark?, clean: Bool) throws {
        guard directory.segmentBases.contains(point.segmentBaseOffset), let probe else {
            result.warnings.append("\(recoveryPointPath) names segment \(point.segmentBaseOffset), which does not exist "
                + "(an interrupted truncation?); the next open scans every segment")
            return
        }
        guard Int(point.position) <= probe.validEnd else {
            result.warnings.append("\(recoveryPointPath) names byte \(point.position), past the end (\(probe.validEnd)) of its "
                + "segment (an interrupted truncation?); the next open scans every segment")
            return
        }
        guard probe.isBoundary, let before = probe.offsetBefore else {
            throw Corruption(file: recoveryPointPath, position: Field.position, reason:
                "names byte \(point.position) of segment \(point.segmentBaseOffset), which is not the start of a batch; "
                    + "recovery would start there and cut valid batches")
        }
        let upper = probe.baseOffsetAt ?? before
        if point.offset < before || point.offset > upper {
            try blameLastBatch(point, probe: probe, lastBatch: lastBatch)
            throw Corruption(file: recoveryPointPath, position: Field.offset, reason:
                "offset \(point.offset) does not match byte \(point.position) of segment \(point.segmentBaseOffset), "
                    + "where the batches give \(before == upper ? "\(before)" : "\(before)...\(upper)")")
        }
        if clean {
            try checkCleanEnd(point, result)
        }
    }

    /// At a clean shutdown the recovery point is the end of the log.
    private func checkCleanEnd(_ point: Checkpoints.RecoveryPoint, _ result: VerifyResult) throws {
        guard let last = result.segments.last else { return }
        guard point.segmentBaseOffset == last.base && Int(point.position) == last.logBytes else {
            throw Corruption(file: recoveryPointPath, position: Field.segmentBase, reason:
                "the log was shut down cleanly, but the recovery point (segment \(point.segmentBaseOffset), byte \(point.position)) "
                    + "is not the end of the log (segment \(last.base), byte \(last.logBytes))")
        }
    }

    /// When the recovery point sits at the end of the log and disagrees with the last batch only by that
    /// batch's base offset (outside the CRC), the batch is the damaged one.
    private func blameLastBatch(_ point: Checkpoints.RecoveryPoint, probe: BoundaryProbe, lastBatch: BatchMark?) throws {
        guard probe.baseOffsetAt == nil, let x = lastBatch,
              x.file == directory.file(point.segmentBaseOffset, .log),
              point.offset - (x.nextOffset - x.baseOffset) == x.offsetFloor
        else { return }
        throw Corruption(file: x.file, position: x.position, reason:
            "base offset \(x.baseOffset) disagrees with the recovery point, which puts the end of the log at \(point.offset), "
                + "right after a batch of this size that follows the batch before; the field is outside the CRC")
    }

    private func checkLogStart(_ result: inout VerifyResult) throws {
        switch Checkpoints.readLogStartOffset(directory.path) {
        case .missing:
            result.checkpoints.append("\(Checkpoints.logStartOffsetFile): missing")
            result.logStartOffset = directory.segmentBases.first
            if !directory.segmentBases.isEmpty {
                result.warnings.append("\(logStartPath) is missing; the next open starts the log at the first segment's base")
            }
        case .invalid(let problem):
            throw Corruption(file: logStartPath, position: 0, reason: "unreadable checkpoint: \(problem)")
        case .valid(let start):
            result.checkpoints.append("\(Checkpoints.logStartOffsetFile): \(start)")
            if let end = result.logEndOffset, start > end {
                throw Corruption(file: logStartPath, position: Field.offset, reason:
                    "log start offset \(start) is above the log end offset \(end)")
            }
            if let first = directory.segmentBases.first, start < first {
                result.warnings.append("\(logStartPath) says \(start), below the first segment's base \(first); the next open raises it")
            }
            result.logStartOffset = max(start, directory.segmentBases.first ?? start)
        }
    }
}
