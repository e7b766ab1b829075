import DistriWire
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A small server for peers: the Distri wire protocol and a ``ServiceRegistry``, without the cloud's
/// membership, election, DB or dedup window. Each request runs on the node it reached; a connection
/// runs at most ``maxInFlightPerConnection`` requests at once and answers `busy` beyond that.
///
/// A ``Client`` talks to it as to a node (`Client(nodes: [endpointAddress])`).
public final class PeerEndpoint: Sendable {
    public static let maxInFlightPerConnection = 64

    public let services: ServiceRegistry
    private let group: EventLoopGroup
    private let limits: WireLimits
    private let logger: Logger
    private let state = NIOLockedValueBox<(server: Channel?, connections: [ObjectIdentifier: Channel])>((nil, [:]))

    public init(
        services: ServiceRegistry = ServiceRegistry(), limits: WireLimits = .standard,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger = Logger(label: "distri.peer")
    ) {
        self.services = services
        self.group = group
        self.limits = limits
        self.logger = logger
    }

    /// Binds `host:port` (port 0: the OS chooses) and serves; returns the bound address.
    public func start(host: String, port: Int) async throws -> NodeAddress {
        let services = self.services
        let limits = self.limits
        let logger = self.logger
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [weak self] channel in
                self?.track(channel)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        FramingHandler(limits: limits), EndpointHandler(services: services, logger: logger))
                }
            }
            .bind(host: host, port: port).get()
        state.withLockedValue { $0.server = channel }
        return NodeAddress(host: host, port: channel.localAddress?.port ?? port)
    }

    /// The bound server channel's close future (nil before ``start(host:port:)``).
    public var closeFuture: EventLoopFuture<Void>? { state.withLockedValue { $0.server?.closeFuture } }

    /// Stops listening and closes every connection. Safe to call more than once.
    public func shutdown() async {
        let (server, connections) = state.withLockedValue { state in
            defer { state.connections = [:] }
            return (state.server, Array(state.connections.values))
        }
        try? await server?.close()
        for connection in connections { try? await connection.close() }
    }

    private func track(_ channel: Channel) {
        let key = ObjectIdentifier(channel)
        state.withLockedValue { $0.connections[key] = channel }
        channel.closeFuture.whenComplete { [weak self] _ in
            self?.state.withLockedValue { _ = $0.connections.removeValue(forKey: key) }
        }
    }
}

/// One connection of a ``PeerEndpoint``: decodes requests, runs the service, writes the reply.
final class EndpointHandler: ChannelInboundHandler {
    typealias InboundIn = WireMessage
    typealias OutboundOut = WireMessage

    private let services: ServiceRegistry
    private let logger: Logger
    private var context: ChannelHandlerContext?
    private var inFlight = 0

    init(services: ServiceRegistry, logger: Logger) {
        self.services = services
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        let id = message.requestID
        guard message.kind == .request else {
            send(.failure(WireErrorReply(code: .malformed, message: "a peer accepts only requests")), id: id)
            return
        }
        let request: WireRequest
        do {
            request = try WireRequest.decode(message.payload)
        } catch {
            send(.failure(WireErrorReply(code: .malformed, message: error.description)), id: id)
            return
        }
        guard let service = services.lookup(request.service) else {
            send(
                .failure(
                    WireErrorReply(code: .unknownService, message: "this peer has no service '\(request.service)'")),
                id: id)
            return
        }
        guard inFlight < PeerEndpoint.maxInFlightPerConnection else {
            send(
                .failure(WireErrorReply(code: .busy, message: "too many requests in flight on this connection")), id: id
            )
            return
        }
        let serviceRequest = ServiceRequest(
            service: request.service, params: request.params, data: request.data, requestID: id,
            deadline: .now() + .milliseconds(Int64(request.deadlineMillis)), taskID: request.taskID)
        let loop = context.eventLoop
        inFlight += 1
        let future: EventLoopFuture<ByteBuffer>
        switch service.execution {
        case .inline(let body):
            future = loop.makeCompletedFuture { try body(serviceRequest) }
        case .future(let body):
            future = body(serviceRequest, loop)
        case .async(let body):
            let promise = loop.makePromise(of: ByteBuffer.self)
            promise.completeWithTask { try await body(serviceRequest) }
            future = promise.futureResult
        }
        let bound = NIOLoopBound(self, eventLoop: loop)
        future.hop(to: loop).whenComplete { result in
            let handler = bound.value
            handler.inFlight -= 1
            switch result {
            case .success(let reply): handler.send(.success(reply), id: id)
            case .failure(let error as ServiceError):
                handler.send(.failure(WireErrorReply(code: error.code, message: error.message)), id: id)
            case .failure(let error):
                handler.send(.failure(WireErrorReply(code: .internal, message: "\(error)")), id: id)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.debug("peer connection error", metadata: ["error": "\(error)"])
        if let wire = error as? WireError {
            let reply = WireErrorReply(code: wire.code, message: wire.description)
            let message = WireMessage(
                kind: .error, requestID: wire.requestID ?? 0,
                payload: reply.encode(allocator: context.channel.allocator))
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(message)).whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }

    private func send(_ result: Result<ByteBuffer, WireErrorReply>, id: UInt64) {
        guard let context else { return }
        let message: WireMessage
        switch result {
        case .success(let payload): message = WireMessage(kind: .response, requestID: id, payload: payload)
        case .failure(let reply):
            message = WireMessage(
                kind: .error, requestID: id, payload: reply.encode(allocator: context.channel.allocator))
        }
        context.writeAndFlush(wrapOutboundOut(message), promise: nil)
    }
}
