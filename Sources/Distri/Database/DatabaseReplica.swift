import DistriCore
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Tracing

/// Runs a node's ``DistriCore/ReplicaEngine``: feeds it client operations, peer requests, answers and
/// clock ticks, and performs what it asks (sends over the internal `Replicate` service, appends to the
/// optional write-ahead log, completes callers' futures). The engine sits behind one lock that each
/// event is in and out of quickly, so requests stay on their own event loops.
final class DatabaseReplica: Sendable {
    static let replicateService = "Replicate"

    let nodeID: String
    let limits: DatabaseLimits
    private let state: NodeLock<State>
    private let durable: DurableLog?
    private let cluster = NodeLock<(shell: MembershipShell, peers: Client)?>(nil)
    /// Replication links, one client per event loop of the node's group: a push leaves from the loop
    /// that flushed it and its acknowledgement completes there, with no hop between threads.
    private let links = NodeLock<LoopLinks?>(nil)
    private let ticker = NodeLock<RepeatedTask?>(nil)
    private let stopped = NodeLock(false)
    private let logger: Logger
    /// Where the replica's spans go: writes, and the replication messages sent while a traced write
    /// waits (pushes, compare-and-set phases); nil: none.
    private let tracer: (any Tracer)?

    private struct State {
        var engine: ReplicaEngine
        var writeWaiters: [UInt64: WriteWaiter] = [:]
        var readWaiters: [UInt64: EventLoopPromise<Void>] = [:]
        var nextOperation: UInt64 = 1
        var flushScheduled = false
        var known: Set<String> = []
        var alive: Set<String> = []
        var antiEntropyBytes: UInt64 = 0
        var recoveredEntries = 0
        /// Operations that arrived before the first sync of a node that joined through seeds.
        var notReady: [@Sendable () -> Void]? = nil
        var readySince: UInt64 = 0

        /// True when the caller must schedule the flush (none is scheduled yet).
        mutating func claimFlush() -> Bool {
            defer { flushScheduled = true }
            return !flushScheduled
        }
    }

    init(
        nodeID: String, limits: DatabaseLimits, dataDirectory: String?, logger: Logger, tracer: (any Tracer)? = nil
    ) throws {
        self.tracer = tracer
        self.nodeID = nodeID
        self.limits = limits
        self.logger = logger
        var generator = SystemRandomNumberGenerator()
        var settings = limits.replication
        // With a log, a peer answers a push only after its group commit: a second push in flight lets
        // the next changes join the peer's next group while the previous one syncs, instead of
        // waiting for its answer (measured in BENCHMARKS.md, "Durable writes with group commit").
        if dataDirectory != nil { settings.pushWindow = max(settings.pushWindow, 2) }
        var engine = ReplicaEngine(
            node: nodeID, epoch: generator.next(), seed: generator.next(), settings: settings)
        var recovered = 0
        if let dataDirectory {
            let (log, entries, truncated) = try DurableLog.open(directory: dataDirectory)
            engine.restore(entries, now: Self.wallMillis())
            recovered = entries.count
            durable = log
            logger.info(
                "replica recovered from its log",
                metadata: [
                    "entries": "\(entries.count)", "documents": "\(engine.store.counts.values.reduce(0, +))",
                    "truncated.bytes": "\(truncated)", "dir": "\(dataDirectory)",
                ])
            log.compact(engine.snapshot())
        } else {
            durable = nil
        }
        var initial = State(engine: engine)
        initial.recoveredEntries = recovered
        state = NodeLock(initial)
        // A failed log write fails every write waiting (none can count this replica as holding it).
        durable?.onFailure { [weak self] failure in self?.failWaitingWrites(failure) }
    }

