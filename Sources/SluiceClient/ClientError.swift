import SluiceWire

/// What went wrong talking to a broker, in sentences a person can act on.
public struct SluiceClientError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// No connection to the broker could be made.
        case unreachable
        /// The broker answered with an error code.
        case broker(ErrorCode)
        /// The broker's bytes did not parse, or a response did not match its request.
        case protocolViolation
        /// No answer within the request timeout.
        case timeout
        /// The connection closed while requests were outstanding.
        case connectionClosed
        /// A value the caller passed is out of range.
        case invalidArgument
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public init(_ error: WireError) {
        self.kind = .broker(error.code)
        self.message = error.message.isEmpty ? "the broker answered \(error.code)" : error.message
    }

    /// The broker's error code, when it was the broker that refused.
    public var code: ErrorCode? {
        if case .broker(let code) = kind { return code }
        return nil
    }

    /// Retrying (after a reconnect) may succeed.
    public var isRetriable: Bool {
        switch kind {
        case .unreachable, .timeout, .connectionClosed: true
        case .broker(let code): code.isRetriable
        case .protocolViolation, .invalidArgument: false
        }
    }

    public var description: String { message }
}
