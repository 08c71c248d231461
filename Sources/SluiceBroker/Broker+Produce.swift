import NIOCore
import SluiceCompression
import SluiceCore
import SluiceLog
import SluiceRaft
import SluiceWire

// Produce: validate each batch (length, CRC, record count and structure, timestamps), check the
// idempotent producer's sequence, append, and answer once the flush policy is satisfied.

extension Broker {
    /// A produce request after its batches were written, before they are durable.
    struct WrittenProduce {
        struct Item {
            var topic: String
            var partition: Int32
            var target: Partition?
            /// The log the batches went to (a config change may replace the partition's log meanwhile).
            var log: PartitionLog?
            var firstOffset: Int64
            var lastOffset: Int64
            var error: WireError?
            /// A replicated partition's answer: first and last offset once its Raft group acknowledged.
            var replicated: EventLoopFuture<(Int64, Int64)>?
        }

        var items: [Item]

        /// Some partition's answer must wait for an fsync (`flush.policy=always`): finish on the I/O pool.
        var waitsForFsync: Bool {
            items.contains { $0.error == nil && $0.replicated == nil && $0.log?.config.flushPolicy == .always }
        }

        /// Waits for the replicated partitions' acknowledgements and puts their offsets or errors in place.
        func settlingReplicated(on eventLoop: any EventLoop, _ wireError: @escaping @Sendable (any Error) -> WireError) -> EventLoopFuture<WrittenProduce> {
            let pending = items.enumerated().compactMap { i, item in item.replicated.map { (i, $0) } }
            guard !pending.isEmpty else { return eventLoop.makeSucceededFuture(self) }
            return EventLoopFuture.whenAllComplete(pending.map(\.1), on: eventLoop).map { results in
                var settled = self
                for ((i, _), result) in zip(pending, results) {
                    settled.items[i].replicated = nil
                    switch result {
                    case .success(let (first, last)):
                        settled.items[i].firstOffset = first
                        settled.items[i].lastOffset = last
                        settled.items[i].log = nil
                    case .failure(let error):
                        settled.items[i].error = wireError(error)
                    }
                }
                return settled
            }
        }
    }

    /// Phase one, run for one connection's produce requests strictly in arrival order: validate and
    /// write every batch (so an idempotent producer's pipelined batches are checked in sequence order).
    /// Partitions of internal topics are refused, except, with `allowInternal` (BrokerProduce: a broker's
    /// own writes), the ones processor tasks write: checkpoints and repartition topics.
    func writeProduce(_ request: ProduceRequest, allowInternal: Bool, eventLoop: any EventLoop) -> WrittenProduce {
        let api: ApiKey = allowInternal ? .brokerProduce : .produce
        var items: [WrittenProduce.Item] = []
        for topic in request.topics {
            for requested in topic.partitions {
                do {
                    let partition = try registry.partition(topic.name, requested.partition)
                    if registry.topic(topic.name)?.isInternal == true, !(allowInternal && ProcessorManager.writtenByTasks(topic.name)) {
                        throw WireError(.invalidTopic, "'\(topic.name)' is an internal topic; clients cannot produce to it")
                    }
                    if replicaManager != nil, partition.replica == nil {
                        // In a cluster a write that bypasses Raft would make this copy differ from the others.
                        throw notLeaderError(partition, leader: nil)
                    }
                    if let group = partition.replica {
                        let replicated = try propose(requested.records, to: partition, group: group, acks: request.acks,
                                                     timeoutMs: request.timeoutMs, eventLoop: eventLoop)
                        items.append(.init(topic: topic.name, partition: requested.partition, target: partition, log: nil,
                                           firstOffset: -1, lastOffset: -1, replicated: replicated))
                        continue
                    }
                    let (first, last, log) = try write(requested.records, to: partition)
                    items.append(.init(topic: topic.name, partition: requested.partition, target: partition, log: log,
                                       firstOffset: first, lastOffset: last))
                } catch {
                    items.append(.init(topic: topic.name, partition: requested.partition, target: nil, log: nil, firstOffset: -1, lastOffset: -1,
                                       error: wireError(for: error, api: api)))
                }
            }
        }
        return WrittenProduce(items: items)
    }

    /// Phase two on the event loop: waits for the replicated partitions' acknowledgements, then builds
    /// the answer, on the I/O pool when a partition must wait for an fsync (`flush.policy=always`) and
    /// here otherwise (saving a thread hand-off per request).
    func answerProduce(_ written: WrittenProduce, api: ApiKey, eventLoop: any EventLoop) -> EventLoopFuture<ProduceResponse> {
        written.settlingReplicated(on: eventLoop) { [self] error in wireError(for: error, api: api) }.flatMap { [self] written in
            guard written.waitsForFsync else { return eventLoop.makeSucceededFuture(finishProduce(written)) }
            return ioPool.runIfActive(eventLoop: eventLoop) { [self] in finishProduce(written) }
        }
    }

