import SluiceSQL

/// The values a processor task exchanges with whoever drives it: the broker's task runtime, the CLI's
/// `processor test`, and the tests. The task itself (`ProcessorTask`) is a deterministic value: the same
/// plan, the same input rows and the same `nowMs` arguments give the same outputs, byte for byte. The
/// broker's exactly-once delivery relies on that (storage-format/processors.md).

/// One input record, borrowed: the buffers are valid only during the call that receives it.
public struct InputRecordView {
    /// The record key, or nil when the record has none.
    public var key: UnsafeRawBufferPointer?
    /// The record value, or nil when the record has none.
    public var value: UnsafeRawBufferPointer?
    /// The record timestamp, epoch milliseconds.
    public var timestampMs: Int64
    /// The partition the record was read from.
    public var partition: Int32
    /// Its offset in that partition.
    public var offset: Int64

    /// Creates a view.
    public init(key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, timestampMs: Int64,
                partition: Int32, offset: Int64) {
        self.key = key
        self.value = value
        self.timestampMs = timestampMs
        self.partition = partition
        self.offset = offset
    }
}

/// One record a task produced.
public struct OutputRecord: Sendable, Hashable {
    /// Where it goes.
    public enum Destination: Sendable, Hashable {
        /// The query's sink topic.
        case sink
        /// The `late_records` topic: the late input record, unchanged.
        case late
    }

    /// Where it goes.
    public var destination: Destination
    /// The key: for aggregating queries the group key (the value itself for one key, a JSON array for
    /// several, nil for none); for stateless queries the input key; for late records the input key.
    public var key: [UInt8]?
    /// The value: a JSON object for results, the input value for late records.
    public var value: [UInt8]
    /// The record timestamp: the input's for stateless results and late records; for window results the
    /// window's end − 1 (the last instant it covers), so results sort by time.
    public var timestampMs: Int64

    /// Creates an output record.
    public init(destination: Destination, key: [UInt8]?, value: [UInt8], timestampMs: Int64) {
        self.destination = destination
        self.key = key
        self.value = value
        self.timestampMs = timestampMs
    }
}

/// Bounds on one task.
public struct TaskLimits: Sendable, Hashable {
    /// The most bytes of window state (as estimated by the accumulators) a task may hold. Reaching it makes
    /// `process` throw `TaskError.stateLimit`; the broker then pauses the task.
    public var stateBytesMax: Int
    /// The most output records one input record may produce (UNNEST of a huge array, a HOP that covers
    /// many windows), so one record cannot flood the sink.
    public var outputsPerRecordMax: Int

    /// Creates limits.
    public init(stateBytesMax: Int = 64 << 20, outputsPerRecordMax: Int = 100_000) {
        self.stateBytesMax = stateBytesMax
        self.outputsPerRecordMax = outputsPerRecordMax
    }
}

/// Counters a task keeps; they are part of its checkpoint, so they survive restarts.
public struct TaskStatistics: Sendable, Hashable {
    /// Input records seen.
    public var recordsIn: Int64 = 0
    /// Records written to the sink.
    public var recordsOut: Int64 = 0
    /// Input records that arrived behind the watermark.
    public var recordsLate: Int64 = 0
    /// Input records dropped because their value is not JSON while the query reads JSON fields, or their
    /// event time is NULL or unreadable.
    public var recordsInvalid: Int64 = 0
    /// Bytes of window state held now (estimated).
    public var stateBytes: Int = 0
    /// The task's watermark, epoch milliseconds, or `WatermarkTracker.none` before any record.
    public var watermarkMs: Int64 = WatermarkTracker.none

    public init() {}
}

/// Why a task could not go on. Each case has a sentence a user can act on.
public enum TaskError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Window state reached `TaskLimits.stateBytesMax`.
    case stateLimit(StateLimitExceeded)
    /// One input record would produce more than `TaskLimits.outputsPerRecordMax` outputs.
    case tooManyOutputs(partition: Int32, offset: Int64, limit: Int)
    /// A checkpoint that does not decode (wrong magic, version, CRC or structure).
    case corruptCheckpoint(String)

    public var description: String {
        switch self {
        case .stateLimit(let error):
            return "\(error); raise the processor's state limit or shorten its windows, then resume it"
        case .tooManyOutputs(let partition, let offset, let limit):
            return "the record at partition \(partition) offset \(offset) would produce more than \(limit) results"
        case .corruptCheckpoint(let reason):
            return "the processor checkpoint is unreadable: \(reason); reset the processor to reprocess"
        }
    }
}
