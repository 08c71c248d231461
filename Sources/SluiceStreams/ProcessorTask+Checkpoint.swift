import SluiceCore
import SluiceSQL

// Task checkpoints: everything needed to continue exactly where a task is (storage-format/processor-checkpoint.md).
//
// The broker stores a checkpoint together with the input offsets it covers; after a crash it restores the
// task and replays input from those offsets, and the restored task produces the same outputs, byte for byte,
// as the original would have (the determinism tests check this over random streams).

extension ProcessorTask {
    /// ASCII "SLPC".
    static let checkpointMagic: [UInt8] = [0x53, 0x4C, 0x50, 0x43]
    static let checkpointVersion: UInt16 = 1
    /// Magic, version, flags, body length.
    static let checkpointHeaderBytes = 12

    /// The task's state as bytes: watermarks, open windows with their accumulators, EMIT EVERY timers,
    /// statistics. Deterministic: the same state gives the same bytes.
    public func checkpoint() -> [UInt8] {
        var writer = CheckpointWriter()
        writer.bytes.append(contentsOf: Self.checkpointMagic)
        writer.u16(Self.checkpointVersion)
        writer.u16(0)  // flags
        writer.u32(0)  // body length, set below
        writer.bytes.append(contentsOf: Self.shape(of: compiled))
        for counter in [counters.recordsIn, counters.recordsOut, counters.recordsLate, counters.recordsInvalid, sequence] {
            writer.i64(counter)
        }
        writer.i64(tracker.current)
        writer.count(tracker.partitionIDs.count)
        for (partition, partitionState) in zip(tracker.partitionIDs, tracker.states) {
            writer.i32(partition)
            writer.bool(partitionState.maxEventTimeMs != nil)
            writer.i64(partitionState.maxEventTimeMs ?? 0)
            writer.i64(partitionState.lastActivityMs)
        }
        writer.i64(nextEarlyEmitMs)
        state.write(to: &writer)
        writer.bytes.setBigEndian(UInt32(writer.bytes.count - Self.checkpointHeaderBytes), at: 8)
        writer.u32(CRC32C.checksum(writer.bytes))
        return writer.bytes
    }

    /// A task restored from `checkpoint()` bytes, for the same plan. `limits` may differ from the original's
    /// (that is how a task stopped by its state limit resumes).
    ///
    /// - Throws: `TaskError.corruptCheckpoint` when the bytes are damaged (magic, version, length, CRC or
    ///   structure) or were written for a query of a different shape. Never traps on any bytes.
    public init(plan: ProcessorPlan, restoring checkpoint: [UInt8], limits: TaskLimits = TaskLimits()) throws(TaskError) {
        let compiled = TaskPlan(plan)
        var reader = try Self.verifiedBody(checkpoint)
        let shape = Self.shape(of: compiled)
        guard try reader.bytes(shape.count, "query shape").elementsEqual(shape) else {
            throw CheckpointReader.corrupt("it was written for a query of a different shape (windows, emit mode or aggregates)")
        }
        var counters = TaskStatistics()
        counters.recordsIn = try Self.counter(&reader, "recordsIn")
        counters.recordsOut = try Self.counter(&reader, "recordsOut")
        counters.recordsLate = try Self.counter(&reader, "recordsLate")
        counters.recordsInvalid = try Self.counter(&reader, "recordsInvalid")
        let sequence = try Self.counter(&reader, "sequence")
        let tracker = try Self.readTracker(&reader, plan: plan)
        let nextEarlyEmitMs = try reader.i64("next early emit time")
        var sessionGapMs: Int64? = nil
        if case .session(let gapMs) = compiled.assigner { sessionGapMs = gapMs }
        let state = try WindowState.read(
            from: &reader, functions: compiled.functions, mode: compiled.mode, sessionGapMs: sessionGapMs,
            onlyWindow: compiled.isWindowed ? nil : TaskPlan.unboundedWindow, stateBytesMax: max(1, limits.stateBytesMax))
        guard reader.isAtEnd else { throw CheckpointReader.corrupt("\(reader.remaining) bytes follow the window state") }

        self.compiled = compiled
        self.limits = limits
        self.inputPartitions = tracker.partitionIDs
        self.tracker = tracker
        self.state = state
        self.nextEarlyEmitMs = nextEarlyEmitMs
        self.sequence = sequence
        self.counters = counters
    }

