@testable import DistriCore

/// A discrete-event simulation of ``ReplicaEngine`` replicas run the way the shell runs them: messages
/// with random delays (so reordered), lost requests and answers (the sender times out), duplicated
/// requests, partitions, crashes and restarts from the durable log or with an empty data dir. Membership
/// is simulated: a node sees as alive the peers it can reach that are up, after a random lag.
/// All randomness comes from the seed; nothing reads a real clock.
struct SimulatedReplicaCluster {
    struct Node {
        let id: String
        var engine: ReplicaEngine?
        /// The durable log, exactly as persisted, in order.
        var log: [PersistedEntry] = []
        /// Bumped on every crash and start, so that events of a previous life are ignored.
        var generation = 0
        /// This node's wall clock runs ahead of the simulated time by this much.
        var skew: UInt64
        var isUp: Bool { engine != nil }
    }

    /// Scripted events: client bursts and faults.
    enum Scripted {
        case clients
        case partition([Int])
        case heal
        case crash(Int)
        case restart(Int, wipe: Bool)
        case compact(Int)
    }

    enum Event {
        case tick(Int, generation: Int)
        case request(from: Int, generation: Int, to: Int, number: UInt64, ReplicaRequest)
        case answer(to: Int, generation: Int, from: Int, number: UInt64, ReplicaResponse)
        case membership(Int, generation: Int)
        case scripted(Scripted)
    }

    struct Network {
        var loss = 0.0
        var duplicates = 0.0
        var maxDelay: UInt64 = 20
        /// Chance of a slow message (up to `slowDelay`).
        var slow = 0.0
        var slowDelay: UInt64 = 400
        var membershipLag: UInt64 = 50
        var timeout: UInt64 = 1_000
    }

    static let tickInterval: UInt64 = 20

    private(set) var now: UInt64 = 0
    var nodes: [Node]
    let settings: ReplicaSettings
    var network: Network
    /// Nodes reach each other when their groups are equal.
    var groups: [Int]
    var queue = EventQueue<Event>()
    /// Per node, its requests awaiting an answer, with the time they time out.
    var pending: [[UInt64: UInt64]]
    var oracle: ReplicationOracle
    var workload: ReplicationWorkload
    /// Separate streams, so that the script does not shift when the network draws differently.
    var random: SplitMix64
    var netRandom: SplitMix64
    private let index: [String: Int]
    /// Nodes ever restarted with an empty data dir.
    private(set) var wiped: Set<Int> = []
    private(set) var restarts = 0
    /// Bumped on every partition, heal, crash and start.
    private(set) var topology = 0
    /// When set, every event is described here.
    var traceLog: TraceLog?
    var trace: [String]? { traceLog?.lines }
    var failure: String? { oracle.failure }

    init(nodeCount: Int, seed: UInt64, settings: ReplicaSettings, network: Network, skew: UInt64, limit: Double) {
        var random = SplitMix64(seed: seed)
        nodes = (0..<nodeCount).map {
            Node(id: "n\($0)", skew: skew == 0 ? 0 : UInt64.random(in: 0...skew, using: &random))
        }
        index = Dictionary(uniqueKeysWithValues: nodes.indices.map { ("n\($0)", $0) })
        self.settings = settings
        self.network = network
        groups = Array(repeating: 0, count: nodeCount)
        pending = Array(repeating: [:], count: nodeCount)
        oracle = ReplicationOracle(nodeCount: nodeCount, limit: limit)
        workload = ReplicationWorkload(seed: random.next(), limit: limit)
        netRandom = SplitMix64(seed: random.next())
        self.random = random
    }

    /// Adds a line to the trace, when tracing.
    func note(_ message: @autoclosure () -> String) {
        traceLog?.lines.append("\(now) \(message())")
    }

    /// The wall clock `node` reads.
    func local(_ node: Int) -> UInt64 { now + nodes[node].skew }

    func reachable(_ a: Int, _ b: Int) -> Bool { groups[a] == groups[b] }

