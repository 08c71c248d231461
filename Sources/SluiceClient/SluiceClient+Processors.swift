import SluiceWire

// Processor administration (protocol.md, "Processors"): create, list, describe, pause, resume, reset,
// replace and delete the continuous queries the brokers run.
//
// Every call sends one request and turns an error in the answer into a thrown `SluiceClientError` whose
// kind is `.broker(code)` and whose message is the broker's sentence (for `invalid_query`, the SQL error
// `line L, column C: …`).

extension SluiceClient {
    /// Registers processor `name` running `sql`, reading its source from `from` in every partition. With
    /// `validateOnly` the broker checks the name and the query exactly as for a real create but registers
    /// nothing.
    ///
    /// Throws `invalidArgument` for a name or query the protocol cannot carry (checked here, before
    /// anything is sent), and the broker's refusal otherwise: `invalid_query`, `processor_already_exists`,
    /// `invalid_processor_name`, `unknown_topic_or_partition`.
    public func createProcessor(name: String, sql: String, from: ProcessorStartPosition = .earliest,
                                validateOnly: Bool = false) async throws {
        try Self.checkSendable(name: name)
        try Self.checkSendable(sql: sql)
        if case .timestamp(let ms) = from, ms < 0 {
            throw SluiceClientError(.invalidArgument, "a start timestamp is epoch milliseconds ≥ 0, got \(ms)")
        }
        let request = CreateProcessorRequest(name: name, sql: sql, startFrom: from, validateOnly: validateOnly)
        let response = try await sendToController(.createProcessor, request, expecting: ProcessorResultResponse.self,
                                                  answerMoved: { $0.error == .notCoordinator })
        if let error = response.wireError { throw SluiceClientError(error) }
    }

    /// Every processor: name, state, source and sink, sorted by name.
    public func listProcessors() async throws -> [ListProcessorsResponse.Processor] {
        let response = try await send(.listProcessors, ListProcessorsRequest(), expecting: ListProcessorsResponse.self)
        if let error = response.wireError { throw SluiceClientError(error) }
        return response.processors.sorted { $0.name < $1.name }
    }

    /// One processor's query, state, last error and per-partition progress, tasks sorted by partition.
    /// Throws `unknown_processor` for a name that is not registered.
    ///
    /// In a cluster each broker runs the tasks of the partitions it leads and describes only those, so
    /// every broker is asked and their tasks merged (`mergeTasks`); a broker that cannot be reached adds
    /// none.
    public func describeProcessor(_ name: String) async throws -> DescribeProcessorResponse {
        try Self.checkSendable(name: name)
        let request = DescribeProcessorRequest(name: name)
        var response = try await send(.describeProcessor, request, expecting: DescribeProcessorResponse.self)
        if let error = response.wireError { throw SluiceClientError(error) }
        let brokers = try await refreshRouting(topics: []).brokers.map(\.nodeId)
        if brokers.count > 1 {
            var answers: [[DescribeProcessorResponse.TaskStatus]] = [response.tasks]
            await withTaskGroup(of: [DescribeProcessorResponse.TaskStatus].self) { group in
                for node in brokers {
                    group.addTask { [self] in
                        let answer = try? await connection(toNode: node).send(.describeProcessor, request, expecting: DescribeProcessorResponse.self,
                                                                              timeoutMs: requestTimeoutMs)
                        return answer.flatMap { $0.wireError == nil ? $0.tasks : nil } ?? []
                    }
                }
                for await tasks in group { answers.append(tasks) }
            }
            response.tasks = Self.mergeTasks(answers)
        }
        response.tasks.sort { $0.partition < $1.partition }
        return response
    }

    /// One row per partition from several brokers' rows: a running task's row wins (a former leader may
    /// still show its stopped one for a moment), then the one that has read furthest.
    static func mergeTasks(_ answers: [[DescribeProcessorResponse.TaskStatus]]) -> [DescribeProcessorResponse.TaskStatus] {
        var best: [Int32: DescribeProcessorResponse.TaskStatus] = [:]
        for task in answers.joined() {
            guard let current = best[task.partition] else {
                best[task.partition] = task
                continue
            }
            let (running, wasRunning) = (task.state == "running", current.state == "running")
            if running != wasRunning ? running : task.inputOffset > current.inputOffset { best[task.partition] = task }
        }
        return Array(best.values)
    }

    /// Stops the processor's tasks at their current position; `resumeProcessor` continues from it.
    public func pauseProcessor(_ name: String) async throws {
        try await alterProcessor(name, .pause)
    }

    /// Starts a paused or failed processor again from its checkpoints.
    public func resumeProcessor(_ name: String) async throws {
        try await alterProcessor(name, .resume)
    }

    /// Drops the processor's state and moves its input to `position` in every source partition.
    public func resetProcessor(_ name: String, to position: ProcessorStartPosition) async throws {
        if case .timestamp(let ms) = position, ms < 0 {
            throw SluiceClientError(.invalidArgument, "a reset timestamp is epoch milliseconds ≥ 0, got \(ms)")
        }
        try await alterProcessor(name, .reset(to: position))
    }

    /// Swaps in a new query, which must write the same sink; the processor's state starts empty.
    /// Throws `invalid_query` as `createProcessor` does.
    public func replaceProcessor(_ name: String, sql: String) async throws {
        try Self.checkSendable(sql: sql)
        try await alterProcessor(name, .replace(sql: sql))
    }

    /// Stops and unregisters the processor; with `deleteOutput`, deletes its sink topic too.
    public func deleteProcessor(_ name: String, deleteOutput: Bool = false) async throws {
        try await alterProcessor(name, .delete(deleteOutput: deleteOutput))
    }

    /// Sends one AlterProcessor request and throws the broker's refusal.
    func alterProcessor(_ name: String, _ action: AlterProcessorRequest.Action) async throws {
        try Self.checkSendable(name: name)
        let response = try await sendToController(.alterProcessor, AlterProcessorRequest(name: name, action: action),
                                                  expecting: ProcessorResultResponse.self, answerMoved: { $0.error == .notCoordinator })
        if let error = response.wireError { throw SluiceClientError(error) }
    }

    /// Refuses a name the protocol cannot carry. Only the wire's hard bound is checked here (a `string`
    /// above 32,767 bytes would trip the encoder's precondition); the naming rules are the broker's to
    /// apply, so a client never blocks describing or deleting a processor an other broker version accepted.
    static func checkSendable(name: String) throws {
        guard name.utf8.count <= Int(Int16.max) else {
            throw SluiceClientError(.invalidArgument,
                "processor name is \(name.utf8.count) bytes long; the limit is \(ProcessorLimits.nameBytesMax)")
        }
    }

    /// Refuses a query longer than the protocol carries, with the limit, before anything is sent.
    static func checkSendable(sql: String) throws {
        guard sql.utf8.count <= ProcessorLimits.sqlBytesMax else {
            throw SluiceClientError(.invalidArgument,
                "the query is \(sql.utf8.count) bytes long; the limit is \(ProcessorLimits.sqlBytesMax)")
        }
    }
}
