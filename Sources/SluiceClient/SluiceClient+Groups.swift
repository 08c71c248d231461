import SluiceCore
import SluiceWire

// Consumer groups in a cluster are coordinated by the controller (the metadata group's leader); a broker
// running alone coordinates its own. Group requests go where the last answer said the controller is and
// follow it when it moves (`not_coordinator`, or the connection to it failing).

extension SluiceClient {
    /// Sends a consumer-group request to the group coordinator, asking metadata for a new one and
    /// retrying (every `controllerRetryMs`, within the request timeout) while the coordinator moves.
    func sendToCoordinator<Request: WireMessage, Response: WireMessage>(_ api: ApiKey, _ request: Request,
                                                                        expecting: Response.Type) async throws -> Response {
        let deadline = MonotonicClock.nowNanoseconds() + UInt64(requestTimeoutMs) * 1_000_000
        while true {
            // Alone (one broker known, or none learned yet) the connected broker is the coordinator.
            let node = routingLock.withLock { routing.addresses.count > 1 && routing.controller >= 0 ? routing.controller : nil }
            // Every attempt within what is left of the request timeout, so the whole call stays within it.
            let leftMs = max(1, Int64((deadline &- min(deadline, MonotonicClock.nowNanoseconds())) / 1_000_000))
            do {
                guard let node else { return try await send(api, request, expecting: Response.self, timeoutMs: leftMs) }
                let connection = try await connection(toNode: node)
                return try await connection.send(api, request, expecting: Response.self, timeoutMs: leftMs)
            } catch let error as SluiceClientError where Self.coordinatorMoved(error) && MonotonicClock.nowNanoseconds() < deadline {
                let learned = (try? await refreshRouting(topics: []))?.controllerId ?? -1
                // The first redirect goes at once; asking again while an election runs waits a little.
                if node != nil || learned < 0 { try await Task.sleep(nanoseconds: UInt64(Self.controllerRetryMs) * 1_000_000) }
            }
        }
    }

    /// The coordinator is elsewhere now, or was lost with its broker (or hangs: a paused process).
    private static func coordinatorMoved(_ error: SluiceClientError) -> Bool {
        switch error.kind {
        case .broker(.notCoordinator), .broker(.brokerShuttingDown), .unreachable, .connectionClosed, .timeout: true
        default: false
        }
    }

    /// One heartbeat of a group member (joining with epoch 0, leaving with −1).
    public func groupHeartbeat(_ request: GroupHeartbeatRequest) async throws -> GroupHeartbeatResponse {
        try await sendToCoordinator(.groupHeartbeat, request, expecting: GroupHeartbeatResponse.self)
    }
}
