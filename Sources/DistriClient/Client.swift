import DistriCore
import DistriWire
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOFoundationCompat
import NIOPosix
import Tracing

/// Settings of a ``Client``.
public struct ClientConfiguration: Sendable {
    /// How long a call waits for its reply unless the call says otherwise. Default 30 s.
    public var timeout: TimeAmount
    /// How long connecting to one node may take before moving on. Default 2 s.
    public var connectTimeout: TimeAmount
    /// How long a node that refused a connection is tried last. Default 1 s.
    public var retryBackoff: TimeAmount
    /// Frame and message size limits. Default `WireLimits.standard`.
    public var limits: WireLimits
    /// Payloads at least this large are sent straight to the executor: the client first asks a node
    /// (`Locate`) which node is elected, so the payload crosses the network once. Default 1 MiB.
    public var locateThreshold: Int
    /// TLS to the nodes, checked against the cluster's authority; nil speaks plain TCP (`--insecure`).
    public var tls: ClusterTLS?
    /// How often the client asks a node for the cloud's membership (`Members`), so nodes added later
    /// get calls and nodes that died or left are dropped; it also asks soon (at most every 500 ms)
    /// after a node failed it. The first refresh comes with the first call that is not pinned to a
    /// node. nil: only the addresses given are called. Default 5 s.
    public var membershipRefresh: TimeAmount?
    /// When a call that is not pinned to a node suspects its node went silent (a paused process keeps
    /// its connection open and answers nothing). Each service's round trips feed an estimator
    /// (`srtt + 4 × rttvar`, RFC 6298), held between 250 ms and 2 s (1 s before the first sample), and
    /// never reaching the call's own deadline. When it passes and *nothing at all* arrived on the
    /// connection since the request was sent, the client sends a liveness probe (`Members`, answered
    /// at once by the node itself, outside its capacity limit) and waits the probe's own timeout (the
    /// same rule over the probes' round trips); only if that goes unanswered too is the call moved to
    /// another node (routing `electRetry`, the same task id). A slow service on a live node is thus
    /// never moved: the probe's answer (or any pipelined reply) shows the node alive. A silent node is
    /// left after about attempt timeout + probe timeout (0.5 s on a LAN). nil: calls wait for their
    /// deadline. Default `AttemptTimeoutPolicy.standard`.
    public var attemptTimeout: AttemptTimeoutPolicy?
    /// Where the client's spans go: each call is a `distri.call` span (kind client) whose context
    /// travels with the request, so the nodes' spans join the caller's trace. nil (the default):
    /// no spans and no trace context on the wire. `InstrumentationSystem.tracer` after
    /// `InstrumentationSystem.bootstrap` makes the process's tracer (swift-otel's, say) the client's.
    public var tracer: (any Tracer)?

