import NIOConcurrencyHelpers

/// Puts the chunks of a transfer back in order at the recipient. A sender keeps several chunks in
/// flight, and each `Deliver` call runs as its own task (a relay forwards them concurrently too), so
/// a chunk may arrive before the one it follows; instead of being refused (and sent again), it
/// waits here until the bytes before it are appended, at most ``maxWait``, then is taken or
/// answered with what the recipient holds. At most ``maxWaiters`` chunks wait at once on a daemon.
final class DeliveryOrder: Sendable {
    static let maxWaiters = 256
    static let maxWait = Duration.seconds(2)

    private struct Waiter {
        var transfer: String
        var offset: Int
        var continuation: CheckedContinuation<Void, Never>
    }

    private let state = NIOLockedValueBox<(next: UInt64, waiters: [UInt64: Waiter])>((1, [:]))

    /// Waits until ``appended(_:have:)`` reports `transfer` holding at least `offset` bytes, or
    /// ``maxWait`` passes, or the task is cancelled; returns at once when too many chunks wait.
    func waitTurn(_ transfer: String, offset: Int) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: Self.maxWait) }
            group.addTask { await self.suspend(transfer, offset: offset) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Wakes the chunks of `transfer` whose offset the recipient now holds (or passed).
    func appended(_ transfer: String, have: Int) {
        let ready = state.withLockedValue { state in
            let ids = state.waiters.filter { $0.value.transfer == transfer && $0.value.offset <= have }.map(\.key)
            return ids.compactMap { state.waiters.removeValue(forKey: $0)?.continuation }
        }
        for continuation in ready { continuation.resume() }
    }

    private func suspend(_ transfer: String, offset: Int) async {
        let id = state.withLockedValue { state in
            defer { state.next += 1 }
            return state.next
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let admitted = state.withLockedValue { state in
                    guard state.waiters.count < Self.maxWaiters, !Task.isCancelled else { return false }
                    state.waiters[id] = Waiter(transfer: transfer, offset: offset, continuation: continuation)
                    return true
                }
                if !admitted { continuation.resume() }
            }
        } onCancel: {
            state.withLockedValue { $0.waiters.removeValue(forKey: id) }?.continuation.resume()
        }
    }
}
