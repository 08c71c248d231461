import CLZ4
import CZstd
import SluiceCore
import Synchronization

/// Compression of a batch's records section with the libraries' standard frame formats:
/// lz4 = LZ4 frame (magic 0x184D2204), zstd = one zstd frame. Both frames carry the content size, which
/// decompression uses as a hint only: the output is always bounded by the caller's limit.
public enum Codecs {
    /// The zstd level we compress at (zstd's own default).
    public static let zstdLevel: Int32 = 3

    /// Compresses `input` with `codec` (`.none` returns it unchanged).
    public static func compress(_ input: UnsafeRawBufferPointer, codec: CompressionCodec) throws -> [UInt8] {
        if codec == .none { return [UInt8](input) }
        let bound = compressBound(input.count, codec: codec)
        return try [UInt8](unsafeUninitializedCapacity: bound) { buffer, written in
            written = try compress(input, codec: codec, into: UnsafeMutableRawBufferPointer(buffer))
        }
    }

    /// Compresses an array.
    public static func compress(_ input: [UInt8], codec: CompressionCodec) throws -> [UInt8] {
        if codec == .none { return input }
        return try input.withUnsafeBytes { raw in try compress(raw, codec: codec) }
    }

    /// The most bytes compressing `count` bytes with `codec` can produce.
    public static func compressBound(_ count: Int, codec: CompressionCodec) -> Int {
        switch codec {
        case .none: return count
        case .lz4:
            var preferences = lz4Preferences(contentSize: count)
            return LZ4F_compressFrameBound(count, &preferences)
        case .zstd: return ZSTD_compressBound(count)
        }
    }

    /// Compresses `input` into `destination` (at least `compressBound` bytes); returns the bytes written.
    public static func compress(
        _ input: UnsafeRawBufferPointer,
        codec: CompressionCodec,
        into destination: UnsafeMutableRawBufferPointer
    ) throws -> Int {
        precondition(destination.count >= compressBound(input.count, codec: codec), "destination below compressBound")
        switch codec {
        case .none:
            if let source = input.baseAddress, let target = destination.baseAddress {
                target.copyMemory(from: source, byteCount: input.count)
            }
            return input.count
        case .lz4: return try lz4Compress(input, into: destination)
        case .zstd: return try zstdCompress(input, into: destination)
        }
    }

    /// Decompresses `input`, refusing to produce more than `limit` bytes.
    public static func decompress(
        _ input: UnsafeRawBufferPointer,
        codec: CompressionCodec,
        limit: Int
    ) throws -> [UInt8] {
        switch codec {
        case .none:
            guard input.count <= limit else { throw BatchFormatError.decompressedTooLarge(limit: limit) }
            return [UInt8](input)
        case .lz4: return try lz4Decompress(input, limit: limit)
        case .zstd: return try zstdDecompress(input, limit: limit)
        }
    }

    // MARK: lz4 frame

    static func lz4Preferences(contentSize: Int) -> LZ4F_preferences_t {
        var preferences = LZ4F_preferences_t()
        preferences.frameInfo.blockSizeID = LZ4F_max64KB
        preferences.frameInfo.blockMode = LZ4F_blockIndependent
        preferences.frameInfo.contentSize = UInt64(contentSize)
        preferences.compressionLevel = 0
        return preferences
    }

    static func lz4Compress(_ input: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) throws -> Int {
        var preferences = lz4Preferences(contentSize: input.count)
        let result = LZ4F_compressFrame(destination.baseAddress, destination.count, input.baseAddress, input.count, &preferences)
        if LZ4F_isError(result) != 0 {
            throw BatchFormatError.compressionFailed("lz4: \(String(cString: LZ4F_getErrorName(result)))")
        }
        return result
    }

