#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The progress line `sluice bench` and long `sluice consume` runs draw on stderr.
//
// A pure state machine: the caller passes the clock in and prints what comes back, so tests drive it
// with made-up times and nothing here sleeps, reads a clock or writes a file descriptor.

/// A one-line progress display, redrawn in place with `\r`, at most every ``redrawIntervalNanos``.
///
/// With a known total: `[#####.....] 45% 12.3 MB/s 120,000 rec`. Without: `45.6 MB 12.3 MB/s 120,000 rec`.
/// `done` and `total` count bytes; the rate is the average since the first update.
/// When the output is not a terminal (a file, a pipe, CI) every call returns `nil`: redraw codes in a
/// log are noise.
struct ProgressLine: Sendable {
    /// Shortest time between two redraws: fast enough to look live, slow enough to cost nothing.
    static let redrawIntervalNanos: UInt64 = 100_000_000
    /// Width of the bar in cells.
    static let barCells = 10
    /// Bytes in the MB the line shows.
    static let bytesPerMB: Double = 1_000_000
    /// ANSI "erase to end of line": clears what a longer previous line left behind.
    static let eraseToEndOfLine = "\u{1B}[K"

    /// Total bytes expected, when known.
    let total: Int64?
    /// Whether the destination is a terminal; when not, nothing is ever drawn.
    let isTerminal: Bool
    /// Time of the first update: the origin of the rate.
    private var startNanos: UInt64?
    /// Time of the last redraw (or of the first update).
    private var lastDrawNanos: UInt64?

    /// A progress line toward `total` bytes (`nil` when unknown), drawn only if `isTerminal`.
    init(total: Int64?, isTerminal: Bool) {
        self.total = total
        self.isTerminal = isTerminal
    }

    /// The text to write to stderr now (starting with `\r`), or `nil` when it is too soon since the last
    /// redraw, when this is the first update (it only starts the clock: there is no rate yet), or when
    /// the output is not a terminal.
    mutating func update(done: Int64, records: Int64, nowNanos: UInt64) -> String? {
        guard isTerminal else { return nil }
        guard let last = lastDrawNanos else {
            startNanos = nowNanos
            lastDrawNanos = nowNanos
            return nil
        }
        // A clock that went backwards (the caller's bug) counts as no time passing, never as a wrap.
        guard nowNanos >= last, nowNanos - last >= Self.redrawIntervalNanos else { return nil }
        lastDrawNanos = nowNanos
        return "\r" + line(done: done, records: records, nowNanos: nowNanos) + Self.eraseToEndOfLine
    }

    /// The final state, drawn regardless of the interval and ended with a newline so later output
    /// starts on a fresh line; `nil` when the output is not a terminal.
    mutating func finish(done: Int64, records: Int64, nowNanos: UInt64) -> String? {
        guard isTerminal else { return nil }
        if startNanos == nil { startNanos = nowNanos }
        lastDrawNanos = nowNanos
        return "\r" + line(done: done, records: records, nowNanos: nowNanos) + Self.eraseToEndOfLine + "\n"
    }

    /// The line's text, without `\r` or erase codes.
    func line(done: Int64, records: Int64, nowNanos: UInt64) -> String {
        let start = startNanos ?? nowNanos
        let elapsedSeconds = nowNanos > start ? Double(nowNanos - start) / 1e9 : 0
        let rate = elapsedSeconds > 0 ? Double(done) / Self.bytesPerMB / elapsedSeconds : 0
        let tail = "\(NumberText.fixed(rate, decimals: 1)) MB/s \(NumberText.grouped(records)) rec"
        guard let total else {
            return "\(NumberText.fixed(Double(done) / Self.bytesPerMB, decimals: 1)) MB \(tail)"
        }
        let percent = Self.percent(done: done, total: total)
        // Nearest cell (45% fills 5 of 10), but a full bar only at 100%: a full bar that is not done misleads.
        let nearest = (percent * Self.barCells + 50) / 100
        let filled = percent >= 100 ? Self.barCells : min(Self.barCells - 1, nearest)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: Self.barCells - filled)
        return "[\(bar)] \(percent)% \(tail)"
    }

    /// Whole percent of `total` done, in 0...100; an empty or negative total counts as done.
    private static func percent(done: Int64, total: Int64) -> Int {
        guard total > 0 else { return 100 }
        let fraction = Double(max(0, done)) / Double(total)
        return Int(min(100, (fraction * 100).rounded(.down)))
    }

    /// Whether `fd` is a terminal (`isatty`), to decide if a progress line should be drawn at all.
    static func isTerminal(fd: Int32) -> Bool {
        isatty(fd) == 1
    }
}
