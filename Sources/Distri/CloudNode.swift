import DistriCore
import DistriIdentity
import DistriWire
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import Tracing

/// A cloud node: serves registered services over the Distri wire protocol, runs many requests at
/// once up to its capacity, queues a bounded number more and answers busy beyond that.
///
/// Use it as a swift-service-lifecycle `Service` (``run()``), or drive it directly with ``start()``
/// and ``shutdown()``.
public final class CloudNode: Service, Sendable {
    /// The node's settings (its id is its certificate's name under TLS).
    public let configuration: CloudNodeConfiguration
    /// The services this node serves; add your own with ``register(_:handler:)-(_,(ServiceRequest)->[UInt8])``.
    public let services: ServiceRegistry
    private let dispatcher: RequestDispatcher
    private let group: EventLoopGroup
    private let logger: Logger
    /// Where the node's spans go (``CloudNodeConfiguration/tracer``, else the process's); nil: none.
    private let tracer: (any Tracer)?
    private let state = NodeLock(State())
    private let connections: ConnectionTracker
    /// Bytes of incomplete messages and queued replies, on all connections together.
    private let bufferBudget: ResourceBudget
    private let started = NIODeadline.now()
    private let mailboxCounters = MailboxCounters()
    /// The node's metrics, when ``CloudNodeConfiguration/metricsListen`` is set.
    private let metrics: NodeMetrics?

    private struct State {
        var serverChannel: Channel?
        var metricsEndpoint: MetricsEndpoint?
        var boundAddress: NodeAddress?
        var shutdown: EventLoopFuture<Void>?
        var membership: MembershipShell?
        var peers: Client?
        var database: DatabaseReplica?
        var relay: RelayHub?
    }

