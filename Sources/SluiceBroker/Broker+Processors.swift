import NIOCore
import SluiceWire

/// Processor administration (CreateProcessor, ListProcessors, DescribeProcessor, AlterProcessor): the
/// requests are decoded here and carried out by `ProcessorManager` on the I/O pool, or in a cluster by the
/// controller (`Broker+ProcessorsCluster.swift`).
extension Broker {
    func routeProcessor(_ api: ApiKey, _ frame: RequestFrame, eventLoop: any EventLoop) throws -> EventLoopFuture<BrokerResponse> {
        let header = frame.header
        let inCluster = replicaManager != nil
        switch api {
        case .createProcessor:
            let request = try CreateProcessorRequest.decode(frame.body, version: header.apiVersion)
            return onPool(eventLoop) { [self] in
                response(ProcessorResultResponse(failure {
                    if inCluster { return try createProcessorInCluster(request) }
                    try processors.create(name: request.name, sql: request.sql, from: request.startFrom, validateOnly: request.validateOnly)
                }), header)
            }
        case .listProcessors:
            _ = try ListProcessorsRequest.decode(frame.body, version: header.apiVersion)
            let list = processors.list().map { ListProcessorsResponse.Processor(name: $0.name, state: $0.state, source: $0.source, sink: $0.sink) }
            return eventLoop.makeSucceededFuture(response(ListProcessorsResponse(processors: list), header))
        case .describeProcessor:
            let request = try DescribeProcessorRequest.decode(frame.body, version: header.apiVersion)
            return onPool(eventLoop) { [self] in response(describeProcessorResponse(request.name), header) }
        case .alterProcessor:
            let request = try AlterProcessorRequest.decode(frame.body, version: header.apiVersion)
            return onPool(eventLoop) { [self] in
                response(ProcessorResultResponse(failure {
                    if inCluster { return try alterProcessorInCluster(request) }
                    switch request.action {
                    case .pause: try processors.pause(request.name)
                    case .resume: try processors.resume(request.name)
                    case .reset(let position): try processors.restart(request.name, from: position, sql: nil)
                    case .replace(let sql): try processors.restart(request.name, from: nil, sql: sql)
                    case .delete(let deleteOutput): try processors.delete(request.name, deleteOutput: deleteOutput)
                    }
                }), header)
            }
        default:
            preconditionFailure("routeProcessor called for \(api)")
        }
    }

    /// Runs `body`; nil when it succeeds, else what the client is told.
    private func failure(_ body: () throws -> Void) -> WireError? {
        do {
            try body()
            return nil
        } catch {
            return wireError(for: error, api: nil)
        }
    }

    func describeProcessorResponse(_ name: String) -> DescribeProcessorResponse {
        do {
            let description = try processors.describe(name)
            let tasks = description.tasks.map { task in
                DescribeProcessorResponse.TaskStatus(
                    partition: task.partition, inputOffset: task.inputOffset, inputEndOffset: task.endOffset,
                    watermarkMs: task.statistics.watermarkMs, recordsIn: task.statistics.recordsIn,
                    recordsOut: task.statistics.recordsOut, recordsLate: task.statistics.recordsLate,
                    recordsInvalid: task.statistics.recordsInvalid, inRatePerSecond: task.rates.inPerSecond,
                    outRatePerSecond: task.rates.outPerSecond, lateRatePerSecond: task.rates.latePerSecond,
                    stateBytes: Int64(task.statistics.stateBytes), state: task.state, lastError: task.lastError)
            }
            return DescribeProcessorResponse(
                name: name, sql: description.sql, state: description.summary.state, lastError: description.lastError,
                createdMs: description.createdMs, source: description.summary.source, sink: description.summary.sink, tasks: tasks)
        } catch {
            return DescribeProcessorResponse(name: name, failure: wireError(for: error, api: .describeProcessor))
        }
    }
}
