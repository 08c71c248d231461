import SluiceSQL
import SluiceStreams
import SluiceTestSupport
import Testing

/// Queries as users write them: parsed and bound by SluiceSQL, run by the task. Checks that the engine reads
/// the binder's plans the way the binder means them.
@Suite("Processor task: SQL end to end")
struct ProcessorTaskSQLTests {
    static func run(_ sql: String, _ records: [TestRecord], partitions: [Int32] = [0]) throws -> [String] {
        var task = ProcessorTask(plan: try Binder.plan(sql: sql), inputPartitions: partitions, nowMs: 0)
        var lines: [String] = []
        for record in records { lines += render(try task.feed(record)) }
        return lines + render(task.finished())
    }

    @Test func theArchitectureExample() throws {
        let sql = architectureExampleQuery
        let records = [
            TestRecord(value: "{\"user\":\"ann\",\"action\":\"click\",\"amount\":5,\"ts\":\"2026-11-29T10:00:01Z\"}"),
            TestRecord(value: "{\"user\":\"bob\",\"action\":\"view\",\"amount\":7,\"ts\":\"2026-11-29T10:00:02Z\"}"),
            TestRecord(value: "{\"user\":\"ann\",\"action\":\"click\",\"amount\":2.5,\"ts\":\"2026-11-29T10:00:09.999Z\"}"),
            TestRecord(value: "{\"user\":\"bob\",\"action\":\"click\",\"amount\":1,\"ts\":\"2026-11-29T10:00:10Z\"}"),
        ]
        let start: Int64 = 1_795_946_400_000
        #expect(try Self.run(sql, records) == [
            "ann {\"user\":\"ann\",\"clicks\":2,\"total\":7.5,\"window_start\":\(start),\"window_end\":\(start + 10_000)} @\(start + 9_999)",
            "bob {\"user\":\"bob\",\"clicks\":1,\"total\":1,\"window_start\":\(start + 10_000),\"window_end\":\(start + 20_000)} @\(start + 19_999)",
        ])
    }

    @Test func wordCount() throws {
        let sql = """
            INSERT INTO counts SELECT w AS word, COUNT(*) AS n FROM lines, UNNEST(SPLIT(LOWER(line), ' ')) AS w
            WHERE w != '' GROUP BY w EMIT CHANGES
            """
        let lines = try Self.run(sql, [TestRecord(value: "{\"line\":\"To be  or\"}"), TestRecord(value: "{\"line\":\"not TO be\"}")])
        #expect(lines == [
            "to {\"word\":\"to\",\"n\":1} @0", "be {\"word\":\"be\",\"n\":1} @0", "or {\"word\":\"or\",\"n\":1} @0",
            "not {\"word\":\"not\",\"n\":1} @0", "to {\"word\":\"to\",\"n\":2} @0", "be {\"word\":\"be\",\"n\":2} @0",
        ])
    }

    @Test func statelessProjection() throws {
        let sql = """
            INSERT INTO big SELECT UPPER(user) AS who, amount * 2 AS twice, CASE WHEN amount > 10 THEN 'big' ELSE 'small' END AS size,
            CAST(ts AS TIMESTAMP) AS at, _key AS k FROM orders WHERE amount IS NOT NULL AND user LIKE 'a%'
            """
        let lines = try Self.run(sql, [
            TestRecord(key: "o1", value: "{\"user\":\"ann\",\"amount\":11,\"ts\":\"1970-01-01T00:00:01Z\"}", timestampMs: 9),
            TestRecord(key: "o2", value: "{\"user\":\"bob\",\"amount\":3}"),
            TestRecord(key: "o3", value: "{\"user\":\"al\"}"),
            TestRecord(key: "o4", value: "{\"user\":\"amy\",\"amount\":4}", timestampMs: 10),
        ])
        #expect(lines == [
            "o1 {\"who\":\"ANN\",\"twice\":22,\"size\":\"big\",\"at\":1000,\"k\":\"o1\"} @9",
            "o4 {\"who\":\"AMY\",\"twice\":8,\"size\":\"small\",\"at\":null,\"k\":\"o4\"} @10",
        ])
    }

    @Test func sessionsWithLatenessAndALateTopic() throws {
        let sql = """
            INSERT INTO visits SELECT user, COUNT(*) AS pages, MIN(ts) AS first, MAX(ts) AS last FROM views
            GROUP BY user, SESSION(ts, INTERVAL '30' SECOND) EMIT FINAL
            WITH (allowed_lateness = INTERVAL '10' SECOND, late_records = 'late-views')
            """
        let records = [0, 20_000, 45_000, 100_000, 30_000, 120_000].map { ts in
            TestRecord(key: "u", value: "{\"user\":\"u\",\"ts\":\(ts)}", timestampMs: Int64(ts))
        }
        #expect(try Self.run(sql, records) == [
            "u {\"user\":\"u\",\"pages\":3,\"first\":0,\"last\":45000,\"window_start\":0,\"window_end\":75000} @74999",
            "late u {\"user\":\"u\",\"ts\":30000} @30000",
            "u {\"user\":\"u\",\"pages\":2,\"first\":100000,\"last\":120000,\"window_start\":100000,\"window_end\":150000} @149999",
        ])
    }
}
