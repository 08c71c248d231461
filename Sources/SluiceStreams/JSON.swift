// JSON values: the record model of processors (issue 4, section 1: "Records are JSON objects").
//
// `JSONValue` keeps integers that fit in 64 bits exact (`.int`) and everything else as `.number(Double)`, so
// `SUM` over integer fields is exact and a serialized integer never gains a ".0". Objects keep their members
// in insertion order: the serializer writes them back in that order, which makes output canonical and
// deterministic (results are compared byte for byte by the exactly-once tests).
//
// Parsing lives in JSON+Parser.swift, the one-pass field extractor in JSON+Extractor.swift.

/// A JSON value (RFC 8259).
///
/// Equality is structural and order-sensitive for objects; `.int(1)` and `.number(1.0)` are different values
/// (use `JSONValue.compare` for numeric ordering across the two). `.number` never holds NaN or an infinity when
/// produced by the parser.
public enum JSONValue: Hashable, Sendable {
    case null
    case bool(Bool)
    /// An integer literal (no fraction, no exponent) that fits in `Int64`.
    case int(Int64)
    /// Any other number.
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

/// A JSON object: members in insertion order.
///
/// Invariant (for parsed objects): member names are unique — the parser rejects duplicates.
public struct JSONObject: Hashable, Sendable, ExpressibleByDictionaryLiteral {
    /// One `"name": value` pair.
    public struct Member: Hashable, Sendable {
        public var key: String
        public var value: JSONValue

        public init(key: String, value: JSONValue) {
            self.key = key
            self.value = value
        }
    }

    /// The members, in insertion order.
    public var members: [Member]

    /// An object with the given members, in that order.
    public init(_ members: [Member] = []) { self.members = members }

    /// An object with the given `(name, value)` pairs, in that order.
    public init(_ pairs: [(String, JSONValue)]) {
        members = pairs.map { Member(key: $0.0, value: $0.1) }
    }

    public init(dictionaryLiteral elements: (String, JSONValue)...) { self.init(elements) }

    /// The value of member `key`, or nil when absent. Linear: records have few members.
    public subscript(key: String) -> JSONValue? {
        for member in members where member.key == key { return member.value }
        return nil
    }

    /// The number of members.
    public var count: Int { members.count }
}

// MARK: Literals (tests and hand-written expectations)

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(JSONObject(elements)) }
}

// MARK: Paths

/// A dotted field path such as `order.customer.id` (issue 4: "columns are their fields, nested with dots").
///
/// Each component names an object member; on an array a component of decimal digits selects an element
/// (`items.0.sku`). A missing member, an index out of range or a step into a scalar yields `.null`.
public struct JSONPath: Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    /// The components, outermost first. Never empty.
    public let components: [String]

    /// Splits `dotted` at every ".". Empty components are kept (`""` is a legal member name).
    public init(_ dotted: String) {
        components = dotted.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    }

    /// A path from explicit components (for names that themselves contain dots).
    public init(components: [String]) {
        precondition(!components.isEmpty, "a JSON path has at least one component")
        self.components = components
    }

    public init(stringLiteral value: String) { self.init(value) }

    public var description: String { components.joined(separator: ".") }
}

extension JSONValue {
    /// The value at `path`, or `.null` when any step is missing.
    public subscript(path: JSONPath) -> JSONValue {
        lookup(path.components[...])
    }

    /// The value at the remaining `components`, or `.null`.
    func lookup(_ components: ArraySlice<String>) -> JSONValue {
        var current = self
        for component in components {
            guard let next = current.child(component) else { return .null }
            current = next
        }
        return current
    }

    /// One path step: a member of an object, or an element of an array when `component` is decimal digits.
    func child(_ component: String) -> JSONValue? {
        switch self {
        case .object(let object):
            return object[component]
        case .array(let elements):
            guard let index = JSONValue.arrayIndex(component), index < elements.count else { return nil }
            return elements[index]
        default:
            return nil
        }
    }

    /// `component` as an array index: ASCII digits only, at most 9 of them (no sign, no spaces).
    static func arrayIndex(_ component: String) -> Int? {
        let utf8 = component.utf8
        guard !utf8.isEmpty, utf8.count <= 9 else { return nil }
        var index = 0
        for byte in utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            index = index * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return index
    }

    /// The member `key` of an object, or nil for anything else.
    public func member(_ key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    /// True for `.null`.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The value as a `Double` when it is a number.
    public var doubleValue: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .number(let value): return value
        default: return nil
        }
    }
}

// MARK: Serialization

