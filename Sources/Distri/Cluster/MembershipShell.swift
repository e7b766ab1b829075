import DistriCore
import DistriWire
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Runs the pure ``DistriCore/Membership`` for a node: ticks it on a timer, carries its messages
/// over the Distri wire (the internal `Gossip` service), and answers election queries from its view.
final class MembershipShell: Sendable {
    static let gossipService = "Gossip"

    private struct State {
        var membership: Membership
        var firstSeenAlive: [String: UInt64] = [:]
        var lastContact: [String: UInt64] = [:]
        var outstanding: [String: Int] = [:]
        var counters = ClusterCounters()
        var darkUntil: UInt64 = 0
        var downWatchers: [String: [UInt64: @Sendable () -> Void]] = [:]
        var nextWatcher: UInt64 = 0
        var random = SystemRandomNumberGenerator()
    }

    let settings: ClusterSettings
    let localID: String
    private let state: NIOLockedValueBox<State>
    private let peers: Client
    private let logger: Logger
    private let eventLoop: EventLoop
    private let ticker = NIOLockedValueBox<RepeatedTask?>(nil)

    init(myself: Member, seeds: [NodeAddress], settings: ClusterSettings, peers: Client, logger: Logger) {
        self.settings = settings
        self.localID = myself.id
        let now = MonotonicClock.millis()
        self.state = NIOLockedValueBox(
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
            let directives = state.withLockedValue { state -> [SWIMDirective] in
                state.membership.updateMetadata(metadata())
                if settings.chaosRate > 0 { chaos(&state, now: now) }
                guard now >= state.darkUntil else { return [] }
                return state.membership.tick(now: now, random: &state.random)
            }
            perform(directives, now: now)
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
        let now = MonotonicClock.millis()
        state.withLockedValue {
            $0.darkUntil = now + millis
            $0.counters.chaosOutages += 1
        }
    }

    /// True while chaos mode or fault injection keeps this node dark.
    var isDark: Bool {
        let now = MonotonicClock.millis()
        return state.withLockedValue { now < $0.darkUntil }
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
            guard now >= state.darkUntil else { return [] }
            state.counters.gossipBytesReceived += UInt64(bytes.readableBytes)
            state.lastContact[envelope.from.id] = now
            return state.membership.receive(envelope, now: now, random: &state.random)
        }
        perform(directives, now: now)
    }

    /// Alive members offering `service`, scored for an election; the local node uses `localLoad`.
    func candidates(for service: String, localLoad: Double, localCapacity: Int, excluding: Set<String>)
        -> [ElectionCandidate]
    {
        let now = MonotonicClock.millis()
        return state.withLockedValue { state in
            state.membership.aliveMembers.compactMap { member -> ElectionCandidate? in
                guard !excluding.contains(member.id) else { return nil }
                if member.id == localID {
                    return ElectionCandidate(id: member.id, load: localLoad, capacity: localCapacity)
                }
                guard member.metadata.services.contains(service) else { return nil }
                let seen = state.firstSeenAlive[member.id] ?? 0
                let age = now >= seen ? now - seen : 0
                let warmUp =
                    settings.warmUpMillis == 0 ? 0 : max(0, 1 - Double(age) / Double(settings.warmUpMillis))
                return ElectionCandidate(
                    id: member.id, load: member.metadata.load, outstanding: state.outstanding[member.id] ?? 0,
                    capacity: member.metadata.capacity, warmUp: warmUp)
            }
        }
    }

    /// Elects an executor for a task.
    func elect(_ candidates: [ElectionCandidate], taskID: UInt64) -> ElectionCandidate? {
        state.withLockedValue { state in
            Election.elect(candidates, local: localID, taskID: taskID, policy: settings.election, random: &state.random)
        }
    }

    /// The address of a member.
    func address(of id: String) -> NodeAddress? {
        state.withLockedValue { $0.membership.member(id) }.flatMap { NodeAddress($0.address) }
    }

    /// Counts a task sent to `id` until ``finishedForward(to:)``.
    func startedForward(to id: String) {
        state.withLockedValue {
            $0.outstanding[id, default: 0] += 1
            $0.counters.tasksForwarded += 1
        }
    }

    func finishedForward(to id: String, failedOver: Bool) {
        state.withLockedValue {
            $0.outstanding[id, default: 1] -= 1
            if failedOver { $0.counters.failovers += 1 }
        }
    }

    /// Calls `action` once if member `id` is declared dead or leaves before
    /// ``unwatch(_:token:)``. Returns the token.
    func watchDown(_ id: String, action: @escaping @Sendable () -> Void) -> UInt64 {
        state.withLockedValue { state in
            state.nextWatcher += 1
            state.downWatchers[id, default: [:]][state.nextWatcher] = action
            return state.nextWatcher
        }
    }

    func unwatch(_ id: String, token: UInt64) {
        state.withLockedValue { _ = $0.downWatchers[id]?.removeValue(forKey: token) }
    }

    func countElectionWon() { state.withLockedValue { $0.counters.electionsWon += 1 } }
    func countDeduplicated() { state.withLockedValue { $0.counters.deduplicated += 1 } }

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

    private func chaos(_ state: inout State, now: UInt64) {
        guard now >= state.darkUntil else { return }
        // Ticks come every tickInterval ms: scale the per-second rate to one tick.
        let perTick = settings.chaosRate * Double(settings.swim.tickInterval) / 1000
        if Double.random(in: 0..<1, using: &state.random) < perTick {
            state.darkUntil = now + UInt64.random(in: 500...3000, using: &state.random)
            state.counters.chaosOutages += 1
            logger.warning("chaos: going dark", metadata: ["until.ms": "\(state.darkUntil - now)"])
        }
    }

    private func perform(_ directives: [SWIMDirective], now: UInt64) {
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
                observe(member, previous: previous, now: now)
            }
        }
    }

    private func observe(_ member: Member, previous: MemberStatus?, now: UInt64) {
        let watchers = state.withLockedValue { state -> [@Sendable () -> Void] in
            // Only a member declared dead (or gone) gives up its tasks: a suspect may refute and still
            // be running them, and running a task again elsewhere would run it twice.
            guard member.status == .dead || member.status == .left else { return [] }
            return state.downWatchers.removeValue(forKey: member.id).map { Array($0.values) } ?? []
        }
        for watcher in watchers { watcher() }
        state.withLockedValue { state in
            switch member.status {
            case .alive:
                if previous != .alive { state.firstSeenAlive[member.id] = now }
                state.counters.detectionMillis[member.id] = nil
            case .dead:
                let last = state.lastContact[member.id] ?? now
                state.counters.detectionMillis[member.id] = now - min(last, now)
            case .suspect, .left:
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
