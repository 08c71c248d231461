import SluiceStreams
import SluiceTestSupport
import Testing

/// The keyed window store driven by a watermark over seeded random out-of-order streams, checked against a
/// naive oracle that groups every on-time record by (key, window) after the fact.
@Suite("Window state")
struct WindowStateTests {
    static let functions: [AggregateFunction] = [.countAll, .sum, .max, .countDistinct, .firstValue, .lastValue]

    struct Event {
        var key: JSONValue
        var time: Int64
        var amount: JSONValue
        var sequence: Int64
        var values: [JSONValue] { [nil, amount, amount, amount, amount, amount] }
    }

    static func randomEvents(_ random: inout SeededRandom, count: Int) -> [Event] {
        var clock: Int64 = 1_000
        return (0..<count).map { index in
            clock += Int64(random.int(0...30))
            let jitter = random.chance(0.2) ? Int64(random.int(0...200)) : 0  // out of order, some of it late
            let keys: [JSONValue] = ["ann", "bob", 7, nil, ["a", 1]]
            return Event(key: keys[random.int(0...keys.count - 1)], time: clock - jitter,
                         amount: random.chance(0.1) ? nil : .int(Int64(random.int(-5...100))), sequence: Int64(index))
        }
    }

    /// The expected results: every on-time event in every window it belongs to, in emission order.
    static func oracle(_ events: [Event], windowsOf: (Event) -> [Window]) -> [WindowResult] {
        var groups: [Window: [JSONValue: [Event]]] = [:]
        for event in events {
            for window in windowsOf(event) { groups[window, default: [:]][event.key, default: []].append(event) }
        }
        var results: [WindowResult] = []
        for (window, byKey) in groups {
            for (key, members) in byKey {
                let values = functions.enumerated().map { index, function in
                    AggregatesTests.oracle(function, members.map { ($0.values[index], $0.time, $0.sequence) })
                }
                results.append(WindowResult(key: key, window: window, values: values))
            }
        }
        return results.sorted { a, b in
            if a.window.end != b.window.end { return a.window.end < b.window.end }
            let order = JSONValue.compare(a.key, b.key)
            return order != 0 ? order < 0 : a.window.start < b.window.start
        }
    }

    /// The first place two result lists differ, for readable failure messages.
    static func difference(_ actual: [WindowResult], _ expected: [WindowResult]) -> String {
        for (index, (a, e)) in zip(actual, expected).enumerated() where a != e {
            return "result \(index): got \(a), expected \(e)"
        }
        return "got \(actual.count) results, expected \(expected.count)"
    }

