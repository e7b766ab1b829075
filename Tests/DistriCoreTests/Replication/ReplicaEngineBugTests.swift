import Foundation
import Testing

@testable import DistriCore

/// Minimal reproductions of engine bugs that the replication simulation and reviews found, all fixed:
/// each fails if its bug comes back.
@Suite struct ReplicaEngineBugTests {
    private static let body: [String: JSONValue] = ["x": .number(1)]

    /// Three connected nodes that all hold collection `c`.
    private static func cluster(settings: ReplicaSettings = .init()) -> ReplicaTestNetwork {
        var net = ReplicaTestNetwork(nodes: ["n1", "n2", "n3"], settings: settings)
        net.connectAll()
        net.deliverAll()
        net.perform(.createCollection("c"), .one, id: 1, at: "n1")
        net.deliverAll()
        return net
    }

    private static func increment(below limit: Double) throws -> DatabaseOperation {
        .conditional(
            collection: "c", id: "counter",
            condition: try DocumentFilter(.object(["n": .object(["$lt": .number(limit)])])),
            update: DocumentUpdate(increment: ["n": 1]))
    }

    /// Acceptor state (promises and accepted proposals) lived only in memory: a replica restarted from
    /// its log forgot that it promised a higher ballot and accepted a stale proposal, so two conditional
    /// updates decided on the same base value both succeeded and one increment was lost. Acceptor state
    /// is logged now, and a proposal is accepted only under the ballot promised last.
    @Test("a replica restarted from its log does not accept a proposal it had refused before the restart")
    func acceptorStateSurvivesRestart() throws {
        var net = Self.cluster()
        net.perform(.add(collection: "c", id: "counter", body: ["n": .number(0)]), .all, id: 2, at: "n1")
        net.deliverAll()
        // n1 prepares with n2 and proposes n = 1; its proposal to n2 waits in the network.
        net.perform(try Self.increment(below: 5), id: 3, at: "n1")
        net.drop { $0.to == "n3" }
        net.deliverRequest { $0.to == "n2" }
        net.deliverAnswer()
        net.drop { $0.to == "n3" }
        let staleProposal = try #require(net.requests.first { $0.from == "n1" && $0.to == "n2" })
        net.requests.removeAll()
        // n3 prepares with a higher ballot at n2 and decides n = 1 itself.
        net.perform(try Self.increment(below: 5), id: 4, at: "n3")
        for _ in 0..<20 {
            net.drop { $0.to == "n1" }
            if !net.deliverRequest(where: { $0.from == "n3" }) && !net.deliverAnswer(where: { $0.to == "n3" }) {
                break
            }
        }
        let first = try #require(try net.completed[4]?.get())
        #expect(first.document == ["n": .number(1)])
        // n2 restarts from its log; then n1's old proposal arrives.
        net.start("n2", fromLog: true)
        net.connectAll()
        net.requests.removeAll()
        net.requests.append(staleProposal)
        for _ in 0..<20 {
            net.drop { $0.to == "n3" }
            if !net.deliverRequest(where: { $0.from == "n1" }) && !net.deliverAnswer(where: { $0.to == "n1" }) {
                break
            }
        }
        if case .success(let second)? = net.completed[3] {
            let values = [first.document, second.document].map { String(describing: $0) }
            Issue.record("both increments succeeded: \(values)")
        }
    }

    /// A value accepted before a restart may already be chosen: the replica must report it to the next
    /// coordinator, whether it restarts from its log or from a compacted snapshot of it.
    @Test("an accepted proposal survives a restart from the log and from a snapshot")
    func acceptedProposalSurvivesRestart() throws {
        let key = DocumentKey(collection: "c", id: "counter")
        var document = ReplicatedDocument(id: "counter")
        document.write(["n": .number(1)], stamp: HLCTimestamp(millis: 10, counter: 0, node: "n1!cas"), replace: false)
        var engine = ReplicaEngine(node: "n2", epoch: 1, seed: 1)
        var log: [PersistedEntry] = []
        let ballot = Ballot(round: 1, node: "n1")
        for request in [ReplicaRequest.prepare(key, ballot), .propose(key, ballot, document)] {
            let (_, actions) = engine.handle(request, from: "n1", now: 100)
            for case .persist(let entries) in actions { log += entries }
        }
        var restarted = ReplicaEngine(node: "n2", epoch: 2, seed: 2)
        restarted.restore(log, now: 200)
        var compacted = ReplicaEngine(node: "n2", epoch: 3, seed: 3)
        compacted.restore(restarted.snapshot(), now: 300)
        for var replica in [restarted, compacted] {
            let (refused, _) = replica.handle(.prepare(key, Ballot(round: 1, node: "n0")), from: "n0", now: 400)
            guard case .promise(nil, let promised) = refused else {
                Issue.record("promised a ballot below the one promised before the restart: \(refused)")
                continue
            }
            #expect(promised == ballot)
            let (answer, _) = replica.handle(.prepare(key, Ballot(round: 2, node: "n3")), from: "n3", now: 400)
            guard case .promise(let promise?, _) = answer else {
                Issue.record("no promise for a higher ballot: \(answer)")
                continue
            }
            #expect(promise.accepted == ballot)
            #expect(promise.acceptedDocument == document)
        }
    }

