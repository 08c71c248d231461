import SluiceCore

extension PartitionLog {
    /// Deletes whole closed segments (never the active one) that are past `retention.ms` — their newest
    /// record is older — or that push the log over `retention.bytes`, oldest first. Moves the log start
    /// offset up to the first remaining segment. Returns the base offsets deleted.
    @discardableResult
    public func enforceRetention() throws -> [Int64] {
        try maintenance.withLock {
            guard let target = try retentionCut() else { return [] }
            return try deleteSegmentsLocked(before: target)
        }
    }

    /// Where retention would cut the log now: the base offset of the first segment it would keep, nil
    /// when it would delete nothing (or the policy is not `delete`). A replicated log moves its Raft
    /// anchor to a cut before it deletes (`deleteSegments(before:)`).
    public func retentionCut() throws -> Int64? {
        guard config.cleanupPolicy.contains(.delete) else { return nil }
        let current = snapshot()
        guard !current.closed else { return nil }  // a replaced log's files belong to its successor
        let closed = current.segments.dropLast()
        var doomed = 0
        if let retention = config.retentionMilliseconds {
            let cutoff = clock.nowMilliseconds() - retention
            for segment in closed {
                guard (try segment.maxTimestamp() ?? Int64.min) < cutoff else { break }
                doomed += 1
            }
        }
        if let retentionBytes = config.retentionBytes {
            var excess = Int64(current.segments.reduce(0) { $0 + $1.size }) - retentionBytes
            for (i, segment) in closed.enumerated() {
                guard excess >= Int64(segment.size) else { break }
                excess -= Int64(segment.size)
                doomed = max(doomed, i + 1)
            }
        }
        return doomed > 0 ? current.segments[doomed].baseOffset : nil
    }

    /// The largest segment base offset at or below `offset`: where `deleteSegments(before: offset)` would
    /// leave the log start. Nil when `offset` is below the first segment.
    public func segmentBase(atOrBelow offset: Int64) -> Int64? {
        snapshot().segments.last { $0.baseOffset <= offset }?.baseOffset
    }

    /// Deletes the closed segments that lie wholly below `offset` (each one whose successor starts at or
    /// below it) and moves the log start to the first segment kept. Returns the base offsets deleted.
    @discardableResult
    public func deleteSegments(before offset: Int64) throws -> [Int64] {
        try maintenance.withLock { try deleteSegmentsLocked(before: offset) }
    }

    /// `deleteSegments(before:)`; the caller holds `maintenance`.
    private func deleteSegmentsLocked(before offset: Int64) throws -> [Int64] {
        let current = snapshot()
        guard !current.closed else { return [] }
        let doomed = current.segments.indices.dropLast().filter { current.segments[$0 + 1].baseOffset <= offset }.count
        guard doomed > 0 else { return [] }
        let deleted = Array(current.segments.prefix(doomed))
        try writer.withLock {
            let newStart = max(snapshot().logStartOffset, current.segments[doomed].baseOffset)
            // The new log start is durable before any file goes: a crash in between leaves segments
            // below it, which the next open removes.
            try Checkpoints.write(logStartOffset: newStart, directory: directory)
            publish { view in
                view.segments.removeFirst(doomed)
                view.logStartOffset = newStart
            }
        }
        try delete(deleted)
        logger.info("retention deleted segments", metadata: [
            "directory": "\(directory)", "bases": "\(deleted.map(\.baseOffset))",
        ])
        return deleted.map(\.baseOffset)
    }

    /// Removes segments that are no longer in the view: rename to `.deleted`, make that durable, unlink.
    /// Readers that still hold them keep reading through their open descriptors.
    func delete(_ segments: [LogSegment]) throws {
        guard !segments.isEmpty else { return }
        try renameToDeleted(segments)
        try removeDeleted(segments)
    }

    /// Renames each segment's files to `.deleted` and makes the renames durable.
    func renameToDeleted(_ segments: [LogSegment]) throws {
        for segment in segments {
            for kind in SegmentFiles.Kind.allCases {
                let path = SegmentFiles.path(directory, segment.baseOffset, kind)
                if FileSystem.exists(path) {
                    try FileSystem.rename(path, to: SegmentFiles.path(directory, segment.baseOffset, kind, .deleted))
                }
            }
        }
        try FileSystem.syncDirectory(directory)
    }

