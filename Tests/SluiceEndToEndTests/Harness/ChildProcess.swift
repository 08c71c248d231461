// Running the real executables (`sluiced`, `sluice`) as child processes.
//
// Every output stream of a child is drained by its own thread into a `StreamCollector` from the moment
// the child starts, so a chatty child never blocks on a full pipe, and a test can wait for a line to
// appear (the broker's "listening" line) by reading the pipe, never by sleeping. Every wait has a
// deadline; a child that overstays it is killed and the test fails with what it printed so far.
//
// Thread-safety: `StreamCollector` is guarded by its condition; `ChildProcess` is used by one test.

import Foundation
import SluiceTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the executables under test live, and their paths.
enum Executables {
    static let directory = builtProductsDirectory()
    static let sluiced = directory + "/sluiced"
    static let sluice = directory + "/sluice"

    /// nil when both exist; otherwise a sentence for the test failure.
    static func missing() -> String? {
        for path in [sluiced, sluice] where !FileManager.default.isExecutableFile(atPath: path) {
            return "\(path) is missing: build every product first (`swift build --build-tests`)"
        }
        return nil
    }
}

/// Bytes read from one file descriptor until EOF, by a dedicated thread.
final class StreamCollector: @unchecked Sendable {
    private let condition = NSCondition()
    private var bytes: [UInt8] = []
    private var ended = false
    /// Read size; the broker and CLI write at most a few MB per command.
    static let chunkBytes = 64 * 1024

    /// Starts draining `handle` (the read end of a pipe whose write end the parent already closed).
    init(_ handle: FileHandle) {
        let descriptor = handle.fileDescriptor
        let thread = Thread { [self] in
            var chunk = [UInt8](repeating: 0, count: Self.chunkBytes)
            while true {
                let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                condition.lock()
                if count > 0 { bytes.append(contentsOf: chunk[0..<count]) } else { ended = true }
                condition.broadcast()
                condition.unlock()
                if count <= 0 { break }
            }
            try? handle.close()
        }
        thread.start()
    }

    /// Everything read so far.
    var snapshot: [UInt8] {
        condition.lock()
        defer { condition.unlock() }
        return bytes
    }

    var text: String { String(decoding: snapshot, as: UTF8.self) }

    /// Waits until `predicate` holds for the bytes read so far, EOF arrives, or `deadline` passes.
    /// Returns whether the predicate held.
    func wait(until deadline: Date, for predicate: ([UInt8]) -> Bool) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if predicate(bytes) { return true }
            if ended { return false }
            if !condition.wait(until: deadline) { return predicate(bytes) }
        }
    }

    /// Waits for EOF until `deadline`; returns whether it arrived.
    func waitForEnd(until deadline: Date) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !ended {
            if !condition.wait(until: deadline) { return ended }
        }
        return true
    }
}

/// How a finished command ended and what it printed.
struct CommandResult: CustomStringConvertible {
    /// The command line, for messages.
    var command: [String]
    /// Exit status, or the signal number when `signaled`.
    var status: Int32
    var signaled: Bool
    /// The command overstayed its deadline and was killed.
    var timedOut: Bool
    var stdoutBytes: [UInt8]
    var stderr: String

    var stdout: String { String(decoding: stdoutBytes, as: UTF8.self) }

    /// Exited by itself with status 0.
    var succeeded: Bool { !timedOut && !signaled && status == 0 }
    /// Exited by itself with a non-zero status (not killed, not timed out).
    var failedCleanly: Bool { !timedOut && !signaled && status != 0 }

    /// stdout split at newlines; a trailing newline does not make an empty last line.
    var lines: [String] {
        var result: [String] = []
        var start = 0
        stdoutBytes.withUnsafeBufferPointer { buffer in
            for index in 0..<buffer.count where buffer[index] == UInt8(ascii: "\n") {
                result.append(String(decoding: UnsafeBufferPointer(rebasing: buffer[start..<index]), as: UTF8.self))
                start = index + 1
            }
            if start < buffer.count {
                result.append(String(decoding: UnsafeBufferPointer(rebasing: buffer[start...]), as: UTF8.self))
            }
        }
        return result
    }

    /// The command, how it ended, and the head of both outputs.
    var description: String {
        let how = timedOut ? "timed out (killed)" : signaled ? "killed by signal \(status)" : "exit \(status)"
        return "`\(command.joined(separator: " "))` → \(how)\n  stdout: \(Self.head(stdout))\n  stderr: \(Self.head(stderr))"
    }

