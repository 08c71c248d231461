import SluiceSQL
@testable import SluiceStreams
import SluiceTestSupport
import Testing

/// Random event streams generated from a seed: several partitions, out-of-order and late events, filtered-out
/// events, missing fields, invalid JSON and processing time passing without records.
struct StreamGenerator {
    var random: SeededRandom
    var partitions: [Int32]
    var nowMs: Int64 = 0
    var clocks: [Int32: Int64] = [:]
    var offset: Int64 = 0

    static let users: [JSONValue?] = ["a", "b", "c", 7, .null, nil]
    static let words = ["the", "cat", "The", "sat", "", "on", "mat"]

    init(_ random: SeededRandom, partitions: [Int32]) {
        self.random = random
        self.partitions = partitions
    }

    mutating func pick<T>(_ values: [T]) -> T { values[random.int(0...values.count - 1)] }

    mutating func steps(_ count: Int) -> [Step] {
        (0..<count).map { _ in step() }
    }

    mutating func step() -> Step {
        nowMs += Int64(random.int(0...25))
        if random.chance(0.1) { return .advance(nowMs: nowMs) }
        let partition = pick(partitions)
        var clock = clocks[partition, default: 1_000]
        clock += Int64(random.int(0...20))
        clocks[partition] = clock
        let jitter = random.chance(0.25) ? Int64(random.int(0...60)) : 0
        offset += 1
        return .record(TestRecord(key: random.chance(0.5) ? nil : Array("k\(offset % 5)".utf8), value: value(ts: clock - jitter),
                                  timestampMs: clock - jitter, partition: partition, offset: offset), nowMs: nowMs)
    }

    mutating func value(ts: Int64) -> [UInt8] {
        if random.chance(0.02) { return Array("{\"user\": oops".utf8) }
        var members: [(String, JSONValue)] = []
        if let user = pick(Self.users) { members.append(("user", user)) }
        switch random.int(0...5) {
        case 0: break  // missing
        case 1: members.append(("amount", .number(Double(random.int(-20...200)) / 4)))
        default: members.append(("amount", .int(Int64(random.int(-5...50)))))
        }
        if !random.chance(0.03) { members.append(("ts", .int(ts))) }
        members.append(("action", random.chance(0.8) ? "click" : "view"))
        let text = (0..<random.int(0...4)).map { _ in pick(Self.words) }.joined(separator: " ")
        members.append(("text", .string(text)))
        return Array(JSONValue.object(JSONObject(members)).serialized().utf8)
    }
}

/// The task against a naive oracle over seeded random streams: the oracle replays the watermark rule record by
/// record, then computes every window and aggregate directly from the on-time events.
@Suite("Processor task: oracle")
struct ProcessorTaskOracleTests {
    /// One event the oracle keeps.
    struct Event {
        var key: JSONValue
        var amount: JSONValue
        var time: Int64
        var step: Int
    }

    /// What the oracle learns from replaying the watermark: on-time events, late steps, watermark per step.
    struct Replay {
        var onTime: [Event] = []
        var lateSteps: Set<Int> = []
        /// The watermark after each step.
        var watermarks: [Int64] = []
    }

    static func replay(_ steps: [Step], partitions: [Int32], lateness: Int64) -> Replay {
        var replay = Replay()
        var maxima: [Int32: Int64] = [:]
        var watermark = Int64.min
        for (index, step) in steps.enumerated() {
            if case .record(let record, _) = step, let value = try? JSONParser.parse(record.value ?? []) {
                let time: Int64? = if case .int(let t) = value[JSONPath("ts")] { t } else { nil }
                if let time {
                    if value[JSONPath("action")] == "click" {
                        if time < watermark {
                            replay.lateSteps.insert(index)
                        } else {
                            replay.onTime.append(Event(key: value[JSONPath("user")], amount: value[JSONPath("amount")],
                                                       time: time, step: index))
                        }
                    }
                    maxima[record.partition] = max(maxima[record.partition] ?? time, time)
                }
            }
            if maxima.count == partitions.count, let lowest = maxima.values.min() {
                watermark = max(watermark, lowest - lateness)
            }
            replay.watermarks.append(watermark)
        }
        return replay
    }

