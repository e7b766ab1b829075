import Foundation
import Testing

@testable import DistriCore

/// A random operation on a store, with a unique stamp.
private func randomOperation(
    _ random: inout SimulationRandom, node: String, clock: inout HybridLogicalClock, time: inout UInt64
) -> (inout DocumentStore) -> Void {
    time += UInt64.random(in: 0...3, using: &random)
    let stamp = clock.now(wallMillis: time)
    let collection = ["catalog", "users"][Int.random(in: 0...1, using: &random)]
    let id = "doc\(Int.random(in: 0..<6, using: &random))"
    let value = JSONValue.number(Double(Int.random(in: 0..<100, using: &random)))
    switch Int.random(in: 0..<10, using: &random) {
    case 0: return { $0.dropCollection(collection, stamp: stamp) }
    case 1: return { $0.createCollection(collection, stamp: stamp) }
    case 2: return { store in store.update(id, in: collection) { $0.delete(stamp: stamp) } }
    case 3: return { store in store.update(id, in: collection) { $0.write(["v": value], stamp: stamp, replace: true) } }
    default:
        let field = ["a", "b", "c"][Int.random(in: 0...2, using: &random)]
        return { store in store.update(id, in: collection) { $0.write([field: value], stamp: stamp, replace: false) } }
    }
}

@Suite struct DocumentStoreTests {
    @Test("replicas that exchanged their state in any order hold identical stores", arguments: 0..<4)
    func convergence(part: UInt64) {
        var random = SimulationRandom(seed: 77 + part)
        for _ in 0..<100 {
            var replicas = (0..<3).map { _ in DocumentStore() }
            var clocks = (0..<3).map { HybridLogicalClock(node: "n\($0)") }
            var time: UInt64 = 0
            for _ in 0..<40 {
                let index = Int.random(in: 0..<3, using: &random)
                let operation = randomOperation(&random, node: "n\(index)", clock: &clocks[index], time: &time)
                operation(&replicas[index])
            }
            // Gossip full states pairwise in a random order until everyone has everything.
            var merged = replicas
            for _ in 0..<6 {
                let a = Int.random(in: 0..<3, using: &random)
                let b = (a + Int.random(in: 1...2, using: &random)) % 3
                merged[b].merge(merged[a])
            }
            for index in 0..<3 { for other in 0..<3 { merged[index].merge(merged[other]) } }
            #expect(merged[0] == merged[1] && merged[1] == merged[2])
            var twice = merged[0]
            twice.merge(merged[0])
            #expect(twice == merged[0], "merging is idempotent")
            #expect(merged[0].counts == merged[2].counts)
        }
    }

    @Test("a document new to a replica, applied as a change, is exactly the merge of it into nothing")
    func newDocumentApplied() {
        var random = SimulationRandom(seed: 5)
        var clock = HybridLogicalClock(node: "n0")
        var time: UInt64 = 0
        var source = DocumentStore()
        for _ in 0..<300 { randomOperation(&random, node: "n0", clock: &clock, time: &time)(&source) }
        var checked = 0
        for (name, collection) in source.collections {
            for document in collection.documents.values {
                var expected = ReplicatedDocument(id: document.id)
                expected.merge(document)
                var store = DocumentStore()
                let result = store.apply(.document(collection: name, document))
                #expect(result.changed && result.equalsIncoming)
                #expect(store.collections[name]?.documents[document.id] == expected)
                checked += 1
            }
        }
        #expect(checked >= 6)
    }

