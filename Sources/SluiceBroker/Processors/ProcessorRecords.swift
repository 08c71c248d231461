import NIOCore
import SluiceWire

/// A registered processor as stored in `__processors` (storage-format/processors.md, "Registry records").
///
/// Key: the processor name (UTF-8). Value: int16 version 0, string sql, int8 state (0 running, 1 paused),
/// int32 generation, int64 producer id, int64 created (ms), array of int64 start offsets (one per source
/// partition), array of int64 repartition start offsets. A null value deletes the processor.
///
/// The generation changes on `reset` and `replace`; a checkpoint of another generation is ignored, and each
/// generation writes with a producer id of its own, so its output sequence numbers start again at 0.
struct ProcessorDefinition: Sendable, Hashable {
    enum State: Int8, Sendable, Hashable {
        case running = 0
        case paused = 1
    }

    var name: String
    var sql: String
    var state: State
    var generation: Int32
    /// The first of the idempotent producer ids this generation's tasks write with (epoch 0): the task of
    /// source partition p uses `producerId + p`.
    var producerId: Int64
    var createdMs: Int64
    /// Where each source partition's task starts when it has no checkpoint of this generation.
    var startOffsets: [Int64]
    /// For a query that repartitions: where each aggregating task starts in the repartition topic (its end
    /// when the generation began, so records of an earlier generation are never aggregated). Empty otherwise.
    var repartitionStartOffsets: [Int64] = []

    /// Longest SQL text stored (the parser's own bound).
    static let sqlBytesMax = 64 * 1024
    /// Most source partitions a processor may read (the broker's per-topic partition bound is lower).
    static let partitionsMax = 100_000

    func encodeValue() -> [UInt8] {
        var writer = WireWriter(ByteBufferAllocator().buffer(capacity: 64 + sql.utf8.count + 8 * startOffsets.count))
        writer.write(Int16(0))
        writer.write(sql)
        writer.write(state.rawValue)
        writer.write(generation)
        writer.write(producerId)
        writer.write(createdMs)
        writer.write(startOffsets) { $0.write($1) }
        writer.write(repartitionStartOffsets) { $0.write($1) }
        return Array(writer.buffer.readableBytesView)
    }

    /// nil for a value this version cannot read (a newer version, or damage): the processor is skipped
    /// with a logged warning rather than guessed at.
    static func decode(name: String, value: [UInt8]) -> ProcessorDefinition? {
        var reader = WireReader(ByteBuffer(bytes: value))
        do {
            guard try reader.readInt16("version") == 0 else { return nil }
            let sql = try reader.readString("sql")
            guard let state = State(rawValue: try reader.readInt8("state")) else { return nil }
            let generation = try reader.readInt32("generation")
            let producerId = try reader.readInt64("producer id")
            let createdMs = try reader.readInt64("created")
            let offsets = try reader.readArray("start offsets") { try $0.readInt64("offset") }
            let repartitionOffsets = try reader.readArray("repartition start offsets") { try $0.readInt64("offset") }
            // Nothing may follow: the cluster metadata stores these bytes as they came, and two brokers
            // must not keep different bytes for one definition.
            guard reader.remaining == 0, sql.utf8.count <= sqlBytesMax, offsets.count <= partitionsMax, repartitionOffsets.count <= partitionsMax,
                  (offsets + repartitionOffsets).allSatisfy({ $0 >= 0 }) else { return nil }
            return ProcessorDefinition(name: name, sql: sql, state: state, generation: generation, producerId: producerId,
                                       createdMs: createdMs, startOffsets: offsets, repartitionStartOffsets: repartitionOffsets)
        } catch {
            return nil
        }
    }
}

/// A task's checkpoint as stored in `__processor_checkpoints` (storage-format/processors.md, "Checkpoint
/// records").
///
/// Key: string processor name, int32 source partition (WireWriter encoding). Value: int16 version 0,
/// int32 generation, int64 next input offset, array of (string topic, int32 partition, int64 records
/// written) — how many output records of this generation the task had written to each output partition
/// when the checkpoint was taken — then bytes: the engine's own checkpoint (storage-format/
/// processor-checkpoint.md).
struct TaskCheckpoint: Sendable, Hashable {
    struct OutputPosition: Sendable, Hashable, Comparable {
        var topic: String
        var partition: Int32

        static func < (lhs: OutputPosition, rhs: OutputPosition) -> Bool {
            (lhs.topic, lhs.partition) < (rhs.topic, rhs.partition)
        }
    }

    var generation: Int32
    var inputOffset: Int64
    /// Output records written so far per output partition; the next record there gets this number as
    /// its idempotent sequence.
    var written: [OutputPosition: Int64]
    var engine: [UInt8]

    /// Largest engine checkpoint stored: an internal record must fit a batch (`max.message.bytes` ceiling).
    static let engineBytesMax = 48 << 20

    static func key(processor: String, partition: Int32) -> [UInt8] {
        var writer = WireWriter(ByteBufferAllocator().buffer(capacity: 16 + processor.utf8.count))
        writer.write(processor)
        writer.write(partition)
        return Array(writer.buffer.readableBytesView)
    }

    static func decodeKey(_ bytes: [UInt8]) -> (String, Int32)? {
        var reader = WireReader(ByteBuffer(bytes: bytes))
        guard let name = try? reader.readString("processor"), let partition = try? reader.readInt32("partition") else { return nil }
        return (name, partition)
    }

    func encodeValue() -> [UInt8] {
        var writer = WireWriter(ByteBufferAllocator().buffer(capacity: 64 + engine.count + 32 * written.count))
        writer.write(Int16(0))
        writer.write(generation)
        writer.write(inputOffset)
        writer.write(written.sorted { $0.key < $1.key }) { writer, entry in
            writer.write(entry.key.topic)
            writer.write(entry.key.partition)
            writer.write(entry.value)
        }
        writer.write(bytes: engine)
        return Array(writer.buffer.readableBytesView)
    }

    /// The generation and input offset at the head of a stored value, without decoding the rest (a
    /// checkpoint may carry up to `engineBytesMax` of state); nil when the head does not decode.
    static func decodePosition(_ value: [UInt8]) -> (generation: Int32, inputOffset: Int64)? {
        var reader = WireReader(ByteBuffer(bytes: value.prefix(14)))
        guard (try? reader.readInt16("version")) == 0, let generation = try? reader.readInt32("generation"),
              let inputOffset = try? reader.readInt64("input offset"), inputOffset >= 0 else { return nil }
        return (generation, inputOffset)
    }

    /// nil when the value does not decode; the task then starts from its generation's start offsets,
    /// which is safe only because it is logged loudly and the output is deduplicated by sequence.
    static func decode(_ value: [UInt8]) -> TaskCheckpoint? {
        var reader = WireReader(ByteBuffer(bytes: value))
        do {
            guard try reader.readInt16("version") == 0 else { return nil }
            let generation = try reader.readInt32("generation")
            let inputOffset = try reader.readInt64("input offset")
            let entries = try reader.readArray("outputs") { reader in
                (OutputPosition(topic: try reader.readString("topic"), partition: try reader.readInt32("partition")),
                 try reader.readInt64("written"))
            }
            let engine = try reader.readBytes("engine")
            guard inputOffset >= 0, entries.allSatisfy({ $0.1 >= 0 }), engine.readableBytes <= engineBytesMax else { return nil }
            var written: [OutputPosition: Int64] = [:]
            for (position, count) in entries { written[position] = count }
            return TaskCheckpoint(generation: generation, inputOffset: inputOffset, written: written,
                                  engine: Array(engine.readableBytesView))
        } catch {
            return nil
        }
    }
}
