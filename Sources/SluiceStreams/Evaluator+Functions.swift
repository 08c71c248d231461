import SluiceSQL

// Scalar functions, CAST and LIKE (issue 4, section 1). NULL in gives NULL out, except COALESCE; an argument
// of the wrong kind (LOWER(42)) is NULL too, since the dialect has no implicit conversions beyond CONCAT's.
// Strings are measured and indexed in Unicode scalars, not bytes or grapheme clusters: that is what LENGTH,
// SUBSTRING and LIKE's `_` agree on, and it is cheap and locale-free.

extension Evaluator {
    /// Calls a scalar function. A call with fewer arguments than its arity (which the binder rules out) is NULL.
    static func call<Context: EvaluationContext>(_ function: ScalarFunction, _ arguments: [BoundExpr],
                                                 in context: Context) -> JSONValue {
        if function == .coalesce {  // lazy: later arguments are not evaluated once one is not NULL
            for argument in arguments {
                let value = evaluate(argument, in: context)
                if !value.isNull { return value }
            }
            return .null
        }
        guard arguments.count >= function.arity.lowerBound else { return .null }
        // CONCAT evaluates its arguments itself: evaluating the first two here as well would double the
        // work at every level of a nested CONCAT.
        if function == .concat { return concat(arguments, in: context) }
        let first = evaluate(arguments[0], in: context)
        // Explicitly optional: JSONValue is ExpressibleByNilLiteral, so a bare `nil` would mean `.null`.
        let second: JSONValue? = arguments.count > 1 ? evaluate(arguments[1], in: context) : Optional.none
        switch function {
        case .lower: return mapString(first) { $0.lowercased() }
        case .upper: return mapString(first) { $0.uppercased() }
        case .trim: return mapString(first) { trim($0) }
        case .length: return length(first)
        case .concat: return .null  // handled above
        case .substring:
            let third: JSONValue? = arguments.count > 2 ? evaluate(arguments[2], in: context) : Optional.none
            return substring(first, start: second ?? .null, length: third)
        case .split: return split(first, by: second ?? .null)
        case .abs: return absolute(first)
        case .round: return round(first, digits: second ?? .int(0))
        case .floor: return roundToIntegral(first, .down)
        case .ceil: return roundToIntegral(first, .up)
        case .coalesce: return .null  // handled above
        }
    }

    private static func mapString(_ value: JSONValue, _ transform: (String) -> String) -> JSONValue {
        guard case .string(let text) = value else { return .null }
        return .string(transform(text))
    }

    /// Removes white space (Unicode `White_Space`) from both ends.
    static func trim(_ text: String) -> String {
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(scalars[first...last])
    }

    /// LENGTH: Unicode scalars of a string, elements of an array.
    private static func length(_ value: JSONValue) -> JSONValue {
        switch value {
        case .string(let text): return .int(Int64(text.unicodeScalars.count))
        case .array(let elements): return .int(Int64(elements.count))
        default: return .null
        }
    }

    /// CONCAT: NULL if any argument is NULL (the SQL-standard `||` rule); other kinds as CAST to STRING.
    private static func concat<Context: EvaluationContext>(_ arguments: [BoundExpr], in context: Context) -> JSONValue {
        var result = ""
        for argument in arguments {
            guard let text = string(of: evaluate(argument, in: context)) else { return .null }
            result += text
        }
        return .string(result)
    }

    /// SUBSTRING(s, start[, length]), 1-based; positions outside the string select nothing (SQL's rule:
    /// SUBSTRING('hello', 0, 3) is 'he'). A negative length is NULL.
    private static func substring(_ value: JSONValue, start: JSONValue, length: JSONValue?) -> JSONValue {
        guard case .string(let text) = value, let from = integer(of: start) else { return .null }
        var to = Int64.max
        if let length {
            guard let count = integer(of: length), count >= 0 else { return .null }
            let (sum, overflow) = from.addingReportingOverflow(count)
            to = overflow ? Int64.max : sum
        }
        let scalars = text.unicodeScalars
        let lower = max(from, 1)
        guard lower < to else { return .string("") }
        var index = scalars.startIndex
        var position: Int64 = 1
        while position < lower, index < scalars.endIndex {
            scalars.formIndex(after: &index)
            position += 1
        }
        let startIndex = index
        while position < to, index < scalars.endIndex {
            scalars.formIndex(after: &index)
            position += 1
        }
        return .string(String(scalars[startIndex..<index]))
    }