    /// The peers `node` sees as alive.
    func view(of node: Int) -> Set<String> {
        Set(nodes.indices.filter { $0 != node && nodes[$0].isUp && reachable(node, $0) }.map { nodes[$0].id })
    }

    var upNodes: [Int] { nodes.indices.filter { nodes[$0].isUp } }

    // MARK: Running

    mutating func schedule(_ scripted: Scripted, at time: UInt64) {
        queue.schedule(.scripted(scripted), at: time)
    }

    /// Runs events up to `time` (or the first failure).
    mutating func run(until time: UInt64) {
        while failure == nil, let next = queue.nextTime, next <= time {
            let (at, event) = queue.pop()!
            now = at
            handle(event)
        }
        if failure == nil { now = max(now, time) }
    }

    private mutating func handle(_ event: Event) {
        switch event {
        case .tick(let node, let generation):
            guard nodes[node].generation == generation, nodes[node].isUp else { return }
            // The shell's request timeouts, checked as the timer fires.
            for number in pending[node].filter({ $0.value <= now }).map(\.key).sorted() {
                pending[node][number] = nil
                note("\(nodes[node].id) request #\(number) timed out")
                let actions = nodes[node].engine!.requestFailed(number, now: local(node))
                process(actions, at: node)
            }
            let actions = nodes[node].engine!.tick(now: local(node))
            process(actions, at: node)
            queue.schedule(.tick(node, generation: generation), at: now + Self.tickInterval)
        case .request(let from, let generation, let to, let number, let request):
            guard nodes[to].isUp, reachable(from, to) else {
                note("lost request \(number) \(nodes[from].id)->\(nodes[to].id)")
                return
            }
            note("\(nodes[to].id) handles \(describe(request)) #\(number) from \(nodes[from].id)")
            let (response, actions) = nodes[to].engine!.handle(request, from: nodes[from].id, now: local(to))
            process(actions, at: to)
            guard !netRandom.chance(network.loss) else {
                note("lost answer \(number) \(nodes[to].id)->\(nodes[from].id)")
                return
            }
            queue.schedule(
                .answer(to: from, generation: generation, from: to, number: number, response), at: now + delay())
        case .answer(let node, let generation, let from, let number, let response):
            guard nodes[node].generation == generation, nodes[node].isUp, reachable(node, from),
                pending[node].removeValue(forKey: number) != nil
            else { return }
            note("\(nodes[node].id) receives \(describe(response)) #\(number) from \(nodes[from].id)")
            let actions = nodes[node].engine!.receive(response, for: number, now: local(node))
            process(actions, at: node)
        case .membership(let node, let generation):
            guard nodes[node].generation == generation, nodes[node].isUp else { return }
            refreshMembership(node)
        case .scripted(let scripted):
            run(scripted)
        }
    }

    private mutating func run(_ scripted: Scripted) {
        switch scripted {
        case .clients:
            clientBurst()
        case .partition(let groups):
            note("partition \(groups)")
            self.groups = groups
            membershipChanged()
        case .heal:
            note("heal")
            groups = Array(repeating: 0, count: nodes.count)
            membershipChanged()
        case .crash(let node):
            guard nodes[node].isUp else { return }
            note("crash \(nodes[node].id)")
            nodes[node].engine = nil
            nodes[node].generation += 1
            pending[node] = [:]
            oracle.crashed(node)
            membershipChanged()
        case .restart(let node, let wipe):
            guard !nodes[node].isUp else { return }
            restarts += 1
            start(node, wipe: wipe)
        case .compact(let node):
            guard let engine = nodes[node].engine else { return }
            note("\(nodes[node].id) compacts its log of \(nodes[node].log.count) entries")
            nodes[node].log = engine.snapshot()
        }
    }

