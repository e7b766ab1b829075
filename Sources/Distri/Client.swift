import DistriCore
import DistriWire
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOFoundationCompat
import NIOPosix

/// Settings of a ``Client``.
public struct ClientConfiguration: Sendable {
    /// How long a call waits for its reply unless the call says otherwise. Default 30 s.
    public var timeout: TimeAmount
    /// How long connecting to one node may take before moving on. Default 2 s.
    public var connectTimeout: TimeAmount
    /// How long a node that refused a connection is tried last. Default 1 s.
    public var retryBackoff: TimeAmount
    /// Frame and message size limits. Default ``DistriWire/WireLimits/standard``.
    public var limits: WireLimits
    /// Payloads at least this large are sent straight to the executor: the client first asks a node
    /// (`Locate`) which node is elected, so the payload crosses the network once. Default 1 MiB.
    public var locateThreshold: Int
    /// TLS to the nodes, checked against the cluster's authority; nil speaks plain TCP (`--insecure`).
    public var tls: ClusterTLS?

    public init(
        timeout: TimeAmount = .seconds(30),
        connectTimeout: TimeAmount = .seconds(2),
        retryBackoff: TimeAmount = .seconds(1),
        limits: WireLimits = .standard,
        locateThreshold: Int = 1 << 20,
        tls: ClusterTLS? = nil
    ) {
        self.tls = tls
        self.locateThreshold = locateThreshold
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.retryBackoff = retryBackoff
        self.limits = limits
    }
}

/// Talks bytes to the cloud: sends a service name, parameters and data to a node and returns the
/// reply's bytes. It does no processing of its own.
///
/// One multiplexed connection per node, opened on first use and reused by every call; calls are
/// spread over the nodes in turn, and a node that cannot be reached is skipped for the next.
/// All of its work happens on one event loop, so a call never changes threads inside the client.
public final class Client: Sendable {
    /// The nodes this client knows.
    public let nodes: [NodeAddress]
    public let configuration: ClientConfiguration
    /// The event loop all of this client's connections and callbacks run on.
    public let eventLoop: EventLoop
    private let state: NIOLoopBoundBox<State>
    /// Task ids: a generator seeded once from the system, whose outputs do not repeat within a client
    /// (a system random number per call cost a syscall per call).
    private let taskIDs: NIOLockedValueBox<SplitMix64>

    private final class Link {
        let address: NodeAddress
        var handler: ClientHandler?
        var channel: Channel?
        var connecting: EventLoopFuture<ClientHandler>?
        var downUntil: NIODeadline?

        init(address: NodeAddress) { self.address = address }
    }

    private struct State {
        var links: [Link]
        var next = 0
        var isShutdown = false
    }

    /// A client of the given nodes. At least one address is needed.
    public init(
        nodes: [NodeAddress],
        configuration: ClientConfiguration = .init(),
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        precondition(!nodes.isEmpty, "a Client needs at least one node address")
        self.nodes = nodes
        self.configuration = configuration
        self.eventLoop = group.next()
        var system = SystemRandomNumberGenerator()
        self.taskIDs = NIOLockedValueBox(SplitMix64(seed: system.next()))
        // Clients start their turn at a random node, so many clients spread over the cloud.
        self.state = NIOLoopBoundBox.makeBoxSendingValue(
            State(links: nodes.map(Link.init(address:)), next: Int.random(in: 0..<nodes.count)), eventLoop: eventLoop)
    }

    // MARK: The seed's API

    /// Calls `service` with `data` and returns the reply's bytes.
    public func send(_ data: [UInt8], service: String) async throws -> [UInt8] {
        try await send(data, service: service, params: [])
    }

    /// Calls `service` with `data` and `params` and returns the reply's bytes.
    public func send(
        _ data: [UInt8], service: String, params: [String], timeout: TimeAmount? = nil
    ) async throws -> [UInt8] {
        let reply = try await call(
            ByteBuffer(bytes: data), service: service, params: params, timeout: timeout
        ).get()
        return Array(buffer: reply)
    }

    /// Asks every known node for its stats, each node answering for itself.
    public func collectStats() async -> [NodeStatsResult] {
        var results: [NodeStatsResult] = []
        for node in nodes {
            do {
                let reply = try await call(ByteBuffer(), service: BuiltinServices.stats, node: node).get()
                let stats = try JSONDecoder().decode(NodeStats.self, from: Data(buffer: reply))
                results.append(NodeStatsResult(node: node, result: .success(stats)))
            } catch let error as ClientError {
                results.append(NodeStatsResult(node: node, result: .failure(error)))
            } catch {
                results.append(
                    NodeStatsResult(
                        node: node,
                        result: .failure(
                            ClientError(.protocolViolation, node: node, message: "bad stats: \(error)"))))
            }
        }
        return results
    }

