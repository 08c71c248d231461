import SluiceStreams
import SluiceTestSupport
import Testing

/// Accumulators by hand, against a direct computation, and merge against add-all.
@Suite("Aggregates")
struct AggregatesTests {
    /// A row: the argument value with its event time and arrival sequence.
    typealias Row = (value: JSONValue, time: Int64, sequence: Int64)

    static func accumulate(_ function: AggregateFunction, _ rows: [Row]) -> Accumulator {
        var accumulator = Accumulator(function)
        for row in rows { accumulator.add(row.value, eventTimeMs: row.time, sequence: row.sequence) }
        return accumulator
    }

    /// What each function should return, computed directly from all rows.
    static func oracle(_ function: AggregateFunction, _ rows: [Row]) -> JSONValue {
        let present = rows.filter { !$0.value.isNull }
        let numbers = present.compactMap { row -> JSONValue? in
            switch row.value { case .int, .number: return row.value; default: return nil }
        }
        switch function {
        case .countAll: return .int(Int64(rows.count))
        case .count: return .int(Int64(present.count))
        case .countDistinct:
            let keys = Set(present.map { value -> JSONValue in
                if case .number(let d) = value.value, d.rounded() == d { return .int(Int64(d)) }
                return value.value
            })
            return .int(Int64(keys.count))
        case .sum:
            guard !numbers.isEmpty else { return .null }
            let allInts = numbers.allSatisfy { if case .int = $0 { return true } else { return false } }
            if allInts { return .int(numbers.reduce(0) { if case .int(let v) = $1 { return $0 + v } else { return $0 } }) }
            return .number(numbers.reduce(0.0) { $0 + $1.doubleValue! })
        case .avg:
            guard !numbers.isEmpty else { return .null }
            return .number(numbers.reduce(0.0) { $0 + $1.doubleValue! } / Double(numbers.count))
        case .min: return present.map(\.value).min { JSONValue.compare($0, $1) < 0 } ?? .null
        case .max: return present.map(\.value).max { JSONValue.compare($0, $1) < 0 } ?? .null
        case .firstValue:
            return present.min { ($0.time, $0.sequence) < ($1.time, $1.sequence) }?.value ?? .null
        case .lastValue:
            return present.max { ($0.time, $0.sequence) < ($1.time, $1.sequence) }?.value ?? .null
        }
    }

    @Test func handWrittenResults() {
        let rows: [Row] = [(3, 10, 0), (nil, 5, 1), ("x", 20, 2), (1.5, 5, 3), (3, 20, 4), (.number(3.0), 1, 5)]
        let expected: [AggregateFunction: JSONValue] = [
            .countAll: 6, .count: 5, .countDistinct: 3, .sum: 10.5, .avg: 2.625, .min: 1.5, .max: "x",
            .firstValue: .number(3.0), .lastValue: 3,
        ]
        for function in AggregateFunction.allCases {
            #expect(Self.accumulate(function, rows).result == expected[function], "\(function)")
        }
    }

    @Test func emptyInputs() {
        for function in AggregateFunction.allCases {
            let expected: JSONValue = [.countAll, .count, .countDistinct].contains(function) ? 0 : nil
            #expect(Accumulator(function).result == expected, "\(function)")
            #expect(Self.accumulate(function, [(nil, 0, 0)]).result == (function == .countAll ? 1 : expected))
        }
    }

    @Test func integerSumsStayExactAndOverflowToDouble() {
        #expect(Self.accumulate(.sum, [(.int(Int64.max - 1), 0, 0), (1, 0, 1)]).result == .int(Int64.max))
        #expect(Self.accumulate(.sum, [(.int(Int64.max), 0, 0), (1, 0, 1)]).result == .number(9_223_372_036_854_775_808.0))
    }

    @Test func firstAndLastBreakTiesByArrival() {
        let rows: [Row] = [("a", 5, 1), ("b", 5, 2), ("c", 5, 3)]
        #expect(Self.accumulate(.firstValue, rows).result == "a")
        #expect(Self.accumulate(.lastValue, rows).result == "c")
    }

    @Test func distinctStateGrowsWithDistinctValuesOnly() {
        var accumulator = Accumulator(.countDistinct)
        let empty = accumulator.approximateBytes
        accumulator.add("a long string value that is heap allocated")
        let one = accumulator.approximateBytes
        #expect(one > empty)
        accumulator.add("a long string value that is heap allocated")
        #expect(accumulator.approximateBytes == one)
        #expect(accumulator.growthBound(adding: "another long string, also on the heap") >= 32)
    }

    static func randomRow(_ random: inout SeededRandom, sequence: Int64) -> Row {
        let value: JSONValue
        switch random.int(0...5) {
        case 0: value = .null
        case 1, 2: value = .int(Int64(random.int(-50...50)))
        case 3: value = .number(Double(random.int(-200...200)) / 4)  // quarters: exact sums in any order
        case 4: value = .string(["a", "b", "c", "dd"][random.int(0...3)])
        default: value = .bool(random.chance(0.5))
        }
        return (value, Int64(random.int(0...20)), sequence)
    }

    /// Splitting rows over several accumulators and merging them in any order equals adding them all, which
    /// equals the direct computation.
    @Test func mergeEqualsAddAll() {
        var random = SeededRandom.fromEnvironment()
        for iteration in 0..<500 {
            let rows = (0..<random.int(0...30)).map { Self.randomRow(&random, sequence: Int64($0)) }
            var parts = Array(repeating: [Row](), count: random.int(1...4))
            for row in rows { parts[random.int(0...parts.count - 1)].append(row) }
            parts.shuffle(using: &random)
            for function in AggregateFunction.allCases {
                let all = Self.accumulate(function, rows)
                var merged = Accumulator(function)
                for part in parts { merged.merge(Self.accumulate(function, part)) }
                #expect(merged.result == all.result, "seed \(random.seed) #\(iteration) \(function)")
                #expect(all.result == Self.oracle(function, rows), "seed \(random.seed) #\(iteration) \(function): \(rows)")
            }
        }
    }
}
