import DistriCore
import DistriWire
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Runs requests on a node: looks the service up, applies admission control, runs the service inline
/// or as a task, replies, and records stats. Shared by all of a node's connections.
final class RequestDispatcher: Sendable {
    let registry: ServiceRegistry
    let runtime: NIOLockedValueBox<NodeRuntime>
    private let idleWaiters = NIOLockedValueBox<[EventLoopPromise<Void>]>([])
    private let logger: Logger

    init(registry: ServiceRegistry, runtime: NodeRuntime, logger: Logger) {
        self.registry = registry
        self.runtime = NIOLockedValueBox(runtime)
        self.logger = logger
    }

    /// Handles one decoded request. Every path ends in exactly one reply.
    func dispatch(_ wire: WireRequest, responder: Responder) {
        let now = NIODeadline.now()
        let request = ServiceRequest(
            service: wire.service, params: wire.params, data: wire.data, requestID: responder.requestID,
            deadline: wire.deadlineMillis == 0 ? nil : now + .milliseconds(Int64(wire.deadlineMillis)))
        guard let service = registry.lookup(wire.service) else {
            runtime.withLockedValue {
                $0.counters.requestsReceived += 1
                $0.counters.failed += 1
            }
            responder.reply(
                .failure(
                    WireErrorReply(code: .unknownService, message: "no service named '\(wire.service)'")))
            return
        }
        let task = PendingTask(service: service, request: request, responder: responder, arrival: now)
        if service.bypassesAdmission {
            runtime.withLockedValue {
                $0.counters.requestsReceived += 1
                $0.counters.accepted += 1
            }
            run(task, counted: false)
            return
        }
        let decision = runtime.withLockedValue { state -> AdmissionControl<PendingTask>.Decision in
            state.counters.requestsReceived += 1
            let decision = state.admission.admit(task)
            switch decision {
            case .start, .queued: state.counters.accepted += 1
            case .busy: state.counters.rejectedBusy += 1
            case .shuttingDown: state.counters.failed += 1
            }
            return decision
        }
        switch decision {
        case .start:
            run(task, counted: true)
        case .queued:
            break
        case .busy:
            responder.reply(
                .failure(WireErrorReply(code: .busy, message: "node at capacity with a full queue")))
        case .shuttingDown:
            responder.reply(
                .failure(WireErrorReply(code: .shuttingDown, message: "node is shutting down")))
        }
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
                result: .failure(
                    WireErrorReply(code: .deadlineExceeded, message: "deadline passed while queued")))
            return
        }
        switch task.service.execution {
        case .inline(let body):
            let loop = task.responder.eventLoop
            if loop.inEventLoop {
                finish(task, counted: counted, result: Self.evaluate { try body(task.request) })
            } else {
                loop.execute {
                    self.finish(task, counted: counted, result: Self.evaluate { try body(task.request) })
                }
            }
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

    private func finish(
        _ task: PendingTask, counted: Bool, result: Result<ByteBuffer, WireErrorReply>
    ) {
        task.responder.reply(result)
        let now = NIODeadline.now()
        let succeeded = if case .success = result { true } else { false }
        let (next, idle) = runtime.withLockedValue { state -> (PendingTask?, Bool) in
            state.record(completedAt: now, arrival: task.arrival, succeeded: succeeded)
            guard counted else { return (nil, false) }
            let next = state.admission.finish()
            return (next, state.admission.isIdle)
        }
        if let next { run(next, counted: true) }
        if idle { notifyIdle() }
    }

    private static func evaluate(_ body: () throws -> ByteBuffer) -> Result<
        ByteBuffer, WireErrorReply
    > {
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
