import XCTest
@testable import SluiceCLI

final class RecordFormatTests: XCTestCase {
    private let record = FormattedRecord(
        topic: "orders",
        partition: 3,
        offset: 1_234,
        timestamp: 1_795_946_400_000,
        key: Array("k1".utf8),
        value: Array("hello".utf8),
        headers: [("trace", Array("abc".utf8)), ("empty", []), ("gone", nil)]
    )

    private func render(_ format: String, _ record: FormattedRecord) throws -> String {
        var out: [UInt8] = []
        try RecordFormat(parsing: format).render(record, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private func parseError(_ format: String) -> RecordFormatError? {
        do {
            _ = try RecordFormat(parsing: format)
            return nil
        } catch {
            return error
        }
    }

    // MARK: tokens

    func testEveryTokenRenders() throws {
        XCTAssertEqual(try render("%t", record), "orders")
        XCTAssertEqual(try render("%p", record), "3")
        XCTAssertEqual(try render("%o", record), "1234")
        XCTAssertEqual(try render("%k", record), "k1")
        XCTAssertEqual(try render("%s", record), "hello")
        XCTAssertEqual(try render("%T", record), "1795946400000")
        XCTAssertEqual(try render("%h", record), "trace=abc,empty=,gone=NULL")
        XCTAssertEqual(try render("%K", record), "2")
        XCTAssertEqual(try render("%S", record), "5")
        XCTAssertEqual(try render("%%", record), "%")
    }

    func testTokensMixWithLiteralText() throws {
        XCTAssertEqual(
            try render("%t [%p] @%o: %k=%s (%K/%S bytes) 100%%\\n", record),
            "orders [3] @1234: k1=hello (2/5 bytes) 100%\n"
        )
    }

    func testEscapes() throws {
        XCTAssertEqual(try render(#"a\nb\tc\rd\\e"#, record), "a\nb\tc\rd\\e")
    }

    func testNonASCIILiteralTextIsKeptAsUTF8() throws {
        XCTAssertEqual(try render("→ %s ✓", record), "→ hello ✓")
    }

    func testNullKeyAndValuePrintNothingAndLengthMinusOne() throws {
        let tombstone = FormattedRecord(topic: "t", partition: 0, offset: 0, timestamp: 0, key: nil, value: nil)
        XCTAssertEqual(try render("[%k][%s][%K][%S]", tombstone), "[][][-1][-1]")
    }

    func testEmptyKeyAndValueHaveLengthZero() throws {
        let empty = FormattedRecord(topic: "t", partition: 0, offset: 0, timestamp: 0, key: [], value: [])
        XCTAssertEqual(try render("[%k][%s][%K][%S]", empty), "[][][0][0]")
    }

    func testNoHeadersPrintsNothing() throws {
        let plain = FormattedRecord(topic: "t", partition: 0, offset: 0, timestamp: 0)
        XCTAssertEqual(try render("<%h>", plain), "<>")
    }

    func testBinaryValuesAreWrittenAsIs() throws {
        let binary = FormattedRecord(topic: "t", partition: 0, offset: 0, timestamp: 0, value: [0x00, 0xFF, 0x0A])
        var out: [UInt8] = []
        try RecordFormat(parsing: "%s").render(binary, into: &out)
        XCTAssertEqual(out, [0x00, 0xFF, 0x0A])
    }

    func testNegativeAndExtremeNumbers() throws {
        let odd = FormattedRecord(topic: "t", partition: Int32.max, offset: Int64.min, timestamp: -1)
        XCTAssertEqual(try render("%p %o %T", odd), "2147483647 -9223372036854775808 -1")
        let big = FormattedRecord(topic: "t", partition: 0, offset: Int64.max, timestamp: 0)
        XCTAssertEqual(try render("%o %p", big), "9223372036854775807 0")
    }

    func testRenderAppendsToTheBuffer() throws {
        let format = try RecordFormat(parsing: "%o\\n")
        var out: [UInt8] = []
        format.render(record, into: &out)
        format.render(record, into: &out)
        XCTAssertEqual(String(decoding: out, as: UTF8.self), "1234\n1234\n")
    }

    func testEmptyFormatRendersNothing() throws {
        XCTAssertEqual(try render("", record), "")
    }

    func testDefaultFormatIsValueAndNewline() {
        var out: [UInt8] = []
        RecordFormat.default.render(record, into: &out)
        XCTAssertEqual(String(decoding: out, as: UTF8.self), "hello\n")
    }

    func testAdjacentLiteralsAreMerged() throws {
        XCTAssertEqual(try RecordFormat(parsing: "a%%b\\nc").pieces, [.literal(Array("a%b\nc".utf8))])
        XCTAssertEqual(try RecordFormat(parsing: "x%sy").pieces, [.literal([0x78]), .value, .literal([0x79])])
    }

    // MARK: errors

    func testUnknownTokenNamesItsColumnAndTheKnownTokens() {
        let error = parseError("topic=%x")
        XCTAssertEqual(error?.column, 7)
        XCTAssertEqual(
            error?.description,
            "format string: unknown token %x at column 7; known: %t %p %o %k %s %T %h %K %S %%"
        )
    }

    func testColumnsCountCharactersNotBytes() {
        XCTAssertEqual(parseError("é→%q")?.column, 3)
    }

    func testDanglingPercent() {
        let error = parseError("%s %")
        XCTAssertEqual(error?.column, 4)
        XCTAssertEqual(
            error?.description,
            "format string: % at column 4 ends the string without a token; known: %t %p %o %k %s %T %h %K %S %%"
        )
    }

    func testDanglingBackslash() {
        let error = parseError(#"%s\"#)
        XCTAssertEqual(error?.column, 3)
        XCTAssertEqual(
            error?.description,
            #"format string: \ at column 3 ends the string without an escape; known: \n \t \r \\"#
        )
    }

    func testUnknownEscape() {
        let error = parseError(#"ab\q"#)
        XCTAssertEqual(error?.column, 3)
        XCTAssertEqual(error?.description, #"format string: unknown escape \q at column 3; known: \n \t \r \\"#)
    }

    func testFirstErrorWins() {
        XCTAssertEqual(parseError("%z %y")?.description.contains("%z at column 1"), true)
    }

    func testEscapedPercentIsNotAToken() throws {
        XCTAssertEqual(try render("%%x", record), "%x")
    }
}

final class RecordJSONTests: XCTestCase {
    private func json(_ record: FormattedRecord) -> String {
        var out: [UInt8] = []
        RecordFormat.json(record, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private func quoted(_ bytes: [UInt8]) -> String? {
        var out: [UInt8] = []
        guard JSONBytes.appendStringIfUTF8(bytes, to: &out) else { return nil }
        return String(decoding: out, as: UTF8.self)
    }

    func testFullRecord() {
        let record = FormattedRecord(
            topic: "orders", partition: 3, offset: 1_234, timestamp: 1_795_946_400_000,
            key: Array("k1".utf8), value: Array("hello".utf8),
            headers: [("trace", Array("abc".utf8)), ("gone", nil)]
        )
        XCTAssertEqual(
            json(record),
            #"{"topic":"orders","partition":3,"offset":1234,"timestamp":1795946400000,"key":"k1","value":"hello","#
                + #""headers":{"trace":"abc","gone":null}}"#
        )
    }

    func testAbsentKeyAndValueAreNull() {
        let record = FormattedRecord(topic: "t", partition: 0, offset: 0, timestamp: 0)
        XCTAssertEqual(
            json(record),
            #"{"topic":"t","partition":0,"offset":0,"timestamp":0,"key":null,"value":null,"headers":{}}"#
        )
    }

    func testEmptyKeyIsAnEmptyString() {
        let record = FormattedRecord(topic: "t", partition: 0, offset: 0, timestamp: 0, key: [], value: [])
        XCTAssert(json(record).contains(#""key":"","value":"""#))
    }

    func testQuotesBackslashesAndControlCharactersAreEscaped() {
        XCTAssertEqual(quoted(Array(#"a"b\c"#.utf8)), #""a\"b\\c""#)
        XCTAssertEqual(quoted([0x0A, 0x0D, 0x09, 0x08, 0x0C]), #""\n\r\t\b\f""#)
        XCTAssertEqual(quoted([0x00, 0x01, 0x1B, 0x1F]), #""\u0000\u0001\u001b\u001f""#)
        XCTAssertEqual(quoted([0x20, 0x7E, 0x7F]), "\" ~\u{7F}\"")
    }

    func testEveryControlCharacterIsEscaped() {
        for byte in UInt8(0)..<0x20 {
            guard let text = quoted([byte]) else { return XCTFail("control byte \(byte) refused") }
            XCTAssert(text.hasPrefix("\"\\"), "byte \(byte) gave \(text)")
            XCTAssertFalse(text.utf8.contains { $0 < 0x20 }, "byte \(byte) left raw in \(text)")
        }
    }

    func testValidMultiByteUTF8IsCopied() {
        let text = "é→€😀"
        XCTAssertEqual(quoted(Array(text.utf8)), "\"\(text)\"")
    }

    func testNonUTF8ValueBecomesValueBase64() {
        let record = FormattedRecord(topic: "t", partition: 0, offset: 0, timestamp: 0, key: Array("k".utf8), value: [0xFF, 0xFE, 0x00, 0x41])
        XCTAssertEqual(
            json(record),
            #"{"topic":"t","partition":0,"offset":0,"timestamp":0,"key":"k","value_base64":"//4AQQ==","headers":{}}"#
        )
    }

    func testNonUTF8KeyBecomesKeyBase64() {
        let record = FormattedRecord(topic: "t", partition: 0, offset: 0, timestamp: 0, key: [0xC3], value: Array("v".utf8))
        XCTAssertEqual(
            json(record),
            #"{"topic":"t","partition":0,"offset":0,"timestamp":0,"key_base64":"ww==","value":"v","headers":{}}"#
        )
    }

    func testNonUTF8HeaderValueBecomesABase64Object() {
        let record = FormattedRecord(topic: "t", partition: 0, offset: 0, timestamp: 0, headers: [("bin", [0x80]), ("ok", [0x41])])
        XCTAssert(json(record).hasSuffix(#""headers":{"bin":{"base64":"gA=="},"ok":"A"}}"#), json(record))
    }

    func testTopicAndHeaderNamesAreEscaped() {
        let record = FormattedRecord(topic: "a\"b", partition: 0, offset: 0, timestamp: 0, headers: [("x\ny", nil)])
        let text = json(record)
        XCTAssert(text.hasPrefix(#"{"topic":"a\"b","#), text)
        XCTAssert(text.hasSuffix(#""headers":{"x\ny":null}}"#), text)
    }

    func testMalformedUTF8IsRefusedAndLeavesTheBufferUntouched() {
        let malformed: [[UInt8]] = [
            [0x80],                    // continuation byte without a lead
            [0xC0, 0x80],              // overlong NUL
            [0xC1, 0xBF],              // overlong
            [0xE0, 0x80, 0x80],        // overlong 3-byte
            [0xED, 0xA0, 0x80],        // UTF-16 surrogate
            [0xF0, 0x80, 0x80, 0x80],  // overlong 4-byte
            [0xF4, 0x90, 0x80, 0x80],  // above U+10FFFF
            [0xF5, 0x80, 0x80, 0x80],  // lead byte never valid
            [0xFF],
            [0xE2, 0x82],              // truncated
            [0x41, 0xF0, 0x9F, 0x98],  // truncated at the end
            [0xE2, 0x41, 0xAC],        // bad continuation
        ]
        for bytes in malformed {
            var out: [UInt8] = [1, 2, 3]
            XCTAssertFalse(JSONBytes.appendStringIfUTF8(bytes, to: &out), "accepted \(bytes)")
            XCTAssertEqual(out, [1, 2, 3], "buffer changed for \(bytes)")
        }
    }

    func testUTF8CheckAgreesWithTheStandardLibrary() {
        var state: UInt64 = 0x1234
        func nextByte() -> UInt8 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        for _ in 0..<20_000 {
            // Bias toward bytes that form sequences, so valid and invalid cases both appear often.
            let bytes = (0..<Int(nextByte() % 6)).map { _ -> UInt8 in
                let b = nextByte()
                return b < 0x40 ? 0x80 | (b & 0x3F) : b
            }
            var out: [UInt8] = []
            let ours = JSONBytes.appendStringIfUTF8(bytes, to: &out)
            let theirs = String(validating: bytes, as: UTF8.self) != nil
            XCTAssertEqual(ours, theirs, "bytes \(bytes)")
        }
    }

    func testBase64MatchesRFC4648Vectors() {
        let vectors = [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="),
                       ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")]
        for (input, expected) in vectors {
            var out: [UInt8] = []
            Base64Bytes.append(Array(input.utf8), to: &out)
            XCTAssertEqual(String(decoding: out, as: UTF8.self), expected, "base64(\"\(input)\")")
        }
    }
}
