import SluiceStreams
import SluiceTestSupport
import Testing

/// Window assignment checked by hand and against naive oracles over seeded random times.
@Suite("Windows")
struct WindowsTests {
    @Test(arguments: [
        (Int64(0), Int64(0), Int64(10)), (9, 0, 10), (10, 10, 20), (-1, -10, 0), (-10, -10, 0), (-11, -20, -10),
        (1_700_000_000_123, 1_700_000_000_120, 1_700_000_000_130),
    ])
    func tumblingCoversEachTimeOnce(time: Int64, start: Int64, end: Int64) {
        #expect(TumblingWindows(sizeMs: 10).window(containing: time) == Window(start: start, end: end))
    }

    @Test func tumblingAgreesWithTheDefinition() {
        var random = SeededRandom.fromEnvironment()
        for _ in 0..<5000 {
            let size = Int64(random.int(1...1000))
            let time = Int64(random.int(-100_000...100_000))
            let window = TumblingWindows(sizeMs: size).window(containing: time)
            #expect(window.contains(time) && window.end - window.start == size && window.start % size == 0,
                    "seed \(random.seed): size \(size) t \(time) → \(window)")
        }
    }

    @Test func hoppingTable() {
        let hop = HoppingWindows(sizeMs: 10, slideMs: 5)
        #expect(hop.windows(containing: 7) == [Window(start: 0, end: 10), Window(start: 5, end: 15)])
        #expect(hop.windows(containing: 5) == [Window(start: 0, end: 10), Window(start: 5, end: 15)])
        #expect(hop.windows(containing: -1) == [Window(start: -10, end: 0), Window(start: -5, end: 5)])
        let gappy = HoppingWindows(sizeMs: 3, slideMs: 5)
        #expect(gappy.windows(containing: 4) == [])
        #expect(gappy.windows(containing: 6) == [Window(start: 5, end: 8)])
    }

    /// Every window `[k·slide, k·slide + size)` covering t, found by scanning k.
    static func naiveHopping(_ time: Int64, size: Int64, slide: Int64) -> [Window] {
        var windows: [Window] = []
        let bound = (abs(time) + size) / slide + 2
        for k in -bound...bound where k * slide <= time && time < k * slide + size {
            windows.append(Window(start: k * slide, end: k * slide + size))
        }
        return windows
    }

    @Test func hoppingAgreesWithNaiveOracle() {
        var random = SeededRandom.fromEnvironment()
        for _ in 0..<3000 {
            let slide = Int64(random.int(1...50))
            let size = random.chance(0.7) ? slide * Int64(random.int(1...6)) : Int64(random.int(1...200))
            let time = Int64(random.int(-2000...2000))
            let actual = HoppingWindows(sizeMs: size, slideMs: slide).windows(containing: time)
            #expect(actual == Self.naiveHopping(time, size: size, slide: slide),
                    "seed \(random.seed): size \(size) slide \(slide) t \(time)")
            if size % slide == 0 { #expect(actual.count == Int(size / slide), "seed \(random.seed)") }
        }
    }

    @Test func sessionsMergeWhenARecordBridgesThem() {
        var sessions = SessionWindows(gapMs: 10)
        #expect(sessions.add(100) == .init(window: Window(start: 100, end: 110), merged: []))
        #expect(sessions.add(105) == .init(window: Window(start: 100, end: 115), merged: [Window(start: 100, end: 110)]))
        #expect(sessions.add(103) == .init(window: Window(start: 100, end: 115), merged: []))
        #expect(sessions.add(122) == .init(window: Window(start: 122, end: 132), merged: []))
        #expect(sessions.add(92) == .init(window: Window(start: 92, end: 115), merged: [Window(start: 100, end: 115)]))
        #expect(sessions.add(113) == .init(window: Window(start: 92, end: 132),
                                           merged: [Window(start: 92, end: 115), Window(start: 122, end: 132)]))
        #expect(sessions.add(132) == .init(window: Window(start: 132, end: 142), merged: []))  // exactly gap after 122
        #expect(sessions.sessions == [Window(start: 92, end: 132), Window(start: 132, end: 142)])
        let removedLast = sessions.remove(Window(start: 132, end: 142))
        let removedFirst = sessions.remove(Window(start: 92, end: 132))
        #expect(removedLast && removedFirst && sessions.isEmpty)
    }

    /// Sessions of sorted times: split wherever consecutive records are `gap` or more apart.
    static func naiveSessions(_ times: [Int64], gap: Int64) -> [Window] {
        var result: [Window] = []
        for time in times.sorted() {
            if let last = result.last, time < last.end {
                result[result.count - 1] = Window(start: last.start, end: max(last.end, time + gap))
            } else {
                result.append(Window(start: time, end: time + gap))
            }
        }
        return result
    }

    @Test func sessionsAgreeWithNaiveOracleInAnyArrivalOrder() {
        var random = SeededRandom.fromEnvironment()
        for iteration in 0..<500 {
            let gap = Int64(random.int(1...30))
            let times = (0..<random.int(1...40)).map { _ in Int64(random.int(-300...300)) }
            var sessions = SessionWindows(gapMs: gap)
            var model: Set<Window> = []  // rebuilt from the updates alone
            for time in times {
                let update = sessions.add(time)
                #expect(update.window.contains(time), "seed \(random.seed) #\(iteration)")
                for old in update.merged { #expect(model.remove(old) != nil, "seed \(random.seed) #\(iteration)") }
                model.insert(update.window)
            }
            let expected = Self.naiveSessions(times, gap: gap)
            #expect(sessions.sessions == expected, "seed \(random.seed) #\(iteration): gap \(gap) times \(times)")
            #expect(model == Set(expected), "seed \(random.seed) #\(iteration)")
        }
    }
}
