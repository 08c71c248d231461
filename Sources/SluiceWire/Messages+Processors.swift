import NIOCore

// Bodies of the processor-administration APIs (protocol.md, "Processors"): CreateProcessor,
// ListProcessors, DescribeProcessor and AlterProcessor.
//
// A request names one processor and its answer opens with the usual `error_code` + `error_message`
// pair, so a refusal about the processor (bad SQL, unknown name) travels in the body, and the frame's
// request-level error stays for failures of the request itself (malformed body, unknown API).
//
// Two primitives appear here first: `text` (int32 length + UTF-8), because a query may be longer than a
// `string`'s 32,767 bytes, and `float64` for per-second rates.

/// Bounds on processor administration, shared by the client (which checks before it sends) and the broker
/// (which refuses what breaks them).
public enum ProcessorLimits {
    /// Longest processor name, in bytes. The broker names a processor's internal topics after it, so it
    /// stays well below the topic-name limit (200 bytes) to leave room for their prefixes and suffixes.
    public static let nameBytesMax = 100

    /// Longest query text, in UTF-8 bytes. Equal to SluiceSQL's `SQLLimits.queryBytesMax` (SluiceWire cannot
    /// import SluiceSQL), so the wire never refuses a query the parser would take; decoders refuse longer ones
    /// before anything is copied.
    public static let sqlBytesMax = 64 * 1024

    /// Why `name` is not a valid processor name, as a sentence; nil when it is valid.
    ///
    /// Valid names are 1 to `nameBytesMax` ASCII letters, digits, `.`, `_` and `-`, other than `.` and
    /// `..` — the topic-name alphabet, because the name ends up in topic and file names.
    public static func nameProblem(_ name: String) -> String? {
        let bytes = name.utf8
        guard !bytes.isEmpty else { return "processor name is empty" }
        guard bytes.count <= nameBytesMax else {
            return "processor name is \(bytes.count) bytes long; the limit is \(nameBytesMax)"
        }
        guard name != "." && name != ".." else { return "processor name '\(name)' is reserved" }
        let legal = bytes.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2E || c == 0x5F || c == 0x2D
        }
        guard legal else { return "processor name '\(name)' may contain only ASCII letters, digits, '.', '_' and '-'" }
        return nil
    }
}

/// Where a processor starts reading its source, in every partition: `kind int8, timestamp_ms int64`.
public enum ProcessorStartPosition: Sendable, Hashable, CustomStringConvertible {
    /// The log start offset of each partition: the processor sees everything still stored. Wire kind 0.
    case earliest
    /// The high watermark of each partition when the processor starts: only records produced from then
    /// on. Wire kind 1.
    case latest
    /// The first record whose timestamp is at or after this time, epoch milliseconds (≥ 0). Wire kind 2.
    case timestamp(Int64)

    /// `earliest`, `latest` or `@EPOCH_MS`, as the CLI spells it.
    public var description: String {
        switch self {
        case .earliest: "earliest"
        case .latest: "latest"
        case .timestamp(let ms): "@\(ms)"
        }
    }

    /// The wire's `kind`.
    var kind: Int8 {
        switch self {
        case .earliest: 0
        case .latest: 1
        case .timestamp: 2
        }
    }
}

// MARK: Primitives

extension WireReader {
    /// `text`: int32 length then UTF-8, never null, at most `bytesMax` bytes. For strings that may exceed a
    /// `string`'s int16 length (query text).
    public mutating func readText(_ field: StaticString, bytesMax: Int) throws -> String {
        let length = Int(try readInt32(field))
        guard length >= 0 else { throw WireDecodingError("\(field): negative text length \(length)") }
        guard length <= bytesMax else { throw WireDecodingError("\(field): \(length) bytes; the limit is \(bytesMax)") }
        guard length <= buffer.readableBytes, let view = buffer.readSlice(length: length) else {
            throw WireDecodingError("truncated: \(field) says \(length) bytes, \(buffer.readableBytes) left")
        }
        // As `readNullableString`: invalid UTF-8 is refused, not repaired.
        guard let text = String(validating: view.readableBytesView, as: UTF8.self) else {
            throw WireDecodingError("\(field): not valid UTF-8")
        }
        return text
    }

