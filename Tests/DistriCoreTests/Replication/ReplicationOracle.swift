@testable import DistriCore

/// What the simulated clients did and were told, and the checks of replica states against it.
///
/// A write is recorded with the stamp it was applied under (read from the engine right after
/// `perform`) and what it wrote. An acknowledged write must still be present in a replica's state
/// unless a later-stamped write superseded it: every field it wrote holds a stamp at least as new (the
/// same value when the stamp is equal), or the document was deleted or replaced after it (or purged,
/// which only happens to a tombstone newer than it).
struct ReplicationOracle {
    enum Effect: CustomStringConvertible {
        case fields(collection: String, id: String, [String: JSONValue], replace: Bool)
        /// An increment of `field` counted under `origin` on the base `base` (the field as it stood).
        case increment(collection: String, id: String, field: String, origin: String, base: ReplicatedDocument.Field)
        case delete(collection: String, id: String)
        case create(String)
        case drop(String)

        var description: String {
            switch self {
            case .fields(let collection, let id, let fields, let replace):
                "\(replace ? "replace" : "set") \(collection)/\(id) \(fields)"
            case .increment(let collection, let id, let field, let origin, _):
                "inc \(collection)/\(id).\(field) as \(origin)"
            case .delete(let collection, let id): "delete \(collection)/\(id)"
            case .create(let name): "create \(name)"
            case .drop(let name): "drop \(name)"
            }
        }
    }

    struct Write {
        let operation: UInt64
        let node: Int
        let consistency: WriteConsistency
        let effects: [Effect]
        let stamp: HLCTimestamp
        var acknowledged: UInt64?
    }

    enum Kind {
        case write
        case cas
        case read
    }

    struct Open {
        var node: Int
        var generation: Int
        var kind: Kind
        var client: Int
        /// For reads: the writes the read must see, and whether they are the client's own.
        var required: [UInt64] = []
        var session = false
        /// The cluster's topology version when a read started.
        var topology = 0
    }

    let limit: Double
    private(set) var writes: [UInt64: Write] = [:]
    private(set) var open: [UInt64: Open] = [:]
    /// The newest applied delete of each document (acknowledged or not).
    private(set) var deletes: [DocumentKey: HLCTimestamp] = [:]
    /// Counter values that successful conditional increments wrote.
    private(set) var casSuccesses: [Double] = []
    /// Acknowledged writes, in the order of their acknowledgement.
    private(set) var acknowledged: [UInt64] = []
    private(set) var sessions: [SessionToken]
    private(set) var sessionWrites: [[UInt64]]
    private(set) var readsChecked = 0
    private(set) var failures = 0
    private(set) var failure: String?

    init(nodeCount: Int, limit: Double) {
        self.limit = limit
        sessions = Array(repeating: SessionToken(), count: nodeCount)
        sessionWrites = Array(repeating: [], count: nodeCount)
    }

    mutating func fail(_ message: String) {
        if failure == nil { failure = message }
    }

    // MARK: Recording

    mutating func started(_ operation: UInt64, at node: Int, generation: Int, kind: Kind, client: Int) {
        open[operation] = Open(node: node, generation: generation, kind: kind, client: client)
    }

    mutating func startedRead(
        _ operation: UInt64, at node: Int, generation: Int, client: Int, required: [UInt64], session: Bool,
        topology: Int
    ) {
        open[operation] = Open(
            node: node, generation: generation, kind: .read, client: client, required: required, session: session,
            topology: topology)
    }

