import DistriCore

/// A seeded simulation of a cluster whose every node routes with the product's ``TaskRouter``: the
/// simulation only plays the network, the clients, the failure detector and the services' run time.
/// Forwards, replies, status look-ups and refusals travel between routers as the node shells carry
/// them; crashes break connections at once, partitions hold messages until they heal (TCP delivers
/// them late), and each node's detector notices changes after a delay.
struct TaskCluster {
    /// A task as a router carries it: its id, and who waits for its answer.
    struct SimTask {
        enum Origin {
            /// A client that sent it to this node.
            case client
            /// Another node that forwarded it here, under its route id.
            case forwarded(by: Int, route: RouteID)
        }

        var id: UInt64
        var origin: Origin
    }

    typealias Router = TaskRouter<SimTask, Int, Int>
    static let service = "Task"
    static let capacity = 8

    struct Node {
        var running = true
        var group = 0
        var offers: Bool
        var router: Router
        /// What this node's failure detector believes of each node now.
        var view: [Bool]
        var generation = 0
    }

    enum Event {
        /// A client sends task `task` to node `entry`, as a first try or a retry.
        case arrive(task: UInt64, entry: Int, retry: Bool)
        /// Node `node` finishes running `task` (if it is still the same life of the node).
        case finish(task: SimTask, node: Int, generation: Int)
        /// The failure detector of `observer` catches up with the state of `member`.
        case detect(observer: Int, member: Int)
    }

    /// A forward on the wire: from `entry` (its route) to `executor`; `delivered` once it arrived.
    struct Link {
        var entry: Int
        var entryGeneration: Int
        var route: RouteID
        var executor: Int
        var task: SimTask
        var delivered: Bool
    }

    private(set) var now: UInt64 = 0
    private(set) var nodes: [Node]
    var random: SimulationRandom
    private var queue = EventQueue<Event>()
    private var links: [Link] = []
    /// Answers to forwards sent while their way back was cut: TCP delivers them once it heals.
    private var heldAnswers: [(task: SimTask, from: Int, outcome: ForwardOutcome<Int>)] = []
    private(set) var executions: [UInt64: [(node: Int, at: UInt64)]] = [:]
    private(set) var completed: Set<UInt64> = []
    /// Every node that handled each task: entries, forwarders and executors.
    private(set) var participants: [UInt64: Set<Int>] = [:]
    private(set) var issued: Set<UInt64> = []
    /// The node each unfinished task's client last sent it to.
    private var clientEntry: [UInt64: Int] = [:]
    /// Node lives that ended by crash, to judge re-executions.
    private(set) var crashes: [(node: Int, at: UInt64)] = []
    var traceTask: UInt64?
    private(set) var trace: [String] = []

    init(nodeCount: Int, seed: UInt64) {
        var random = SimulationRandom(seed: seed)
        var nodes: [Node] = []
        for index in 0..<nodeCount {
            let offers = index == 0 || random.chance(0.7)
            nodes.append(
                Node(
                    offers: offers, router: Self.router(index, seed: random.next()),
                    view: Array(repeating: true, count: nodeCount)))
        }
        self.nodes = nodes
        self.random = random
        for index in nodes.indices { pushView(index) }
    }

    private static func router(_ index: Int, seed: UInt64) -> Router {
        Router(localID: "\(index)", settings: .init(capacity: capacity, queueLimit: 64), seed: seed)
    }

    // MARK: Faults

    mutating func crash(_ index: Int) {
        guard nodes[index].running else { return }
        log(nil, "crash \(index)")
        nodes[index].running = false
        nodes[index].generation += 1
        nodes[index].router = Self.router(index, seed: random.next())
        crashes.append((index, now))
        membershipChanged(index)
        // Its connections break at once: forwarders fail over, clients retry elsewhere.
        let broken = links.filter { $0.executor == index || $0.entry == index }
        links.removeAll { $0.executor == index || $0.entry == index }
        for link in broken where link.entry != index {
            perform(
                nodes[link.entry].router.forwardFinished(link.route, outcome: .failedRetryable(-1), now: now),
                at: link.entry)
        }
        for (task, entry) in clientEntry where entry == index && !completed.contains(task) {
            clientEntry[task] = nil
            queue.schedule(.arrive(task: task, entry: pickEntry(), retry: true), at: now + delay())
        }
    }

    mutating func restart(_ index: Int) {
        guard !nodes[index].running else { return }
        nodes[index].running = true
        nodes[index].view = Array(repeating: false, count: nodes.count)
        nodes[index].view[index] = true
        pushView(index)
        // A node joins through a seed within milliseconds: it learns the others, and they learn it.
        membershipChanged(index, within: 5...50)
        for other in nodes.indices where other != index {
            queue.schedule(.detect(observer: index, member: other), at: now + UInt64.random(in: 5...50, using: &random))
        }
    }

