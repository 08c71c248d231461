// A real `sluiced` on an ephemeral port, and the `sluice` CLI pointed at it.
//
//     let broker = try #require(try Sluiced.start(dataDir: dir.path))
//     let result = broker.sluice(["topic", "create", "T", "-p", "3"])
//     broker.stop()                       // SIGTERM: expects exit 0 and "stopped cleanly"
//     broker.crash()                      // SIGKILL
//
// Start-up is synchronised on the line sluiced prints once it accepts connections
// (`sluiced listening on HOST:PORT, data in DIR`), read from its stdout pipe.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One running broker process.
final class Sluiced: @unchecked Sendable {
    let dataDir: String
    let port: Int
    private let child: ChildProcess

    /// Longest wait for the listening line (recovery of a killed broker's logs included).
    static let startTimeout: Duration = .seconds(30)
    /// Longest wait for a clean stop after SIGTERM.
    static let stopTimeout: Duration = .seconds(30)
    /// Default longest run of one CLI command.
    static let commandTimeout: Duration = .seconds(60)

    static let listeningPrefix = "sluiced listening on "

    var address: String { "127.0.0.1:\(port)" }

    private init(dataDir: String, port: Int, child: ChildProcess) {
        self.dataDir = dataDir
        self.port = port
        self.child = child
    }

    /// How a launch ended: listening, or exited (or timed out) before it printed the listening line.
    enum Launch {
        case listening(Sluiced)
        case exited(CommandResult)
    }

    /// Starts `sluiced --data-dir DIR --listen LISTEN` and waits for its listening line.
    static func launch(dataDir: String, listen: String = "127.0.0.1:0", extraArguments: [String] = []) throws -> Launch {
        let child = try ChildProcess(executable: Executables.sluiced,
                                     arguments: ["--data-dir", dataDir, "--listen", listen] + extraArguments)
        let deadline = Date().addingTimeInterval(startTimeout.seconds)
        let sawLine = child.stdout.wait(until: deadline) { bytes in
            guard let line = firstLine(bytes, startingWith: listeningPrefix) else { return false }
            return line.hasSuffix("\n")
        }
        guard sawLine, let line = firstLine(child.stdout.snapshot, startingWith: listeningPrefix) else {
            // Exited (stdout reached EOF), or still silent at the deadline: then `finish` kills it now.
            return .exited(child.finish(deadline: Date() < deadline ? deadline : Date()))
        }
        guard let port = parsePort(line) else {
            child.send(SIGKILL)
            return .exited(child.finish(deadline: Date().addingTimeInterval(stopTimeout.seconds)))
        }
        return .listening(Sluiced(dataDir: dataDir, port: port, child: child))
    }

    /// Starts a broker; records an issue (with what it printed) and returns nil if it does not come up.
    static func start(dataDir: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Sluiced? {
        switch try launch(dataDir: dataDir) {
        case .listening(let broker): return broker
        case .exited(let result):
            Issue.record("sluiced did not start listening within \(startTimeout): \(result)", sourceLocation: sourceLocation)
            return nil
        }
    }

    /// `sluiced listening on 127.0.0.1:40123, data in /tmp/x` → 40123.
    static func parsePort(_ line: String) -> Int? {
        let rest = line.dropFirst(listeningPrefix.count)
        guard let comma = rest.firstIndex(of: ","), let colon = rest[..<comma].lastIndex(of: ":") else { return nil }
        return Int(rest[rest.index(after: colon)..<comma])
    }

    /// The first line of `bytes` starting with `prefix`, with its newline if it has one yet.
    private static func firstLine(_ bytes: [UInt8], startingWith prefix: String) -> String? {
        let text = String(decoding: bytes, as: UTF8.self)
        var remaining = Substring(text)
        while !remaining.isEmpty {
            let end = remaining.firstIndex(of: "\n").map { remaining.index(after: $0) } ?? remaining.endIndex
            let line = remaining[..<end]
            if line.hasPrefix(prefix) { return String(line) }
            remaining = remaining[end...]
        }
        return nil
    }

    // MARK: The CLI

    /// Runs `sluice ARGUMENTS --brokers 127.0.0.1:PORT`, feeding it `stdin`.
    func sluice(_ arguments: [String], stdin: [UInt8]? = nil, timeout: Duration = commandTimeout) -> CommandResult {
        runCommand(Executables.sluice, arguments + ["--brokers", address], stdin: stdin, timeout: timeout)
    }

    /// Runs a command that must succeed; records an issue with its output otherwise.
    @discardableResult
    func sluiceOK(_ arguments: [String], stdin: [UInt8]? = nil, timeout: Duration = commandTimeout, _ context: String = "",
                  sourceLocation: SourceLocation = #_sourceLocation) -> CommandResult {
        let result = sluice(arguments, stdin: stdin, timeout: timeout)
        #expect(result.succeeded, "\(result) \(context)", sourceLocation: sourceLocation)
        return result
    }

    /// Runs a command that prints one JSON value on stdout and parses it; nil (with an issue) otherwise.
    func sluiceJSON(_ arguments: [String], _ context: String = "", sourceLocation: SourceLocation = #_sourceLocation) -> Any? {
        let result = sluiceOK(arguments, context, sourceLocation: sourceLocation)
        guard result.succeeded else { return nil }
        guard let value = try? JSONSerialization.jsonObject(with: Data(result.stdoutBytes), options: [.fragmentsAllowed]) else {
            Issue.record("stdout is not one JSON value: \(result) \(context)", sourceLocation: sourceLocation)
            return nil
        }
        return value
    }

    // MARK: Stopping

    /// SIGTERM; expects exit status 0 within `stopTimeout` and "stopped cleanly" in its output.
    func stop(sourceLocation: SourceLocation = #_sourceLocation) {
        child.send(SIGTERM)
        let result = child.finish(deadline: Date().addingTimeInterval(Self.stopTimeout.seconds))
        #expect(result.succeeded, "sluiced after SIGTERM: \(result)", sourceLocation: sourceLocation)
        #expect((result.stdout + result.stderr).contains("stopped cleanly"),
                "sluiced after SIGTERM does not say it stopped cleanly: \(result)", sourceLocation: sourceLocation)
    }

    /// SIGKILL, and waits until the process is gone (its data directory lock with it).
    func crash(sourceLocation: SourceLocation = #_sourceLocation) {
        child.send(SIGKILL)
        let result = child.finish(deadline: Date().addingTimeInterval(Self.stopTimeout.seconds))
        #expect(result.signaled && result.status == SIGKILL, "sluiced after SIGKILL: \(result)", sourceLocation: sourceLocation)
    }

    /// SIGSTOP: the process freezes with its sockets open, so peers and clients see a broker that
    /// accepts connections and answers nothing (a stalled leader), until `resume()`.
    func pause() { child.send(SIGSTOP) }

    /// SIGCONT after `pause()`: the broker carries on where it stopped, with stale timers and a stale term.
    func resume() { child.send(SIGCONT) }

    /// What the broker logged so far (stderr).
    var log: String { child.stderr.text }
}
