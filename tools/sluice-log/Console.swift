#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging

/// Where the tool's text goes. Results go to stdout through `print` (buffered); warnings and errors go
/// straight to stderr, so stdout stays parseable (the crash test reads `ack` lines from it).
enum Console {
    /// Prints a line on stdout.
    static func line(_ text: String = "") {
        print(text)
    }

    /// Pushes buffered stdout to the pipe now. `fflush(nil)` flushes every stream without naming the
    /// C global `stdout`, which Swift 6 refuses as shared mutable state.
    static func flush() {
        fflush(nil)
    }

    /// Writes a line on stderr (after flushing stdout, so the two stay in order on a terminal).
    static func warn(_ text: String) {
        flush()
        writeAll(2, text + "\n")
    }

    private static func writeAll(_ descriptor: Int32, _ text: String) {
        var text = text
        text.withUTF8 { buffer in
            guard let base = buffer.baseAddress else { return }
            var done = 0
            while done < buffer.count {
                let n = write(descriptor, base + done, buffer.count - done)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                done += n
            }
        }
    }

    /// The logger handed to `PartitionLog`: stderr only, warnings and up (recovery repairs are
    /// warnings; the routine "opened partition log" info line would only be noise here).
    static func logger() -> Logger {
        var logger = Logger(label: "sluice.log", factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = .warning
        return logger
    }
}

/// Number formatting without Foundation (the tool does not link it).
enum Format {
    /// `1234567` → `1,234,567`.
    static func count<T: BinaryInteger>(_ value: T) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (i, character) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(character)
        }
        return value < 0 ? "-" + out : out
    }

    /// `value` with exactly `decimals` digits after the point.
    static func fixed(_ value: Double, _ decimals: Int = 2) -> String {
        guard value.isFinite else { return value.isNaN ? "n/a" : (value < 0 ? "-inf" : "inf") }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        guard scaled < 9e18 else { return String(value) }
        let whole = UInt64(scaled) / UInt64(scale)
        let fraction = UInt64(scaled) % UInt64(scale)
        var text = (value < 0 && scaled > 0 ? "-" : "") + String(whole)
        if decimals > 0 {
            let digits = String(fraction)
            text += "." + String(repeating: "0", count: decimals - digits.count) + digits
        }
        return text
    }

    /// A byte count for people: `512.0 MiB`.
    static func bytes<T: BinaryInteger>(_ value: T) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var scaled = Double(value)
        var unit = 0
        while abs(scaled) >= 1024 && unit < units.count - 1 {
            scaled /= 1024
            unit += 1
        }
        return unit == 0 ? "\(value) B" : "\(fixed(scaled, 1)) \(units[unit])"
    }

    /// Seconds from a nanosecond duration, three decimals.
    static func seconds(_ nanoseconds: UInt64) -> String {
        fixed(Double(nanoseconds) / 1e9, 3) + " s"
    }

    /// A rate per second from an amount and a nanosecond duration.
    static func perSecond(_ amount: Double, _ nanoseconds: UInt64) -> Double {
        nanoseconds == 0 ? .infinity : amount * 1e9 / Double(nanoseconds)
    }

    /// `3 segments`, `1 segment`.
    static func plural(_ count: Int, _ noun: String) -> String {
        "\(Format.count(count)) \(noun)\(count == 1 ? "" : "s")"
    }

    /// `text` padded with spaces to `width` characters (left-aligned).
    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    /// `text` padded on the left to `width` characters (right-aligned).
    static func padLeft(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }

    /// Bytes as a quoted string: printable ASCII as itself, everything else as `\xNN`, cut after
    /// `maxBytes` bytes (0 = no cut), marked by a trailing `…`. Keeps the readable prefix of a binary
    /// value (`"record-7|\x9f…"`) visible.
    static func quoted(_ bytes: [UInt8]?, maxBytes: Int) -> String {
        guard let bytes else { return "null" }
        let shown = maxBytes > 0 ? bytes.prefix(maxBytes) : bytes[...]
        var out = "\""
        for byte in shown {
            switch byte {
            case UInt8(ascii: "\""): out += "\\\""
            case UInt8(ascii: "\\"): out += "\\\\"
            case 0x20...0x7E: out.unicodeScalars.append(Unicode.Scalar(byte))
            default: out += "\\x" + hex(byte)
            }
        }
        out += "\""
        if shown.count < bytes.count { out += "…" }
        return out
    }

    /// Two lowercase hex digits.
    static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]], as: UTF8.self)
    }

    /// `0x` and eight hex digits.
    static func hex32(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }
}