    /// Connects the replica to the cluster and starts its timer. A node that joins through seeds
    /// holds its clients' operations until its first sync with a peer (at most `catchUpMillis`), so a
    /// restarted empty node does not answer "not found" for what the others hold.
    func attach(shell: MembershipShell, peers: Client, group: EventLoopGroup, joining: Bool) {
        cluster.withLockedValue { $0 = (shell, peers) }
        links.withLockedValue { $0 = LoopLinks(group: group, template: peers) }
        if joining {
            let now = Self.wallMillis()
            state.withLockedValue {
                $0.notReady = []
                $0.readySince = now + limits.catchUpMillis
            }
        }
        let task = peers.eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(20)) { [self] _ in
            tick(shell: shell)
        }
        ticker.withLockedValue { $0 = task }
    }

    /// True once ``stop()`` began: timers of the services built on the replica end then.
    var isStopped: Bool { stopped.withLockedValue { $0 } }

    func stop() async {
        stopped.withLockedValue { $0 = true }
        ticker.withLockedValue { $0?.cancel() }
        durable?.close()
        let clients = links.withLockedValue { links in
            defer { links = nil }
            return links?.clients ?? []
        }
        for client in clients { await client.shutdown() }
    }

    static func wallMillis() -> UInt64 {
        UInt64(max(0, Date().timeIntervalSince1970 * 1000))
    }

    // MARK: Client operations

    /// Applies a write and completes once the consistency asked for is met. `idempotencyKey` (the
    /// call's task id; 0: none) goes into the documents written: a write whose key they hold already
    /// is answered without being applied again (see ``ReplicaEngine/perform``).
    func write(
        _ operation: DatabaseOperation, consistency: WriteConsistency, idempotencyKey: UInt64 = 0,
        deadline: NIODeadline?, context: ServiceContext? = nil, on loop: EventLoop
    ) -> EventLoopFuture<WriteReceipt> {
        let promise = loop.makePromise(of: WriteReceipt.self)
        write(
            operation, consistency: consistency, idempotencyKey: idempotencyKey, deadline: deadline, context: context,
            on: loop
        ) {
            promise.completeWith($0)
        }
        return promise.futureResult
    }

    /// Applies a write and calls `completion` on `loop` once the consistency asked for is met: the
    /// hottest writes save the futures of the other form. Under a traced `context` the write is a
    /// `distri.db.write` span, and the replication messages sent while it waits are its children.
    func write(
        _ operation: DatabaseOperation, consistency: WriteConsistency, idempotencyKey: UInt64 = 0,
        deadline: NIODeadline?, context: ServiceContext? = nil, on loop: EventLoop,
        completion: @escaping WriteWaiter.Completion
    ) {
        if let tracer, let context {
            let span = tracer.startSpan("distri.db.write", context: context, ofKind: .internal)
            if span.isRecording {
                span.attributes["db.system"] = "distri"
                span.attributes["distri.db.consistency"] = consistency.rawValue
            }
            return write(
                operation, consistency: consistency, idempotencyKey: idempotencyKey, deadline: deadline, span: span,
                on: loop
            ) { result in
                if case .failure(let error) = result {
                    span.recordError(error)
                    span.setStatus(SpanStatus(code: .error))
                }
                span.end()
                completion(result)
            }
        }
        write(
            operation, consistency: consistency, idempotencyKey: idempotencyKey, deadline: deadline, span: nil,
            on: loop, completion: completion)
    }

    private func write(
        _ operation: DatabaseOperation, consistency: WriteConsistency, idempotencyKey: UInt64, deadline: NIODeadline?,
        span: (any Span)?, on loop: EventLoop, completion: @escaping WriteWaiter.Completion
    ) {
        if let waiting = whenReady(on: loop) {
            waiting.whenComplete { _ in
                self.write(
                    operation, consistency: consistency, idempotencyKey: idempotencyKey, deadline: deadline, span: span,
                    on: loop, completion: completion)
            }
            return
        }
        if let failure = durable?.failure { return completion(.failure(Self.logFailed(failure))) }
        let now = Self.wallMillis()
        let expires = now + Self.millis(until: deadline, default: limits.defaultTimeoutMillis)
        let durable = self.durable
        let (actions, ticket, scheduleFlush) = state.withLockedValue { state in
            let id = state.nextOperation
            state.nextOperation += 1
            var actions = state.engine.perform(
                operation, consistency: consistency, id: id, now: now, deadline: expires,
                idempotencyKey: idempotencyKey)
            // The write's own entries are queued in the log's forming group before any push can
            // carry them (pushes leave from the engine's outbox, under this lock), and the write
            // remembers their ticket: it completes only once they are durable here too.
            var ticket: DurableLog.Ticket?
            if let durable, case .persist(let entries) = actions.first {
                ticket = durable.append(entries)
                actions.removeFirst()
            }
            state.writeWaiters[id] = WriteWaiter(
                loop: loop, completion: completion, context: span?.context, ticket: ticket)
            return (actions, ticket, state.claimFlush())
        }
        if let durable, let ticket, !actions.isEmpty, !durable.isDurable(ticket) {
            durable.whenDurable(ticket) { _ in self.perform(actions) }
        } else {
            perform(actions)
        }
        if scheduleFlush { loop.execute { self.flush() } }
    }

    /// Runs `body` on the local store once the read's consistency and session are met.
    func read<T: Sendable>(
        consistency: ReadConsistency, session: SessionToken?, deadline: NIODeadline?, on loop: EventLoop,
        _ body: @escaping @Sendable (DocumentStore) throws -> T
    ) -> EventLoopFuture<T> {
        if let waiting = whenReady(on: loop) {
            return waiting.flatMap {
                self.read(consistency: consistency, session: session, deadline: deadline, on: loop, body)
            }
        }
        let promise = loop.makePromise(of: Void.self)
        let now = Self.wallMillis()
        let expires = now + Self.millis(until: deadline, default: limits.defaultTimeoutMillis)
        let (actions, scheduleFlush) = state.withLockedValue { state in
            let id = state.nextOperation
            state.nextOperation += 1
            state.readWaiters[id] = promise
            let actions = state.engine.prepareRead(
                id: id, consistency: consistency, session: session, now: now, deadline: expires)
            return (actions, state.claimFlush())
        }
        perform(actions)
        // Reads that wait for peers share the pulls of the flush at the end of this event-loop turn.
        if scheduleFlush { loop.execute { self.flush() } }
        return promise.futureResult.flatMapThrowing { _ in
            try self.state.withLockedValue { try body($0.engine.store) }
        }
    }

    /// Nil once the replica is ready; else a future that completes when it is.
    private func whenReady(on loop: EventLoop) -> EventLoopFuture<Void>? {
        guard state.withLockedValue({ $0.notReady != nil }) else { return nil }
        let promise = loop.makePromise(of: Void.self)
        let queued = state.withLockedValue { state -> Bool in
            guard state.notReady != nil else { return false }
            state.notReady?.append { promise.succeed(()) }
            return true
        }
        guard queued else {
            promise.succeed(())
            return nil
        }
        return promise.futureResult
    }

    /// Releases operations held until the first sync.
    private func releaseIfReady(now: UInt64) {
        let waiting = state.withLockedValue { state -> [@Sendable () -> Void] in
            guard let waiting = state.notReady, state.engine.hasSynced || now >= state.readySince else { return [] }
            state.notReady = nil
            return waiting
        }
        for resume in waiting { resume() }
    }

    /// Reads the local store as it is now.
    func withStore<T>(_ body: (DocumentStore) throws -> T) rethrows -> T {
        try state.withLockedValue { try body($0.engine.store) }
    }

    private static func millis(until deadline: NIODeadline?, default fallback: UInt64) -> UInt64 {
        guard let deadline else { return fallback }
        return UInt64(max(1, (deadline - .now()).nanoseconds / 1_000_000))
    }

    // MARK: Peer requests

    /// A peer's `Replicate` request: answers once anything it changed is durable. After a log write
    /// failed, only pulls are answered: this replica must not count as holding what it cannot keep.
    func handle(_ bytes: ByteBuffer, from peer: String, on loop: EventLoop) -> EventLoopFuture<ByteBuffer> {
        let request: ReplicaRequest
        do {
            request = try ReplicaCodec.decodeRequest(Array(buffer: bytes))
        } catch {
            return loop.makeFailedFuture(ServiceError(.malformed, "bad replication request: \(error)"))
        }
        if let failure = durable?.failure {
            guard case .pull = request else { return loop.makeFailedFuture(Self.logFailed(failure)) }
        }
        let now = Self.wallMillis()
        let (response, actions) = state.withLockedValue { $0.engine.handle(request, from: peer, now: now) }
        let reply = ByteBuffer(bytes: ReplicaCodec.encode(response))
        let persisted = actions.flatMap { action -> [PersistedEntry] in
            if case .persist(let entries) = action { return entries }
            return []
        }
        guard let durable, !persisted.isEmpty else { return loop.makeSucceededFuture(reply) }
        // The answer (an acknowledgement that counts towards a quorum) leaves once the changes are
        // durable here: in the group forming now, written with one fdatasync for every push in it.
        let promise = loop.makePromise(of: ByteBuffer.self)
        durable.append(persisted, on: loop) { failure in
            if let failure { promise.fail(Self.logFailed(failure)) } else { promise.succeed(reply) }
        }
        return promise.futureResult
    }

    // MARK: Performing actions

    private func flush() {
        let now = Self.wallMillis()
        let actions = state.withLockedValue { state in
            state.flushScheduled = false
            return state.engine.flush(now: now)
        }
        perform(actions)
    }

    private func tick(shell: MembershipShell) {
        let now = Self.wallMillis()
        let (known, alive) = shell.replicaPeers()
        let (actions, released) = state.withLockedValue { state in
            let released = state.engine.takeReleased()
            var actions: [ReplicaAction] = []
            if known != state.known || alive != state.alive {
                state.known = known
                state.alive = alive
                actions += state.engine.setPeers(known: known, alive: alive, now: now)
            }
            actions += state.engine.tick(now: now)
            return (actions, released)
        }
        // What a drop let go of is freed on another thread: a big collection takes long to free.
        if !released.isEmpty {
            DispatchQueue.global(qos: .utility).async { withExtendedLifetime(released) {} }
        }
        perform(actions)
        releaseIfReady(now: now)
        if let durable, durable.failure == nil,
            durable.entriesSinceCompaction > limits.compactionEntries
                || durable.bytesSinceCompaction > max(limits.compactionBytes, durable.snapshotBytes)
        {
            // The snapshot and its place among the appends are taken together: entries queued
            // before go to the old log (the snapshot holds them), later ones after it.
            let (snapshot, reservation) = state.withLockedValue { ($0.engine.snapshot(), durable.reserveCompaction()) }
            durable.compact(reservation, snapshot: snapshot)
        }
    }

    private func perform(_ actions: [ReplicaAction]) {
        for (index, action) in actions.enumerated() {
            switch action {
            case .persist(let entries):
                guard let durable else { continue }
                let ticket = durable.append(entries)
                guard index + 1 < actions.count else { return }
                // Later actions wait for the entries (a failure fails the waiting writes on its own).
                let rest = Array(actions[(index + 1)...])
                durable.whenDurable(ticket) { _ in self.perform(rest) }
                return
            case .send(let peer, let number, let request):
                send(request, number: number, to: peer)
            case .completed(let id, let result):
                guard let waiter = state.withLockedValue({ $0.writeWaiters.removeValue(forKey: id) }) else { continue }
                complete(waiter, with: result.mapError { ServiceError($0) as any Error })
            case .readable(let id, let result):
                let promise = state.withLockedValue { $0.readWaiters.removeValue(forKey: id) }
                switch result {
                case .success: promise?.succeed(())
                case .failure(let error): promise?.fail(ServiceError(error))
                }
            }
        }
    }

    /// Completes a write once what it wrote is durable on this node too: peers acknowledge a push only
    /// once it is on their disk, and this replica counts itself among the holders at once, so its own
    /// entries (the write's ticket, or everything queued so far for a write without one) must be on
    /// disk before the write is acknowledged. Usually they are, and the write completes at once.
    private func complete(_ waiter: WriteWaiter, with result: Result<WriteReceipt, any Error>) {
        guard let durable, case .success = result else { return waiter.complete(result) }
        let ticket = waiter.ticket ?? durable.lastQueued
        if durable.isDurable(ticket) { return waiter.complete(result) }
        durable.whenDurable(ticket, on: waiter.loop) { failure in
            waiter.complete(failure.map { .failure(Self.logFailed($0)) } ?? result)
        }
    }

    /// The error of a write refused, or left in doubt, because this node's log failed.
    private static func logFailed(_ failure: String) -> ServiceError {
        ServiceError(
            DatabaseError(
                .unavailable,
                "this node's write-ahead log failed (\(failure)): it refuses writes until restarted; "
                    + "a write in progress may still have reached other replicas"))
    }

    /// Fails every write still waiting: none of them can count this replica as holding it.
    private func failWaitingWrites(_ failure: String) {
        let waiting = state.withLockedValue { state in
            defer { state.writeWaiters = [:] }
            return Array(state.writeWaiters.values)
        }
        for waiter in waiting { waiter.complete(.failure(Self.logFailed(failure))) }
    }

    /// Breaks the log file, as a full disk would (tests).
    func breakLogForTesting() {
        durable?.closeFileForTesting()
    }

    private func send(_ request: ReplicaRequest, number: UInt64, to peer: String) {
        guard let cluster = cluster.withLockedValue({ $0 }), let address = cluster.shell.address(of: peer) else {
            let now = Self.wallMillis()
            perform(state.withLockedValue { $0.engine.requestFailed(number, now: now) })
            return
        }
        let client =
            links.withLockedValue { $0?.client(on: MultiThreadedEventLoopGroup.currentEventLoop) }
            ?? cluster.peers
        let isPull = if case .pull = request { true } else { false }
        let (span, fields) = replicationSpan(request, to: peer)
        client.call(
            ByteBuffer(bytes: ReplicaCodec.encode(request)), service: Self.replicateService, params: [nodeID],
            node: address, timeout: .milliseconds(Int64(limits.peerTimeoutMillis)), routing: .local, taskID: 0,
            traceFields: fields
        ).ending(span).whenComplete { result in
            // Decoded before taking the lock: a pull's answer can be big, and other loops wait on it.
            let answer = try? result.flatMap { bytes in
                Result { (bytes.readableBytes, try ReplicaCodec.decodeResponse(Array(buffer: bytes))) }
            }.get()
            let now = Self.wallMillis()
            let actions = self.state.withLockedValue { state -> [ReplicaAction] in
                guard let (bytes, response) = answer else { return state.engine.requestFailed(number, now: now) }
                if isPull { state.antiEntropyBytes += UInt64(bytes) }
                return state.engine.receive(response, for: number, now: now)
            }
            self.perform(actions)
        }
    }

    /// A span for a replication message sent while a traced write waits (under that write's span:
    /// with several writes waiting, one of them), and the context to send with it. Nothing when no
    /// traced write waits: anti-entropy and idle pushes start no traces of their own.
    private func replicationSpan(_ request: ReplicaRequest, to peer: String) -> ((any Span)?, TraceFields) {
        guard let tracer else { return (nil, TraceFields()) }
        let (parent, waiting) = state.withLockedValue { state in
            (state.writeWaiters.values.lazy.compactMap(\.context).first, state.writeWaiters.count)
        }
        guard let parent else { return (nil, TraceFields()) }
        let name =
            switch request {
            case .push: "distri.db.push"
            case .pull: "distri.db.pull"
            case .prepare: "distri.db.cas.prepare"
            case .propose: "distri.db.cas.propose"
            case .commit: "distri.db.cas.commit"
            }
        let span = tracer.startSpan(name, context: parent, ofKind: .client)
        if span.isRecording {
            span.attributes["distri.peer"] = peer
            span.attributes["distri.db.writes.waiting"] = waiting
        }
        return (span, tracer.fields(for: span.context))
    }

    // MARK: Stats

    /// The replica's figures for the node's stats.
    func stats() -> DatabaseStats {
        state.withLockedValue { state in
            var stats = DatabaseStats(
                documents: state.engine.store.counts, tombstones: state.engine.tombstoneCount,
                replicationLag: state.engine.lag, antiEntropyBytes: state.antiEntropyBytes,
                antiEntropyChanges: state.engine.antiEntropyChanges, changeSequence: state.engine.changeSequence,
                durable: durable != nil, recoveredEntries: state.recoveredEntries, storageError: durable?.failure)
            stats.pushesSent = state.engine.pushesSent
            stats.changesPushed = state.engine.changesPushed
            stats.compareAndSet = CompareAndSetStats(
                rounds: state.engine.casRounds, contentions: state.engine.casContentions,
                conditionFailures: state.engine.casConditionFailures)
            if let counters = durable?.counters {
                stats.writeAheadLog = WriteAheadLogStats(
                    bytesAppended: counters.bytesAppended, syncs: counters.syncs,
                    syncSeconds: Double(counters.syncNanoseconds) / 1e9)
            }
            return stats
        }
    }
}

/// A write's caller: its completion runs on its event loop.
struct WriteWaiter: Sendable {
    typealias Completion = @Sendable (Result<WriteReceipt, any Error>) -> Void
    let loop: EventLoop
    let completion: Completion
    /// The trace context of the write's span, if it is traced.
    var context: ServiceContext? = nil
    /// The write's own entries in the node's write-ahead log, when it has one and the write wrote any.
    var ticket: DurableLog.Ticket? = nil

    func complete(_ result: Result<WriteReceipt, any Error>) {
        if loop.inEventLoop {
            completion(result)
        } else {
            loop.execute { completion(result) }
        }
    }
}

extension ServiceError {
    init(_ error: DatabaseError) {
        let code: ErrorCode =
            switch error.kind {
            case .notFound: .notFound
            case .exists: .conflict
            case .badRequest: .badParams
            case .conditionFailed: .conflict
            case .unavailable: .unavailable
            case .limit: .tooLarge
            }
        self.init(code, error.message)
    }
}