    static func windows(of time: Int64, _ kind: WindowPlan.Kind, sessions: [Window]) -> [Window] {
        switch kind {
        case .tumble(let size):
            let start = time >= 0 ? time / size * size : -((-time + size - 1) / size) * size
            return [Window(start: start, end: start + size)]
        case .hop(let slide, let size):
            // Every k·slide near t, kept when its window covers t (the scan of WindowsTests.naiveHopping,
            // narrowed to where covering windows can start).
            let k = time / slide
            return (k - size / slide - 2...k + 2).map { Window(start: $0 * slide, end: $0 * slide + size) }
                .filter { $0.contains(time) }
        case .session:
            return sessions.filter { $0.contains(time) }
        }
    }

    /// The rendered result line of a group.
    static func line(key: JSONValue, window: Window, _ events: [Event]) -> String {
        let rows = events.map { (value: $0.amount, time: $0.time, sequence: Int64($0.step)) }
        let value: JSONValue = [
            "user": key, "n": .int(Int64(events.count)), "total": AggregatesTests.oracle(.sum, rows),
            "mx": AggregatesTests.oracle(.max, rows), "window_start": .int(window.start), "window_end": .int(window.end),
        ]
        let keyText: String
        switch key {
        case .null: keyText = "∅"
        case .string(let text): keyText = text
        default: keyText = key.serialized()
        }
        return "\(keyText) \(value.serialized()) @\(window.end - 1)"
    }

    static func lateLine(_ step: Step) -> String {
        guard case .record(let record, _) = step else { return "?" }
        return render(OutputRecord(destination: .late, key: record.key, value: record.value ?? [], timestampMs: record.timestampMs))
    }

    /// Each key's sessions over all its on-time events.
    static func sessions(_ events: [Event], gap: Int64) -> [JSONValue: [Window]] {
        Dictionary(grouping: events, by: \.key).mapValues { WindowsTests.naiveSessions($0.map(\.time), gap: gap) }
    }

    /// EMIT FINAL: per step, the late copy, then the groups whose window the step's watermark passed.
    static func expectedFinal(_ steps: [Step], _ replay: Replay, _ kind: WindowPlan.Kind) -> [[String]] {
        var sessionsByKey: [JSONValue: [Window]] = [:]
        if case .session(let gap) = kind { sessionsByKey = sessions(replay.onTime, gap: gap) }
        var groups: [Window: [JSONValue: [Event]]] = [:]
        for event in replay.onTime {
            for window in windows(of: event.time, kind, sessions: sessionsByKey[event.key] ?? []) {
                groups[window, default: [:]][event.key, default: []].append(event)
            }
        }
        var closing: [[(Window, JSONValue, [Event])]] = Array(repeating: [], count: steps.count + 1)
        for (window, byKey) in groups {
            let step = replay.watermarks.firstIndex { $0 >= window.end } ?? steps.count
            for (key, events) in byKey { closing[step].append((window, key, events)) }
        }
        return closing.enumerated().map { index, closed in
            let sorted = closed.sorted { a, b in
                if a.0.end != b.0.end { return a.0.end < b.0.end }
                let order = JSONValue.compare(a.1, b.1)
                return order != 0 ? order < 0 : a.0.start < b.0.start
            }
            let late = replay.lateSteps.contains(index) ? [lateLine(steps[index])] : []
            return late + sorted.map { line(key: $0.1, window: $0.0, $0.2) }
        }
    }

    /// EMIT CHANGES: per step, the event's group in each of its windows (for sessions: the session it is in
    /// now, over the events so far), then the late copy.
    static func expectedChanges(_ steps: [Step], _ replay: Replay, _ kind: WindowPlan.Kind) -> [[String]] {
        var lines: [[String]] = Array(repeating: [], count: steps.count + 1)
        var seen: [Event] = []
        for event in replay.onTime {
            seen.append(event)
            let sameKey = seen.filter { $0.key == event.key }
            var sessions: [Window] = []
            if case .session(let gap) = kind { sessions = WindowsTests.naiveSessions(sameKey.map(\.time), gap: gap) }
            for window in windows(of: event.time, kind, sessions: sessions) {
                lines[event.step].append(line(key: event.key, window: window, sameKey.filter { window.contains($0.time) }))
            }
        }
        for step in replay.lateSteps { lines[step].append(lateLine(steps[step])) }
        return lines
    }

