import SluiceStreams
import SluiceTestSupport
import Testing

/// The strict parser, the canonical serializer and dotted paths.
@Suite("JSON")
struct JSONTests {
    // MARK: Accepting

    @Test(arguments: [
        ("null", JSONValue.null), ("true", true), ("false", false), (" \t\r\n0 ", 0), ("-0", 0),
        ("123", 123), ("-9223372036854775808", .int(Int64.min)), ("9223372036854775807", .int(Int64.max)),
        ("9223372036854775808", .number(9_223_372_036_854_775_808.0)),
        ("-9223372036854775809", .number(-9_223_372_036_854_775_809.0)),
        ("1.5", 1.5), ("-0.25", -0.25), ("1e3", 1000.0), ("1E+3", 1000.0), ("25e-1", 2.5), ("0.1", 0.1),
        ("1.0", .number(1.0)), ("12345678901234567890123", 1.2345678901234568e22),
        ("0.30000000000000004", 0.30000000000000004), ("2.2250738585072014e-308", 2.2250738585072014e-308),
        ("1e-400", 0.0), ("4.9e-324", .number(Double.leastNonzeroMagnitude)),
        (#""""#, ""), (#""a\"b\\c\/d""#, "a\"b\\c/d"), (#""\b\f\n\r\t""#, "\u{08}\u{0C}\n\r\t"),
        (#""\u0041\u00e9\u65E5""#, "Aé日"), (#""\ud83d\ude00""#, "😀"), ("\"日本\"", "日本"),
        ("[]", []), ("[1,[2,[]]]", [1, [2, []]]), (" { } ", [:]),
        (#"{"a":1,"b":{"c":[true,null]}}"#, ["a": 1, "b": ["c": [true, nil]]]),
    ] as [(String, JSONValue)])
    func parsesValidDocuments(text: String, expected: JSONValue) {
        #expect(parseResult(text) == .success(expected), "\(text)")
    }

    // MARK: Rejecting

    @Test(arguments: [
        ("", JSONParseError.Kind.unexpectedEnd, 0), ("   ", .unexpectedEnd, 3), ("nul", .unexpectedEnd, 3),
        ("nulL", .unexpectedByte(UInt8(ascii: "L")), 3), ("True", .unexpectedByte(UInt8(ascii: "T")), 0),
        ("01", .invalidNumber, 1), ("-", .unexpectedEnd, 1), ("-a", .invalidNumber, 1), ("+1", .unexpectedByte(UInt8(ascii: "+")), 0),
        (".5", .unexpectedByte(UInt8(ascii: ".")), 0), ("5.", .unexpectedEnd, 2), ("5.e3", .invalidNumber, 2),
        ("1e", .unexpectedEnd, 2), ("1e+", .unexpectedEnd, 3), ("1e400", .numberOutOfRange, 0),
        ("-1e400", .numberOutOfRange, 0), ("NaN", .unexpectedByte(UInt8(ascii: "N")), 0),
        ("\"abc", .unexpectedEnd, 4), ("\"a\nb\"", .controlCharacterInString, 2), ("\"\\x\"", .invalidEscape, 1),
        ("\"\\u12g4\"", .invalidEscape, 5), ("\"\\ud800\"", .invalidEscape, 1), ("\"\\udc00\"", .invalidEscape, 1),
        ("\"\\ud800\\u0041\"", .invalidEscape, 1), ("\"\\u12", .unexpectedEnd, 5),
        ("[1,]", .unexpectedByte(UInt8(ascii: "]")), 3), ("[1 2]", .unexpectedByte(UInt8(ascii: "2")), 3),
        ("[", .unexpectedEnd, 1), ("{\"a\"}", .unexpectedByte(UInt8(ascii: "}")), 4), ("{a:1}", .unexpectedByte(UInt8(ascii: "a")), 1),
        ("{\"a\":1,}", .unexpectedByte(UInt8(ascii: "}")), 7), ("{\"a\":1,\"a\":2}", .duplicateKey("a"), 7),
        ("1 2", .trailingBytes, 2), ("{}x", .trailingBytes, 2),
    ] as [(String, JSONParseError.Kind, Int)])
    func rejectsMalformedDocuments(text: String, kind: JSONParseError.Kind, position: Int) {
        #expect(parseResult(text) == .failure(JSONParseError(kind, at: position)), "\(text)")
    }

    @Test(arguments: [
        ([0x22, 0xC3, 0x22], 1), ([0x22, 0xC0, 0x80, 0x22], 1), ([0x22, 0xE0, 0x80, 0x80, 0x22], 1),
        ([0x22, 0xED, 0xA0, 0x80, 0x22], 1), ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], 1),
        ([0x22, 0xF8, 0x88, 0x80, 0x80, 0x80, 0x22], 1), ([0x22, 0x61, 0x80, 0x22], 2), ([0x22, 0xE6, 0x97], 1),
    ] as [([UInt8], Int)])
    func rejectsMalformedUTF8(bytes: [UInt8], position: Int) {
        #expect(parseResult(bytes) == .failure(JSONParseError(.invalidUTF8, at: position)), "\(bytes)")
    }

    @Test func limitsAreEnforced() {
        let nested64 = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect((try? JSONParser.parse(nested64)) != nil)
        let nested65 = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(parseResult(nested65) == .failure(JSONParseError(.depthLimitExceeded, at: 64)))
        let objects65 = String(repeating: "{\"a\":", count: 65) + "1" + String(repeating: "}", count: 65)
        #expect(parseResult(objects65) == .failure(JSONParseError(.depthLimitExceeded, at: 5 * 64)))

        let small = JSONLimits(depthMax: 2, documentBytesMax: 20, stringBytesMax: 3, membersMax: 2)
        #expect(parseResult("\"abc\"", limits: small) == .success("abc"))
        #expect(parseResult("\"abcd\"", limits: small) == .failure(JSONParseError(.stringTooLong, at: 1)))
        #expect(parseResult("[1,2]", limits: small) == .success([1, 2]))
        #expect(parseResult("[1,2,3]", limits: small) == .failure(JSONParseError(.tooManyMembers, at: 5)))
        #expect(parseResult("{\"a\":1,\"b\":2,\"c\":3}", limits: small) == .failure(JSONParseError(.tooManyMembers, at: 13)))
        #expect(parseResult(String(repeating: " ", count: 20) + "1", limits: small)
                == .failure(JSONParseError(.documentTooLarge, at: 0)))
    }

