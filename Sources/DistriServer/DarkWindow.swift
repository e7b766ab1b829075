import DistriClient
import DistriCore
import DistriWire
import Synchronization

/// Until when a node stays dark (chaos mode or fault injection): read on every request without a
/// lock, set by the membership shell.
package final class DarkWindow: Sendable {
    private let until = Atomic<UInt64>(0)

    /// True while the node is dark.
    package var isDark: Bool {
        let until = until.load(ordering: .relaxed)
        return until != 0 && MonotonicClock.millis() < until
    }

    /// The monotonic millisecond the node comes back.
    package var endsAt: UInt64 { until.load(ordering: .relaxed) }

    /// Keeps the node dark until `millis` (monotonic).
    package func darken(until millis: UInt64) {
        until.store(millis, ordering: .relaxed)
    }
}