    /// `float64`: an IEEE 754 binary64, big-endian (its bit pattern as an int64).
    public mutating func readFloat64(_ field: StaticString) throws -> Double {
        Double(bitPattern: UInt64(bitPattern: try readInt64(field)))
    }

    /// A per-second rate: a `float64` that must be finite and ≥ 0, so NaN and infinities never reach a
    /// table or a JSON document.
    mutating func readRate(_ field: StaticString) throws -> Double {
        let rate = try readFloat64(field)
        guard rate.isFinite, rate >= 0 else { throw WireDecodingError("\(field): a rate must be a finite number ≥ 0, got \(rate)") }
        return rate
    }

    /// `kind int8, timestamp_ms int64`. Kinds other than 0, 1, 2, a timestamp below 0, and a timestamp other
    /// than 0 beside earliest or latest are malformed (one encoding per position).
    public mutating func readStartPosition(_ field: StaticString) throws -> ProcessorStartPosition {
        let kind = try readInt8(field)
        let timestampMs = try readInt64(field)
        switch kind {
        case 0, 1:
            guard timestampMs == 0 else {
                throw WireDecodingError("\(field): timestamp_ms must be 0 with kind \(kind), got \(timestampMs)")
            }
            return kind == 0 ? .earliest : .latest
        case 2:
            guard timestampMs >= 0 else { throw WireDecodingError("\(field): timestamp_ms must be ≥ 0, got \(timestampMs)") }
            return .timestamp(timestampMs)
        default:
            throw WireDecodingError("\(field): kind must be 0 (earliest), 1 (latest) or 2 (timestamp), got \(kind)")
        }
    }
}

extension WireWriter {
    /// `text`: int32 length then UTF-8.
    public mutating func write(text: String) {
        write(Int32(text.utf8.count))
        buffer.writeString(text)
    }

    /// `float64`: the bit pattern of `value`, big-endian.
    public mutating func write(float64 value: Double) {
        write(Int64(bitPattern: value.bitPattern))
    }

    /// A start position: `kind int8, timestamp_ms int64` (0 unless the kind is timestamp).
    public mutating func write(startPosition position: ProcessorStartPosition) {
        write(position.kind)
        if case .timestamp(let ms) = position { write(ms) } else { write(Int64(0)) }
    }

    /// A message for people, cut to `WireError.messageBytesMax` on a character boundary: an error text
    /// built from user input (a huge JSON value in a processor's last error) must never trip the string
    /// length precondition and take the broker down.
    mutating func write(message: String?) {
        write(message.map { WireError(.unknownServerError, $0).bounded.message })
    }
}

// MARK: CreateProcessor (15)

/// Registers a processor: `name string, sql text, start_from position, validate_only bool`.
public struct CreateProcessorRequest: WireMessage, Hashable {
    /// The processor's name (`ProcessorLimits.nameProblem` says which names are valid).
    public var name: String
    /// The query, `INSERT INTO sink SELECT … FROM source …`; at most `ProcessorLimits.sqlBytesMax` bytes.
    public var sql: String
    /// Where the processor starts reading its source.
    public var startFrom: ProcessorStartPosition
    /// Parse, bind and check the query and the name, but register nothing.
    public var validateOnly: Bool

    /// A request to register (or, with `validateOnly`, to check) a processor.
    public init(name: String, sql: String, startFrom: ProcessorStartPosition = .earliest, validateOnly: Bool = false) {
        self.name = name
        self.sql = sql
        self.startFrom = startFrom
        self.validateOnly = validateOnly
    }

    /// Reads the body; throws `WireDecodingError` naming the field that does not parse.
    public init(from reader: inout WireReader, version: Int16) throws {
        name = try reader.readString("name")
        sql = try reader.readText("sql", bytesMax: ProcessorLimits.sqlBytesMax)
        startFrom = try reader.readStartPosition("start_from")
        validateOnly = try reader.readBool("validate_only")
    }

