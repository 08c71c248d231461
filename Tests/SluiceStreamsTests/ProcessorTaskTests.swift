import SluiceSQL
@testable import SluiceStreams
import SluiceTestSupport
import Testing

/// Stateless queries, UNNEST, non-windowed GROUP BY, output keys, invalid input and the task's limits.
@Suite("Processor task")
struct ProcessorTaskTests {
    @Test func selectStarPassesMatchingValuesThroughUnchanged() throws {
        var task = ProcessorTask(plan: Plans.wildcardFilter, inputPartitions: [0], nowMs: 0)
        let spaced = "{ \"amount\" : 11, \"note\": \"kept as sent\" }"
        #expect(render(try task.feed(TestRecord(key: "k1", value: spaced, timestampMs: 7))) == ["k1 \(spaced) @7"])
        #expect(try task.feed(TestRecord(key: "k2", value: "{\"amount\":10}")).isEmpty)
        #expect(try task.feed(TestRecord(key: "k3", value: "{\"other\":99}")).isEmpty)  // missing: NULL > 10 is NULL
        #expect(try task.feed(TestRecord(key: "k4", value: "not json")).isEmpty)
        #expect(try task.feed(TestRecord(key: "k5", value: nil)).isEmpty)  // a tombstone: every field NULL
        let statistics = task.statistics
        #expect(statistics.recordsIn == 5 && statistics.recordsOut == 1 && statistics.recordsInvalid == 1)
    }

    @Test func projectionWritesColumnsInOrderUnderTheirNames() throws {
        // SELECT UPPER(user) AS who, amount * 2 AS twice, _partition AS p, _offset AS o, _key AS k FROM s
        let plan = ProcessorPlan(sink: "out", source: "s", fields: [["user"], ["order", "amount"]], projection: .columns([
            OutputColumn(name: "who", expr: .function(.upper, [.field(0)])),
            OutputColumn(name: "twice", expr: .binary(.multiply, .field(1), .literal(.integer(2)))),
            OutputColumn(name: "p", expr: .pseudo(.partition)), OutputColumn(name: "o", expr: .pseudo(.offset)),
            OutputColumn(name: "k", expr: .pseudo(.key)),
        ]))
        var task = ProcessorTask(plan: plan, inputPartitions: [3], nowMs: 0)
        let record = TestRecord(key: "id-1", value: "{\"user\":\"ann\",\"order\":{\"amount\":21}}", timestampMs: 5,
                                partition: 3, offset: 42)
        #expect(render(try task.feed(record)) == ["id-1 {\"who\":\"ANN\",\"twice\":42,\"p\":3,\"o\":42,\"k\":\"id-1\"} @5"])
        let noKey = TestRecord(value: "{\"user\":7}", timestampMs: 6, partition: 3, offset: 43)
        #expect(render(try task.feed(noKey)) == ["∅ {\"who\":null,\"twice\":null,\"p\":3,\"o\":43,\"k\":null} @6"])
    }

    @Test func rawValuesOfNonJSONInputThroughValue() throws {
        // SELECT LENGTH(_value) AS n FROM s: no JSON field is read, so any value is fine.
        let plan = ProcessorPlan(sink: "out", source: "s", fields: [],
                                 projection: .columns([OutputColumn(name: "n", expr: .function(.length, [.pseudo(.value)]))]))
        var task = ProcessorTask(plan: plan, inputPartitions: [0], nowMs: 0)
        #expect(render(try task.feed(TestRecord(value: "plain text"))) == ["∅ {\"n\":10} @0"])
        #expect(render(try task.feed(TestRecord(value: nil))) == ["∅ {\"n\":null} @0"])
        #expect(task.statistics.recordsInvalid == 0)
    }

