import Testing

@testable import DistriCore

/// The counter inside a document field: increments counted per origin on a base value.
@Suite struct CounterMergeTests {
    /// One replica of document "d": its state and the clock of the origin that writes on it.
    private struct Replica {
        var document: ReplicatedDocument
        var clock: HybridLogicalClock
        let origin: String

        /// `$inc` through the product's update path, as the engine applies it.
        mutating func increment(_ field: String, by amount: Double, at time: UInt64) throws {
            let update = DocumentUpdate(increment: [field: amount])
            let body = document.body ?? [:]
            try update.validate(against: body)
            update.apply(to: &document, current: body, stamp: clock.now(wallMillis: time), origin: origin)
        }

        mutating func set(_ values: [String: JSONValue], at time: UInt64) {
            let body = document.body ?? [:]
            DocumentUpdate(set: values).apply(
                to: &document, current: body, stamp: clock.now(wallMillis: time), origin: origin)
        }

        mutating func receive(_ state: ReplicatedDocument) {
            clock.observe(state.version, wallMillis: 0)
            document.merge(state)
        }
    }

    private static func number(_ document: ReplicatedDocument, _ field: String = "n") -> Double? {
        document.body?[field]?.numberValue
    }

    @Test(
        "any interleaving, duplication and reordering of increments from several origins, merged in any order, gives the exact sum on every replica"
    )
    func exactSumUnderAnyMergeOrder() throws {
        for seed in UInt64(0)..<300 {
            var random = SplitMix64(seed: seed)
            let origins = 2 + Int(random.next() % 4)
            let start: ReplicatedDocument
            let base = Double(random.next() % 3 == 0 ? 0 : random.next() % 1000)
            if random.next() % 3 == 0 {
                start = ReplicatedDocument(
                    id: "d", body: ["other": "x"], stamp: .init(millis: 1, counter: 0, node: "s"))
            } else {
                start = ReplicatedDocument(
                    id: "d", body: ["n": .number(base)], stamp: .init(millis: 1, counter: 0, node: "s"))
            }
            var replicas = (0..<origins).map { index in
                Replica(document: start, clock: HybridLogicalClock(node: "n\(index)"), origin: "n\(index).start")
            }
            var expected = Self.number(start) ?? 0
            // States in flight: each send is a snapshot, delivered later, maybe twice, in any order.
            var inFlight: [(to: Int, state: ReplicatedDocument)] = []
            var time: UInt64 = 2
            for _ in 0..<(20 + Int(random.next() % 60)) {
                time += random.next() % 3
                let index = Int(random.next() % UInt64(origins))
                switch random.next() % 4 {
                case 0, 1:
                    let amount = Double(Int(random.next() % 21) - 5)
                    try replicas[index].increment("n", by: amount, at: time)
                    expected += amount
                case 2:
                    let to = Int(random.next() % UInt64(origins))
                    inFlight.append((to, replicas[index].document))
                    if random.next() % 4 == 0 { inFlight.append((to, replicas[index].document)) }
                default:
                    guard !inFlight.isEmpty else { continue }
                    let message = inFlight.remove(at: Int(random.next() % UInt64(inFlight.count)))
                    replicas[message.to].receive(message.state)
                }
            }
            // Everything left arrives, in a random order, and every replica then hears from every other.
            while !inFlight.isEmpty {
                let message = inFlight.remove(at: Int(random.next() % UInt64(inFlight.count)))
                replicas[message.to].receive(message.state)
            }
            let finals = replicas.map(\.document)
            for index in replicas.indices {
                for other in finals.shuffled(using: &random) { replicas[index].receive(other) }
            }
            for replica in replicas {
                #expect(Self.number(replica.document) == expected, "seed \(seed): \(replica.document)")
                #expect(replica.document == replicas[0].document, "seed \(seed): replicas differ")
            }
        }
    }