    /// Long outputs are cut (100k consumed records would drown the failure message).
    static let excerptCharactersMax = 1500

    static func head(_ text: String) -> String {
        text.count <= excerptCharactersMax ? text : String(text.prefix(excerptCharactersMax)) + "… (\(text.utf8.count) bytes)"
    }
}

/// A started child whose stdout and stderr are being collected.
final class ChildProcess: @unchecked Sendable {
    let command: [String]
    let process = Process()
    let stdout: StreamCollector
    let stderr: StreamCollector
    private let exited = DispatchSemaphore(value: 0)
    private let exitLock = NSLock()
    private var hasExited = false

    /// Starts `executable` with `arguments`; `stdin` (when given) is written by a thread and then
    /// closed, otherwise the child's stdin is /dev/null.
    init(executable: String, arguments: [String], stdin: [UInt8]? = nil) throws {
        command = [(executable as NSString).lastPathComponent] + arguments
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        let input = stdin.map { _ in Pipe() }
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input ?? FileHandle.nullDevice
        process.terminationHandler = { [exited] _ in exited.signal() }
        try process.run()
        // Our copies of the child's ends must go, or the readers never see EOF.
        try? out.fileHandleForWriting.close()
        try? err.fileHandleForWriting.close()
        stdout = StreamCollector(out.fileHandleForReading)
        stderr = StreamCollector(err.fileHandleForReading)
        if let input, let stdin {
            try? input.fileHandleForReading.close()
            let writer = input.fileHandleForWriting
            Thread {
                // A child that exits without reading everything makes this fail with EPIPE: fine.
                signal(SIGPIPE, SIG_IGN)
                try? writer.write(contentsOf: Data(stdin))
                try? writer.close()
            }.start()
        }
    }

    var processIdentifier: Int32 { process.processIdentifier }

    var isRunning: Bool {
        exitLock.lock()
        defer { exitLock.unlock() }
        return !hasExited
    }

    /// Waits for the child to exit; returns false if `deadline` passed first.
    func waitForExit(until deadline: Date) -> Bool {
        exitLock.lock()
        defer { exitLock.unlock() }
        if hasExited { return true }
        guard exited.wait(timeout: .now() + max(0, deadline.timeIntervalSinceNow)) == .success else { return false }
        hasExited = true
        return true
    }

    /// Sends `signal` if the child still runs.
    func send(_ signalNumber: Int32) {
        if isRunning && process.isRunning { _ = kill(process.processIdentifier, signalNumber) }
    }

    /// Waits until `deadline` for exit, SIGKILLs the child if it has not, and collects the result.
    func finish(deadline: Date) -> CommandResult {
        var timedOut = false
        if !waitForExit(until: deadline) {
            timedOut = true
            send(SIGKILL)
            _ = waitForExit(until: .distantFuture)
        }
        // The pipes reach EOF once the child is gone (it starts no children of its own).
        let drained = Date().addingTimeInterval(10)
        _ = stdout.waitForEnd(until: drained)
        _ = stderr.waitForEnd(until: drained)
        return CommandResult(
            command: command, status: process.terminationStatus,
            signaled: process.terminationReason == .uncaughtSignal, timedOut: timedOut,
            stdoutBytes: stdout.snapshot, stderr: stderr.text)
    }

    /// Last resort for tests that fail halfway: no child outlives its test.
    deinit {
        if isRunning {
            _ = kill(process.processIdentifier, SIGKILL)
            _ = waitForExit(until: Date().addingTimeInterval(10))
        }
    }
}

/// Runs `executable` to completion (or `timeout`), feeding it `stdin`.
func runCommand(_ executable: String, _ arguments: [String], stdin: [UInt8]? = nil, timeout: Duration) -> CommandResult {
    do {
        let child = try ChildProcess(executable: executable, arguments: arguments, stdin: stdin)
        return child.finish(deadline: Date().addingTimeInterval(timeout.seconds))
    } catch {
        return CommandResult(command: [executable] + arguments, status: -1, signaled: false, timedOut: false,
                             stdoutBytes: [], stderr: "could not start: \(error)")
    }
}

extension Duration {
    /// The duration in seconds, for `Date` arithmetic.
    var seconds: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
