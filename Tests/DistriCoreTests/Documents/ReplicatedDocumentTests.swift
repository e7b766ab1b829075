import Testing

@testable import DistriCore

/// Random updates of one document, as different replicas would make them.
private enum Update {
    case write([String: JSONValue], HLCTimestamp, replace: Bool)
    case delete(HLCTimestamp)

    func apply(to document: inout ReplicatedDocument) {
        switch self {
        case .write(let changes, let stamp, let replace): document.write(changes, stamp: stamp, replace: replace)
        case .delete(let stamp): document.delete(stamp: stamp)
        }
    }

    /// Each update gets its own stamp (a random node suffix makes collisions vanishingly rare), as each
    /// event does from a node's hybrid logical clock.
    static func random(using random: inout SimulationRandom) -> Update {
        let stamp = HLCTimestamp(
            millis: UInt64.random(in: 0...20, using: &random), counter: UInt32.random(in: 0...1000, using: &random),
            node: ["a", "b", "c"][Int.random(in: 0...2, using: &random)]
                + "\(UInt32.random(in: 0...UInt32.max, using: &random))")
        if random.chance(0.15) { return .delete(stamp) }
        var changes: [String: JSONValue] = [:]
        for field in ["name", "views", "owner"] where random.chance(0.5) {
            changes[field] = .number(Double(Int.random(in: 0...9, using: &random)))
        }
        return .write(changes, stamp, replace: random.chance(0.2))
    }
}

/// A replica that applied `updates` in order.
private func replica(_ updates: [Update]) -> ReplicatedDocument {
    var document = ReplicatedDocument(id: "d")
    for update in updates { update.apply(to: &document) }
    return document
}

@Suite struct ReplicatedDocumentTests {
    @Test("merge is commutative, associative and idempotent", arguments: 0..<4)
    func mergeLaws(part: UInt64) {
        var random = SimulationRandom(seed: 1000 + part)
        for _ in 0..<500 {
            let a = replica((0..<Int.random(in: 0...4, using: &random)).map { _ in Update.random(using: &random) })
            let b = replica((0..<Int.random(in: 0...4, using: &random)).map { _ in Update.random(using: &random) })
            let c = replica((0..<Int.random(in: 0...4, using: &random)).map { _ in Update.random(using: &random) })
            var ab = a
            ab.merge(b)
            var ba = b
            ba.merge(a)
            #expect(ab == ba)
            var abC = ab
            abC.merge(c)
            var bc = b
            bc.merge(c)
            var aBC = a
            aBC.merge(bc)
            #expect(abC == aBC)
            var aa = a
            aa.merge(a)
            #expect(aa == a)
        }
    }

    @Test("any order of the same updates gives the same replica")
    func orderIndependence() {
        var random = SimulationRandom(seed: 7)
        for _ in 0..<500 {
            let updates = (0..<Int.random(in: 1...8, using: &random)).map { _ in Update.random(using: &random) }
            let reference = replica(updates)
            var shuffled = updates
            shuffled.shuffle(using: &random)
            #expect(replica(shuffled) == reference)
            #expect(replica(shuffled).body == reference.body)
        }
    }

    @Test("concurrent updates of different fields both survive; the same field goes to the later write")
    func perFieldMerge() {
        var alice = ReplicatedDocument(
            id: "img", body: ["name": .string("cat.png"), "views": .number(3)],
            stamp: HLCTimestamp(millis: 1, counter: 0, node: "a"))
        var bob = alice
        alice.write(["views": .number(2)], stamp: HLCTimestamp(millis: 5, counter: 0, node: "a"), replace: false)
        bob.write(["owner": .string("bob")], stamp: HLCTimestamp(millis: 4, counter: 0, node: "b"), replace: false)
        bob.write(["views": .number(1)], stamp: HLCTimestamp(millis: 4, counter: 1, node: "b"), replace: false)
        alice.merge(bob)
        #expect(alice.body == ["name": .string("cat.png"), "views": .number(2), "owner": .string("bob")])
    }

    @Test("a delete hides earlier fields; a later write revives the document with only the later fields")
    func tombstones() {
        var document = ReplicatedDocument(
            id: "d", body: ["a": .number(1), "b": .number(2)], stamp: HLCTimestamp(millis: 1, counter: 0, node: "x"))
        document.delete(stamp: HLCTimestamp(millis: 2, counter: 0, node: "y"))
        #expect(document.isDeleted)
        var late = document
        late.write(["b": .number(3)], stamp: HLCTimestamp(millis: 3, counter: 0, node: "x"), replace: false)
        #expect(late.body == ["b": .number(3)])
        var early = ReplicatedDocument(id: "d")
        early.write(["c": .number(9)], stamp: HLCTimestamp(millis: 1, counter: 5, node: "z"), replace: false)
        early.merge(document)
        #expect(early.isDeleted, "a write before the delete stays deleted wherever it arrives")
    }
}

@Suite struct HybridLogicalClockTests {
    @Test("timestamps grow even when the wall clock stalls or goes back, and pass remote ones")
    func monotonic() {
        var clock = HybridLogicalClock(node: "a")
        let t1 = clock.now(wallMillis: 100)
        let t2 = clock.now(wallMillis: 100)
        let t3 = clock.now(wallMillis: 90)
        #expect(t1 < t2 && t2 < t3)
        clock.observe(HLCTimestamp(millis: 500, counter: 7, node: "b"), wallMillis: 95)
        let t4 = clock.now(wallMillis: 96)
        #expect(t4 > HLCTimestamp(millis: 500, counter: 7, node: "b"))
    }
}
