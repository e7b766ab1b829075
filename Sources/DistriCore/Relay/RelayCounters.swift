/// A node's relay between peers, as the `Stats` service reports it.
public struct RelayCounters: Codable, Sendable, Equatable {
    /// Peers whose daemon holds a relay link to this node now.
    public var attachedPeers: Int = 0
    /// Relay links attached since the node started.
    public var attachments: UInt64 = 0
    /// Delivery chunks forwarded to an attached peer.
    public var relayedChunks: UInt64 = 0
    /// Bytes of sealed image forwarded to attached peers.
    public var relayedBytes: UInt64 = 0
    /// Chunks refused by a per-peer quota.
    public var refusedOverQuota: UInt64 = 0
    /// Reachability checks run (the node dialled a peer's advertised addresses).
    public var reachabilityChecks: UInt64 = 0

    /// All counters at zero.
    public init() {}
}