    @Test func unnestMakesOneRowPerElement() throws {
        // SELECT id, i.sku AS sku FROM orders, UNNEST(items) AS i WHERE i.qty > 1
        let plan = ProcessorPlan(sink: "out", source: "orders", fields: [["id"], ["items"]], unnest: .field(1),
                                 unnestAlias: "i", filter: .binary(.greater, .element(["qty"]), .literal(.integer(1))),
                                 projection: .columns([OutputColumn(name: "id", expr: .field(0)),
                                                       OutputColumn(name: "sku", expr: .element(["sku"]))]))
        var task = ProcessorTask(plan: plan, inputPartitions: [0], nowMs: 0)
        let order = "{\"id\":1,\"items\":[{\"sku\":\"x\",\"qty\":2},{\"sku\":\"y\",\"qty\":1},{\"sku\":\"z\",\"qty\":5}]}"
        #expect(render(try task.feed(TestRecord(key: "o", value: order))) ==
                ["o {\"id\":1,\"sku\":\"x\"} @0", "o {\"id\":1,\"sku\":\"z\"} @0"])
        #expect(try task.feed(TestRecord(value: "{\"id\":2,\"items\":\"none\"}")).isEmpty)  // not an array: no rows
        #expect(try task.feed(TestRecord(value: "{\"id\":3}")).isEmpty)
        #expect(task.statistics.recordsOut == 2)
    }

    @Test func wordCountEmitsAnUpdatePerWord() throws {
        var task = ProcessorTask(plan: Plans.wordCount(), inputPartitions: [0], nowMs: 0)
        let first = try task.feed(TestRecord(value: "{\"text\":\"The cat  the\"}", timestampMs: 1))
        #expect(render(first) == [
            "the {\"word\":\"the\",\"n\":1} @1", "cat {\"word\":\"cat\",\"n\":1} @1", "the {\"word\":\"the\",\"n\":2} @1",
        ])
        let second = try task.feed(TestRecord(value: "{\"text\":\"CAT\"}", timestampMs: 2))
        #expect(render(second) == ["cat {\"word\":\"cat\",\"n\":2} @2"])
        #expect(task.finished().isEmpty)  // no windows: nothing to close
    }

    @Test func windowedWordCount() throws {
        var task = ProcessorTask(plan: Plans.wordCount(windowMs: 10), inputPartitions: [0], nowMs: 0)
        _ = try task.feed(TestRecord(value: "{\"text\":\"b a b\"}", timestampMs: 1))
        _ = try task.feed(TestRecord(value: "{\"text\":\"a\"}", timestampMs: 9))
        let closed = try task.feed(TestRecord(value: "{\"text\":\"c\"}", timestampMs: 10))
        #expect(render(closed) == [
            "a {\"word\":\"a\",\"n\":2,\"window_start\":0,\"window_end\":10} @9",
            "b {\"word\":\"b\",\"n\":2,\"window_start\":0,\"window_end\":10} @9",
        ])
    }

    // MARK: Keys and results

    /// One result's key for a non-windowed `SELECT COUNT(*) … GROUP BY keys`.
    static func keyOfResult(keys: [BoundExpr], value: String) throws -> [UInt8]? {
        let aggregation = Aggregation(keys: keys, window: nil, aggregates: [AggregateCall(.countStar)], having: nil,
                                      needsRepartition: true)
        let plan = ProcessorPlan(sink: "o", source: "s", fields: [["u"], ["v"]],
                                 projection: .columns([OutputColumn(name: "n", expr: .aggregate(0))]),
                                 aggregation: aggregation, emit: .changes)
        var task = ProcessorTask(plan: plan, inputPartitions: [0], nowMs: 0)
        let outputs = try task.feed(TestRecord(value: value))
        try #require(outputs.count == 1)
        return outputs[0].key
    }

    @Test func resultKeys() throws {
        #expect(try Self.keyOfResult(keys: [.field(0)], value: "{\"u\":\"alice\"}") == Array("alice".utf8))
        #expect(try Self.keyOfResult(keys: [.field(0)], value: "{\"u\":\"say \\\"hi\\\"\"}") == Array("say \"hi\"".utf8))
        #expect(try Self.keyOfResult(keys: [.field(0)], value: "{\"u\":42}") == Array("42".utf8))
        #expect(try Self.keyOfResult(keys: [.field(0)], value: "{\"u\":[1,true]}") == Array("[1,true]".utf8))
        #expect(try Self.keyOfResult(keys: [.field(0)], value: "{}") == nil)
        #expect(try Self.keyOfResult(keys: [.field(0), .field(1)], value: "{\"u\":\"a\",\"v\":3}") == Array("[\"a\",3]".utf8))
        #expect(try Self.keyOfResult(keys: [], value: "{\"u\":\"a\"}") == nil)
    }

    @Test func havingFiltersResults() throws {
        // … HAVING COUNT(*) >= 2
        let having = BoundExpr.binary(.greaterOrEqual, .aggregate(0), .literal(.integer(2)))
        var task = ProcessorTask(plan: Plans.clicks(.tumble(sizeMs: 10), emit: .final, having: having),
                                 inputPartitions: [0], nowMs: 0)
        var outputs: [OutputRecord] = []
        for (user, ts) in [("a", 1), ("b", 2), ("a", 3), ("c", 12)] as [(JSONValue, JSONValue)] {
            outputs += try task.feed(TestRecord(value: clickJSON(user, 1, ts)))
        }
        outputs += task.finished()
        #expect(render(outputs) == ["a {\"user\":\"a\",\"n\":2,\"total\":2,\"window_start\":0,\"window_end\":10} @9"])
        #expect(task.statistics.recordsOut == 1)
    }

    @Test func nonJSONValuesAreInvalidWhenFieldsAreRead() throws {
        var task = ProcessorTask(plan: Plans.clicks(.tumble(sizeMs: 10), emit: .final), inputPartitions: [0], nowMs: 0)
        #expect(try task.feed(TestRecord(value: "{\"user\": tru")).isEmpty)
        #expect(try task.feed(TestRecord(value: "\u{FF}")).isEmpty)
        #expect(task.statistics.recordsInvalid == 2 && task.statistics.recordsIn == 2)
    }

    // MARK: Limits

    @Test func theStateLimitRefusesARecordAndLeavesTheTaskUnchanged() throws {
        let plan = Plans.clicks(.hop(slideMs: 5, sizeMs: 20), emit: .changes)
        let limits = TaskLimits(stateBytesMax: 3_000)
        var task = ProcessorTask(plan: plan, inputPartitions: [0], limits: limits, nowMs: 0)
        var unlimited = ProcessorTask(plan: plan, inputPartitions: [0], nowMs: 0)
        var refusedAt: Int? = nil
        var outputs: [String] = []
        var expected: [String] = []
        for index in 0..<50 {
            let record = TestRecord(value: clickJSON(.string("user\(index % 9)"), 1, .int(Int64(index))), offset: Int64(index))
            expected += render(try unlimited.feed(record))
            do {
                outputs += render(try task.feed(record))
            } catch {
                guard case .stateLimit = error else { throw error }
                let before = task.checkpoint()
                var output = [OutputRecord(destination: .sink, key: nil, value: [1], timestampMs: 0)]
                #expect(throws: TaskError.self) { try record.withView { view throws(TaskError) in try task.process(view, nowMs: 0, into: &output) } }
                #expect(output.count == 1 && task.checkpoint() == before, "a refused record changes nothing")
                // Resume: restore with a higher limit and feed the refused record again.
                task = try ProcessorTask(plan: plan, restoring: before, limits: TaskLimits(stateBytesMax: 1 << 20))
                outputs += render(try task.feed(record))
                refusedAt = refusedAt ?? index
            }
        }
        #expect(refusedAt != nil)
        #expect(outputs == expected)
    }

    @Test func tooManyOutputsRefusesTheRecord() throws {
        let plan = Plans.wordCount()
        var task = ProcessorTask(plan: plan, inputPartitions: [0], limits: TaskLimits(outputsPerRecordMax: 3), nowMs: 0)
        #expect(try task.feed(TestRecord(value: "{\"text\":\"a b c\"}")).count == 3)
        let before = task.checkpoint()
        #expect(throws: TaskError.tooManyOutputs(partition: 0, offset: 9, limit: 3)) {
            try task.feed(TestRecord(value: "{\"text\":\"a b c d\"}", offset: 9))
        }
        #expect(task.checkpoint() == before)

        var stateless = ProcessorTask(plan: Plans.unnestAll, inputPartitions: [0], limits: TaskLimits(outputsPerRecordMax: 2),
                                      nowMs: 0)
        #expect(throws: TaskError.self) { try stateless.feed(TestRecord(value: "{\"xs\":[1,2,3]}")) }
        #expect(stateless.statistics.recordsIn == 0)
    }
}

extension Plans {
    /// `SELECT x FROM s, UNNEST(xs) AS x`.
    static let unnestAll = ProcessorPlan(sink: "o", source: "s", fields: [["xs"]], unnest: .field(0), unnestAlias: "x",
                                         projection: .columns([OutputColumn(name: "x", expr: .element([]))]))
}