    // MARK: Buffer API

    /// Calls `service` and completes with the reply's bytes, on ``eventLoop``. When `node` is given
    /// the call goes to that node only; otherwise to the next reachable node in turn, and on to the
    /// next if that node cannot be reached, is busy or shutting down, or drops the connection. Every
    /// attempt carries the same task id, so a node that already ran the task answers from its dedup
    /// window. `routing` `.local` asks the node to run the task itself instead of electing.
    public func call(
        _ data: ByteBuffer, service: String, params: [String] = [], node: NodeAddress? = nil,
        timeout: TimeAmount? = nil, routing: Routing = .elect, taskID: UInt64? = nil
    ) -> EventLoopFuture<ByteBuffer> {
        let timeout = timeout ?? configuration.timeout
        let request = WireRequest(
            service: service, params: params,
            deadlineMillis: UInt32(clamping: max(1, timeout.nanoseconds / 1_000_000)), routing: routing,
            taskID: taskID ?? max(1, taskIDs.withLockedValue { $0.next() }), data: data)
        guard request.encodedSize <= configuration.limits.maxMessageSize else {
            return eventLoop.makeFailedFuture(
                ClientError(
                    .tooLarge, node: node,
                    message:
                        "request of \(request.encodedSize) bytes exceeds \(configuration.limits.maxMessageSize)"
                ))
        }
        if node == nil, routing == .elect, data.readableBytes >= configuration.locateThreshold {
            return callLocated(request, timeout: timeout)
        }
        if eventLoop.inEventLoop {
            return callOnLoop(request, node: node, timeout: timeout)
        }
        return eventLoop.flatSubmit { self.callOnLoop(request, node: node, timeout: timeout) }
    }

    /// Closes every connection; later calls fail with ``ClientError/Kind/shutDown``.
    public func shutdown() async {
        let closed: EventLoopFuture<Void> = eventLoop.flatSubmit {
            var state = self.state.value
            state.isShutdown = true
            self.state.value = state
            let closes = state.links.compactMap { $0.channel?.close().flatMapErrorThrowing { _ in } }
            return EventLoopFuture.andAllComplete(closes, on: self.eventLoop)
        }
        try? await closed.get()
    }

    /// Asks where a large task should run, then sends it there to run locally; falls back to a
    /// normal call when locating fails or the located node fails before running it.
    private func callLocated(_ request: WireRequest, timeout: TimeAmount) -> EventLoopFuture<ByteBuffer> {
        let locate = WireRequest(
            service: BuiltinServices.locate, params: [request.service], deadlineMillis: request.deadlineMillis,
            data: ByteBuffer())
        return eventLoop.flatSubmit {
            self.callOnLoop(locate, node: nil, timeout: timeout)
                .flatMap { reply -> EventLoopFuture<ByteBuffer> in
                    guard let executor = NodeAddress(String(buffer: reply)) else {
                        return self.callOnLoop(request, node: nil, timeout: timeout)
                    }
                    var direct = request
                    direct.routing = .local
                    return self.callOnLoop(direct, node: executor, timeout: timeout)
                        .flatMapError { error in
                            guard let clientError = error as? ClientError, Self.isRetryable(clientError) else {
                                return self.eventLoop.makeFailedFuture(error)
                            }
                            return self.callOnLoop(request, node: nil, timeout: timeout)
                        }
                }
                .flatMapError { error in
                    guard (error as? ClientError)?.remoteCode == .unknownService else {
                        return self.eventLoop.makeFailedFuture(error)
                    }
                    return self.callOnLoop(request, node: nil, timeout: timeout)
                }
        }
    }

    // MARK: On the event loop

    private func callOnLoop(_ request: WireRequest, node: NodeAddress?, timeout: TimeAmount)
        -> EventLoopFuture<ByteBuffer>
    {
        if state.value.isShutdown {
            return eventLoop.makeFailedFuture(
                ClientError(.shutDown, node: node, message: "client is shut down"))
        }
        let promise = eventLoop.makePromise(of: ByteBuffer.self)
        attempt(
            request, candidates: candidates(pinnedTo: node), index: 0, failures: [], timeout: timeout,
            promise: promise)
        return promise.futureResult
    }

