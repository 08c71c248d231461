// A real crash test: a child process (`sluice-log append --flush always --report-acks`) appends
// synthetic records and prints `ack FIRST LAST` after each append returns; the test kills it with SIGKILL
// at a random ack and then checks, in-process, that every acknowledged record survived exactly once with
// exactly the content the generator defines (tools/sluice-log/SyntheticRecords.swift).

import Foundation
import SluiceCore
import SluiceTestSupport
import Testing

@testable import SluiceLog

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The synthetic record contract of `sluice-log append` for uncompressed batches, re-implemented.
enum SyntheticContract {
    static let timestampBase: Int64 = 1_700_000_000_000

    static func key(_ offset: Int64) -> [UInt8] { Array("key-\(offset % 1000)".utf8) }

    /// `record-<o>|`, then SplitMix64(seed: o) output bytes (least significant first) up to `size` bytes.
    static func value(_ offset: Int64, size: Int) -> [UInt8] {
        var bytes = Array("record-\(offset)|".utf8)
        guard size > bytes.count else { return bytes }
        var random = SeededRandom(seed: UInt64(bitPattern: offset))
        while bytes.count < size {
            var word = random.next()
            for _ in 0..<min(8, size - bytes.count) {
                bytes.append(UInt8(truncatingIfNeeded: word))
                word >>= 8
            }
        }
        return bytes
    }

    /// Why `record` is not the synthetic record at its offset, nil when it is.
    static func mismatch(_ record: Record, size: Int) -> String? {
        let o = record.offset
        if record.key != key(o) { return "offset \(o): wrong key" }
        if record.timestamp != timestampBase + o { return "offset \(o): timestamp \(record.timestamp)" }
        guard let value = record.value else { return "offset \(o): null value" }
        if !value.starts(with: Array("record-\(o)|".utf8)) { return "offset \(o): value does not start with record-\(o)|" }
        if value.count != max(size, "record-\(o)|".utf8.count) { return "offset \(o): value of \(value.count) bytes" }
        if value != Self.value(o, size: size) { return "offset \(o): filler differs from the generator's" }
        return nil
    }
}

/// One run of the child: the acks it printed before it died, how it ended, and its stderr.
struct ChildRun {
    var acks: [(first: Int64, last: Int64)] = []
    var killed = false
    var terminationStatus: Int32 = 0
    var terminationReason: Process.TerminationReason = .exit
    var stderr = ""
}

@Suite("crash")
struct CrashTest {
    static let executable = builtProductsDirectory() + "/sluice-log"
    static let segmentBytes = 64 << 10

