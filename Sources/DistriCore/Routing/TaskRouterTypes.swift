/// How a request asks to be routed (the wire's routing field, as the router sees it).
public enum TaskRouting: Sendable, Hashable {
    /// Run on the node asked.
    case local
    /// Elect the least-loaded member offering the service.
    case elect
    /// A client's retry of a task: find a member that already has it before electing.
    case electRetry
}

/// Where a service runs, from its registration.
public enum TaskPlacement: Sendable, Hashable {
    /// Answered at once by the node asked, outside admission control (Stats).
    case immediate
    /// On the node asked, within its capacity (the DB services: every node holds a replica).
    case whereAsked
    /// On the member elected by load.
    case elected
}

/// A request as it reaches the ``TaskRouter``.
public struct TaskArrival<Task> {
    /// The shell's handle on the request (its data and where to reply).
    public var task: Task
    /// The caller's task id, the same on every retry; 0 = no deduplication.
    public var taskID: UInt64
    /// The service's name, to find members that offer it.
    public var service: String
    /// How the caller asked for the task to be routed.
    public var routing: TaskRouting
    /// Where the service runs, from its registration.
    public var placement: TaskPlacement
    /// When the caller stops waiting, in monotonic milliseconds; nil = no deadline.
    public var deadline: UInt64?

    /// An arrival with the given fields.
    public init(
        task: Task, taskID: UInt64, service: String, routing: TaskRouting, placement: TaskPlacement,
        deadline: UInt64?
    ) {
        self.task = task
        self.taskID = taskID
        self.service = service
        self.routing = routing
        self.placement = placement
        self.deadline = deadline
    }
}

/// Another member as the router needs it: where to reach it and what it offers.
public struct RoutingMember<Address> {
    /// The member's id.
    public var id: String
    /// Where the member is reached.
    public var address: Address
    /// The services it offers.
    public var services: Set<String>
    /// The member's own report of its load (from gossip; 0 = idle).
    public var load: Double
    /// Tasks it runs at once.
    public var capacity: Int
    /// True when alive: it may be elected. A suspect is listed but not elected; its tasks are not
    /// failed over while it may still be running them.
    public var electable: Bool

    /// A member with the given fields.
    public init(id: String, address: Address, services: Set<String>, load: Double, capacity: Int, electable: Bool) {
        self.id = id
        self.address = address
        self.services = services
        self.load = load
        self.capacity = capacity
        self.electable = electable
    }
}

/// Why the router answers a task without running it.
public enum TaskRefusal: Sendable, Hashable {
    /// At capacity with a full queue.
    case busy
    /// Draining for shutdown.
    case shuttingDown
    /// Its deadline passed while it waited for a slot.
    case deadlinePassedInQueue
    /// Its executor was declared dead after the task's deadline: nowhere left to send it.
    case executorLost
}

/// How a forwarded task ended, as the shell saw it.
public enum ForwardOutcome<Reply> {
    /// The executor answered (a result or a final error): pass it on.
    case answered(Reply)
    /// The call failed where the task may be sent elsewhere (connection refused or lost, busy,
    /// shutting down, unavailable); `reply` is the error to give if it cannot be.
    case failedRetryable(Reply)
}

/// Identifies one forward or one status look-up of a router.
public typealias RouteID = UInt64

/// What the shell must do.
public enum TaskAction<Task, Reply, Address> {
    /// Run the task on this node now. `admitted`: it holds a capacity slot, and the shell reports
    /// ``TaskRouter/executed(taskID:admitted:result:remember:cost:now:)`` when it ends.
    case run(Task, admitted: Bool)
    /// Send the task to `address` (member `member`) to run there, and report
    /// ``TaskRouter/forwardFinished(_:outcome:now:)`` with `route`.
    case forward(Task, route: RouteID, member: String, address: Address)
    /// Ask these members whether they have the task (`TaskStatus`) and report the first holder
    /// with ``TaskRouter/statusAnswered(_:holder:now:)``.
    case askStatus(route: RouteID, taskID: UInt64, members: [(id: String, address: Address)])
    /// Answer the task with this reply (a remembered or forwarded result, or an error).
    case reply(Task, Reply)
    /// Answer the task with a refusal.
    case refuse(Task, TaskRefusal)
    /// Nothing runs or waits any more (for a drain).
    case becameIdle
}

/// What the router counted since it started.
public struct TaskRouterCounters: Sendable, Equatable {
    /// Tasks admitted to run here (or answered at once, for immediate services).
    public var accepted: UInt64 = 0
    /// Tasks refused because the node was at capacity with a full queue.
    public var rejectedBusy: UInt64 = 0
    /// Tasks refused while draining.
    public var refusedDraining: UInt64 = 0
    /// Tasks whose deadline passed while they waited for a slot.
    public var expiredInQueue: UInt64 = 0
    /// Elections this node won (the task ran here).
    public var electionsWon: UInt64 = 0
    /// Tasks sent to another member.
    public var tasksForwarded: UInt64 = 0
    /// Forwards that failed and were sent elsewhere.
    public var failovers: UInt64 = 0
    /// Arrivals answered from, or joined to, an earlier run of the same task.
    public var deduplicated: UInt64 = 0

    /// All counters at zero.
    public init() {}
}

/// Where a task would run, for ``TaskRouter/locate(service:taskID:offeredHere:now:)``.
public enum TaskLocation<Address> {
    /// On this node.
    case here
    /// On the member at this address.
    case member(Address)
    /// No node offers the service.
    case nowhere
}

extension TaskLocation: Sendable where Address: Sendable {}

extension RoutingMember: Sendable where Address: Sendable {}
extension TaskArrival: Sendable where Task: Sendable {}
extension ForwardOutcome: Sendable where Reply: Sendable {}
extension TaskAction: Sendable where Task: Sendable, Reply: Sendable, Address: Sendable {}