    /// Runs the steps, returning the rendered outputs of each step and of `finish` (last).
    static func outputs(_ plan: ProcessorPlan, _ steps: [Step], partitions: [Int32]) throws -> [[String]] {
        var task = ProcessorTask(plan: plan, inputPartitions: partitions, nowMs: 0)
        var lines: [[String]] = []
        for step in steps { lines.append(render(try task.run(step))) }
        lines.append(render(task.finished()))
        return lines
    }

    static func firstDifference(_ actual: [[String]], _ expected: [[String]]) -> String {
        for (index, (a, e)) in zip(actual, expected).enumerated() where a != e {
            return "step \(index): got \(a), expected \(e)"
        }
        return "got \(actual.count) steps, expected \(expected.count)"
    }

    static let kinds: [WindowPlan.Kind] = [.tumble(sizeMs: 40), .hop(slideMs: 15, sizeMs: 45), .hop(slideMs: 10, sizeMs: 40),
                                           .session(gapMs: 25)]

    @Test(arguments: 0..<kinds.count)
    func finalAndChangesMatchTheOracle(kindIndex: Int) throws {
        var random = SeededRandom.fromEnvironment()
        let kind = Self.kinds[kindIndex]
        for iteration in 0..<40 {
            let partitions: [Int32] = Array(0..<Int32(random.int(1...3)))
            let lateness = Int64(random.pick([0, 0, 10, 50]))
            var generator = StreamGenerator(SeededRandom(seed: random.next()), partitions: partitions)
            let steps = generator.steps(random.int(10...50))
            let replay = Self.replay(steps, partitions: partitions, lateness: lateness)
            let context = "seed \(random.seed) #\(iteration) \(kind) lateness \(lateness)"

            let final = Plans.clicks(kind, emit: .final, filterClicks: true, extraMax: true, lateness: lateness)
            let finalOutputs = try Self.outputs(final, steps, partitions: partitions)
            let expectedFinal = Self.expectedFinal(steps, replay, kind)
            #expect(finalOutputs == expectedFinal, "\(context): \(Self.firstDifference(finalOutputs, expectedFinal))")

            let changes = Plans.clicks(kind, emit: .changes, filterClicks: true, extraMax: true, lateness: lateness)
            let changeOutputs = try Self.outputs(changes, steps, partitions: partitions)
            let expectedChanges = Self.expectedChanges(steps, replay, kind)
            #expect(changeOutputs == expectedChanges, "\(context): \(Self.firstDifference(changeOutputs, expectedChanges))")

            let every = Plans.clicks(kind, emit: .every(intervalMs: Int64(random.int(10...80))), filterClicks: true,
                                     extraMax: true, lateness: lateness)
            let everyOutputs = try Self.outputs(every, steps, partitions: partitions)
            Self.checkEvery(everyOutputs, final: finalOutputs, changes: changeOutputs, context: context)
        }
    }

    /// EMIT EVERY = EMIT FINAL's outputs, each step followed by early results; an early result is the group's
    /// latest EMIT CHANGES result so far.
    static func checkEvery(_ every: [[String]], final: [[String]], changes: [[String]], context: String) {
        var latest: [String: String] = [:]  // group (key and window) → its latest change line
        for (index, lines) in every.enumerated() {
            for line in changes[index] where !line.hasPrefix("late ") { latest[group(of: line)] = line }
            let finals = final[index]
            #expect(Array(lines.prefix(finals.count)) == finals, "\(context) step \(index): finals differ")
            for early in lines.dropFirst(finals.count) {
                #expect(latest[group(of: early)] == early, "\(context) step \(index): early \(early)")
            }
        }
    }

    /// The key and window of a result line (the key, then the window members at the end of the value).
    static func group(of line: String) -> String {
        let key = line.prefix { $0 != " " }
        let window = line.split(separator: ",").suffix(2).joined(separator: ",")
        return "\(key) \(window)"
    }
}

extension SeededRandom {
    mutating func pick<T>(_ values: [T]) -> T { values[int(0...values.count - 1)] }
}
