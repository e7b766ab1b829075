@testable import DistriCore

/// What one seeded replication schedule did.
struct ReplicationOutcome: CustomStringConvertible {
    let seed: UInt64
    var nodeCount = 0
    var wipes = 0
    var restarts = 0
    var operations = 0
    var acknowledged = 0
    var increments = 0
    var reads = 0
    /// Simulated ms from the heal to identical replicas.
    var convergedAfter: UInt64?
    var failure: String?
    var trace: [String]?

    var description: String {
        let result = failure.map { "FAILED: \($0)" } ?? "converged \(convergedAfter ?? 0) ms after the heal"
        return "replication seed \(seed) (\(nodeCount) nodes, \(restarts) restarts, \(wipes) wiped, \(operations) ops, "
            + "\(acknowledged) acknowledged, \(increments) increments, \(reads) reads checked): \(result)"
    }

    var replayHint: String {
        "replay: SWIFT_DETERMINISTIC_HASHING=1 DISTRI_REPL_SIM_SEED=\(seed) swift test --skip-build "
            + "--filter ReplicationSimulationTests/replay (the engine's output order follows hash order: if "
            + "it passes, replay without SWIFT_DETERMINISTIC_HASHING a few times)"
    }
}

/// Limits of a schedule, in simulated ms.
enum ReplicationScheduleLimits {
    static let faultsStart: UInt64 = 500
    /// The heal comes this long after the faults start, at most.
    static let longestWorkload: UInt64 = 6_000
    static let convergenceDeadline: UInt64 = 60_000
    static let checkEvery: UInt64 = 250
    /// Every client deadline has passed this long after the heal.
    static let settle: UInt64 = 3_500
}

/// Runs one seeded schedule: 3 to 7 replicas, a fault-free start in which n0 creates the collections
/// and the counter, then 4 to 6 simulated seconds of 200 to 400 client operations on random nodes
/// (adds, updates of shared fields, deletes, a collection created and dropped, conditional increments
/// of a counter with a limit, majority and session reads) while messages are delayed, reordered, lost
/// and duplicated, the network splits, and nodes crash and restart from their log or, in some seeds, a
/// minority empty. A third of the seeds let 4 pushes per peer be in flight (the default is 1), so that
/// pushes of one origin overtake each other. Then everything heals and the replicas must converge; every acknowledged write must
/// be there (only `majority`/`all` ones when a node was wiped), the counter never above its limit, and
/// every operation answered.
func runReplicationSchedule(seed: UInt64, trace: Bool = false) -> ReplicationOutcome {
    var random = SplitMix64(seed: seed)
    let nodeCount = 3 + random.below(5)
    let mayWipe = random.chance(0.25)
    let settings = ReplicaSettings(
        syncInterval: random.element([100, 250, 500]), tombstoneGrace: random.element([3_000, 10_000, 60_000]),
        maxCollections: 100, maxChangesPerMessage: random.chance(0.3) ? 3 : 2_048, casBackoff: 20,
        pushWindow: random.element([1, 1, 4]))
    let network = SimulatedReplicaCluster.Network(
        loss: random.element([0, 0.02, 0.05, 0.1]), duplicates: random.element([0, 0.02, 0.05]),
        maxDelay: random.element([5, 20, 60]), slow: random.element([0, 0.01, 0.03]), slowDelay: 1_200,
        membershipLag: random.element([0, 50, 200]), timeout: 1_000)
    let limit = Double(1 + random.below(12))
    var cluster = SimulatedReplicaCluster(
        nodeCount: nodeCount, seed: random.next(), settings: settings,
        network: SimulatedReplicaCluster.Network(maxDelay: 5, membershipLag: 0),
        skew: random.element([0, 0, 30]), limit: limit)
    if trace { cluster.traceLog = TraceLog() }
    var outcome = ReplicationOutcome(seed: seed, nodeCount: nodeCount)
    func finish() -> ReplicationOutcome {
        outcome.failure = cluster.failure ?? outcome.failure
        outcome.trace = cluster.trace
        outcome.wipes = cluster.wiped.count
        outcome.restarts = cluster.restarts
        outcome.operations = cluster.workload.issued
        outcome.acknowledged = cluster.oracle.acknowledged.count
        outcome.increments = cluster.oracle.casSuccesses.count
        outcome.reads = cluster.oracle.readsChecked
        return outcome
    }

    // A calm start: everyone up, n0 creates the collections and the counter on every replica.
    for node in 0..<nodeCount { cluster.start(node, wipe: true) }
    cluster.run(until: 50)
    cluster.perform(.createCollection("docs"), consistency: .one, id: 1_000_001, client: 0, at: 0, deadline: 400)
    cluster.perform(.createCollection("counter"), consistency: .one, id: 1_000_002, client: 0, at: 0, deadline: 400)
    cluster.perform(
        .add(collection: "counter", id: "c", body: ["n": .number(0)]), consistency: .all, id: 1_000_003, client: 0,
        at: 0, deadline: 400)
    cluster.flush(0)
    cluster.run(until: ReplicationScheduleLimits.faultsStart)
    guard cluster.oracle.acknowledged.contains(1_000_003) else {
        outcome.failure = cluster.failure ?? "the counter was not created on every replica in a calm network"
        return finish()
    }
    cluster.network = network

    // The script: client bursts, partitions, crashes and restarts, log compactions.
    let start = ReplicationScheduleLimits.faultsStart
    let end = start + 4_000 + UInt64(random.below(2_001))
    func someTime() -> UInt64 { UInt64.random(in: start..<end, using: &random) }
    let operations = 200 + random.below(201)
    for _ in 0..<(operations / 2) { cluster.schedule(.clients, at: someTime()) }
    for _ in 0..<random.below(4) {
        let at = someTime()
        let groups = (0..<nodeCount).map { _ in random.below(random.chance(0.2) ? 3 : 2) }
        cluster.schedule(.partition(groups), at: at)
        cluster.schedule(.heal, at: at + 300 + UInt64(random.below(2_700)))
    }
    // At most a minority down at once is not enforced: any crash goes. Wipes hit at most a minority.
    let wipeable = Set((0..<nodeCount).shuffled(using: &random).prefix(mayWipe ? (nodeCount - 1) / 2 : 0))
    for _ in 0..<random.below(5) {
        // In seeds with wipes, half the crashes hit the nodes that may be wiped.
        let node =
            !wipeable.isEmpty && random.chance(0.5)
            ? wipeable.sorted()[random.below(wipeable.count)] : random.below(nodeCount)
        let at = someTime()
        cluster.schedule(.crash(node), at: at)
        let wipe = wipeable.contains(node) && random.chance(0.6)
        cluster.schedule(.restart(node, wipe: wipe), at: at + 100 + UInt64(random.below(1_900)))
    }
    for _ in 0..<random.below(4) { cluster.schedule(.compact(random.below(nodeCount)), at: someTime()) }
    cluster.workload.checkReads = wipeable.isEmpty
    cluster.run(until: end)

    // The heal: a calm network, every node up.
    cluster.network = SimulatedReplicaCluster.Network(maxDelay: 5, membershipLag: 0)
    cluster.schedule(.heal, at: end)
    for node in 0..<nodeCount { cluster.schedule(.restart(node, wipe: false), at: end) }
    var time = end
    while time < end + ReplicationScheduleLimits.convergenceDeadline, cluster.failure == nil {
        time += ReplicationScheduleLimits.checkEvery
        cluster.run(until: time)
        if time >= end + ReplicationScheduleLimits.settle, cluster.identical {
            outcome.convergedAfter = time - end
            break
        }
    }
    guard cluster.failure == nil else { return finish() }
    guard outcome.convergedAfter != nil else {
        outcome.failure =
            "no convergence \(ReplicationScheduleLimits.convergenceDeadline) ms after the heal: "
            + (cluster.firstDifference ?? "?")
        return finish()
    }
    let stores = cluster.nodes.map { $0.engine!.store }
    cluster.oracle.finalCheck(
        stores[0], durableOnly: !cluster.wiped.isEmpty, generations: cluster.nodes.map(\.generation))
    return finish()
}

