import DistriCore
import NIOCore

/// How a node takes part in the cluster: membership, election, deduplication and chaos.
public struct ClusterSettings: Sendable {
    /// SWIM/Lifeguard timing. Defaults detect a dead node within about 2 s.
    public var swim: SWIMSettings
    /// How executors are elected.
    public var election: ElectionPolicy
    /// How long a newly seen member is favoured less by elections, in milliseconds. Default 3000.
    public var warmUpMillis: UInt64
    /// Finished tasks remembered for retries: at most this many, this long, and this many bytes of
    /// results. Defaults 20,000 tasks, 60 s, 16 MiB.
    public var dedupCapacity: Int
    /// How long a finished task stays in the dedup window, in milliseconds.
    public var dedupRetentionMillis: UInt64
    /// Bytes of results the dedup window may hold.
    public var dedupBytes: Int
    /// Chance per second that the node goes dark (drops all traffic) for a random 0.5 to 3 s; 0 = never.
    public var chaosRate: Double

    /// Settings with the given values; every argument has a default.
    public init(
        swim: SWIMSettings = .init(),
        election: ElectionPolicy = .init(),
        warmUpMillis: UInt64 = 3000,
        dedupCapacity: Int = 20_000,
        dedupRetentionMillis: UInt64 = 60_000,
        dedupBytes: Int = 16 << 20,
        chaosRate: Double = 0
    ) {
        self.swim = swim
        self.election = election
        self.warmUpMillis = warmUpMillis
        self.dedupCapacity = dedupCapacity
        self.dedupRetentionMillis = dedupRetentionMillis
        self.dedupBytes = dedupBytes
        self.chaosRate = chaosRate
    }
}

extension ClusterSettings {
    /// The router's settings for a node of `capacity` slots and `queueLimit` waiting tasks.
    func routerSettings(capacity: Int, queueLimit: Int) -> NodeTaskRouter.Settings {
        NodeTaskRouter.Settings(
            capacity: capacity, queueLimit: queueLimit, election: election, warmUpMillis: warmUpMillis,
            dedupCapacity: dedupCapacity, dedupRetentionMillis: dedupRetentionMillis, dedupBytes: dedupBytes)
    }
}