extension JSONValue {
    /// Compact canonical JSON: no whitespace, members in insertion order, integers without ".0", doubles in
    /// Swift's shortest round-tripping form, strings with only the escapes RFC 8259 requires (`"`, `\`,
    /// control characters; `\b \f \n \r \t` by name, the rest as lowercase `\u00xx`). Non-finite doubles, which
    /// JSON cannot express, are written as `null`.
    public func serialized() -> String {
        var out: [UInt8] = []
        write(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the canonical serialization to `out` (see `serialized()`).
    public func write(to out: inout [UInt8]) {
        switch self {
        case .null:
            out.append(contentsOf: "null".utf8)
        case .bool(let value):
            out.append(contentsOf: (value ? "true" : "false").utf8)
        case .int(let value):
            JSONValue.writeInteger(value, to: &out)
        case .number(let value):
            if value.isFinite {
                out.append(contentsOf: value.description.utf8)
            } else {
                out.append(contentsOf: "null".utf8)
            }
        case .string(let value):
            JSONValue.writeString(value, to: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                element.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let object):
            out.append(UInt8(ascii: "{"))
            for (index, member) in object.members.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.writeString(member.key, to: &out)
                out.append(UInt8(ascii: ":"))
                member.value.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Decimal digits without allocating a `String`.
    static func writeInteger(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 20 digits max; scratch on the stack
        var count = 0
        withUnsafeMutableBytes(of: &digits) { scratch in
            repeat {
                scratch[count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            for index in stride(from: count - 1, through: 0, by: -1) { out.append(scratch[index]) }
        }
    }

    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    static func writeString(_ value: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x08: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                out.append(contentsOf: "\\u00".utf8)
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0xF)])
            default:
                out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

extension JSONValue: CustomStringConvertible {
    public var description: String { serialized() }
}

// MARK: Ordering and size

extension JSONValue {
    /// A total order over all values, used for MIN/MAX and for the deterministic order of emitted groups:
    /// null < booleans < numbers < strings < arrays < objects. Numbers compare by value, exactly, across `.int`
    /// and `.number`; where they are numerically equal `.int` sorts first. Strings compare by UTF-8 bytes
    /// (code point order), arrays and objects lexicographically.
    /// - Returns: a negative number, zero or a positive number.
    public static func compare(_ lhs: JSONValue, _ rhs: JSONValue) -> Int {
        // The common case when sorting results by group key, before the general rank-and-pair switch.
        if case .string(let a) = lhs, case .string(let b) = rhs { return compareBytes(a, b) }
        let (leftRank, rightRank) = (lhs.rank, rhs.rank)
        if leftRank != rightRank { return leftRank < rightRank ? -1 : 1 }
        switch (lhs, rhs) {
        case (.null, .null):
            return 0
        case (.bool(let a), .bool(let b)):
            return a == b ? 0 : (a ? 1 : -1)
        case (.int(let a), .int(let b)):
            return a == b ? 0 : (a < b ? -1 : 1)
        case (.number(let a), .number(let b)):
            return a == b ? 0 : (a < b ? -1 : 1)
        case (.int(let a), .number(let b)):
            let order = compareIntDouble(a, b)
            return order != 0 ? order : -1
        case (.number(let a), .int(let b)):
            let order = -compareIntDouble(b, a)
            return order != 0 ? order : 1
        case (.string(let a), .string(let b)):
            return compareBytes(a, b)
        case (.array(let a), .array(let b)):
            for (x, y) in zip(a, b) {
                let order = compare(x, y)
                if order != 0 { return order }
            }
            return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
        case (.object(let a), .object(let b)):
            for (x, y) in zip(a.members, b.members) {
                let keyOrder = compareBytes(x.key, y.key)
                if keyOrder != 0 { return keyOrder }
                let order = compare(x.value, y.value)
                if order != 0 { return order }
            }
            return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
        default:
            preconditionFailure("ranks matched but cases did not")
        }
    }

    private var rank: Int {
        switch self {
        case .null: return 0
        case .bool: return 1
        case .int, .number: return 2
        case .string: return 3
        case .array: return 4
        case .object: return 5
        }
    }

    /// Exact comparison of an integer with a double (no rounding of `a` through `Double`).
    static func compareIntDouble(_ a: Int64, _ b: Double) -> Int {
        if b.isNaN { return -1 }
        if b < -9_223_372_036_854_775_808.0 { return 1 }
        if b >= 9_223_372_036_854_775_808.0 { return -1 }
        let floor = b.rounded(.down)
        let whole = Int64(floor)
        if a != whole { return a < whole ? -1 : 1 }
        return floor < b ? -1 : 0
    }

    /// Orders two strings by their UTF-8 bytes (code point order). Native strings are compared over their
    /// contiguous storage, eight bytes at a time: this runs once per comparison when closing windows sort
    /// thousands of results, where walking the UTF-8 views byte by byte dominated. Bridged or otherwise
    /// non-contiguous strings fall back to the views; both paths give the same order.
    static func compareBytes(_ a: String, _ b: String) -> Int {
        let fast = a.utf8.withContiguousStorageIfAvailable { left in
            b.utf8.withContiguousStorageIfAvailable { right in
                compareBytes(UnsafeRawBufferPointer(left), UnsafeRawBufferPointer(right))
            }
        }
        if let fast, let order = fast { return order }
        if a == b { return 0 }
        for (x, y) in zip(a.utf8, b.utf8) where x != y { return x < y ? -1 : 1 }
        return a.utf8.count < b.utf8.count ? -1 : 1
    }

    /// Lexicographic order of two byte buffers (memcmp's, then shorter first): whole words compared as
    /// big-endian integers, whose order is the order of their bytes, then the tail byte by byte.
    static func compareBytes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
        let common = min(a.count, b.count)
        var offset = 0
        while offset + 8 <= common {
            let x = UInt64(bigEndian: a.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            let y = UInt64(bigEndian: b.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            if x != y { return x < y ? -1 : 1 }
            offset += 8
        }
        while offset < common {
            let (x, y) = (a[offset], b[offset])
            if x != y { return x < y ? -1 : 1 }
            offset += 1
        }
        return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
    }

    /// The approximate memory this value holds, in bytes: the inline enum plus heap storage of strings,
    /// arrays and objects. Used for state limits, so it errs on the high side.
    public var approximateBytes: Int {
        let inline = MemoryLayout<JSONValue>.stride
        switch self {
        case .null, .bool, .int, .number:
            return inline
        case .string(let value):
            let count = value.utf8.count
            return count <= 15 ? inline : inline + 32 + count  // small strings are stored inline
        case .array(let elements):
            return elements.reduce(inline + 32) { $0 + $1.approximateBytes }
        case .object(let object):
            return object.members.reduce(inline + 32) {
                $0 + JSONValue.string($1.key).approximateBytes + $1.value.approximateBytes
            }
        }
    }
}
