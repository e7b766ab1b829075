/// Decides where each task runs, as a pure value: admission to this node's capacity, the dedup
/// window that makes a retried task run at most once, the election by load among the members that
/// offer the service, forwarding to the winner, failover when the executor fails or is declared
/// dead, and the look-up of a member that already has a retried task.
///
/// Events come in (``arrived(_:now:)``, ``forwardFinished(_:outcome:now:)``,
/// ``statusAnswered(_:holder:now:)``, ``executed(taskID:admitted:result:remember:cost:now:)``,
/// ``membersChanged(_:now:)``); each returns the ``TaskAction``s for the shell to perform. Time comes in
/// as monotonic milliseconds and randomness from a seeded generator, so a simulation drives the very
/// code the nodes run. `Task` is the shell's handle on a request, `Reply` its answer, `Address` where
/// a member is reached.
public struct TaskRouter<Task, Reply, Address> {
    /// What the router asks its shell to do.
    public typealias Action = TaskAction<Task, Reply, Address>

    /// Limits and policies. Defaults suit a node of 64 slots.
    public struct Settings: Sendable {
        /// Tasks run at once.
        public var capacity: Int
        /// Tasks waiting for a slot beyond that; more are refused as busy.
        public var queueLimit: Int
        /// How the router scores members when it elects.
        public var election: ElectionPolicy
        /// How long a member that just became alive is scored as warming up (0 = not at all).
        public var warmUpMillis: UInt64
        /// The dedup window's bounds: finished tasks remembered, for how long, and their bytes.
        public var dedupCapacity: Int
        /// How long a finished task stays in the dedup window, in milliseconds.
        public var dedupRetentionMillis: UInt64
        /// Bytes of results the dedup window may hold.
        public var dedupBytes: Int

        /// Settings with the given values; every argument has a default.
        public init(
            capacity: Int = 64, queueLimit: Int = 1024, election: ElectionPolicy = .init(), warmUpMillis: UInt64 = 0,
            dedupCapacity: Int = 100_000, dedupRetentionMillis: UInt64 = 120_000, dedupBytes: Int = 64 << 20
        ) {
            self.capacity = capacity
            self.queueLimit = queueLimit
            self.election = election
            self.warmUpMillis = warmUpMillis
            self.dedupCapacity = dedupCapacity
            self.dedupRetentionMillis = dedupRetentionMillis
            self.dedupBytes = dedupBytes
        }
    }

    /// A task waiting for a slot.
    @usableFromInline struct Queued {
        @usableFromInline var task: Task
        @usableFromInline var taskID: UInt64
        @usableFromInline var deadline: UInt64?

        @inlinable init(task: Task, taskID: UInt64, deadline: UInt64?) {
            self.task = task
            self.taskID = taskID
            self.deadline = deadline
        }
    }

    /// A task being routed elsewhere: forwarded, or waiting for a status look-up.
    @usableFromInline struct Routed {
        @usableFromInline var task: Task
        @usableFromInline var taskID: UInt64
        @usableFromInline var service: String
        @usableFromInline var deadline: UInt64?
        /// Members that failed it already.
        @usableFromInline var excluded: Set<String>

        @inlinable init(task: Task, taskID: UInt64, service: String, deadline: UInt64?, excluded: Set<String>) {
            self.task = task
            self.taskID = taskID
            self.service = service
            self.deadline = deadline
            self.excluded = excluded
        }
    }

    /// This node's member id.
    public let localID: String
    /// The router's settings.
    public let settings: Settings
    @usableFromInline var admission: AdmissionControl<Queued>
    @usableFromInline var dedup: DedupWindow<Reply, Task>
    /// The other members, sorted by id (a stable order keeps elections deterministic).
    @usableFromInline var members: [RoutingMember<Address>] = []
    @usableFromInline var aliveSince: [String: UInt64] = [:]
    /// Tasks forwarded to each member and not settled: fresher than the member's gossiped load.
    @usableFromInline var outstanding: [String: Int] = [:]
    @usableFromInline var forwards: [RouteID: (routed: Routed, member: String)] = [:]
    @usableFromInline var lookups: [RouteID: Routed] = [:]
    @usableFromInline var lastRoute: RouteID = 0
    @usableFromInline var random: SplitMix64
    /// What the router counted; only the router changes it.
    public var counters = TaskRouterCounters()

    /// A router for the node `localID`; `seed` drives the rare random choice of large elections.
    public init(localID: String, settings: Settings = .init(), seed: UInt64) {
        self.localID = localID
        self.settings = settings
        admission = AdmissionControl(capacity: settings.capacity, queueLimit: settings.queueLimit)
        dedup = DedupWindow(
            capacity: settings.dedupCapacity, retention: settings.dedupRetentionMillis,
            costBudget: settings.dedupBytes)
        random = SplitMix64(seed: seed)
    }

    // MARK: State for the shell

    /// Work running and waiting here, over capacity: 0 when idle, 1 when every slot is taken.
    @inlinable
    public var load: Double { admission.load }
    /// Tasks running here now.
    @inlinable
    public var inFlight: Int { admission.inFlight }
    /// Tasks waiting here for a slot.
    @inlinable
    public var queued: Int { admission.queued }
    /// Whether nothing runs or waits here.
    @inlinable
    public var isIdle: Bool { admission.isIdle }
    /// Whether the node is draining: it admits no new task.
    @inlinable
    public var isDraining: Bool { admission.isDraining }
    /// Forwards not settled yet.
    @inlinable
    public var forwardsInFlight: Int { forwards.count }