    /// A node with `configuration`, running on `group`, logging to `logger`; it serves nothing until
    /// ``start()`` or ``run()``.
    public init(
        configuration: CloudNodeConfiguration = .init(),
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "distri.node")
    ) {
        var configuration = configuration
        // With TLS, a node is who its certificate says it is.
        if let name = configuration.tls?.identity?.name { configuration.nodeID = name }
        self.configuration = configuration
        self.connections = ConnectionTracker(maxPerSource: configuration.connections.maxPerSource)
        self.bufferBudget = ResourceBudget(capacity: configuration.resources.bufferedBytes)
        self.group = group
        var logger = logger
        logger[metadataKey: "node.id"] = "\(configuration.nodeID)"
        self.logger = logger
        self.services = ServiceRegistry()
        var system = SystemRandomNumberGenerator()
        let tracer = configuration.tracer ?? Self.processTracer
        self.tracer = tracer
        self.dispatcher = RequestDispatcher(
            registry: services,
            runtime: NodeRuntime(
                nodeID: configuration.nodeID, address: configuration.listen.description,
                settings: configuration.cluster.routerSettings(
                    capacity: configuration.capacity, queueLimit: configuration.queueLimit),
                seed: system.next()),
            logger: logger, tracer: tracer)
        if configuration.metricsListen != nil {
            let metrics = NodeMetrics()
            self.metrics = metrics
            dispatcher.runtime.withLockedValue { $0.makeServiceTimes = { metrics.serviceTimes(for: $0) } }
        } else {
            self.metrics = nil
        }
        BuiltinServices.register(on: self)
        EncryptService.register(
            on: services, limits: EncryptService.Limits(resources: configuration.resources),
            pixels: ResourceBudget(capacity: configuration.resources.imagePixelsInFlight))
    }

    /// The node's stable id.
    public var id: String { configuration.nodeID }

    /// Bytes of incomplete messages and queued replies held now, on all connections together.
    var bufferedBytes: Int { bufferBudget.reserved }

    /// Connections refused so far because ``ResourceLimits/bufferedBytes`` was reached.
    var bufferFullRefusals: Int { bufferBudget.refusals }

    /// Where the node serves its metrics, once started with ``CloudNodeConfiguration/metricsListen``.
    public var metricsAddress: NodeAddress? {
        state.withLockedValue { $0.metricsEndpoint?.address }
    }

    /// Bootstraps swift-metrics' global `MetricsSystem` with this node's metrics factory, so that what
    /// libraries record through swift-metrics is served on this node's `/metrics` too (see
    /// ``NodeMetrics/bootstrapProcessMetrics()``). False, changing nothing, for a node without
    /// ``CloudNodeConfiguration/metricsListen`` or when the process was bootstrapped already.
    @discardableResult
    public func bootstrapProcessMetrics() -> Bool {
        metrics?.bootstrapProcessMetrics() ?? false
    }

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
        if let shell = state.withLockedValue({ $0.membership }) {
            let routed = stats.cluster
            (stats.members, stats.cluster) = shell.snapshot()
            stats.cluster.electionsWon = routed.electionsWon
            stats.cluster.tasksForwarded = routed.tasksForwarded
            stats.cluster.failovers = routed.failovers
            stats.cluster.deduplicated = routed.deduplicated
            stats.serverFails = stats.cluster.chaosOutages
        }
        if let database = state.withLockedValue({ $0.database }) {
            let figures = database.stats()
            stats.database = figures
            stats.collections = figures.documents
            stats.mailbox = MailboxServices.stats(replica: database, counters: mailboxCounters)
        }
        stats.relay = state.withLockedValue { $0.relay }?.counters
        stats.bufferBudget = BufferBudgetStats(
            usedBytes: UInt64(max(0, bufferBudget.reserved)), capacityBytes: UInt64(bufferBudget.capacity),
            refusals: UInt64(max(0, bufferBudget.refusals)))
        return stats
    }

    /// The membership as this node sees it (the `Members` service); empty outside a cluster.
    func memberSummaries() -> [MemberSummary] {
        state.withLockedValue { $0.membership }?.snapshot().members ?? []
    }

    /// Makes the node drop all traffic for a while, as if cut off from the network. For fault
    /// injection in tests and demos; counted in the stats as a server fail.
    public func goDark(for duration: TimeAmount) {
        state.withLockedValue { $0.membership }?.goDark(millis: UInt64(max(0, duration.nanoseconds / 1_000_000)))
    }

    /// Binds the listening socket and starts serving. Returns the address clients should use.
    @discardableResult
    public func start() async throws -> NodeAddress {
        let database = try DatabaseReplica(
            nodeID: configuration.nodeID, limits: configuration.database,
            dataDirectory: configuration.dataDirectory, logger: logger, tracer: tracer)
        DatabaseServices.register(on: services, replica: database)
        SignedRecordServices.register(on: services, replica: database)
        let deposit = try configuration.depositKey.map { try AgreementKeyPair(privateKey: $0) } ?? .generate()
        ViewServices.register(on: services, replica: database, deposit: deposit)
        MailboxServices.register(
            on: services, replica: database, limits: configuration.mailbox, counters: mailboxCounters, group: group,
            logger: logger)
        let relay = makeRelay(replica: database)
        state.withLockedValue {
            $0.database = database
            $0.relay = relay
        }
        let limits = configuration.limits
        let dispatcher = self.dispatcher
        let watch = FramingHandler.Watch(limits: configuration.connections, budget: bufferBudget) {
            [weak self] reason in
            self?.count(reason)
        }
        let resources = configuration.resources
        let logger = self.logger
        let tls = configuration.tls
        if let tls, tls.identity?.role != .node {
            throw CertificateError("a node serving TLS needs a node certificate (distri-node certs node)")
        }
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 256 << 10, high: 1 << 20))
            .childChannelInitializer { [weak self] channel in
                guard let self, self.track(channel) else { return channel.close() }
                return channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandlers(
                            try tls.makeServerHandler(),
                            HandshakeDeadlineHandler(timeout: resources.handshakeTimeout) {
                                watch.onDrop(.slowHandshake)
                            })
                    }
                    try channel.pipeline.syncOperations.addHandlers(
                        FramingHandler(limits: limits, watch: watch),
                        ServerHandler(
                            dispatcher: dispatcher, logger: logger, tls: tls != nil, resources: resources,
                            relay: relay))
                }
            }
        let channel = try await bootstrap.bind(
            host: configuration.listen.host, port: configuration.listen.port
        ).get()
        let port = channel.localAddress?.port ?? configuration.listen.port
        let bound = NodeAddress(host: configuration.listen.host, port: port)
        let (advertised, source) = await AdvertisedAddress.resolve(
            configured: configuration.advertise, bound: bound, seeds: configuration.seeds)
        if source != .configured && source != .listen {
            logger.notice(
                "listening on a wildcard address; advertising \(advertised), \(source.rawValue) (set --advertise to choose)"
            )
        }
        state.withLockedValue {
            $0.serverChannel = channel
            $0.boundAddress = advertised
        }
        if let metrics, let listen = configuration.metricsListen {
            let endpoint = try await MetricsEndpoint.serve(listen, group: group, metrics: metrics) { [weak self] in
                self?.stats() ?? NodeStats(nodeID: "", address: "")
            }
            state.withLockedValue { $0.metricsEndpoint = endpoint }
            logger.info("metrics served", metadata: ["metrics": "\(endpoint.url)"])
        }
        dispatcher.runtime.withLockedValue { $0.counters.address = advertised.description }
        joinCluster(advertised: advertised)
        logger.info(
            "node started",
            metadata: [
                "listen": "\(bound)", "capacity": "\(configuration.capacity)",
                "services": "\(services.names.joined(separator: ","))",
            ])
        return advertised
    }

    /// Stops taking connections and new requests, lets work in flight finish (up to the drain
    /// timeout), then closes every connection. Safe to call more than once.
    public func shutdown() async {
        let (future, first, shell, peers) = state.withLockedValue { state in
            if let existing = state.shutdown { return (existing, false, state.membership, state.peers) }
            let future = beginShutdown(on: group.next(), state: &state)
            state.shutdown = future
            return (future, true, state.membership, state.peers)
        }
        // The first caller tells the cluster it leaves (so others stop electing this node), waits
        // for the drain, then closes its links to the other nodes.
        if first { await shell?.leave() }
        try? await future.get()
        if first {
            await state.withLockedValue { $0.database }?.stop()
            await peers?.shutdown()
        }
    }

    /// Runs the node until graceful shutdown (SIGTERM/SIGINT through a `ServiceGroup`) or cancellation.
    public func run() async throws {
        if address == nil { try await start() }
        let closed = state.withLockedValue { $0.serverChannel?.closeFuture }
        await withTaskCancellationOrGracefulShutdownHandler {
            try? await closed?.get()
        } onCancelOrGracefulShutdown: { [self] in
            Task { await self.shutdown() }
        }
        await shutdown()
    }

    private func joinCluster(advertised: NodeAddress) {
        let peers = Client(
            nodes: [advertised],
            configuration: ClientConfiguration(
                connectTimeout: .milliseconds(500), tls: configuration.tls, membershipRefresh: nil, attemptTimeout: nil),
            group: group
        )
        let myself = Member(
            id: configuration.nodeID, address: advertised.description, status: .alive,
            // A fresh incarnation on every start, so a restarted node outranks what others remember of it.
            incarnation: UInt64(max(0, Date().timeIntervalSince1970 * 1000)),
            metadata: MemberMetadata(capacity: configuration.capacity), metadataVersion: 0)
        let dispatcher = self.dispatcher
        let shell = MembershipShell(
            myself: myself, seeds: configuration.seeds.filter { $0 != advertised }, settings: configuration.cluster,
            peers: peers, dark: dispatcher.dark, logger: logger
        ) { view in dispatcher.membersChanged(view) }
        services.register(
            RegisteredService(
                name: MembershipShell.gossipService,
                execution: .inline { request in
                    try shell.receive(request.data, from: request.caller)
                    return ByteBuffer()
                },
                bypassesAdmission: true, nodesOnly: true))
        services.register(
            RegisteredService(
                name: BuiltinServices.locate,
                execution: .inline { request in
                    let service = try request.param(0, "service")
                    switch dispatcher.locate(service: service, taskID: request.requestID) {
                    case .here: return ByteBuffer(string: advertised.description)
                    case .member(let address): return ByteBuffer(string: address.description)
                    case .nowhere: throw ServiceError(.unavailable, "no alive node offers \(service)")
                    }
                },
                bypassesAdmission: true))
        services.register(
            RegisteredService(
                name: BuiltinServices.taskStatus,
                execution: .inline { request in
                    guard let taskID = UInt64(try request.param(0, "task id")) else {
                        throw ServiceError.badParams("TaskStatus needs a numeric task id")
                    }
                    return ByteBuffer(string: dispatcher.knowsTask(taskID) ? "known" : "unknown")
                },
                bypassesAdmission: true, nodesOnly: true))
        dispatcher.attach(peers: peers)
        state.withLockedValue { $0.database }?.attach(
            shell: shell, peers: peers, group: group,
            joining: !configuration.seeds.filter { $0 != advertised }.isEmpty)
        state.withLockedValue {
            $0.membership = shell
            $0.peers = peers
        }
        let services = self.services
        let capacity = configuration.capacity
        shell.start {
            let load = dispatcher.load
            let names = services.names.filter { !BuiltinServices.internalNames.contains($0) }
            return MemberMetadata(load: load, capacity: capacity, services: names)
        }
    }

    /// The relay hub and its services (`CheckReachable`, `RelayAttach`, `RelayLocate`, `RelayDeliver`).
    private func makeRelay(replica: DatabaseReplica) -> RelayHub {
        // A peer's key never changes once registered (trust on first use): the local replica answers,
        // unless the record has not reached it yet.
        @Sendable func key(_ peer: String, _ consistency: ReadConsistency, _ loop: EventLoop)
            -> EventLoopFuture<SigningPublicKey?>
        {
            replica.read(consistency: consistency, session: nil, deadline: nil, on: loop) { store in
                store.document(peer, in: PeerRecord.collection).flatMap { try? PeerRecord(document: $0).signingKey }
            }
        }
        // A ticket's grant: on the local replica first, at majority when it is not (yet) in force here.
        @Sendable func check(_ ticket: DeliveryTicket, _ consistency: ReadConsistency, _ loop: EventLoop)
            -> EventLoopFuture<Void>
        {
            replica.read(consistency: consistency, session: nil, deadline: nil, on: loop) { store in
                try TicketInForce.check(
                    ticket, owner: store.document(ticket.owner, in: PeerRecord.collection),
                    stored: store.document(ticket.id, in: ViewGrant.collection))
            }
        }
        let hub = RelayHub(
            nodeID: configuration.nodeID, quotas: configuration.relayQuotas,
            signingKey: { peer, loop in
                key(peer, .local, loop).flatMap { found in
                    found.map { loop.makeSucceededFuture($0) } ?? key(peer, .majority, loop)
                }
            },
            inForce: { ticket, loop in
                check(ticket, .local, loop).flatMapError { _ in check(ticket, .majority, loop) }
            })
        EncryptStreamService.register(on: services, limits: configuration.encryptStream) { [weak self] in
            self?.state.withLockedValue { $0.boundAddress }
        }
        RelayServices.register(on: services, hub: hub) { [weak self] in
            guard let self else { return nil }
            return self.state.withLockedValue { state in
                guard let peers = state.peers, let myself = state.boundAddress, let shell = state.membership else {
                    return nil
                }
                let others = shell.withMembers { members in
                    members.filter { $0.status == .alive && $0.address != myself.description }.compactMap {
                        NodeAddress($0.address)
                    }
                }
                return (peers, others, myself)
            }
        }
        return hub
    }

    private func beginShutdown(on loop: EventLoop, state: inout State) -> EventLoopFuture<Void> {
        dispatcher.beginDrain()
        let serverClosed = state.serverChannel?.close() ?? loop.makeSucceededVoidFuture()
        state.metricsEndpoint?.close()
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
                let connections = self.connections.open
                // Each closes on its own loop after a flush: the last replies were queued there before
                // the drain ended, and a close alone would drop what is written but not yet flushed.
                let closes = connections.map { channel in
                    channel.eventLoop.flatSubmit {
                        channel.flush()
                        return channel.close()
                    }.flatMapErrorThrowing { _ in }
                }
                return EventLoopFuture.andAllComplete(closes, on: loop)
            }
            .map { logger.info("node stopped") }
    }

    /// Registers an accepted connection; false when its source already holds as many as it may.
    private func track(_ channel: Channel) -> Bool {
        guard connections.admit(channel) else {
            count(.tooManyFromSource)
            logger.notice(
                "connection refused: too many from its source",
                metadata: [
                    "source": "\(ConnectionTracker.source(of: channel))",
                    "limit": "\(configuration.connections.maxPerSource)",
                ])
            return false
        }
        return true
    }

    /// Counts (and logs) a connection the node closed on its own.
    private func count(_ drop: ConnectionDrop) {
        dispatcher.runtime.withLockedValue { runtime in
            switch drop {
            case .tooManyFromSource: runtime.counters.rejectedConnections += 1
            // A stalled handshake is a slow client too: counted with the slow requests.
            case .slowRequest, .slowHandshake: runtime.counters.slowConnectionsDropped += 1
            case .idle: runtime.counters.idleConnectionsClosed += 1
            }
        }
        let reason =
            switch drop {
            case .tooManyFromSource: ""
            case .slowRequest: "slow request"
            case .idle: "idle"
            case .slowHandshake: "TLS handshake not completed within \(configuration.resources.handshakeTimeout)"
            }
        if drop != .tooManyFromSource {
            logger.notice("connection closed", metadata: ["reason": "\(reason)"])
        }
    }
}