    /// Writes the body.
    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(name)
        writer.write(text: sql)
        writer.write(startPosition: startFrom)
        writer.write(validateOnly)
    }
}

/// The answer of CreateProcessor, AlterProcessor and RaftMessages: `error int16, message string?` and
/// nothing else.
public struct ProcessorResultResponse: WireMessage, WireErrorCarrying, Hashable {
    /// `.none` when the change was made (or, for `validateOnly`, would be).
    public var error: ErrorCode
    /// Why, for people; nil on success. For `invalid_query`, the SQL error: `line L, column C: …`.
    /// Encoding cuts it to `WireError.messageBytesMax` bytes.
    public var errorMessage: String?

    /// An answer; the defaults are success.
    public init(error: ErrorCode = .none, errorMessage: String? = nil) {
        self.error = error
        self.errorMessage = errorMessage
    }

    /// Success (nil) or the given failure.
    public init(_ failure: WireError?) {
        self.init(error: failure?.code ?? .none, errorMessage: failure?.message)
    }

    /// Reads the body.
    public init(from reader: inout WireReader, version: Int16) throws {
        (error, errorMessage) = try reader.readErrorPair()
    }

    /// Writes the body.
    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(error.rawValue)
        writer.write(message: errorMessage)
    }
}

// MARK: ListProcessors (16)

/// Asks for every processor: an empty body.
public struct ListProcessorsRequest: WireMessage, Hashable {
    /// The (empty) request.
    public init() {}
    /// Reads the (empty) body.
    public init(from reader: inout WireReader, version: Int16) throws {}
    /// Writes the (empty) body.
    public func encode(to writer: inout WireWriter, version: Int16) {}
}

/// `error int16, message string?, processors [name string, state string, source string, sink string]`.
public struct ListProcessorsResponse: WireMessage, WireErrorCarrying, Hashable {
    /// One processor of the list.
    public struct Processor: WireEntry, Hashable {
        /// The processor's name.
        public var name: String
        /// `running`, `paused` or `failed` (more may come: show what arrives).
        public var state: String
        /// The topic it reads (the query's FROM).
        public var source: String
        /// The topic it writes (the query's INSERT INTO).
        public var sink: String

        /// A list entry.
        public init(name: String, state: String, source: String, sink: String) {
            self.name = name
            self.state = state
            self.source = source
            self.sink = sink
        }

        /// Reads `name string, state string, source string, sink string`.
        public init(from reader: inout WireReader) throws {
            name = try reader.readString("name")
            state = try reader.readString("state")
            source = try reader.readString("source")
            sink = try reader.readString("sink")
        }

        /// Writes `name string, state string, source string, sink string`.
        public func encode(to writer: inout WireWriter) {
            writer.write(name)
            writer.write(state)
            writer.write(source)
            writer.write(sink)
        }
    }

    /// `.none` unless the broker could not list its processors.
    public var error: ErrorCode
    /// Why, for people; nil on success. Encoding cuts it to `WireError.messageBytesMax` bytes.
    public var errorMessage: String?
    /// Every processor, in the order the broker chose (the CLI sorts by name); empty on error.
    public var processors: [Processor]

    /// A list, or (with an error) a refusal with no processors.
    public init(error: ErrorCode = .none, errorMessage: String? = nil, processors: [Processor]) {
        self.error = error
        self.errorMessage = errorMessage
        self.processors = processors
    }

    /// Reads the body.
    public init(from reader: inout WireReader, version: Int16) throws {
        (error, errorMessage) = try reader.readErrorPair()
        processors = try reader.readEntries("processors")
    }

    /// Writes the body.
    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(error.rawValue)
        writer.write(message: errorMessage)
        writer.write(entries: processors)
    }
}

// MARK: DescribeProcessor (17)

/// Asks for one processor's definition and the progress of its tasks: `name string`.
public struct DescribeProcessorRequest: WireMessage, Hashable {
    /// The processor to describe.
    public var name: String

