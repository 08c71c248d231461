import NIOCore

/// A request or response body that does not parse. The broker answers it with `invalidRequest` and
/// the reason; it never crashes on one.
public struct WireDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// Reads protocol primitives (storage-format/protocol.md, "Primitive types") from a buffer, moving its
/// reader index. Every length is checked against the bytes actually present before anything is
/// allocated, so a hostile length costs nothing.
public struct WireReader {
    public var buffer: ByteBuffer

    public init(_ buffer: ByteBuffer) { self.buffer = buffer }

    public var remaining: Int { buffer.readableBytes }

    @inline(__always)
    private mutating func integer<T: FixedWidthInteger>(_ field: StaticString) throws -> T {
        guard let value = buffer.readInteger(endianness: .big, as: T.self) else {
            throw WireDecodingError("truncated: \(field) needs \(MemoryLayout<T>.size) bytes, \(buffer.readableBytes) left")
        }
        return value
    }

    public mutating func readInt8(_ field: StaticString = "int8") throws -> Int8 { try integer(field) }
    public mutating func readInt16(_ field: StaticString = "int16") throws -> Int16 { try integer(field) }
    public mutating func readInt32(_ field: StaticString = "int32") throws -> Int32 { try integer(field) }
    public mutating func readInt64(_ field: StaticString = "int64") throws -> Int64 { try integer(field) }

    public mutating func readBool(_ field: StaticString = "bool") throws -> Bool {
        switch try readInt8(field) {
        case 0: return false
        case 1: return true
        case let other: throw WireDecodingError("\(field): boolean byte must be 0 or 1, got \(other)")
        }
    }

    /// int16 length (−1 = null) then UTF-8.
    public mutating func readNullableString(_ field: StaticString = "string") throws -> String? {
        let length = Int(try readInt16(field))
        if length == -1 { return nil }
        guard length >= 0 else { throw WireDecodingError("\(field): negative string length \(length)") }
        guard length <= buffer.readableBytes else {
            throw WireDecodingError("truncated: \(field) says \(length) bytes, \(buffer.readableBytes) left")
        }
        // NIO's readString repairs invalid UTF-8 with U+FFFD; the protocol refuses it instead.
        guard let view = buffer.readSlice(length: length), let string = String(validating: view.readableBytesView, as: UTF8.self) else {
            throw WireDecodingError("\(field): not valid UTF-8")
        }
        return string
    }

    public mutating func readString(_ field: StaticString = "string") throws -> String {
        guard let string = try readNullableString(field) else { throw WireDecodingError("\(field): null where a string is required") }
        return string
    }

    /// int32 length (−1 = null) then bytes, returned as a slice of the same storage (no copy).
    public mutating func readNullableBytes(_ field: StaticString = "bytes") throws -> ByteBuffer? {
        let length = Int(try readInt32(field))
        if length == -1 { return nil }
        guard length >= 0 else { throw WireDecodingError("\(field): negative byte length \(length)") }
        guard length <= buffer.readableBytes, let slice = buffer.readSlice(length: length) else {
            throw WireDecodingError("truncated: \(field) says \(length) bytes, \(buffer.readableBytes) left")
        }
        return slice
    }

    public mutating func readBytes(_ field: StaticString = "bytes") throws -> ByteBuffer {
        guard let bytes = try readNullableBytes(field) else { throw WireDecodingError("\(field): null where bytes are required") }
        return bytes
    }

    /// int32 count (−1 = null) then elements. Every element takes at least one byte, so a count above
    /// the bytes left is refused before any element is read; so is a count above `countMax` (the error
    /// names `limit`).
    public mutating func readNullableArray<T>(_ field: StaticString = "array", countMax: Int = Int.max, limit: StaticString = "",
                                              _ element: (inout WireReader) throws -> T) throws -> [T]? {
        let count = Int(try readInt32(field))
        if count == -1 { return nil }
        guard count >= 0 else { throw WireDecodingError("\(field): negative array count \(count)") }
        guard count <= countMax else {
            throw WireDecodingError("\(field): \(count) elements; the limit is \(countMax) (\(limit))")
        }
        guard count <= buffer.readableBytes else {
            throw WireDecodingError("truncated: \(field) says \(count) elements, only \(buffer.readableBytes) bytes left")
        }
        var result: [T] = []
        result.reserveCapacity(count)
        for _ in 0..<count { result.append(try element(&self)) }
        return result
    }

    /// As `readNullableArray`, never null.
    public mutating func readArray<T>(_ field: StaticString = "array", countMax: Int = Int.max, limit: StaticString = "",
                                      _ element: (inout WireReader) throws -> T) throws -> [T] {
        guard let array = try readNullableArray(field, countMax: countMax, limit: limit, element) else { throw WireDecodingError("\(field): null where an array is required") }
        return array
    }

    /// Fails when bytes are left over: a body longer than its fields is malformed, not ignorable.
    public func expectEnd(_ what: String) throws {
        guard buffer.readableBytes == 0 else {
            throw WireDecodingError("\(what): \(buffer.readableBytes) unexpected bytes after the last field")
        }
    }
}

/// Writes protocol primitives, big-endian, into a buffer.
public struct WireWriter {
    public var buffer: ByteBuffer

    public init(_ buffer: ByteBuffer) { self.buffer = buffer }

    public mutating func write(_ value: Int8) { buffer.writeInteger(value, endianness: .big) }
    public mutating func write(_ value: Int16) { buffer.writeInteger(value, endianness: .big) }
    public mutating func write(_ value: Int32) { buffer.writeInteger(value, endianness: .big) }
    public mutating func write(_ value: Int64) { buffer.writeInteger(value, endianness: .big) }
    public mutating func write(_ value: Bool) { write(Int8(value ? 1 : 0)) }

    /// Strings longer than `Int16.max` bytes are a programmer error: every string field has a smaller limit.
    public mutating func write(_ string: String?) {
        guard let string else { write(Int16(-1)); return }
        let count = string.utf8.count
        precondition(count <= Int(Int16.max), "string field of \(count) bytes exceeds the protocol's int16 length")
        write(Int16(count))
        buffer.writeString(string)
    }

    public mutating func write(bytes: ByteBuffer?) {
        guard var bytes else { write(Int32(-1)); return }
        write(Int32(bytes.readableBytes))
        buffer.writeBuffer(&bytes)
    }

    public mutating func write(bytes: [UInt8]?) {
        guard let bytes else { write(Int32(-1)); return }
        write(Int32(bytes.count))
        buffer.writeBytes(bytes)
    }

    public mutating func write<T>(_ array: [T]?, _ element: (inout WireWriter, T) -> Void) {
        guard let array else { write(Int32(-1)); return }
        write(Int32(array.count))
        for item in array { element(&self, item) }
    }
}

/// A request or response body: encoded after the frame header, decoded from exactly the body's bytes.
public protocol WireMessage: Sendable {
    init(from reader: inout WireReader, version: Int16) throws
    func encode(to writer: inout WireWriter, version: Int16)
}

extension WireMessage {
    /// Decodes a whole body; bytes left over are an error.
    public static func decode(_ buffer: ByteBuffer, version: Int16) throws -> Self {
        var reader = WireReader(buffer)
        let message = try Self(from: &reader, version: version)
        try reader.expectEnd("\(Self.self)")
        return message
    }
}
