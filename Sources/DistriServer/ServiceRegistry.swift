import DistriClient
import DistriCore
import DistriWire
import NIOConcurrencyHelpers
import NIOCore

/// How a registered service runs.
public enum ServiceExecution: Sendable {
    /// Runs synchronously on the connection's event loop: for quick, non-blocking work only.
    case inline(@Sendable (ServiceRequest) throws -> ByteBuffer)
    /// Runs as a Swift task: for anything that awaits, computes at length or may block.
    case async(@Sendable (ServiceRequest) async throws -> ByteBuffer)
    /// Starts on the connection's event loop and completes later without blocking it (replicated
    /// writes waiting for acknowledgements, reads waiting for a pull).
    case future(@Sendable (ServiceRequest, EventLoop) -> EventLoopFuture<ByteBuffer>)
    /// As `future`, with the result handed to the completion, exactly once and on the loop given,
    /// instead of a future: the hottest services save a future per call.
    case callback(@Sendable (ServiceRequest, EventLoop, @escaping ServiceCompletion) -> Void)
}

/// Receives a ``ServiceExecution/callback(_:)`` service's result.
public typealias ServiceCompletion = @Sendable (Result<ByteBuffer, any Error>) -> Void

/// A service as the node knows it.
public struct RegisteredService: Sendable {
    /// The name callers ask for.
    public var name: String
    /// How the service runs.
    public var execution: ServiceExecution
    /// Answered by the node asked, at once, outside the capacity limit (Stats).
    public var bypassesAdmission: Bool
    /// Runs on the node asked instead of an elected one, within its capacity (the DB services: every
    /// node holds a replica).
    public var runsWhereAsked: Bool
    /// Whether the result is kept in the dedup window for retries of the same task. Off for results
    /// that must not stay on the node (key material): a retry then runs the task again.
    public var remembersResult: Bool
    /// Only another node may call it (gossip, replication, task status): with TLS, the caller must show
    /// a node certificate of the cluster's authority.
    public var nodesOnly: Bool

    /// A service `name` that runs as `execution`; the flags default to an ordinary elected service.
    public init(
        name: String, execution: ServiceExecution, bypassesAdmission: Bool = false, runsWhereAsked: Bool = false,
        remembersResult: Bool = true, nodesOnly: Bool = false
    ) {
        self.nodesOnly = nodesOnly
        self.name = name
        self.execution = execution
        self.bypassesAdmission = bypassesAdmission
        self.runsWhereAsked = runsWhereAsked
        self.remembersResult = remembersResult
    }
}

/// The services a node serves, by name. Safe to use from any thread.
public final class ServiceRegistry: Sendable {
    private let services = NodeLock<[String: RegisteredService]>([:])

    /// An empty registry.
    public init() {}

    /// Adds or replaces a service.
    public func register(_ service: RegisteredService) {
        services.withLockedValue { $0[service.name] = service }
    }

    /// Removes a service; returns whether it was there.
    @discardableResult
    public func unregister(_ name: String) -> Bool {
        services.withLockedValue { $0.removeValue(forKey: name) != nil }
    }

    /// The service registered under `name`.
    public func lookup(_ name: String) -> RegisteredService? {
        services.withLockedValue { $0[name] }
    }

    /// Names of all registered services, sorted.
    public var names: [String] {
        services.withLockedValue { $0.keys.sorted() }
    }
}