    /// True when this node runs or has recently run the task (the `TaskStatus` answer).
    @inlinable
    public func knows(_ taskID: UInt64) -> Bool { dedup.knows(taskID) }

    /// Refuse new tasks from now on; running and waiting ones still complete.
    @inlinable
    public mutating func beginDrain() { admission.beginDrain() }

    // MARK: Events

    /// A request arrived.
    @inlinable
    public mutating func arrived(_ arrival: TaskArrival<Task>, now: UInt64) -> [Action] {
        switch (arrival.placement, arrival.routing) {
        case (.immediate, _):
            counters.accepted += 1
            return [.run(arrival.task, admitted: false)]
        case (.whereAsked, _), (.elected, .local):
            return runHere(arrival.task, taskID: arrival.taskID, deadline: arrival.deadline, now: now)
        case (.elected, .elect):
            return elect(Routed(arrival), now: now)
        case (.elected, .electRetry):
            return lookUp(Routed(arrival), now: now)
        }
    }

    /// A task this node ran has ended with `result`. `remember`: keep the result for retries of the
    /// same task (off for results that must not stay on the node); `cost`: its size, for the bound.
    @inlinable
    public mutating func executed(
        taskID: UInt64, admitted: Bool, result: Reply, remember: Bool, cost: Int, now: UInt64
    ) -> [Action] {
        guard admitted else { return [] }
        var actions: [Action] = []
        if taskID != 0 {
            let waiters =
                remember
                ? dedup.finish(taskID, result: result, cost: cost, now: now) : dedup.abandon(taskID)
            for waiter in waiters { actions.append(.reply(waiter, result)) }
        }
        var next = admission.finish()
        while let waiting = next, let deadline = waiting.deadline, deadline <= now {
            counters.expiredInQueue += 1
            actions += refuse(waiting.task, taskID: waiting.taskID, .deadlinePassedInQueue)
            next = admission.finish()
        }
        if let next { actions.append(.run(next.task, admitted: true)) }
        if admission.isIdle { actions.append(.becameIdle) }
        return actions
    }

    /// A forward ended. Ignored when it was settled already (its executor was declared dead).
    @inlinable
    public mutating func forwardFinished(_ route: RouteID, outcome: ForwardOutcome<Reply>, now: UInt64) -> [Action] {
        guard let (routed, member) = settleForward(route) else { return [] }
        switch outcome {
        case .answered(let reply):
            return [.reply(routed.task, reply)]
        case .failedRetryable(let reply):
            counters.failovers += 1
            if let deadline = routed.deadline, deadline <= now { return [.reply(routed.task, reply)] }
            var again = routed
            again.excluded.insert(member)
            // The executor may have run it: look for a member that has it before electing again.
            return lookUp(again, now: now)
        }
    }

    /// The answers to an ``TaskAction/askStatus(route:taskID:members:)``: the first member that has
    /// the task, or nil.
    @inlinable
    public mutating func statusAnswered(_ route: RouteID, holder: String?, now: UInt64) -> [Action] {
        guard let routed = lookups.removeValue(forKey: route) else { return [] }
        if let holder, let member = member(holder) { return forward(routed, to: member) }
        return elect(routed, now: now)
    }

    /// The membership changed: `view` lists every other member not declared dead or gone (alive ones
    /// electable, suspects not). Tasks forwarded to a member no longer listed fail over.
    @inlinable
    public mutating func membersChanged(_ view: [RoutingMember<Address>], now: UInt64) -> [Action] {
        let previous = members
        members = view.filter { $0.id != localID }.sorted { $0.id < $1.id }
        var stillListed = Set<String>()
        for member in members {
            stillListed.insert(member.id)
            if !member.electable {
                aliveSince[member.id] = nil
            } else if aliveSince[member.id] == nil {
                aliveSince[member.id] = now
            }
        }
        var actions: [Action] = []
        for gone in previous where !stillListed.contains(gone.id) {
            aliveSince[gone.id] = nil
            actions += failOver(from: gone.id, now: now)
        }
        return actions
    }

    /// Where a task of `service` would be elected now, for a client that sends large requests
    /// straight there. `offeredHere`: this node serves it.
    @inlinable
    public mutating func locate(service: String, taskID: UInt64, offeredHere: Bool, now: UInt64) -> TaskLocation<
        Address
    > {
        var candidates = candidates(for: service, excluding: [], now: now)
        if !offeredHere { candidates.removeAll { $0.id == localID } }
        guard
            let winner = Election.elect(
                candidates, local: localID, taskID: taskID, policy: settings.election, random: &random)
        else { return .nowhere }
        if winner.id == localID { return .here }
        return member(winner.id).map { .member($0.address) } ?? .nowhere
    }
}

extension TaskRouter.Routed {
    @inlinable init(_ arrival: TaskArrival<Task>) {
        self.init(
            task: arrival.task, taskID: arrival.taskID, service: arrival.service, deadline: arrival.deadline,
            excluded: [])
    }
}

extension TaskRouter: Sendable where Task: Sendable, Reply: Sendable, Address: Sendable {}
extension TaskRouter.Queued: Sendable where Task: Sendable {}
extension TaskRouter.Routed: Sendable where Task: Sendable {}
