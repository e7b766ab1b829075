/// What kind of failure an error is, for the tools' exit codes.
public enum FailureKind: Sendable, Equatable {
    /// What was named does not exist.
    case notFound
    /// It exists, and the answer is no (no views left, not granted, revoked).
    case refused
    /// Anything else.
    case failed
}

/// An error the tools report as its own sentence, with its kind: the peer library's errors. The
/// command-line layer maps it without depending on the library that throws it.
public protocol ReportableError: Error {
    /// What kind of failure it is, for the exit code and the JSON `code`.
    var failureKind: FailureKind { get }
    /// The sentence to print.
    var message: String { get }
}