    /// Records what a write applied on `node`, reading the fields it wrote back from the store.
    mutating func applied(
        _ operation: DatabaseOperation, id: UInt64, consistency: WriteConsistency, node: Int, stamp: HLCTimestamp,
        store: DocumentStore
    ) {
        var effects: [Effect] = []
        switch operation {
        case .createCollection(let name):
            effects = [.create(name)]
        case .dropCollection(let name):
            effects = [.drop(name)]
        case .add(let collection, let document, let body):
            effects = [.fields(collection: collection, id: document, body, replace: true)]
        case .update(let collection, let document, let update):
            let stored = store.collections[collection]?.documents[document]
            var fields: [String: JSONValue] = [:]
            let counted = update.replace ? [] : Array(update.increment.keys)
            for name in counted {
                guard let field = stored?.fields[name],
                    let origin = field.counts.first(where: { $0.value.stamp == stamp })?.key
                else {
                    fail("op \(id): the increment of \(collection)/\(document).\(name) is not in the store at \(stamp)")
                    return
                }
                effects.append(
                    .increment(collection: collection, id: document, field: name, origin: origin, base: field))
            }
            for name in Set(update.set.keys).union(update.replace ? Array(update.increment.keys) : []) {
                guard let field = stored?.fields[name], field.stamp == stamp, let value = field.value else {
                    fail("op \(id): the update of \(collection)/\(document).\(name) is not in the store at \(stamp)")
                    return
                }
                fields[name] = value
            }
            effects.append(.fields(collection: collection, id: document, fields, replace: update.replace))
        case .delete(let collection, let ids):
            for document in ids where store.collections[collection]?.documents[document]?.deleted == stamp {
                effects.append(.delete(collection: collection, id: document))
                let key = DocumentKey(collection: collection, id: document)
                deletes[key] = max(deletes[key] ?? stamp, stamp)
            }
        case .conditional:
            return
        }
        writes[id] = Write(operation: id, node: node, consistency: consistency, effects: effects, stamp: stamp)
    }

    mutating func completed(
        _ operation: UInt64, _ result: Result<WriteReceipt, DatabaseError>, at node: Int, time: UInt64
    ) {
        guard let started = open.removeValue(forKey: operation), started.kind != .read else {
            fail("op \(operation) completed twice, or was never started as a write")
            return
        }
        guard case .success(let receipt) = result else { return }
        switch started.kind {
        case .write:
            guard var write = writes[operation] else {
                fail("op \(operation) succeeded but applied nothing")
                return
            }
            if receipt.stamp != write.stamp {
                fail("op \(operation): receipt stamp \(receipt.stamp) != \(write.stamp)")
            }
            write.acknowledged = time
            writes[operation] = write
            acknowledged.append(operation)
            sessions[started.client].observe(receipt.stamp)
            sessionWrites[started.client].append(operation)
        case .cas:
            guard case .number(let value)? = receipt.document?["n"] else {
                fail("op \(operation): a conditional increment returned \(String(describing: receipt.document))")
                return
            }
            if value > limit {
                fail("op \(operation): a conditional increment wrote \(value) above the limit \(limit)")
            }
            casSuccesses.append(value)
        case .read:
            break
        }
    }

    /// A read may run: it must show what it requires (a session read only when nothing crashed, restarted
    /// or moved in the network while it waited, since it settles for the peers it can reach).
    mutating func readable(
        _ operation: UInt64, _ result: Result<Void, DatabaseError>, store: DocumentStore, topology: Int
    ) {
        guard let read = open.removeValue(forKey: operation), read.kind == .read else {
            fail("read \(operation) answered twice, or was never started")
            return
        }
        guard case .success = result, !read.session || read.topology == topology else { return }
        readsChecked += 1
        for id in read.required {
            guard let write = writes[id], let problem = problem(with: write, in: store) else { continue }
            let kind = read.session ? "session read" : "majority read"
            fail("\(kind) \(operation) on n\(read.node) missed op \(id) (acknowledged before it): \(problem)")
        }
    }

    /// A crashed node's clients never hear back.
    mutating func crashed(_ node: Int) {
        open = open.filter { $0.value.node != node }
    }

    /// Writes acknowledged at `majority` or `all` so far.
    var durable: [UInt64] { acknowledged.filter { writes[$0]!.consistency != .one } }

    // MARK: Checks

    func checkCounterValue(_ store: DocumentStore) -> Double? {
        guard case .number(let value)? = store.document("c", in: "counter")?["n"] else { return nil }
        return value
    }

    mutating func checkCounter(_ store: DocumentStore, node: String, time: UInt64) {
        guard let value = checkCounterValue(store), value > limit else { return }
        fail("\(node) holds the counter at \(value), above the limit \(limit)")
    }

