/// One node's counters, as the `Stats` service reports them. Durations are in seconds.
public struct NodeStats: Codable, Sendable, Equatable {
    /// The node's stable id.
    public var nodeID: String
    /// The address clients reach it at.
    public var address: String
    /// Requests that arrived, whatever became of them.
    public var requestsReceived: UInt64 = 0
    /// Requests admitted to run (started or queued).
    public var accepted: UInt64 = 0
    /// Requests whose service returned a result.
    public var completed: UInt64 = 0
    /// Requests that ended in an error reply other than busy.
    public var failed: UInt64 = 0
    /// Requests refused at once because the node was at capacity with a full queue.
    public var rejectedBusy: UInt64 = 0
    /// Connections closed at accept: their source already held the most it may.
    public var rejectedConnections: UInt64 = 0
    /// Connections dropped for sending a message too slowly (slow-drip clients).
    public var slowConnectionsDropped: UInt64 = 0
    /// Connections closed after no traffic for the idle timeout.
    public var idleConnectionsClosed: UInt64 = 0
    /// Connections closed because their TLS handshake failed (plain TCP to a TLS port, a certificate
    /// of another authority).
    public var tlsHandshakesFailed: UInt64 = 0
    /// Calls of a node-only service refused because the caller showed no node certificate.
    public var unauthorizedCalls: UInt64 = 0
    /// Times this node itself failed (went dark, crashed a task, lost a peer link).
    public var serverFails: UInt64 = 0
    /// Tasks running now.
    public var inFlight: Int = 0
    /// Tasks waiting for a slot now.
    public var queued: Int = 0
    /// Most tasks that may run at once.
    public var capacity: Int = 0
    /// True once a graceful shutdown began: new work is refused, work in flight finishes.
    public var draining = false
    /// Sum of service times (arrival to reply, queueing included).
    public var totalServiceTimeSeconds: Double = 0
    /// Mean service time.
    public var averageServiceTimeSeconds: Double = 0
    /// Median service time.
    public var p50ServiceTimeSeconds: Double = 0
    /// 99th percentile service time.
    public var p99ServiceTimeSeconds: Double = 0
    /// Seconds since the node started.
    public var uptimeSeconds: Double = 0
    /// Resident memory of the node's process, in bytes (0 where unknown).
    public var residentBytes: UInt64 = 0
    /// Documents per DB collection.
    public var collections: [String: Int] = [:]
    /// The DB replica: tombstones, replication lag, anti-entropy traffic.
    public var database: DatabaseStats?
    /// The membership as this node sees it.
    public var members: [MemberSummary] = []
    /// Elections, forwarding, failovers, deduplication and gossip traffic.
    public var cluster = ClusterCounters()
    /// The relay between peers (nil from a node without one).
    public var relay: RelayCounters?
    /// The mailbox for offline recipients, as this node's replica holds it (nil from a node without one).
    public var mailbox: MailboxStats?
    /// Calls this node ran, by service and outcome (`ok`, or the error code's name); nil from a node of an
    /// earlier version.
    public var calls: [String: [String: UInt64]]?
    /// The node-wide budget of buffered bytes (messages half received and replies waiting for slow
    /// readers, on all connections): its use, its size and the requests it refused; nil from a node
    /// of an earlier version.
    public var bufferBudget: BufferBudgetStats?

    public init(nodeID: String, address: String) {
        self.nodeID = nodeID
        self.address = address
    }
}