    /// A request for `name`.
    public init(name: String) { self.name = name }

    /// Reads the body.
    public init(from reader: inout WireReader, version: Int16) throws {
        name = try reader.readString("name")
    }

    /// Writes the body.
    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(name)
    }
}

/// One processor: its definition, state, and one `TaskStatus` per source partition.
///
/// `error int16, message string?, name string, sql text, state string, last_error string?, created_ms int64,
/// source string, sink string, tasks [TaskStatus]`. On error every field after the pair is empty or zero.
public struct DescribeProcessorResponse: WireMessage, WireErrorCarrying, Hashable {
    /// The progress of the task for one source partition.
    ///
    /// `partition int32, input_offset int64, input_end_offset int64, watermark_ms int64, records_in int64,
    /// records_out int64, records_late int64, records_invalid int64, in_rate float64, out_rate float64,
    /// late_rate float64, state_bytes int64, state string, last_error string?`.
    public struct TaskStatus: WireEntry, Hashable {
        /// `watermarkMs` before the task has seen a record with an event time (SluiceStreams'
        /// `WatermarkTracker.none`).
        public static let noWatermark = Int64.min

        /// The source partition this task reads.
        public var partition: Int32
        /// The next source offset the task will read (its checkpointed position plus what it has read since).
        public var inputOffset: Int64
        /// The source partition's high watermark; `lag` is the difference.
        public var inputEndOffset: Int64
        /// The task's watermark, epoch milliseconds, or `noWatermark`.
        public var watermarkMs: Int64
        /// Input records read, since the processor was created (or last reset).
        public var recordsIn: Int64
        /// Records written to the sink.
        public var recordsOut: Int64
        /// Input records that arrived behind the watermark.
        public var recordsLate: Int64
        /// Input records dropped as unreadable (not JSON where the query reads fields, no event time).
        public var recordsInvalid: Int64
        /// Input records per second, recently. Finite and ≥ 0: decoders refuse anything else, and encoding
        /// writes anything else as 0.
        public var inRatePerSecond: Double
        /// Sink records per second, recently. Finite and ≥ 0.
        public var outRatePerSecond: Double
        /// Late records per second, recently. Finite and ≥ 0.
        public var lateRatePerSecond: Double
        /// Bytes of window state the task holds (estimated).
        public var stateBytes: Int64
        /// `running`, `paused`, `failed`, or a transient state such as `starting` (show what arrives).
        public var state: String
        /// Why the task stopped, when it did. Encoding cuts it to `WireError.messageBytesMax` bytes.
        public var lastError: String?

        /// A task's status.
        public init(partition: Int32, inputOffset: Int64, inputEndOffset: Int64, watermarkMs: Int64 = noWatermark,
                    recordsIn: Int64 = 0, recordsOut: Int64 = 0, recordsLate: Int64 = 0, recordsInvalid: Int64 = 0,
                    inRatePerSecond: Double = 0, outRatePerSecond: Double = 0, lateRatePerSecond: Double = 0,
                    stateBytes: Int64 = 0, state: String, lastError: String? = nil) {
            self.partition = partition
            self.inputOffset = inputOffset
            self.inputEndOffset = inputEndOffset
            self.watermarkMs = watermarkMs
            self.recordsIn = recordsIn
            self.recordsOut = recordsOut
            self.recordsLate = recordsLate
            self.recordsInvalid = recordsInvalid
            self.inRatePerSecond = inRatePerSecond
            self.outRatePerSecond = outRatePerSecond
            self.lateRatePerSecond = lateRatePerSecond
            self.stateBytes = stateBytes
            self.state = state
            self.lastError = lastError
        }

        /// Source records not yet read: `inputEndOffset − inputOffset`, never negative (the end can be read
        /// a moment before the position), saturating rather than overflowing on nonsense values.
        public var lag: Int64 {
            let (difference, overflow) = inputEndOffset.subtractingReportingOverflow(inputOffset)
            if overflow { return inputEndOffset > inputOffset ? Int64.max : 0 }
            return max(0, difference)
        }

