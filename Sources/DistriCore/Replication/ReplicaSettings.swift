/// Tuning of a ``ReplicaEngine``. Times are in milliseconds.
public struct ReplicaSettings: Hashable, Sendable {
    /// How often the replica pulls from the next peer in turn (anti-entropy).
    public var syncInterval: UInt64
    /// How long a tombstone every replica has seen is kept before it is purged, so that a change
    /// still in flight cannot revive the document.
    public var tombstoneGrace: UInt64
    /// Most collections, dropped ones included (a dropped collection keeps its stamps; its documents are freed).
    public var maxCollections: Int
    /// Most changes in one push or pull reply.
    public var maxChangesPerMessage: Int
    /// Upper bound of the random pause before a compare-and-set retries after a competing ballot.
    public var casBackoff: UInt64
    /// Most pushes in flight to one peer. Writes made meanwhile wait in the peer's outbox and leave
    /// together when an answer comes back, so under load pushes grow instead of multiplying (each
    /// costs a request, an answer and their syscalls on both sides); an idle link pushes at once.
    public var pushWindow: Int

    /// Settings with the given values; every argument has a default.
    public init(
        syncInterval: UInt64 = 500, tombstoneGrace: UInt64 = 60_000, maxCollections: Int = 1_000,
        maxChangesPerMessage: Int = 2_048, casBackoff: UInt64 = 20, pushWindow: Int = 1
    ) {
        self.syncInterval = syncInterval
        self.tombstoneGrace = tombstoneGrace
        self.maxCollections = maxCollections
        self.maxChangesPerMessage = maxChangesPerMessage
        self.casBackoff = casBackoff
        self.pushWindow = max(1, pushWindow)
    }
}

/// What the shell around a ``ReplicaEngine`` must do.
public enum ReplicaAction: Sendable {
    /// Send a request to a peer; report its answer with ``ReplicaEngine/receive(_:for:now:)`` or its
    /// failure (timeout, lost connection) with ``ReplicaEngine/requestFailed(_:now:)``.
    case send(to: String, request: UInt64, ReplicaRequest)
    /// Make these entries durable (when the node keeps a log) before performing any later action.
    case persist([PersistedEntry])
    /// A client's write finished.
    case completed(operation: UInt64, Result<WriteReceipt, DatabaseError>)
    /// A client's read may now run on the local store (or failed to reach the replicas it needs).
    case readable(operation: UInt64, Result<Void, DatabaseError>)
}

/// What a replica keeps in its log: changes with their sequence numbers, its sync state, and the
/// compare-and-set acceptor state of documents that conditional updates ran on.
public enum PersistedEntry: Hashable, Sendable {
    /// A change, with the replica's sequence number for it.
    case change(sequence: UInt64, DocumentChange)
    /// The replica's sync state.
    case syncState(ReplicaSyncState)
    /// A document's compare-and-set acceptor state.
    case acceptor(DocumentKey, DocumentAcceptor)
}

/// The part of a replica's state besides its documents that must survive a restart with a data dir.
public struct ReplicaSyncState: Hashable, Sendable {
    /// The replica's epoch: a fresh random number per start without its data.
    public var epoch: UInt64
    /// What this replica holds of each peer.
    public var pulled: [String: Watermark]
    /// Per origin node, the stamp up to which this replica holds all of its writes.
    public var coverage: [String: HLCTimestamp]
    /// The replica's hybrid logical clock, so stamps keep rising after a restart.
    public var clock: HLCTimestamp

    /// A sync state with the given fields.
    public init(epoch: UInt64, pulled: [String: Watermark], coverage: [String: HLCTimestamp], clock: HLCTimestamp) {
        self.epoch = epoch
        self.pulled = pulled
        self.coverage = coverage
        self.clock = clock
    }
}
