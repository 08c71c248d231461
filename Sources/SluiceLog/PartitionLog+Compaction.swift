import SluiceCompression
import SluiceCore

/// What one compaction pass did.
public struct CompactionResult: Sendable, Hashable {
    public var segmentsCleaned = 0
    public var recordsRemoved = 0
    public var tombstonesRemoved = 0
    public var bytesBefore = 0
    public var bytesAfter = 0
    /// Offsets below this were covered by the key map (the pass stops where the map is full).
    public var mapEndOffset: Int64 = 0
}

/// Points between the crash-safe steps of a compaction pass, where tests stop it to simulate a crash.
enum CompactionStage: Sendable {
    case cleanedWritten
    case swapRenamed
    case oldRenamedToDeleted
}

struct CompactionInterrupted: Error {}

extension PartitionLog {
    /// Compacts closed segments (`cleanup.policy=compact`): keeps the newest record of every key
    /// (records without a key are kept), drops tombstones whose timestamp is older than
    /// `delete.retention.ms`, and preserves offsets. Runs concurrently with appends and reads; only the
    /// final swap takes the writer lock.
    ///
    /// Crash safety (storage-format/segments.md): output is written to `.cleaned` files and fsynced;
    /// renaming the `.log` to `.swap` commits it (recovery finishes a swap it finds); the replaced segments
    /// are renamed to `.deleted` and unlinked; the swap files are renamed to their final names.
    ///
    /// A replicated log (each batch a Raft entry) passes `keepingEmptyBatches`, so a batch whose every
    /// record goes stays as an empty batch and the batches keep their ordinals, and `through` its
    /// committed end: records above it may still be replaced, so they must not make older ones go.
    @discardableResult
    public func compact(keepingEmptyBatches: Bool = false, through limit: Int64? = nil) throws -> CompactionResult {
        try compact(interruptAfter: nil, keepingEmptyBatches: keepingEmptyBatches, through: limit)
    }

    func compact(interruptAfter stage: CompactionStage?, keepingEmptyBatches: Bool = false, through limit: Int64? = nil) throws -> CompactionResult {
        guard config.cleanupPolicy.contains(.compact) else { return CompactionResult() }
        return try maintenance.withLock {
            let current = snapshot()
            guard !current.closed else { return CompactionResult() }  // a replaced log's files belong to its successor
            var result = CompactionResult()
            let (map, mapEnd) = try buildKeyMap(current, through: limit ?? Int64.max)
            result.mapEndOffset = mapEnd
            let closed = current.segments.dropLast()
            var cleanable: [LogSegment] = []
            for (i, segment) in closed.enumerated() where current.segments[i + 1].baseOffset <= mapEnd {
                cleanable.append(segment)
            }
            let groups = group(cleanable)
            let horizon = clock.nowMilliseconds() - config.deleteRetentionMilliseconds
            var outputs: [(group: [LogSegment], cleaned: LogSegment)] = []
            for group in groups {
                let cleaned = try clean(group, map: map, tombstoneHorizon: horizon, keepingEmptyBatches: keepingEmptyBatches, result: &result)
                outputs.append((group, cleaned))
            }
            try FileSystem.syncDirectory(directory)
            if stage == .cleanedWritten { throw CompactionInterrupted() }
            for output in outputs { try swap(output.group, output.cleaned, interruptAfter: stage) }
            result.segmentsCleaned = cleanable.count
            logger.info("compacted", metadata: [
                "directory": "\(directory)", "segments": "\(result.segmentsCleaned)",
                "removed": "\(result.recordsRemoved)", "bytesBefore": "\(result.bytesBefore)", "bytesAfter": "\(result.bytesAfter)",
            ])
            return result
        }
    }

    /// The newest offset of every key from the log start on, stopping at a batch boundary once
    /// `compactionKeysMax` keys are held or before a batch that ends above `limit`. Returns the map and
    /// the offset it covers up to.
    private func buildKeyMap(_ current: View, through limit: Int64) throws -> ([[UInt8]: Int64], Int64) {
        var map: [[UInt8]: Int64] = [:]
        var mapEnd = current.segments[0].baseOffset
        for (i, segment) in current.segments.enumerated() {
            let end = i == current.segments.count - 1 ? current.activeEndPosition : segment.size
            var full = false
            try segment.forEachBatch(end: end) { header, position, bytes in
                guard header.nextOffset <= limit else {
                    full = true
                    return false
                }
                // A control record's key is a marker type, not a user key: it must not shadow one.
                if header.isControl {
                    mapEnd = header.nextOffset
                    return true
                }
                let records = try decode(bytes, file: segment.path, position: position)
                let newKeys = Set(records.compactMap { $0.key }.filter { map[$0] == nil }).count
                if map.count + newKeys > config.compactionKeysMax {
                    full = true
                    return false
                }
                for record in records { if let key = record.key { map[key] = record.offset } }
                mapEnd = header.nextOffset
                return true
            }
            if full { return (map, mapEnd) }
            if i + 1 < current.segments.count { mapEnd = max(mapEnd, current.segments[i + 1].baseOffset) }
        }
        return (map, mapEnd)
    }

