// Reading the golden vectors of storage-format/vectors/ (see storage-format/README.md): the annotated hex
// files and manifest.json. SluiceCoreTests decodes the batch vectors, SluiceLogTests the index and
// checkpoint vectors; both use this one parser.

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Why a golden vector could not be read.
public struct GoldenVectorError: Error, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// `manifest.json`: a comment and the vectors.
public struct GoldenVectorManifest: Decodable, Sendable {
    public var comment: String?
    public var vectors: [GoldenVector]

    /// The vectors of one `kind` (`batch`, `offsetIndex`, `timeIndex`, `recoveryPoint`, `logStartOffset`).
    public func vectors(ofKind kind: String) -> [GoldenVector] {
        vectors.filter { $0.kind == kind }
    }
}

/// One element of the manifest's `vectors`. Which optional fields are present depends on `kind`
/// (the table in storage-format/README.md).
public struct GoldenVector: Decodable, Sendable {
    public var file: String
    public var kind: String
    /// Prose for humans.
    public var description: String
    /// nil when the file must decode; otherwise the class of error (`crc`, `length`, `magic`, …).
    public var expectError: String?

    // Batches.
    public var baseOffset: Int64?
    public var leaderEpoch: Int32?
    public var attributes: Int16?
    public var lastOffsetDelta: Int32?
    public var baseTimestamp: Int64?
    public var maxTimestamp: Int64?
    public var producerId: Int64?
    public var producerEpoch: Int16?
    public var baseSequence: Int32?
    public var recordCount: Int32?
    /// The CRC stored in the file (batches and checkpoints).
    public var crc: UInt32?
    public var records: [GoldenRecord]?
    /// `batch-bad-crc` only: the CRC of the damaged bytes and the position of the flipped byte.
    public var computedCrc: UInt32?
    public var corruptBytePosition: Int?

    // Indexes (`baseOffset` above is the segment base): `[relativeOffset, position]` for the offset
    // index, `[timestamp, relativeOffset]` for the time index.
    public var entries: [[Int64]]?

    // Checkpoints.
    public var magic: String?
    public var version: UInt16?
    public var flags: UInt16?
    public var recoveryOffset: Int64?
    public var segmentBaseOffset: Int64?
    public var position: Int64?
    public var logStartOffset: Int64?

    /// The vector's bytes, read from its `.hex` file.
    public func bytes() throws -> [UInt8] {
        try GoldenVectors.bytes(of: file)
    }
}

/// A record as the manifest describes it. Keys and values are UTF-8 text or null.
public struct GoldenRecord: Decodable, Sendable, Hashable {
    public var offsetDelta: Int32
    public var timestampDelta: Int64
    public var key: String?
    public var value: String?
    public var headers: [GoldenHeader]
    /// `baseOffset + offsetDelta`.
    public var offset: Int64
    /// The effective timestamp: `baseTimestamp + timestampDelta`, or `maxTimestamp` under LogAppendTime.
    public var timestamp: Int64
}

/// A record header as the manifest describes it.
public struct GoldenHeader: Decodable, Sendable, Hashable {
    public var key: String
    public var value: String?
}

/// Locating, reading and parsing the golden vectors.
public enum GoldenVectors {
    /// `<repository>/storage-format/vectors`.
    public static var directory: String { repositoryRoot() + "/storage-format/vectors" }

    /// Reads and decodes `manifest.json`.
    public static func loadManifest() throws -> GoldenVectorManifest {
        let path = directory + "/manifest.json"
        guard let bytes = readFileBytes(path) else { throw GoldenVectorError("cannot read \(path)") }
        return try JSONDecoder().decode(GoldenVectorManifest.self, from: Data(bytes))
    }

    /// The bytes of the `.hex` file `name` in the vectors directory.
    public static func bytes(of name: String) throws -> [UInt8] {
        let path = directory + "/" + name
        guard let text = readFileBytes(path) else { throw GoldenVectorError("cannot read \(path)") }
        do {
            return try parseHex(String(decoding: text, as: UTF8.self))
        } catch let error as GoldenVectorError {
            throw GoldenVectorError("\(name): \(error.description)")
        }
    }

    /// Parses the vectors' hex format: pairs of hex digits, one byte each; whitespace is ignored and `#`
    /// starts a comment that runs to the end of the line. Anything else is an error, and so is an odd
    /// number of digits.
    public static func parseHex(_ text: String) throws -> [UInt8] {
        var bytes: [UInt8] = []
        var high: UInt8?
        var inComment = false
        var line = 1
        for scalar in text.unicodeScalars {
            if scalar == "\n" {
                inComment = false
                line += 1
                continue
            }
            if inComment { continue }
            if scalar == "#" {
                inComment = true
                continue
            }
            if scalar.properties.isWhitespace { continue }
            guard let digit = hexDigitValue(scalar) else {
                throw GoldenVectorError("line \(line): '\(scalar)' is not a hex digit")
            }
            if let first = high {
                bytes.append(first << 4 | digit)
                high = nil
            } else {
                high = digit
            }
        }
        guard high == nil else { throw GoldenVectorError("odd number of hex digits") }
        return bytes
    }

    private static func hexDigitValue(_ scalar: Unicode.Scalar) -> UInt8? {
        switch scalar.value {
        case 0x30...0x39: return UInt8(scalar.value - 0x30)
        case 0x41...0x46: return UInt8(scalar.value - 0x41 + 10)
        case 0x61...0x66: return UInt8(scalar.value - 0x61 + 10)
        default: return nil
        }
    }

    /// UTF-8 bytes of a manifest string (nil stays nil).
    public static func utf8(_ text: String?) -> [UInt8]? {
        text.map { Array($0.utf8) }
    }
}
