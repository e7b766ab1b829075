/// How a node sees another member's liveness.
///
/// For the same incarnation the precedence is `dead`/`left` > `suspect` > `alive`; a higher incarnation
/// wins over a lower one, except that only an `alive` claim with a higher incarnation revives a
/// `dead` or `left` member.
public enum MemberStatus: UInt8, Sendable, Codable, Hashable {
    /// Answering probes.
    case alive = 0
    /// Missed a probe; declared dead when its suspicion timeout fires unless it refutes first.
    case suspect = 1
    /// Declared failed. Kept for ``SWIMSettings/deadRetention`` so the news spreads, then forgotten.
    case dead = 2
    /// Left gracefully. Kept like `dead`, but never suspected first.
    case left = 3

    /// `dead` or `left`: not probed, not counted as a member of the cluster.
    public var isGone: Bool { self == .dead || self == .left }

    /// Precedence among claims with the same incarnation.
    var rank: Int {
        switch self {
        case .alive: 0
        case .suspect: 1
        case .dead, .left: 2
        }
    }
}

/// What a node advertises about itself; rides on gossip in every envelope's `from`.
public struct MemberMetadata: Sendable, Hashable, Codable {
    /// Work in flight plus queued, over capacity.
    public var load: Double
    /// Most tasks the node runs at once.
    public var capacity: Int
    /// Names of the services the node offers, sorted.
    public var services: [String]

    /// Metadata; `services` are sorted.
    public init(load: Double = 0, capacity: Int = 64, services: [String] = []) {
        self.load = load
        self.capacity = capacity
        self.services = services.sorted()
    }
}

/// One member as a node sees it.
public struct Member: Sendable, Hashable, Codable {
    /// Stable node id (not its port).
    public var id: String
    /// Advertised "host:port".
    public var address: String
    /// Liveness as the viewing node sees it.
    public var status: MemberStatus
    /// Bumped only by the member itself, to refute suspicion or announce a leave.
    public var incarnation: UInt64
    /// What the member advertises about itself.
    public var metadata: MemberMetadata
    /// Bumped by the owner when its metadata changes; higher wins at the same incarnation.
    public var metadataVersion: UInt64

    /// A member record.
    public init(
        id: String,
        address: String,
        status: MemberStatus = .alive,
        incarnation: UInt64 = 0,
        metadata: MemberMetadata = MemberMetadata(),
        metadataVersion: UInt64 = 0
    ) {
        self.id = id
        self.address = address
        self.status = status
        self.incarnation = incarnation
        self.metadata = metadata
        self.metadataVersion = metadataVersion
    }
}
