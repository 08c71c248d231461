/// File names of a partition directory (storage-format/segments.md).
///
/// A segment is `<base>.log`, `<base>.index` and `<base>.timeindex`, where `<base>` is its base offset
/// in 20 zero-padded digits so that `ls` sorts segments by offset. Suffixes mark files in the middle of a
/// crash-safe change: `.cleaned` (compaction output being written), `.swap` (complete compaction output
/// waiting to replace what it covers), `.deleted` (being removed).
public enum SegmentFiles {
    public enum Kind: String, Sendable, CaseIterable {
        case log = "log"
        case index = "index"
        case timeIndex = "timeindex"
    }

    public enum Suffix: String, Sendable {
        case cleaned = ".cleaned"
        case swap = ".swap"
        case deleted = ".deleted"
    }

    /// `00000000000000000042` for 42.
    public static func baseName(_ baseOffset: Int64) -> String {
        precondition(baseOffset >= 0, "segment base offsets are non-negative")
        let digits = String(baseOffset)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }

    /// `<directory>/<base>.<kind><suffix>`.
    public static func path(_ directory: String, _ baseOffset: Int64, _ kind: Kind, _ suffix: Suffix? = nil) -> String {
        "\(directory)/\(baseName(baseOffset)).\(kind.rawValue)\(suffix?.rawValue ?? "")"
    }

    /// A parsed file name; nil for names that are not segment files.
    public struct Name: Hashable, Sendable {
        public var baseOffset: Int64
        public var kind: Kind
        public var suffix: Suffix?
    }

    public static func parse(_ fileName: String) -> Name? {
        let parts = fileName.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3 else { return nil }
        let digits = parts[0]
        guard digits.count == 20, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let base = Int64(digits) else {
            return nil
        }
        guard let kind = Kind(rawValue: String(parts[1])) else { return nil }
        var suffix: Suffix?
        if parts.count == 3 {
            guard let parsed = Suffix(rawValue: "." + parts[2]) else { return nil }
            suffix = parsed
        }
        return Name(baseOffset: base, kind: kind, suffix: suffix)
    }
}
