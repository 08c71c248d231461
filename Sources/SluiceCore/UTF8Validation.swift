/// UTF-8 well-formedness, one sequence at a time (Unicode 15, table 3-7): no overlong forms, no
/// surrogates, nothing above U+10FFFF. Shared by the JSON reader (SluiceStreams) and the CLI's JSON
/// output, which both walk bytes themselves instead of building Strings.
public enum UTF8Validation {
    /// Length (2–4) of the well-formed multi-byte sequence starting at `index`, whose first byte is
    /// 0x80 or above; 0 when it is not well formed or runs past the end.
    @inlinable
    public static func sequenceLength(_ bytes: UnsafeRawBufferPointer, at index: Int) -> Int {
        let lead = bytes[index]
        let length: Int
        // The allowed range of the second byte narrows for some lead bytes; the rest are 80...BF.
        var secondRange: ClosedRange<UInt8> = 0x80...0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; secondRange = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; secondRange = 0x80...0x9F
        case 0xF0: length = 4; secondRange = 0x90...0xBF
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; secondRange = 0x80...0x8F
        default: return 0
        }
        guard index + length <= bytes.count, secondRange.contains(bytes[index + 1]) else { return 0 }
        for offset in 2..<length where !(0x80...0xBF).contains(bytes[index + offset]) {
            return 0
        }
        return length
    }
}
