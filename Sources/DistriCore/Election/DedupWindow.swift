import DequeModule

/// Remembers recent tasks by id so that a retried request is answered with the first run's result
/// (or joins the run in progress) instead of running twice. Pure: time comes in as milliseconds.
public struct DedupWindow<Result, Waiter> {
    /// What to do with an arriving task.
    public enum Decision {
        /// New: run it, then call ``DedupWindow/finish(_:result:cost:now:)``.
        case run
        /// The same task is running: its waiters get the result when it finishes.
        case wait
        /// The same task finished recently: answer with its result.
        case replay(Result)
    }

    @usableFromInline enum Entry {
        case running([Waiter])
        case finished(Result)
    }

    /// Most finished tasks remembered.
    public let capacity: Int
    /// How long a finished task is remembered, in milliseconds.
    public let retention: UInt64
    /// Most total cost (for example bytes of results) remembered.
    public let costBudget: Int
    @usableFromInline var totalCost = 0
    @usableFromInline var entries: [UInt64: Entry] = [:]
    /// Finished tasks, oldest first, with what expiry needs: no table lookup until one goes.
    @usableFromInline var finishedOrder: Deque<(taskID: UInt64, at: UInt64, cost: Int)> = []

    /// A window of at most `capacity` tasks, kept `retention` milliseconds, and `costBudget` bytes of results.
    public init(capacity: Int = 100_000, retention: UInt64 = 120_000, costBudget: Int = 64 << 20) {
        self.capacity = capacity
        self.retention = retention
        self.costBudget = costBudget
    }

    /// Tasks remembered, running or finished.
    @inlinable
    public var count: Int { entries.count }

    /// True when the task is running or finished recently here.
    @inlinable
    public func knows(_ taskID: UInt64) -> Bool { entries[taskID] != nil }

    /// Registers an arriving task.
    @inlinable
    public mutating func begin(_ taskID: UInt64, waiter: Waiter, now: UInt64) -> Decision {
        expire(now: now)
        switch entries[taskID] {
        case nil:
            entries[taskID] = .running([])
            return .run
        case .running(var waiters):
            waiters.append(waiter)
            entries[taskID] = .running(waiters)
            return .wait
        case .finished(let result):
            return .replay(result)
        }
    }

    /// Records the result of a run and returns the waiters that joined it.
    @inlinable
    public mutating func finish(_ taskID: UInt64, result: Result, cost: Int = 0, now: UInt64) -> [Waiter] {
        guard case .running(let waiters) = entries[taskID] else { return [] }
        entries[taskID] = .finished(result)
        totalCost += cost
        finishedOrder.append((taskID, now, cost))
        expire(now: now)
        return waiters
    }

    /// Forgets a run that ended without a result worth replaying (for example, refused as busy), so a
    /// retry runs it; returns its waiters, who should be told to retry.
    @inlinable
    public mutating func abandon(_ taskID: UInt64) -> [Waiter] {
        guard case .running(let waiters) = entries[taskID] else { return [] }
        entries[taskID] = nil
        return waiters
    }

    @inlinable
    mutating func expire(now: UInt64) {
        while let (oldest, at, cost) = finishedOrder.first {
            guard finishedOrder.count > capacity || totalCost > costBudget || now >= at &+ retention else { break }
            finishedOrder.removeFirst()
            entries[oldest] = nil
            totalCost -= cost
        }
    }
}

extension DedupWindow: Sendable where Result: Sendable, Waiter: Sendable {}
extension DedupWindow.Entry: Sendable where Result: Sendable, Waiter: Sendable {}
