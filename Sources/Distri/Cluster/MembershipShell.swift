import DistriCore
import DistriWire
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Runs the pure ``DistriCore/Membership`` for a node: ticks it on a timer, carries its messages
/// over the Distri wire (the internal `Gossip` service), and tells the node's task router which
/// members it may elect whenever the view changes (and on every tick, for their load).
final class MembershipShell: Sendable {
    static let gossipService = "Gossip"

    private struct State {
        var membership: Membership
        var lastContact: [String: UInt64] = [:]
        var counters = ClusterCounters()
        var random = SystemRandomNumberGenerator()
    }

    let settings: ClusterSettings
    let localID: String
    private let state: NodeLock<State>
    private let peers: Client
    private let logger: Logger
    private let eventLoop: EventLoop
    private let ticker = NodeLock<RepeatedTask?>(nil)
    private let dark: DarkWindow
    /// Told the members the router may elect.
    private let routing: @Sendable ([RoutingMember<NodeAddress>]) -> Void

    init(
        myself: Member, seeds: [NodeAddress], settings: ClusterSettings, peers: Client, dark: DarkWindow,
        logger: Logger, routing: @escaping @Sendable ([RoutingMember<NodeAddress>]) -> Void
    ) {
        self.dark = dark
        self.routing = routing
        self.settings = settings
        self.localID = myself.id
        let now = MonotonicClock.millis()
        self.state = NodeLock(
            State(
                membership: Membership(
                    myself: myself, seeds: seeds.map(\.description), settings: settings.swim, now: now)))
        self.peers = peers
        self.logger = logger
        self.eventLoop = peers.eventLoop
    }

    /// Starts ticking; `metadata` is asked for the node's current load and services on every tick.
    func start(metadata: @escaping @Sendable () -> MemberMetadata) {
        let interval = TimeAmount.milliseconds(Int64(settings.swim.tickInterval))
        let task = eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { [self] _ in
            let now = MonotonicClock.millis()
            let metadata = metadata()
            let (directives, view) = state.withLockedValue { state -> ([SWIMDirective], [RoutingMember<NodeAddress>]) in
                state.membership.updateMetadata(metadata)
                if settings.chaosRate > 0 { chaos(&state, now: now) }
                guard now >= dark.endsAt else { return ([], []) }
                return (state.membership.tick(now: now, random: &state.random), routingView(state.membership))
            }
            perform(directives, now: now)
            // Every tick: the members' gossiped load changes all the time.
            if now >= dark.endsAt { routing(view) }
        }
        ticker.withLockedValue { $0 = task }
    }

    /// Announces a graceful leave and stops ticking.
    func leave() async {
        ticker.withLockedValue { $0?.cancel() }
        let now = MonotonicClock.millis()
        let directives = state.withLockedValue { $0.membership.leave(now: now) }
        perform(directives, now: now)
    }

    /// Drops all traffic for `millis`, as a node cut off from the network would (fault injection).
    func goDark(millis: UInt64) {
        dark.darken(until: MonotonicClock.millis() + millis)
        state.withLockedValue { $0.counters.chaosOutages += 1 }
    }

    /// A `Gossip` request arrived.
    /// With TLS, `sender` is the name in the caller's node certificate, and the envelope must come
    /// from that member: membership carries only authenticated ids.
    func receive(_ bytes: ByteBuffer, from caller: Caller = .unchecked) throws(ServiceError) {
        let envelope: SWIMEnvelope
        do {
            envelope = try SWIMEnvelope.decode(Array(buffer: bytes))
        } catch {
            throw ServiceError(.malformed, "bad gossip: \(error)")
        }
        try caller.check(actingAs: envelope.from.id, "gossip from")
        let now = MonotonicClock.millis()
        let directives = state.withLockedValue { state -> [SWIMDirective] in
            guard now >= dark.endsAt else { return [] }
            state.counters.gossipBytesReceived += UInt64(bytes.readableBytes)
            state.lastContact[envelope.from.id] = now
            return state.membership.receive(envelope, now: now, random: &state.random)
        }
        perform(directives, now: now)
    }

    /// The address of a member.
    func address(of id: String) -> NodeAddress? {
        state.withLockedValue { $0.membership.member(id) }.flatMap { NodeAddress($0.address) }
    }