    /// Links to try, in order: the next in turn first, nodes recently unreachable last.
    private func candidates(pinnedTo node: NodeAddress?) -> [Link] {
        if let node {
            if let link = state.value.links.first(where: { $0.address == node }) { return [link] }
            let link = Link(address: node)
            state.value.links.append(link)
            return [link]
        }
        let links = state.value.links
        let start = state.value.next % links.count
        state.value.next &+= 1
        let now = NIODeadline.now()
        // One array in the usual case, every node up.
        var ordered: [Link] = []
        ordered.reserveCapacity(links.count)
        var down: [Link] = []
        for offset in 0..<links.count {
            let link = links[(start + offset) % links.count]
            if let until = link.downUntil, until > now { down.append(link) } else { ordered.append(link) }
        }
        if !down.isEmpty { ordered += down }
        return ordered
    }

    private func attempt(
        _ request: WireRequest, candidates: [Link], index: Int, failures: [ClientError],
        timeout: TimeAmount,
        promise: EventLoopPromise<ByteBuffer>
    ) {
        guard index < candidates.count else {
            if failures.count == 1 || failures.allSatisfy({ $0.kind == .remote }), let last = failures.last {
                promise.fail(last)
            } else {
                promise.fail(
                    ClientError(
                        .noReachableNode, node: nil,
                        message: failures.map(\.description).joined(separator: "; ")))
            }
            return
        }
        let link = candidates[index]
        let bound = NIOLoopBound(candidates, eventLoop: eventLoop)
        let attemptPromise = eventLoop.makePromise(of: ByteBuffer.self)
        attemptPromise.futureResult.whenComplete { result in
            switch result {
            case .success(let reply):
                promise.succeed(reply)
            case .failure(let error):
                guard let clientError = error as? ClientError, Self.isRetryable(clientError) else {
                    promise.fail(error)
                    return
                }
                // The first attempt may have reached an executor: let the next node look for it first.
                var request = request
                if request.routing == .elect { request.routing = .electRetry }
                self.attempt(
                    request, candidates: bound.value, index: index + 1, failures: failures + [clientError],
                    timeout: timeout, promise: promise)
            }
        }
        if let handler = link.handler, handler.isUsable {
            handler.send(request, timeout: timeout, promise: attemptPromise)
            return
        }
        connect(link).whenComplete { result in
            let candidates = bound.value
            let link = candidates[index]
            switch result {
            case .success(let handler):
                handler.send(request, timeout: timeout, promise: attemptPromise)
            case .failure(let error):
                link.downUntil = .now() + self.configuration.retryBackoff
                attemptPromise.fail(
                    error as? ClientError ?? ClientError(.connectFailed, node: link.address, message: "\(error)"))
            }
        }
    }

    /// Failures after which the same task may be sent to another node: it did not run, or its node
    /// went away (a node that did run it answers the retry from its dedup window).
    static func isRetryable(_ error: ClientError) -> Bool {
        switch error.kind {
        case .connectFailed, .connectionLost: return true
        case .remote: return [.busy, .shuttingDown, .unavailable].contains(error.remoteCode)
        default: return false
        }
    }

    private func connect(_ link: Link) -> EventLoopFuture<ClientHandler> {
        if let connecting = link.connecting { return connecting }
        let limits = configuration.limits
        let tls = configuration.tls
        let address = link.address
        let loop = eventLoop
        let boundLink = NIOLoopBound(link, eventLoop: eventLoop)
        let future = ClientBootstrap(group: eventLoop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: .init(low: 256 << 10, high: 1 << 20))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(try tls.makeClientHandler()) }
                    try channel.pipeline.syncOperations.addHandlers(
                        FramingHandler(limits: limits), ClientHandler(node: address))
                }
            }
            .connect(host: address.host, port: address.port)
            .flatMapErrorThrowing { error in
                throw ClientError(.connectFailed, node: address, message: "\(error)")
            }
            .flatMapThrowing { channel in
                let handler = try channel.pipeline.syncOperations.handler(type: ClientHandler.self)
                let link = boundLink.value
                link.channel = channel
                link.handler = handler
                link.downUntil = nil
                channel.closeFuture.whenComplete { _ in
                    loop.assertInEventLoop()
                    let link = boundLink.value
                    if link.channel === channel {
                        link.channel = nil
                        link.handler = nil
                    }
                }
                return handler
            }
        link.connecting = future
        future.whenComplete { _ in boundLink.value.connecting = nil }
        return future
    }
}

/// One node's answer to ``Client/collectStats()``.
public struct NodeStatsResult: Sendable {
    public var node: NodeAddress
    public var result: Result<NodeStats, ClientError>

    public init(node: NodeAddress, result: Result<NodeStats, ClientError>) {
        self.node = node
        self.result = result
    }
}

extension Array where Element == NodeStatsResult {
    /// The results as a printable table.
    public var table: String {
        StatsReport.table(
            map { item in
                switch item.result {
                case .success(let stats): (item.node.description, stats, nil)
                case .failure(let error): (item.node.description, nil, error.description)
                }
            })
    }
}
