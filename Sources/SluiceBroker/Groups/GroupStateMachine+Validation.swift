// Checks of client input against `GroupLimits`. Pure functions: the machine calls them before it
// changes anything, so a rejected heartbeat leaves the group exactly as it was.

/// The optional fields of a heartbeat after validation: normalised and within the limits.
struct GroupValidatedHeartbeat: Sendable, Equatable {
    /// The subscription, sorted and without duplicates; nil = unchanged (never nil on join).
    var subscribedTopics: [String]?
    /// The session timeout to use; nil = unchanged (never nil on join).
    var sessionTimeoutMs: Int32?
    /// The partitions the member consumes now; nil = unchanged (empty when a join sends none).
    var ownedPartitions: Set<GroupTopicPartition>?
}

extension GroupLimits {
    /// nil when `groupId` is a usable group id; the broker checks this before it creates a group.
    func validateGroupId(_ groupId: String) -> GroupError? {
        if groupId.isEmpty { return .invalidRequest("the group id is empty") }
        if groupId.utf8.count > groupIdBytesMax {
            return .invalidRequest("the group id is \(groupId.utf8.count) bytes long; the limit is \(groupIdBytesMax)")
        }
        return nil
    }

    /// Validates the fields of `request`; a join (`isJoin`) must carry a subscription and gets the
    /// default session timeout when it names none.
    func validate(_ request: GroupHeartbeat, isJoin: Bool) -> Result<GroupValidatedHeartbeat, GroupError> {
        var fields = GroupValidatedHeartbeat()
        if isJoin {
            if let error = validateJoinIdentity(request) { return .failure(error) }
            guard request.subscribedTopics != nil else {
                return .failure(.invalidRequest("a join (member epoch 0) must carry the subscribed topics"))
            }
            fields.sessionTimeoutMs = sessionTimeoutMsDefault
            fields.ownedPartitions = []
        }
        if let topics = request.subscribedTopics {
            switch validateSubscription(topics) {
            case .success(let sorted): fields.subscribedTopics = sorted
            case .failure(let error): return .failure(error)
            }
        }
        if let timeout = request.sessionTimeoutMs {
            guard (sessionTimeoutMsMin...sessionTimeoutMsMax).contains(timeout) else {
                return .failure(.invalidRequest(
                    "session timeout \(timeout) ms is outside \(sessionTimeoutMsMin)...\(sessionTimeoutMsMax) ms"))
            }
            fields.sessionTimeoutMs = timeout
        }
        if let owned = request.ownedPartitions {
            switch validateOwned(owned) {
            case .success(let set): fields.ownedPartitions = set
            case .failure(let error): return .failure(error)
            }
        }
        return .success(fields)
    }

    /// The identity fields a join stores: the member id it may choose, its client id and host.
    private func validateJoinIdentity(_ request: GroupHeartbeat) -> GroupError? {
        if request.memberId.utf8.count > memberIdBytesMax {
            return .invalidRequest("the member id is \(request.memberId.utf8.count) bytes; the limit is \(memberIdBytesMax)")
        }
        if request.clientId.utf8.count > clientIdBytesMax || request.clientHost.utf8.count > clientIdBytesMax {
            return .invalidRequest("the client id or host is longer than \(clientIdBytesMax) bytes")
        }
        return nil
    }

    /// The subscription sorted and without duplicates, or why it is refused.
    private func validateSubscription(_ topics: [String]) -> Result<[String], GroupError> {
        guard topics.count <= subscribedTopicsMax else {
            return .failure(.invalidRequest("\(topics.count) subscribed topics; the limit is \(subscribedTopicsMax)"))
        }
        for topic in topics {
            if let error = validateTopicName(topic) { return .failure(error) }
        }
        return .success(Set(topics).sorted())
    }

    /// The owned partitions as a set, or why they are refused.
    private func validateOwned(_ owned: [GroupTopicPartition]) -> Result<Set<GroupTopicPartition>, GroupError> {
        guard owned.count <= ownedPartitionsMax else {
            return .failure(.invalidRequest("\(owned.count) owned partitions; the limit is \(ownedPartitionsMax)"))
        }
        for partition in owned {
            if let error = validateTopicName(partition.topic) { return .failure(error) }
            guard partition.partition >= 0 else {
                return .failure(.invalidRequest("owned partition \(partition) has a negative index"))
            }
        }
        return .success(Set(owned))
    }

    private func validateTopicName(_ topic: String) -> GroupError? {
        if topic.isEmpty { return .invalidRequest("a topic name is empty") }
        if topic.utf8.count > topicNameBytesMax {
            return .invalidRequest("a topic name is \(topic.utf8.count) bytes; the limit is \(topicNameBytesMax)")
        }
        return nil
    }
}
