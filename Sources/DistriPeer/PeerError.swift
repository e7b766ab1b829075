import DistriCore

/// A failure of a peer command, with a message meant for the person who ran it.
public struct PeerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure, for the tools' exit codes.
    public enum Kind: Sendable, Equatable {
        /// Anything else.
        case failed
        /// What was named does not exist (a peer, an image, a grant).
        case notFound
        /// Not allowed: no views left, revoked, not granted.
        case refused
    }

    public var message: String
    /// What kind of failure, for the tools' exit codes.
    public var kind: Kind

    /// A failure of `kind` that says `message`.
    public init(_ message: String, kind: Kind = .failed) {
        self.message = message
        self.kind = kind
    }

    public var description: String { message }
}

extension PeerError: ReportableError {
    /// The tools' kind of failure for this error's ``kind``.
    public var failureKind: FailureKind {
        switch kind {
        case .notFound: .notFound
        case .refused: .refused
        case .failed: .failed
        }
    }
}
