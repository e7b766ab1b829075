/// The SWIM membership protocol with the Lifeguard extensions, for one node, as a pure state machine.
///
/// The shell owns the clock, the randomness and the network: it calls ``tick(now:random:)`` every
/// ``SWIMSettings/tickInterval`` ms, hands every arriving envelope to ``receive(_:now:random:)``, and
/// performs the returned ``SWIMDirective``s. Time is a monotonic millisecond count.
///
/// - Failure detection: one probe per interval over a shuffled round-robin of the members, a direct
///   `ping`, then `pingRequest`s through ``SWIMSettings/indirectProbes`` others, then suspicion.
/// - Suspicion: refuted by the suspect with a higher incarnation, or it becomes `dead` when its
///   Lifeguard timeout (shrinking with independent confirmations) fires.
/// - Dissemination: status and incarnation changes are piggybacked on pings and acks a bounded number
///   of times; metadata rides only on every envelope's `from`; a full push/pull exchange runs periodically.
/// - Local health (Lifeguard): missed acks and nacks and having to refute slow this node's probing.
public struct Membership: Sendable {
    /// A known member and when its status last changed.
    struct Record: Sendable {
        var member: Member
        var since: UInt64
    }

    /// The probe in flight.
    struct Probe: Sendable {
        let target: String
        let address: String
        let sequence: UInt64
        /// When the ping left.
        let sentAt: UInt64
        /// When to fall back to indirect probes.
        let indirectAt: UInt64
        /// End of the probe interval: no ack by then makes the target suspect.
        let deadline: UInt64
        var indirectSent = false
        var directFailed = false
        var expectedNacks = 0
        var nacks = 0
    }

    /// A ping sent on behalf of another member's `pingRequest`.
    struct Relay: Sendable {
        let requester: String
        let requesterAddress: String
        let requesterSequence: UInt64
        let targetAddress: String
        let nackAt: UInt64
        let expiresAt: UInt64
        var nackSent = false
    }

    /// This node's own record.
    public internal(set) var myself: Member
    /// The settings this instance runs with.
    public let settings: SWIMSettings
    let seeds: [String]
    var others: [String: Record] = [:]
    var suspicions: [String: Suspicion] = [:]
    var gossip = GossipQueue()
    var probeOrder: [String] = []
    var probeIndex = 0
    var probe: Probe?
    var relays: [UInt64: Relay] = [:]
    var sequence: UInt64 = 0
    var health = 0
    /// Round trips of direct probes: on a WAN the probe timeout and interval follow them.
    public internal(set) var roundTrips = RoundTripEstimator()

    /// The direct-probe timeout in force: the configured one, or the measured round trip's timeout
    /// (mean + 4 × variation, up to ``SWIMSettings/maxProbeTimeout``) when that is longer. Before the
    /// first direct ack it is 1 s (RFC 6298's initial timeout): a node that starts on a WAN must not
    /// suspect its first targets before it knows how far they are.
    public var probeTimeout: UInt64 {
        max(settings.probeTimeout, measuredProbeTimeout ?? min(1_000, settings.maxProbeTimeout))
    }

    /// The probe interval in force: the configured one, or three probe timeouts when that is
    /// longer, so that indirect probes (two round trips through a relay) can answer within it.
    public var probeInterval: UInt64 {
        max(settings.probeInterval, 3 * (probeTimeout > settings.probeTimeout ? probeTimeout : 0))
    }

    /// The interval suspicion timeouts scale with: the configured one, or three measured probe
    /// timeouts when that is longer (a suspicion that arrives before this node measured anything was
    /// raised by members that did).
    var suspicionInterval: UInt64 {
        max(settings.probeInterval, 3 * (measuredProbeTimeout ?? 0))
    }

    /// The measured round trip's timeout, up to ``SWIMSettings/maxProbeTimeout`` (nil before any).
    var measuredProbeTimeout: UInt64? {
        roundTrips.timeout.map { min($0, settings.maxProbeTimeout) }
    }
    var nextProbeAt: UInt64
    var nextJoinAt: UInt64
    var nextPushPullAt: UInt64
    var nextReconnectAt: UInt64
    var nextReapAt: UInt64

