import SluiceWire

// Consumer groups in a cluster are coordinated by the controller (the metadata group's leader); a broker
// running alone coordinates its own. Group requests go through `sendToController`, which follows the
// controller when it moves (`not_coordinator`, or its broker no longer answering).

extension SluiceClient {
    /// One heartbeat of a group member (joining with epoch 0, leaving with −1).
    public func groupHeartbeat(_ request: GroupHeartbeatRequest) async throws -> GroupHeartbeatResponse {
        try await sendToController(.groupHeartbeat, request, expecting: GroupHeartbeatResponse.self)
    }
}
