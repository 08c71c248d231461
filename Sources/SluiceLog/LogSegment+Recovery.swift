import SluiceCore

extension LogSegment {
    /// What loading (or recovering) a segment's indexes found.
    struct LoadResult {
        var indexes: SegmentIndexes
        /// Why the index files were rebuilt from the log, nil when they were sound.
        var rebuiltReason: String?
        /// The first invalid batch the scan met, if any.
        var invalid: (position: Int, reason: BatchFormatError)?
        /// Bytes of the `.log` the scan read.
        var scannedBytes: Int
        /// Where the valid batches end.
        var validEnd: Int
        /// Bytes cut off the `.log` by `recover` (0 when nothing was invalid).
        var bytesRemoved = 0
    }

    /// Loads the index files, keeps the entries that point below `trustedBelow` and pass validation, then
    /// scans the `.log` from the last kept entry to `size`, validating each batch and indexing it with the
    /// live rule. Index files are rewritten when the result differs from them. Does not touch `state`:
    /// callers hold its lock or own the segment exclusively.
    func loadIndexes(size: Int, trustedBelow: Int, sealed: Bool) throws -> LoadResult {
        let storedOffsets = IndexFormat.decodeOffsetIndex(try offsetIndexFile.read(count: try offsetIndexFile.size(), at: 0))
        let storedTimes = IndexFormat.decodeTimeIndex(try timeIndexFile.read(count: try timeIndexFile.size(), at: 0))
        var rebuiltReason: String?
        var offsets: [OffsetIndexEntry] = []
        var times: [TimeIndexEntry] = []
        if let storedOffsets, let storedTimes, size > 0, storedOffsets.isEmpty || storedTimes.isEmpty {
            // The first batch of a segment always gets an entry in both indexes.
            rebuiltReason = missingIndexFiles.isEmpty ? "an index file is empty" : "missing \(missingIndexFiles.joined(separator: " and "))"
        } else if storedOffsets == nil {
            rebuiltReason = "offset index size is not a multiple of \(OffsetIndexEntry.size)"
        } else if storedTimes == nil {
            rebuiltReason = "time index size is not a multiple of \(TimeIndexEntry.size)"
        } else if let storedOffsets, let storedTimes {
            let limit = min(trustedBelow, size)
            offsets = Array(storedOffsets.prefix { Int($0.position) < limit })
            if let problem = IndexFormat.offsetIndexProblem(offsets, logSize: size) {
                rebuiltReason = "offset index: \(problem)"
            } else if let problem = IndexFormat.timeIndexProblem(storedTimes, lastRelativeOffset: nil) {
                rebuiltReason = "time index: \(problem)"
            } else if let last = offsets.last {
                times = Array(storedTimes.prefix { $0.relativeOffset <= last.relativeOffset })
            }
        }
        if rebuiltReason != nil {
            offsets = []
            times = []
        }
        while true {
            var result = try scanTail(size: size, offsets: offsets, times: times, sealed: sealed)
            if result.firstIndexedBatchMismatch {
                // The last kept entry does not point at its batch: drop it and resume from the one before.
                rebuiltReason = rebuiltReason ?? "offset index entry does not point at the batch it names"
                offsets.removeLast()
                let lastRelative = offsets.last?.relativeOffset
                times = lastRelative.map { r in times.filter { $0.relativeOffset <= r } } ?? []
                continue
            }
            if storedOffsets != result.load.indexes.offsets {
                try rewrite(offsetIndexFile, IndexFormat.encode(result.load.indexes.offsets))
            }
            if storedTimes != result.load.indexes.times {
                try rewrite(timeIndexFile, IndexFormat.encode(result.load.indexes.times))
            }
            // The files now hold exactly these entries.
            result.load.indexes.offsetsOnDisk = result.load.indexes.offsets.count
            result.load.indexes.timesOnDisk = result.load.indexes.times.count
            result.load.rebuiltReason = rebuiltReason
            return result.load
        }
    }

    private func rewrite(_ file: LogFile, _ bytes: [UInt8]) throws {
        try file.write(bytes, at: 0)
        try file.truncate(to: bytes.count)
    }

    private struct TailScan {
        var load: LoadResult
        var firstIndexedBatchMismatch = false
    }