        /// The watermark, or nil before there is one.
        public var watermark: Int64? { watermarkMs == Self.noWatermark ? nil : watermarkMs }

        /// `rate` when it is finite and ≥ 0, else 0.
        static func wireRate(_ rate: Double) -> Double { rate.isFinite && rate >= 0 ? rate : 0 }

        /// Reads the entry; rates that are not finite and ≥ 0 are malformed.
        public init(from reader: inout WireReader) throws {
            partition = try reader.readInt32("partition")
            inputOffset = try reader.readInt64("input_offset")
            inputEndOffset = try reader.readInt64("input_end_offset")
            watermarkMs = try reader.readInt64("watermark_ms")
            recordsIn = try reader.readInt64("records_in")
            recordsOut = try reader.readInt64("records_out")
            recordsLate = try reader.readInt64("records_late")
            recordsInvalid = try reader.readInt64("records_invalid")
            inRatePerSecond = try reader.readRate("in_rate")
            outRatePerSecond = try reader.readRate("out_rate")
            lateRatePerSecond = try reader.readRate("late_rate")
            stateBytes = try reader.readInt64("state_bytes")
            state = try reader.readString("state")
            lastError = try reader.readNullableString("last_error")
        }

        /// Writes the entry. A rate that is not finite and ≥ 0 (a 0/0 over an empty interval) is written as 0,
        /// so one bad division never makes a whole answer undecodable.
        public func encode(to writer: inout WireWriter) {
            writer.write(partition)
            writer.write(inputOffset)
            writer.write(inputEndOffset)
            writer.write(watermarkMs)
            writer.write(recordsIn)
            writer.write(recordsOut)
            writer.write(recordsLate)
            writer.write(recordsInvalid)
            writer.write(float64: Self.wireRate(inRatePerSecond))
            writer.write(float64: Self.wireRate(outRatePerSecond))
            writer.write(float64: Self.wireRate(lateRatePerSecond))
            writer.write(stateBytes)
            writer.write(state)
            writer.write(message: lastError)
        }
    }

    /// `.none`, or why the processor cannot be described (`unknown_processor`).
    public var error: ErrorCode
    /// Why, for people; nil on success. Encoding cuts it to `WireError.messageBytesMax` bytes.
    public var errorMessage: String?
    /// The processor's name.
    public var name: String
    /// The query as registered (or last replaced).
    public var sql: String
    /// `running`, `paused` or `failed` (more may come: show what arrives).
    public var state: String
    /// Why the processor failed or was paused by the broker; nil when nothing went wrong. Encoding cuts it
    /// to `WireError.messageBytesMax` bytes.
    public var lastError: String?
    /// When it was created, epoch milliseconds.
    public var createdMs: Int64
    /// The topic it reads.
    public var source: String
    /// The topic it writes.
    public var sink: String
    /// One entry per source partition, in partition order.
    public var tasks: [TaskStatus]

    /// A description.
    public init(error: ErrorCode = .none, errorMessage: String? = nil, name: String, sql: String, state: String,
                lastError: String? = nil, createdMs: Int64, source: String, sink: String, tasks: [TaskStatus]) {
        self.error = error
        self.errorMessage = errorMessage
        self.name = name
        self.sql = sql
        self.state = state
        self.lastError = lastError
        self.createdMs = createdMs
        self.source = source
        self.sink = sink
        self.tasks = tasks
    }

    /// A refusal to describe `name`: the failure, and every other field empty or zero.
    public init(name: String, failure: WireError) {
        self.init(error: failure.code, errorMessage: failure.message, name: name, sql: "", state: "", createdMs: 0,
                  source: "", sink: "", tasks: [])
    }

    /// Reads the body.
    public init(from reader: inout WireReader, version: Int16) throws {
        (error, errorMessage) = try reader.readErrorPair()
        name = try reader.readString("name")
        sql = try reader.readText("sql", bytesMax: ProcessorLimits.sqlBytesMax)
        state = try reader.readString("state")
        lastError = try reader.readNullableString("last_error")
        createdMs = try reader.readInt64("created_ms")
        source = try reader.readString("source")
        sink = try reader.readString("sink")
        tasks = try reader.readEntries("tasks")
    }

