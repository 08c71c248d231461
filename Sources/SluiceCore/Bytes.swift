// Big-endian fixed-width integers and ZigZag varints, the two integer encodings of the storage format.
//
// Naming follows SwiftNIO: `append…` writes at the end of a byte array; `ByteReader.read…` moves its
// cursor; `get…(at:)` reads at a position and moves nothing.

extension Array where Element == UInt8 {
    /// Appends `value` big-endian.
    @inlinable
    public mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.bigEndian) { self.append(contentsOf: $0) }
    }

    /// Writes `value` big-endian at `position`, which must leave room for it.
    @inlinable
    public mutating func setBigEndian<T: FixedWidthInteger>(_ value: T, at position: Int) {
        precondition(position >= 0 && position + MemoryLayout<T>.size <= count, "setBigEndian out of bounds")
        withUnsafeMutableBytes { $0.storeBytes(of: value.bigEndian, toByteOffset: position, as: T.self) }
    }

    /// Reads a big-endian integer at `position`, which must be in bounds.
    @inlinable
    public func getBigEndian<T: FixedWidthInteger>(at position: Int, as: T.Type = T.self) -> T {
        precondition(position >= 0 && position + MemoryLayout<T>.size <= count, "getBigEndian out of bounds")
        return withUnsafeBytes { T(bigEndian: $0.loadUnaligned(fromByteOffset: position, as: T.self)) }
    }

    /// Appends `value` as a ZigZag LEB128 varint (the record format's `varint` and `varlong`).
    @inlinable
    public mutating func appendVarint(_ value: Int64) {
        var v = UInt64(bitPattern: (value << 1) ^ (value >> 63))
        while v >= 0x80 {
            append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        append(UInt8(v))
    }
}

extension UnsafeRawBufferPointer {
    /// Reads a big-endian integer at `position`; the caller has checked bounds.
    @inlinable
    public func getBigEndian<T: FixedWidthInteger>(at position: Int, as: T.Type = T.self) -> T {
        assert(position >= 0 && position + MemoryLayout<T>.size <= count, "getBigEndian out of bounds")
        return T(bigEndian: loadUnaligned(fromByteOffset: position, as: T.self))
    }
}

/// The number of bytes `value` takes as a ZigZag varint.
@inlinable
public func varintSize(_ value: Int64) -> Int {
    var v = UInt64(bitPattern: (value << 1) ^ (value >> 63))
    var n = 1
    while v >= 0x80 {
        v >>= 7
        n += 1
    }
    return n
}

/// A cursor over borrowed bytes. Reads return nil when the bytes run out or an encoding is malformed;
/// the caller turns that into an error that names what it was reading.
public struct ByteReader {
    public let bytes: UnsafeRawBufferPointer
    public var position: Int

    @inlinable
    public init(_ bytes: UnsafeRawBufferPointer, position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    /// Bytes left after the cursor.
    @inlinable
    public var remaining: Int { bytes.count - position }

    @inlinable
    public mutating func readInt8() -> Int8? {
        guard remaining >= 1 else { return nil }
        defer { position += 1 }
        return Int8(bitPattern: bytes[position])
    }

    @inlinable
    public mutating func readBigEndian<T: FixedWidthInteger>(_: T.Type) -> T? {
        guard remaining >= MemoryLayout<T>.size else { return nil }
        defer { position += MemoryLayout<T>.size }
        return bytes.getBigEndian(at: position, as: T.self)
    }

    /// Reads a ZigZag varint of at most `maxBytes` bytes (5 for varint, 10 for varlong).
    @inlinable
    public mutating func readVarint(maxBytes: Int = 10) -> Int64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var index = position
        for _ in 0..<maxBytes {
            guard index < bytes.count else { return nil }
            let byte = bytes[index]
            index += 1
            // The tenth byte of a varlong may only carry the 64th bit.
            if shift == 63 && byte & 0x7E != 0 { return nil }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 {
                position = index
                let decoded = Int64(bitPattern: (result >> 1) ^ (0 &- (result & 1)))
                if maxBytes <= 5 {
                    guard decoded >= Int64(Int32.min) && decoded <= Int64(Int32.max) else { return nil }
                }
                return decoded
            }
            shift += 7
        }
        return nil
    }

    /// Reads `count` bytes as a new array.
    @inlinable
    public mutating func readBytes(_ count: Int) -> [UInt8]? {
        guard count >= 0, remaining >= count else { return nil }
        defer { position += count }
        return [UInt8](UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)]))
    }

    /// Moves the cursor forward without reading.
    @inlinable
    public mutating func skip(_ count: Int) -> Bool {
        guard count >= 0, remaining >= count else { return false }
        position += count
        return true
    }
}

/// Writes the record format's encodings through a raw pointer into space the caller sized exactly
/// (`RecordBatch.encodedSize`). No bounds checks beyond assertions: the caller computed the size.
@usableFromInline
struct RawWriter {
    @usableFromInline var pointer: UnsafeMutableRawPointer
    @usableFromInline var written = 0

    @inlinable
    init(_ pointer: UnsafeMutableRawPointer) { self.pointer = pointer }

    @inlinable
    mutating func byte(_ value: UInt8) {
        pointer.storeBytes(of: value, toByteOffset: written, as: UInt8.self)
        written += 1
    }

    @inlinable
    mutating func varint(_ value: Int64) {
        var v = UInt64(bitPattern: (value << 1) ^ (value >> 63))
        while v >= 0x80 {
            byte(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        byte(UInt8(v))
    }

    @inlinable
    mutating func bytes(_ values: [UInt8]) {
        values.withUnsafeBytes { raw in
            guard let source = raw.baseAddress else { return }
            (pointer + written).copyMemory(from: source, byteCount: raw.count)
        }
        written += values.count
    }

    @inlinable
    mutating func utf8(_ string: String) {
        var string = string
        string.withUTF8 { buffer in
            guard let source = buffer.baseAddress else { return }
            (pointer + written).copyMemory(from: source, byteCount: buffer.count)
            written += buffer.count
        }
    }

    @inlinable
    mutating func lengthPrefixed(_ field: [UInt8]?) {
        guard let field else {
            varint(-1)
            return
        }
        varint(Int64(field.count))
        bytes(field)
    }
}
