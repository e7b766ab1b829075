import DequeModule

/// Decides, for each arriving task, whether it starts now, waits in a bounded queue, or is refused at
/// once as busy. Pure: the shell holds the tickets' meaning and runs what this returns.
///
/// A node never drops a task silently: every ticket given to ``admit(_:)`` is either started at once,
/// returned later by ``finish()``, or refused in the returned decision. (A waiting ticket whose
/// deadline passed is answered by the shell when ``finish()`` hands it over.)
public struct AdmissionControl<Ticket> {
    /// What to do with an arriving ticket.
    public enum Decision {
        /// Run it now.
        case start
        /// It waits; ``finish()`` hands it back when a slot frees up.
        case queued
        /// At capacity with a full queue: refuse it, nothing was done.
        case busy
        /// The node is draining for shutdown: refuse it.
        case shuttingDown
    }

    /// Most tasks running at once.
    public let capacity: Int
    /// Most tasks waiting for a slot.
    public let queueLimit: Int
    /// Tasks running now.
    public var inFlight: Int { running }
    @usableFromInline var running = 0
    /// True once ``beginDrain()`` was called.
    public var isDraining: Bool { draining }
    @usableFromInline var draining = false
    @usableFromInline var waiting: Deque<Ticket> = []

    /// Admission with `capacity` slots and at most `queueLimit` tasks waiting.
    public init(capacity: Int, queueLimit: Int) {
        precondition(capacity > 0, "capacity must be positive")
        precondition(queueLimit >= 0, "queueLimit must not be negative")
        self.capacity = capacity
        self.queueLimit = queueLimit
    }

    /// Tasks waiting for a slot.
    @inlinable
    public var queued: Int { waiting.count }

    /// No task is running or waiting.
    @inlinable
    public var isIdle: Bool { inFlight == 0 && waiting.isEmpty }

    /// Work in flight and waiting, over capacity: 0 when idle, 1 when every slot is taken.
    @inlinable
    public var load: Double { Double(inFlight + waiting.count) / Double(capacity) }

    /// Decides what happens to an arriving ticket.
    @inlinable
    public mutating func admit(_ ticket: Ticket) -> Decision {
        if isDraining { return .shuttingDown }
        if inFlight < capacity {
            running += 1
            return .start
        }
        if waiting.count < queueLimit {
            waiting.append(ticket)
            return .queued
        }
        return .busy
    }

    /// A running task finished. Returns the next waiting ticket, which now holds the freed slot and
    /// must be started by the caller.
    @inlinable
    public mutating func finish() -> Ticket? {
        precondition(inFlight > 0, "finish() without a running task")
        if let next = waiting.popFirst() { return next }
        running -= 1
        return nil
    }

    /// Refuse new tickets from now on; running and waiting ones still complete.
    @inlinable
    public mutating func beginDrain() {
        draining = true
    }
}

extension AdmissionControl: Sendable where Ticket: Sendable {}
