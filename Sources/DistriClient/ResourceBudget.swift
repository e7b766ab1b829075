import Synchronization

/// A node-wide allowance of one resource (bytes, pixels) shared by every connection, event loop and
/// task: reserve before holding more, release when done. Lock-free; never blocks.
package final class ResourceBudget: Sendable {
    /// The most that may be reserved at once.
    package let capacity: Int
    private let used = Atomic<Int>(0)
    private let refusedCount = Atomic<Int>(0)

    package init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    /// What is reserved now.
    package var reserved: Int { used.load(ordering: .relaxed) }

    /// Reservations refused so far.
    package var refusals: Int { refusedCount.load(ordering: .relaxed) }

    /// What a holder may keep and still draw on the small holders' headroom.
    package static let smallHolding = 64 << 10

    /// Reserves `amount` when it fits under the capacity, and says whether it did (nothing is
    /// reserved when it does not). Two reservations racing near the top may both be refused where one
    /// would have fitted: never both granted beyond the capacity.
    ///
    /// A holder that will hold at most ``smallHolding`` bytes (`holdingAfter`: a well-behaved
    /// client's small request split across reads) may go an eighth beyond the capacity: large
    /// unfinished messages that fill the budget then do not shut out small ones. So at most 1.125 ×
    /// the capacity is ever reserved.
    package func reserve(_ amount: Int, holdingAfter: Int = .max) -> Bool {
        guard amount > 0 else { return true }
        let limit = holdingAfter <= Self.smallHolding ? capacity + capacity / 8 : capacity
        let total = used.add(amount, ordering: .relaxed).newValue
        guard total <= limit else {
            used.subtract(amount, ordering: .relaxed)
            refusedCount.add(1, ordering: .relaxed)
            return false
        }
        return true
    }

    /// Gives back `amount` reserved earlier.
    package func release(_ amount: Int) {
        guard amount > 0 else { return }
        used.subtract(amount, ordering: .relaxed)
    }
}
