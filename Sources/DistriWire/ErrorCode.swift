/// The reason a request failed, as carried in an error reply. Open for growth: unknown codes from a
/// newer peer still decode and print.
public struct ErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// No service of that name is registered on the node.
    public static let unknownService = ErrorCode(rawValue: 1)
    /// The service refused its parameters or input.
    public static let badParams = ErrorCode(rawValue: 2)
    /// The node is at capacity and its queue is full; nothing was done, retry later or elsewhere.
    public static let busy = ErrorCode(rawValue: 3)
    /// A frame or message exceeded a size limit.
    public static let tooLarge = ErrorCode(rawValue: 4)
    /// The service failed unexpectedly.
    public static let `internal` = ErrorCode(rawValue: 5)
    /// The bytes received do not follow the wire protocol.
    public static let malformed = ErrorCode(rawValue: 6)
    /// The node is shutting down and accepts no new work.
    public static let shuttingDown = ErrorCode(rawValue: 7)
    /// The request's deadline passed before it could be served.
    public static let deadlineExceeded = ErrorCode(rawValue: 8)
    /// The caller may not use this service.
    public static let unauthorized = ErrorCode(rawValue: 9)
    /// The thing named does not exist.
    public static let notFound = ErrorCode(rawValue: 10)
    /// The request conflicts with the current state (for example a failed condition).
    public static let conflict = ErrorCode(rawValue: 11)
    /// Not enough healthy nodes could be reached to serve the request.
    public static let unavailable = ErrorCode(rawValue: 12)
    /// A quota would be exceeded (a mailbox, a sender's share, the cloud's store); nothing was kept.
    /// Retrying does not help until something held is collected, removed or expires.
    public static let quotaExceeded = ErrorCode(rawValue: 13)

    /// The code's name, as the tools print it.
    public var name: String {
        switch self {
        case .unknownService: "unknownService"
        case .badParams: "badParams"
        case .busy: "busy"
        case .tooLarge: "tooLarge"
        case .internal: "internal"
        case .malformed: "malformed"
        case .shuttingDown: "shuttingDown"
        case .deadlineExceeded: "deadlineExceeded"
        case .unauthorized: "unauthorized"
        case .notFound: "notFound"
        case .conflict: "conflict"
        case .unavailable: "unavailable"
        case .quotaExceeded: "quotaExceeded"
        default: "code\(rawValue)"
        }
    }

    public var description: String { name }
}