    /// Settings with the given values; every argument has a default.
    public init(
        timeout: TimeAmount = .seconds(30),
        connectTimeout: TimeAmount = .seconds(2),
        retryBackoff: TimeAmount = .seconds(1),
        limits: WireLimits = .standard,
        locateThreshold: Int = 1 << 20,
        tls: ClusterTLS? = nil,
        membershipRefresh: TimeAmount? = .seconds(5),
        attemptTimeout: AttemptTimeoutPolicy? = .standard,
        tracer: (any Tracer)? = nil
    ) {
        self.tracer = tracer
        self.membershipRefresh = membershipRefresh
        self.attemptTimeout = attemptTimeout
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
/// One address of the cloud is enough: the client learns the live membership from the node it reaches
/// (`Members`) and keeps it fresh (``ClientConfiguration/membershipRefresh``), so nodes added later
/// get calls and nodes that died or left are dropped; the addresses given stay as a fallback. A host
/// name given resolves to all of its addresses.
///
/// One multiplexed connection per node, opened on first use and reused by every call; calls are
/// spread over the alive nodes in turn, and a node that cannot be reached, or goes silent (see
/// ``ClientConfiguration/attemptTimeout``), is skipped for the next.
/// All of its work happens on one event loop, so a call never changes threads inside the client.
public final class Client: Sendable {
    /// The addresses this client was given (its seeds). The nodes it calls now: ``knownNodes()``.
    public let nodes: [NodeAddress]
    /// The client's settings.
    public let configuration: ClientConfiguration
    /// The event loop all of this client's connections and callbacks run on.
    public let eventLoop: EventLoop
    private let state: NIOLoopBoundBox<State>
    /// Task ids: a generator seeded once from the system, whose outputs do not repeat within a client
    /// (a system random number per call cost a syscall per call).
    private let taskIDs: NodeLock<SplitMix64>

    private final class Link {
        let address: NodeAddress
        var handler: ClientHandler?
        var channel: Channel?
        var connecting: EventLoopFuture<ClientHandler>?
        var downUntil: NIODeadline?

        init(address: NodeAddress) { self.address = address }
    }

    private struct State {
        /// Every link made, by address (pinned calls' too).
        var byAddress: [NodeAddress: Link] = [:]
        var view: ClientMembershipView<NodeAddress>
        /// The view's active addresses, called in turn, then its fallback ones.
        var active: [Link] = []
        var fallback: [Link] = []
        var next = 0
        var isShutdown = false
        var timeouts: AttemptTimeouts?
        var refresh = Refresh()

        init(seeds: [NodeAddress], next: Int, policy: AttemptTimeoutPolicy?) {
            view = ClientMembershipView(seeds: seeds)
            self.next = next
            timeouts = policy.map(AttemptTimeouts.init(policy:))
            rebuildLinks()
        }

        /// The link of `address`, made on first use.
        mutating func link(_ address: NodeAddress) -> Link {
            if let link = byAddress[address] { return link }
            let link = Link(address: address)
            byAddress[address] = link
            return link
        }

        /// Sets ``active`` and ``fallback`` from the view; returns the links no longer in either.
        @discardableResult
        mutating func rebuildLinks() -> [Link] {
            let before = Set((active + fallback).map(\.address))
            active = view.active.map { link($0) }
            fallback = view.fallback.map { link($0) }
            let now = Set(view.all)
            return before.subtracting(now).compactMap { byAddress[$0] }
        }
    }

    /// The membership refresh: started with the first unpinned call, one at a time.
    private struct Refresh {
        var started = false
        var seedsResolved = false
        var inFlight: EventLoopFuture<Void>?
        var lastStarted = NIODeadline.distantPast
        var timer: Scheduled<Void>?
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
        self.taskIDs = NodeLock(SplitMix64(seed: system.next()))
        // Clients start their turn at a random node, so many clients spread over the cloud.
        self.state = NIOLoopBoundBox.makeBoxSendingValue(
            State(seeds: nodes, next: Int.random(in: 0..<1 << 20), policy: configuration.attemptTimeout),
            eventLoop: eventLoop)
    }

    /// The nodes this client calls now: the alive members it learnt, then the fallback ones (suspect
    /// members and the seeds given).
    public func knownNodes() async -> [NodeAddress] {
        (try? await eventLoop.submit { self.state.value.view.all }.get()) ?? nodes
    }

    /// Asks a node for the cloud's membership now (`Members`) and merges it; the periodic refresh
    /// starts if it had not. Errors leave the current view in place.
    public func refreshMembership() async {
        try? await eventLoop.flatSubmit { self.refreshOnLoop(force: true) }.get()
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

    /// Asks nodes for their stats, each node answering for itself: the given `nodes`, or by default
    /// every node this client knows after learning the membership (``refreshMembership()``), so one
    /// address of the cloud lists all: the addresses it was given first, in their order, then the
    /// others it learnt.
    public func collectStats(of nodes: [NodeAddress]? = nil) async -> [NodeStatsResult] {
        var targets = nodes ?? self.nodes
        if nodes == nil, configuration.membershipRefresh != nil {
            await refreshMembership()
            for node in await knownNodes() where !targets.contains(node) { targets.append(node) }
        }
        var results: [NodeStatsResult] = []
        for node in targets {
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
    ///
    /// With a ``ClientConfiguration/tracer`` the call is a span under `context` (else the task's
    /// current service context); `traceFields` (a node forwarding a task) are sent as given when
    /// the client has no tracer of its own.
    public func call(
        _ data: ByteBuffer, service: String, params: [String] = [], node: NodeAddress? = nil,
        timeout: TimeAmount? = nil, routing: Routing = .elect, taskID: UInt64? = nil,
        context: ServiceContext? = nil, traceFields: TraceFields = TraceFields()
    ) -> EventLoopFuture<ByteBuffer> {
        let timeout = timeout ?? configuration.timeout
        var request = WireRequest(
            service: service, params: params,
            deadlineMillis: UInt32(clamping: max(1, timeout.nanoseconds / 1_000_000)), routing: routing,
            taskID: taskID ?? max(1, taskIDs.withLockedValue { $0.next() }), data: data)
        request.traceFields = traceFields
        var span: (any Span)?
        if let tracer = configuration.tracer {
            let started = tracer.startDistriSpan(
                "distri.call", context: context ?? ServiceContext.current ?? .topLevel, kind: .client,
                service: service, taskID: request.taskID)
            request.traceFields = tracer.fields(for: started.context)
            span = started
        }
        return send(request, node: node, timeout: timeout, routing: routing, data: data).ending(span)
    }

    private func send(
        _ request: WireRequest, node: NodeAddress?, timeout: TimeAmount, routing: Routing, data: ByteBuffer
    ) -> EventLoopFuture<ByteBuffer> {
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
            self.state.value.isShutdown = true
            self.state.value.refresh.timer?.cancel()
            self.state.value.refresh.timer = nil
            let closes = self.state.value.byAddress.values.compactMap {
                $0.channel?.close().flatMapErrorThrowing { _ in }
            }
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
            isRefresh: false, promise: promise)
        return promise.futureResult
    }

    /// Links to try, in order: the next in turn first, nodes recently unreachable last.
    private func candidates(pinnedTo node: NodeAddress?) -> [Link] {
        if let node { return [state.value.link(node)] }
        if !state.value.refresh.started, configuration.membershipRefresh != nil {
            _ = refreshOnLoop(force: true)
        }
        let links = state.value.active
        let fallback = state.value.fallback
        let start = state.value.next % max(1, links.count)
        state.value.next &+= 1
        let now = NIODeadline.now()
        // One array in the usual case, every node up.
        var ordered: [Link] = []
        ordered.reserveCapacity(links.count + fallback.count)
        var down: [Link] = []
        for offset in 0..<links.count {
            let link = links[(start + offset) % links.count]
            if let until = link.downUntil, until > now { down.append(link) } else { ordered.append(link) }
        }
        for link in fallback {
            if let until = link.downUntil, until > now { down.append(link) } else { ordered.append(link) }
        }
        if !down.isEmpty { ordered += down }
        return ordered
    }

    // MARK: Membership

    /// Starts a refresh unless one runs, or (unless `force`) one started less than 500 ms ago. Returns
    /// when it ends. On the event loop.
    private func refreshOnLoop(force: Bool) -> EventLoopFuture<Void> {
        guard let interval = configuration.membershipRefresh, !state.value.isShutdown else {
            return eventLoop.makeSucceededVoidFuture()
        }
        if let inFlight = state.value.refresh.inFlight { return inFlight }
        let now = NIODeadline.now()
        if !force, now - state.value.refresh.lastStarted < .milliseconds(500) {
            return eventLoop.makeSucceededVoidFuture()
        }
        state.value.refresh.lastStarted = now
        if !state.value.refresh.started {
            state.value.refresh.started = true
            schedulePeriodicRefresh(every: interval)
        }
        let resolved: EventLoopFuture<Void>
        if state.value.refresh.seedsResolved {
            resolved = eventLoop.makeSucceededVoidFuture()
        } else {
            state.value.refresh.seedsResolved = true
            resolved = resolveSeeds()
        }
        let request = WireRequest(
            service: BuiltinServices.members, deadlineMillis: 2000, routing: .local, data: ByteBuffer())
        let done = eventLoop.makePromise(of: Void.self)
        state.value.refresh.inFlight = done.futureResult
        resolved.flatMap { () -> EventLoopFuture<ByteBuffer> in
            let promise = self.eventLoop.makePromise(of: ByteBuffer.self)
            self.attempt(
                request, candidates: self.candidates(pinnedTo: nil), index: 0, failures: [],
                timeout: .seconds(2), isRefresh: true, promise: promise)
            return promise.futureResult
        }
        .whenComplete { result in
            if case .success(let reply) = result,
                let report = try? JSONDecoder().decode([MemberSummary].self, from: Data(buffer: reply))
            {
                self.merge(report)
            }
            self.state.value.refresh.inFlight = nil
            done.succeed(())
        }
        return done.futureResult
    }

    private func schedulePeriodicRefresh(every interval: TimeAmount) {
        state.value.refresh.timer = eventLoop.scheduleTask(in: interval) { [weak self] in
            guard let self, !self.state.value.isShutdown else { return }
            self.schedulePeriodicRefresh(every: interval)
            _ = self.refreshOnLoop(force: true)
        }
    }

    private func merge(_ report: [MemberSummary]) {
        guard state.value.view.merge(report, parse: Self.usableAddress) else { return }
        let dropped = state.value.rebuildLinks()
        // A node that died or left: close our connection to it (calls on it fail over).
        for link in dropped { link.channel?.close(promise: nil) }
    }

    /// A reported address the client can call: not a wildcard.
    package static func usableAddress(_ text: String) -> NodeAddress? {
        guard let address = NodeAddress(text), address.port > 0,
            !["0.0.0.0", "::", "0:0:0:0:0:0:0:0"].contains(address.host)
        else { return nil }
        return address
    }

    /// Seeds given by host name become all of the name's addresses (resolved on the thread pool, as
    /// the resolver blocks); the name stays when it resolves to nothing.
    private func resolveSeeds() -> EventLoopFuture<Void> {
        let seeds = nodes
        guard seeds.contains(where: { !Self.isLiteral($0.host) }) else { return eventLoop.makeSucceededVoidFuture() }
        return NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) {
            seeds.flatMap { seed in Self.isLiteral(seed.host) ? [seed] : (Self.lookup(seed) ?? [seed]) }
        }
        .map { expanded in
            var unique: [NodeAddress] = []
            for address in expanded where !unique.contains(address) { unique.append(address) }
            guard unique != seeds else { return }
            // Before any report is merged (this runs ahead of the first refresh's call).
            self.state.value.view = ClientMembershipView(seeds: unique)
            for link in self.state.value.rebuildLinks() { link.channel?.close(promise: nil) }
        }
        .recover { _ in }
    }

    private static func isLiteral(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// Every address `seed`'s host resolves to (TCP), nil when it resolves to none.
    private static func lookup(_ seed: NodeAddress) -> [NodeAddress]? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(seed.host, String(seed.port), &hints, &list) == 0, let first = list else { return nil }
        defer { freeaddrinfo(first) }
        var result: [NodeAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(
                entry.pointee.ai_addr, entry.pointee.ai_addrlen, &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST)
                == 0
            {
                let text = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                let address = NodeAddress(host: text, port: seed.port)
                if !result.contains(address) { result.append(address) }
            }
            cursor = entry.pointee.ai_next
        }
        return result.isEmpty ? nil : result
    }

    /// Sends `request` to `candidates[index]`, and on a retryable failure to the next. `timeout` is
    /// what is left of the call's deadline. Calls with more than one candidate get an attempt timeout.
    private func attempt(
        _ request: WireRequest, candidates: [Link], index: Int, failures: [ClientError],
        timeout: TimeAmount, isRefresh: Bool,
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
        let started = NIODeadline.now()
        // The attempt timeout, when another node could take the call and it comes before the deadline.
        let attemptTimeout: (after: TimeAmount, probe: TimeAmount)?
        if candidates.count > 1, let timeouts = state.value.timeouts,
            let after = timeouts.attemptTimeout(
                service: request.service, remaining: UInt64(max(0, timeout.nanoseconds)))
        {
            attemptTimeout = (.nanoseconds(Int64(after)), .nanoseconds(Int64(timeouts.probeTimeout)))
        } else {
            attemptTimeout = nil
        }
        attemptPromise.futureResult.whenComplete { result in
            switch result {
            case .success(let reply):
                let elapsed = NIODeadline.now() - started
                self.state.value.timeouts?.observe(service: request.service, UInt64(max(0, elapsed.nanoseconds)))
                promise.succeed(reply)
            case .failure(let error):
                guard let clientError = error as? ClientError, Self.isRetryable(clientError) else {
                    promise.fail(error)
                    return
                }
                let candidates = bound.value
                if clientError.kind == .unresponsive {
                    // Other calls go elsewhere first while this node is silent.
                    candidates[index].downUntil = .now() + self.configuration.retryBackoff
                }
                // A node failed us: the membership may have changed; learn it soon.
                if !isRefresh, clientError.kind != .remote || clientError.remoteCode == .shuttingDown {
                    _ = self.refreshOnLoop(force: false)
                }
                // The first attempt may have reached an executor: let the next node look for it first.
                var request = request
                if request.routing == .elect { request.routing = .electRetry }
                let left = timeout - (NIODeadline.now() - started)
                guard left > .zero else {
                    promise.fail(
                        ClientError(
                            .deadlineExceeded, node: clientError.node,
                            message: "deadline passed after \(clientError.description)"))
                    return
                }
                request.deadlineMillis = UInt32(clamping: max(1, left.nanoseconds / 1_000_000))
                self.attempt(
                    request, candidates: candidates, index: index + 1, failures: failures + [clientError],
                    timeout: left, isRefresh: isRefresh, promise: promise)
            }
        }
        if let handler = link.handler, handler.isUsable {
            handler.send(request, timeout: timeout, attempt: attemptTimeout, promise: attemptPromise)
            return
        }
        connect(link).whenComplete { result in
            let candidates = bound.value
            let link = candidates[index]
            switch result {
            case .success(let handler):
                handler.send(request, timeout: timeout, attempt: attemptTimeout, promise: attemptPromise)
            case .failure(let error):
                link.downUntil = .now() + self.configuration.retryBackoff
                attemptPromise.fail(
                    error as? ClientError ?? ClientError(.connectFailed, node: link.address, message: "\(error)"))
            }
        }
    }

    private func observeProbe(_ sample: UInt64) {
        state.value.timeouts?.observeProbe(sample)
    }

    /// Failures after which the same task may be sent to another node: it did not run, or its node
    /// went away (a node that did run it answers the retry from its dedup window).
    package static func isRetryable(_ error: ClientError) -> Bool {
        switch error.kind {
        case .connectFailed, .connectionLost, .unresponsive: return true
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
            .channelInitializer { [weak self] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(try tls.makeClientHandler()) }
                    try channel.pipeline.syncOperations.addHandlers(
                        FramingHandler(limits: limits),
                        ClientHandler(node: address) { sample in
                            // On the loop: the handler reports from its channel's loop, this client's.
                            self?.observeProbe(sample)
                        })
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

/// One node's answer to ``Client/collectStats(of:)``.
public struct NodeStatsResult: Sendable {
    /// The node asked.
    public var node: NodeAddress
    /// Its stats, or why it did not answer.
    public var result: Result<NodeStats, ClientError>

    /// `node`'s answer.
    public init(node: NodeAddress, result: Result<NodeStats, ClientError>) {
        self.node = node
        self.result = result
    }
}
