@testable import DistriCore

/// Random replication values for the merge, codec and simulation tests, all drawn from a seed.
extension SplitMix64 {
    mutating func below(_ bound: Int) -> Int { Int.random(in: 0..<bound, using: &self) }

    mutating func element<T>(_ items: [T]) -> T { items[below(items.count)] }

    mutating func stamp(nodes: [String] = ["n1", "n2", "n3"]) -> HLCTimestamp {
        HLCTimestamp(
            millis: UInt64.random(in: 0...2_000, using: &self), counter: UInt32(below(4)), node: element(nodes))
    }

    /// A JSON value; `finite` leaves out NaN (which is not equal to itself) and infinities.
    mutating func jsonValue(depth: Int = 0, finite: Bool = true) -> JSONValue {
        switch below(depth >= 3 ? 5 : 7) {
        case 0: return .null
        case 1: return .bool(chance(0.5))
        case 2:
            if !finite && chance(0.2) { return .number(element([.nan, .infinity, -.infinity, -0.0])) }
            return .number(chance(0.5) ? Double(below(100)) : Double.random(in: -1e9...1e9, using: &self))
        case 3, 4: return .string(element(["", "a", "héllo", "日本", "x\u{0}y", String(repeating: "z", count: 200)]))
        case 5: return .array((0..<below(4)).map { _ in jsonValue(depth: depth + 1, finite: finite) })
        default:
            var fields: [String: JSONValue] = [:]
            for _ in 0..<below(4) {
                fields[element(["a", "b", "c", "ü"])] = jsonValue(depth: depth + 1, finite: finite)
            }
            return .object(fields)
        }
    }

    mutating func replicatedDocument(id: String? = nil, finite: Bool = true) -> ReplicatedDocument {
        var fields: [String: ReplicatedDocument.Field] = [:]
        for _ in 0..<below(4) {
            fields[element(["a", "b", "c", "n"])] = ReplicatedDocument.Field(
                value: chance(0.1) ? nil : jsonValue(finite: finite), stamp: stamp())
        }
        return ReplicatedDocument(
            id: id ?? element(["d1", "d2", "d3"]), fields: fields, deleted: chance(0.3) ? stamp() : nil,
            cleared: chance(0.2) ? stamp() : nil)
    }

    mutating func documentChange(finite: Bool = true) -> DocumentChange {
        if chance(0.2) {
            return .collection(name: element(["c1", "c2"]), created: stamp(), dropped: chance(0.4) ? stamp() : nil)
        }
        return .document(collection: element(["c1", "c2"]), replicatedDocument(finite: finite))
    }

    mutating func coverage() -> [String: HLCTimestamp] {
        var all: [String: HLCTimestamp] = [:]
        for node in ["n1", "n2", "n3"] where chance(0.5) { all[node] = stamp(nodes: [node]) }
        return all
    }

    mutating func watermark() -> Watermark {
        Watermark(epoch: next(), sequence: UInt64(below(100_000)))
    }

    mutating func ballot() -> Ballot { Ballot(round: UInt64(below(1_000)), node: element(["n1", "n2", ""])) }

    mutating func documentKey() -> DocumentKey {
        DocumentKey(collection: element(["c1", "c2"]), id: chance(0.8) ? element(["d1", "d2"]) : nil)
    }

    mutating func replicaRequest(finite: Bool = true) -> ReplicaRequest {
        switch below(5) {
        case 0:
            let chain = chance(0.5) ? PushChain(origin: element(["n1", "n2"]), since: stamp(), upTo: stamp()) : nil
            return .push(
                (0..<below(4)).map { _ in documentChange(finite: finite) }, chain: chain,
                sender: chance(0.5) ? element(["n1~a", "n2~b"]) : nil)
        case 1:
            var digests: [String: AntiEntropy.CollectionDigest]?
            if chance(0.5) {
                var all: [String: AntiEntropy.CollectionDigest] = [:]
                for name in ["c1", "c2"] where chance(0.6) {
                    all[name] = AntiEntropy.CollectionDigest(
                        created: stamp(), dropped: chance(0.3) ? stamp() : nil,
                        ranges: (0..<AntiEntropy.rangeCount).map { _ in chance(0.9) ? 0 : next() })
                }
                digests = all
            }
            return .pull(
                PullRequest(
                    since: chance(0.5) ? watermark() : nil, digests: digests, coverage: coverage(),
                    incarnation: chance(0.5) ? element(["n1~a", "n2~b"]) : nil))
        case 2: return .prepare(documentKey(), ballot())
        case 3: return .propose(documentKey(), ballot(), replicatedDocument(finite: finite))
        default: return .commit(documentKey(), ballot(), replicatedDocument(finite: finite))
        }
    }

    mutating func replicaResponse(finite: Bool = true) -> ReplicaResponse {
        switch below(4) {
        case 0: return .merged
        case 1:
            return .pulled(
                PullReply(
                    upTo: watermark(), complete: chance(0.5), understood: chance(0.8), coverage: coverage(),
                    changes: (0..<below(4)).map { _ in documentChange(finite: finite) }))
        case 2:
            let promise = CASPromise(
                accepted: chance(0.5) ? ballot() : nil,
                acceptedDocument: chance(0.5) ? replicatedDocument(finite: finite) : nil, committed: ballot(),
                current: chance(0.5) ? replicatedDocument(finite: finite) : nil)
            return .promise(chance(0.8) ? promise : nil, promised: ballot())
        default: return .accepted(chance(0.5), promised: ballot())
        }
    }

    mutating func persistedEntry(finite: Bool = true) -> PersistedEntry {
        if chance(0.6) { return .change(sequence: UInt64(below(1 << 20)), documentChange(finite: finite)) }
        if chance(0.4) {
            let acceptor = DocumentAcceptor(
                promised: ballot(), accepted: chance(0.5) ? (ballot(), replicatedDocument(finite: finite)) : nil,
                committed: ballot())
            return .acceptor(documentKey(), acceptor)
        }
        var pulled: [String: Watermark] = [:]
        for peer in ["n1", "n2"] where chance(0.6) { pulled[peer] = watermark() }
        return .syncState(ReplicaSyncState(epoch: next(), pulled: pulled, coverage: coverage(), clock: stamp()))
    }
}