    /// Checks magic, version, flags, length and CRC; returns a reader over the body.
    private static func verifiedBody(_ bytes: [UInt8]) throws(TaskError) -> CheckpointReader {
        let trailerBytes = 4
        guard bytes.count >= checkpointHeaderBytes + trailerBytes else {
            throw CheckpointReader.corrupt("\(bytes.count) bytes is shorter than a header and a CRC")
        }
        guard bytes[0..<4].elementsEqual(checkpointMagic) else { throw CheckpointReader.corrupt("wrong magic") }
        let version: UInt16 = bytes.getBigEndian(at: 4)
        guard version == checkpointVersion else { throw CheckpointReader.corrupt("unknown version \(version)") }
        let flags: UInt16 = bytes.getBigEndian(at: 6)
        guard flags == 0 else { throw CheckpointReader.corrupt("unknown flags \(flags)") }
        let bodyLength = Int(bytes.getBigEndian(at: 8, as: UInt32.self))
        guard bodyLength == bytes.count - checkpointHeaderBytes - trailerBytes else {
            throw CheckpointReader.corrupt("body length \(bodyLength) does not match the \(bytes.count) bytes read")
        }
        let storedCRC: UInt32 = bytes.getBigEndian(at: bytes.count - trailerBytes)
        let computedCRC = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0.dropLast(trailerBytes))) }
        guard storedCRC == computedCRC else { throw CheckpointReader.corrupt("CRC mismatch") }
        return CheckpointReader(bytes: bytes, position: checkpointHeaderBytes, end: bytes.count - trailerBytes)
    }

    /// Counters are bounded to 2^62 so that counting on from a damaged value can never overflow.
    private static func counter(_ reader: inout CheckpointReader, _ what: String) throws(TaskError) -> Int64 {
        let value = try reader.i64(what)
        guard value >= 0, value <= 1 << 62 else { throw CheckpointReader.corrupt("\(what) is \(value)") }
        return value
    }

    private static func readTracker(_ reader: inout CheckpointReader, plan: ProcessorPlan) throws(TaskError) -> WatermarkTracker {
        let current = try reader.i64("task watermark")
        let count = try reader.count("partition count", minimumBytes: 21)
        guard count > 0 else { throw CheckpointReader.corrupt("no input partitions") }
        var partitions: [Int32] = []
        var states: [WatermarkTracker.PartitionState] = []
        for _ in 0..<count {
            let partition = try reader.i32("partition")
            let hasEventTime = try reader.bool("partition event-time presence")
            let maxEventTimeMs = try reader.i64("partition event time")
            let lastActivityMs = try reader.i64("partition activity time")
            guard !partitions.contains(partition) else { throw CheckpointReader.corrupt("partition \(partition) repeats") }
            partitions.append(partition)
            states.append(.init(maxEventTimeMs: hasEventTime ? maxEventTimeMs : nil, lastActivityMs: lastActivityMs))
        }
        return WatermarkTracker(partitions: partitions, states: states, current: current,
                                allowedLatenessMs: plan.allowedLatenessMs, idleTimeoutMs: plan.idleTimeoutMs)
    }

    /// The shape of the query the state belongs to: what the window store's layout depends on. A checkpoint
    /// restores only into a plan of the same shape.
    static func shape(of compiled: TaskPlan) -> [UInt8] {
        var writer = CheckpointWriter()
        let (kind, sizeMs, slideMs): (UInt8, Int64, Int64)
        switch compiled.assigner {
        case .none: (kind, sizeMs, slideMs) = (compiled.isAggregating ? 1 : 0, 0, 0)
        case .tumbling(let tumbling): (kind, sizeMs, slideMs) = (2, tumbling.sizeMs, 0)
        case .hopping(let hopping): (kind, sizeMs, slideMs) = (3, hopping.sizeMs, hopping.slideMs)
        case .session(let gapMs): (kind, sizeMs, slideMs) = (4, gapMs, 0)
        }
        writer.u8(kind)
        writer.i64(sizeMs)
        writer.i64(slideMs)
        switch compiled.time {
        case nil: writer.u8(0)
        case .expression?: writer.u8(1)
        case .recordTimestamp?: writer.u8(2)
        case .processingTime?: writer.u8(3)
        }
        switch compiled.mode {
        case .final: writer.u8(0)
        case .changes: writer.u8(1)
        case .periodic: writer.u8(2)
        }
        writer.i64(compiled.earlyIntervalMs ?? 0)
        writer.u16(UInt16(clamping: compiled.keys.count))
        writer.u16(UInt16(clamping: compiled.functions.count))
        for function in compiled.functions { writer.u8(functionCode(function)) }
        return writer.bytes
    }

    static func functionCode(_ function: AggregateFunction) -> UInt8 {
        switch function {
        case .countAll: return 0
        case .count: return 1
        case .countDistinct: return 2
        case .sum: return 3
        case .avg: return 4
        case .min: return 5
        case .max: return 6
        case .firstValue: return 7
        case .lastValue: return 8
        }
    }
}
