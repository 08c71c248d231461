import SluiceCore
import SluiceSQL

// Repartitioning (issue 4: "when the GROUP BY key is not the source's partitioning key, records go through
// an internal repartition topic keyed by the group key"). The broker runs two kinds of task for such a query:
// routers, one per source partition, which call `route` to learn which repartition partitions a record's
// groups belong to; and aggregators, one per repartition partition, which run the query with `ownership`
// set, so each aggregates only its own groups, and call `observe` for the routers' event-time markers.

extension ProcessorTask {
    /// Which share of the groups a task aggregates: those whose key hashes to `partition` of `partitionCount`.
    public struct Ownership: Sendable, Hashable {
        public var partition: Int32
        public var partitionCount: Int32

        public init(partition: Int32, partitionCount: Int32) {
            precondition(partitionCount > 0 && (0..<partitionCount).contains(partition), "Ownership: partition outside 0..<count")
            self.partition = partition
            self.partitionCount = partitionCount
        }
    }

    /// The repartition partition of a group key: Kafka's murmur2 of the key's output bytes (a NULL key goes
    /// to partition 0).
    static func partition(ofGroup key: JSONValue, keyCount: Int, partitionCount: Int32) -> Int32 {
        guard let bytes = TaskPlan.outputKey(key, keyCount: keyCount) else { return 0 }
        return bytes.withUnsafeBytes { KeyHash.partition(forKey: $0, partitionCount: partitionCount) }
    }

    /// True when this task aggregates the group `key` (always, without `ownership`).
    func owns(_ key: JSONValue) -> Bool {
        guard let ownership else { return true }
        return Self.partition(ofGroup: key, keyCount: compiled.keys.count, partitionCount: ownership.partitionCount) == ownership.partition
    }

    /// For a router: sets `partitions` to the sorted, distinct repartition partitions whose groups the
    /// record's rows (after UNNEST and WHERE) belong to, and returns the record's highest readable event
    /// time among all its rows, before WHERE (nil when none is readable, or for processing time). A record
    /// whose value is not JSON goes nowhere. Changes only the task's scratch buffers (mutating so that they
    /// are reused instead of copied per record).
    public mutating func route(_ record: InputRecordView, nowMs: Int64, partitionCount: Int32, into partitions: inout [Int32]) -> Int64? {
        precondition(partitionCount > 0, "route: partitionCount must be positive")
        partitions.removeAll(keepingCapacity: true)
        guard extractFields(record) else { return nil }
        let compiled = self.compiled
        var maxEventTimeMs: Int64?
        try? Self.forEachRow(compiled, fields: fieldValues, record: record, nowMs: nowMs) { row throws(TaskError) in
            if compiled.usesEventTimeWatermark, let eventTimeMs = compiled.eventTime(of: row) {
                maxEventTimeMs = max(maxEventTimeMs ?? eventTimeMs, eventTimeMs)
            }
            if let filter = compiled.filter, !Evaluator.isTrue(filter, in: row) { return }
            let target = Self.partition(ofGroup: compiled.groupKey(of: row), keyCount: compiled.keys.count, partitionCount: partitionCount)
            if !partitions.contains(target) { partitions.append(target) }
        }
        partitions.sort()
        return maxEventTimeMs
    }

    /// For an aggregator: source partition `partition` has seen event times up to `eventTimeMs` (a router's
    /// marker). Moves the watermark as a record of that time would, and appends the results of the windows
    /// it closes.
    public mutating func observe(partition: Int32, eventTimeMs: Int64, nowMs: Int64, into output: inout [OutputRecord]) throws(TaskError) {
        precondition(inputPartitions.contains(partition), "partition \(partition) is not an input of this task (\(inputPartitions))")
        if compiled.usesEventTimeWatermark, eventTimeRangeMs.contains(eventTimeMs) {
            tracker.observe(partition: partition, eventTimeMs: eventTimeMs, nowMs: nowMs)
        }
        try advance(nowMs: nowMs, into: &output)
    }

    /// The partitions this task reads (for callers that must check input before `process`).
    public var inputs: [Int32] { inputPartitions }
}
