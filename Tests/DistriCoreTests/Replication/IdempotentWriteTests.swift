import Testing

@testable import DistriCore

/// Writes that carry the call's task id as an idempotency key: a retry on any replica is answered
/// from the first application instead of applying again.
@Suite struct IdempotentWriteTests {
    private static let key: UInt64 = 0xC0FFEE

    /// Three nodes holding `c/counter` with n = 0 (operation 2, written with `all`).
    private static func cluster() -> ReplicaTestNetwork {
        var net = ReplicaTestNetwork(nodes: ["n1", "n2", "n3"])
        net.connectAll()
        net.deliverAll()
        net.perform(.createCollection("c"), .all, id: 1, at: "n1")
        net.deliverAll()
        net.perform(.add(collection: "c", id: "counter", body: ["n": .number(0)]), .all, id: 2, at: "n1")
        net.deliverAll()
        return net
    }

    /// n1 applies `operation` and pushes it to n2 only, then dies: n2 and n3 see it gone, and the
    /// retry lands on n3, which first pulls from n2 (a retry reads from a majority before it writes).
    private static func executorDiesAfterReplicating(_ operation: DatabaseOperation, net: inout ReplicaTestNetwork) {
        net.perform(operation, .majority, id: 10, at: "n1", idempotencyKey: key)
        #expect(net.deliverRequest { $0.from == "n1" && $0.to == "n2" })
        net.requests.removeAll { $0.from == "n1" || $0.to == "n1" }
        net.answers.removeAll { $0.from == "n1" || $0.to == "n1" }
        #expect(net.completed[10] == nil, "the client never heard back")
        net.setAlive(["n3"], at: "n2")
        net.setAlive(["n2"], at: "n3")
        net.deliverAll()
        net.pull("n3", from: "n2")
    }

    private static func counter(on node: String, _ net: ReplicaTestNetwork) -> JSONValue? {
        net.engines[node]!.store.document("counter", in: "c")?["n"]
    }

    @Test("an increment whose executor died right after replicating it, retried on another node, is applied once")
    func retriedIncrement() throws {
        var net = Self.cluster()
        let increment = DatabaseOperation.update(collection: "c", id: "counter", DocumentUpdate(increment: ["n": 1]))
        Self.executorDiesAfterReplicating(increment, net: &net)
        net.perform(increment, .majority, id: 11, at: "n3", idempotencyKey: Self.key)
        net.deliverAll()
        let receipt = try #require(try net.completed[11]?.get())
        #expect(receipt.replayed)
        #expect(receipt.id == "counter")
        #expect(receipt.replicas >= 2)
        for node in ["n2", "n3"] { #expect(Self.counter(on: node, net) == .number(1)) }
        // Without the key, the same call would have counted twice: the key is what held it.
        net.perform(increment, .majority, id: 12, at: "n3")
        net.deliverAll()
        #expect(Self.counter(on: "n3", net) == .number(2))
    }

    @Test("an add with an explicit _id, retried after its executor died, answers success instead of exists")
    func retriedAddWithID() throws {
        var net = Self.cluster()
        let add = DatabaseOperation.add(collection: "c", id: "alice", body: ["v": 1])
        Self.executorDiesAfterReplicating(add, net: &net)
        net.perform(add, .majority, id: 11, at: "n3", idempotencyKey: Self.key)
        net.deliverAll()
        let receipt = try #require(try net.completed[11]?.get())
        #expect(receipt.id == "alice")
        #expect(receipt.replayed)
        // Another call adding the same id still finds it taken.
        net.perform(add, .majority, id: 12, at: "n3", idempotencyKey: Self.key + 1)
        net.deliverAll()
        #expect(throws: DatabaseError.self) { try net.completed[12]?.get() }
    }

    @Test("a conditional increment retried on another node after it committed is answered, not applied again")
    func retriedConditional() throws {
        var net = Self.cluster()
        let increment = DatabaseOperation.conditional(
            collection: "c", id: "counter", condition: try DocumentFilter(.object(["n": .object(["$lt": 5])])),
            update: DocumentUpdate(increment: ["n": 1]))
        net.perform(increment, .majority, id: 10, at: "n1", idempotencyKey: Self.key)
        net.deliverAll()
        #expect(try net.completed[10]?.get().document?["n"] == .number(1))
        net.perform(increment, .majority, id: 11, at: "n2", idempotencyKey: Self.key)
        net.deliverAll()
        let retry = try #require(try net.completed[11]?.get())
        #expect(retry.replayed)
        for node in ["n1", "n2", "n3"] { #expect(Self.counter(on: node, net) == .number(1)) }
    }

    @Test("$inc of 1e308 on 1e308 is refused and leaves the value as it was")
    func infiniteIncrementRefused() throws {
        var net = Self.cluster()
        net.perform(
            .update(collection: "c", id: "counter", DocumentUpdate(set: ["n": .number(1e308)])), id: 10, at: "n1")
        net.perform(
            .update(collection: "c", id: "counter", DocumentUpdate(increment: ["n": 1e308])), id: 11, at: "n1")
        let result = try #require(net.completed[11])
        guard case .failure(let error) = result else {
            Issue.record("answered \(result)")
            return
        }
        #expect(error.kind == .badRequest)
        #expect(Self.counter(on: "n1", net) == .number(1e308))
    }
}
