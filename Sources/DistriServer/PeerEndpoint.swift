import DistriClient
import DistriCore
import DistriWire
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A small server for peers: the Distri wire protocol and a ``ServiceRegistry``, without the cloud's
/// membership or DB. It runs requests as a node does, through the same `RequestDispatcher` and
/// connection handler, with a task router that has no other member and so runs every request here:
/// at most ``capacity`` at once across all connections, ``queueLimit`` more waiting, `busy` beyond;
/// a retried task (same task id) is answered from the dedup window instead of running twice. As on
/// a node, a source holds at most `connections.maxPerSource` connections, and slow-drip and idle
/// connections are dropped (`ConnectionLimits`; a peer's default allows 64 per source).
///
/// A `Client` talks to it as to a node (`Client(nodes: [endpointAddress])`).
public final class PeerEndpoint: Sendable {
    /// Requests run at once, over all connections.
    public static let capacity = 64
    /// Requests waiting for a slot beyond that.
    public static let queueLimit = 256

    /// The services the endpoint serves; register them before ``start(host:port:)``.
    public let services: ServiceRegistry
    package let group: EventLoopGroup
    private let limits: WireLimits
    private let connectionLimits: ConnectionLimits
    package let logger: Logger
    package let dispatcher: RequestDispatcher
    private let started = NIODeadline.now()
    private let server = NIOLockedValueBox<Channel?>(nil)
    private let connections: ConnectionTracker
    private let drops = NIOLockedValueBox(0)

    /// An endpoint serving `services`.
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
        var system = SystemRandomNumberGenerator()
        let settings = NodeTaskRouter.Settings(
            capacity: Self.capacity, queueLimit: Self.queueLimit, dedupCapacity: 10_000, dedupBytes: 16 << 20)
        self.dispatcher = RequestDispatcher(
            registry: services,
            runtime: NodeRuntime(nodeID: "peer", address: "", settings: settings, seed: system.next()),
            logger: logger)
    }

    /// The endpoint's stats: requests, and calls by service and outcome (its metrics read them).
    public func stats() -> NodeStats {
        let uptime = NIODeadline.now() - started
        return dispatcher.runtime.withLockedValue { $0.snapshot(uptime: uptime, collections: [:]) }
    }

    /// Connections refused at accept or dropped (slow or idle) so far.
    public var droppedConnections: Int { drops.withLockedValue { $0 } }

    /// Binds `host:port` (port 0: the OS chooses) and serves; returns the bound address.
    public func start(host: String, port: Int) async throws -> NodeAddress {
        let dispatcher = self.dispatcher
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
                        ServerHandler(dispatcher: dispatcher, logger: logger))
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