    /// Unlinks the `.deleted` files of `segments` (a crash before this leaves them for the next open).
    func removeDeleted(_ segments: [LogSegment]) throws {
        for segment in segments {
            for kind in SegmentFiles.Kind.allCases {
                try FileSystem.remove(SegmentFiles.path(directory, segment.baseOffset, kind, .deleted))
            }
        }
    }

    /// Removes every record at or after `offset` (replication: a follower drops a divergent suffix).
    /// `offset` must be a batch boundary. Below the log start offset, the log is emptied and restarts
    /// at `offset`. The recovery point comes down with it, durably, before this returns.
    public func truncate(to offset: Int64) throws {
        precondition(offset >= 0, "offsets are non-negative")
        try maintenance.withLock {
            try writer.withLock {
                let current = snapshot()
                guard !current.closed else { throw LogError.closed(directory: directory) }
                guard offset < current.logEndOffset else { return }
                if offset <= current.logStartOffset {
                    try restart(at: offset, current: current)
                    return
                }
                let keep = (IndexFormat.floorIndex(current.segments, offset, key: { $0.baseOffset }) ?? 0)
                var segment = current.segments[keep]
                // Find the cut before changing anything, so a refused truncation changes nothing.
                let cut = try findCut(in: segment, offset: offset)
                let later = Array(current.segments[(keep + 1)...])
                view.withLock { truncationGeneration += 1 }
                // Later segments go first: a crash in between must not leave records above the cut.
                try delete(later)
                publish { view in view.segments.removeLast(later.count) }
                if segment.isSealed {
                    if let cut {
                        let replacement = try segment.copyPrefix(cut, config: config, now: clock.nowMilliseconds())
                        publish { view in view.segments[view.segments.count - 1] = replacement }
                        segment = replacement
                    } else {
                        segment.unseal()
                    }
                } else {
                    try segment.truncate(to: offset)
                }
                let end = segment.size
                publish { view in
                    view.logEndOffset = offset
                    view.activeEndPosition = end
                }
                groupCommit.reset(durableOffset: offset)
                try writeRecoveryPoint(Checkpoints.RecoveryPoint(offset: offset, segmentBaseOffset: segment.baseOffset,
                                                                 position: Int64(segment.size)), generation: nil)
            }
        }
    }

    /// The byte position where `offset`'s batch starts, nil when the segment holds nothing at or above
    /// it. Refuses offsets inside a batch.
    private func findCut(in segment: LogSegment, offset: Int64) throws -> Int? {
        guard let (position, header) = try findBatch(in: segment, reaching: offset, end: segment.size) else { return nil }
        if header.baseOffset < offset {
            throw LogError.truncationInsideBatch(offset: offset, batchBaseOffset: header.baseOffset,
                                                 batchLastOffset: header.lastOffset)
        }
        return position
    }

    /// Drops every segment and starts an empty log at `offset`. Caller holds both locks.
    private func restart(at offset: Int64, current: View) throws {
        view.withLock { truncationGeneration += 1 }
        try Checkpoints.write(logStartOffset: offset, directory: directory)
        try delete(current.segments)
        let segment = try LogSegment.create(directory: directory, baseOffset: offset, config: config, now: clock.nowMilliseconds())
        publish { view in
            view.segments = [segment]
            view.logStartOffset = offset
            view.logEndOffset = offset
            view.activeEndPosition = 0
        }
        groupCommit.reset(durableOffset: offset)
        try writeRecoveryPoint(Checkpoints.RecoveryPoint(offset: offset, segmentBaseOffset: offset, position: 0), generation: nil)
    }

    /// Empties the log and restarts it at `offset` (a follower that fell behind the leader's retention).
    public func truncateFully(startingAt offset: Int64) throws {
        precondition(offset >= 0, "offsets are non-negative")
        try maintenance.withLock {
            try writer.withLock {
                let current = snapshot()
                guard !current.closed else { throw LogError.closed(directory: directory) }
                try restart(at: offset, current: current)
            }
        }
    }
}