    /// Runs `events` through a tracker (lateness `lateness`) and the store; returns the emitted results and
    /// the on-time events. Checks at each emission that the watermark has passed the window's end.
    static func run(_ events: [Event], lateness: Int64, state: inout WindowState, seed: UInt64,
                    add: (inout WindowState, Event) throws -> Void) rethrows -> (emitted: [WindowResult], onTime: [Event]) {
        var tracker = WatermarkTracker(partitions: [0], allowedLatenessMs: lateness, nowMs: 0)
        var emitted: [WindowResult] = []
        var onTime: [Event] = []
        for (index, event) in events.enumerated() {
            if !tracker.isLate(event.time) {
                try add(&state, event)
                onTime.append(event)
            }
            tracker.observe(partition: 0, eventTimeMs: event.time, nowMs: Int64(index))
            if index % 7 == 0 {  // watermarks advance per batch
                let watermark = tracker.advance(nowMs: Int64(index))
                let closed = state.advance(to: watermark)
                for result in closed { #expect(result.window.end <= watermark, "seed \(seed)") }
                emitted += closed
            }
        }
        emitted += state.advance(to: Int64.max)  // end of input closes every window
        return (emitted, onTime)
    }

    @Test func tumblingEmitFinalMatchesOracle() throws {
        var random = SeededRandom.fromEnvironment()
        for iteration in 0..<40 {
            let events = Self.randomEvents(&random, count: 400)
            let tumbling = TumblingWindows(sizeMs: Int64(random.int(10...300)))
            var state = WindowState(functions: Self.functions)
            let (emitted, onTime) = try Self.run(events, lateness: Int64(random.int(0...50)), state: &state, seed: random.seed) {
                try $0.add(key: $1.key, window: tumbling.window(containing: $1.time), values: $1.values,
                           eventTimeMs: $1.time, sequence: $1.sequence)
            }
            let expected = Self.oracle(onTime) { [tumbling.window(containing: $0.time)] }
            #expect(emitted == expected, "seed \(random.seed) #\(iteration): \(Self.difference(emitted, expected))")
            #expect(state.stateBytes == 0 && state.windowCount == 0, "seed \(random.seed): state not freed")
        }
    }

    @Test func hoppingEmitFinalMatchesOracle() throws {
        var random = SeededRandom.fromEnvironment()
        for iteration in 0..<30 {
            let events = Self.randomEvents(&random, count: 300)
            let slide = Int64(random.int(5...60))
            let hopping = HoppingWindows(sizeMs: slide * Int64(random.int(1...4)), slideMs: slide)
            var state = WindowState(functions: Self.functions)
            let (emitted, onTime) = try Self.run(events, lateness: Int64(random.int(0...50)), state: &state, seed: random.seed) { state, event in
                try hopping.forEachWindow(containing: event.time) { window in
                    try state.add(key: event.key, window: window, values: event.values, eventTimeMs: event.time,
                                  sequence: event.sequence)
                }
            }
            let expected = Self.oracle(onTime) { hopping.windows(containing: $0.time) }
            #expect(emitted == expected, "seed \(random.seed) #\(iteration): \(Self.difference(emitted, expected))")
            #expect(state.stateBytes == 0 && state.windowCount == 0, "seed \(random.seed): state not freed")
        }
    }

    @Test func sessionEmitFinalMatchesOracle() throws {
        var random = SeededRandom.fromEnvironment()
        for iteration in 0..<40 {
            let events = Self.randomEvents(&random, count: 300)
            let gap = Int64(random.int(5...80))
            var state = WindowState(functions: Self.functions)
            let (emitted, onTime) = try Self.run(events, lateness: Int64(random.int(0...50)), state: &state, seed: random.seed) {
                try $0.addToSession(key: $1.key, eventTimeMs: $1.time, gapMs: gap, values: $1.values, sequence: $1.sequence)
            }
            var sessionsByKey: [JSONValue: [Window]] = [:]
            for key in Set(onTime.map(\.key)) {
                sessionsByKey[key] = WindowsTests.naiveSessions(onTime.filter { $0.key == key }.map(\.time), gap: gap)
            }
            let expected = Self.oracle(onTime) { event in sessionsByKey[event.key]!.filter { $0.contains(event.time) } }
            #expect(emitted == expected, "seed \(random.seed) #\(iteration): \(Self.difference(emitted, expected))")
            #expect(state.stateBytes == 0 && state.windowCount == 0, "seed \(random.seed): state not freed")
        }
    }

    @Test func emitChangesReturnsEveryUpdateAndFreesClosedWindows() throws {
        var random = SeededRandom.fromEnvironment()
        let events = Self.randomEvents(&random, count: 300)
        let tumbling = TumblingWindows(sizeMs: 100)
        var state = WindowState(functions: Self.functions, mode: .changes)
        var seen: [Window: [JSONValue: [Event]]] = [:]
        let (emitted, _) = try Self.run(events, lateness: 20, state: &state, seed: random.seed) { state, event in
            let window = tumbling.window(containing: event.time)
            let change = try state.add(key: event.key, window: window, values: event.values, eventTimeMs: event.time,
                                       sequence: event.sequence)
            seen[window, default: [:]][event.key, default: []].append(event)
            let expected = Self.oracle(seen[window]![event.key]!) { _ in [window] }
            #expect(change.map { [$0] } == expected, "seed \(random.seed)")
        }
        #expect(emitted.isEmpty)
        #expect(state.stateBytes == 0 && state.windowCount == 0)
    }

    @Test func theStateLimitRefusesRowsWithoutChangingState() throws {
        let window = Window(start: 0, end: 10)
        var state = WindowState(functions: [.countAll, .countDistinct], stateBytesMax: 2_000)
        var accepted = 0
        var refusal: StateLimitExceeded? = nil
        for index in 0..<1_000 {
            let before = state.stateBytes
            do {
                try state.add(key: .int(Int64(index % 3)), window: window, values: [nil, .string("value number \(index)")],
                              eventTimeMs: 1)
                accepted += 1
                #expect(state.stateBytes > before && state.stateBytes <= 2_000)
            } catch {
                refusal = error
                #expect(state.stateBytes == before)
                break
            }
        }
        let error = try #require(refusal)
        #expect(error.stateBytes + error.requestedBytes > error.stateBytesMax)
        #expect(accepted > 3)
        let results = state.advance(to: 10)
        #expect(results.count == 3)
        #expect(results.map { if case .int(let n) = $0.values[0] { return Int(n) } else { return 0 } }.reduce(0, +) == accepted)
        #expect(state.stateBytes == 0)
    }

    @Test func emissionOrderIsWindowEndThenKey() {
        var state = WindowState(functions: [.countAll])
        let late = Window(start: 10, end: 20)
        let early = Window(start: 0, end: 10)
        for (key, window) in [("b", late), ("a", late), ("c", early), ("a", early)] as [(JSONValue, Window)] {
            _ = try? state.add(key: key, window: window, values: [nil], eventTimeMs: window.start)
        }
        #expect(state.advance(to: 9).isEmpty)
        let first = state.advance(to: 10)  // the watermark reaching a window's end closes it
        #expect(first.map(\.key) == ["a", "c"] && first.map(\.window) == [early, early])
        let results = state.advance(to: 25)
        #expect(results.map(\.key) == ["a", "b"] && results.map(\.window) == [late, late])
        #expect(state.advance(to: 30).isEmpty)  // exactly once
    }
}