extension SimulatedReplicaCluster {
    /// True when every replica is up and holds exactly the same replicated state.
    var identical: Bool {
        guard let first = nodes[0].engine?.store else { return false }
        return nodes.allSatisfy { $0.engine?.store == first }
    }

    /// The first difference between replicas, visible contents first, for the failure message.
    var firstDifference: String? {
        let stores = nodes.map { $0.engine?.store ?? DocumentStore() }
        for node in 1..<stores.count {
            let (a, b) = (stores[0], stores[node])
            if a.collectionNames != b.collectionNames {
                return "n0 has collections \(a.collectionNames), n\(node) \(b.collectionNames)"
            }
            for name in a.collectionNames {
                let mine = (a.documents(in: name) ?? []).sorted { $0.id < $1.id }
                let theirs = (b.documents(in: name) ?? []).sorted { $0.id < $1.id }
                if mine.map(\.id) != theirs.map(\.id) {
                    let onlyMine = Set(mine.map(\.id)).subtracting(theirs.map(\.id)).sorted()
                    let onlyTheirs = Set(theirs.map(\.id)).subtracting(mine.map(\.id)).sorted()
                    return "\(name): only n0 shows \(onlyMine) \(detail(onlyMine.first, name, stores)); "
                        + "only n\(node) shows \(onlyTheirs) \(detail(onlyTheirs.first, name, stores))"
                }
                for (x, y) in zip(mine, theirs) where x.body != y.body {
                    return "\(name)/\(x.id): n0 shows \(x.body), n\(node) \(y.body) \(detail(x.id, name, stores))"
                }
            }
        }
        for node in 1..<stores.count where stores[node] != stores[0] {
            for (name, collection) in stores[0].collections {
                guard let other = stores[node].collections[name] else { return "n\(node) lacks collection \(name)" }
                if collection.created != other.created || collection.dropped != other.dropped {
                    return "\(name) stamps differ: n0 \(collection.created)/\(String(describing: collection.dropped)), "
                        + "n\(node) \(other.created)/\(String(describing: other.dropped))"
                }
                for id in Set(collection.documents.keys).union(other.documents.keys).sorted()
                where collection.documents[id] != other.documents[id] {
                    return "visible contents agree, but \(name)/\(id) differs \(detail(id, name, stores))"
                }
            }
            return "n\(node) has collections n0 lacks"
        }
        return nil
    }

    private func detail(_ id: String?, _ collection: String, _ stores: [DocumentStore]) -> String {
        guard let id else { return "" }
        let states = stores.enumerated().map { index, store in
            "n\(index): \(store.collections[collection]?.documents[id].map { "\($0)" } ?? "none")"
        }
        return "[" + states.joined(separator: "; ") + "]"
    }
}
