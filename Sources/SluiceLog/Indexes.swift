import SluiceCore

/// One entry of the sparse offset index: the batch whose base offset is `segment base + relativeOffset`
/// starts at byte `position` of the `.log` file. Layout: relativeOffset uint32 BE, position uint32 BE.
public struct OffsetIndexEntry: Hashable, Sendable {
    public var relativeOffset: UInt32
    public var position: UInt32
    public static let size = 8

    public init(relativeOffset: UInt32, position: UInt32) {
        self.relativeOffset = relativeOffset
        self.position = position
    }
}

/// One entry of the time index: every batch up to and including the one at `relativeOffset` has a max
/// timestamp of at most `timestamp`. Layout: timestamp int64 BE, relativeOffset uint32 BE.
public struct TimeIndexEntry: Hashable, Sendable {
    public var timestamp: Int64
    public var relativeOffset: UInt32
    public static let size = 12

    public init(timestamp: Int64, relativeOffset: UInt32) {
        self.timestamp = timestamp
        self.relativeOffset = relativeOffset
    }
}

/// Encoding, decoding and binary search of the two index files (storage-format/segments.md).
public enum IndexFormat {
    public static func encode(_ entries: some Collection<OffsetIndexEntry>) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(entries.count * OffsetIndexEntry.size)
        for entry in entries {
            bytes.appendBigEndian(entry.relativeOffset)
            bytes.appendBigEndian(entry.position)
        }
        return bytes
    }

    public static func encode(_ entries: some Collection<TimeIndexEntry>) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(entries.count * TimeIndexEntry.size)
        for entry in entries {
            bytes.appendBigEndian(entry.timestamp)
            bytes.appendBigEndian(entry.relativeOffset)
        }
        return bytes
    }

    /// Decodes an offset index; nil when the size is not a multiple of the entry size.
    public static func decodeOffsetIndex(_ bytes: [UInt8]) -> [OffsetIndexEntry]? {
        guard bytes.count % OffsetIndexEntry.size == 0 else { return nil }
        return stride(from: 0, to: bytes.count, by: OffsetIndexEntry.size).map {
            OffsetIndexEntry(relativeOffset: bytes.getBigEndian(at: $0), position: bytes.getBigEndian(at: $0 + 4))
        }
    }

    /// Decodes a time index; nil when the size is not a multiple of the entry size.
    public static func decodeTimeIndex(_ bytes: [UInt8]) -> [TimeIndexEntry]? {
        guard bytes.count % TimeIndexEntry.size == 0 else { return nil }
        return stride(from: 0, to: bytes.count, by: TimeIndexEntry.size).map {
            TimeIndexEntry(timestamp: bytes.getBigEndian(at: $0), relativeOffset: bytes.getBigEndian(at: $0 + 8))
        }
    }

    /// What is wrong with an offset index for a `.log` of `logSize` bytes, or nil when consistent:
    /// both fields strictly increase and every position lies inside the file.
    public static func offsetIndexProblem(_ entries: [OffsetIndexEntry], logSize: Int) -> String? {
        var previous: OffsetIndexEntry?
        for (i, entry) in entries.enumerated() {
            guard Int(entry.position) < logSize else {
                return "entry \(i) points at byte \(entry.position), past the end of the log (\(logSize) bytes)"
            }
            if let previous, entry.relativeOffset <= previous.relativeOffset || entry.position <= previous.position {
                return "entry \(i) does not increase"
            }
            previous = entry
        }
        return nil
    }

    /// What is wrong with a time index, or nil: timestamps strictly and offsets weakly increase.
    public static func timeIndexProblem(_ entries: [TimeIndexEntry], lastRelativeOffset: UInt32?) -> String? {
        var previous: TimeIndexEntry?
        for (i, entry) in entries.enumerated() {
            if let previous, entry.timestamp <= previous.timestamp || entry.relativeOffset < previous.relativeOffset {
                return "entry \(i) does not increase"
            }
            if let lastRelativeOffset, entry.relativeOffset > lastRelativeOffset {
                return "entry \(i) names relative offset \(entry.relativeOffset), past the last batch"
            }
            previous = entry
        }
        return nil
    }

    /// Index of the last entry with `key(entry) <= target`, nil when none is.
    public static func floorIndex<T>(_ entries: [T], _ target: Int64, key: (T) -> Int64) -> Int? {
        var low = 0
        var high = entries.count
        while low < high {
            let mid = (low + high) / 2
            if key(entries[mid]) <= target { low = mid + 1 } else { high = mid }
        }
        return low == 0 ? nil : low - 1
    }
}
