import DistriWire
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A small server for peers: the Distri wire protocol and a ``ServiceRegistry``, without the cloud's
/// membership, election, DB or dedup window. Each request runs on the node it reached; a connection
/// runs at most ``maxInFlightPerConnection`` requests at once and answers `busy` beyond that. As on a
/// node, a source holds at most `connections.maxPerSource` connections, and slow-drip and idle
/// connections are dropped (``ConnectionLimits``; a peer's default allows 64 per source).
///
/// A ``Client`` talks to it as to a node (`Client(nodes: [endpointAddress])`).
public final class PeerEndpoint: Sendable {
    public static let maxInFlightPerConnection = 64

    public let services: ServiceRegistry
    let group: EventLoopGroup
    private let limits: WireLimits
    private let connectionLimits: ConnectionLimits
    let logger: Logger
    private let server = NIOLockedValueBox<Channel?>(nil)
    private let connections: ConnectionTracker
    private let drops = NIOLockedValueBox(0)

    public init(
        services: ServiceRegistry = ServiceRegistry(), limits: WireLimits = .standard,
        connections: ConnectionLimits = ConnectionLimits(maxPerSource: 64),
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger = Logger(label: "distri.peer")
    ) {
        self.services = services
        self.group = group
        self.limits = limits
        self.connectionLimits = connections
        self.connections = ConnectionTracker(maxPerSource: connections.maxPerSource)
        self.logger = logger
    }

    /// Connections refused at accept or dropped (slow or idle) so far.
    public var droppedConnections: Int { drops.withLockedValue { $0 } }

    /// Binds `host:port` (port 0: the OS chooses) and serves; returns the bound address.
    public func start(host: String, port: Int) async throws -> NodeAddress {
        let services = self.services
        let limits = self.limits
        let logger = self.logger
        let watch = FramingHandler.Watch(limits: connectionLimits) { [weak self] reason in
            self?.dropped(reason)
        }
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [weak self] channel in
                guard let self, self.connections.admit(channel) else {
                    self?.dropped(.tooManyFromSource)
                    return channel.close()
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        FramingHandler(limits: limits, watch: watch),
                        EndpointHandler(services: services, logger: logger))
                }
            }
            .bind(host: host, port: port).get()
        server.withLockedValue { $0 = channel }
        return NodeAddress(host: host, port: channel.localAddress?.port ?? port)
    }

    /// The bound server channel's close future (nil before ``start(host:port:)``).
    public var closeFuture: EventLoopFuture<Void>? { server.withLockedValue { $0?.closeFuture } }

    /// Stops listening and closes every connection. Safe to call more than once.
    public func shutdown() async {
        let listening = server.withLockedValue { server in
            defer { server = nil }
            return server
        }
        try? await listening?.close()
        for connection in connections.open { try? await connection.close() }
    }

    private func dropped(_ reason: ConnectionDrop) {
        drops.withLockedValue { $0 += 1 }
        logger.notice("peer connection dropped", metadata: ["reason": "\(reason)"])
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
    /// On a relay link (an outbound connection to a node), replies to this side's own calls pass on
    /// to the ``ClientHandler`` after this handler.
    private let passesReplies: Bool

    init(services: ServiceRegistry, logger: Logger, passesReplies: Bool = false) {
        self.services = services
        self.logger = logger
        self.passesReplies = passesReplies
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        let id = message.requestID
        guard message.kind == .request else {
            if passesReplies {
                context.fireChannelRead(data)
                return
            }
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
        case .callback(let body):
            let promise = loop.makePromise(of: ByteBuffer.self)
            body(serviceRequest, loop) { promise.completeWith($0) }
            future = promise.futureResult
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
