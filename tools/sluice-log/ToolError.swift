/// An operating error of the tool (bad input, a missing path, a log that did not behave as the tool
/// expects). Thrown out of `run()`, ArgumentParser prints the description and exits with status 1.
struct ToolError: Error, CustomStringConvertible {
    private enum Code {
        case notFound
        case badPath
        case unexpectedLog
        case content
        case io
    }

    private let code: Code
    let message: String

    var description: String { message }

    /// The path does not exist.
    static func notFound(_ path: String) -> ToolError {
        ToolError(code: .notFound, message: "\(path) does not exist")
    }

    /// The path exists but is not what the command takes.
    static func badPath(_ path: String, _ expected: String) -> ToolError {
        ToolError(code: .badPath, message: "\(path) is not \(expected)")
    }

    /// The log answered something a single writer must never see (offsets other than expected, a read
    /// that does not advance).
    static func unexpectedLog(_ detail: String) -> ToolError {
        ToolError(code: .unexpectedLog, message: "unexpected log behaviour: \(detail)")
    }

    /// A record read back differs from what was written.
    static func content(_ detail: String) -> ToolError {
        ToolError(code: .content, message: "record content check failed: \(detail)")
    }

    /// A system call of the tool's own (bench baselines, cleanup) failed.
    static func io(_ operation: String, _ path: String, _ errorNumber: Int32) -> ToolError {
        ToolError(code: .io, message: "\(operation) failed for \(path) (errno \(errorNumber))")
    }
}
