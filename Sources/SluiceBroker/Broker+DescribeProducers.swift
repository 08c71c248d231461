import NIOCore
import SluiceWire

// DescribeProducers: per partition, how many records an idempotent producer id has stored at its current
// epoch (protocol.md, "Broker writes"). A processor task resuming on another broker skips that much of the
// output it regenerates.
//
// In a cluster only the partition's leader answers, and only with committed records: the leader records a
// batch in its producer table when it admits it, before the batch commits, and an uncommitted batch can
// be lost at a leader change — a task that skipped it would lose output for good. So an entry whose
// producer's last batch lies at or above the high watermark waits (without holding a thread) until a
// commit moves the high watermark past it, or its timeout.

extension Broker {
    /// Longest an entry waits for its producer's last batch to commit, whatever the request's `timeout_ms`.
    static let describeProducersWaitMsMax: Int64 = 30_000

    /// Answers every entry, in request order. Unknown partitions, partitions this broker does not lead
    /// and entries still uncommitted at the timeout get their own errors; the request as a whole succeeds.
    func describeProducers(_ request: DescribeProducersRequest, eventLoop: any EventLoop) -> EventLoopFuture<DescribeProducersResponse> {
        let timeoutMs = min(max(Int64(request.timeoutMs), 0), Self.describeProducersWaitMsMax)
        // The first look runs on the I/O pool: without a cluster an append holds the producer table's lock
        // while it writes to the log file.
        return ioPool.runIfActive(eventLoop: eventLoop) { [self] in request.partitions.map { lookUpProducer($0) } }
            .flatMap { [self] looks in
                let answers = zip(request.partitions, looks).map { entry, look in
                    switch look {
                    case .answered(let answer): eventLoop.makeSucceededFuture(answer)
                    case .uncommitted: awaitCommitted(entry, timeoutMs: timeoutMs, eventLoop: eventLoop)
                    }
                }
                return EventLoopFuture.whenAllSucceed(answers, on: eventLoop)
            }
            .map(DescribeProducersResponse.init(partitions:))
    }

    /// One entry as things stand now.
    enum ProducerLook {
        case answered(DescribeProducersResponse.Partition)
        /// The producer's last batch is not committed yet: wake-ups come from this partition's commits.
        case uncommitted(Partition)
    }

    /// Looks `entry` up: its partition, leadership in a cluster, and the producer's entry in the table.
    func lookUpProducer(_ entry: DescribeProducersRequest.Partition) -> ProducerLook {
        do {
            let partition = try registry.partition(entry.topic, entry.partition)
            if replicaManager != nil {
                // A partition without a replica here is an empty directory, not the data.
                guard let group = partition.replica else { throw notLeaderError(partition, leader: nil) }
                let status = group.status
                guard status.isLeader else { throw notLeaderError(partition, leader: status.leader) }
            }
            // The high watermark first: the table read after it may be newer (a new leader's, after this
            // one stepped down and its suffix was replaced), but whatever it holds below this mark was
            // committed. Read the other way round, an old entry could pass a high watermark that moved
            // over a replaced suffix.
            let highWatermark = partition.log.highWatermark
            guard let progress = partition.producerProgress(entry.producerId) else {
                return .answered(.init(topic: entry.topic, partition: entry.partition, producerEpoch: -1, recordsWritten: 0))
            }
            // Alone, the table holds only what was appended here, and no leader change can take it back.
            if replicaManager != nil, highWatermark <= progress.lastOffset { return .uncommitted(partition) }
            return .answered(.init(topic: entry.topic, partition: entry.partition, producerEpoch: progress.epoch,
                                   recordsWritten: progress.recordsWritten))
        } catch {
            return .answered(.init(topic: entry.topic, partition: entry.partition, failure: wireError(for: error, api: .describeProducers)))
        }
    }

    /// Waits until `entry` can be answered from committed records, this broker stops leading the
    /// partition, or `timeoutMs` pass (`request_timed_out`).
    private func awaitCommitted(_ entry: DescribeProducersRequest.Partition, timeoutMs: Int64,
                                eventLoop: any EventLoop) -> EventLoopFuture<DescribeProducersResponse.Partition> {
        let wait = ProducerCommitWait(eventLoop: eventLoop) { [self] in
            if isStopping {
                return .answered(.init(topic: entry.topic, partition: entry.partition,
                                       failure: WireError(.brokerShuttingDown, "the broker is shutting down; refresh metadata and retry at the partition's leader")))
            }
            return lookUpProducer(entry)
        }
        let timedOut = DescribeProducersResponse.Partition(topic: entry.topic, partition: entry.partition, failure: WireError(.requestTimedOut,
            "producer \(entry.producerId)'s last batch in \(entry.topic)-\(entry.partition) was not committed within \(timeoutMs) ms; "
            + "retry once the partition's replicas catch up"))
        return wait.start(timeoutMs: timeoutMs, timedOut: timedOut)
    }
}

/// One DescribeProducers entry waiting for its producer's last batch to commit.
///
/// Threads: confined to `eventLoop` — a partition's wake-up (which runs on the committing thread) hops
/// there — so its state needs no lock.
private final class ProducerCommitWait: @unchecked Sendable {
    private let eventLoop: any EventLoop
    private let look: () -> Broker.ProducerLook
    private let promise: EventLoopPromise<DescribeProducersResponse.Partition>
    private var registration: (partition: Partition, id: UInt64)?
    private var timeout: Scheduled<Void>?
    private var done = false

    init(eventLoop: any EventLoop, look: @escaping () -> Broker.ProducerLook) {
        self.eventLoop = eventLoop
        self.look = look
        self.promise = eventLoop.makePromise()
    }

    /// Arms the timeout and takes the first look; the future gives the answer.
    func start(timeoutMs: Int64, timedOut: DescribeProducersResponse.Partition) -> EventLoopFuture<DescribeProducersResponse.Partition> {
        eventLoop.preconditionInEventLoop()
        timeout = eventLoop.scheduleTask(in: .milliseconds(timeoutMs)) { [self] in finish(timedOut) }
        check()
        return promise.futureResult
    }

    /// Looks again; while the batch is uncommitted, registers for the partition's next commit (waiters are
    /// one-shot) and looks once more, since a commit between the first look and the registration woke
    /// nobody.
    private func check() {
        guard !done else { return }
        let first = look()
        guard case .uncommitted(let partition) = first else { return answer(first) }
        unregister()
        guard let id = partition.addWaiter({ [self] in eventLoop.execute { self.woken() } }) else {
            return finish(.init(topic: partition.topic, partition: partition.index, failure: WireError(.requestTimedOut,
                "more than \(Partition.waitersMax) requests wait on \(partition.topic)-\(partition.index); retry")))
        }
        registration = (partition, id)
        answer(look())
    }

    private func answer(_ look: Broker.ProducerLook) {
        if case .answered(let answer) = look { finish(answer) }
    }

    private func woken() {
        registration = nil  // the partition dropped the fired waiter
        check()
    }

    private func unregister() {
        if let (partition, id) = registration { partition.removeWaiter(id) }
        registration = nil
    }

    private func finish(_ answer: DescribeProducersResponse.Partition) {
        eventLoop.preconditionInEventLoop()
        guard !done else { return }
        done = true
        timeout?.cancel()
        unregister()
        promise.succeed(answer)
    }
}
