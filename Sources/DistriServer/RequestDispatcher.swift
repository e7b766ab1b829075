import DistriClient
import DistriCore
import DistriWire
import Logging
import NIOCore
import Tracing

/// Runs requests on a node by performing what its ``TaskRouter`` decides: looks the service up,
/// hands the request to the router, and runs it here, forwards it, asks who has it, or answers, as
/// told; then reports back how each ended. One lock (the ``NodeRuntime``) is taken once per event:
/// on arrival, when a forward ends, when a task ran. Shared by all of a node's connections.
package final class RequestDispatcher: Sendable {
    package let registry: ServiceRegistry
    package let runtime: NodeLock<NodeRuntime>
    /// Set while chaos mode or fault injection keeps the node dark: requests are then dropped.
    package let dark = DarkWindow()
    private let idleWaiters = NodeLock<[EventLoopPromise<Void>]>([])
    private let logger: Logger
    /// Where the node's spans go; nil: no spans, and nothing extra per request.
    private let tracer: (any Tracer)?

    package init(registry: ServiceRegistry, runtime: NodeRuntime, logger: Logger, tracer: (any Tracer)? = nil) {
        self.registry = registry
        self.runtime = NodeLock(runtime)
        self.logger = logger
        self.tracer = tracer
    }

    /// Connects the dispatcher to the cluster once the node has started: forwards and status
    /// look-ups go through `peers`.
    package func attach(peers: Client) {
        runtime.withLockedValue { $0.peers = peers }
    }

    /// The membership changed: the router learns the members it may elect (and fails over tasks
    /// forwarded to members that are gone).
    package func membersChanged(_ view: [RoutingMember<NodeAddress>]) {
        let now = MonotonicClock.millis()
        let (actions, peers) = runtime.withLockedValue { ($0.router.membersChanged(view, now: now), $0.peers) }
        perform(actions, peers: peers)
    }

    /// Handles one decoded request. Every path ends in exactly one reply, except while chaos mode
    /// keeps the node dark, when requests are dropped as a dead node would drop them.
    package func dispatch(_ wire: WireRequest, responder: Responder, caller: Caller = .unchecked) {
        if dark.isDark { return }
        let service = registry.lookup(wire.service)
        let refused = service?.nodesOnly == true && !caller.mayCallNodeServices
        guard let service, !refused else {
            // Every request is counted once: here those that go no further, below the others.
            runtime.withLockedValue { state in
                state.counters.requestsReceived += 1
                state.counters.failed += 1
                if refused { state.counters.unauthorizedCalls += 1 }
            }
            responder.reply(.failure(refused ? Self.unauthorized(wire.service) : Self.unknown(wire.service)))
            if refused {
                logger.notice(
                    "refused an internal service to a caller without a node certificate",
                    metadata: ["service": "\(wire.service)"])
            }
            return
        }
        let now = NIODeadline.now()
        let nowMillis = now.uptimeNanoseconds / 1_000_000
        // A zero deadline means none: the caller waits as long as it takes.
        let deadline = wire.deadlineMillis == 0 ? nil : now + .milliseconds(Int64(wire.deadlineMillis))
        let request = ServiceRequest(
            service: wire.service, params: wire.params, data: wire.data, requestID: responder.requestID,
            deadline: deadline, taskID: wire.taskID, isRetry: wire.routing == .electRetry, caller: caller)
        // The request's span joins the caller's trace when the request carries its context.
        let span = tracer.map { tracer in
            let span = tracer.startDistriSpan(
                "distri.request", context: tracer.extracted(from: wire.traceFields), kind: .server,
                service: wire.service, taskID: wire.taskID)
            if span.isRecording { span.attributes["distri.routing"] = wire.routing.description }
            return span
        }
        let arrival = TaskArrival(
            task: PendingTask(
                service: service, request: request, responder: responder, arrival: now, taskID: wire.taskID,
                span: span),
            taskID: wire.taskID, service: wire.service, routing: TaskRouting(wire.routing),
            placement: service.placement, deadline: deadline.map { $0.uptimeNanoseconds / 1_000_000 })
        let (actions, peers) = runtime.withLockedValue { state in
            state.counters.requestsReceived += 1
            return (state.router.arrived(arrival, now: nowMillis), state.peers)
        }
        perform(actions, peers: peers)
    }

    /// Where a task of `service` would be elected now.
    package func locate(service: String, taskID: UInt64) -> TaskLocation<NodeAddress> {
        let offeredHere = registry.lookup(service) != nil
        let now = MonotonicClock.millis()
        return runtime.withLockedValue {
            $0.router.locate(service: service, taskID: taskID, offeredHere: offeredHere, now: now)
        }
    }

    /// True when this node is running or has recently run the task.
    package func knowsTask(_ taskID: UInt64) -> Bool {
        runtime.withLockedValue { $0.router.knows(taskID) }
    }

    /// The node's load for gossip: work running and waiting over capacity.
    package var load: Double { runtime.withLockedValue { $0.router.load } }

    /// Refuses new tasks from now on; running and waiting ones complete.
    package func beginDrain() {
        runtime.withLockedValue { $0.router.beginDrain() }
    }

    /// Counts a TLS handshake that failed (another authority, plain TCP to a TLS port).
    package func recordFailedHandshake() {
        runtime.withLockedValue { $0.counters.tlsHandshakesFailed += 1 }
    }

    /// Counts a request that could not even be decoded.
    package func recordMalformed() {
        runtime.withLockedValue {
            $0.counters.requestsReceived += 1
            $0.counters.failed += 1
        }
    }

    /// Resolves once no task is running or waiting.
    package func whenIdle(on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        idleWaiters.withLockedValue { $0.append(promise) }
        if runtime.withLockedValue({ $0.router.isIdle }) { notifyIdle() }
        return promise.futureResult
    }

    // MARK: Performing the router's actions

    private func perform(_ actions: [NodeTaskRouter.Action], peers: Client?) {
        for action in actions {
            switch action {
            case .run(let task, let admitted):
                if let span = task.span, span.isRecording {
                    span.addEvent(SpanEvent(name: "distri.elected", attributes: ["distri.executor": "self"]))
                }
                run(task, admitted: admitted)
            case .forward(let task, let route, let member, let address):
                if let span = task.span, span.isRecording {
                    span.addEvent(SpanEvent(name: "distri.elected", attributes: ["distri.executor": "\(member)"]))
                }
                forward(task, route: route, member: member, to: address, peers: peers)
            case .askStatus(let route, let taskID, let members):
                askStatus(route: route, taskID: taskID, members: members, peers: peers)
            case .reply(let task, let result):
                task.answer(result)
            case .refuse(let task, let refusal):
                task.answer(.failure(Self.reply(for: refusal)))
            case .becameIdle:
                notifyIdle()
            }
        }
    }

    private func notifyIdle() {
        let waiters = idleWaiters.withLockedValue { waiters in
            defer { waiters = [] }
            return waiters
        }
        for waiter in waiters { waiter.succeed(()) }
    }

    // MARK: Running here

    private func run(_ task: PendingTask, admitted: Bool) {
        // The execution's span, under the request's; the service sees its context.
        var request = task.request
        let execution = tracer.flatMap { tracer in
            task.span.map { parent in
                let span = tracer.startDistriSpan(
                    "distri.execute", context: parent.context, kind: .internal, service: request.service,
                    taskID: task.taskID)
                request.serviceContext = span.context
                return span
            }
        }
        let prepared = request
        switch task.service.execution {
        case .inline(let body):
            let loop = task.responder.eventLoop
            if loop.inEventLoop {
                finish(task, admitted: admitted, result: Self.evaluate { try body(prepared) }, execution: execution)
            } else {
                loop.execute {
                    self.finish(
                        task, admitted: admitted, result: Self.evaluate { try body(prepared) }, execution: execution)
                }
            }
        case .future(let body):
            start(task, prepared, admitted: admitted, execution: execution) { request, loop, done in
                body(request, loop).whenComplete(done)
            }
        case .callback(let body):
            start(task, prepared, admitted: admitted, execution: execution, body)
        case .async(let body):
            Task {
                let result: Result<ByteBuffer, WireErrorReply>
                do {
                    if let context = prepared.serviceContext {
                        result = .success(try await ServiceContext.withValue(context) { try await body(prepared) })
                    } else {
                        result = .success(try await body(prepared))
                    }
                } catch {
                    result = .failure(Self.reply(for: error))
                }
                self.finish(task, admitted: admitted, result: result, execution: execution)
            }
        }
    }

    /// Starts a service that completes later on the connection's event loop.
    private func start(
        _ task: PendingTask, _ request: ServiceRequest, admitted: Bool, execution: (any Span)?,
        _ body: @escaping @Sendable (ServiceRequest, EventLoop, @escaping ServiceCompletion) -> Void
    ) {
        let loop = task.responder.eventLoop
        let start: @Sendable () -> Void = {
            body(request, loop) { result in
                self.finish(task, admitted: admitted, result: result.mapError(Self.reply(for:)), execution: execution)
            }
        }
        if loop.inEventLoop { start() } else { loop.execute(start) }
    }

    private func finish(
        _ task: PendingTask, admitted: Bool, result: Result<ByteBuffer, WireErrorReply>, execution: (any Span)? = nil
    ) {
        if let execution {
            if case .failure(let reply) = result {
                execution.setStatus(SpanStatus(code: .error, message: reply.message))
            }
            execution.end()
        }
        task.answer(result)
        let now = NIODeadline.now()
        let nowMillis = now.uptimeNanoseconds / 1_000_000
        let outcome: String =
            switch result {
            case .success: NodeRuntime.succeeded
            case .failure(let reply): reply.code.description
            }
        // The window keeps a compact copy: a slice would pin the whole receive buffer it came from.
        // A service whose results must not stay on the node leaves none: a retry runs it again.
        let remember = admitted && task.taskID != 0 && task.service.remembersResult
        let kept = remember ? result.map { ByteBuffer(bytes: $0.readableBytesView) } : result
        let cost = 128 + ((try? result.get().readableBytes) ?? 0)
        let (actions, peers, recorder) = runtime.withLockedValue { state in
            let recorder = state.record(
                completedAt: now, arrival: task.arrival, service: task.request.service, outcome: outcome)
            let actions = state.router.executed(
                taskID: task.taskID, admitted: admitted, result: kept, remember: remember, cost: cost, now: nowMillis)
            return (actions, state.peers, recorder)
        }
        recorder?.record(nanoseconds: (now - task.arrival).nanoseconds)
        perform(actions, peers: peers)
    }

    // MARK: Other members

    private func forward(
        _ task: PendingTask, route: RouteID, member: String, to address: NodeAddress, peers: Client?
    ) {
        guard let peers else {
            // Members come with the cluster; a forward before its client is attached fails over.
            let failure = WireErrorReply(code: .unavailable, message: "the node is still joining its cluster")
            let now = MonotonicClock.millis()
            let (actions, peers) = runtime.withLockedValue {
                ($0.router.forwardFinished(route, outcome: .failedRetryable(.failure(failure)), now: now), $0.peers)
            }
            perform(actions, peers: peers)
            return
        }
        let remaining = task.request.deadline.map { $0 - .now() } ?? .seconds(30)
        // The forward's span, under the request's; its context travels to the executor.
        var fields = TraceFields()
        let span = tracer.flatMap { tracer in
            task.span.map { parent in
                let span = tracer.startDistriSpan(
                    "distri.forward", context: parent.context, kind: .client, service: task.request.service,
                    taskID: task.taskID)
                if span.isRecording { span.attributes["distri.executor"] = member }
                fields = tracer.fields(for: span.context)
                return span
            }
        }
        peers.call(
            task.request.data, service: task.request.service, params: task.request.params, node: address,
            timeout: remaining, routing: .local, taskID: task.taskID, traceFields: fields
        ).ending(span).whenComplete { result in
            let outcome: ForwardOutcome<Result<ByteBuffer, WireErrorReply>>
            switch result {
            case .success(let reply):
                outcome = .answered(.success(reply))
            case .failure(let error):
                let retryable = (error as? ClientError).map(Client.isRetryable) ?? false
                if retryable {
                    self.logger.debug(
                        "executor failed, looking elsewhere",
                        metadata: [
                            "task.id": "\(task.taskID)", "service": "\(task.request.service)", "executor": "\(member)",
                            "error": "\(error)",
                        ])
                }
                outcome =
                    retryable ? .failedRetryable(.failure(Self.relay(error))) : .answered(.failure(Self.relay(error)))
            }
            let now = MonotonicClock.millis()
            let (actions, peers) = self.runtime.withLockedValue {
                ($0.router.forwardFinished(route, outcome: outcome, now: now), $0.peers)
            }
            self.perform(actions, peers: peers)
        }
    }

    /// Asks the members whether they have the task and tells the router the first that has.
    private func askStatus(
        route: RouteID, taskID: UInt64, members: [(id: String, address: NodeAddress)], peers: Client?
    ) {
        guard let peers else {
            let now = MonotonicClock.millis()
            let (actions, peers) = runtime.withLockedValue {
                ($0.router.statusAnswered(route, holder: nil, now: now), $0.peers)
            }
            perform(actions, peers: peers)
            return
        }
        let asks = members.map { member in
            peers.call(
                ByteBuffer(), service: BuiltinServices.taskStatus, params: [String(taskID)], node: member.address,
                timeout: .seconds(1), routing: .local, taskID: 0
            ).map { String(buffer: $0) == "known" ? member.id : nil }.recover { _ in nil }
        }
        EventLoopFuture.whenAllComplete(asks, on: peers.eventLoop).whenSuccess { answers in
            let holder = answers.lazy.compactMap { try? $0.get() }.compactMap { $0 }.first
            let now = MonotonicClock.millis()
            let (actions, peers) = self.runtime.withLockedValue {
                ($0.router.statusAnswered(route, holder: holder, now: now), $0.peers)
            }
            self.perform(actions, peers: peers)
        }
    }

    // MARK: Replies

    private static func unknown(_ service: String) -> WireErrorReply {
        WireErrorReply(code: .unknownService, message: "no service named '\(service)'")
    }

    private static func unauthorized(_ service: String) -> WireErrorReply {
        WireErrorReply(
            code: .unauthorized,
            message: "'\(service)' is internal: only CloudNodes with a certificate of this cluster may call it")
    }

    package static func reply(for refusal: TaskRefusal) -> WireErrorReply {
        switch refusal {
        case .busy: WireErrorReply(code: .busy, message: "node at capacity with a full queue")
        case .shuttingDown: WireErrorReply(code: .shuttingDown, message: "node is shutting down")
        case .deadlinePassedInQueue: WireErrorReply(code: .deadlineExceeded, message: "deadline passed while queued")
        case .executorLost: WireErrorReply(code: .unavailable, message: "executor was declared dead")
        }
    }

    private static func relay(_ error: Error) -> WireErrorReply {
        guard let clientError = error as? ClientError else { return reply(for: error) }
        if let code = clientError.remoteCode { return WireErrorReply(code: code, message: clientError.message) }
        if clientError.kind == .deadlineExceeded {
            return WireErrorReply(code: .deadlineExceeded, message: clientError.description)
        }
        return WireErrorReply(code: .unavailable, message: "executor failed: \(clientError)")
    }

    private static func evaluate(_ body: () throws -> ByteBuffer) -> Result<ByteBuffer, WireErrorReply> {
        do {
            return .success(try body())
        } catch {
            return .failure(reply(for: error))
        }
    }

    package static func reply(for error: Error) -> WireErrorReply {
        if let service = error as? ServiceError {
            return WireErrorReply(code: service.code, message: service.message)
        }
        return WireErrorReply(code: .internal, message: "\(error)")
    }
}

extension TaskRouting {
    package init(_ routing: Routing) {
        switch routing {
        case .elect: self = .elect
        case .electRetry: self = .electRetry
        default: self = .local
        }
    }
}

extension RegisteredService {
    /// Where the router places the service's tasks.
    package var placement: TaskPlacement {
        if bypassesAdmission { return .immediate }
        return runsWhereAsked ? .whereAsked : .elected
    }
}
