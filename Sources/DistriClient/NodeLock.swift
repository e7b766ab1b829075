import NIOConcurrencyHelpers
import Synchronization

/// A value behind a lock: every lock the node's code takes is one of these. In debug builds each
/// acquisition is counted process-wide (``LockAcquisitions``), so a test can count the locks one
/// request takes; release builds count nothing.
package struct NodeLock<Value> {
    @usableFromInline let box: NIOLockedValueBox<Value>

    @inlinable package init(_ value: Value) {
        box = NIOLockedValueBox(value)
    }

    /// Runs `body` with the value, holding the lock.
    @inlinable package func withLockedValue<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        #if DEBUG
            LockAcquisitions.counter.add(1, ordering: .relaxed)
        #endif
        return try box.withLockedValue(body)
    }
}

extension NodeLock: Sendable where Value: Sendable {}

/// The process-wide count of ``NodeLock`` acquisitions (debug builds only; 0 in release builds).
package enum LockAcquisitions {
    @usableFromInline package static let counter = Atomic<Int>(0)

    /// Acquisitions so far.
    package static var count: Int { counter.load(ordering: .relaxed) }
}
