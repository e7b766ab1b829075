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
    /// Times this node itself failed (went dark, crashed a task, lost a peer link).
    public var serverFails: UInt64 = 0
    /// Tasks running now.
    public var inFlight: Int = 0
    /// Tasks waiting for a slot now.
    public var queued: Int = 0
    /// Most tasks that may run at once.
    public var capacity: Int = 0
    /// Sum of service times (arrival to reply, queueing included).
    public var totalServiceTime: Double = 0
    /// Mean service time.
    public var averageServiceTime: Double = 0
    /// Median service time.
    public var p50ServiceTime: Double = 0
    /// 99th percentile service time.
    public var p99ServiceTime: Double = 0
    /// Seconds since the node started.
    public var uptime: Double = 0
    /// Resident memory of the node's process, in bytes (0 where unknown).
    public var residentBytes: UInt64 = 0
    /// Documents per DB collection.
    public var collections: [String: Int] = [:]
    /// The membership as this node sees it.
    public var members: [MemberSummary] = []
    /// Elections, forwarding, failovers, deduplication and gossip traffic.
    public var cluster = ClusterCounters()

    public init(nodeID: String, address: String) {
        self.nodeID = nodeID
        self.address = address
    }
}