    /// A node that knows only itself and will join through `seeds` ("host:port") on its first tick.
    /// `myself.incarnation` should be fresh for every start (e.g. wall-clock ms), but a restart at a lower
    /// incarnation is also handled: the node refutes whatever the cluster remembers about it.
    public init(myself: Member, seeds: [String], settings: SWIMSettings = .init(), now: UInt64) {
        precondition(settings.tickInterval > 0, "tickInterval must be positive")
        precondition(settings.probeTimeout < settings.probeInterval, "probeTimeout must be shorter than probeInterval")
        precondition(settings.indirectProbes >= 0 && settings.maxPiggyback >= 0, "counts must not be negative")
        var myself = myself
        myself.status = .alive
        myself.metadata.services.sort()
        self.myself = myself
        self.settings = settings
        self.seeds = seeds.filter { $0 != myself.address }
        nextProbeAt = now
        nextJoinAt = now
        nextPushPullAt = now + settings.pushPullInterval
        nextReconnectAt = now + settings.reconnectInterval
        nextReapAt = now + 1000
    }

    /// Every known member including myself, sorted by id.
    public var members: [Member] {
        (others.values.map(\.member) + [myself]).sorted { $0.id < $1.id }
    }

    /// Members whose status is `alive`, including myself, sorted by id.
    public var aliveMembers: [Member] {
        members.filter { $0.status == .alive }
    }

    /// The member with this id, if known (myself included).
    public func member(_ id: String) -> Member? {
        id == myself.id ? myself : others[id]?.member
    }

    /// The Lifeguard local-health score, 0...``SWIMSettings/maxLocalHealth``; 0 is healthy. Probe interval
    /// and probe timeout are multiplied by `localHealth + 1`.
    public var localHealth: Int { health }

    /// Advances the protocol's timers. Call every ``SWIMSettings/tickInterval`` ms; extra calls are harmless.
    public mutating func tick(now: UInt64, random: inout some RandomNumberGenerator) -> [SWIMDirective] {
        guard myself.status != .left else { return [] }
        var out: [SWIMDirective] = []
        expireSuspicions(now: now, into: &out)
        advanceProbe(now: now, random: &random, into: &out)
        expireRelays(now: now, into: &out)
        exchangeState(now: now, random: &random, into: &out)
        reap(now: now)
        return out
    }

    /// Sending to `address` failed at once (e.g. connection refused). Treated like a missed direct ack:
    /// indirect probes start on the next tick, and relayed pings to that address are nacked now.
    public mutating func sendFailed(to address: String, now: UInt64) -> [SWIMDirective] {
        guard myself.status != .left else { return [] }
        if var probe, probe.address == address, !probe.indirectSent {
            probe.directFailed = true
            self.probe = probe
        }
        var out: [SWIMDirective] = []
        for sequence in relays.keys.sorted() {
            guard var relay = relays[sequence], relay.targetAddress == address, !relay.nackSent else { continue }
            relay.nackSent = true
            relays[sequence] = relay
            out.append(send(.nack(sequence: relay.requesterSequence), to: relay.requesterAddress))
        }
        return out
    }

    /// Updates my own metadata and bumps `metadataVersion`. It spreads on the `from` of every message
    /// this node sends; it is not gossiped as an update.
    public mutating func updateMetadata(_ metadata: MemberMetadata) {
        var metadata = metadata
        metadata.services.sort()
        myself.metadata = metadata
        myself.metadataVersion += 1
    }

    /// Leaves gracefully: marks myself `left` at a higher incarnation and returns a message announcing it
    /// to every member not known to be gone. Afterwards every call returns no directives.
    public mutating func leave(now: UInt64) -> [SWIMDirective] {
        guard myself.status != .left else { return [] }
        let previous = myself.status
        myself.incarnation += 1
        myself.status = .left
        probe = nil
        relays = [:]
        var out: [SWIMDirective] = [.statusChanged(myself, previous: previous)]
        for id in others.keys.sorted() {
            guard let member = others[id]?.member, !member.status.isGone else { continue }
            out.append(send(.pushPull(members: [myself], isReply: true), to: member.address))
        }
        return out
    }

    // MARK: - Helpers shared by the extensions

