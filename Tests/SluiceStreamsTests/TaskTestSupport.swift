import SluiceSQL
@testable import SluiceStreams
import SluiceTestSupport

/// An input record owned by the test; `view` lends it to the task.
struct TestRecord: Sendable {
    var key: [UInt8]?
    var value: [UInt8]?
    var timestampMs: Int64 = 0
    var partition: Int32 = 0
    var offset: Int64 = 0

    init(key: String? = nil, value: String?, timestampMs: Int64 = 0, partition: Int32 = 0, offset: Int64 = 0) {
        self.key = key.map { Array($0.utf8) }
        self.value = value.map { Array($0.utf8) }
        self.timestampMs = timestampMs
        self.partition = partition
        self.offset = offset
    }

    init(key: [UInt8]?, value: [UInt8]?, timestampMs: Int64, partition: Int32, offset: Int64) {
        self.key = key
        self.value = value
        self.timestampMs = timestampMs
        self.partition = partition
        self.offset = offset
    }

    /// Calls `body` with a view of the record (the buffers live only during the call).
    func withView<R>(_ body: (InputRecordView) throws(TaskError) -> R) throws(TaskError) -> R {
        let key = self.key ?? [], value = self.value ?? []
        let hasKey = self.key != nil, hasValue = self.value != nil
        let result: Result<R, TaskError> = key.withUnsafeBytes { keyBytes in
            value.withUnsafeBytes { valueBytes in
                do throws(TaskError) {
                    return .success(try body(InputRecordView(
                        key: hasKey ? keyBytes : nil, value: hasValue ? valueBytes : nil,
                        timestampMs: timestampMs, partition: partition, offset: offset)))
                } catch {
                    return .failure(error)
                }
            }
        }
        return try result.get()
    }
}

/// One step of a test stream: a record arriving at `nowMs`, or processing time passing.
enum Step: Sendable {
    case record(TestRecord, nowMs: Int64)
    case advance(nowMs: Int64)
}

extension ProcessorTask {
    /// Feeds one record, returning its outputs.
    mutating func feed(_ record: TestRecord, nowMs: Int64 = 0) throws(TaskError) -> [OutputRecord] {
        var output: [OutputRecord] = []
        try record.withView { view throws(TaskError) in try process(view, nowMs: nowMs, into: &output) }
        return output
    }

    /// Runs one step, returning its outputs.
    mutating func run(_ step: Step) throws(TaskError) -> [OutputRecord] {
        switch step {
        case .record(let record, let nowMs):
            return try feed(record, nowMs: nowMs)
        case .advance(let nowMs):
            var output: [OutputRecord] = []
            try advance(nowMs: nowMs, into: &output)
            return output
        }
    }

    /// `finish`, returning its outputs.
    mutating func finished() -> [OutputRecord] {
        var output: [OutputRecord] = []
        finish(into: &output)
        return output
    }
}

/// A readable one-line rendering of an output record: `[late ]key value @timestamp`, `∅` for no key.
func render(_ output: OutputRecord) -> String {
    let key = output.key.map { String(decoding: $0, as: UTF8.self) } ?? "∅"
    let prefix = output.destination == .late ? "late " : ""
    return "\(prefix)\(key) \(String(decoding: output.value, as: UTF8.self)) @\(output.timestampMs)"
}

func render(_ outputs: [OutputRecord]) -> [String] { outputs.map(render) }

/// Plans built by hand (the binder is written elsewhere), named after the SQL they stand for.
enum Plans {
    /// `SELECT user, COUNT(*) AS n, SUM(amount) AS total FROM clicks [WHERE action = 'click'] GROUP BY user,
    /// <window over ts> EMIT <emit>`, with fields user, amount, ts, action.
    static func clicks(_ kind: WindowPlan.Kind?, emit: EmitPolicy, time: TimeSource = .expression(.field(2)),
                       filterClicks: Bool = false, extraMax: Bool = false, lateness: Int64 = 0,
                       idleTimeoutMs: Int64? = nil, lateTopic: String? = "late", having: BoundExpr? = nil) -> ProcessorPlan {
        var aggregates = [AggregateCall(.countStar), AggregateCall(.sum, .field(1))]
        var columns = [OutputColumn(name: "user", expr: .groupKey(0)), OutputColumn(name: "n", expr: .aggregate(0)),
                       OutputColumn(name: "total", expr: .aggregate(1))]
        if extraMax {
            aggregates.append(AggregateCall(.max, .field(1)))
            columns.append(OutputColumn(name: "mx", expr: .aggregate(2)))
        }
        let window = kind.map { WindowPlan(kind: $0, time: time) }
        let aggregation = Aggregation(keys: [.field(0)], window: window, aggregates: aggregates, having: having,
                                      needsRepartition: true)
        let filter: BoundExpr? = filterClicks ? .binary(.equal, .field(3), .literal(.string("click"))) : nil
        return ProcessorPlan(sink: "out", source: "clicks", fields: [["user"], ["amount"], ["ts"], ["action"]],
                             filter: filter, projection: .columns(columns), aggregation: aggregation, emit: emit,
                             allowedLatenessMs: lateness, idleTimeoutMs: idleTimeoutMs, lateRecordsTopic: lateTopic)
    }

    /// `SELECT w AS word, COUNT(*) AS n FROM lines, UNNEST(SPLIT(LOWER(text), ' ')) AS w WHERE w != ''
    /// GROUP BY w [, TUMBLE(_timestamp, size)] EMIT CHANGES|FINAL`.
    static func wordCount(windowMs: Int64? = nil) -> ProcessorPlan {
        let split = BoundExpr.function(.split, [.function(.lower, [.field(0)]), .literal(.string(" "))])
        let window = windowMs.map { WindowPlan(kind: .tumble(sizeMs: $0), time: .recordTimestamp) }
        let aggregation = Aggregation(keys: [.element([])], window: window, aggregates: [AggregateCall(.countStar)],
                                      having: nil, needsRepartition: true)
        return ProcessorPlan(sink: "counts", source: "lines", fields: [["text"]], unnest: split, unnestAlias: "w",
                             filter: .binary(.notEqual, .element([]), .literal(.string(""))),
                             projection: .columns([OutputColumn(name: "word", expr: .groupKey(0)),
                                                   OutputColumn(name: "n", expr: .aggregate(0))]),
                             aggregation: aggregation, emit: window == nil ? .changes : .final)
    }

    /// `SELECT * FROM s WHERE amount > 10`.
    static let wildcardFilter = ProcessorPlan(
        sink: "out", source: "s", fields: [["amount"]], filter: .binary(.greater, .field(0), .literal(.integer(10))),
        projection: .wildcard)
}

/// `{"user":…,"amount":…,"ts":…}` with members left out where nil (a missing field).
func clickJSON(_ user: JSONValue?, _ amount: JSONValue?, _ ts: JSONValue?, action: String? = nil) -> String {
    var members: [(String, JSONValue)] = []
    if let user { members.append(("user", user)) }
    if let amount { members.append(("amount", amount)) }
    if let ts { members.append(("ts", ts)) }
    if let action { members.append(("action", .string(action))) }
    return JSONValue.object(JSONObject(members)).serialized()
}