    /// Scans from the batch of the last kept offset entry (or from 0) to `size`.
    private func scanTail(size: Int, offsets: [OffsetIndexEntry], times: [TimeIndexEntry], sealed: Bool) throws -> TailScan {
        var indexes = SegmentIndexes(baseOffset: baseOffset)
        indexes.offsets = offsets
        indexes.times = times
        indexes.runningMaxTimestamp = times.last?.timestamp ?? Int64.min
        let resume = offsets.last
        let start = resume.map { Int($0.position) } ?? 0
        let scanner = BatchScanner(file: log, position: start, endPosition: size, limits: limits)
        var invalid: (position: Int, reason: BatchFormatError)?
        var first = true
        scan: while true {
            switch try scanner.next() {
            case .end:
                break scan
            case .invalid(let position, let reason):
                invalid = (position, reason)
                break scan
            case .batch(let header, let position, let bytes):
                if first, let resume {
                    guard header.baseOffset == baseOffset + Int64(resume.relativeOffset) else {
                        return TailScan(load: LoadResult(indexes: indexes, invalid: nil, scannedBytes: 0, validEnd: start),
                                        firstIndexedBatchMismatch: true)
                    }
                    // Already indexed: only the running values need this batch.
                    indexes.bytesSinceIndexEntry = bytes.count
                    indexes.runningMaxTimestamp = max(indexes.runningMaxTimestamp, header.maxTimestamp)
                    indexes.lastBatchBaseOffset = header.baseOffset
                    indexes.nextOffset = header.nextOffset
                    first = false
                    continue
                }
                first = false
                guard header.baseOffset >= indexes.nextOffset else {
                    invalid = (position, .offsetsOutOfOrder(baseOffset: header.baseOffset, expectedAtLeast: indexes.nextOffset))
                    break scan
                }
                guard header.lastOffset - baseOffset <= Int64(UInt32.max) else {
                    invalid = (position, .malformedRecords("offset \(header.lastOffset) too far above the segment base \(baseOffset)"))
                    break scan
                }
                indexes.add(header: header, position: position, size: bytes.count, interval: indexIntervalBytes)
            }
        }
        if first, resume != nil {
            // The batch the last entry names is gone (invalid or past the end): resume earlier.
            return TailScan(load: LoadResult(indexes: indexes, invalid: nil, scannedBytes: 0, validEnd: start),
                            firstIndexedBatchMismatch: true)
        }
        // A sealed segment's last time entry holds its max timestamp; a cut one is about to take appends.
        if sealed && invalid == nil { indexes.seal() }
        let validEnd = invalid?.position ?? scanner.position
        return TailScan(load: LoadResult(indexes: indexes, invalid: invalid, scannedBytes: validEnd - start, validEnd: validEnd))
    }

    /// Recovery after an unclean shutdown: validates every batch from `trustedBelow` on, cuts the file at
    /// the first invalid one, and rebuilds the index entries of what was scanned. A valid batch before
    /// the first invalid one is never removed.
    func recover(trustedBelow: Int) throws -> LoadResult {
        let size = self.size
        var result = try loadIndexes(size: size, trustedBelow: trustedBelow, sealed: isSealed)
        if let invalid = result.invalid {
            try log.truncate(to: invalid.position)
            result.bytesRemoved = size - invalid.position
        }
        state.withLock { state in
            state.size = result.validEnd
            state.indexes = result.indexes
        }
        try flush()
        return result
    }

    /// Lets a sealed segment take appends again (truncation made it the last one). Readers that hold
    /// its mapping keep reading the bytes it covers; growing the file never invalidates it.
    func unseal() {
        state.withLock { state in
            state.sealed = false
            state.mapping = nil
        }
    }

    /// A new segment object over a copy of the first `cut` bytes, renamed over this segment's `.log`.
    /// A sealed segment may be mapped by readers, and shortening a mapped file would fault them, so it
    /// is never cut in place: the old inode lives on until the last reader lets go.
    func copyPrefix(_ cut: Int, config: LogConfig, now: Int64) throws -> LogSegment {
        let temporary = SegmentFiles.path(directory, baseOffset, .log, .cleaned)
        let copy = try LogFile.open(temporary, create: true)
        try copy.truncate(to: 0)
        var position = 0
        while position < cut {
            let chunk = try log.read(count: min(BatchScanner.chunkBytes, cut - position), at: position)
            guard !chunk.isEmpty else {
                throw LogError.io(operation: "copy of \(cut) bytes (file ended at \(position))", path: path, errno: 0)
            }
            try copy.write(chunk, at: position)
            position += chunk.count
        }
        try copy.sync()
        try FileSystem.rename(temporary, to: path)
        try FileSystem.syncDirectory(directory)
        let segment = try LogSegment.open(directory: directory, baseOffset: baseOffset, config: config, now: now, sealed: false)
        _ = try segment.recover(trustedBelow: cut)
        return segment
    }

    /// Removes every batch whose base offset is at or above `offset`, in place (only for a segment that
    /// is not sealed, hence not mapped). Throws when `offset` falls inside a batch. Returns the bytes
    /// removed.
    @discardableResult
    func truncate(to offset: Int64) throws -> Int {
        assert(!isSealed, "a sealed segment may be mapped; use copyPrefix")
        var cut: Int?
        try forEachBatch(from: try floorPosition(for: offset)) { header, position, _ in
            if header.baseOffset >= offset {
                cut = position
                return false
            }
            if header.lastOffset >= offset {
                throw LogError.truncationInsideBatch(offset: offset, batchBaseOffset: header.baseOffset,
                                                     batchLastOffset: header.lastOffset)
            }
            return true
        }
        let size = self.size
        guard let cut, cut < size else { return 0 }
        try log.truncate(to: cut)
        let result = try loadIndexes(size: cut, trustedBelow: cut, sealed: false)
        state.withLock { state in
            state.size = cut
            state.indexes = result.indexes
            state.sealed = false
        }
        try flush()
        return size - cut
    }
}