    func send(_ message: SWIMMessage, to address: String) -> SWIMDirective {
        .send(SWIMEnvelope(from: myself, message: message), to: address)
    }

    /// Members not known to be gone, myself included.
    var activeCount: Int {
        others.values.reduce(1) { $0 + ($1.member.status.isGone ? 0 : 1) }
    }

    /// Sorted ids of other members with the given status.
    func otherIDs(where include: (MemberStatus) -> Bool) -> [String] {
        others.compactMap { include($0.value.member.status) ? $0.key : nil }.sorted()
    }

    mutating func adjustHealth(_ delta: Int) {
        health = min(max(health + delta, 0), settings.maxLocalHealth)
    }

    /// Gossip for a message to `recipient`: first what we believe about the recipient if it is not alive
    /// (so it can refute at once), then the least-sent queued updates.
    mutating func piggyback(for recipient: String?) -> [Member] {
        var result: [Member] = []
        if let recipient, let record = others[recipient], record.member.status != .alive {
            result.append(record.member)
        }
        guard !gossip.isEmpty else { return result }
        let digits = String(activeCount).count  // ceil(log10(n + 1)) for n ≥ 1
        let limit = max(1, settings.retransmitMultiplier * digits)
        let excluding: Set<String> = result.isEmpty ? [] : [result[0].id]
        result += gossip.take(settings.maxPiggyback - result.count, limit: limit, excluding: excluding)
        return result
    }

    private mutating func expireSuspicions(now: UInt64, into out: inout [SWIMDirective]) {
        guard !suspicions.isEmpty else { return }
        let expired = suspicions.compactMap { now >= $0.value.deadline ? $0.key : nil }.sorted()
        for id in expired {
            suspicions[id] = nil
            guard var record = others[id], record.member.status == .suspect else { continue }
            record.member.status = .dead
            record.since = now
            others[id] = record
            gossip.enqueue(record.member)
            out.append(.statusChanged(record.member, previous: .suspect))
        }
    }

    private mutating func expireRelays(now: UInt64, into out: inout [SWIMDirective]) {
        guard !relays.isEmpty else { return }
        for sequence in relays.keys.sorted() {
            guard var relay = relays[sequence] else { continue }
            if !relay.nackSent && now >= relay.nackAt {
                relay.nackSent = true
                relays[sequence] = relay
                out.append(send(.nack(sequence: relay.requesterSequence), to: relay.requesterAddress))
            }
            if now >= relay.expiresAt {
                relays[sequence] = nil
            }
        }
    }

    /// Join, periodic push/pull, and reconnecting to dead members and unknown seeds.
    private mutating func exchangeState(
        now: UInt64, random: inout some RandomNumberGenerator, into out: inout [SWIMDirective]
    ) {
        if now >= nextJoinAt {
            nextJoinAt = now + settings.joinRetryInterval
            if !others.values.contains(where: { $0.member.status == .alive }) {
                for seed in seeds {
                    out.append(send(.pushPull(members: members, isReply: false), to: seed))
                }
            }
        }
        if now >= nextPushPullAt {
            nextPushPullAt = now + settings.pushPullInterval
            let alive = otherIDs { $0 == .alive }
            if let id = alive.randomElement(using: &random), let address = others[id]?.member.address {
                out.append(send(.pushPull(members: members, isReply: false), to: address))
            }
        }
        if now >= nextReconnectAt {
            nextReconnectAt = now + settings.reconnectInterval
            let known = Set(others.values.map(\.member.address))
            let dead = otherIDs { $0 == .dead }.compactMap { others[$0]?.member.address }
            let candidates = dead + seeds.filter { !known.contains($0) }
            if let address = candidates.randomElement(using: &random) {
                out.append(send(.pushPull(members: members, isReply: false), to: address))
            }
        }
    }

    /// Forgets dead and left members after ``SWIMSettings/deadRetention``.
    private mutating func reap(now: UInt64) {
        guard now >= nextReapAt else { return }
        nextReapAt = now + 1000
        for id in otherIDs(where: \.isGone) {
            guard let record = others[id], now >= record.since + settings.deadRetention else { continue }
            others[id] = nil
            suspicions[id] = nil
            gossip.remove(id)
        }
    }
}