    /// Runs `body` on the current member list.
    func withMembers<T>(_ body: ([Member]) -> T) -> T {
        state.withLockedValue { body($0.membership.members) }
    }

    /// Members and counters for the stats.
    func snapshot() -> (members: [MemberSummary], counters: ClusterCounters) {
        state.withLockedValue { state in
            let members = state.membership.members.map { member in
                MemberSummary(
                    id: member.id, address: member.address, status: "\(member.status)",
                    incarnation: member.incarnation, load: member.metadata.load, services: member.metadata.services,
                    detectionMillis: state.counters.detectionMillis[member.id])
            }
            return (members, state.counters)
        }
    }

    /// The other members the router may send tasks to: alive ones electable, suspects listed (their
    /// tasks stay theirs), dead and departed ones left out.
    private func routingView(_ membership: Membership) -> [RoutingMember<NodeAddress>] {
        membership.members.compactMap { member in
            guard member.id != localID, member.status == .alive || member.status == .suspect,
                let address = NodeAddress(member.address)
            else { return nil }
            return RoutingMember(
                id: member.id, address: address, services: Set(member.metadata.services), load: member.metadata.load,
                capacity: member.metadata.capacity, electable: member.status == .alive)
        }
    }

    private func chaos(_ state: inout State, now: UInt64) {
        guard now >= dark.endsAt else { return }
        // Ticks come every tickInterval ms: scale the per-second rate to one tick.
        let perTick = settings.chaosRate * Double(settings.swim.tickInterval) / 1000
        if Double.random(in: 0..<1, using: &state.random) < perTick {
            let outage = UInt64.random(in: 500...3000, using: &state.random)
            dark.darken(until: now + outage)
            state.counters.chaosOutages += 1
            logger.warning("chaos: going dark", metadata: ["until.ms": "\(outage)"])
        }
    }

    private func perform(_ directives: [SWIMDirective], now: UInt64) {
        var changed = false
        defer {
            // A member declared dead gives up its forwarded tasks at once, not at the next tick.
            if changed { routing(state.withLockedValue { routingView($0.membership) }) }
        }
        for directive in directives {
            switch directive {
            case .send(let envelope, let to):
                guard let address = NodeAddress(to) else { continue }
                let bytes = envelope.encode()
                state.withLockedValue {
                    $0.counters.gossipMessagesSent += 1
                    $0.counters.gossipBytesSent += UInt64(bytes.count)
                }
                peers.call(
                    ByteBuffer(bytes: bytes), service: Self.gossipService, node: address,
                    timeout: .milliseconds(Int64(settings.swim.probeInterval) * 5), routing: .local
                ).whenFailure { [self] error in
                    guard (error as? ClientError)?.kind == .connectFailed else { return }
                    let now = MonotonicClock.millis()
                    let more = state.withLockedValue { $0.membership.sendFailed(to: to, now: now) }
                    perform(more, now: now)
                }
            case .statusChanged(let member, let previous):
                changed = true
                observe(member, previous: previous, now: now)
            }
        }
    }

    private func observe(_ member: Member, previous: MemberStatus?, now: UInt64) {
        state.withLockedValue { state in
            switch member.status {
            case .alive:
                state.counters.detectionMillis[member.id] = nil
            case .dead:
                let last = state.lastContact[member.id] ?? now
                state.counters.detectionMillis[member.id] = now - min(last, now)
                state.counters.membersDeclaredDead += 1
            case .suspect:
                state.counters.membersSuspected += 1
            case .left:
                break
            }
        }
        logger.info(
            "member \(member.status)",
            metadata: [
                "member.id": "\(member.id)", "member.address": "\(member.address)",
                "previous": "\(previous.map { "\($0)" } ?? "unknown")", "incarnation": "\(member.incarnation)",
            ])
    }
}

extension MembershipShell {
    /// The other replicas for the DB: `known` (every member that has not left, for quorums) and
    /// `alive` (alive or suspected: they get messages).
    func replicaPeers() -> (known: Set<String>, alive: Set<String>) {
        withMembers { members in
            var known: Set<String> = []
            var alive: Set<String> = []
            for member in members where member.id != localID && member.status != .left {
                known.insert(member.id)
                if member.status == .alive || member.status == .suspect { alive.insert(member.id) }
            }
            return (known, alive)
        }
    }
}
