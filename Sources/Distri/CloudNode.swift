import DistriCore
import DistriWire
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// A cloud node: serves registered services over the Distri wire protocol, runs many requests at
/// once up to its capacity, queues a bounded number more and answers busy beyond that.
///
/// Use it as a swift-service-lifecycle `Service` (``run()``), or drive it directly with ``start()``
/// and ``shutdown()``.
public final class CloudNode: Service, Sendable {
    public let configuration: CloudNodeConfiguration
    /// The services this node serves; add your own with ``register(_:handler:)``.
    public let services: ServiceRegistry
    private let dispatcher: RequestDispatcher
    private let group: EventLoopGroup
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    private let started = NIODeadline.now()

    private struct State {
        var serverChannel: Channel?
        var boundAddress: NodeAddress?
        var connections: [ObjectIdentifier: Channel] = [:]
        var shutdown: EventLoopFuture<Void>?
    }

    public init(
        configuration: CloudNodeConfiguration = .init(),
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "distri.node")
    ) {
        self.configuration = configuration
        self.group = group
        var logger = logger
        logger[metadataKey: "node.id"] = "\(configuration.nodeID)"
        self.logger = logger
        self.services = ServiceRegistry()
        self.dispatcher = RequestDispatcher(
            registry: services,
            runtime: NodeRuntime(
                nodeID: configuration.nodeID, address: configuration.listen.description,
                capacity: configuration.capacity, queueLimit: configuration.queueLimit),
            logger: logger)
        BuiltinServices.register(on: self)
    }

    /// The node's stable id.
    public var id: String { configuration.nodeID }

    /// The address the node listens on, once started.
    public var address: NodeAddress? { state.withLockedValue { $0.boundAddress } }

    /// Registers a service that runs as a Swift task and returns bytes.
    public func register(
        _ name: String, handler: @escaping @Sendable (ServiceRequest) async throws -> [UInt8]
    ) {
        services.register(
            RegisteredService(
                name: name,
                execution: .async { request in ByteBuffer(bytes: try await handler(request)) }))
    }

    /// Registers a service that runs as a Swift task and returns a buffer.
    public func register(
        _ name: String, handler: @escaping @Sendable (ServiceRequest) async throws -> ByteBuffer
    ) {
        services.register(RegisteredService(name: name, execution: .async(handler)))
    }

    /// A snapshot of this node's stats.
    public func stats() -> NodeStats {
        let uptime = NIODeadline.now() - started
        var stats = dispatcher.runtime.withLockedValue { $0.snapshot(uptime: uptime, collections: [:]) }
        stats.residentBytes = ProcessMemory.residentBytes()
        return stats
    }

    /// Binds the listening socket and starts serving. Returns the address clients should use.
    @discardableResult
    public func start() async throws -> NodeAddress {
        let limits = configuration.limits
        let dispatcher = self.dispatcher
        let logger = self.logger
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 256 << 10, high: 1 << 20))
            .childChannelInitializer { [weak self] channel in
                self?.track(channel)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        FramingHandler(limits: limits),
                        ServerHandler(dispatcher: dispatcher, logger: logger))
                }
            }
        let channel = try await bootstrap.bind(
            host: configuration.listen.host, port: configuration.listen.port
        ).get()
        let port = channel.localAddress?.port ?? configuration.listen.port
        let bound = NodeAddress(host: configuration.listen.host, port: port)
        state.withLockedValue {
            $0.serverChannel = channel
            $0.boundAddress = configuration.advertise ?? bound
        }
        dispatcher.runtime.withLockedValue {
            $0.counters.address = (configuration.advertise ?? bound).description
        }
        logger.info(
            "node started",
            metadata: [
                "listen": "\(bound)", "capacity": "\(configuration.capacity)",
                "services": "\(services.names.joined(separator: ","))",
            ])
        return configuration.advertise ?? bound
    }

    /// Stops taking connections and new requests, lets work in flight finish (up to the drain
    /// timeout), then closes every connection. Safe to call more than once.
    public func shutdown() async {
        let future: EventLoopFuture<Void> = state.withLockedValue { state in
            if let existing = state.shutdown { return existing }
            let loop = group.next()
            let future = beginShutdown(on: loop, state: &state)
            state.shutdown = future
            return future
        }
        try? await future.get()
    }

    /// Runs the node until graceful shutdown (SIGTERM/SIGINT through a `ServiceGroup`) or cancellation.
    public func run() async throws {
        try await start()
        let closed = state.withLockedValue { $0.serverChannel?.closeFuture }
        await withTaskCancellationOrGracefulShutdownHandler {
            try? await closed?.get()
        } onCancelOrGracefulShutdown: { [self] in
            Task { await self.shutdown() }
        }
        await shutdown()
    }

    private func beginShutdown(on loop: EventLoop, state: inout State) -> EventLoopFuture<Void> {
        dispatcher.runtime.withLockedValue { $0.admission.beginDrain() }
        let serverClosed = state.serverChannel?.close() ?? loop.makeSucceededVoidFuture()
        let drained = dispatcher.whenIdle(on: loop)
        let timeout = loop.scheduleTask(in: configuration.drainTimeout) {}
        let logger = self.logger
        let drainedOrTimedOut = loop.makePromise(of: Void.self)
        drained.cascade(to: drainedOrTimedOut)
        timeout.futureResult.whenSuccess {
            logger.warning("drain timeout: closing with work in flight")
            drainedOrTimedOut.succeed(())
        }
        return serverClosed.flatMapErrorThrowing { _ in }
            .flatMap { drainedOrTimedOut.futureResult }
            .flatMap { [self] in
                timeout.cancel()
                let connections = self.state.withLockedValue { Array($0.connections.values) }
                let closes = connections.map { $0.close().flatMapErrorThrowing { _ in } }
                return EventLoopFuture.andAllComplete(closes, on: loop)
            }
            .map { logger.info("node stopped") }
    }

    private func track(_ channel: Channel) {
        let key = ObjectIdentifier(channel)
        state.withLockedValue { $0.connections[key] = channel }
        channel.closeFuture.whenComplete { [weak self] _ in
            self?.state.withLockedValue { _ = $0.connections.removeValue(forKey: key) }
        }
    }
}