    /// The grace before a tombstone is purged counts from when this replica recorded it, not from when
    /// the last peer confirmed it: a peer's answer computed before it saw the delete can arrive just
    /// after the purge. It used to bring the deleted fields back; the purge horizon now deletes them
    /// again, so the answer merges as it would have into the tombstone (the update, concurrent with
    /// the delete and after it in stamp order, survives; the field the delete removed does not).
    @Test("a pull answer in flight while a tombstone is purged brings back no field the delete removed")
    func purgeRacesAnInFlightAnswer() throws {
        var net = Self.cluster(settings: ReplicaSettings(tombstoneGrace: 5_000))
        net.perform(.add(collection: "c", id: "d", body: Self.body), .all, id: 2, at: "n1")
        net.deliverAll()
        net.perform(.update(collection: "c", id: "d", DocumentUpdate(set: ["y": .bool(true)])), id: 3, at: "n3")
        net.drop { _ in true }
        net.perform(.delete(collection: "c", ids: ["d"]), id: 4, at: "n1")
        net.drop { $0.to == "n3" }
        net.deliverAll()
        // What the answer merges into while the tombstone is still here.
        var unpurged = try #require(net.engines["n1"]!.store.collections["c"]?.documents["d"])
        unpurged.merge(try #require(net.engines["n3"]!.store.collections["c"]?.documents["d"]))
        #expect(unpurged.body == ["y": .bool(true)], "the update is after the delete in stamp order")
        // Long after the delete, n1 pulls from n3, which answers at once; the answer is slow.
        net.now += 10_000
        net.run([net.engines["n1"]!.pull(from: "n3", reads: [])], at: "n1")
        net.deliverRequest { $0.from == "n1" && $0.to == "n3" }
        let slow = net.answers.removeLast()
        // Meanwhile both peers pull past the tombstone and n1 purges it.
        for peer in ["n2", "n3"] {
            net.pull(peer, from: "n1")
            net.pull(peer, from: "n1")
        }
        net.tick("n1")
        net.requests.removeAll()
        #expect(net.engines["n1"]!.tombstoneCount == 0, "purged")
        net.answers.append(slow)
        net.deliverAll()
        #expect(
            net.engines["n1"]!.store.document("d", in: "c") == unpurged.body,
            "the acknowledged delete was undone")
    }

    /// A flush splits a peer's changes into batches of `maxChangesPerMessage` and attaches the waiting
    /// writes only to the last batch: when an earlier batch is lost and the last lands, the peer counts
    /// as holding writes whose changes it never received.
    @Test("a write counts a peer as holding it only when the peer received the write's changes")
    func splitPushAcknowledgesOnlyWhatLanded() throws {
        var net = Self.cluster(settings: ReplicaSettings(maxChangesPerMessage: 1))
        var engine = net.engines["n1"]!
        var actions = engine.perform(
            .add(collection: "c", id: "a", body: Self.body), consistency: .majority, id: 2, now: net.now,
            deadline: net.now + 1_000)
        actions += engine.perform(
            .add(collection: "c", id: "b", body: Self.body), consistency: .one, id: 3, now: net.now,
            deadline: net.now + 1_000)
        actions += engine.flush(now: net.now)
        net.engines["n1"] = engine
        net.run(actions, at: "n1")
        // The first batch (document a) is lost on the way to every peer; the second (b) lands at n2.
        let first = Set(["n2", "n3"].compactMap { peer in net.requests.first { $0.to == peer }?.number })
        net.drop { first.contains($0.number) }
        net.deliverRequest { $0.to == "n2" }
        net.deliverAnswer()
        if case .success(let receipt)? = net.completed[2] {
            let holders = net.nodes.filter { net.engines[$0]!.store.document("a", in: "c") != nil }
            #expect(holders.count >= 2, "acknowledged by \(receipt.replicas) replicas, held by \(holders)")
        }
    }
}
