import SluiceCore
import SluiceSQL
import SluiceStreams

/// A record a task wants written, and where.
struct RoutedRecord {
    enum Target: Hashable {
        /// The query's sink; the partition follows from the key.
        case sink
        /// The `late_records` topic; the partition follows from the key.
        case late
        /// Partition `n` of the processor's repartition topic.
        case repartition(Int32)
    }

    var target: Target
    var key: [UInt8]?
    var value: [UInt8]?
    var timestampMs: Int64
    var headers: [RecordHeader] = []
}

/// What a runner does with the records it reads: run the query, or route records to the task that
/// aggregates their group (`RouterLogic`). Values, deterministic (storage-format/processors.md), and
/// checkpointed whole.
protocol TaskLogic: Sendable {
    /// Processes one source record (`partition` is the partition it was read from).
    mutating func process(_ record: RecordView, partition: Int32, nowMs: Int64, into output: inout [RoutedRecord]) throws
    /// Called after the last record of each stored batch: batch boundaries are fixed in the log, so what
    /// happens here replays identically.
    mutating func batchEnded(nowMs: Int64, into output: inout [RoutedRecord])
    /// Processing time passed with no input.
    mutating func advance(nowMs: Int64, into output: inout [RoutedRecord]) throws
    /// The state to restore from.
    func checkpoint() -> [UInt8]
    var statistics: TaskStatistics { get }
}

/// Headers that carry a record through the repartition topic (storage-format/processors.md,
/// "Repartition topic"): where the record came from, or, on a record without key and value, the
/// watermark of one source partition.
enum RepartitionHeaders {
    static let partitionKey = "sluice.partition"
    static let offsetKey = "sluice.offset"
    static let watermarkKey = "sluice.watermark"

    enum Entry: Equatable {
        /// A source record from `partition` at `offset`.
        case record(partition: Int32, offset: Int64)
        /// Source partition `partition` has seen event times up to `eventTimeMs`.
        case marker(partition: Int32, eventTimeMs: Int64)
    }

    static func record(partition: Int32, offset: Int64) -> [RecordHeader] {
        [partitionHeader(partition), offsetHeader(offset)]
    }

    static func marker(partition: Int32, eventTimeMs: Int64) -> [RecordHeader] {
        [partitionHeader(partition), RecordHeader(key: watermarkKey, value: bigEndian(eventTimeMs))]
    }

    static func partitionHeader(_ partition: Int32) -> RecordHeader {
        RecordHeader(key: partitionKey, value: bigEndian(Int64(partition)))
    }

    static func offsetHeader(_ offset: Int64) -> RecordHeader {
        RecordHeader(key: offsetKey, value: bigEndian(offset))
    }

    private static func bigEndian(_ value: Int64) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendBigEndian(value)
        return bytes
    }

    /// Reads the headers of a repartition record in place; nil when they are not ours (the record is
    /// skipped).
    static func parse(_ record: RecordView) -> Entry? {
        var reader = ByteReader(record.headerBytes)
        var partition: Int64?
        var offset: Int64?
        var watermark: Int64?
        for _ in 0..<record.headerCount {
            guard let keyLength = reader.readVarint(maxBytes: 5), keyLength >= 0, keyLength <= reader.remaining else { return nil }
            let key = UnsafeRawBufferPointer(rebasing: reader.bytes[reader.position..<(reader.position + Int(keyLength))])
            reader.position += Int(keyLength)
            guard let valueLength = reader.readVarint(maxBytes: 5), valueLength <= reader.remaining else { return nil }
            guard valueLength == 8, let number = reader.readBigEndian(Int64.self) else {
                if valueLength > 0 { reader.position += Int(valueLength) }
                continue
            }
            if key.elementsEqual(partitionKey.utf8) { partition = number }
            else if key.elementsEqual(offsetKey.utf8) { offset = number }
            else if key.elementsEqual(watermarkKey.utf8) { watermark = number }
        }
        guard let partition, let source = Int32(exactly: partition), source >= 0 else { return nil }
        if let offset { return .record(partition: source, offset: offset) }
        if let watermark { return .marker(partition: source, eventTimeMs: watermark) }
        return nil
    }
}

/// Runs the query on source records (single stage), or on the records of one repartition partition
/// (`afterRepartition`), where each record says which source partition it came from and markers carry the
/// source partitions' event-time progress.
struct QueryLogic: TaskLogic {
    var task: ProcessorTask
    let afterRepartition: Bool
    private var results: [OutputRecord] = []

    /// The source partitions (after a repartition).
    private let sources: Range<Int32>

    init(task: ProcessorTask, afterRepartition: Bool) {
        self.task = task
        self.afterRepartition = afterRepartition
        let inputs = task.inputs
        sources = (inputs.min() ?? 0)..<((inputs.max() ?? -1) + 1)
    }

