import DistriCore
import DistriWire
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Runs requests on a node: looks the service up, elects the executor (this node, or another one it
/// forwards to), deduplicates retries, applies admission control, runs the service inline or as a
/// task, replies, and records stats. Shared by all of a node's connections.
final class RequestDispatcher: Sendable {
    let registry: ServiceRegistry
    let runtime: NIOLockedValueBox<NodeRuntime>
    let capacity: Int
    private let cluster = NIOLockedValueBox<(shell: MembershipShell, peers: Client)?>(nil)
    private let idleWaiters = NIOLockedValueBox<[EventLoopPromise<Void>]>([])
    private let logger: Logger

    init(registry: ServiceRegistry, runtime: NodeRuntime, capacity: Int, logger: Logger) {
        self.registry = registry
        self.runtime = NIOLockedValueBox(runtime)
        self.capacity = capacity
        self.logger = logger
    }

    /// Connects the dispatcher to the cluster once the node has started.
    func attach(shell: MembershipShell, peers: Client) {
        cluster.withLockedValue { $0 = (shell, peers) }
    }

    /// Handles one decoded request. Every path ends in exactly one reply, except while chaos mode
    /// keeps the node dark, when requests are dropped as a dead node would drop them.
    func dispatch(_ wire: WireRequest, responder: Responder, caller: Caller = .unchecked) {
        let now = NIODeadline.now()
        let request = ServiceRequest(
            service: wire.service, params: wire.params, data: wire.data, requestID: responder.requestID,
            deadline: wire.deadlineMillis == 0 ? nil : now + .milliseconds(Int64(wire.deadlineMillis)),
            taskID: wire.taskID, isRetry: wire.routing == .electRetry, caller: caller)
        let cluster = self.cluster.withLockedValue { $0 }
        if let cluster, cluster.shell.isDark { return }
        let service = registry.lookup(wire.service)
        // Every request is counted once, here; the paths below count only what becomes of it.
        let refused = service?.nodesOnly == true && !caller.mayCallNodeServices
        runtime.withLockedValue { state in
            state.counters.requestsReceived += 1
            if service == nil || refused { state.counters.failed += 1 }
            if refused { state.counters.unauthorizedCalls += 1 }
            if service?.bypassesAdmission == true, !refused { state.counters.accepted += 1 }
        }
        guard let service else {
            responder.reply(
                .failure(WireErrorReply(code: .unknownService, message: "no service named '\(wire.service)'")))
            return
        }
        guard !refused else {
            logger.notice(
                "refused an internal service to a caller without a node certificate",
                metadata: ["service": "\(wire.service)"])
            responder.reply(
                .failure(
                    WireErrorReply(
                        code: .unauthorized,
                        message:
                            "'\(wire.service)' is internal: only CloudNodes with a certificate of this cluster may call it"
                    )))
            return
        }
        let task = PendingTask(
            service: service, request: request, responder: responder, arrival: now, taskID: wire.taskID)
        switch (cluster, wire.routing) {
        case _ where service.bypassesAdmission:
            run(task, counted: false)
        case _ where service.runsWhereAsked:
            runLocally(task)
        case (let cluster?, .electRetry) where wire.taskID != 0:
            retry(task, wire: wire, cluster: cluster)
        case (let cluster?, .elect):
            elect(task, wire: wire, cluster: cluster, excluded: [])
        default:
            runLocally(task)
        }
    }

    /// The address of the node that would be elected for a task of `service` now.
    func locate(service: String, taskID: UInt64) -> NodeAddress? {
        guard let cluster = cluster.withLockedValue({ $0 }) else { return nil }
        let load = runtime.withLockedValue { $0.admission.load }
        let local = registry.lookup(service) != nil
        let candidates = cluster.shell.candidates(for: service, localLoad: load, localCapacity: capacity, excluding: [])
            .filter { $0.id != cluster.shell.localID || local }
        guard let executor = cluster.shell.elect(candidates, taskID: taskID) else { return nil }
        return cluster.shell.address(of: executor.id)
    }

    /// Counts a TLS handshake that failed (another authority, plain TCP to a TLS port).
    func recordFailedHandshake() {
        runtime.withLockedValue { $0.counters.tlsHandshakesFailed += 1 }
    }

    /// Counts a request that could not even be decoded.
    func recordMalformed() {
        runtime.withLockedValue {
            $0.counters.requestsReceived += 1
            $0.counters.failed += 1
        }
    }

    /// Resolves once no task is running or waiting.
    func whenIdle(on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        idleWaiters.withLockedValue { $0.append(promise) }
        if runtime.withLockedValue({ $0.admission.isIdle }) { notifyIdle() }
        return promise.futureResult
    }

    // MARK: Running here

    private func runLocally(_ task: PendingTask) {
        let nowMillis = MonotonicClock.millis()
        let decision = runtime.withLockedValue { state -> Admitted in
            if task.taskID != 0 {
                switch state.dedup.begin(task.taskID, waiter: task.responder, now: nowMillis) {
                case .wait: return .duplicate(nil)
                case .replay(let result): return .duplicate(result)
                case .run: break
                }
            }
            let decision = state.admission.admit(task)
            switch decision {
            case .start, .queued: state.counters.accepted += 1
            case .busy: state.counters.rejectedBusy += 1
            case .shuttingDown: state.counters.failed += 1
            }
            return .admission(decision)
        }
        switch decision {
        case .duplicate(let result):
            cluster.withLockedValue { $0 }?.shell.countDeduplicated()
            if let result { task.responder.reply(result) }
        case .admission(.start):
            run(task, counted: true)
        case .admission(.queued):
            break
        case .admission(.busy):
            refuse(task, WireErrorReply(code: .busy, message: "node at capacity with a full queue"))
        case .admission(.shuttingDown):
            refuse(task, WireErrorReply(code: .shuttingDown, message: "node is shutting down"))
        }
    }

    private enum Admitted {
        case duplicate(Result<ByteBuffer, WireErrorReply>?)
        case admission(AdmissionControl<PendingTask>.Decision)
    }

    /// Answers a task that did not run; retries of it (and waiters on it) may run it later.
    private func refuse(_ task: PendingTask, _ reply: WireErrorReply) {
        let waiters = task.taskID == 0 ? [] : runtime.withLockedValue { $0.dedup.abandon(task.taskID) }
        task.responder.reply(.failure(reply))
        for waiter in waiters { waiter.reply(.failure(reply)) }
    }

    private func notifyIdle() {
        let waiters = idleWaiters.withLockedValue { waiters in
            defer { waiters = [] }
            return waiters
        }
        for waiter in waiters { waiter.succeed(()) }
    }

    private func run(_ task: PendingTask, counted: Bool) {
        if let deadline = task.request.deadline, deadline < .now() {
            finish(
                task, counted: counted,
                result: .failure(WireErrorReply(code: .deadlineExceeded, message: "deadline passed while queued")))
            return
        }
        switch task.service.execution {
        case .inline(let body):
            let loop = task.responder.eventLoop
            if loop.inEventLoop {
                finish(task, counted: counted, result: Self.evaluate { try body(task.request) })
            } else {
                loop.execute { self.finish(task, counted: counted, result: Self.evaluate { try body(task.request) }) }
            }
        case .future(let body):
            start(task, counted: counted) { request, loop, done in body(request, loop).whenComplete(done) }
        case .callback(let body):
            start(task, counted: counted, body)
        case .async(let body):
            Task {
                let result: Result<ByteBuffer, WireErrorReply>
                do {
                    result = .success(try await body(task.request))
                } catch {
                    result = .failure(Self.reply(for: error))
                }
                self.finish(task, counted: counted, result: result)
            }
        }
    }

    /// Starts a service that completes later on the connection's event loop.
    private func start(
        _ task: PendingTask, counted: Bool,
        _ body: @escaping @Sendable (ServiceRequest, EventLoop, @escaping ServiceCompletion) -> Void
    ) {
        let loop = task.responder.eventLoop
        let start: @Sendable () -> Void = {
            body(task.request, loop) { result in
                self.finish(task, counted: counted, result: result.mapError(Self.reply(for:)))
            }
        }
        if loop.inEventLoop { start() } else { loop.execute(start) }
    }

    private func finish(_ task: PendingTask, counted: Bool, result: Result<ByteBuffer, WireErrorReply>) {
        task.responder.reply(result)
        let now = NIODeadline.now()
        let nowMillis = MonotonicClock.millis()
        let succeeded = if case .success = result { true } else { false }
        // The window keeps a compact copy: a slice would pin the whole receive buffer it came from.
        // A service whose results must not stay on the node leaves none: a retry runs it again.
        let remembers = counted && task.taskID != 0 && task.service.remembersResult
        let remembered = remembers ? result.map { ByteBuffer(bytes: $0.readableBytesView) } : nil
        let cost = 128 + ((try? result.get().readableBytes) ?? 0)
        let (next, idle, waiters) = runtime.withLockedValue { state -> (PendingTask?, Bool, [Responder]) in
            state.record(completedAt: now, arrival: task.arrival, succeeded: succeeded)
            let waiters: [Responder] =
                if let remembered {
                    state.dedup.finish(task.taskID, result: remembered, cost: cost, now: nowMillis)
                } else if counted && task.taskID != 0 {
                    state.dedup.abandon(task.taskID)
                } else {
                    []
                }
            guard counted else { return (nil, false, waiters) }
            let next = state.admission.finish()
            return (next, state.admission.isIdle, waiters)
        }
        for waiter in waiters { waiter.reply(result) }
        if let next { run(next, counted: true) }
        if idle { notifyIdle() }
    }

    /// True when this node is running or has recently run the task.
    func knowsTask(_ taskID: UInt64) -> Bool {
        runtime.withLockedValue { $0.dedup.knows(taskID) }
    }

    /// A retried task: if a member already has it (running or finished), send it there so it runs at
    /// most once; otherwise elect as usual. Asks only the members offering the service, only on retries.
    private func retry(
        _ task: PendingTask, wire: WireRequest, cluster: (shell: MembershipShell, peers: Client),
        excluded: Set<String> = []
    ) {
        if knowsTask(wire.taskID) {
            runLocally(task)
            return
        }
        let others = cluster.shell.candidates(
            for: wire.service, localLoad: 0, localCapacity: capacity, excluding: excluded
        )
        .filter { $0.id != cluster.shell.localID }
        let asks = others.compactMap { candidate -> EventLoopFuture<ElectionCandidate?>? in
            guard let address = cluster.shell.address(of: candidate.id) else { return nil }
            return cluster.peers.call(
                ByteBuffer(), service: BuiltinServices.taskStatus, params: [String(wire.taskID)], node: address,
                timeout: .seconds(1), routing: .local, taskID: 0
            ).map { String(buffer: $0) == "known" ? candidate : nil }.recover { _ in nil }
        }
        let loop = task.responder.eventLoop
        EventLoopFuture.whenAllComplete(asks, on: loop).whenSuccess { answers in
            let holder = answers.compactMap { try? $0.get() }.compactMap { $0 }.first
            var elect = wire
            elect.routing = .elect
            if let holder {
                self.forward(task, wire: elect, to: holder, cluster: cluster, excluded: excluded)
            } else {
                self.elect(task, wire: elect, cluster: cluster, excluded: excluded)
            }
        }
    }

    /// Elects among the alive members offering the service, except `excluded`, and runs here or
    /// forwards to the winner.
    private func elect(
        _ task: PendingTask, wire: WireRequest, cluster: (shell: MembershipShell, peers: Client),
        excluded: Set<String>
    ) {
        let load = runtime.withLockedValue { $0.admission.load }
        let candidates = cluster.shell.candidates(
            for: wire.service, localLoad: load, localCapacity: capacity, excluding: excluded)
        guard let next = cluster.shell.elect(candidates, taskID: wire.taskID), next.id != cluster.shell.localID
        else {
            cluster.shell.countElectionWon()
            runLocally(task)
            return
        }
        forward(task, wire: wire, to: next, cluster: cluster, excluded: excluded)
    }

    // MARK: Forwarding to the elected node

    private func forward(
        _ task: PendingTask, wire: WireRequest, to executor: ElectionCandidate,
        cluster: (shell: MembershipShell, peers: Client), excluded: Set<String>
    ) {
        guard let address = cluster.shell.address(of: executor.id) else {
            cluster.shell.countElectionWon()
            runLocally(task)
            return
        }
        let remaining = task.request.deadline.map { $0 - .now() } ?? .seconds(30)
        cluster.shell.startedForward(to: executor.id)
        // Whichever comes first settles the forward: the executor's reply, or the membership
        // declaring it dead (a cut-off executor would otherwise hold the task until its deadline).
        let settled = NIOLockedValueBox(false)
        let settle: @Sendable () -> Bool = {
            settled.withLockedValue { done in
                defer { done = true }; return !done
            }
        }
        let token = cluster.shell.watchDown(executor.id) {
            guard settle() else { return }
            self.handleForwardResult(
                .failure(ClientError(.connectionLost, node: address, message: "executor was declared dead")),
                task: task, wire: wire, executor: executor, cluster: cluster, excluded: excluded)
        }
        cluster.peers.call(
            wire.data, service: wire.service, params: wire.params, node: address, timeout: remaining,
            routing: .local, taskID: wire.taskID
        ).whenComplete { result in
            cluster.shell.unwatch(executor.id, token: token)
            guard settle() else { return }
            self.handleForwardResult(
                result, task: task, wire: wire, executor: executor, cluster: cluster, excluded: excluded)
        }
    }

    private func handleForwardResult(
        _ result: Result<ByteBuffer, Error>, task: PendingTask, wire: WireRequest, executor: ElectionCandidate,
        cluster: (shell: MembershipShell, peers: Client), excluded: Set<String>
    ) {
        switch result {
        case .success(let reply):
            cluster.shell.finishedForward(to: executor.id, failedOver: false)
            task.responder.reply(.success(reply))
        case .failure(let error):
            let clientError = error as? ClientError
            let retry = clientError.map(Client.isRetryable) ?? false
            cluster.shell.finishedForward(to: executor.id, failedOver: retry)
            guard retry, task.request.deadline.map({ $0 > .now() }) ?? true else {
                task.responder.reply(.failure(Self.relay(error)))
                return
            }
            self.logger.debug(
                "executor failed, electing another",
                metadata: ["executor": "\(executor.id)", "error": "\(error)"])
            // The executor may have run it: look for a member that has it before electing again.
            self.retry(task, wire: wire, cluster: cluster, excluded: excluded.union([executor.id]))
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

    private static func reply(for error: Error) -> WireErrorReply {
        if let service = error as? ServiceError {
            return WireErrorReply(code: service.code, message: service.message)
        }
        return WireErrorReply(code: .internal, message: "\(error)")
    }
}
