import NIOConcurrencyHelpers
import NIOCore
import SluiceCore
import SluiceLog
import SluiceWire

#if canImport(Glibc)
import Glibc
#endif

// Fetch: read whole batches from each requested partition; when fewer than `minBytes` are there,
// hold the request (long poll) until an append to one of its partitions or `maxWaitMs`.

extension Broker {
    /// One partition's answer: where its batches lie in a segment file (sent with sendfile, never
    /// copied through Swift buffers), or nothing.
    struct FetchedPartition {
        var head: FetchPartitionHead
        var region: LogRegion?

        var byteCount: Int { region?.length ?? 0 }
    }

    struct FetchedTopic {
        var name: String
        var partitions: [FetchedPartition]
    }

    func fetch(_ request: FetchRequest, header: RequestHeader, eventLoop: any EventLoop) -> EventLoopFuture<BrokerResponse> {
        let maxWait = max(0, min(request.maxWaitMs, config.fetchWaitMsMax))
        return ioPool.runIfActive(eventLoop: eventLoop) { [self] in read(request) }.flatMap { [self] first in
            let total = first.reduce(0) { $0 + $1.partitions.reduce(0) { $0 + $1.byteCount } }
            let failed = first.contains { $0.partitions.contains { $0.head.error != .none } }
            if total >= Int(request.minBytes) || maxWait == 0 || failed {
                return eventLoop.makeSucceededFuture(encodeFetch(first, header))
            }
            Self.closeRegions(first)
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
                if partition.log.highWatermark > fetched.head.highWatermark { grew = true }
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

    /// The partition, if this broker holds its data. In a cluster a partition without a replica here is
    /// an empty directory, not the data: the client is sent to a replica (internal topics are local).
    func servedPartition(_ topic: String, _ index: Int32) throws -> Partition {
        let partition = try registry.partition(topic, index)
        if replicaManager != nil, partition.replica == nil, registry.topic(topic)?.isInternal == false {
            throw notLeaderError(partition, leader: nil)
        }
        return partition
    }

    /// Reads what each partition has from its fetch offset (bounded per partition and in total).
    private func read(_ request: FetchRequest) -> [FetchedTopic] {
        var budget = min(Int(max(request.maxBytes, 0)), config.fetchResponseBytesMax)
        var returned = false
        return request.topics.map { topic in
            FetchedTopic(name: topic.name, partitions: topic.partitions.map { requested in
                do {
                    let partition = try servedPartition(topic.name, requested.partition)
                    let log = partition.log
                    let highWatermark = log.highWatermark
                    // Only the response's first batch may exceed the budget; once it is spent the other
                    // partitions answer empty, which also bounds the frame size and the descriptors.
                    guard budget > 0 || !returned else {
                        return FetchedPartition(
                            head: FetchPartitionHead(partition: requested.partition, highWatermark: highWatermark,
                                                     logStartOffset: log.logStartOffset),
                            region: nil)
                    }
                    let limit = min(Int(max(requested.partitionMaxBytes, 1)), max(budget, 1))
                    let (region, start, _) = try log.readRegion(from: requested.fetchOffset, maxBytes: limit, maxOffset: highWatermark)
                    budget -= region?.length ?? 0
                    returned = returned || region != nil
                    return FetchedPartition(
                        head: FetchPartitionHead(partition: requested.partition, highWatermark: highWatermark, logStartOffset: start),
                        region: region)
                } catch {
                    let wire = wireError(for: error, api: .fetch)
                    return FetchedPartition(
                        head: FetchPartitionHead(partition: requested.partition, error: wire.code, errorMessage: wire.message,
                                                 highWatermark: -1, logStartOffset: -1), region: nil)
                }
            })
        }
    }

    /// Writes the response as buffers for the fixed fields and file regions for the records.
    private func encodeFetch(_ topics: [FetchedTopic], _ header: RequestHeader) -> BrokerResponse {
        var parts: [IOData] = []
        var handles: [NIOFileHandle] = []
        var buffer = ByteBufferAllocator().buffer(capacity: 256)
        FrameEncoder.encodeResponseHead(correlationId: header.correlationId, error: nil, bodySize: 0, into: &buffer)
        var writer = WireWriter(buffer)
        writer.write(Int32(topics.count))
        for topic in topics {
            writer.write(topic.name)
            writer.write(Int32(topic.partitions.count))
            for partition in topic.partitions {
                partition.head.encode(to: &writer)
                guard let region = partition.region else {
                    writer.write(Int32(0))
                    continue
                }
                writer.write(Int32(region.length))
                parts.append(.byteBuffer(writer.buffer))
                writer = WireWriter(ByteBufferAllocator().buffer(capacity: 128))
                let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: region.descriptor)
                handles.append(handle)
                parts.append(.fileRegion(FileRegion(fileHandle: handle, readerIndex: region.position, endIndex: region.position + region.length)))
            }
        }
        parts.append(.byteBuffer(writer.buffer))
        // The frame size covers every part after the size field itself.
        let total = parts.reduce(0) { sum, part in
            switch part {
            case .byteBuffer(let b): sum + b.readableBytes
            case .fileRegion(let r): sum + r.readableBytes
            }
        }
        guard case .byteBuffer(var first) = parts[0] else { preconditionFailure("a fetch response starts with a buffer") }
        first.setInteger(Int32(total - 4), at: first.readerIndex, endianness: .big)
        parts[0] = .byteBuffer(first)
        if handles.isEmpty, case .byteBuffer(var only) = parts[0] {
            for case .byteBuffer(var rest) in parts.dropFirst() { only.writeBuffer(&rest) }
            return .buffer(only)
        }
        return .parts(parts, cleanup: { [handles] in for handle in handles { try? handle.close() } })
    }

    /// Closes the descriptors of a read that will not be sent.
    static func closeRegions(_ topics: [FetchedTopic]) {
        for topic in topics {
            for partition in topic.partitions {
                if let region = partition.region { close(region.descriptor) }
            }
        }
    }
}
