import NIOConcurrencyHelpers
import NIOCore
import SluiceCore
import SluiceLog
import SluiceWire

// Fetch: read whole batches from each requested partition; when fewer than `minBytes` are there,
// hold the request (long poll) until an append to one of its partitions or `maxWaitMs`.

extension Broker {
    struct FetchedPartition {
        var head: FetchPartitionHead
        var bytes: [UInt8]
        var logEndOffset: Int64
    }

    struct FetchedTopic {
        var name: String
        var partitions: [FetchedPartition]
    }

    func fetch(_ request: FetchRequest, header: RequestHeader, eventLoop: any EventLoop) -> EventLoopFuture<BrokerResponse> {
        let maxWait = max(0, min(request.maxWaitMs, config.fetchWaitMsMax))
        return ioPool.runIfActive(eventLoop: eventLoop) { [self] in read(request) }.flatMap { [self] first in
            let total = first.reduce(0) { $0 + $1.partitions.reduce(0) { $0 + $1.bytes.count } }
            let failed = first.contains { $0.partitions.contains { $0.head.error != .none } }
            if total >= Int(request.minBytes) || maxWait == 0 || failed {
                return eventLoop.makeSucceededFuture(encodeFetch(first, header))
            }
            return waitForData(request, seen: first, maxWaitMs: maxWait, eventLoop: eventLoop).flatMap { [self] in
                ioPool.runIfActive(eventLoop: eventLoop) { [self] in encodeFetch(read(request), header) }
            }
        }
    }

    /// Completes when any requested partition grows past what `seen` saw, or after `maxWaitMs`.
    private func waitForData(_ request: FetchRequest, seen: [FetchedTopic], maxWaitMs: Int32, eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        let fired = NIOLockedValueBox(false)
        let fire: @Sendable () -> Void = {
            let first = fired.withLockedValue { was in
                defer { was = true }
                return !was
            }
            if first { promise.succeed() }
        }
        var registrations: [(Partition, UInt64)] = []
        var grew = false
        for topic in seen {
            for fetched in topic.partitions {
                guard let partition = try? registry.partition(topic.name, fetched.head.partition) else { continue }
                guard let id = partition.addWaiter(fire) else { grew = true; continue }
                registrations.append((partition, id))
                // An append between the read and the registration would not wake us: check once more.
                if partition.log.logEndOffset > fetched.logEndOffset { grew = true }
            }
        }
        let timeout = eventLoop.scheduleTask(in: .milliseconds(Int64(maxWaitMs))) { fire() }
        if grew || isStopping { fire() }
        let done = promise.futureResult
        let cleanup = registrations
        done.whenComplete { _ in
            timeout.cancel()
            for (partition, id) in cleanup { partition.removeWaiter(id) }
        }
        return done
    }

    /// Reads what each partition has from its fetch offset (bounded per partition and in total).
    private func read(_ request: FetchRequest) -> [FetchedTopic] {
        var budget = min(Int(max(request.maxBytes, 0)), config.fetchResponseBytesMax)
        return request.topics.map { topic in
            FetchedTopic(name: topic.name, partitions: topic.partitions.map { requested in
                do {
                    let partition = try registry.partition(topic.name, requested.partition)
                    let log = partition.log
                    let limit = min(Int(max(requested.partitionMaxBytes, 1)), max(budget, 1))
                    let result = try log.read(from: requested.fetchOffset, maxBytes: limit)
                    budget -= result.bytes.count
                    return FetchedPartition(
                        head: FetchPartitionHead(partition: requested.partition, highWatermark: result.logEndOffset,
                                                 logStartOffset: result.logStartOffset),
                        bytes: result.bytes, logEndOffset: result.logEndOffset)
                } catch {
                    let wire = wireError(for: error, api: .fetch)
                    return FetchedPartition(
                        head: FetchPartitionHead(partition: requested.partition, error: wire.code, errorMessage: wire.message,
                                                 highWatermark: -1, logStartOffset: -1),
                        bytes: [], logEndOffset: -1)
                }
            })
        }
    }

    private func encodeFetch(_ topics: [FetchedTopic], _ header: RequestHeader) -> BrokerResponse {
        let total = topics.reduce(0) { $0 + $1.partitions.reduce(0) { $0 + $1.bytes.count + 64 } }
        var buffer = ByteBufferAllocator().buffer(capacity: total + 64)
        let start = buffer.writerIndex
        FrameEncoder.encodeResponseHead(correlationId: header.correlationId, error: nil, bodySize: 0, into: &buffer)
        var writer = WireWriter(buffer)
        writer.write(topics) { w, topic in
            w.write(topic.name)
            w.write(topic.partitions) { w, partition in
                partition.head.encode(to: &w)
                w.write(bytes: partition.bytes)
            }
        }
        buffer = writer.buffer
        buffer.setInteger(Int32(buffer.writerIndex - start - 4), at: start, endianness: .big)
        return .buffer(buffer)
    }
}
