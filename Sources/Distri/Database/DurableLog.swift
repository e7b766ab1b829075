import DistriCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Group commit for a replica's write-ahead log.
///
/// Appends from any event loop are encoded once, straight into the framed bytes of the group that is
/// forming (no buffer of their own, no copy later); one thread of the log's own writes a whole group
/// with one `write` and one `fdatasync`, and while it does, the next group forms. The busier the log,
/// the bigger its groups and the fewer syncs per entry; an idle log syncs an append at once.
///
/// Appends are numbered (``Ticket``) in the order they were queued and reach the disk in that order:
/// ``isDurable(_:)`` tells, without a lock, whether an append is on disk, and ``whenDurable(_:then:)``
/// runs a continuation once it is, so that a caller waits only where it must and a write whose entries
/// are already durable costs no hop to the log's thread and back.
///
/// The first write error is final: nothing more is written (the log would have a hole), every waiting
/// and later continuation is told the error, and the failure handler (``onFailure(_:)``) runs once.
/// A compaction takes its place in the same order (``reserveCompaction()``): appends queued before it
/// go to the old log, later ones after the snapshot, so none is lost under the snapshot.
final class DurableLog: Sendable {
    /// The number of an append, from 1, in the order appends were queued.
    typealias Ticket = UInt64
    /// Runs once an append is durable (nil), or with the log's write error.
    typealias Continuation = @Sendable (_ failure: String?) -> Void

    /// Spare buffers above this capacity are dropped once written, so a burst does not pin its memory.
    private static let maxSpareCapacity = 4 << 20

    /// The shortest time from the start of one sync to the start of the next after a big group (a busy
    /// log, see `busyGroupRecords`). An fdatasync on this machine's ext4 costs 40-55 µs of CPU (0.1-0.2 ms
    /// of wall time idle, about 1 ms under load), plus its thread's sleep and wake-up and a wake-up of
    /// the loops waiting; unpaced, each node of the bench's cloud synced 600-750 times a second, about 15
    /// entries a group. Paced, a busy log syncs at most a thousand times a second and its groups grow.
    /// After a small group (a lone writer, a quiet log) the next append syncs at once.
    /// `DISTRI_WAL_SYNC_INTERVAL_US` overrides it, for experiments.
    static let busySyncInterval: Duration = .microseconds(syncIntervalMicros)

    /// Records in a group from which the log counts as busy (see `drain`).
    private static let busyGroupRecords = 8

    private static let syncIntervalMicros: Int64 = {
        if let text = getenv("DISTRI_WAL_SYNC_INTERVAL_US"), let value = Int64(String(cString: text)), value >= 0 {
            return value
        }
        return 1000
    }()

    /// Work for the log's thread that was sealed before the group forming now.
    private enum Step {
        /// Records of appends up to and including `through`.
        case records(WriteAheadLogBatch, through: Ticket)
        /// Replace the log with a snapshot; nil while the snapshot is still being encoded.
        case compaction(id: UInt64, snapshot: WriteAheadLogBatch?)
    }

    /// A continuation waiting for a ticket; with a loop, it runs there, together with the others of
    /// its group for that loop (one wake-up of the loop per group, not one per continuation).
    private struct Waiter {
        var ticket: Ticket
        var loop: (any EventLoop)?
        var continuation: Continuation
    }

    private struct Queue {
        /// Sealed work, in order, before `forming`.
        var steps: [Step] = []
        /// The group forming: framed records of the appends up to `queued` not in `steps`.
        var forming = WriteAheadLogBatch()
        /// The buffer of the last group written, emptied, for the next group to form in.
        var spare: WriteAheadLogBatch?
        /// The last ticket handed out.
        var queued: Ticket = 0
        /// Continuations waiting for their ticket to be durable.
        var waiting: [Waiter] = []
        /// True while the log's thread has work or is working.
        var writing = false
        var failed: String?
        var failureHandler: (@Sendable (String) -> Void)?
        /// True once the failure handler was called (by the log's thread).
        var failureReported = false
        var compactions: UInt64 = 0
        var sinceCompaction = 0
        var bytesSinceCompaction = 0
        var snapshotBytes = 0
        /// The log's counters after its last append or compaction (read here, so the stats never wait
        /// for a sync in progress).
        var counters = WriteAheadLogCounters()
    }