    static func lz4Decompress(_ input: UnsafeRawBufferPointer, limit: Int) throws -> [UInt8] {
        var context: OpaquePointer?
        let created = LZ4F_createDecompressionContext(&context, UInt32(LZ4F_VERSION))
        guard LZ4F_isError(created) == 0, let context else {
            throw BatchFormatError.decompressionFailed("lz4: cannot create a decompression context")
        }
        defer { LZ4F_freeDecompressionContext(context) }

        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var consumed = 0
        while true {
            var sourceSize = input.count - consumed
            var destinationSize = chunk.count
            let hint = chunk.withUnsafeMutableBytes { destination in
                LZ4F_decompress(
                    context, destination.baseAddress, &destinationSize,
                    input.baseAddress.map { $0 + consumed }, &sourceSize, nil)
            }
            if LZ4F_isError(hint) != 0 {
                throw BatchFormatError.decompressionFailed("lz4: \(String(cString: LZ4F_getErrorName(hint)))")
            }
            consumed += sourceSize
            guard output.count + destinationSize <= limit else { throw BatchFormatError.decompressedTooLarge(limit: limit) }
            output.append(contentsOf: chunk[0..<destinationSize])
            if hint == 0 {
                guard consumed == input.count else {
                    throw BatchFormatError.decompressionFailed("lz4: \(input.count - consumed) bytes after the end of the frame")
                }
                return output
            }
            if consumed == input.count && destinationSize == 0 {
                throw BatchFormatError.decompressionFailed("lz4: frame truncated")
            }
        }
    }

    // MARK: zstd

    /// Compression contexts are expensive to create; a few are kept for reuse across threads.
    private static let zstdContexts = Mutex<[ZstdContext]>([])
    private static let zstdContextsMax = 8

    private final class ZstdContext: @unchecked Sendable {
        let pointer: OpaquePointer
        init?() {
            guard let pointer = ZSTD_createCCtx() else { return nil }
            self.pointer = pointer
        }
        deinit { ZSTD_freeCCtx(pointer) }
    }

    static func zstdCompress(_ input: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let context = zstdContexts.withLock({ $0.popLast() }) ?? ZstdContext() else {
            throw BatchFormatError.compressionFailed("zstd: cannot create a compression context")
        }
        defer {
            zstdContexts.withLock { pool in
                if pool.count < zstdContextsMax { pool.append(context) }
            }
        }
        let result = ZSTD_compressCCtx(
            context.pointer, destination.baseAddress, destination.count, input.baseAddress, input.count, zstdLevel)
        if ZSTD_isError(result) != 0 {
            throw BatchFormatError.compressionFailed("zstd: \(String(cString: ZSTD_getErrorName(result)))")
        }
        return result
    }

    static func zstdDecompress(_ input: UnsafeRawBufferPointer, limit: Int) throws -> [UInt8] {
        guard let stream = ZSTD_createDStream() else {
            throw BatchFormatError.decompressionFailed("zstd: cannot create a decompression stream")
        }
        defer { ZSTD_freeDStream(stream) }
        var output: [UInt8] = []
        let declared = ZSTD_getFrameContentSize(input.baseAddress, input.count)
        if declared != ZSTD_CONTENTSIZE_ERROR && declared != ZSTD_CONTENTSIZE_UNKNOWN {
            guard declared <= UInt64(limit) else { throw BatchFormatError.decompressedTooLarge(limit: limit) }
            output.reserveCapacity(Int(declared))
        }
        var chunk = [UInt8](repeating: 0, count: 128 * 1024)
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        var lastResult = 0
        repeat {
            var produced = 0
            let result = chunk.withUnsafeMutableBytes { destination in
                var outBuffer = ZSTD_outBuffer(dst: destination.baseAddress, size: destination.count, pos: 0)
                let result = ZSTD_decompressStream(stream, &outBuffer, &inBuffer)
                produced = outBuffer.pos
                return result
            }
            if ZSTD_isError(result) != 0 {
                throw BatchFormatError.decompressionFailed("zstd: \(String(cString: ZSTD_getErrorName(result)))")
            }
            guard output.count + produced <= limit else { throw BatchFormatError.decompressedTooLarge(limit: limit) }
            output.append(contentsOf: chunk[0..<produced])
            lastResult = result
            if produced == 0 && inBuffer.pos == inBuffer.size && result != 0 {
                throw BatchFormatError.decompressionFailed("zstd: frame truncated")
            }
        } while lastResult != 0 || inBuffer.pos < inBuffer.size
        return output
    }
}
