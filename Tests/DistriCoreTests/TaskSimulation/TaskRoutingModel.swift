import DistriCore

/// A deterministic model of how the node shells route tasks — election by load among the members a
/// node believes alive, forwarding, failover when an executor dies, the client's retry through another
/// node, and the retry's look-up of a node that already has the task — built on the real pure cores
/// (``Election``, ``DedupWindow``) with a failure detector that notices changes after a delay.
struct TaskRoutingModel {
    struct Node {
        var running = true
        var group = 0
        var offers: Bool
        var capacity = 8
        var dedup = DedupWindow<Int, Int>()
        var busy = 0
        /// When this node's view of each other node last changed, and to what.
        var view: [Bool]
        var outstanding: [Int]
        var generation = 0
    }

    enum Event {
        /// A client sends task `task` to node `entry`, as a first try or a retry.
        case arrive(task: UInt64, entry: Int, retry: Bool)
        /// Node `node` finishes running `task` (if it is still the same life of the node).
        case finish(task: UInt64, node: Int, generation: Int)
        /// The failure detector of `observer` catches up with the state of `member`.
        case detect(observer: Int, member: Int)
    }

    private(set) var now: UInt64 = 0
    private(set) var nodes: [Node]
    var random: SimulationRandom
    private var queue = EventQueue<Event>()
    /// Who waits for each task at each node: the entry nodes (or clients, as -1) to answer.
    private var waiting: [UInt64: Set<Int>] = [:]
    /// Forwarders of each task: entry node -> executor it sent the task to.
    private var forwards: [UInt64: [Int: Int]] = [:]
    private(set) var executions: [UInt64: [(node: Int, at: UInt64)]] = [:]
    private(set) var completed: Set<UInt64> = []
    /// Every node that handled each task: entries, forwarders and executors.
    private(set) var participants: [UInt64: Set<Int>] = [:]
    private(set) var issued: Set<UInt64> = []
    /// Tasks whose entry was lost; the client retries them.
    private var clientEntry: [UInt64: Int] = [:]
    private(set) var violations: [String] = []
    /// Node lives that ended by crash, to judge re-executions.
    private(set) var crashes: [(node: Int, at: UInt64)] = []

    init(nodeCount: Int, seed: UInt64) {
        var random = SimulationRandom(seed: seed)
        nodes = (0..<nodeCount).map { index in
            Node(
                offers: index == 0 || random.chance(0.7), view: Array(repeating: true, count: nodeCount),
                outstanding: Array(repeating: 0, count: nodeCount))
        }
        self.random = random
    }

    // MARK: Faults

    mutating func crash(_ index: Int) {
        guard nodes[index].running else { return }
        if let traceTask { log(traceTask, "crash \(index)") }
        nodes[index].running = false
        nodes[index].generation += 1
        nodes[index].dedup = DedupWindow()
        nodes[index].busy = 0
        crashes.append((index, now))
        membershipChanged(index)
        // Connections to it break at once: forwarders fail over, clients retry elsewhere.
        for (task, byEntry) in forwards {
            for (entry, executor) in byEntry where executor == index {
                forwards[task]?[entry] = nil
                nodes[entry].outstanding[index] -= 1
                failover(task, entry: entry, excluding: [index])
            }
        }
        for (task, entry) in clientEntry where entry == index && !completed.contains(task) {
            queue.schedule(.arrive(task: task, entry: pickEntry(), retry: true), at: now + delay())
        }
    }

    mutating func restart(_ index: Int) {
        guard !nodes[index].running else { return }
        nodes[index].running = true
        nodes[index].generation += 1
        nodes[index].view = Array(repeating: false, count: nodes.count)
        nodes[index].view[index] = true
        // A node joins through a seed within milliseconds: it learns the others, and they learn it.
        membershipChanged(index, within: 5...50)
        for other in nodes.indices where other != index {
            queue.schedule(.detect(observer: index, member: other), at: now + UInt64.random(in: 5...50, using: &random))
        }
    }

    mutating func partition(_ groups: [Int]) {
        for index in nodes.indices { nodes[index].group = groups[index] }
        for index in nodes.indices { membershipChanged(index) }
        // Requests held up by the cut get through once it heals (TCP delivers them late); the
        // executor's dedup window makes a late copy harmless.
        for (task, byEntry) in forwards where !completed.contains(task) {
            for (entry, executor) in byEntry where reachable(entry, executor) {
                runHere(task, at: executor, forwardedBy: entry)
            }
        }
    }

