extension RecordBatch {
    /// Calls `body` with the header and the bytes of each batch laid back to back in `bytes`, as a log
    /// read returns them (whole batches whose CRC the log has checked: only headers are checked here).
    /// Throws at a header that does not parse or a batch that runs past the end of `bytes`.
    public static func forEachBatch(in bytes: UnsafeRawBufferPointer, limits: Limits = .default,
                                    _ body: (RecordBatchHeader, UnsafeRawBufferPointer) throws -> Void) throws {
        var position = 0
        while position < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[position...])
            let header = try validateHeader(rest, limits: limits)
            guard header.totalSize <= rest.count else {
                throw BatchFormatError.truncated(needed: header.totalSize, available: rest.count)
            }
            try body(header, UnsafeRawBufferPointer(rebasing: rest[0..<header.totalSize]))
            position += header.totalSize
        }
    }
}
