import CSluiceSys
// Thin, typed wrappers over the POSIX calls the log uses. Every failure becomes a `LogError` naming the
// operation and the path. Callers run these off event-loop threads: they block.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An open file. The descriptor is closed when the last reference goes away, so a reader that still
/// holds a segment keeps reading it even after the writer renamed or unlinked the file.
///
/// Thread safety: positional reads and writes (`pread`/`pwrite`) may run concurrently; callers
/// serialise writers.
public final class LogFile: @unchecked Sendable {
    public let path: String
    let descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    deinit { _ = Glibc.close(descriptor) }

    /// Opens `path` for reading and writing; creates it when `create` is set.
    public static func open(_ path: String, create: Bool = false) throws -> LogFile {
        let flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0)
        let fd = Glibc.open(path, flags, 0o644)
        guard fd >= 0 else { throw LogError.io(operation: "open", path: path, errno: errno) }
        return LogFile(path: path, descriptor: fd)
    }

    /// Opens `path` read-only (inspection tools).
    public static func openReadOnly(_ path: String) throws -> LogFile {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw LogError.io(operation: "open", path: path, errno: errno) }
        return LogFile(path: path, descriptor: fd)
    }

    /// The file's current size in bytes.
    public func size() throws -> Int {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw LogError.io(operation: "fstat", path: path, errno: errno) }
        return Int(info.st_size)
    }

    /// Reads into `buffer` from `position` until it is full or the file ends; returns the bytes read.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at position: Int) throws -> Int {
        guard let base = buffer.baseAddress else { return 0 }
        var done = 0
        while done < buffer.count {
            let n = pread(descriptor, base + done, buffer.count - done, off_t(position + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw LogError.io(operation: "pread at \(position + done)", path: path, errno: errno)
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Reads up to `count` bytes from `position` (fewer at the end of the file).
    public func read(count: Int, at position: Int) throws -> [UInt8] {
        guard count > 0 else { return [] }
        var failure: Error?
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            do {
                initialized = try read(into: UnsafeMutableRawBufferPointer(buffer), at: position)
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        return bytes
    }

    /// Writes all of `bytes` at `position`. On failure the caller truncates back to `position`.
    public func write(_ bytes: UnsafeRawBufferPointer, at position: Int) throws {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let n = pwrite(descriptor, base + done, bytes.count - done, off_t(position + done))
            if n < 0 {
                if errno == EINTR { continue }
                if errno == ENOSPC || errno == EDQUOT { throw LogError.diskFull(path: path) }
                throw LogError.io(operation: "pwrite at \(position + done)", path: path, errno: errno)
            }
            done += n
        }
    }

    /// Writes several buffers back to back at `position` with `pwritev` (one system call in the usual
    /// case). On failure the caller truncates back to `position`.
    public func write(_ parts: [UnsafeRawBufferPointer], at position: Int) throws {
        var vectors = parts.filter { $0.count > 0 }.map { iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count) }
        var done = 0
        var first = 0
        while first < vectors.count {
            let n = vectors[first...].withUnsafeBufferPointer { buffer in
                pwritev(descriptor, buffer.baseAddress, Int32(buffer.count), off_t(position + done))
            }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == ENOSPC || errno == EDQUOT { throw LogError.diskFull(path: path) }
                throw LogError.io(operation: "pwritev at \(position + done)", path: path, errno: errno)
            }
            done += n
            var left = n
            while first < vectors.count && left >= vectors[first].iov_len {
                left -= vectors[first].iov_len
                first += 1
            }
            if left > 0, first < vectors.count {
                vectors[first].iov_base = vectors[first].iov_base.map { $0 + left }
                vectors[first].iov_len -= left
            }
        }
    }

    /// Writes an array at `position`.
    public func write(_ bytes: [UInt8], at position: Int) throws {
        try bytes.withUnsafeBytes { try write($0, at: position) }
    }

    /// Forces written data (and the size) to stable storage.
    public func sync() throws {
        while fdatasync(descriptor) != 0 {
            if errno == EINTR { continue }
            throw LogError.io(operation: "fdatasync", path: path, errno: errno)
        }
    }

    /// Starts writing dirty pages of `offset..<offset+count` to the device without waiting (Linux
    /// `sync_file_range(SYNC_FILE_RANGE_WRITE)`); a no-op elsewhere. Not a durability guarantee: it
    /// spreads the device work so a later fsync has little left to do.
    public func startWriteback(offset: Int, count: Int) {
        _ = sluice_start_writeback(descriptor, Int64(offset), Int64(count))
    }

    /// Cuts the file to `size` bytes.
    public func truncate(to size: Int) throws {
        guard ftruncate(descriptor, off_t(size)) == 0 else {
            throw LogError.io(operation: "ftruncate to \(size)", path: path, errno: errno)
        }
    }
}

