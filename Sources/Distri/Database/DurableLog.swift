import DistriCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Group commit for a replica's write-ahead log: entries from any thread queue up, one background
/// thread appends whatever has queued with a single fdatasync, then runs the continuations of that
/// group in order. Entries reach the disk in the order they were queued. The first write error is
/// final: later entries are not written (the log would have a hole), and every continuation from
/// then on is told the error.
final class DurableLog: Sendable {
    private struct Queue {
        var records: [[UInt8]] = []
        var continuations: [@Sendable (String?) -> Void] = []
        var draining = false
        var failed: String?
        var sinceCompaction = 0
        var bytesSinceCompaction = 0
        var snapshotBytes = 0
        /// The log's counters after its last append or compaction (read here, so the stats never wait
        /// for a sync in progress).
        var counters = WriteAheadLogCounters()
    }

    private let log: LockedLog
    private let queue = NodeLock(Queue())
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

    /// Queues `entries`; `then` runs once they are durable (with nil), or with the log's write error
    /// when they are not (on the log's thread).
    func append(_ entries: [PersistedEntry], then: @escaping @Sendable (_ failure: String?) -> Void) {
        let records = entries.map(ReplicaCodec.encode)
        let start = queue.withLockedValue { queue -> Bool in
            queue.records += records
            queue.continuations.append(then)
            queue.sinceCompaction += records.count
            queue.bytesSinceCompaction += records.reduce(0) { $0 + $1.count }
            defer { queue.draining = true }
            return !queue.draining
        }
        if start { pool.submit { _ in self.drain() } }
    }

    /// Entries appended since the last compaction.
    var entriesSinceCompaction: Int { queue.withLockedValue { $0.sinceCompaction } }

    /// Bytes of entries appended since the last compaction.
    var bytesSinceCompaction: Int { queue.withLockedValue { $0.bytesSinceCompaction } }

    /// Bytes of the snapshot the last compaction wrote.
    var snapshotBytes: Int { queue.withLockedValue { $0.snapshotBytes } }

    /// Replaces the log with `snapshot` (queued behind appends already waiting); not after a failure.
    func compact(_ snapshot: [PersistedEntry]) {
        let records = snapshot.map(ReplicaCodec.encode)
        let bytes = records.reduce(0) { $0 + $1.count }
        queue.withLockedValue {
            $0.sinceCompaction = 0
            $0.bytesSinceCompaction = 0
            $0.snapshotBytes = bytes
        }
        pool.submit { _ in
            guard self.failure == nil else { return }
            let counters = self.log.withLog { log in
                _ = try? log.replace(with: records)
                return log.counters
            }
            self.queue.withLockedValue { $0.counters = counters }
        }
    }

    /// Bytes appended, syncs and their time since the log was opened.
    var counters: WriteAheadLogCounters { queue.withLockedValue { $0.counters } }

    /// The first write error, if any: from then on the replica refuses writes (see `DatabaseReplica`).
    var failure: String? { queue.withLockedValue { $0.failed } }

    private func drain() {
        while true {
            let batch = queue.withLockedValue { queue -> ([[UInt8]], [@Sendable (String?) -> Void])? in
                guard !queue.continuations.isEmpty else {
                    queue.draining = false
                    return nil
                }
                defer {
                    queue.records = []
                    queue.continuations = []
                }
                return (queue.records, queue.continuations)
            }
            guard let (records, continuations) = batch else { return }
            if failure == nil {
                let (counters, error) = log.withLog { log -> (WriteAheadLogCounters, (any Error)?) in
                    do {
                        try log.append(records)
                        return (log.counters, nil)
                    } catch {
                        return (log.counters, error)
                    }
                }
                queue.withLockedValue {
                    $0.counters = counters
                    if let error { $0.failed = $0.failed ?? "\(error)" }
                }
            }
            let outcome = failure
            for continuation in continuations { continuation(outcome) }
        }
    }

    func close() {
        try? pool.syncShutdownGracefully()
        log.withLog { $0.close() }
    }

    /// Closes the log file while the log stays in use, so that the next append fails as a full or
    /// broken disk would (for tests of what follows a write error).
    func closeFileForTesting() {
        log.withLog { $0.close() }
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
