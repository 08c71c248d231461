import SluiceStreams
import SluiceTestSupport
import Testing

/// The one-pass extractor checked against the full parser plus path lookup.
@Suite("JSON field extractor")
struct JSONExtractorTests {
    @Test func extractsSelectedFields() throws {
        let extractor = JSONFieldExtractor(paths: ["user", "order.customer.id", "order", "amount", "missing.deep",
                                                   "order.items.0", "user"])
        let text = #"{"user":"ann","skip":{"big":[1,2,{"x":"\u00e9"}]},"order":{"customer":{"id":7},"items":["i0"]},"amount":12.5}"#
        let values = try Array(text.utf8).withUnsafeBytes { try extractor.extract(from: $0) }
        let order: JSONValue = ["customer": ["id": 7], "items": ["i0"]]
        #expect(values == ["ann", 7, order, 12.5, nil, "i0", "ann"])
    }

    @Test func matchesEscapedMemberNames() throws {
        let extractor = JSONFieldExtractor(paths: ["é", "a\"b"])
        let text = #"{"\u00e9":1,"a\"b":2}"#
        #expect(try Array(text.utf8).withUnsafeBytes { try extractor.extract(from: $0) } == [1, 2])
    }

    @Test func rejectsDuplicateSelectedMembersAndMalformedSkippedValues() {
        let extractor = JSONFieldExtractor(paths: ["a"])
        #expect(extractResult(extractor, Array(#"{"a":1,"a":2}"#.utf8)) == .failure(JSONParseError(.duplicateKey("a"), at: 7)))
        #expect(extractResult(extractor, Array(#"{"a":1,"b":[1,}"#.utf8)) == .failure(JSONParseError(.unexpectedByte(UInt8(ascii: "}")), at: 14)))
        #expect(extractResult(extractor, Array(#"{"a":1,"b":"\x"}"#.utf8)) == .failure(JSONParseError(.invalidEscape, at: 12)))
        #expect(extractResult(extractor, Array(#"{"a":1} x"#.utf8)) == .failure(JSONParseError(.trailingBytes, at: 8)))
        #expect(extractResult(extractor, [0x7B, 0x22, 0x62, 0x22, 0x3A, 0x22, 0xFF, 0x22, 0x7D]) == .failure(JSONParseError(.invalidUTF8, at: 6)))
    }

    @Test func reusesTheResultBuffer() throws {
        let extractor = JSONFieldExtractor(paths: ["a", "b"])
        var results: [JSONValue] = []
        try Array(#"{"a":1,"b":2}"#.utf8).withUnsafeBytes { try extractor.extract(from: $0, into: &results) }
        #expect(results == [1, 2])
        try Array(#"{"b":3}"#.utf8).withUnsafeBytes { try extractor.extract(from: $0, into: &results) }
        #expect(results == [nil, 3])
    }

    /// A path that exists in `value` (a random walk), or a random one that mostly does not.
    static func randomPath(in value: JSONValue, _ generator: inout JSONGenerator) -> JSONPath {
        var components: [String] = []
        var current = value
        while components.isEmpty || generator.random.chance(0.6) {
            switch current {
            case .object(let object) where !object.members.isEmpty && generator.random.chance(0.85):
                let member = object.members[generator.random.int(0...object.count - 1)]
                components.append(member.key)
                current = member.value
            case .array(let elements) where !elements.isEmpty && generator.random.chance(0.85):
                let index = generator.random.int(0...elements.count - 1)
                components.append(String(index))
                current = elements[index]
            default:
                components.append(generator.keyPool[generator.random.int(0...generator.keyPool.count - 1)])
                current = .null
            }
        }
        return JSONPath(components: components)
    }

    @Test func agreesWithFullParseOnRandomDocuments() throws {
        var generator = JSONGenerator(SeededRandom.fromEnvironment())
        let seed = generator.random.seed
        for iteration in 0..<2000 {
            let document: JSONValue = generator.random.chance(0.95) ? .object(generator.object()) : generator.value()
            let bytes = Array(generator.render(document).utf8)
            let paths = (0..<generator.random.int(1...5)).map { _ in Self.randomPath(in: document, &generator) }
            let expected = paths.map { document[$0] }
            let extractor = JSONFieldExtractor(paths: paths)
            let actual = extractResult(extractor, bytes)
            #expect(actual == .success(expected), "seed \(seed) #\(iteration): \(paths) in \(document)")
        }
    }
}
