import DistriWire

/// Why a client call failed, and at which node. A struct with an open set of kinds so it can grow.
public struct ClientError: Error, Sendable, CustomStringConvertible {
    /// The category of failure.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// No connection could be made to the node.
        public static let connectFailed = Kind("connectFailed")
        /// The connection broke after the request was sent; the outcome is unknown.
        public static let connectionLost = Kind("connectionLost")
        /// The node went silent: nothing arrived on its connection for the attempt timeout after the
        /// request was sent, and a liveness probe went unanswered. The call may still run there; the
        /// client moves it to another node with the same task id.
        public static let unresponsive = Kind("unresponsive")
        /// No reply before the call's deadline.
        public static let deadlineExceeded = Kind("deadlineExceeded")
        /// The node answered with an error reply; see ``ClientError/remoteCode``.
        public static let remote = Kind("remote")
        /// The node broke the wire protocol.
        public static let protocolViolation = Kind("protocolViolation")
        /// None of the client's nodes could be reached.
        public static let noReachableNode = Kind("noReachableNode")
        /// The client was shut down.
        public static let shutDown = Kind("shutDown")
        /// The request is larger than the message size limit.
        public static let tooLarge = Kind("tooLarge")

        public var description: String { name }
    }

    /// What kind of failure this is.
    public var kind: Kind
    /// The node involved, when one was.
    public var node: NodeAddress?
    /// The node's error code, for ``Kind/remote``.
    public var remoteCode: ErrorCode?
    /// What happened, for people.
    public var message: String

    /// A failure of `kind` at `node`, with the node's error code when it answered with one.
    public init(_ kind: Kind, node: NodeAddress?, remoteCode: ErrorCode? = nil, message: String) {
        self.kind = kind
        self.node = node
        self.remoteCode = remoteCode
        self.message = message
    }

    public var description: String {
        let at = node.map { " at \($0)" } ?? ""
        if let remoteCode { return "\(remoteCode)\(at): \(message)" }
        return "\(kind)\(at): \(message)"
    }
}