    mutating func partition(_ groups: [Int]) {
        for index in nodes.indices { nodes[index].group = groups[index] }
        for index in nodes.indices { membershipChanged(index) }
        // Forwards held up by the cut get through once it heals; the executor's dedup window makes a
        // late copy of a task it ran harmless.
        for index in links.indices where !links[index].delivered && reachable(links[index].entry, links[index].executor)
        {
            links[index].delivered = true
            deliver(links[index])
        }
        let held = heldAnswers
        heldAnswers = []
        for answer in held { self.answer(answer.task, from: answer.from, outcome: answer.outcome) }
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

    /// A running node that offers the service (a node without it answers "unknown service").
    private mutating func pickEntry() -> Int {
        let running = nodes.indices.filter { nodes[$0].running && nodes[$0].offers }
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
                var actions: [Router.Action] = [.reply(task, 1)]
                actions += nodes[node].router.executed(
                    taskID: task.id, admitted: true, result: 1, remember: true, cost: 0, now: now)
                perform(actions, at: node)
            case .detect(let observer, let member):
                guard nodes[observer].running else { continue }
                nodes[observer].view[member] = nodes[member].running && nodes[member].group == nodes[observer].group
                pushView(observer)
            }
        }
        now = max(now, time)
    }

    private func reachable(_ a: Int, _ b: Int) -> Bool {
        nodes[a].running && nodes[b].running && nodes[a].group == nodes[b].group
    }

    private mutating func log(_ task: UInt64?, _ line: String) {
        if traceTask != nil, task == nil || task == traceTask { trace.append("\(now) ms: \(line)") }
    }

    /// The observer's router learns the members its detector believes alive.
    private mutating func pushView(_ observer: Int) {
        let view = nodes.indices.compactMap { index -> RoutingMember<Int>? in
            guard index != observer, nodes[observer].view[index] else { return nil }
            return RoutingMember(
                id: "\(index)", address: index, services: nodes[index].offers ? [Self.service] : [],
                load: nodes[index].router.load, capacity: Self.capacity, electable: true)
        }
        perform(nodes[observer].router.membersChanged(view, now: now), at: observer)
    }

    private mutating func arrive(_ task: UInt64, at entry: Int, retry: Bool) {
        guard !completed.contains(task) else { return }
        guard nodes[entry].running else {
            // Connection refused: the client tries the next node.
            queue.schedule(.arrive(task: task, entry: pickEntry(), retry: retry), at: now + delay())
            return
        }
        log(task, "arrive at \(entry) retry \(retry)")
        clientEntry[task] = entry
        participants[task, default: []].insert(entry)
        let arrival = TaskArrival(
            task: SimTask(id: task, origin: .client), taskID: task, service: Self.service,
            routing: retry ? .electRetry : .elect, placement: .elected, deadline: nil)
        perform(nodes[entry].router.arrived(arrival, now: now), at: entry)
    }

    /// Carries out a node's router actions as its shell would.
    private mutating func perform(_ actions: [Router.Action], at node: Int) {
        for action in actions {
            switch action {
            case .run(let task, _):
                log(task.id, "run at \(node)")
                participants[task.id, default: []].insert(node)
                executions[task.id, default: []].append((node, now))
                queue.schedule(
                    .finish(task: task, node: node, generation: nodes[node].generation),
                    at: now + UInt64.random(in: 5...80, using: &random))
            case .forward(let task, let route, _, let executor):
                log(task.id, "forward from \(node) to \(executor)")
                guard nodes[executor].running else {
                    // Connection refused: the router looks elsewhere at once.
                    perform(
                        nodes[node].router.forwardFinished(route, outcome: .failedRetryable(-1), now: now), at: node)
                    continue
                }
                let link = Link(
                    entry: node, entryGeneration: nodes[node].generation, route: route, executor: executor, task: task,
                    delivered: reachable(node, executor))
                links.append(link)
                if link.delivered { deliver(link) }
            case .askStatus(let route, let taskID, let members):
                let holder = members.first { member in
                    reachable(node, member.address) && nodes[member.address].router.knows(taskID)
                }
                perform(nodes[node].router.statusAnswered(route, holder: holder?.id, now: now), at: node)
            case .reply(let task, let result):
                answer(task, from: node, outcome: .answered(result))
            case .refuse(let task, _):
                answer(task, from: node, outcome: .failedRetryable(-1))
            case .becameIdle:
                break
            }
        }
    }

    /// A forward arrives at its executor, which runs it where asked.
    private mutating func deliver(_ link: Link) {
        participants[link.task.id, default: []].insert(link.executor)
        let arrival = TaskArrival(
            task: SimTask(id: link.task.id, origin: .forwarded(by: link.entry, route: link.route)),
            taskID: link.task.id, service: Self.service, routing: .local, placement: .elected, deadline: nil)
        perform(nodes[link.executor].router.arrived(arrival, now: now), at: link.executor)
    }

    /// A node answers a task: to its client, or back to the node that forwarded it, if reachable.
    private mutating func answer(_ task: SimTask, from node: Int, outcome: ForwardOutcome<Int>) {
        switch task.origin {
        case .client:
            guard case .answered(let result) = outcome, result == 1 else {
                // Busy or shutting down: the client tries another node after a pause.
                queue.schedule(.arrive(task: task.id, entry: pickEntry(), retry: true), at: now + 50)
                return
            }
            log(task.id, "completed at \(node)")
            completed.insert(task.id)
        case .forwarded(let entry, let route):
            // Lost with the connection when either side crashed (the link went with it).
            guard
                let index = links.firstIndex(where: { $0.entry == entry && $0.route == route && $0.executor == node }),
                links[index].entryGeneration == nodes[entry].generation
            else { return }
            guard reachable(entry, node) else {
                heldAnswers.append((task, node, outcome))
                return
            }
            links.remove(at: index)
            perform(nodes[entry].router.forwardFinished(route, outcome: outcome, now: now), at: entry)
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