    /// Produce as a broker's own write (processor output and checkpoints): internal topics allowed; the future gives the response once acks are met.
    ///
    /// Requests are written as they come, without the per-connection order the Produce route keeps: a
    /// broker task sends its next request only after this one's answer.
    func produceInternally(_ request: ProduceRequest, eventLoop: any EventLoop) -> EventLoopFuture<ProduceResponse> {
        ioPool.runIfActive(eventLoop: eventLoop) { [self] in writeProduce(request, allowInternal: true, eventLoop: eventLoop) }
            .flatMap { [self] written in answerProduce(written, api: .brokerProduce, eventLoop: eventLoop) }
    }

    /// Phase two, concurrent with later requests: wait until the writes are durable (sharing fsyncs)
    /// and build the answer.
    func finishProduce(_ written: WrittenProduce) -> ProduceResponse {
        var topics: [ProduceResponse.Topic] = []
        for item in written.items {
            var answer: ProduceResponse.Partition
            if let error = item.error {
                answer = .init(partition: item.partition, error: error.code, errorMessage: error.message, baseOffset: -1, logStartOffset: -1)
            } else if let target = item.target, item.log == nil, item.firstOffset >= 0 {
                // Replicated: acknowledged by its Raft group already.
                answer = .init(partition: item.partition, baseOffset: item.firstOffset, logStartOffset: target.log.logStartOffset)
            } else if let target = item.target, let log = item.log {
                do {
                    try log.waitDurable(through: item.lastOffset)
                    target.wakeWaiters()
                    answer = .init(partition: item.partition, baseOffset: item.firstOffset, logStartOffset: log.logStartOffset)
                } catch {
                    let wire = wireError(for: error, api: .produce)
                    answer = .init(partition: item.partition, error: wire.code, errorMessage: wire.message, baseOffset: -1, logStartOffset: -1)
                }
            } else {
                continue
            }
            if topics.last?.name == item.topic {
                topics[topics.count - 1].partitions.append(answer)
            } else {
                topics.append(.init(name: item.topic, partitions: [answer]))
            }
        }
        return ProduceResponse(topics: topics)
    }

    /// Proposes every batch in `records` to the partition's Raft group (this broker must lead it); the
    /// future gives the first batch's first offset and the last batch's last once `acks` is met:
    /// `all` when a majority has them durably, `leader` when this broker has.
    private func propose(_ records: ByteBuffer, to partition: Partition, group: RaftGroup, acks: Acks, timeoutMs: Int32,
                         eventLoop: any EventLoop) throws -> EventLoopFuture<(Int64, Int64)> {
        let status = group.status
        guard status.isLeader else { throw notLeaderError(partition, leader: status.leader) }
        let batches = try checkedBatches(records, for: partition)
        let futures = batches.map { batch, header in
            // Whichever comes second, the timeout or the group's answer, finds the promise completed:
            // a promise takes its first result and ignores later ones.
            let promise = eventLoop.makePromise(of: ProposalResult.self)
            // Without a majority the entry cannot commit: answer within the request's timeout instead of
            // holding the producer. The entry may still commit later; an idempotent retry is safe.
            let timeout = eventLoop.scheduleTask(in: .milliseconds(Int64(max(1, timeoutMs)))) {
                promise.fail(WireError(.notEnoughReplicas,
                    "\(partition.topic)-\(partition.index) was not acknowledged by a majority of its replicas within \(timeoutMs) ms; "
                    + "check that most of its brokers are up, then retry"))
            }
            group.propose(.init(admit: { next in try partition.admit(batch, header: header, nextOffset: next) },
                                ack: acks == .all ? .committed : .persisted,
                                completion: { result in
                                    timeout.cancel()
                                    promise.completeWith(result)
                                }))
            return promise.futureResult
        }
        return EventLoopFuture.whenAllSucceed(futures, on: eventLoop).flatMapThrowing { results in
            guard let first = results.first, let last = results.last else { throw WireError(.invalidRecord, "no record batch") }
            return (first.firstOffset, last.lastOffset)
        }.flatMapErrorThrowing { [self] error in
            if case ProposalError.notLeader(let leader) = error { throw notLeaderError(partition, leader: leader) }
            throw error
        }
    }

    /// Cuts and fully checks every batch of a produce request's records (refusing the request whole on
    /// the first bad one), recompressing where the topic's `compression.type` asks for it.
    private func checkedBatches(_ records: ByteBuffer, for partition: Partition) throws -> [(RecordBatch, RecordBatchHeader)] {
        guard let topic = registry.topic(partition.topic) else {
            throw WireError(.unknownTopicOrPartition, "topic '\(partition.topic)' was deleted")
        }
        let maxBytes = topic.config.maxMessageBytes(defaults: registry.defaults)
        let limits = partition.log.config.limits
        let required = CompressionCodec(name: topic.config.value("compression.type", defaults: registry.defaults))
        var remaining = records
        guard remaining.readableBytes > 0 else { throw WireError(.invalidRecord, "the produce request holds no record batch") }
        var batches: [(RecordBatch, RecordBatchHeader)] = []
        while remaining.readableBytes > 0 {
            var (batch, header) = try Self.takeBatch(&remaining, maxMessageBytes: maxBytes, limits: limits)
            if let required, header.codec != required {
                (batch, header) = try Self.recompress(batch, header, to: required, limits: limits)
            }
            batches.append((batch, header))
        }
        return batches
    }