    /// Writes the body.
    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(error.rawValue)
        writer.write(message: errorMessage)
        writer.write(name)
        writer.write(text: sql)
        writer.write(state)
        writer.write(message: lastError)
        writer.write(createdMs)
        writer.write(source)
        writer.write(sink)
        writer.write(entries: tasks)
    }
}

// MARK: AlterProcessor (18)

/// Changes one processor: `name string, action int8, position, sql text, delete_output bool`.
///
/// Every action sends every field; the ones an action does not use must hold their zero value (position
/// earliest, empty sql, delete_output false), so each request has exactly one encoding.
public struct AlterProcessorRequest: WireMessage, Hashable {
    /// What to do, with the values that action needs.
    public enum Action: Sendable, Hashable, CustomStringConvertible {
        /// Stop the tasks at their current position (kept, so `resume` continues from it). Wire action 0.
        case pause
        /// Start paused or failed tasks again from their checkpoints. Wire action 1.
        case resume
        /// Drop the tasks' state and move their input position to `to` in every partition. Wire action 2.
        case reset(to: ProcessorStartPosition)
        /// Swap in a new query that writes the same sink; state starts empty. Wire action 3.
        case replace(sql: String)
        /// Stop and unregister the processor; with `deleteOutput`, delete its sink topic too. Wire action 4.
        case delete(deleteOutput: Bool)

        /// The wire's `action`.
        public var code: Int8 {
            switch self {
            case .pause: 0
            case .resume: 1
            case .reset: 2
            case .replace: 3
            case .delete: 4
            }
        }

        /// `pause`, `resume`, `reset`, `replace` or `delete`: the verb, for messages.
        public var description: String {
            switch self {
            case .pause: "pause"
            case .resume: "resume"
            case .reset: "reset"
            case .replace: "replace"
            case .delete: "delete"
            }
        }
    }

    /// The processor to change.
    public var name: String
    /// The change.
    public var action: Action

    /// A request to apply `action` to `name`.
    public init(name: String, action: Action) {
        self.name = name
        self.action = action
    }

    /// Reads the body; an unknown action, or a field the action does not use holding anything but its
    /// zero value, is malformed.
    public init(from reader: inout WireReader, version: Int16) throws {
        name = try reader.readString("name")
        let code = try reader.readInt8("action")
        let position = try reader.readStartPosition("position")
        let sql = try reader.readText("sql", bytesMax: ProcessorLimits.sqlBytesMax)
        let deleteOutput = try reader.readBool("delete_output")
        switch code {
        case 0: action = .pause
        case 1: action = .resume
        case 2: action = .reset(to: position)
        case 3: action = .replace(sql: sql)
        case 4: action = .delete(deleteOutput: deleteOutput)
        default:
            throw WireDecodingError("action must be 0 (pause), 1 (resume), 2 (reset), 3 (replace) or 4 (delete), got \(code)")
        }
        if code != 2, position != .earliest {
            throw WireDecodingError("position: must be earliest (kind 0) unless action is reset, got \(position) with \(action)")
        }
        if code != 3, !sql.isEmpty {
            throw WireDecodingError("sql: must be empty unless action is replace, got \(sql.utf8.count) bytes with \(action)")
        }
        if code != 4, deleteOutput {
            throw WireDecodingError("delete_output: must be false unless action is delete, got true with \(action)")
        }
    }

    /// Writes the body.
    public func encode(to writer: inout WireWriter, version: Int16) {
        writer.write(name)
        writer.write(action.code)
        var position = ProcessorStartPosition.earliest
        var sql = ""
        var deleteOutput = false
        switch action {
        case .pause, .resume: break
        case .reset(let to): position = to
        case .replace(let text): sql = text
        case .delete(let output): deleteOutput = output
        }
        writer.write(startPosition: position)
        writer.write(text: sql)
        writer.write(deleteOutput)
    }
}