    /// Starts `node`: empty at first or when `wipe`, otherwise rebuilt from its log.
    mutating func start(_ node: Int, wipe: Bool) {
        nodes[node].generation += 1
        pending[node] = [:]
        let epoch = random.next()
        var engine = ReplicaEngine(node: nodes[node].id, epoch: epoch, seed: random.next(), settings: settings)
        if wipe {
            if !nodes[node].log.isEmpty { wiped.insert(node) }
            nodes[node].log = []
        } else {
            engine.restore(nodes[node].log, now: local(node))
        }
        note("start \(nodes[node].id) \(wipe ? "empty" : "from \(nodes[node].log.count) log entries")")
        nodes[node].engine = engine
        check(node)
        refreshMembership(node)
        queue.schedule(
            .tick(node, generation: nodes[node].generation),
            at: now + 1 + UInt64.random(in: 0..<Self.tickInterval, using: &netRandom))
        membershipChanged()
    }

    /// Every up node learns the current topology after its own lag.
    mutating func membershipChanged() {
        topology += 1
        for node in upNodes {
            let lag = network.membershipLag == 0 ? 0 : UInt64.random(in: 0...network.membershipLag, using: &netRandom)
            queue.schedule(.membership(node, generation: nodes[node].generation), at: now + lag)
        }
    }

    mutating func refreshMembership(_ node: Int) {
        let known = Set(nodes.map(\.id)).subtracting([nodes[node].id])
        let alive = view(of: node)
        let actions = nodes[node].engine!.setPeers(known: known, alive: alive, now: local(node))
        process(actions, at: node)
    }

    mutating func delay() -> UInt64 {
        if network.slow > 0 && netRandom.chance(network.slow) {
            return UInt64.random(in: 1...network.slowDelay, using: &netRandom)
        }
        return UInt64.random(in: 1...network.maxDelay, using: &netRandom)
    }

    // MARK: Actions

    /// Performs an engine's actions on behalf of `node`, in order (log entries before anything after them).
    mutating func process(_ actions: [ReplicaAction], at node: Int) {
        for action in actions {
            switch action {
            case .persist(let entries):
                nodes[node].log.append(contentsOf: entries)
            case .send(let peer, let number, let request):
                send(request, number: number, from: node, to: index[peer]!)
            case .completed(let operation, let result):
                note("\(nodes[node].id) completed op \(operation): \(describe(result))")
                oracle.completed(operation, result, at: node, time: now)
                if case .success = result, wiped.isEmpty, let write = oracle.writes[operation] {
                    checkReplicated(write)
                }
            case .readable(let operation, let result):
                note("\(nodes[node].id) read \(operation) readable: \(result)")
                oracle.readable(operation, result, store: nodes[node].engine!.store, topology: topology)
            }
        }
        check(node)
    }

    private mutating func send(_ request: ReplicaRequest, number: UInt64, from: Int, to: Int) {
        let generation = nodes[from].generation
        pending[from][number] = now + network.timeout
        guard reachable(from, to), !netRandom.chance(network.loss) else {
            note("\(nodes[from].id) -> \(nodes[to].id) #\(number) \(describe(request)) lost")
            return
        }
        let message = Event.request(from: from, generation: generation, to: to, number: number, request)
        queue.schedule(message, at: now + delay())
        if netRandom.chance(network.duplicates) { queue.schedule(message, at: now + delay()) }
    }

    /// A `majority` or `all` write is acknowledged only once enough replicas hold it (or a later write):
    /// checked on the up replicas the moment it completes (a replica that is down may hold it in its log).
    private mutating func checkReplicated(_ write: ReplicationOracle.Write) {
        guard write.consistency != .one else { return }
        let quorum = write.consistency == .all ? nodes.count : nodes.count / 2 + 1
        let holding = nodes.indices.filter { index in
            guard let engine = nodes[index].engine else { return true }
            return oracle.problem(with: write, in: engine.store) == nil
        }
        if holding.count < quorum {
            oracle.fail(
                "op \(write.operation) (\(write.consistency) on n\(write.node)) acknowledged while only "
                    + "\(holding.map { nodes[$0].id }) hold it or are down")
        }
    }

    /// The counter invariant, checked after every event on the node it touched.
    private mutating func check(_ node: Int) {
        guard let store = nodes[node].engine?.store else { return }
        oracle.checkCounter(store, node: nodes[node].id, time: now)
    }

