import NIOConcurrencyHelpers

/// Puts the chunks of a transfer back in order at the recipient. A sender keeps several chunks in
/// flight, and each `Deliver` call runs as its own task (a relay forwards them concurrently too), so
/// a chunk may arrive before the one it follows; instead of being refused (and sent again), it
/// waits here until the bytes before it are appended, at most ``maxWait``, then is taken or
/// answered with what the recipient holds. At most ``maxWaiters`` chunks wait at once on a daemon.
///
/// The bytes each transfer holds are recorded here as well as in its file, under the same lock as
/// the waiters, so a chunk appended between a waiter's look at the file and its registration still
/// wakes it. At most ``maxTransfers`` transfers are remembered (the oldest are forgotten first; a
/// forgotten one falls back to the file's size).
final class DeliveryOrder: Sendable {
    static let maxWaiters = 256
    static let maxTransfers = 1024
    static let maxWait = Duration.seconds(2)

    private struct Waiter {
        var transfer: String
        var offset: Int
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var next: UInt64 = 1
        var waiters: [UInt64: Waiter] = [:]
        /// Bytes held per transfer, with the order they were first seen in.
        var held: [String: (bytes: Int, seen: UInt64)] = [:]
    }

    private let state = NIOLockedValueBox(State())

    /// Waits until `transfer` holds at least `offset` bytes (`current`: what its file holds now), or
    /// ``maxWait`` passes, or the task is cancelled; returns at once when too many chunks wait.
    func waitTurn(_ transfer: String, offset: Int, current: Int) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: Self.maxWait) }
            group.addTask { await self.suspend(transfer, offset: offset, current: current) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Records that `transfer` holds `have` bytes and wakes the chunks that may go on.
    func appended(_ transfer: String, have: Int) {
        let ready = state.withLockedValue { state in
            let seen = state.held[transfer]?.seen ?? state.next
            state.next += 1
            state.held[transfer] = (max(have, state.held[transfer]?.bytes ?? 0), seen)
            if state.held.count > Self.maxTransfers,
                let oldest = state.held.min(by: { $0.value.seen < $1.value.seen })?.key
            {
                state.held[oldest] = nil
            }
            let ids = state.waiters.filter { $0.value.transfer == transfer && $0.value.offset <= have }.map(\.key)
            return ids.compactMap { state.waiters.removeValue(forKey: $0)?.continuation }
        }
        for continuation in ready { continuation.resume() }
    }

    /// Forgets a transfer that ended.
    func finished(_ transfer: String) {
        state.withLockedValue { _ = $0.held.removeValue(forKey: transfer) }
    }

    private func suspend(_ transfer: String, offset: Int, current: Int) async {
        let id = state.withLockedValue { state in
            defer { state.next += 1 }
            return state.next
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let waits = state.withLockedValue { state in
                    let held = max(current, state.held[transfer]?.bytes ?? 0)
                    guard held < offset, state.waiters.count < Self.maxWaiters, !Task.isCancelled else { return false }
                    state.waiters[id] = Waiter(transfer: transfer, offset: offset, continuation: continuation)
                    return true
                }
                if !waits { continuation.resume() }
            }
        } onCancel: {
            state.withLockedValue { $0.waiters.removeValue(forKey: id) }?.continuation.resume()
        }
    }
}
