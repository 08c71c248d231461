// What the end-to-end scenarios share: the serialised root suite, keyed-record generators and
// checkers, and readers for the CLI's JSON output.

import Foundation
import SluiceTestSupport
import Testing

/// Root of every end-to-end suite. Serialised: each scenario runs its own broker and CLI processes, and
/// on a small machine running them side by side only makes every timeout tighter.
@Suite("end to end", .serialized)
enum EndToEnd {}

/// nil when the executables exist; otherwise records an issue (the caller returns).
func executablesPresent(sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
    if let missing = Executables.missing() {
        Issue.record(Comment(rawValue: missing), sourceLocation: sourceLocation)
        return false
    }
    return true
}

/// Wall-clock epoch milliseconds (record timestamps are stamped by the producer with the same clock).
func nowMilliseconds() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }

/// The keyed lines of the "done when" flow: `key-<n % keys>:value-<n>` for n in `range`.
enum KeyedLines {
    static func file(_ range: Range<Int>, keys: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(range.count * 24)
        for n in range { bytes.append(contentsOf: "key-\(n % keys):value-\(n)\n".utf8) }
        return bytes
    }

    /// Checks consumed `key|value` lines against the produced `range`: every record exactly once, each
    /// with its own key, and per key in produced order. Returns the problems (empty when all is well).
    static func problems(_ lines: [String], expected range: Range<Int>, keys: Int, problemsMax: Int = 5) -> [String] {
        var problems: [String] = []
        func note(_ text: String) { if problems.count < problemsMax { problems.append(text) } }
        if lines.count != range.count { note("\(lines.count) lines, expected \(range.count)") }
        var seen = [Bool](repeating: false, count: range.count)
        var lastValueOfKey = [Int](repeating: -1, count: keys)
        for line in lines {
            guard let bar = line.firstIndex(of: "|") else { note("malformed line '\(line)'"); continue }
            let keyText = line[..<bar]
            let valueText = line[line.index(after: bar)...]
            guard keyText.hasPrefix("key-"), let key = Int(keyText.dropFirst(4)),
                  valueText.hasPrefix("value-"), let value = Int(valueText.dropFirst(6))
            else { note("malformed line '\(line)'"); continue }
            guard range.contains(value) else { note("value-\(value) was never produced"); continue }
            if seen[value - range.lowerBound] { note("value-\(value) printed twice") }
            seen[value - range.lowerBound] = true
            if key != value % keys { note("value-\(value) came with key-\(key)") }
            if key >= 0 && key < keys {
                if lastValueOfKey[key] > value { note("key-\(key): value-\(value) after value-\(lastValueOfKey[key])") }
                lastValueOfKey[key] = max(lastValueOfKey[key], value)
            }
        }
        if let missing = seen.firstIndex(of: false) {
            note("\(seen.count(where: { !$0 })) records missing, first value-\(missing + range.lowerBound)")
        }
        return problems
    }
}

/// Per-partition numbers from `topic describe --json` / `group describe --json`.
struct PartitionOffsets: Equatable, CustomStringConvertible {
    var partition: Int
    var first: Int64
    var second: Int64?
    var description: String { "p\(partition): \(first)/\(second.map(String.init) ?? "null")" }
}

enum JSONFields {
    /// `"partitions"` of a JSON object as dictionaries.
    static func partitions(_ value: Any?) -> [[String: Any]] {
        ((value as? [String: Any])?["partitions"] as? [[String: Any]]) ?? []
    }

    /// An integer field. (On Linux `0 is Bool` holds for a parsed NSNumber, so no Bool check here.)
    static func int(_ value: Any?) -> Int64? {
        guard let number = value as? NSNumber else { return nil }
        let integer = number.int64Value
        return number.doubleValue == Double(integer) ? integer : nil
    }

    static func double(_ value: Any?) -> Double? { (value as? NSNumber)?.doubleValue }

    /// `[partition: (log_start_offset, high_watermark)]` of `topic describe --json`.
    static func topicOffsets(_ value: Any?) -> [PartitionOffsets] {
        partitions(value).map {
            PartitionOffsets(partition: Int(int($0["partition"]) ?? -1), first: int($0["log_start_offset"]) ?? -1,
                             second: int($0["high_watermark"]))
        }.sorted { $0.partition < $1.partition }
    }

    /// `(end_offset, committed_offset)` per partition of `group describe --json`.
    static func groupOffsets(_ value: Any?) -> [PartitionOffsets] {
        partitions(value).map {
            PartitionOffsets(partition: Int(int($0["partition"]) ?? -1), first: int($0["end_offset"]) ?? -1,
                             second: int($0["committed_offset"]))
        }.sorted { $0.partition < $1.partition }
    }
}