    private let log: LockedLog
    private let queue = NodeLock(Queue())
    /// Every append up to this ticket is on disk. Stored under `queue`'s lock, read without it.
    private let durableThrough = Atomic<UInt64>(0)
    private let pool: NIOThreadPool
    let directory: String

    /// Opens the log in `directory` and returns it with the entries it recovered.
    static func open(directory: String) throws -> (DurableLog, [PersistedEntry], truncatedBytes: Int) {
        let wal = try WriteAheadLog(directory: directory)
        let (records, truncated) = try wal.recover()
        var entries: [PersistedEntry] = []
        entries.reserveCapacity(records.count)
        for (index, record) in records.enumerated() {
            // An intact record (its checksum held) that does not decode was written by another version
            // of Distri, or this one has a bug: refuse to start rather than drop it and what follows
            // (the compaction at start would make the loss permanent).
            do {
                entries.append(try ReplicaCodec.decodeEntry(record))
            } catch {
                throw StorageError(
                    "\(directory): log record \(index + 1) of \(records.count) is intact but unreadable by this "
                        + "version (\(error)); start the version that wrote it, or move the directory away to "
                        + "refill this node from the others")
            }
        }
        let log = DurableLog(log: wal, directory: directory)
        log.queue.withLockedValue { $0.counters = wal.counters }
        return (log, entries, truncated)
    }

    private init(log: WriteAheadLog, directory: String) {
        self.log = LockedLog(log)
        self.directory = directory
        self.pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
    }

    /// Sets what runs, once, when a write of the log fails (on the log's thread).
    func onFailure(_ handler: @escaping @Sendable (_ failure: String) -> Void) {
        queue.withLockedValue { $0.failureHandler = handler }
    }

    // MARK: Appending

    /// Queues `entries` in the group forming and returns their ticket. Cheap enough to call under the
    /// replica's lock, so that an append is queued before anything can depend on it.
    @discardableResult
    func append(_ entries: [PersistedEntry]) -> Ticket {
        let (ticket, start) = queue.withLockedValue { queue -> (Ticket, Bool) in
            queue.queued += 1
            guard queue.failed == nil else { return (queue.queued, false) }
            let before = queue.forming.bytes.count
            for entry in entries {
                do {
                    try queue.forming.append { ReplicaCodec.encode(entry, appendingTo: &$0) }
                } catch {
                    // An entry over the record limit: nothing the replica could keep. Final, as a
                    // failed write is, so that no later entry lands after the hole.
                    queue.failed = "\(directory): \(error)"
                    return (queue.queued, claimWriter(&queue))
                }
            }
            queue.sinceCompaction += entries.count
            queue.bytesSinceCompaction += queue.forming.bytes.count - before
            return (queue.queued, claimWriter(&queue))
        }
        if start { startWriter() }
        return ticket
    }

    /// Queues `entries`; `then` runs once they are durable (with nil), or with the log's write error
    /// when they are not (on the log's thread, or at once on this one).
    func append(_ entries: [PersistedEntry], on loop: (any EventLoop)? = nil, then: @escaping Continuation) {
        whenDurable(append(entries), on: loop, then: then)
    }

    /// True once every append up to `ticket` is on disk.
    func isDurable(_ ticket: Ticket) -> Bool {
        ticket <= durableThrough.load(ordering: .acquiring)
    }

    /// The last ticket handed out: waiting for it waits for everything queued so far.
    var lastQueued: Ticket { queue.withLockedValue { $0.queued } }

    /// Runs `continuation` once every append up to `ticket` is durable (at once when it is), or with the
    /// log's error when that cannot happen.
    /// With `loop`, a continuation that waits runs on that loop, else on the log's thread.
    func whenDurable(_ ticket: Ticket, on loop: (any EventLoop)? = nil, then continuation: @escaping Continuation) {
        let outcome = queue.withLockedValue { queue -> String?? in
            if isDurable(ticket) { return .some(nil) }
            if let failed = queue.failed { return .some(failed) }
            queue.waiting.append(Waiter(ticket: ticket, loop: loop, continuation: continuation))
            return nil
        }
        if let outcome { continuation(outcome) }
    }

    /// Entries appended since the last compaction.
    var entriesSinceCompaction: Int { queue.withLockedValue { $0.sinceCompaction } }

    /// Bytes of entries appended since the last compaction.
    var bytesSinceCompaction: Int { queue.withLockedValue { $0.bytesSinceCompaction } }

    /// Bytes of the snapshot the last compaction wrote.
    var snapshotBytes: Int { queue.withLockedValue { $0.snapshotBytes } }