    @Test func duplicateKeysAreFoundInLargeObjects() {
        let members = (0..<40).map { "\"k\($0)\":\($0)" } + ["\"k7\":0"]
        let text = "{" + members.joined(separator: ",") + "}"
        guard case .failure(let error) = parseResult(text) else {
            Issue.record("accepted a duplicate key")
            return
        }
        #expect(error.kind == .duplicateKey("k7"))
    }

    /// Every proper prefix of an object document is incomplete, so it must be rejected.
    @Test func everyPrefixOfAnObjectIsRejected() {
        let text = #"{"a": [1, -2.5e3, "x\u00e9\ud83d\ude00"], "b": {"c": null, "d": true}, "e": "日本"}"#
        let bytes = Array(text.utf8)
        #expect((try? JSONParser.parse(bytes)) != nil)
        for count in 0..<bytes.count {
            if case .success(let value) = parseResult(Array(bytes[..<count])) {
                Issue.record("prefix of \(count) bytes parsed as \(value)")
            }
        }
    }

    // MARK: Serializing

    @Test(arguments: [
        (JSONValue.null, "null"), (true, "true"), (0, "0"), (-42, "-42"), (.int(Int64.min), "-9223372036854775808"),
        (1.5, "1.5"), (.number(3.0), "3.0"), (1e21, "1e+21"), (.number(.nan), "null"), (.number(-.infinity), "null"),
        ("a\"b\\c/d\u{08}\u{0C}\n\r\t\u{01}\u{1F}é😀", #""a\"b\\c/d\b\f\n\r\t\u0001\u001fé😀""#),
        ([1, "x", [], [:]], #"[1,"x",[],{}]"#), (["z": 1, "a": ["b": nil]], #"{"z":1,"a":{"b":null}}"#),
    ] as [(JSONValue, String)])
    func serializesCanonically(value: JSONValue, expected: String) {
        #expect(value.serialized() == expected)
    }

    /// serialize(parse(render(v))) == serialize(v) and parse(...) == v, over random values rendered with
    /// random whitespace and escapes.
    @Test func randomValuesRoundTrip() {
        var generator = JSONGenerator(SeededRandom.fromEnvironment())
        let seed = generator.random.seed
        for iteration in 0..<3000 {
            let value = generator.value()
            let canonical = value.serialized()
            let noisy = generator.render(value)
            let parsed = parseResult(noisy)
            guard case .success(let result) = parsed else {
                Issue.record("seed \(seed) #\(iteration): \(noisy) → \(parsed)")
                return
            }
            #expect(result == value, "seed \(seed) #\(iteration): \(noisy)")
            #expect(result.serialized() == canonical, "seed \(seed) #\(iteration): \(noisy)")
            #expect(parseResult(canonical) == .success(value), "seed \(seed) #\(iteration): \(canonical)")
        }
    }

    /// Random corruption of valid documents: a typed error or a value, never a crash; whatever parses
    /// serializes to text that parses back to the same value.
    @Test func corruptedDocumentsNeverCrash() {
        var generator = JSONGenerator(SeededRandom.fromEnvironment())
        let seed = generator.random.seed
        for iteration in 0..<2000 {
            var bytes = Array(generator.render(.object(generator.object())).utf8)
            guard !bytes.isEmpty else { continue }
            for _ in 0..<generator.random.int(1...3) {
                let position = generator.random.int(0...bytes.count - 1)
                switch generator.random.int(0...2) {
                case 0: bytes[position] = UInt8(truncatingIfNeeded: generator.random.next())
                case 1: bytes.remove(at: position)
                default:
                    let tokens = Array("{}[]\":,\\u0e-".utf8)
                    bytes.insert(tokens[generator.random.int(0...tokens.count - 1)], at: position)
                }
                if bytes.isEmpty { break }
            }
            let extractor = JSONFieldExtractor(paths: ["a", "b.c", "id", "order.0"])
            switch parseResult(bytes) {
            case .success(let value):
                #expect(parseResult(value.serialized()) == .success(value), "seed \(seed) #\(iteration)")
                let expected = extractor.paths.map { value[$0] }
                #expect(extractResult(extractor, bytes) == .success(expected), "seed \(seed) #\(iteration)")
            case .failure(let error):
                // The extractor checks the same grammar; only unselected duplicate names may slip through.
                if case .duplicateKey = error.kind { break }
                if case .success = extractResult(extractor, bytes) {
                    Issue.record("seed \(seed) #\(iteration): extractor accepted what the parser rejected (\(error))")
                }
            }
        }
    }

    // MARK: Paths and order

    @Test func pathsReachNestedMembersAndArrayElements() throws {
        let value = try JSONParser.parse(#"{"order":{"customer":{"id":7},"items":[{"sku":"a"},{"sku":"b"}]},"x.y":1}"#)
        #expect(value["order.customer.id"] == 7)
        #expect(value["order.items.1.sku"] == "b")
        #expect(value["order.items.2.sku"] == nil)
        #expect(value["order.items.-1"] == nil)
        #expect(value["order.customer.id.deeper"] == nil)
        #expect(value["missing"] == nil)
        #expect(value["x.y"] == nil)
        #expect(value[JSONPath(components: ["x.y"])] == 1)
        #expect(value["order.customer"] == ["id": 7])
    }

    @Test func compareIsATotalOrderConsistentWithNumbers() {
        #expect(JSONValue.compare(1, 1.5) < 0)
        #expect(JSONValue.compare(2, 1.5) > 0)
        #expect(JSONValue.compare(.int(9_007_199_254_740_993), .number(9_007_199_254_740_992.0)) > 0)
        #expect(JSONValue.compare(.int(1), .number(1.0)) < 0)  // equal value: the integer first
        #expect(JSONValue.compare(nil, false) < 0)
        #expect(JSONValue.compare("b", "ab") > 0)
        #expect(JSONValue.compare([1, 2], [1, 2, 0]) < 0)

        var generator = JSONGenerator(SeededRandom.fromEnvironment())
        let seed = generator.random.seed
        let values = (0..<300).map { _ in generator.value(depth: 2) }
        let sorted = values.sorted { JSONValue.compare($0, $1) < 0 }
        for (a, b) in zip(sorted, sorted.dropFirst()) {
            #expect(JSONValue.compare(a, b) <= 0 && JSONValue.compare(b, a) >= 0, "seed \(seed): \(a) vs \(b)")
            #expect((JSONValue.compare(a, b) == 0) == (a == b) || a.doubleValue != nil, "seed \(seed): \(a) vs \(b)")
        }
    }
}
