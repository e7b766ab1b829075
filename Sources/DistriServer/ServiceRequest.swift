import DistriClient
import DistriCore
import DistriWire
import NIOCore
import Tracing

/// What a service receives: its name, the caller's parameters and input bytes, and the deadline.
public struct ServiceRequest: Sendable {
    /// The service name the caller asked for.
    public var service: String
    /// The caller's parameters, in order.
    public var params: [String]
    /// The caller's input bytes.
    public var data: ByteBuffer
    /// The id of the request on its connection.
    public var requestID: UInt64
    /// When the caller stops waiting, if it said.
    public var deadline: NIODeadline?
    /// The caller's task id, the same on every retry of the call (0: none).
    public var taskID: UInt64
    /// True when the caller says this is a retry of a call that may have run elsewhere already
    /// (routing `electRetry`): a write looks for its first attempt's effect before applying.
    public var isRetry: Bool
    /// Who called, as the connection's TLS handshake established it.
    public var caller: Caller
    /// The trace context of the call's execution on this node (its `distri.execute` span): a
    /// service's own spans, and the calls it makes, go under it. nil when the node does not trace.
    public var serviceContext: ServiceContext?
    /// With TLS, the name in the caller's node certificate (nil: not a node, or plain TCP).
    public var callerNode: String? {
        if case .node(let name) = caller { return name }
        return nil
    }

    /// A request with the given fields.
    public init(
        service: String, params: [String] = [], data: ByteBuffer, requestID: UInt64 = 0,
        deadline: NIODeadline? = nil, taskID: UInt64 = 0, isRetry: Bool = false, caller: Caller = .unchecked
    ) {
        self.caller = caller
        self.taskID = taskID
        self.isRetry = isRetry
        self.service = service
        self.params = params
        self.data = data
        self.requestID = requestID
        self.deadline = deadline
    }

    /// The input as an array of bytes.
    public var bytes: [UInt8] { Array(buffer: data) }

    /// The value of the parameter `name=VALUE`, if one is given.
    public func stringParam(_ name: String) -> String? {
        params.first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) }
    }

    /// The whole number in the parameter `name=N`, if one is given.
    public func intParam(_ name: String) -> Int? {
        stringParam(name).flatMap { Int($0) }
    }

    /// The parameter at `index`, or a ``ServiceError/badParams(_:)`` naming what is missing.
    public func param(_ index: Int, _ name: String) throws(ServiceError) -> String {
        guard params.indices.contains(index) else {
            throw .badParams("\(service) needs parameter \(index + 1) (\(name))")
        }
        return params[index]
    }
}

/// Who is on the other end of a connection to a node.
public enum Caller: Sendable, Equatable {
    /// Plain TCP (`--insecure`): nobody is authenticated and nothing is checked.
    case unchecked
    /// TLS without a node certificate: a client or a peer.
    case anonymous
    /// TLS with a node certificate of the cluster's authority, naming this node.
    case node(String)

    /// Whether this caller may call a ``RegisteredService/nodesOnly`` service.
    public var mayCallNodeServices: Bool { self != .anonymous }

    /// The caller a TLS handshake established from the peer's certificate (DER; nil: none shown): a
    /// node certificate of the cluster names a node, anything else is anonymous.
    package init(tlsPeerCertificate der: [UInt8]?) {
        guard let der, let identity = ClusterCertificates.identity(ofDER: der), identity.role == .node else {
            self = .anonymous
            return
        }
        self = .node(identity.name)
    }

    /// Refuses a node acting under another name than its certificate gives it (`what`: "gossip
    /// from", "Replicate as"); nothing to check without a node certificate.
    public func check(actingAs name: String, _ what: String) throws(ServiceError) {
        if case .node(let certified) = self, certified != name {
            throw ServiceError(.unauthorized, "\(what) '\(name)' over a connection certified for '\(certified)'")
        }
    }
}

/// An error a service throws to give the caller a specific code and message. Any other error thrown by
/// a service reaches the caller as `ErrorCode.internal`.
public struct ServiceError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The code the caller receives.
    public var code: ErrorCode
    /// The message the caller receives.
    public var message: String

    /// An error with `code` and `message`.
    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The parameters or input are wrong.
    public static func badParams(_ message: String) -> ServiceError {
        ServiceError(.badParams, message)
    }
    /// What the request names does not exist.
    public static func notFound(_ message: String) -> ServiceError {
        ServiceError(.notFound, message)
    }
    /// The request conflicts with the current state (a condition that does not hold).
    public static func conflict(_ message: String) -> ServiceError {
        ServiceError(.conflict, message)
    }

    public var description: String { "\(code): \(message)" }
}