    /// SPLIT(s, delimiter): the pieces between occurrences of `delimiter`, empty ones included, as an array of
    /// strings. An empty delimiter does not split (one piece).
    static func split(_ value: JSONValue, by delimiter: JSONValue) -> JSONValue {
        guard case .string(let text) = value, case .string(let separator) = delimiter else { return .null }
        let haystack = Array(text.utf8)
        let needle = Array(separator.utf8)
        guard !needle.isEmpty, haystack.count >= needle.count else { return .array([.string(text)]) }
        var pieces: [JSONValue] = []
        var pieceStart = 0
        var index = 0
        // UTF-8 is self-synchronising, so a byte match of a valid needle always starts on a scalar boundary.
        while index <= haystack.count - needle.count {
            if haystack[index] == needle[0], haystack[index..<(index + needle.count)].elementsEqual(needle) {
                pieces.append(.string(String(decoding: haystack[pieceStart..<index], as: UTF8.self)))
                index += needle.count
                pieceStart = index
            } else {
                index += 1
            }
        }
        pieces.append(.string(String(decoding: haystack[pieceStart...], as: UTF8.self)))
        return .array(pieces)
    }

    private static func absolute(_ value: JSONValue) -> JSONValue {
        switch value {
        case .int(let integer): return integer == .min ? .null : .int(Swift.abs(integer))
        case .number(let double): return .number(Swift.abs(double))
        default: return .null
        }
    }

    /// ROUND(x[, digits]): half away from zero. Integers stay integers (negative digits round to tens,
    /// hundreds…; overflow is NULL); doubles stay doubles.
    private static func round(_ value: JSONValue, digits: JSONValue) -> JSONValue {
        guard let digits = integer(of: digits) else { return .null }
        switch value {
        case .int(let integer):
            return roundInteger(integer, digits: digits)
        case .number(let double):
            if digits > 30 { return value }
            if digits < -30 { return .number(0 * double) }  // keeps the sign of zero
            var scale = 1.0
            for _ in 0..<Swift.abs(digits) { scale *= 10 }
            if digits >= 0 {
                let scaled = double * scale
                guard scaled.isFinite else { return value }
                return .number(scaled.rounded(.toNearestOrAwayFromZero) / scale)
            }
            return .number((double / scale).rounded(.toNearestOrAwayFromZero) * scale)
        default:
            return .null
        }
    }

    private static func roundInteger(_ integer: Int64, digits: Int64) -> JSONValue {
        if digits >= 0 { return .int(integer) }
        if digits < -18 {  // 10^19 exceeds Int64: everything rounds to 0 except what would round to ±10^19
            return integer.magnitude >= 5_000_000_000_000_000_000 ? .null : .int(0)
        }
        var factor: Int64 = 1
        for _ in 0..<(-digits) { factor *= 10 }
        var quotient = integer / factor
        let remainder = integer % factor
        if remainder.magnitude * 2 >= factor.magnitude { quotient += integer < 0 ? -1 : 1 }
        let (result, overflow) = quotient.multipliedReportingOverflow(by: factor)
        return overflow ? .null : .int(result)
    }

    /// FLOOR and CEIL: integers unchanged, doubles rounded (and still doubles).
    private static func roundToIntegral(_ value: JSONValue, _ rule: FloatingPointRoundingRule) -> JSONValue {
        switch value {
        case .int: return value
        case .number(let double): return .number(double.rounded(rule))
        default: return .null
        }
    }

    /// An integer argument: an integer, or a double without a fraction.
    static func integer(of value: JSONValue) -> Int64? {
        switch value {
        case .int(let integer): return integer
        case .number(let double): return EventTime.exactInteger(double)
        default: return nil
        }
    }
}

// MARK: CAST

extension Evaluator {
    /// `CAST(value AS type)`; NULL when the value does not convert.
    static func cast(_ value: JSONValue, to type: SQLType) -> JSONValue {
        if value.isNull { return .null }
        switch type {
        case .string: return string(of: value).map(JSONValue.string) ?? .null
        case .bigint: return bigint(of: value)
        case .double: return double(of: value)
        case .boolean: return boolean(of: value)
        case .timestamp: return timestamp(of: value)
        }
    }

