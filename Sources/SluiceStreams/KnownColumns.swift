/// The column names a query may use, learnt from sample records: the dotted paths of the members of their
/// JSON object values. The binder checks columns against them to suggest a fix for a misspelt one; the
/// broker samples the source's latest records, `sluice processor test` its input file.
public struct KnownColumns: Sendable {
    /// Most paths collected, so a wide or deep record cannot flood memory.
    public static let pathsMax = 10_000
    /// Deepest nesting followed.
    public static let depthMax = 16

    /// The paths seen so far.
    public private(set) var paths = Set<String>()

    public init() {}

    /// Adds the paths of `value` when it is a JSON object; other values (and non-JSON) add nothing.
    public mutating func add(value: UnsafeRawBufferPointer) {
        guard paths.count < Self.pathsMax,
              let first = value.first(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }), first == UInt8(ascii: "{"),
              let parsed = try? JSONParser.parse(value) else { return }
        add(parsed, prefix: "", depth: 0)
    }

    /// As `add(value:)`, for bytes in an array.
    public mutating func add(value: [UInt8]) {
        value.withUnsafeBytes { add(value: $0) }
    }

    private mutating func add(_ value: JSONValue, prefix: String, depth: Int) {
        guard case .object(let object) = value, depth < Self.depthMax else { return }
        for member in object.members where paths.count < Self.pathsMax {
            let path = prefix.isEmpty ? member.key : prefix + "." + member.key
            paths.insert(path)
            add(member.value, prefix: path, depth: depth + 1)
        }
    }
}