    // MARK: Compaction

    /// Takes a compaction's place in the order of appends: those queued before go to the old log, later
    /// ones after the snapshot. Call it where the snapshot is taken (under the replica's lock), then
    /// ``compact(_:snapshot:)`` with the reservation; the log's thread waits for it there.
    func reserveCompaction() -> UInt64 {
        queue.withLockedValue { queue in
            queue.compactions += 1
            queue.sinceCompaction = 0
            queue.bytesSinceCompaction = 0
            if !queue.forming.isEmpty {
                queue.steps.append(.records(queue.forming, through: queue.queued))
                queue.forming = queue.spare.take() ?? WriteAheadLogBatch()
            }
            queue.steps.append(.compaction(id: queue.compactions, snapshot: nil))
            return queue.compactions
        }
    }

    /// Encodes `snapshot` (here, not under any lock) for the compaction `reservation` and lets the
    /// log's thread replace the log with it; not after a failure.
    func compact(_ reservation: UInt64, snapshot: [PersistedEntry]) {
        var batch = WriteAheadLogBatch()
        var encoded = true
        for entry in snapshot {
            do {
                try batch.append { ReplicaCodec.encode(entry, appendingTo: &$0) }
            } catch {
                encoded = false
                break
            }
        }
        let bytes = batch.bytes.count - batch.count * WriteAheadLog.recordHeaderSize
        let start = queue.withLockedValue { queue -> Bool in
            guard
                let index = queue.steps.firstIndex(where: {
                    if case .compaction(reservation, nil) = $0 { true } else { false }
                })
            else { return false }
            if encoded {
                queue.steps[index] = .compaction(id: reservation, snapshot: batch)
                queue.snapshotBytes = bytes
            } else {
                // An entry over the record limit cannot be kept whole: keep the log as it is.
                queue.steps.remove(at: index)
            }
            return claimWriter(&queue)
        }
        if start { startWriter() }
    }

    /// Replaces the log with `snapshot`, after the appends queued before.
    func compact(_ snapshot: [PersistedEntry]) {
        compact(reserveCompaction(), snapshot: snapshot)
    }

    // MARK: Stats and failure

    /// Bytes appended, syncs and their time since the log was opened.
    var counters: WriteAheadLogCounters { queue.withLockedValue { $0.counters } }

    /// The first write error, if any: from then on the replica refuses writes (see `DatabaseReplica`).
    var failure: String? { queue.withLockedValue { $0.failed } }

    func close() {
        try? pool.syncShutdownGracefully()
        log.withLog { $0.close() }
    }

    /// Closes the log file while the log stays in use, so that the next append fails as a full or
    /// broken disk would (for tests of what follows a write error).
    func closeFileForTesting() {
        log.withLog { $0.close() }
    }

    // MARK: The log's thread

    /// True when the caller must start the log's thread: there is work and it is not running.
    private func claimWriter(_ queue: inout Queue) -> Bool {
        guard !queue.writing else { return false }
        let ready: Bool
        if let first = queue.steps.first {
            if case .compaction(_, nil) = first { ready = false } else { ready = true }
        } else {
            ready = !queue.forming.isEmpty || (queue.failed != nil && !queue.failureReported)
        }
        if ready { queue.writing = true }
        return ready
    }

    private func startWriter() {
        pool.submit { _ in self.drain() }
    }