    /// The text of a value as CAST to STRING (and CONCAT) write it: strings as they are, numbers and booleans
    /// as their JSON text, arrays and objects as compact JSON; nil for NULL.
    static func string(of value: JSONValue) -> String? {
        switch value {
        case .null: return nil
        case .string(let text): return text
        case .number(let double) where !double.isFinite: return nil
        default: return value.serialized()
        }
    }

    private static func bigint(of value: JSONValue) -> JSONValue {
        switch value {
        case .int: return value
        case .number(let double): return EventTime.exactInteger(double.rounded(.towardZero)).map(JSONValue.int) ?? .null
        case .bool(let flag): return .int(flag ? 1 : 0)
        case .string(let text):
            let trimmed = trim(text)
            if let integer = Int64(trimmed) { return .int(integer) }
            guard let double = Double(trimmed), double.isFinite else { return .null }
            return EventTime.exactInteger(double.rounded(.towardZero)).map(JSONValue.int) ?? .null
        default: return .null
        }
    }

    private static func double(of value: JSONValue) -> JSONValue {
        switch value {
        case .int(let integer): return .number(Double(integer))
        case .number: return value
        case .bool(let flag): return .number(flag ? 1 : 0)
        case .string(let text):
            guard let double = Double(trim(text)), double.isFinite else { return .null }
            return .number(double)
        default: return .null
        }
    }

    private static func boolean(of value: JSONValue) -> JSONValue {
        switch value {
        case .bool: return value
        case .int(let integer): return .bool(integer != 0)
        case .number(let double): return .bool(double != 0)
        case .string(let text):
            switch trim(text).lowercased() {
            case "true": return .bool(true)
            case "false": return .bool(false)
            default: return .null
            }
        default: return .null
        }
    }

    /// Epoch milliseconds from an integer, an integral double, an ISO-8601 string or a string of digits.
    private static func timestamp(of value: JSONValue) -> JSONValue {
        if let milliseconds = EventTime.milliseconds(from: value) { return .int(milliseconds) }
        if case .string(let text) = value, let integer = Int64(trim(text)), eventTimeRangeMs.contains(integer) {
            return .int(integer)
        }
        return .null
    }
}

// MARK: LIKE

extension Evaluator {
    /// `value [NOT] LIKE pattern`: `%` matches any run of characters, `_` exactly one (Unicode scalar); there
    /// is no escape character. NULL or a non-string on either side is NULL.
    static func like(_ value: JSONValue, _ pattern: JSONValue, negated: Bool) -> JSONValue {
        guard case .string(var text) = value, case .string(var pattern) = pattern else { return .null }
        let matched = text.withUTF8 { textBytes in
            pattern.withUTF8 { patternBytes in likeMatches(textBytes, patternBytes) }
        }
        return .bool(matched != negated)
    }

    /// Greedy matching with backtracking to the last `%` only, which is complete for `%`/`_` patterns and
    /// takes O(text × pattern) steps at worst (no exponential blow-up on `%a%a%a…`).
    static func likeMatches(_ text: UnsafeBufferPointer<UInt8>, _ pattern: UnsafeBufferPointer<UInt8>) -> Bool {
        let percent = UInt8(ascii: "%")
        let underscore = UInt8(ascii: "_")
        var t = 0
        var p = 0
        var starPattern = -1
        var starText = 0
        while t < text.count {
            if p < pattern.count, pattern[p] == percent {
                starPattern = p
                starText = t
                p += 1
            } else if p < pattern.count, pattern[p] == underscore {
                t += scalarLength(text, at: t)
                p += 1
            } else if p < pattern.count, pattern[p] == text[t] {
                t += 1
                p += 1
            } else if starPattern >= 0 {
                starText += scalarLength(text, at: starText)
                t = starText
                p = starPattern + 1
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == percent { p += 1 }
        return p == pattern.count
    }

    /// The length of the UTF-8 sequence whose lead byte is at `index`, clamped to the buffer.
    private static func scalarLength(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> Int {
        let lead = bytes[index]
        let length = lead < 0xC0 ? 1 : (lead < 0xE0 ? 2 : (lead < 0xF0 ? 3 : 4))
        return min(length, bytes.count - index)
    }
}