    /// Starts `sluice-log append`, reads its ack lines as they come, and sends SIGKILL from the reading
    /// loop once `killAfter` acks arrived. Reads to EOF (acks printed before the kill still count).
    static func runChild(directory: String, size: Int, batch: Int, killAfter: Int, stderrPath: String) throws -> ChildRun {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [
            "append", directory, "--count", "10000000", "--size", "\(size)", "--batch", "\(batch)",
            "--flush", "always", "--report-acks", "--segment-bytes", "\(segmentBytes)",
        ]
        let output = Pipe()
        process.standardOutput = output
        #expect(FileManager.default.createFile(atPath: stderrPath, contents: nil))
        let errorHandle = try #require(FileHandle(forWritingAtPath: stderrPath))
        process.standardError = errorHandle
        try process.run()
        // Our copy of the write end must go, or the read below never sees EOF.
        try? output.fileHandleForWriting.close()
        try? errorHandle.close()

        var run = ChildRun()
        let fd = output.fileHandleForReading.fileDescriptor
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        var malformed: [String] = []
        readLoop: while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break readLoop }
            pending += chunk[0..<n]
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                let fields = line.split(separator: " ")
                guard fields.count == 3, fields[0] == "ack", let first = Int64(fields[1]), let last = Int64(fields[2]) else {
                    malformed.append(line)
                    continue
                }
                run.acks.append((first, last))
                if !run.killed && run.acks.count >= killAfter {
                    #expect(kill(process.processIdentifier, SIGKILL) == 0)
                    run.killed = true
                }
            }
        }
        process.waitUntilExit()
        try? output.fileHandleForReading.close()
        run.terminationStatus = process.terminationStatus
        run.terminationReason = process.terminationReason
        run.stderr = String(decoding: readFileBytes(stderrPath) ?? [], as: UTF8.self)
        #expect(malformed.isEmpty, "unexpected output lines: \(malformed.prefix(3))")
        return run
    }

    @Test("crash: SIGKILL at a random ack never loses an acknowledged record", .timeLimit(.minutes(10)))
    func killedWriterKeepsEveryAck() throws {
        guard FileSystem.exists(Self.executable) else {
            Issue.record("\(Self.executable) is missing: build every product first (`swift build --build-tests`)")
            return
        }
        var rng = SeededRandom.fromEnvironment()
        let dir = TemporaryDirectory("sluice-crash")
        let scratch = TemporaryDirectory("sluice-crash-stderr")
        defer {
            dir.remove()
            scratch.remove()
        }
        let config = LogConfig(segmentBytes: Self.segmentBytes, segmentMilliseconds: nil, retentionMilliseconds: nil,
                               flushPolicy: .os)
        var logEnd: Int64 = 0
        var lastAcked: Int64 = -1
        // Where each round's records start, and their value size.
        var rounds: [(from: Int64, size: Int)] = []
        for round in 0..<5 {
            let size = Int.random(in: 20...400, using: &rng)
            let batch = Int.random(in: 1...20, using: &rng)
            let killAfter = Int.random(in: 5...60, using: &rng)
            let context = "round \(round), size \(size), batch \(batch), kill after \(killAfter) acks, seed \(rng.seed)"
            let run = try Self.runChild(directory: dir.path, size: size, batch: batch, killAfter: killAfter,
                                        stderrPath: scratch.child("stderr-\(round)"))
            #expect(run.killed, "the child stopped before it was killed (\(context)): status \(run.terminationStatus), stderr: \(run.stderr)")
            #expect(run.terminationReason == .uncaughtSignal && run.terminationStatus == SIGKILL, "\(context)")
            // The child continues at the log end the previous round left, and acks contiguous offsets.
            #expect(run.acks.first?.first == logEnd, "first ack \(String(describing: run.acks.first)), log end \(logEnd) (\(context))")
            for (previous, next) in zip(run.acks, run.acks.dropFirst()) {
                #expect(next.first == previous.last + 1, "acks \(previous) then \(next) (\(context))")
            }
            for ack in run.acks { #expect(ack.last - ack.first + 1 == Int64(batch), "\(context)") }
            if let last = run.acks.last { lastAcked = last.last }

            let log = try openLog(dir.path, config: config)
            #expect(!log.recoveryReport.cleanShutdown, "\(context)")
            #expect(log.logStartOffset == 0)
            #expect(log.logEndOffset >= lastAcked + 1, "acked up to \(lastAcked), log ends at \(log.logEndOffset) (\(context))")
            // The log holds the records of every round so far, each round with its own value size.
            rounds.append((logEnd, size))
            let records = try readAllRecords(log)
            expectOffsets(records.map(\.offset), 0..<log.logEndOffset, "offsets contiguous from 0, each once (\(context))")
            var problems: [String] = []
            for record in records {
                let size = rounds.last { $0.from <= record.offset }?.size ?? 0
                if let problem = SyntheticContract.mismatch(record, size: size) { problems.append(problem) }
            }
            #expect(problems.isEmpty, "\(problems.count) wrong records, e.g. \(problems.prefix(3)) (\(context))")
            logEnd = log.logEndOffset
            try log.close()
        }
        #expect(lastAcked > 0, "seed \(rng.seed)")
    }
}