    private mutating func membershipChanged(_ member: Int, within delays: ClosedRange<UInt64> = 200...1500) {
        for observer in nodes.indices where observer != member {
            queue.schedule(
                .detect(observer: observer, member: member), at: now + UInt64.random(in: delays, using: &random))
        }
    }

    // MARK: Clients

    mutating func issue(_ task: UInt64) {
        issued.insert(task)
        queue.schedule(.arrive(task: task, entry: pickEntry(), retry: false), at: now + delay())
    }

    private mutating func pickEntry() -> Int {
        let running = nodes.indices.filter { nodes[$0].running }
        return running.isEmpty ? 0 : running[Int.random(in: 0..<running.count, using: &random)]
    }

    // MARK: Running

    mutating func run(until time: UInt64) {
        while let next = queue.nextTime, next <= time, let (at, event) = queue.pop() {
            now = at
            switch event {
            case .arrive(let task, let entry, let retry):
                arrive(task, at: entry, retry: retry)
            case .finish(let task, let node, let generation):
                guard nodes[node].generation == generation, nodes[node].running else { continue }
                finish(task, at: node)
            case .detect(let observer, let member):
                let believed = nodes[member].running && nodes[member].group == nodes[observer].group
                nodes[observer].view[member] = believed
                if !believed { executorDeclaredDead(member, by: observer) }
            }
        }
        now = max(now, time)
    }

    private func reachable(_ a: Int, _ b: Int) -> Bool {
        nodes[a].running && nodes[b].running && nodes[a].group == nodes[b].group
    }

    var traceTask: UInt64?
    private(set) var trace: [String] = []

    private mutating func log(_ task: UInt64, _ line: String) {
        if task == traceTask { trace.append("\(now) ms: \(line)") }
    }

    private mutating func arrive(_ task: UInt64, at entry: Int, retry: Bool) {
        if task == traceTask {
            log(task, "arrive at \(entry) retry \(retry) running \(nodes[entry].running) views \(nodes[entry].view)")
        }
        guard !completed.contains(task) else { return }
        guard nodes[entry].running else {
            // Connection refused: the client tries the next node.
            queue.schedule(.arrive(task: task, entry: pickEntry(), retry: retry), at: now + delay())
            return
        }
        clientEntry[task] = entry
        participants[task, default: []].insert(entry)
        waiting[task, default: []].insert(-1 - entry)
        if retry {
            if nodes[entry].dedup.knows(task) {
                runHere(task, at: entry)
                return
            }
            if let holder = holder(of: task, askedBy: entry, excluding: []) {
                send(task, from: entry, to: holder)
                return
            }
        }
        route(task, at: entry, excluding: [])
    }

    private mutating func route(_ task: UInt64, at entry: Int, excluding: Set<Int>) {
        let candidates = nodes.indices.compactMap { index -> ElectionCandidate? in
            guard nodes[entry].view[index], nodes[index].offers, !excluding.contains(index) else { return nil }
            let load = index == entry ? Double(nodes[index].busy) / Double(nodes[index].capacity) : 0
            return ElectionCandidate(
                id: "\(index)", load: load, outstanding: index == entry ? 0 : nodes[entry].outstanding[index],
                capacity: nodes[index].capacity)
        }
        guard let winner = Election.elect(candidates, local: "\(entry)", taskID: task, random: &random),
            let executor = Int(winner.id)
        else {
            // Nobody offers it in this view now: the entry answers "unavailable" and the client retries.
            queue.schedule(.arrive(task: task, entry: pickEntry(), retry: true), at: now + 50)
            return
        }
        if executor == entry {
            runHere(task, at: entry)
        } else {
            send(task, from: entry, to: executor, excluding: excluding)
        }
    }

    private mutating func send(_ task: UInt64, from entry: Int, to executor: Int, excluding: Set<Int> = []) {
        guard nodes[executor].running else {
            // Connection refused: elect again at once, without it.
            failover(task, entry: entry, excluding: excluding.union([executor]))
            return
        }
        forwards[task, default: [:]][entry] = executor
        nodes[entry].outstanding[executor] += 1
        guard reachable(entry, executor) else { return }  // cut off: waits until the detector declares it dead
        runHere(task, at: executor, forwardedBy: entry)
    }