    /// Writes groups until none is waiting: each group is what queued while the previous one was
    /// written and synced.
    private func drain() {
        var lastSync: ContinuousClock.Instant?
        var lastGroup = 0
        var lingered = false
        while true {
            if let lastSync {
                // After a big group (a busy log), the group forming right behind it grows until the
                // pace allows the next sync; none yet: wait for it once rather than stop and have the
                // next append wake this thread again. After a small one, the next syncs at once.
                let forming = queue.withLockedValue { queue -> Bool? in
                    queue.failed != nil || !queue.steps.isEmpty ? nil : !queue.forming.isEmpty
                }
                if let forming, lastGroup >= Self.busyGroupRecords, forming || !lingered {
                    let wait = Self.busySyncInterval - lastSync.duration(to: .now)
                    if forming {
                        if wait > .zero { Self.sleep(wait) }
                    } else {
                        lingered = true
                        Self.sleep(max(wait, Self.busySyncInterval / 2))
                        continue
                    }
                }
            }
            guard let step = nextStep() else { return }
            switch step {
            case .records(var batch, let through):
                lastSync = .now
                lastGroup = batch.count
                lingered = false
                let (counters, error) = log.withLog { log -> (WriteAheadLogCounters, String?) in
                    do {
                        try log.append(batch)
                        return (log.counters, nil)
                    } catch {
                        return (log.counters, "\(error)")
                    }
                }
                batch.removeAll()
                // After an error the next step fails whatever still waits, and reports the failure.
                let ready = queue.withLockedValue { queue -> [Waiter] in
                    queue.counters = counters
                    if batch.capacity <= Self.maxSpareCapacity, queue.spare == nil { queue.spare = batch }
                    if let error {
                        queue.failed = queue.failed ?? error
                        return []
                    }
                    durableThrough.store(through, ordering: .releasing)
                    return takeReady(&queue)
                }
                Self.run(ready, with: nil)
            case .compaction(_, let snapshot):
                guard let snapshot else { continue }
                // A failed replace leaves the old log whole, or closes it (a failed directory sync
                // after the rename): the next append then fails, and the failure is final there.
                let counters = log.withLog { log in
                    _ = try? log.replace(with: snapshot)
                    return log.counters
                }
                queue.withLockedValue { $0.counters = counters }
            }
        }
    }

    private static func sleep(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0, errno == EINTR { request = remaining }
    }

    /// The next step for the log's thread, or nil (and the thread stops) when there is none it can do
    /// yet. After a failure it writes nothing, and fails whatever still waits.
    private func nextStep() -> Step? {
        typealias Failed = (failure: String, waiting: [Waiter], handler: (@Sendable (String) -> Void)?)
        let (step, failed) = queue.withLockedValue { queue -> (Step?, Failed?) in
            if let failure = queue.failed {
                queue.steps = []
                queue.forming.removeAll()
                queue.writing = false
                let handler = queue.failureReported ? nil : queue.failureHandler
                queue.failureReported = true
                defer { queue.waiting = [] }
                return (nil, (failure, queue.waiting, handler))
            }
            if let first = queue.steps.first {
                if case .compaction(_, nil) = first {
                    queue.writing = false
                    return (nil, nil)
                }
                queue.steps.removeFirst()
                return (first, nil)
            }
            guard !queue.forming.isEmpty else {
                queue.writing = false
                return (nil, nil)
            }
            let group = queue.forming
            queue.forming = queue.spare.take() ?? WriteAheadLogBatch()
            return (.records(group, through: queue.queued), nil)
        }
        if let failed {
            failed.handler?(failed.failure)
            Self.run(failed.waiting, with: failed.failure)
        }
        return step
    }

    /// Removes and returns the continuations whose tickets are durable.
    private func takeReady(_ queue: inout Queue) -> [Waiter] {
        guard !queue.waiting.isEmpty else { return [] }
        let through = durableThrough.load(ordering: .relaxed)
        var ready: [Waiter] = []
        queue.waiting.removeAll { waiter in
            guard waiter.ticket <= through else { return false }
            ready.append(waiter)
            return true
        }
        return ready
    }

    /// Runs `waiters` in order: those without a loop here, the others on their loops, one task per loop.
    private static func run(_ waiters: [Waiter], with failure: String?) {
        var byLoop: [(loop: any EventLoop, continuations: [Continuation])] = []
        for waiter in waiters {
            guard let loop = waiter.loop else {
                waiter.continuation(failure)
                continue
            }
            if let index = byLoop.firstIndex(where: { $0.loop === loop }) {
                byLoop[index].continuations.append(waiter.continuation)
            } else {
                byLoop.append((loop, [waiter.continuation]))
            }
        }
        for (loop, continuations) in byLoop {
            loop.execute { for continuation in continuations { continuation(failure) } }
        }
    }
}

/// The write-ahead log behind a lock.
///
/// `WriteAheadLog` is a non-Sendable class; this wrapper is `@unchecked Sendable` because its only
/// stored `WriteAheadLog` is reached solely through ``withLog(_:)``, which holds `lock` for the whole
/// call, so no two threads ever use it at once.
private final class LockedLog: @unchecked Sendable {
    private let lock = NIOLock()
    private let wal: WriteAheadLog

    init(_ wal: WriteAheadLog) { self.wal = wal }

    func withLog<T>(_ body: (WriteAheadLog) throws -> T) rethrows -> T {
        try lock.withLock { try body(wal) }
    }
}