    @Test("a decoded document is normalised: fields older than its delete are gone")
    func decodedDocumentsAreNormalised() throws {
        let old = HLCTimestamp(millis: 1, counter: 0, node: "a")
        let delete = HLCTimestamp(millis: 2, counter: 0, node: "a")
        let live = ReplicatedDocument(id: "x", body: ["n": .number(1)], stamp: old)
        var deleted = ReplicatedDocument(id: "x")
        deleted.delete(stamp: delete)
        // Splice the delete into the live document's JSON: a state no merge produces.
        var object = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(live)) as? [String: Any])
        let tombstone = try #require(
            try JSONSerialization.jsonObject(with: JSONEncoder().encode(deleted)) as? [String: Any])
        object["deleted"] = tombstone["deleted"]
        let decoded = try JSONDecoder().decode(
            ReplicatedDocument.self, from: JSONSerialization.data(withJSONObject: object))
        #expect(decoded.fields.isEmpty)
        #expect(decoded.isDeleted)
        #expect(decoded == deleted)
    }

    @Test("a dropped collection hides older documents; a later create brings the collection back empty")
    func dropAndRecreate() {
        var store = DocumentStore()
        let t = (1...4).map { HLCTimestamp(millis: UInt64($0), counter: 0, node: "a") }
        store.createCollection("catalog", stamp: t[0])
        store.update("x", in: "catalog") { $0.write(["n": .number(1)], stamp: t[0], replace: false) }
        #expect(store.counts == ["catalog": 1])
        store.dropCollection("catalog", stamp: t[1])
        #expect(store.collectionNames.isEmpty)
        #expect(store.documents(in: "catalog") == nil)
        store.createCollection("catalog", stamp: t[2])
        #expect(store.counts == ["catalog": 0])
        store.update("y", in: "catalog") { $0.write(["n": .number(2)], stamp: t[3], replace: false) }
        #expect(store.documents(in: "catalog")?.map(\.id) == ["y"])
    }

    @Test("a drop forgets the documents before it: late states change nothing, later ones bring only what follows it")
    func dropForgetsWhatPrecedesIt() {
        let t = (1...6).map { HLCTimestamp(millis: UInt64($0), counter: 0, node: "a") }
        var early = ReplicatedDocument(id: "x")
        early.write(["n": .number(1), "old": .string("before")], stamp: t[0], replace: false)
        var store = DocumentStore()
        store.createCollection("c", stamp: t[0])
        store.apply(.document(collection: "c", early))
        store.update("z", in: "c") { $0.delete(stamp: t[1]) }
        store.dropCollection("c", stamp: t[2])
        #expect(store.collections["c"]?.documents.isEmpty == true, "the memory goes with the drop")

        // A state from before the drop, still in flight, changes nothing.
        #expect(store.apply(.document(collection: "c", early)).changed == false)
        #expect(store.collections["c"]?.documents.isEmpty == true)

        // A state written after the drop by a replica that had not seen it keeps only the later field.
        var later = early
        later.write(["n": .number(2)], stamp: t[4], replace: false)
        let applied = store.apply(.document(collection: "c", later))
        #expect(applied.changed && !applied.equalsIncoming)
        store.createCollection("c", stamp: t[3])
        #expect(store.document("x", in: "c") == ["n": .number(2)])

        // The same changes in the other order (the drop last) give the same store.
        var other = DocumentStore()
        other.createCollection("c", stamp: t[0])
        other.apply(.document(collection: "c", later))
        other.update("z", in: "c") { $0.delete(stamp: t[1]) }
        other.createCollection("c", stamp: t[3])
        other.dropCollection("c", stamp: t[2])
        #expect(other == store)
    }
}

@Suite struct AntiEntropyTests {
    @Test("digests find the few documents that differ, and exchanging them makes replicas equal")
    func catchUp() {
        var a = DocumentStore()
        var clock = HybridLogicalClock(node: "a")
        a.createCollection("catalog", stamp: clock.now(wallMillis: 1))
        for index in 0..<2000 {
            let stamp = clock.now(wallMillis: 2)
            a.update("doc\(index)", in: "catalog") {
                $0.write(["i": .number(Double(index))], stamp: stamp, replace: false)
            }
        }
        var b = a
        // b missed five writes, and has one newer write of its own.
        for index in [3, 500, 501, 1200, 1999] {
            let stamp = clock.now(wallMillis: 3)
            a.update("doc\(index)", in: "catalog") { $0.write(["seen": .bool(true)], stamp: stamp, replace: false) }
        }
        var bClock = HybridLogicalClock(node: "b")
        let bStamp = bClock.now(wallMillis: 4)
        b.update("doc42", in: "catalog") { $0.write(["b": .bool(true)], stamp: bStamp, replace: false) }

        let toB = AntiEntropy.missing(from: a, comparedTo: AntiEntropy.digest(b))
        let toA = AntiEntropy.missing(from: b, comparedTo: AntiEntropy.digest(a))
        let sent =
            (toB.collections["catalog"]?.documents.count ?? 0) + (toA.collections["catalog"]?.documents.count ?? 0)
        b.merge(toB)
        a.merge(toA)
        #expect(a == b)
        #expect(AntiEntropy.digest(a) == AntiEntropy.digest(b))
        // Only the ranges holding the six differing documents travel (about 8 documents per range).
        #expect(sent < 6 * 30, "sent \(sent) documents for 6 that differ")
        #expect(sent >= 6)
    }

    @Test("replicas in sync send nothing")
    func inSync() {
        var store = DocumentStore()
        store.createCollection("users", stamp: HLCTimestamp(millis: 1, counter: 0, node: "a"))
        store.update("u", in: "users") {
            $0.write(["name": .string("alice")], stamp: HLCTimestamp(millis: 2, counter: 0, node: "a"), replace: false)
        }
        let delta = AntiEntropy.missing(from: store, comparedTo: AntiEntropy.digest(store))
        #expect(delta.collections.isEmpty)
    }
}