/// Directory-level operations: listing, renames, unlinks and the fsyncs that make them durable.
public enum FileSystem {
    /// Creates `path` and its parents when missing.
    public static func createDirectory(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw LogError.io(operation: "mkdir", path: prefix, errno: errno)
            }
            prefix += "/"
        }
    }

    /// Names of the entries in `path` (without `.` and `..`).
    public static func list(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw LogError.io(operation: "opendir", path: path, errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    /// Size of the file at `path`, nil when it does not exist.
    public static func size(_ path: String) -> Int? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Int(info.st_size)
    }

    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Atomically renames `from` to `to` (replacing `to`). Durable after `syncDirectory`.
    public static func rename(_ from: String, to: String) throws {
        guard Glibc.rename(from, to) == 0 else {
            throw LogError.io(operation: "rename to \(to)", path: from, errno: errno)
        }
    }

    /// Removes a file; a missing file is not an error.
    public static func remove(_ path: String) throws {
        guard unlink(path) == 0 || errno == ENOENT else { throw LogError.io(operation: "unlink", path: path, errno: errno) }
    }

    /// Makes creations, renames and removals in the directory durable.
    public static func syncDirectory(_ path: String) throws {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw LogError.io(operation: "open directory", path: path, errno: errno) }
        defer { _ = Glibc.close(fd) }
        guard fsync(fd) == 0 else { throw LogError.io(operation: "fsync directory", path: path, errno: errno) }
    }

    /// Replaces `path` with `bytes` crash-safely: write `path.tmp`, fsync it, rename over `path`,
    /// fsync the directory. A reader sees the old or the new content, never a mix.
    public static func writeAtomically(_ bytes: [UInt8], to path: String, directory: String) throws {
        let temporary = path + ".tmp"
        let file = try LogFile.open(temporary, create: true)
        try file.truncate(to: 0)
        try file.write(bytes, at: 0)
        try file.sync()
        try rename(temporary, to: path)
        try syncDirectory(directory)
    }

    /// Reads a whole small file, nil when it does not exist.
    public static func readSmallFile(_ path: String, limit: Int) throws -> [UInt8]? {
        guard exists(path) else { return nil }
        let file = try LogFile.openReadOnly(path)
        return try file.read(count: min(try file.size(), limit), at: 0)
    }
}

/// A read-only shared mapping of a whole file, unmapped when the last reference goes.
///
/// Only immutable files are mapped (sealed segments): a file that shrank under a mapping would raise
/// SIGBUS on access, so the log never truncates a sealed segment in place (it rewrites it to a new
/// file and renames that over; the mapping keeps the old inode alive).
public final class MappedFile: @unchecked Sendable {
    public let bytes: UnsafeRawBufferPointer

    /// Maps the first `size` bytes of `file`; nil for an empty file.
    public init?(_ file: LogFile, size: Int) throws {
        guard size > 0 else { return nil }
        let address = mmap(nil, size, PROT_READ, MAP_SHARED, file.descriptor, 0)
        guard let address, address != MAP_FAILED else {
            throw LogError.io(operation: "mmap of \(size) bytes", path: file.path, errno: errno)
        }
        _ = madvise(address, size, MADV_SEQUENTIAL)
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }
}
