import DistriCore

/// Limits and timing of a node's document DB.
public struct DatabaseLimits: Sendable {
    /// Largest document body, in bytes of JSON. Default 1 MiB.
    public var maxDocumentBytes: Int
    /// How long an operation waits for replicas when the caller gave no deadline. Default 5 s.
    public var defaultTimeoutMillis: UInt64
    /// How long a replication request waits for a peer. Default 2 s.
    public var peerTimeoutMillis: UInt64
    /// Log entries after which the write-ahead log is compacted into a snapshot. Default 200,000.
    public var compactionEntries: Int
    /// Log bytes after which the write-ahead log is compacted too, once they also exceed the last
    /// snapshot's size (so a compaction rewrites at most as much as the log it replaces). Default 64 MiB:
    /// few but large writes (the mailbox's chunks) would otherwise keep every byte ever written, deleted
    /// or not, until ``compactionEntries`` entries.
    public var compactionBytes: Int = 64 << 20
    /// How long a node that joins through seeds holds client operations for its first sync. Default 5 s.
    public var catchUpMillis: UInt64 = 5_000
    /// The replication core's settings (sync interval, collection limit, tombstone grace).
    public var replication: ReplicaSettings

    /// Limits with the given values; every argument has a default.
    public init(
        maxDocumentBytes: Int = 1 << 20, defaultTimeoutMillis: UInt64 = 5_000, peerTimeoutMillis: UInt64 = 2_000,
        compactionEntries: Int = 200_000, replication: ReplicaSettings = .init()
    ) {
        self.maxDocumentBytes = maxDocumentBytes
        self.defaultTimeoutMillis = defaultTimeoutMillis
        self.peerTimeoutMillis = peerTimeoutMillis
        self.compactionEntries = compactionEntries
        self.replication = replication
    }
}
