/// How a member looks in a node's stats.
public struct MemberSummary: Codable, Sendable, Equatable {
    /// The member's id.
    public var id: String
    /// Where it is reached, `host:port`.
    public var address: String
    /// `alive`, `suspect`, `dead` or `left`, as this node sees it.
    public var status: String
    /// The member's incarnation: it rises when the member refutes a suspicion or restarts.
    public var incarnation: UInt64
    /// Its own report of its load (0 = idle).
    public var load: Double
    /// The services it offers.
    public var services: [String]
    /// For a member seen to fail: milliseconds from its last sign of life to being declared dead here.
    public var detectionMillis: UInt64?

    /// A summary with the given fields.
    public init(
        id: String, address: String, status: String, incarnation: UInt64, load: Double, services: [String],
        detectionMillis: UInt64?
    ) {
        self.id = id
        self.address = address
        self.status = status
        self.incarnation = incarnation
        self.load = load
        self.services = services
        self.detectionMillis = detectionMillis
    }
}

/// The node's cluster counters.
public struct ClusterCounters: Codable, Sendable, Equatable {
    /// Tasks this node elected itself to run.
    public var electionsWon: UInt64 = 0
    /// Tasks this node elected another node for and forwarded.
    public var tasksForwarded: UInt64 = 0
    /// Forwarded tasks sent again to another executor after the first failed.
    public var failovers: UInt64 = 0
    /// Retries answered from the dedup window (or joined to the run in progress).
    public var deduplicated: UInt64 = 0
    /// Periods this node went dark in chaos mode.
    public var chaosOutages: UInt64 = 0
    /// Membership messages and bytes sent and received.
    public var gossipMessagesSent: UInt64 = 0
    /// Bytes of membership messages sent.
    public var gossipBytesSent: UInt64 = 0
    /// Bytes of membership messages received.
    public var gossipBytesReceived: UInt64 = 0
    /// Members seen to fail and how long each detection took, in milliseconds.
    public var detectionMillis: [String: UInt64] = [:]
    /// Times a member became suspect in this node's view (its own probes' suspicions and those it heard
    /// of), and members it came to see as dead (failure detections).
    public var membersSuspected: UInt64 = 0
    /// Members this node came to see as dead.
    public var membersDeclaredDead: UInt64 = 0

    /// All counters at zero.
    public init() {}

    /// Every field is optional in JSON: a node of an earlier version leaves newer counters out (0 here).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func count(_ key: CodingKeys) throws -> UInt64 { try container.decodeIfPresent(UInt64.self, forKey: key) ?? 0 }
        electionsWon = try count(.electionsWon)
        tasksForwarded = try count(.tasksForwarded)
        failovers = try count(.failovers)
        deduplicated = try count(.deduplicated)
        chaosOutages = try count(.chaosOutages)
        gossipMessagesSent = try count(.gossipMessagesSent)
        gossipBytesSent = try count(.gossipBytesSent)
        gossipBytesReceived = try count(.gossipBytesReceived)
        detectionMillis = try container.decodeIfPresent([String: UInt64].self, forKey: .detectionMillis) ?? [:]
        membersSuspected = try count(.membersSuspected)
        membersDeclaredDead = try count(.membersDeclaredDead)
    }
}
