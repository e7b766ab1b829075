@testable import DistriCore

/// The simulated clients' state: which documents exist to update, and their own random stream.
struct ReplicationWorkload {
    var random: SplitMix64
    let increment: DatabaseOperation
    var nextOperation: UInt64 = 1
    var documents: [String] = []
    var scratch: [String] = []
    /// Whether reads check what they must see (off when replicas may lose data).
    var checkReads = true
    var issued = 0

    init(seed: UInt64, limit: Double) {
        random = SplitMix64(seed: seed)
        let condition = try! DocumentFilter(.object(["n": .object(["$lt": .number(limit)])]))
        increment = .conditional(
            collection: "counter", id: "c", condition: condition, update: DocumentUpdate(increment: ["n": 1]))
    }

    mutating func operationID() -> UInt64 {
        defer { nextOperation += 1 }
        return nextOperation
    }

    mutating func consistency() -> WriteConsistency {
        switch random.below(20) {
        case 0..<8: .one
        case 8..<17: .majority
        default: .all
        }
    }

    mutating func value() -> JSONValue {
        random.chance(0.5) ? .number(Double(random.below(1_000))) : .string("v\(random.below(1_000))")
    }

    mutating func fields() -> [String: JSONValue] {
        var fields: [String: JSONValue] = [:]
        for _ in 0...random.below(2) { fields[random.element(["a", "b", "c"])] = value() }
        return fields
    }

    /// A document to update or delete: mostly one of the latest, so that writers collide.
    mutating func target(in ids: [String]) -> String? {
        guard !ids.isEmpty else { return nil }
        if random.chance(0.8) { return ids[ids.count - 1 - random.below(min(ids.count, 6))] }
        return random.element(ids)
    }
}

extension SimulatedReplicaCluster {
    /// One client's burst of operations on one node, flushed together as one event-loop turn would.
    mutating func clientBurst() {
        let up = upNodes
        guard !up.isEmpty else { return }
        let node = workload.random.element(up)
        let client = workload.random.below(nodes.count)
        for _ in 0...workload.random.below(3) { clientOperation(client: client, at: node) }
        flush(node)
    }

    private mutating func clientOperation(client: Int, at node: Int) {
        let id = workload.operationID()
        let consistency = workload.consistency()
        let deadline = UInt64(300 + workload.random.below(2_700))
        workload.issued += 1
        let roll = workload.random.below(100)
        func write(_ operation: DatabaseOperation) {
            perform(operation, consistency: consistency, id: id, client: client, at: node, deadline: deadline)
        }
        switch roll {
        case 0..<24:
            let document = "d\(id)"
            workload.documents.append(document)
            var body = workload.fields()
            if workload.random.chance(0.5) { body["k"] = .number(Double(workload.random.below(10))) }
            write(.add(collection: "docs", id: document, body: body))
        case 24..<50:
            guard let document = workload.target(in: workload.documents) else { return }
            var update = DocumentUpdate(set: workload.fields())
            if workload.random.chance(0.2) { update.increment = ["k": 1] }
            update.replace = workload.random.chance(0.1)
            write(.update(collection: "docs", id: document, update))
        case 50..<58:
            guard let document = workload.target(in: workload.documents) else { return }
            var ids = [document]
            if workload.random.chance(0.2), let other = workload.target(in: workload.documents), other != document {
                ids.append(other)
            }
            write(.delete(collection: "docs", ids: ids))
        case 58..<61:
            write(.createCollection("scratch"))
        case 61..<63:
            write(.dropCollection("scratch"))
        case 63..<70:
            if workload.random.chance(0.5) || workload.scratch.isEmpty {
                let document = "s\(id)"
                workload.scratch.append(document)
                write(.add(collection: "scratch", id: document, body: workload.fields()))
            } else {
                let document = workload.target(in: workload.scratch)!
                write(.update(collection: "scratch", id: document, DocumentUpdate(set: workload.fields())))
            }
        case 70..<82:
            perform(workload.increment, consistency: .majority, id: id, client: client, at: node, deadline: deadline)
        case 82..<91:
            read(
                id: id, consistency: .majority, session: nil, required: workload.checkReads ? oracle.durable : [],
                client: client, at: node, deadline: deadline)
        default:
            // The engine settles a session read once every alive peer answered, taking stamps nobody
            // had as lost with a dead replica: only writes whose origin it can reach must show.
            let alive = nodes[node].engine!.alive
            let reachable = oracle.sessionWrites[client].filter { write in
                let origin = oracle.writes[write]!.node
                return origin == node
                    || (alive.contains(nodes[origin].id) && nodes[origin].isUp && self.reachable(node, origin))
            }
            read(
                id: id, consistency: .local, session: oracle.sessions[client],
                required: workload.checkReads ? reachable : [], client: client, at: node, deadline: deadline)
        }
    }
}
