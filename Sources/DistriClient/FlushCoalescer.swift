import NIOCore

/// When a connection's handler flushes what it wrote: once at the end of a read burst for writes made
/// while reading, and once at the end of the current event-loop turn for writes made outside one (the
/// replies a replication acknowledgement completes together), so a burst leaves in one syscall.
package struct FlushCoalescer {
    @usableFromInline var isReading = false
    @usableFromInline var hasUnflushed = false
    @usableFromInline var isScheduled = false

    @inlinable package init() {}

    @inlinable package mutating func readStarted() {
        isReading = true
    }

    /// Notes a write; true when the caller must schedule a flush for the end of this turn (and then
    /// call ``scheduledFlushRuns()`` there).
    @inlinable package mutating func wrote() -> Bool {
        hasUnflushed = true
        guard !isReading, !isScheduled else { return false }
        isScheduled = true
        return true
    }

    /// The read burst ended: true when there is something to flush.
    @inlinable package mutating func readCompleted() -> Bool {
        isReading = false
        return takeUnflushed()
    }

    /// The scheduled flush runs: true when there is (still) something to flush.
    @inlinable package mutating func scheduledFlushRuns() -> Bool {
        isScheduled = false
        return takeUnflushed()
    }

    @inlinable mutating func takeUnflushed() -> Bool {
        defer { hasUnflushed = false }
        return hasUnflushed
    }
}

/// A channel handler whose flushes a ``FlushCoalescer`` decides.
package protocol CoalescingFlushes: AnyObject {
    var flushes: FlushCoalescer { get set }
    /// The handler's context while it is in a pipeline.
    var context: ChannelHandlerContext? { get }
}

extension CoalescingFlushes {
    /// Call after a write: flushes at the end of the read burst, or else at the end of this
    /// event-loop turn. On the event loop.
    @inlinable package func flushSoon(_ context: ChannelHandlerContext) {
        guard flushes.wrote() else { return }
        context.eventLoop.assumeIsolated().execute { [self] in
            if flushes.scheduledFlushRuns() { self.context?.flush() }
        }
    }
}