    /// The records of a stored batch, or `LogError.corruptBatch` naming where it lies.
    func decode(_ bytes: UnsafeRawBufferPointer, file: String, position: Int) throws -> [Record] {
        do {
            return try RecordBatch.records(in: bytes, limits: config.limits)
        } catch let error as BatchFormatError {
            throw LogError.corruptBatch(file: file, position: position, reason: error)
        }
    }

    /// Consecutive segments whose combined size fits one segment, so compaction also merges small ones.
    private func group(_ segments: [LogSegment]) -> [[LogSegment]] {
        var groups: [[LogSegment]] = []
        var currentGroup: [LogSegment] = []
        var bytes = 0
        for segment in segments {
            if !currentGroup.isEmpty && bytes + segment.size > config.segmentBytes {
                groups.append(currentGroup)
                currentGroup = []
                bytes = 0
            }
            currentGroup.append(segment)
            bytes += segment.size
        }
        if !currentGroup.isEmpty { groups.append(currentGroup) }
        return groups
    }

    /// Writes the kept records of `group` into `<first base>.*.cleaned` files, fsynced.
    private func clean(_ group: [LogSegment], map: [[UInt8]: Int64], tombstoneHorizon: Int64, keepingEmptyBatches: Bool,
                       result: inout CompactionResult) throws -> LogSegment {
        let cleaned = try LogSegment.create(directory: directory, baseOffset: group[0].baseOffset, config: config,
                                            now: clock.nowMilliseconds(), suffix: .cleaned)
        for segment in group {
            result.bytesBefore += segment.size
            try segment.forEachBatch { header, position, bytes in
                let records = try decode(bytes, file: segment.path, position: position)
                let kept = header.isControl ? records : records.filter { record in
                    guard let key = record.key else { return true }
                    guard map[key] == record.offset else { return false }
                    let timestamp = header.timestampType == .logAppendTime ? header.maxTimestamp : record.timestamp
                    if record.value == nil && timestamp < tombstoneHorizon {
                        result.tombstonesRemoved += 1
                        return false
                    }
                    return true
                }
                result.recordsRemoved += records.count - kept.count
                if kept.count == records.count {
                    try cleaned.append(bytes, header: header)
                } else if !kept.isEmpty || keepingEmptyBatches {
                    let rebuilt = try rebuild(header, kept)
                    try rebuilt.bytes.withUnsafeBytes { try cleaned.append($0, header: rebuilt.header) }
                }
                return true
            }
        }
        try cleaned.seal()
        result.bytesAfter += cleaned.size
        return cleaned
    }

    /// The batch with only `kept` records: same base offset, last offset delta, timestamps, producer
    /// fields and codec, so offsets and producer state survive.
    private func rebuild(_ header: RecordBatchHeader, _ kept: [Record]) throws -> RecordBatch {
        var section: [UInt8] = []
        RecordBatch.encodeRecords(kept, baseOffset: header.baseOffset, baseTimestamp: header.baseTimestamp, into: &section)
        var newHeader = header
        newHeader.recordCount = Int32(kept.count)
        do {
            return RecordBatch.assemble(header: newHeader, section: try Codecs.compress(section, codec: header.codec ?? .none))
        } catch let error as BatchFormatError {
            throw LogError.invalidBatch(error)
        }
    }

    /// Commits one cleaned group: `.cleaned` → `.swap` (the log last: that rename is the commit), old
    /// segments → `.deleted`, `.swap` → final names, then the view switches to the new segment.
    private func swap(_ group: [LogSegment], _ cleaned: LogSegment, interruptAfter stage: CompactionStage?) throws {
        let base = cleaned.baseOffset
        for kind in [SegmentFiles.Kind.index, .timeIndex, .log] {
            try FileSystem.rename(SegmentFiles.path(directory, base, kind, .cleaned), to: SegmentFiles.path(directory, base, kind, .swap))
        }
        try FileSystem.syncDirectory(directory)
        if stage == .swapRenamed { throw CompactionInterrupted() }
        try writer.withLock {
            try renameToDeleted(group)
            if stage == .oldRenamedToDeleted { throw CompactionInterrupted() }
            for kind in [SegmentFiles.Kind.index, .timeIndex, .log] {
                try FileSystem.rename(SegmentFiles.path(directory, base, kind, .swap), to: SegmentFiles.path(directory, base, kind))
            }
            try FileSystem.syncDirectory(directory)
            let replacement = try LogSegment.open(directory: directory, baseOffset: base, config: config,
                                                  now: clock.nowMilliseconds(), sealed: true)
            let replaced = Set(group.map { ObjectIdentifier($0) })
            publish { view in
                guard let first = view.segments.firstIndex(where: { replaced.contains(ObjectIdentifier($0)) }) else { return }
                view.segments.removeAll { replaced.contains(ObjectIdentifier($0)) }
                view.segments.insert(replacement, at: first)
            }
        }
        try removeDeleted(group)
    }
}