    @Test("$set then $inc counts the increment on the new value; a $set the incrementer had not seen resets it")
    func setThenIncrement() throws {
        let t0 = HLCTimestamp(millis: 1, counter: 0, node: "s")
        let start = ReplicatedDocument(id: "d", body: ["n": .number(5)], stamp: t0)
        var a = Replica(document: start, clock: HybridLogicalClock(node: "a"), origin: "a.1")
        var b = Replica(document: start, clock: HybridLogicalClock(node: "b"), origin: "b.1")
        // Causal: b saw a's set before incrementing.
        a.set(["n": .number(10)], at: 10)
        b.receive(a.document)
        try b.increment("n", by: 1, at: 11)
        a.receive(b.document)
        #expect(Self.number(a.document) == 11)
        #expect(a.document == b.document)

        // Concurrent: c increments the old base while a sets a new one; in either merge order the set wins.
        var c = Replica(document: a.document, clock: HybridLogicalClock(node: "c"), origin: "c.1")
        a.set(["n": .number(100)], at: 20)
        try c.increment("n", by: 7, at: 30)
        var first = a.document
        first.merge(c.document)
        var second = c.document
        second.merge(a.document)
        #expect(first == second)
        #expect(Self.number(first) == 100)
        // Then the increments made on the new base all count.
        c.receive(first)
        try c.increment("n", by: 2, at: 31)
        try a.increment("n", by: 3, at: 32)
        a.receive(c.document)
        #expect(Self.number(a.document) == 105)
    }

    @Test("increments of a missing field by several origins all count, and a delete they had not seen removes them")
    func missingFieldAndDelete() throws {
        let start = ReplicatedDocument(id: "d", body: ["x": "y"], stamp: .init(millis: 1, counter: 0, node: "s"))
        var a = Replica(document: start, clock: HybridLogicalClock(node: "a"), origin: "a.1")
        var b = Replica(document: start, clock: HybridLogicalClock(node: "b"), origin: "b.1")
        try a.increment("n", by: 2, at: 5)
        try b.increment("n", by: 3, at: 5)
        a.receive(b.document)
        b.receive(a.document)
        #expect(Self.number(a.document) == 5)
        #expect(a.document == b.document)
        var deleted = start
        deleted.delete(stamp: .init(millis: 3, counter: 0, node: "z"))
        a.receive(deleted)
        #expect(a.document.isDeleted, "a delete resets increments made on the base it removed")
    }

    @Test("a replace with $inc writes the new value, and $inc and a value on one field are refused")
    func replaceAndConflicts() throws {
        let current: [String: JSONValue] = ["n": .number(4), "x": "y"]
        var document = ReplicatedDocument(id: "d", body: current, stamp: .init(millis: 1, counter: 0, node: "s"))
        let replace = DocumentUpdate(set: ["z": true], increment: ["n": 1], replace: true)
        try replace.validate(against: current)
        replace.apply(to: &document, current: current, stamp: .init(millis: 2, counter: 0, node: "a"), origin: "a")
        #expect(document.body == ["n": .number(5), "z": true])
        #expect(throws: DatabaseError.self) {
            try DocumentUpdate(set: ["n": 1], increment: ["n": 1]).validate(against: current)
        }
        #expect(throws: DatabaseError.self) { try DocumentUpdate(increment: ["x": 1]).validate(against: current) }
    }

    @Test("1e308 + 1e308 is refused: a result that is not a finite number is never stored")
    func nonFiniteRefused() throws {
        let current: [String: JSONValue] = ["n": .number(1e308)]
        #expect(throws: DatabaseError.self) { try DocumentUpdate(increment: ["n": 1e308]).validate(against: current) }
        #expect(throws: DatabaseError.self) {
            try DocumentUpdate(increment: ["n": -1e308]).validate(against: ["n": .number(-1e308)])
        }
        try DocumentUpdate(increment: ["n": -1e308]).validate(against: current)
    }

    @Test("idempotency keys merge to the same set in any order, within their lifetime and count")
    func appliedKeysMerge() {
        for seed in UInt64(0)..<100 {
            var random = SplitMix64(seed: seed)
            var parts = (0..<4).map { _ in ReplicatedDocument(id: "d") }
            for _ in 0..<300 {
                let index = Int(random.next() % 4)
                parts[index].noteApplied(1 + random.next() % 2_000, millis: random.next() % 900_000)
            }
            var forward = parts[0]
            for part in parts.dropFirst() { forward.merge(part) }
            var backward = parts[3]
            for part in parts.dropLast().reversed() { backward.merge(part) }
            var pairwise = parts[1]
            pairwise.merge(parts[3])
            var other = parts[2]
            other.merge(parts[0])
            pairwise.merge(other)
            #expect(forward.applied == backward.applied && forward.applied == pairwise.applied, "seed \(seed)")
            #expect(forward.applied.count <= ReplicatedDocument.maxAppliedKeys)
            let newest = forward.applied.newest ?? 0
            #expect(
                forward.applied.sorted.allSatisfy { $0.millis + ReplicatedDocument.appliedKeyLifetimeMillis >= newest })
        }
    }
}
