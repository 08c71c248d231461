import SluiceStreams
import SluiceTestSupport

/// Seeded random JSON values and non-canonical renderings of them, for the parser and extractor properties.
struct JSONGenerator {
    var random: SeededRandom
    /// Member names are drawn from a small set so that random paths hit real members often.
    var keyPool = ["a", "b", "c", "id", "user", "order", "x.y", "", "é", "k\"q", "0", "1"]

    init(_ random: SeededRandom) { self.random = random }

    static let stringAlphabet: [String] = [
        "a", "b", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{01}", "\u{1F}", "\u{7F}", "é", "ß", "日",
        "\u{FFFF}", "😀", "𝄞", "\u{2028}",
    ]

    mutating func string(maxLength: Int = 8) -> String {
        var text = ""
        for _ in 0..<random.int(0...maxLength) { text += Self.stringAlphabet[random.int(0...Self.stringAlphabet.count - 1)] }
        return text
    }

    mutating func number() -> JSONValue {
        switch random.int(0...5) {
        case 0: return .int(Int64(random.int(-1000...1000)))
        case 1: return .int(Int64(bitPattern: random.next()))
        case 2: return .number(Double(random.int(-100_000...100_000)) / 64)
        case 3:
            while true {
                let value = Double(bitPattern: random.next())
                if value.isFinite { return .number(value) }
            }
        case 4: return .number(Double(random.int(-1000...1000)))  // integral doubles stay doubles
        default: return .number([0.1, 1e-7, 123.456, 1e21, Double.leastNonzeroMagnitude, 1.7976931348623157e308, -0.5][random.int(0...6)])
        }
    }

    mutating func value(depth: Int = 0) -> JSONValue {
        let containers = depth < 4
        switch random.int(0...(containers ? 7 : 4)) {
        case 0: return .null
        case 1: return .bool(random.chance(0.5))
        case 2: return number()
        case 3, 4: return .string(string())
        case 5: return .array((0..<random.int(0...4)).map { _ in value(depth: depth + 1) })
        default: return .object(object(depth: depth))
        }
    }

    mutating func object(depth: Int = 0) -> JSONObject {
        var members: [JSONObject.Member] = []
        for _ in 0..<random.int(0...5) {
            let key = random.chance(0.8) ? keyPool[random.int(0...keyPool.count - 1)] : string(maxLength: 4)
            if members.contains(where: { $0.key == key }) { continue }
            members.append(JSONObject.Member(key: key, value: value(depth: depth + 1)))
        }
        return JSONObject(members)
    }

    // MARK: Non-canonical rendering

    mutating func whitespace() -> String {
        guard random.chance(0.3) else { return "" }
        return (0..<random.int(1...3)).map { _ in [" ", "\n", "\r", "\t"][random.int(0...3)] }.joined()
    }

    /// `value` as valid JSON text with random whitespace and optional escapes; parses back to `value`.
    mutating func render(_ value: JSONValue) -> String {
        let inner: String
        switch value {
        case .null, .bool, .int:
            inner = value.serialized()
        case .number(let double):
            var text = double.description
            if random.chance(0.3) { text = text.replacingOccurrences(of: "e", with: "E") }
            inner = text
        case .string(let text):
            inner = renderString(text)
        case .array(let elements):
            inner = "[" + whitespace() + elements.map { render($0) }.joined(separator: "," + whitespace()) + whitespace() + "]"
        case .object(let object):
            let members = object.members.map { renderString($0.key) + whitespace() + ":" + render($0.value) }
            inner = "{" + whitespace() + members.joined(separator: "," + whitespace()) + whitespace() + "}"
        }
        return whitespace() + inner + whitespace()
    }

    mutating func renderString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            let mustEscape = scalar == "\"" || scalar == "\\" || scalar.value < 0x20
            if mustEscape || random.chance(0.2) {
                out += escape(scalar)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    mutating func escape(_ scalar: Unicode.Scalar) -> String {
        let named: [Unicode.Scalar: String] = ["\"": "\\\"", "\\": "\\\\", "/": "\\/", "\u{08}": "\\b",
                                               "\u{0C}": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"]
        if let name = named[scalar], random.chance(0.5) { return name }
        func hex(_ unit: UInt32) -> String {
            let digits = String(unit, radix: 16)
            let padded = String(repeating: "0", count: 4 - digits.count) + digits
            return "\\u" + (random.chance(0.5) ? padded.uppercased() : padded)
        }
        if scalar.value < 0x10000 { return hex(scalar.value) }
        let offset = scalar.value - 0x10000
        return hex(0xD800 + (offset >> 10)) + hex(0xDC00 + (offset & 0x3FF))
    }
}

extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}

/// Parses text, returning the error instead of throwing (for table tests).
func parseResult(_ text: String, limits: JSONLimits = .default) -> Result<JSONValue, JSONParseError> {
    do throws(JSONParseError) { return .success(try JSONParser.parse(text, limits: limits)) } catch { return .failure(error) }
}

func parseResult(_ bytes: [UInt8], limits: JSONLimits = .default) -> Result<JSONValue, JSONParseError> {
    do throws(JSONParseError) { return .success(try JSONParser.parse(bytes, limits: limits)) } catch { return .failure(error) }
}

func extractResult(_ extractor: JSONFieldExtractor, _ bytes: [UInt8]) -> Result<[JSONValue], JSONParseError> {
    bytes.withUnsafeBytes { raw in
        do throws(JSONParseError) { return .success(try extractor.extract(from: raw)) } catch { return .failure(error) }
    }
}
