import SluiceLog

/// The files of a partition directory, listed without opening the log: `PartitionLog.open` recovers and
/// rewrites (checkpoints, indexes, torn tails), which `dump` and `verify` must never do.
struct PartitionDirectory {
    let path: String
    /// Base offsets of the `<base>.log` files (no suffix), ascending.
    let segmentBases: [Int64]
    /// Index files whose `.log` is missing (the loader deletes them at open).
    let orphanIndexes: [String]
    /// Leftovers of an interrupted operation (`.tmp`, `.cleaned`, `.swap`, `.deleted`) that the next open
    /// finishes or removes.
    let leftovers: [String]
    /// Files that are neither segments nor checkpoints.
    let unknown: [String]
    let names: Set<String>

    static let checkpointNames: Set<String> = [
        Checkpoints.recoveryPointFile, Checkpoints.logStartOffsetFile, Checkpoints.cleanShutdownFile,
    ]

    /// Lists `path`; throws when it is not a directory.
    init(_ path: String) throws {
        guard FileSystem.exists(path) else { throw ToolError.notFound(path) }
        guard FileSystem.isDirectory(path) else { throw ToolError.badPath(path, "a directory") }
        self.path = path
        let names = try FileSystem.list(path).sorted()
        self.names = Set(names)
        var logs: [Int64] = []
        var indexes: [(Int64, String)] = []
        var leftovers: [String] = []
        var unknown: [String] = []
        for name in names {
            if let parsed = SegmentFiles.parse(name) {
                if parsed.suffix != nil {
                    leftovers.append(name)
                } else if parsed.kind == .log {
                    logs.append(parsed.baseOffset)
                } else {
                    indexes.append((parsed.baseOffset, name))
                }
            } else if name.hasSuffix(".tmp") {
                leftovers.append(name)
            } else if !Self.checkpointNames.contains(name) {
                unknown.append(name)
            }
        }
        let logSet = Set(logs)
        segmentBases = logs.sorted()
        orphanIndexes = indexes.filter { !logSet.contains($0.0) }.map { $0.1 }
        self.leftovers = leftovers
        self.unknown = unknown
    }

    /// `<dir>/<base>.<kind>`.
    func file(_ base: Int64, _ kind: SegmentFiles.Kind) -> String {
        SegmentFiles.path(path, base, kind)
    }

    /// Whether `<dir>/<name>` exists (as listed).
    func contains(_ name: String) -> Bool { names.contains(name) }

    /// `<dir>/<name>`.
    func child(_ name: String) -> String { "\(path)/\(name)" }
}
