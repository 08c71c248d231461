/// Error codes carried in responses. Every response that can fail carries a code and a message a person
/// can act on; the code is for programs, the message for people. Numbers are part of the protocol
/// (storage-format/protocol.md) and never change meaning.
public enum ErrorCode: Int16, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case none = 0
    /// The broker hit an error it did not expect; its log has the details.
    case unknownServerError = 1
    /// A record batch failed its CRC, length or record-count check.
    case corruptMessage = 2
    case unknownTopicOrPartition = 3
    /// A topic name with characters, length or a prefix the broker refuses.
    case invalidTopic = 4
    case topicAlreadyExists = 5
    case invalidPartitions = 6
    case invalidConfig = 7
    case offsetOutOfRange = 8
    /// A batch larger than the topic's `max.message.bytes`.
    case messageTooLarge = 9
    /// A frame larger than the broker's `frame.bytes.max`; it was skipped without being buffered.
    case frameTooLarge = 10
    /// A request that does not parse, or whose fields are out of range.
    case invalidRequest = 11
    case unsupportedVersion = 12
    case unknownApi = 13
    /// A batch that parses but breaks a rule (timestamps, offset deltas, compressed size).
    case invalidRecord = 14
    /// An idempotent producer's sequence number skipped ahead: a batch before it was lost.
    case outOfOrderSequence = 15
    /// A producer epoch older than the one the broker knows: another instance took over.
    case invalidProducerEpoch = 16
    case unknownProducerId = 17
    /// The broker could not read or write its disk.
    case storageError = 18
    case diskFull = 19
    case requestTimedOut = 20
    case invalidGroupId = 21
    /// The member is not (or no longer) in the group: rejoin with epoch 0.
    case unknownMemberId = 22
    /// The member's epoch is older than the group's: it was fenced; rejoin.
    case fencedMemberEpoch = 23
    /// The group has active members, so standalone offset changes are refused.
    case groupNotEmpty = 24
    case groupFull = 25
    case invalidCommitOffset = 26
    case brokerShuttingDown = 27
    case unknownGroup = 28
    /// This broker does not lead the partition's (or the metadata group's) Raft group: refresh metadata
    /// and retry at the leader. Also the answer while a group has no leader (an election is under way).
    case notLeader = 29
    case invalidReplicationFactor = 30
    /// A processor query that does not parse or bind; the message is the SQL error, `line L, column C: …`.
    case invalidQuery = 31
    case processorAlreadyExists = 32
    case unknownProcessor = 33
    /// The processor is in a state that does not allow the change (for example it is being deleted); the
    /// message names the state and what to do.
    case processorStateInvalid = 34
    /// A processor name with characters or a length the broker refuses (`ProcessorLimits.nameProblem`).
    case invalidProcessorName = 35
    /// acks=all cannot be satisfied: fewer than a majority of the partition's replicas are reachable.
    /// The write was not acknowledged; retry once enough replicas are back (an idempotent producer's
    /// retry is never stored twice).
    case notEnoughReplicas = 36
    /// In a cluster, consumer groups are coordinated by the controller (the metadata group's leader);
    /// this broker is not it, or was elected a moment ago and has not caught up yet. The message names
    /// the controller when one is known: refresh metadata and send the group request there.
    case notCoordinator = 37

    /// Retrying the same request later may succeed.
    public var isRetriable: Bool {
        switch self {
        case .requestTimedOut, .brokerShuttingDown, .notLeader, .storageError, .notEnoughReplicas, .notCoordinator: true
        default: false
        }
    }

    public var description: String {
        switch self {
        case .none: "none"
        case .unknownServerError: "unknown_server_error"
        case .corruptMessage: "corrupt_message"
        case .unknownTopicOrPartition: "unknown_topic_or_partition"
        case .invalidTopic: "invalid_topic"
        case .topicAlreadyExists: "topic_already_exists"
        case .invalidPartitions: "invalid_partitions"
        case .invalidConfig: "invalid_config"
        case .offsetOutOfRange: "offset_out_of_range"
        case .messageTooLarge: "message_too_large"
        case .frameTooLarge: "frame_too_large"
        case .invalidRequest: "invalid_request"
        case .unsupportedVersion: "unsupported_version"
        case .unknownApi: "unknown_api"
        case .invalidRecord: "invalid_record"
        case .outOfOrderSequence: "out_of_order_sequence"
        case .invalidProducerEpoch: "invalid_producer_epoch"
        case .unknownProducerId: "unknown_producer_id"
        case .storageError: "storage_error"
        case .diskFull: "disk_full"
        case .requestTimedOut: "request_timed_out"
        case .invalidGroupId: "invalid_group_id"
        case .unknownMemberId: "unknown_member_id"
        case .fencedMemberEpoch: "fenced_member_epoch"
        case .groupNotEmpty: "group_not_empty"
        case .groupFull: "group_full"
        case .invalidCommitOffset: "invalid_commit_offset"
        case .brokerShuttingDown: "broker_shutting_down"
        case .unknownGroup: "unknown_group"
        case .notLeader: "not_leader"
        case .invalidReplicationFactor: "invalid_replication_factor"
        case .invalidQuery: "invalid_query"
        case .processorAlreadyExists: "processor_already_exists"
        case .unknownProcessor: "unknown_processor"
        case .processorStateInvalid: "processor_state_invalid"
        case .invalidProcessorName: "invalid_processor_name"
        case .notEnoughReplicas: "not_enough_replicas"
        case .notCoordinator: "not_coordinator"
        }
    }
}

/// A code with its message: what a response says went wrong.
public struct WireError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String

    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message.isEmpty ? "\(code)" : "\(message) (\(code))" }
}
