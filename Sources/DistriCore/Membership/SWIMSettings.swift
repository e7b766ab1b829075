/// Tuning for ``Membership``. All durations are milliseconds of the shell's monotonic clock.
///
/// The defaults detect a crashed node at every alive node in well under two seconds in clusters of
/// 3 to 9 nodes on a LAN, and cost well under 10 KB/s of gossip per node at rest:
///
/// On a WAN the probe timeout and interval follow the measured round trip of direct probes (see
/// ``Membership/probeTimeout``): with 100 ms round trips, 20 ms jitter and 2% loss the timeout settles
/// near 200 ms and the interval near 600 ms, as memberlist's WAN profile would set them by hand.
///
/// | setting | default |
/// |---------|---------|
/// | ``tickInterval`` | 20 ms |
/// | ``probeInterval`` | 200 ms |
/// | ``probeTimeout`` | 100 ms |
/// | ``maxProbeTimeout`` | 3000 ms |
/// | ``indirectProbes`` | 3 |
/// | ``suspicionMultiplier`` | 3 |
/// | ``suspicionMaxMultiplier`` | 4 |
/// | ``maxLocalHealth`` | 8 |
/// | ``retransmitMultiplier`` | 4 |
/// | ``maxPiggyback`` | 8 |
/// | ``pushPullInterval`` | 5000 ms |
/// | ``joinRetryInterval`` | 500 ms |
/// | ``reconnectInterval`` | 2000 ms |
/// | ``deadRetention`` | 30000 ms |
public struct SWIMSettings: Sendable, Hashable {
    /// How often the shell should call ``Membership/tick(now:random:)``; the resolution of every timer.
    public var tickInterval: UInt64 = 20
    /// One probe per interval (multiplied by local health + 1). A probe that is not acked by the end of
    /// its interval makes its target suspect.
    public var probeInterval: UInt64 = 200
    /// Wait for a direct ack before asking others to probe (multiplied by local health + 1).
    /// Must be shorter than ``probeInterval``.
    public var probeTimeout: UInt64 = 100
    /// The longest probe timeout the measured round trip may set. Default 3000 ms.
    public var maxProbeTimeout: UInt64 = 3000
    /// Members asked to probe indirectly after a missed direct ack.
    public var indirectProbes: Int = 3
    /// Minimum suspicion timeout is `suspicionMultiplier × max(1, log10(n)) × probeInterval`; the
    /// confirmations expected are `min(suspicionMultiplier - 2, n - 2)`.
    public var suspicionMultiplier: Int = 3
    /// Maximum suspicion timeout (with no confirmations) is this times the minimum.
    public var suspicionMaxMultiplier: Int = 4
    /// Upper bound of the Lifeguard local-health score.
    public var maxLocalHealth: Int = 8
    /// Each update is piggybacked `retransmitMultiplier × ceil(log10(n + 1))` times.
    public var retransmitMultiplier: Int = 4
    /// Most updates piggybacked on one message.
    public var maxPiggyback: Int = 8
    /// Full-state exchange with one random alive member this often.
    public var pushPullInterval: UInt64 = 5000
    /// While no other alive member is known, send our state to every seed this often.
    public var joinRetryInterval: UInt64 = 500
    /// Full-state exchange with one retained dead member or unknown seed this often, so that the two
    /// sides of a healed partition find each other again. A seed whose address matches no known member
    /// (say, a crashed and forgotten one) keeps being tried at this pace, one full state per interval.
    public var reconnectInterval: UInt64 = 2000
    /// Dead and left members are remembered this long so their status spreads, then forgotten.
    public var deadRetention: UInt64 = 30000

    /// The defaults of the table above; set fields to tune.
    public init() {}
}