    /// Why `store` does not hold `write`, or nil when it does (or a later write superseded it).
    func problem(with write: Write, in store: DocumentStore) -> String? {
        for effect in write.effects {
            switch effect {
            case .fields(let collection, let id, let fields, let replace):
                // A drop of the collection after the write forgets it (and frees the document).
                if let dropped = store.collections[collection]?.dropped, dropped > write.stamp { continue }
                guard let document = store.collections[collection]?.documents[id] else {
                    if let deleted = deletes[DocumentKey(collection: collection, id: id)], deleted > write.stamp {
                        continue
                    }
                    return "\(effect) at \(write.stamp): the document is missing"
                }
                let superseded =
                    (document.deleted.map { $0 >= write.stamp } ?? false)
                    || (document.cleared.map { $0 > write.stamp } ?? false)
                for (name, value) in fields {
                    guard let field = document.fields[name] else {
                        if superseded { continue }
                        return "\(effect) at \(write.stamp): field \(name) is missing from \(document)"
                    }
                    if field.stamp < write.stamp {
                        return "\(effect) at \(write.stamp): field \(name) holds an older write \(field)"
                    }
                    if field.stamp == write.stamp && field.value != value {
                        return "\(effect) at \(write.stamp): field \(name) holds \(String(describing: field.value))"
                    }
                }
                if replace, (document.cleared ?? .zero) < write.stamp {
                    return
                        "\(effect) at \(write.stamp): the replace is lost, cleared at "
                        + String(describing: document.cleared)
                }
            case .increment(let collection, let id, let name, let origin, let base):
                if let dropped = store.collections[collection]?.dropped, base.baseIsBefore(dropped, orAt: true) {
                    continue
                }
                let document = store.collections[collection]?.documents[id]
                let reset =
                    (document?.deleted.map { base.baseIsBefore($0, orAt: true) } ?? false)
                    || (document?.cleared.map { base.baseIsBefore($0, orAt: false) } ?? false)
                    || (deletes[DocumentKey(collection: collection, id: id)].map { base.baseIsBefore($0, orAt: true) }
                        ?? false)
                guard let field = document?.fields[name] else {
                    if reset { continue }
                    return "\(effect) at \(write.stamp): field \(name) is missing"
                }
                // A later base (a set, replace or delete this origin had not seen) resets increments.
                if base.baseIsOlder(than: field) || reset { continue }
                if (field.counts[origin]?.stamp ?? .zero) < write.stamp {
                    return "\(effect) at \(write.stamp): the increment is lost from \(field)"
                }
            case .delete(let collection, let id):
                guard let document = store.collections[collection]?.documents[id] else { continue }
                if (document.deleted ?? .zero) < write.stamp {
                    return "\(effect) at \(write.stamp): the delete is lost: \(document)"
                }
            case .create(let name):
                if (store.collections[name]?.created ?? .zero) < write.stamp {
                    return "\(effect) at \(write.stamp): the create is lost"
                }
            case .drop(let name):
                if (store.collections[name]?.dropped ?? .zero) < write.stamp {
                    return "\(effect) at \(write.stamp): the drop is lost"
                }
            }
        }
        return nil
    }

    /// Checks the converged state against every acknowledged write (only those acknowledged at
    /// `majority` or `all` when `durableOnly`), the counter, and that every operation was answered.
    mutating func finalCheck(_ store: DocumentStore, durableOnly: Bool, generations: [Int]) {
        for id in durableOnly ? durable : acknowledged {
            let write = writes[id]!
            if let problem = problem(with: write, in: store) {
                fail("acknowledged op \(id) (\(write.consistency) on n\(write.node)) is lost: \(problem)")
                return
            }
        }
        for (id, started) in open.sorted(by: { $0.key < $1.key }) where generations[started.node] == started.generation
        {
            fail("op \(id) on n\(started.node) (\(started.kind)) was never answered")
            return
        }
        let final = checkCounterValue(store) ?? 0
        if final > limit { fail("the counter ends at \(final), above the limit \(limit)") }
        if casSuccesses.contains(where: { $0 > limit }) { fail("increments above the limit: \(casSuccesses)") }
        guard !durableOnly else { return }
        if Set(casSuccesses).count != casSuccesses.count {
            fail("two successful increments wrote the same value: \(casSuccesses.sorted())")
        } else if Double(casSuccesses.count) > final || (casSuccesses.max() ?? 0) > final {
            fail(
                "\(casSuccesses.count) increments succeeded (\(casSuccesses.sorted())) but the counter ends at \(final)"
            )
        }
    }
}