    mutating func process(_ record: RecordView, partition: Int32, nowMs: Int64, into output: inout [RoutedRecord]) throws {
        results.removeAll(keepingCapacity: true)
        if afterRepartition {
            // Only the broker's routers write the repartition topic, but its bytes come from disk: a record
            // naming a partition this task does not read is skipped, never trusted.
            let entry = RepartitionHeaders.parse(record)
            switch entry {
            case .record(let source, let offset)? where sources.contains(source):
                let view = InputRecordView(key: record.key, value: record.value, timestampMs: record.timestamp, partition: source, offset: offset)
                try task.process(view, nowMs: nowMs, into: &results)
            case .marker(let source, let eventTimeMs)? where sources.contains(source):
                try task.observe(partition: source, eventTimeMs: eventTimeMs, nowMs: nowMs, into: &results)
            default:
                return
            }
        } else {
            let view = InputRecordView(key: record.key, value: record.value, timestampMs: record.timestamp, partition: partition, offset: record.offset)
            try task.process(view, nowMs: nowMs, into: &results)
        }
        append(results, to: &output)
    }

    mutating func batchEnded(nowMs: Int64, into output: inout [RoutedRecord]) {}

    mutating func advance(nowMs: Int64, into output: inout [RoutedRecord]) throws {
        results.removeAll(keepingCapacity: true)
        try task.advance(nowMs: nowMs, into: &results)
        append(results, to: &output)
    }

    private func append(_ results: [OutputRecord], to output: inout [RoutedRecord]) {
        for result in results {
            output.append(RoutedRecord(target: result.destination == .sink ? .sink : .late, key: result.key, value: result.value,
                                       timestampMs: result.timestampMs))
        }
    }

    func checkpoint() -> [UInt8] { task.checkpoint() }

    var statistics: TaskStatistics { task.statistics }
}

/// The first stage of a query that groups by something other than the source key: sends each source
/// record to the repartition partitions that aggregate its groups (`ProcessorTask.route`), and after each
/// stored batch tells every repartition partition how far this source partition's event time has got, so
/// the aggregating tasks can compute the watermark as the minimum over source partitions.
struct RouterLogic: TaskLogic {
    var task: ProcessorTask
    let partitionCount: Int32
    let sourcePartition: Int32
    /// Highest event time seen in the source partition (`Int64.min` before any).
    private(set) var maxEventTimeMs = Int64.min
    /// The event time the last markers carried.
    private(set) var markedEventTimeMs = Int64.min
    private(set) var counters = TaskStatistics()
    private var routes: [Int32] = []
    /// The same on every record this router forwards: built once.
    private let partitionHeader: RecordHeader

    init(task: ProcessorTask, partitionCount: Int32, sourcePartition: Int32) {
        self.task = task
        self.partitionCount = partitionCount
        self.sourcePartition = sourcePartition
        self.partitionHeader = RepartitionHeaders.partitionHeader(sourcePartition)
    }

    mutating func process(_ record: RecordView, partition: Int32, nowMs: Int64, into output: inout [RoutedRecord]) throws {
        let view = InputRecordView(key: record.key, value: record.value, timestampMs: record.timestamp, partition: partition, offset: record.offset)
        counters.recordsIn += 1
        let eventTime = task.route(view, nowMs: nowMs, partitionCount: partitionCount, into: &routes)
        if let eventTime { maxEventTimeMs = max(maxEventTimeMs, eventTime) }
        guard !routes.isEmpty else { return }
        let key = record.key.map { Array($0) }
        let value = record.value.map { Array($0) }
        let headers = [partitionHeader, RepartitionHeaders.offsetHeader(record.offset)]
        for target in routes {
            output.append(RoutedRecord(target: .repartition(target), key: key, value: value, timestampMs: record.timestamp, headers: headers))
            counters.recordsOut += 1
        }
    }

    mutating func batchEnded(nowMs: Int64, into output: inout [RoutedRecord]) {
        guard maxEventTimeMs > markedEventTimeMs else { return }
        markedEventTimeMs = maxEventTimeMs
        let headers = RepartitionHeaders.marker(partition: sourcePartition, eventTimeMs: maxEventTimeMs)
        for target in 0..<partitionCount {
            output.append(RoutedRecord(target: .repartition(target), key: nil, value: nil, timestampMs: max(0, maxEventTimeMs), headers: headers))
        }
    }

    mutating func advance(nowMs: Int64, into output: inout [RoutedRecord]) throws {}

    /// int16 version 0, int64 max event time, int64 marked event time, int64 records in, int64 records out.
    func checkpoint() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendBigEndian(Int16(0))
        for value in [maxEventTimeMs, markedEventTimeMs, counters.recordsIn, counters.recordsOut] { bytes.appendBigEndian(value) }
        return bytes
    }

    /// Restores `checkpoint()`'s bytes; nil when they are not that.
    init?(task: ProcessorTask, partitionCount: Int32, sourcePartition: Int32, restoring bytes: [UInt8]) {
        guard bytes.count == 34, bytes[0] == 0, bytes[1] == 0 else { return nil }
        let numbers = (0..<4).map { bytes.getBigEndian(at: 2 + 8 * $0, as: Int64.self) }
        self.init(task: task, partitionCount: partitionCount, sourcePartition: sourcePartition)
        maxEventTimeMs = numbers[0]
        markedEventTimeMs = numbers[1]
        counters.recordsIn = numbers[2]
        counters.recordsOut = numbers[3]
    }

    var statistics: TaskStatistics { counters }
}
