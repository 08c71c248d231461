import SluiceCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Operating errors of the storage engine: each names the file, the position or the range involved,
/// and says what the caller can do. Programmer errors are assertions, not cases here.
public enum LogError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A read asked for an offset outside `[logStartOffset, logEndOffset]`.
    case offsetOutOfRange(requested: Int64, logStartOffset: Int64, logEndOffset: Int64)
    /// Stored bytes failed validation; nothing past `position` in `file` is returned.
    case corruptBatch(file: String, position: Int, reason: BatchFormatError)
    /// A batch offered for append is malformed (bad length, magic, codec, CRC, count).
    case invalidBatch(BatchFormatError)
    /// A batch offered for append is not one the log can place (offsets, counts).
    case unacceptableBatch(String)
    /// A system call failed.
    case io(operation: String, path: String, errno: Int32)
    /// The device is full; the partial write was rolled back.
    case diskFull(path: String)
    /// `truncate(to:)` named an offset inside a batch; truncation works at batch boundaries.
    case truncationInsideBatch(offset: Int64, batchBaseOffset: Int64, batchLastOffset: Int64)
    /// The log was truncated below `offset` before `offset` became durable: the append holding it was
    /// removed (a replica dropping a divergent suffix) and is not acknowledged.
    case truncatedBeforeDurable(offset: Int64, truncatedTo: Int64)
    /// The log was closed (or failed and stopped accepting writes).
    case closed(directory: String)
    /// A configuration value is out of its allowed range.
    case invalidConfig(String)

    public var description: String {
        switch self {
        case .offsetOutOfRange(let requested, let start, let end):
            return "offset \(requested) is out of range: the log holds offsets \(start)..<\(end); "
                + "seek to one in that range (earliest \(start), latest \(end))"
        case .corruptBatch(let file, let position, let reason):
            return "corrupt record batch in \(file) at byte \(position): \(reason); "
                + "run `sluice-log verify` on the partition directory"
        case .invalidBatch(let reason):
            return "record batch rejected: \(reason)"
        case .unacceptableBatch(let reason):
            return "record batch rejected: \(reason)"
        case .io(let operation, let path, let code):
            return "\(operation) failed for \(path): \(String(cString: strerror(code))) (errno \(code))"
        case .diskFull(let path):
            return "no space left on the device holding \(path); the write was rolled back, nothing was "
                + "acknowledged; free space or lower retention, then retry"
        case .truncationInsideBatch(let offset, let base, let last):
            return "cannot truncate to offset \(offset): it lies inside the batch \(base)...\(last); "
                + "truncate to \(base) or \(last + 1)"
        case .truncatedBeforeDurable(let offset, let truncatedTo):
            return "offset \(offset) was truncated away (the log now ends at \(truncatedTo)) before it became durable; "
                + "the append was not acknowledged, retry it"
        case .closed(let directory):
            return "the log in \(directory) is closed"
        case .invalidConfig(let detail):
            return "invalid log configuration: \(detail)"
        }
    }
}
