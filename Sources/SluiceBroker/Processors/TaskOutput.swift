import SluiceCore
import SluiceLog
import SluiceWire

/// Where a processor task's output and checkpoints go, and how it learns what an earlier run of it already
/// wrote. A broker alone writes straight into its local partitions (`LocalTaskOutput`); in a cluster every
/// write goes through the partition's Raft leader (`ClusterTaskOutput`), which may be another broker.
///
/// Exactly once rests on two promises (storage-format/processors.md): `append` returns only once the
/// records cannot be lost (durable here, committed in a cluster), and `recordsWritten` counts only such
/// records. Calls block; they run on the processor pool, never on an event loop.
protocol TaskOutput: Sendable {
    /// How many records `producerId` (epoch 0) has stored in each of `positions`; 0 where it has none.
    func recordsWritten(producerId: Int64, in positions: [TaskCheckpoint.OutputPosition]) throws -> [TaskCheckpoint.OutputPosition: Int64]
    /// Appends each position's batches in order; returns once all of them cannot be lost.
    func append(_ batches: [(TaskCheckpoint.OutputPosition, [RecordBatch])]) throws
    /// Stores a task checkpoint record (a nil value deletes it) and returns once it cannot be lost.
    func storeCheckpoint(key: [UInt8], value: [UInt8]?, timestampMs: Int64) throws
    /// Whether a task may take over from a predecessor on another broker (a cluster, where tasks follow
    /// leadership): its predecessor's progress after its last checkpoint is then unknown to it.
    var takesOverTasks: Bool { get }
}

/// The output of a broker running alone: appends to local partitions and waits for their flush policy.
struct LocalTaskOutput: TaskOutput {
    /// The task's output topics (at most three).
    let topics: [Topic]
    /// `__processor_checkpoints`' only partition.
    let checkpoints: Partition

    var takesOverTasks: Bool { false }

    func recordsWritten(producerId: Int64, in positions: [TaskCheckpoint.OutputPosition]) throws -> [TaskCheckpoint.OutputPosition: Int64] {
        var counts: [TaskCheckpoint.OutputPosition: Int64] = [:]
        for position in positions {
            counts[position] = try partition(position).recordsWritten(producerId: producerId, epoch: 0)
        }
        return counts
    }

    func append(_ batches: [(TaskCheckpoint.OutputPosition, [RecordBatch])]) throws {
        // The log each append went to: an alter may reopen a partition's log in between, and the wait must
        // be on the one that holds the records (as produce does).
        var appended: [(Partition, PartitionLog, Int64)] = []
        for (position, list) in batches {
            let output = try partition(position)
            for batch in list {
                let (outcome, log) = try output.appendWithoutWaiting(batch, header: batch.header)
                appended.append((output, log, outcome.lastOffset))
            }
        }
        for (_, log, last) in appended { try log.waitDurable(through: last) }
        for (output, _, _) in appended { output.wakeWaiters() }
    }

    func storeCheckpoint(key: [UInt8], value: [UInt8]?, timestampMs: Int64) throws {
        try InternalTopic.write(checkpoints, key: key, value: value, timestampMs: timestampMs)
    }

    private func partition(_ position: TaskCheckpoint.OutputPosition) throws -> Partition {
        guard let topic = topics.first(where: { $0.name == position.topic }), position.partition >= 0,
              Int(position.partition) < topic.partitions.count else {
            throw WireError(.unknownTopicOrPartition, "\(position.topic)-\(position.partition) is not one of the task's output partitions; was the topic deleted?")
        }
        return topic.partitions[Int(position.partition)]
    }
}

/// A write or lookup that may succeed when tried again: no leader is elected, a leader moved or cannot be
/// reached, too few replicas acknowledged in time. The task starts again from its last checkpoint after
/// `ProcessorTaskRunner.Settings.retryDelayMs` instead of failing for good.
struct TaskOutputUnavailable: Error, CustomStringConvertible {
    /// What went wrong, for the log.
    let message: String

    var description: String { message }
}

/// The output of a task in a cluster: every write and count goes to the partition's Raft leader
/// (`LeaderCalls`), so it is replicated like a producer's and counted only once committed.
struct ClusterTaskOutput: TaskOutput {
    let calls: LeaderCalls

    var takesOverTasks: Bool { true }

    func recordsWritten(producerId: Int64, in positions: [TaskCheckpoint.OutputPosition]) throws -> [TaskCheckpoint.OutputPosition: Int64] {
        var counts: [TaskCheckpoint.OutputPosition: Int64] = [:]
        for position in positions { counts[position] = try calls.recordsWritten(producerId: producerId, in: position) }
        return counts
    }

    func append(_ batches: [(TaskCheckpoint.OutputPosition, [RecordBatch])]) throws {
        try calls.append(batches)
    }

    func storeCheckpoint(key: [UInt8], value: [UInt8]?, timestampMs: Int64) throws {
        let batch = try InternalTopic.batch(key: key, value: value, timestampMs: timestampMs)
        try calls.append([batch], to: TaskCheckpoint.OutputPosition(topic: ProcessorManager.checkpointsTopic, partition: 0))
    }
}