    // MARK: Clients

    /// A client's write on `node`: applies it, records what it wrote, then performs the actions.
    mutating func perform(
        _ operation: DatabaseOperation, consistency: WriteConsistency, id: UInt64, client: Int, at node: Int,
        deadline: UInt64
    ) {
        oracle.started(
            id, at: node, generation: nodes[node].generation, kind: operation.isConditional ? .cas : .write,
            client: client)
        let actions = nodes[node].engine!.perform(
            operation, consistency: consistency, id: id, now: local(node), deadline: local(node) + deadline)
        let engine = nodes[node].engine!
        let refused = actions.contains {
            if case .completed(id, .failure) = $0 { return true }
            return false
        }
        if !refused, !operation.isConditional {
            oracle.applied(
                operation, id: id, consistency: consistency, node: node, stamp: engine.clock.last,
                store: engine.store)
        }
        note("\(nodes[node].id) performs op \(id) \(consistency) \(operation)")
        process(actions, at: node)
    }

    mutating func flush(_ node: Int) {
        let actions = nodes[node].engine!.flush(now: local(node))
        process(actions, at: node)
    }

    mutating func read(
        id: UInt64, consistency: ReadConsistency, session: SessionToken?, required: [UInt64], client: Int,
        at node: Int, deadline: UInt64
    ) {
        oracle.startedRead(
            id, at: node, generation: nodes[node].generation, client: client, required: required,
            session: session != nil, topology: topology)
        note("\(nodes[node].id) reads \(id) \(consistency) session \(session?.description ?? "-")")
        let actions = nodes[node].engine!.prepareRead(
            id: id, consistency: consistency, session: session, now: local(node), deadline: local(node) + deadline)
        process(actions, at: node)
    }

    // MARK: Descriptions for the trace

    private func describe(_ request: ReplicaRequest) -> String {
        switch request {
        case .push(let changes, let chain, _):
            "push(\(describe(changes))\(chain.map { " chain \($0.since)...\($0.upTo)" } ?? ""))"
        case .pull(let pull): "pull(since: \(pull.since.map { "\($0.epoch % 1000).\($0.sequence)" } ?? "digests"))"
        case .prepare(let key, let ballot): "prepare(\(key), \(ballot))"
        case .propose(let key, let ballot, let document): "propose(\(key), \(ballot), \(document.body ?? [:]))"
        case .commit(let key, let ballot, let document): "commit(\(key), \(ballot), \(document.body ?? [:]))"
        }
    }

    private func describe(_ changes: [DocumentChange]) -> String {
        changes.map { change in
            switch change {
            case .collection(let name, let created, let dropped):
                "\(name)[\(created)/\(dropped.map(\.description) ?? "-")]"
            case .document(let name, let document):
                "\(name)/\(document.id)@\(document.version)\(document.isDeleted ? "(deleted)" : "")"
            }
        }.joined(separator: " ")
    }

    private func describe(_ response: ReplicaResponse) -> String {
        switch response {
        case .merged: "merged"
        case .pulled(let reply):
            "pulled(\(describe(reply.changes)), upTo: \(reply.upTo.sequence), complete: \(reply.complete), "
                + "understood: \(reply.understood))"
        case .promise(let promise, let promised): "promise(\(promise != nil), \(promised))"
        case .accepted(let accepted, let promised): "accepted(\(accepted), \(promised))"
        }
    }

    private func describe(_ result: Result<WriteReceipt, DatabaseError>) -> String {
        switch result {
        case .success(let receipt): "ok \(receipt.stamp) x\(receipt.replicas) \(receipt.document.map { "\($0)" } ?? "")"
        case .failure(let error): "\(error.kind): \(error.message)"
        }
    }
}

/// The trace's lines (a reference, so that describing an event does not compete with changing the state).
final class TraceLog {
    var lines: [String] = []
}

extension DatabaseOperation {
    var isConditional: Bool {
        if case .conditional = self { return true }
        return false
    }
}