    private mutating func runHere(_ task: UInt64, at node: Int, forwardedBy: Int? = nil) {
        if task == traceTask {
            log(
                task,
                "run at \(node) forwarded by \(forwardedBy.map(String.init) ?? "-") knows \(nodes[node].dedup.knows(task))"
            )
        }
        if let forwardedBy { waiting[task, default: []].insert(forwardedBy) }
        participants[task, default: []].insert(node)
        switch nodes[node].dedup.begin(task, waiter: forwardedBy ?? -1, now: now) {
        case .run:
            executions[task, default: []].append((node, now))
            nodes[node].busy += 1
            queue.schedule(
                .finish(task: task, node: node, generation: nodes[node].generation),
                at: now + UInt64.random(in: 5...80, using: &random))
        case .wait:
            break
        case .replay:
            deliver(task, from: node)
        }
    }

    private mutating func finish(_ task: UInt64, at node: Int) {
        nodes[node].busy -= 1
        _ = nodes[node].dedup.finish(task, result: 1, now: now)
        deliver(task, from: node)
    }

    /// The result travels back from the executor: straight to a client whose entry it is, or through
    /// a forwarder that can still reach it.
    private mutating func deliver(_ task: UInt64, from executor: Int) {
        if task == traceTask {
            log(
                task,
                "deliver from \(executor) client entry \(clientEntry[task] ?? -1) forwards \(forwards[task] ?? [:])")
        }
        if let entry = clientEntry[task], entry == executor || forwards[task]?[entry] == executor,
            reachable(entry, executor) || entry == executor
        {
            if entry != executor {
                forwards[task]?[entry] = nil
                nodes[entry].outstanding[executor] -= 1
            }
            completed.insert(task)
        }
    }

    private mutating func executorDeclaredDead(_ member: Int, by observer: Int) {
        for (task, byEntry) in forwards where byEntry[observer] == member && !completed.contains(task) {
            forwards[task]?[observer] = nil
            nodes[observer].outstanding[member] -= 1
            failover(task, entry: observer, excluding: [member])
        }
    }

    /// The executor failed or was declared dead: it may have run the task, so look for a member
    /// that has it before electing again without the failed ones (as a client's retry does).
    private mutating func failover(_ task: UInt64, entry: Int, excluding: Set<Int>) {
        guard nodes[entry].running, !completed.contains(task) else { return }
        if let holder = holder(of: task, askedBy: entry, excluding: excluding) {
            send(task, from: entry, to: holder, excluding: excluding)
            return
        }
        route(task, at: entry, excluding: excluding)
    }

    /// A member that this node believes alive, can reach, and that knows the task (`TaskStatus`).
    private func holder(of task: UInt64, askedBy entry: Int, excluding: Set<Int>) -> Int? {
        nodes.indices.first { other in
            other != entry && !excluding.contains(other) && nodes[entry].view[other] && nodes[other].offers
                && reachable(entry, other) && nodes[other].dedup.knows(task)
        }
    }

    private mutating func delay() -> UInt64 { UInt64.random(in: 0...5, using: &random) }

    // MARK: Checks

    /// Executions of one task on two nodes, unless the first crashed in between (the crash lost the
    /// run) or a node that handled the task was cut off by a partition (each side then sees the other
    /// as dead: without a consensus round per task, the task may run on both sides).
    func duplicateExecutions(cutOff: Set<Int>) -> [String] {
        var found: [String] = []
        for (task, runs) in executions where runs.count > 1 {
            for (index, run) in runs.enumerated().dropLast() {
                let later = runs[index + 1]
                let lost = crashes.contains { $0.node == run.node && $0.at >= run.at && $0.at <= later.at }
                let partitioned = !(participants[task] ?? []).isDisjoint(with: cutOff)
                if !lost && !partitioned && run.node != later.node {
                    found.append(
                        "task \(task) ran on node \(run.node) at \(run.at) and again on \(later.node) at \(later.at)")
                }
                if run.node == later.node && !lost {
                    found.append("task \(task) ran twice on node \(run.node)")
                }
            }
        }
        return found
    }
}
