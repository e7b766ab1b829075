@testable import DistriCore

/// A discrete-event simulation of `Membership` nodes on a simulated network that can drop, delay,
/// duplicate and reorder messages and partition nodes; nodes can crash (losing all state), restart with
/// the same id, and leave. Every message goes through `encode`/`decode`, so its size is measured.
struct SimulatedCluster {
    struct Node {
        let id: String
        let address: String
        var membership: Membership?
        var random: SimulationRandom
        /// Bumped on every start and crash, so stale ticks of a previous life are ignored.
        var generation = 0
        var hasLeft = false
        var isRunning: Bool { membership != nil }
    }

    /// A status change some node reported.
    struct StatusChange {
        let time: UInt64
        let observer: Int
        let member: Member
        let previous: MemberStatus?
    }

    private enum Event {
        case tick(node: Int, generation: Int)
        case deliver([UInt8], to: Int, from: Int)
    }

    private(set) var now: UInt64 = 0
    private(set) var nodes: [Node]
    let settings: SWIMSettings
    var random: SimulationRandom
    private var queue = EventQueue<Event>()
    private let indexByAddress: [String: Int]

    // The network.
    var lossRate = 0.0
    var duplicateRate = 0.0
    var maxDelay: UInt64 = 5
    /// The one-way delay every message takes at least (a WAN link); the jitter is up to `maxDelay` more.
    var minDelay: UInt64 = 0
    /// Nodes reach each other only when their groups are equal.
    var partition: [Int]

    // Observations.
    private(set) var statusChanges: [StatusChange] = []
    private(set) var bytesSent: [Int]
    private(set) var messagesSent: [Int]
    private(set) var decodeFailures = 0
    /// When set, every event is described here.
    var trace: [String]?

    init(nodeCount: Int, seed: UInt64, settings: SWIMSettings = .init()) {
        var random = SimulationRandom(seed: seed)
        nodes = (0..<nodeCount).map { index in
            Node(
                id: "node-\(index)", address: "10.0.0.\(index + 1):7946",
                random: SimulationRandom(seed: random.next()))
        }
        self.random = random
        self.settings = settings
        partition = Array(repeating: 0, count: nodeCount)
        bytesSent = Array(repeating: 0, count: nodeCount)
        messagesSent = Array(repeating: 0, count: nodeCount)
        indexByAddress = Dictionary(uniqueKeysWithValues: nodes.enumerated().map { ($1.address, $0) })
    }

    var runningNodes: [Int] { nodes.indices.filter { nodes[$0].isRunning } }

    // MARK: - Node lifecycle

    /// Starts (or restarts, with all state lost) node `index` knowing every other address as a seed.
    mutating func start(_ index: Int, incarnation: UInt64) {
        nodes[index].generation += 1
        nodes[index].hasLeft = false
        let myself = Member(id: nodes[index].id, address: nodes[index].address, incarnation: incarnation)
        let seeds = nodes.map(\.address)
        nodes[index].membership = Membership(myself: myself, seeds: seeds, settings: settings, now: now)
        log("start \(nodes[index].id) incarnation \(incarnation)")
        let phase = UInt64.random(in: 0..<settings.tickInterval, using: &random)
        queue.schedule(.tick(node: index, generation: nodes[index].generation), at: now + phase)
    }

    mutating func crash(_ index: Int) {
        nodes[index].membership = nil
        nodes[index].generation += 1
        log("crash \(nodes[index].id)")
    }

    mutating func leave(_ index: Int) {
        guard var membership = nodes[index].membership else { return }
        nodes[index].membership = nil
        let directives = membership.leave(now: now)
        nodes[index].membership = membership
        log("leave \(nodes[index].id)")
        perform(directives, of: index)
        nodes[index].membership = nil
        nodes[index].generation += 1
        nodes[index].hasLeft = true
    }

    mutating func updateMetadata(_ index: Int, _ metadata: MemberMetadata) {
        nodes[index].membership?.updateMetadata(metadata)
    }

    // MARK: - Running

    /// Processes events up to and including `time`.
    mutating func run(until time: UInt64) {
        while let next = queue.nextTime, next <= time, let (at, event) = queue.pop() {
            now = at
            switch event {
            case .tick(let index, let generation):
                guard nodes[index].generation == generation, var membership = nodes[index].membership else { continue }
                nodes[index].membership = nil
                let directives = membership.tick(now: now, random: &nodes[index].random)
                nodes[index].membership = membership
                queue.schedule(.tick(node: index, generation: generation), at: now + settings.tickInterval)
                perform(directives, of: index)
            case .deliver(let bytes, let index, let sender):
                guard var membership = nodes[index].membership, partition[index] == partition[sender] else { continue }
                let envelope: SWIMEnvelope
                do {
                    envelope = try SWIMEnvelope.decode(bytes)
                } catch {
                    decodeFailures += 1
                    continue
                }
                nodes[index].membership = nil
                let directives = membership.receive(envelope, now: now, random: &nodes[index].random)
                nodes[index].membership = membership
                perform(directives, of: index)
            }
        }
        now = max(now, time)
    }

    private mutating func perform(_ directives: [SWIMDirective], of index: Int) {
        for directive in directives {
            switch directive {
            case .send(let envelope, let address):
                send(envelope, to: address, from: index)
            case .statusChanged(let member, let previous):
                statusChanges.append(StatusChange(time: now, observer: index, member: member, previous: previous))
                log(
                    "\(nodes[index].id) sees \(member.id) \(member.status) @\(member.incarnation) (was \(previous.map { "\($0)" } ?? "unknown"))"
                )
            }
        }
    }

    private mutating func send(_ envelope: SWIMEnvelope, to address: String, from sender: Int) {
        let bytes = envelope.encode()
        bytesSent[sender] += bytes.count
        messagesSent[sender] += 1
        guard let target = indexByAddress[address] else { return }
        if !nodes[target].isRunning {
            // Sometimes the transport notices at once (connection refused).
            if random.chance(0.5), var membership = nodes[sender].membership {
                nodes[sender].membership = nil
                let directives = membership.sendFailed(to: address, now: now)
                nodes[sender].membership = membership
                perform(directives, of: sender)
            }
            return
        }
        guard partition[sender] == partition[target], !random.chance(lossRate) else { return }
        queue.schedule(.deliver(bytes, to: target, from: sender), at: now + delay())
        if random.chance(duplicateRate) {
            queue.schedule(.deliver(bytes, to: target, from: sender), at: now + delay())
        }
    }

    private mutating func delay() -> UInt64 {
        minDelay + UInt64.random(in: 0...maxDelay, using: &random)
    }

    private mutating func log(_ line: String) {
        if trace != nil {
            trace!.append("\(now) ms: \(line)")
        }
    }

    // MARK: - Checks

    /// Nil when every running node sees exactly the running nodes as alive and every other node as
    /// gone or forgotten; otherwise what is wrong.
    func disagreement() -> String? {
        let running = Set(runningNodes.map { nodes[$0].id })
        for index in runningNodes {
            guard let membership = nodes[index].membership else { continue }
            let alive = Set(membership.aliveMembers.map(\.id))
            if alive != running {
                return "\(nodes[index].id) sees alive \(alive.sorted()), running are \(running.sorted())"
            }
            for node in nodes where !running.contains(node.id) {
                if let member = membership.member(node.id), !member.status.isGone {
                    return "\(nodes[index].id) sees stopped \(node.id) as \(member.status)"
                }
            }
        }
        return nil
    }
}