    /// Writes every batch in `records`; returns the first batch's first offset, the last batch's last,
    /// and the log written to.
    private func write(_ records: ByteBuffer, to partition: Partition) throws -> (Int64, Int64, PartitionLog) {
        var first: Int64?
        var last: Int64 = -1
        // Every batch is checked before any is stored: a request is refused whole, never half-stored.
        let batches = try checkedBatches(records, for: partition)
        var written = partition.log
        for (batch, header) in batches {
            let (outcome, log) = try partition.appendWithoutWaiting(batch, header: header)
            first = first ?? outcome.firstOffset
            last = max(last, outcome.lastOffset)
            written = log
        }
        return (first ?? -1, last, written)
    }

    /// Cuts the next batch off `buffer` and validates it fully.
    static func takeBatch(_ buffer: inout ByteBuffer, maxMessageBytes: Int, limits: Limits) throws -> (RecordBatch, RecordBatchHeader) {
        guard buffer.readableBytes >= RecordBatchHeader.size,
              let length = buffer.getInteger(at: buffer.readerIndex + 8, endianness: .big, as: Int32.self) else {
            throw WireError(.corruptMessage, "record batch truncated: \(buffer.readableBytes) bytes, a batch header needs \(RecordBatchHeader.size)")
        }
        let size = Int(length) + RecordBatchHeader.logOverhead
        guard size <= maxMessageBytes else {
            throw WireError(.messageTooLarge, "record batch of \(size) bytes exceeds the topic's max.message.bytes of \(maxMessageBytes); send smaller batches or raise max.message.bytes")
        }
        guard size >= RecordBatchHeader.size, size <= buffer.readableBytes, let bytes = buffer.readBytes(length: size) else {
            throw WireError(.corruptMessage, "record batch length field says \(size) bytes but \(buffer.readableBytes) are left in the request")
        }
        let header: RecordBatchHeader
        do {
            header = try bytes.withUnsafeBytes { raw in try RecordBatch.validate(raw, limits: limits) }
        } catch let error as BatchFormatError {
            throw WireError(.corruptMessage, "record batch rejected: \(error)")
        }
        guard header.recordCount > 0 else { throw WireError(.invalidRecord, "record batch holds no records") }
        guard Int64(header.lastOffsetDelta) == Int64(header.recordCount) - 1 else {
            throw WireError(.invalidRecord, "record batch says \(header.recordCount) records but its last offset delta is \(header.lastOffsetDelta)")
        }
        guard !header.isTransactional && !header.isControl else {
            throw WireError(.invalidRecord, "transactional and control batches are not supported")
        }
        let summary: RecordBatch.RecordsSummary
        do {
            summary = try bytes.withUnsafeBytes { raw in
                let body = UnsafeRawBufferPointer(rebasing: raw[RecordBatchHeader.size...])
                if header.codec == CompressionCodec.none {
                    return try RecordBatch.checkRecords(section: body, header: header, limits: limits)
                }
                let section = try RecordBatch.uncompressedSection(raw, limits: limits)
                return try section.withUnsafeBytes { try RecordBatch.checkRecords(section: $0, header: header, limits: limits) }
            }
        } catch let error as BatchFormatError {
            throw WireError(.invalidRecord, "record batch rejected: \(error)")
        }
        if header.timestampType == .createTime && summary.maxTimestamp != header.maxTimestamp {
            throw WireError(.invalidRecord, "record batch's max timestamp \(header.maxTimestamp) differs from its largest record timestamp \(summary.maxTimestamp)")
        }
        return (RecordBatch(unchecked: bytes), header)
    }

    /// Re-encodes a batch with the topic's `compression.type` (the one case where the broker does not
    /// store the producer's bytes as they came), keeping producer id, epoch, sequence and timestamps.
    static func recompress(_ batch: RecordBatch, _ header: RecordBatchHeader, to codec: CompressionCodec,
                           limits: Limits) throws -> (RecordBatch, RecordBatchHeader) {
        do {
            let records = try batch.records(limits: limits)
            let rebuilt = try RecordBatch.build(records: records, codec: codec, producerId: header.producerId,
                                                producerEpoch: header.producerEpoch, baseSequence: header.baseSequence,
                                                timestampType: header.timestampType)
            return (rebuilt, rebuilt.header)
        } catch let error as BatchFormatError {
            throw WireError(.invalidRecord, "record batch could not be recompressed to \(codec): \(error)")
        }
    }
}