/// A node's document DB replica, as the `Stats` service reports it.
public struct DatabaseStats: Codable, Sendable, Equatable {
    /// Live documents per collection.
    public var documents: [String: Int]
    /// Deleted documents kept until every replica has seen the delete.
    public var tombstones: Int
    /// Per peer, this replica's changes the peer has not yet confirmed pulling.
    public var replicationLag: [String: UInt64]
    /// Bytes of pull replies received (anti-entropy).
    public var antiEntropyBytes: UInt64
    /// Changes received through pull replies.
    public var antiEntropyChanges: UInt64
    /// Changes this replica has made or merged.
    public var changeSequence: UInt64
    /// True when the node keeps its replica in a write-ahead log (`--data-dir`).
    public var durable: Bool
    /// Log entries recovered at start.
    public var recoveredEntries: Int
    /// The first write-ahead log error, if any.
    public var storageError: String?
    /// Push messages sent to peers, and the changes they carried (their ratio is the batching).
    public var pushesSent: UInt64 = 0
    public var changesPushed: UInt64 = 0
    /// The write-ahead log's traffic (nil without `--data-dir`, or from a node of an earlier version).
    public var writeAheadLog: WriteAheadLogStats?
    /// Compare-and-set rounds this replica coordinated (nil from a node of an earlier version).
    public var compareAndSet: CompareAndSetStats?

    public init(
        documents: [String: Int], tombstones: Int, replicationLag: [String: UInt64], antiEntropyBytes: UInt64,
        antiEntropyChanges: UInt64, changeSequence: UInt64, durable: Bool, recoveredEntries: Int,
        storageError: String?
    ) {
        self.documents = documents
        self.tombstones = tombstones
        self.replicationLag = replicationLag
        self.antiEntropyBytes = antiEntropyBytes
        self.antiEntropyChanges = antiEntropyChanges
        self.changeSequence = changeSequence
        self.durable = durable
        self.recoveredEntries = recoveredEntries
        self.storageError = storageError
    }
}

/// A replica's write-ahead log since the node started, as the `Stats` service reports it.
public struct WriteAheadLogStats: Codable, Sendable, Equatable {
    /// Bytes of records appended.
    public var bytesAppended: UInt64
    /// Syncs (fdatasync or fsync) of the log, and the seconds they took in all.
    public var syncs: UInt64
    public var syncSeconds: Double

    public init(bytesAppended: UInt64 = 0, syncs: UInt64 = 0, syncSeconds: Double = 0) {
        self.bytesAppended = bytesAppended
        self.syncs = syncs
        self.syncSeconds = syncSeconds
    }
}

/// The compare-and-set rounds a replica coordinated, as the `Stats` service reports them.
public struct CompareAndSetStats: Codable, Sendable, Equatable {
    /// Rounds (Paxos ballots) begun, retries included.
    public var rounds: UInt64
    /// Rounds that lost to a higher ballot and were tried again.
    public var contentions: UInt64
    /// Conditional updates refused because their condition did not hold.
    public var conditionFailures: UInt64

    public init(rounds: UInt64 = 0, contentions: UInt64 = 0, conditionFailures: UInt64 = 0) {
        self.rounds = rounds
        self.contentions = contentions
        self.conditionFailures = conditionFailures
    }
}

/// The mailbox for offline recipients, as one node's replica holds it, for the `Stats` service.
public struct MailboxStats: Codable, Sendable, Equatable {
    /// Deposits held, complete or not.
    public var entries: Int
    /// Bytes of images held (what was deposited so far).
    public var bytes: UInt64
    /// Deposits this node refused because a quota would have been exceeded.
    public var refusedOverQuota: UInt64

    public init(entries: Int = 0, bytes: UInt64 = 0, refusedOverQuota: UInt64 = 0) {
        self.entries = entries
        self.bytes = bytes
        self.refusedOverQuota = refusedOverQuota
    }
}

/// The use of a node's buffered-bytes budget.
public struct BufferBudgetStats: Codable, Sendable, Equatable {
    /// Bytes held now.
    public var usedBytes: UInt64
    /// The budget's size.
    public var capacityBytes: UInt64
    /// Reservations refused since the node started (each answered `busy`).
    public var refusals: UInt64

    /// The figures given.
    public init(usedBytes: UInt64, capacityBytes: UInt64, refusals: UInt64) {
        self.usedBytes = usedBytes
        self.capacityBytes = capacityBytes
        self.refusals = refusals
    }
}
