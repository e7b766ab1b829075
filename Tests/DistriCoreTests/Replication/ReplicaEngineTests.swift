import Foundation
import Testing

@testable import DistriCore

/// Focused scenarios of one ``ReplicaEngine`` and its peers, driven message by message.
@Suite struct ReplicaEngineTests {
    private static let body: [String: JSONValue] = ["x": .number(1)]

    /// Three connected nodes that all hold collection `c`.
    private static func cluster(_ nodes: [String] = ["n1", "n2", "n3"], settings: ReplicaSettings = .init())
        -> ReplicaTestNetwork
    {
        var net = ReplicaTestNetwork(nodes: nodes, settings: settings)
        net.connectAll()
        net.deliverAll()
        net.perform(.createCollection("c"), .one, id: 1, at: nodes[0])
        net.deliverAll()
        return net
    }

    /// A cluster whose collection `c` holds `counter` at n = 0 on every node (written with `all`,
    /// operation 2), and the conditional increment of n while it is below 5.
    private static func counterCluster(_ nodes: [String] = ["n1", "n2", "n3"]) throws -> (
        ReplicaTestNetwork, DatabaseOperation
    ) {
        var net = cluster(nodes)
        net.perform(.add(collection: "c", id: "counter", body: ["n": .number(0)]), .all, id: 2, at: nodes[0])
        net.deliverAll()
        #expect((try? net.completed[2]?.get()) != nil)
        let increment = DatabaseOperation.conditional(
            collection: "c", id: "counter", condition: try DocumentFilter(.object(["n": .object(["$lt": .number(5)])])),
            update: DocumentUpdate(increment: ["n": 1]))
        return (net, increment)
    }

    private static func isUnavailable<T>(_ result: Result<T, DatabaseError>?) -> Bool {
        if case .failure(let error)? = result { return error.kind == .unavailable }
        return false
    }

    @Test("a majority write of three nodes completes when one peer has merged the push, not before")
    func majorityAfterOnePeer() throws {
        var net = Self.cluster()
        net.perform(.add(collection: "c", id: "a", body: Self.body), .majority, id: 2, at: "n1")
        #expect(net.completed[2] == nil, "the write waits for a peer")
        #expect(net.requests.filter { $0.from == "n1" }.map(\.to).sorted() == ["n2", "n3"])
        net.deliverRequest { $0.to == "n2" }
        #expect(net.completed[2] == nil, "n2 merged it, but n1 does not know yet")
        net.deliverAnswer { $0.from == "n2" }
        let receipt = try #require(try net.completed[2]?.get())
        #expect(receipt.replicas == 2)
        #expect(receipt.id == "a")
        #expect(net.engines["n2"]!.store.document("a", in: "c") == Self.body)
        net.deliverAll()
        #expect(net.engines["n3"]!.store.document("a", in: "c") == Self.body)
    }

    @Test("writes flushed together leave in one push per peer, and the stats count pushes and changes")
    func pushBatching() {
        var net = Self.cluster()
        let before = (net.engines["n1"]!.pushesSent, net.engines["n1"]!.changesPushed)
        let adds = (0..<5).map { DatabaseOperation.add(collection: "c", id: "b\($0)", body: Self.body) }
        let sent = net.requests.count
        net.performBatch(adds, firstID: 10, at: "n1")
        #expect(net.requests.count - sent == 2, "one push to each of the two peers")
        #expect(net.engines["n1"]!.pushesSent - before.0 == 2)
        #expect(net.engines["n1"]!.changesPushed - before.1 == 10)
    }

    @Test("while a push to a peer is in flight, later writes wait for it and then leave together in one push")
    func pushWindow() throws {
        var net = Self.cluster()
        net.perform(.add(collection: "c", id: "a", body: Self.body), .majority, id: 2, at: "n1")
        for index in 0..<3 {
            let add = DatabaseOperation.add(collection: "c", id: "b\(index)", body: Self.body)
            net.perform(add, .majority, id: 10 + UInt64(index), at: "n1")
        }
        #expect(net.requests.filter { $0.from == "n1" }.count == 2, "one push per peer in flight, the rest wait")
        net.deliverRequest { $0.to == "n2" }
        net.deliverAnswer { $0.from == "n2" }
        #expect((try? net.completed[2]?.get()) != nil)
        #expect(net.completed[10] == nil, "b0 has not reached a peer yet")
        let next = try #require(net.requests.first { $0.from == "n1" && $0.to == "n2" })
        guard case .push(let changes, _, _) = next.request else {
            Issue.record("expected a push, got \(next.request)")
            return
        }
        #expect(changes.count == 3, "the waiting writes leave in one push")
        #expect(net.requests.filter { $0.from == "n1" && $0.to == "n3" }.count == 1, "n3 still has one in flight")
        net.deliverAll()
        for id: UInt64 in [10, 11, 12] { #expect((try? net.completed[id]?.get()) != nil) }
        #expect(net.documents("c", on: "n3") == ["a", "b0", "b1", "b2"])
    }

    @Test("a push that failed frees its place: the writes waiting behind it go out at once")
    func pushWindowAfterFailure() {
        var net = Self.cluster()
        net.perform(.add(collection: "c", id: "a", body: Self.body), .majority, id: 2, at: "n1")
        net.perform(.add(collection: "c", id: "b", body: Self.body), .majority, id: 3, at: "n1")
        net.drop { $0.from == "n1" && $0.to == "n2" }
        let retry = net.requests.filter { $0.from == "n1" && $0.to == "n2" }
        #expect(retry.count == 1, "the failed push and the waiting one leave together")
        net.deliverAll()
        #expect((try? net.completed[2]?.get()) != nil)
        #expect((try? net.completed[3]?.get()) != nil)
        #expect(net.documents("c", on: "n2") == ["a", "b"])
    }

    @Test("an `all` write with a known peer down fails at once with unavailable, and writes nothing")
    func allWithDeadPeer() {
        var net = Self.cluster()
        net.setAlive(["n2"], at: "n1")
        net.perform(.add(collection: "c", id: "a", body: Self.body), .all, id: 2, at: "n1")
        #expect(Self.isUnavailable(net.completed[2]))
        #expect(net.engines["n1"]!.store.document("a", in: "c") == nil)
        #expect(net.requests.isEmpty)
        // A majority is still possible.
        net.perform(.add(collection: "c", id: "b", body: Self.body), .majority, id: 3, at: "n1")
        net.deliverAll()
        #expect((try? net.completed[3]?.get()) != nil)
    }

    @Test("a write whose peers never answer fails with unavailable at its deadline, through tick")
    func writeTimesOut() {
        var net = Self.cluster()
        let start = net.now
        net.perform(.add(collection: "c", id: "a", body: Self.body), .majority, id: 2, at: "n1", timeout: 1_500)
        net.requests.removeAll()
        net.now = start + 1_499
        net.tick("n1")
        #expect(net.completed[2] == nil)
        net.now = start + 1_500
        net.tick("n1")
        #expect(Self.isUnavailable(net.completed[2]))
        net.now += 5_000
        net.tick("n1")
        #expect(net.completed.count == 2, "no second completion")
    }

    @Test("pushes that chain on what a peer covers advance its coverage, so pulls do not carry them again")
    func pushChainsAdvanceCoverage() throws {
        var net = Self.cluster()
        // Everyone pulls from everyone once, so each covers the others up to now.
        for node in net.nodes { for peer in net.nodes where peer != node { net.pull(node, from: peer) } }
        let origin = net.engines["n1"]!.clock.node
        for id in 2..<6 {
            net.perform(.add(collection: "c", id: "d\(id)", body: Self.body), .one, id: UInt64(id), at: "n1")
            net.deliverAll()
        }
        let n1Last = net.engines["n1"]!.clock.last
        #expect(net.engines["n3"]!.coverage[origin] == n1Last, "each push linked on the one before")
        // n3 pulls from n2, which holds the same writes: none of them travels again.
        let before = net.pulledChanges["n3", default: 0]
        net.pull("n3", from: "n2")
        #expect(net.pulledChanges["n3", default: 0] == before)

        // A lost push breaks the chain: n3 no longer claims coverage past what it holds.
        net.perform(.add(collection: "c", id: "lost", body: Self.body), .one, id: 7, at: "n1")
        net.drop { $0.to == "n3" }
        net.perform(.add(collection: "c", id: "next", body: Self.body), .one, id: 8, at: "n1")
        net.deliverAll()
        #expect(net.engines["n3"]!.coverage[origin] == n1Last)
        #expect(net.documents("c", on: "n3").contains("next") && !net.documents("c", on: "n3").contains("lost"))
        // Anti-entropy from n2 brings the lost write, since n3 does not cover it.
        net.pull("n3", from: "n2")
        #expect(net.documents("c", on: "n3").contains("lost"))
    }

    @Test(
        "pushes of one origin that overtake each other (sent from different event loops) still advance the receiver's coverage once the gap is filled"
    )
    func overtakingPushChains() throws {
        // A window of several pushes in flight, as a wider setting allows (with the default of one, a
        // push overtakes another only when the first timed out but still arrives).
        var net = Self.cluster(settings: ReplicaSettings(pushWindow: 4))
        for node in net.nodes { for peer in net.nodes where peer != node { net.pull(node, from: peer) } }
        let origin = net.engines["n1"]!.clock.node
        let start = net.engines["n3"]!.coverage[origin]
        // Three pushes from n1 to n3, each chained on the one before, arrive last first.
        var held: [ReplicaTestNetwork.Request] = []
        for id in 2..<5 {
            net.perform(.add(collection: "c", id: "d\(id)", body: Self.body), .one, id: UInt64(id), at: "n1")
            held += net.requests.filter { $0.from == "n1" && $0.to == "n3" }
            net.requests.removeAll { $0.from == "n1" && $0.to == "n3" }
            net.deliverAll()
        }
        #expect(held.count == 3)
        net.requests += held.suffix(2).reversed()
        net.deliverAll()
        #expect(net.engines["n3"]!.coverage[origin] == start, "a chain ahead of the gap claimed coverage")
        net.requests += held.prefix(1)
        net.deliverAll()
        #expect(net.engines["n3"]!.coverage[origin] == net.engines["n1"]!.clock.last, "the chains were not followed")
        #expect(net.engines["n3"]!.chainsAhead.isEmpty)
        // n3 pulls from n2, which holds the same writes: none of them travels again.
        let before = net.pulledChanges["n3", default: 0]
        net.pull("n3", from: "n2")
        #expect(net.pulledChanges["n3", default: 0] == before)
    }

    @Test("chains kept ahead of the coverage are bounded, and a claim past a gap is never followed")
    func chainsAheadAreBounded() {
        var engine = ReplicaEngine(node: "r", epoch: 1, seed: 1)
        func stamp(_ millis: UInt64) -> HLCTimestamp { HLCTimestamp(millis: millis, counter: 0, node: "o") }
        // 200 chains, each ahead of a gap (every other segment is missing).
        for index in 0..<200 {
            let since = stamp(UInt64(10 + 2 * index))
            let chain = PushChain(origin: "o", since: since, upTo: stamp(UInt64(11 + 2 * index)))
            _ = engine.handle(.push([], chain: chain), from: "p", now: 0)
        }
        #expect(engine.chainsAhead["o", default: [:]].count <= ReplicaEngine.maxChainsAhead)
        #expect(engine.coverage["o"] == nil, "a chain past a gap claimed coverage")
        // The segment up to the first kept chain arrives: coverage follows only as far as the chains connect.
        _ = engine.handle(
            .push([], chain: PushChain(origin: "o", since: .zero, upTo: stamp(10))), from: "p", now: 0)
        #expect(engine.coverage["o"] == stamp(11), "followed across a gap, or not at all")
        // Many origins: the table of origins stays bounded too.
        for index in 0..<200 {
            let chain = PushChain(
                origin: "o\(index)", since: stamp(5), upTo: HLCTimestamp(millis: 6, counter: 0, node: "o\(index)"))
            _ = engine.handle(.push([], chain: chain), from: "p", now: 0)
        }
        #expect(engine.chainsAhead.count <= ReplicaEngine.maxChainsAhead)
    }

    @Test("a push from a node's former incarnation that lands after the node restarted empty still reaches it")
    func latePushOfFormerIncarnation() {
        var net = Self.cluster()
        net.perform(.add(collection: "c", id: "late", body: Self.body), id: 2, at: "n1")
        let pushes = net.requests.filter { $0.from == "n1" }
        net.requests.removeAll { $0.from == "n1" }
        #expect(pushes.count == 2)
        // n1 restarts empty and catches up from both peers before its former pushes land.
        net.start("n1")
        net.connectAll()
        net.deliverAll()
        #expect(net.engines["n1"]!.hasSynced)
        for push in pushes { _ = net.engines[push.to]!.handle(push.request, from: "n1", now: net.now) }
        #expect(net.documents("c", on: "n2") == ["late"])
        // The peers hold the state its former self sent, which the new one lacks: a pull brings it.
        net.pull("n1", from: "n2")
        #expect(net.documents("c", on: "n1") == ["late"], "the state went back to no one: it came from n1")
    }

    @Test("a pull answers only changes after its watermark, and not the state the requester pushed")
    func watermarkAndEchoSuppression() throws {
        var net = Self.cluster(["n1", "n2"])
        net.perform(.add(collection: "c", id: "before", body: Self.body), id: 2, at: "n1")
        net.deliverAll()
        let n1 = net.engines["n1"]!
        let mark = Watermark(epoch: n1.epoch, sequence: n1.changeSequence)
        net.perform(.add(collection: "c", id: "after", body: Self.body), id: 3, at: "n1")
        net.perform(.add(collection: "c", id: "echo", body: Self.body), id: 4, at: "n2")
        net.deliverAll()
        #expect(net.documents("c", on: "n1") == ["after", "before", "echo"])

        /// What n1 answers `peer`'s incarnation (its current one, unless `incarnation` names another).
        func ids(_ pull: PullRequest, from peer: String, incarnation: String? = nil) -> [String] {
            var pull = pull
            pull.incarnation = incarnation ?? net.engines[peer]?.clock.node ?? peer
            guard case .pulled(let reply) = net.engines["n1"]!.handle(.pull(pull), from: peer, now: net.now).0 else {
                return ["not a pull reply"]
            }
            return reply.changes.compactMap { change in
                if case .document(_, let document) = change { return document.id }
                return nil
            }.sorted()
        }
        // Coverage left empty, so only the watermark and the echo rule filter.
        let since = PullRequest(since: mark, digests: nil, coverage: [:])
        #expect(ids(since, from: "n2") == ["after"], "n2 pushed `echo` itself")
        #expect(ids(since, from: "n3") == ["after", "echo"])
        #expect(
            ids(since, from: "n2", incarnation: "n2~later") == ["after", "echo"],
            "n2 restarted without its data: its new incarnation lacks `echo`")
        // Coverage leaves out what the requester holds of an origin: here, all of n1's writes so far.
        let own = net.engines["n1"]!.clock.node
        let covered = PullRequest(
            since: mark, digests: nil, coverage: net.engines["n1"]!.currentCoverage.filter { $0.key == own })
        #expect(ids(covered, from: "n3") == ["echo"])
        // Once n1 changes `echo`, n2 no longer holds that state.
        net.perform(.update(collection: "c", id: "echo", DocumentUpdate(set: ["y": .bool(true)])), id: 5, at: "n1")
        net.requests.removeAll()
        #expect(ids(since, from: "n2") == ["after", "echo"])
        // The engine's own pulls bring n2 up to date and then carry nothing.
        net.pull("n2", from: "n1")
        #expect(net.engines["n2"]!.store == net.engines["n1"]!.store)
        let before = net.pulledChanges["n2", default: 0]
        net.pull("n2", from: "n1")
        #expect(net.pulledChanges["n2", default: 0] == before)
    }

    /// Ten thousand documents on three nodes; n3 goes away while n1 changes `missed` of them, then
    /// comes back with its data dir (or its partition heals) and catches up from n1 and n2. The documents
    /// are spread over ten collections only to keep the test fast (see `writeCostIsFlat`).
    private static func rejoin(missed: Int, restart: Bool, sequential: Bool) -> (received: Int, equal: Bool) {
        var net = cluster()
        for name in 0..<10 { net.perform(.createCollection("c\(name)"), id: 50 + UInt64(name), at: "n1") }
        for index in 0..<10_000 {
            let body: [String: JSONValue] = ["i": .number(Double(index))]
            net.run(
                net.engines["n1"]!.perform(
                    .add(collection: "c\(index % 10)", id: "d\(index)", body: body), consistency: .one,
                    id: 100 + UInt64(index), now: net.now, deadline: net.now + 1_000),
                at: "n1")
        }
        net.run(net.engines["n1"]!.flush(now: net.now), at: "n1")
        net.deliverAll()
        // Watermarks settle: everyone pulls from everyone twice.
        for _ in 0..<2 {
            for node in net.nodes { for peer in net.nodes where peer != node { net.pull(node, from: peer) } }
        }
        net.now += 1_000
        net.setAlive([], at: "n3")
        net.setAlive(["n2"], at: "n1")
        net.setAlive(["n1"], at: "n2")
        net.requests.removeAll()
        for index in 0..<missed {
            let operation: DatabaseOperation =
                index % 2 == 0
                ? .add(collection: "c0", id: "new\(index)", body: Self.body)
                : .update(
                    collection: "c\(index * 97 % 10)", id: "d\(index * 97)",
                    DocumentUpdate(set: ["changed": .bool(true)]))
            net.run(
                net.engines["n1"]!.perform(
                    operation, consistency: .one, id: 20_000 + UInt64(index), now: net.now, deadline: net.now + 1_000),
                at: "n1")
        }
        net.run(net.engines["n1"]!.flush(now: net.now), at: "n1")
        net.deliverAll()
        net.now += 1_000
        if restart { net.start("n3", fromLog: true) }
        net.pulledChanges["n3"] = 0
        if sequential {
            // As periodic anti-entropy would: one peer, then the other.
            net.setAlive([], at: "n3")
            net.setAlive(["n1"], at: "n3")
            net.deliverAll()
            net.setAlive(["n1", "n2"], at: "n3")
            net.deliverAll()
        } else {
            net.setAlive(["n1", "n2"], at: "n3")
        }
        net.setAlive(["n2", "n3"], at: "n1")
        net.setAlive(["n1", "n3"], at: "n2")
        net.deliverAll()
        let stores = net.nodes.map { net.engines[$0]!.store }
        return (net.pulledChanges["n3", default: 0], stores.allSatisfy { $0 == stores[0] })
    }

    /// Time for `count` adds on one replica, each merged by a peer, into a collection that already holds
    /// `size` documents.
    private static func writeCost(size: Int, count: Int) -> Duration {
        var writer = ReplicaEngine(node: "w", epoch: 1, seed: 1)
        var reader = ReplicaEngine(node: "r", epoch: 2, seed: 2)
        _ = writer.perform(.createCollection("c"), consistency: .one, id: 0, now: 1, deadline: 2)
        let stamp = HLCTimestamp(millis: 1, counter: 0, node: "x")
        var documents: [String: ReplicatedDocument] = [:]
        for index in 0..<size {
            documents["old\(index)"] = ReplicatedDocument(id: "old\(index)", body: Self.body, stamp: stamp)
        }
        writer.store.collections["c"]!.documents = documents
        reader.store = writer.store
        return ContinuousClock().measure {
            for index in 0..<count {
                let actions = writer.perform(
                    .add(collection: "c", id: "new\(index)", body: Self.body), consistency: .one, id: UInt64(index + 1),
                    now: 10, deadline: 20)
                for case .persist(let entries) in actions {
                    for case .change(_, let change) in entries {
                        _ = reader.handle(.push([change]), from: "w", now: 10)
                    }
                }
            }
        }
    }

    /// `DocumentStore.update` and `apply` copy the collection out of the dictionary, change the copy and
    /// store it back, so every write copies the collection's whole document dictionary.
    @Test(
        "a write costs about the same in a collection of 500 and of 8,000 documents")
    func writeCostIsFlat() {
        _ = Self.writeCost(size: 100, count: 50)
        let small = Self.writeCost(size: 500, count: 300)
        let large = Self.writeCost(size: 8_000, count: 300)
        #expect(large < small * 4, "300 writes took \(small) next to 500 documents, \(large) next to 8,000")
    }

    @Test("a replica that catches up from two peers in turn receives little more than it missed")
    func rejoinSequential() {
        let outcome = Self.rejoin(missed: 100, restart: true, sequential: true)
        #expect(outcome.equal)
        #expect(outcome.received >= 100 && outcome.received <= 110, "received \(outcome.received) for 100 missed")
    }

    @Test(
        "a rejoining replica that missed 1% of 10,000 documents receives at most 1.1x of them from two peers",
        arguments: [true, false])
    func rejoinFromTwoPeers(restart: Bool) {
        let outcome = Self.rejoin(missed: 100, restart: restart, sequential: false)
        #expect(outcome.equal)
        #expect(outcome.received >= 100 && outcome.received <= 110, "received \(outcome.received) for 100 missed")
    }

    /// Makes a `one` write ("mine") on n1 that no peer receives; returns the session that saw it.
    private static func writeOnlyOnN1(_ net: inout ReplicaTestNetwork) throws -> SessionToken {
        net.perform(.add(collection: "c", id: "mine", body: Self.body), .one, id: 2, at: "n1")
        net.drop { _ in true }
        let receipt = try #require(try net.completed[2]?.get())
        var session = SessionToken()
        session.observe(receipt.stamp)
        return session
    }

    @Test("a read with a session token on another node waits for a pull from the write's origin")
    func sessionRead() throws {
        var net = Self.cluster()
        let session = try Self.writeOnlyOnN1(&net)
        #expect(net.engines["n2"]!.store.document("mine", in: "c") == nil)

        net.read(id: 9, .local, session: session, at: "n2", timeout: 1_000)
        #expect(net.readable[9] == nil, "n2 does not hold the session's write yet")
        #expect(net.requests.contains { $0.from == "n2" && $0.to == "n1" }, "it pulls from the origin")
        // Another peer's answer does not settle it.
        while net.deliverRequest(where: { $0.to == "n3" }) || net.deliverAnswer(where: { $0.from == "n3" }) {}
        #expect(net.readable[9] == nil, "n3 does not hold the write either")
        net.deliverRequest { $0.to == "n1" }
        #expect(net.readable[9] == nil)
        net.deliverAnswer { $0.from == "n1" }
        #expect((try? net.readable[9]?.get()) != nil)
        #expect(net.engines["n2"]!.store.document("mine", in: "c") == Self.body)

        // Without a session a local read runs at once.
        net.read(id: 10, .local, session: nil, at: "n3", timeout: 1)
        #expect((try? net.readable[10]?.get()) != nil)
    }

    /// Found by the replication simulation (seed 408 under some hash orders): a lost pull used to drop
    /// the origin from the peers asked, and the read then ran as if every peer had answered.
    @Test("a session read whose pull to the write's origin is lost fails with unavailable, not without the write")
    func sessionReadWithLostPull() throws {
        var net = Self.cluster()
        let session = try Self.writeOnlyOnN1(&net)

        net.read(id: 9, .local, session: session, at: "n2", timeout: 1_000)
        while net.deliverRequest(where: { $0.to == "n3" }) || net.deliverAnswer(where: { $0.from == "n3" }) {}
        #expect(net.readable[9] == nil, "n3 answered without the write: the read still waits for n1")
        net.drop { $0.from == "n2" && $0.to == "n1" }
        let result = try #require(net.readable[9], "settled once every peer asked answered or failed")
        guard case .failure(let error) = result else {
            Issue.record("n2 answered the session read without the session's write")
            return
        }
        #expect(error.kind == .unavailable)
        #expect(net.engines["n2"]!.store.document("mine", in: "c") == nil)
    }

    /// Read-your-writes: whatever a replica answers, a session read that succeeds shows the session's
    /// writes. Here the reader cannot reach the origin (nor, in the second case, anyone).
    @Test(
        "a session read that cannot reach the write's origin does not succeed without the write",
        arguments: [
            ["n2"], [],
        ])
    func sessionReadCutOffFromOrigin(alive: [String]) throws {
        var net = Self.cluster()
        net.perform(.add(collection: "c", id: "mine", body: Self.body), .majority, id: 2, at: "n1")
        net.deliverRequest { $0.to == "n2" }
        net.deliverAnswer()
        net.drop { _ in true }
        let receipt = try #require(try net.completed[2]?.get(), "acknowledged by n1 and n2")
        var session = SessionToken()
        session.observe(receipt.stamp)
        net.setAlive(Set(alive), at: "n3")
        net.drop { $0.from == "n3" && $0.to == "n1" }
        net.read(id: 9, .local, session: session, at: "n3", timeout: 1_000)
        net.deliverAll()
        net.now += 1_000
        net.tick("n3")
        net.drop { _ in true }
        let result = try #require(net.readable[9])
        if case .success = result {
            #expect(
                net.readStores[9]?.document("mine", in: "c") == Self.body,
                "n3 answered the session read without the session's \(receipt.stamp) write")
        }
    }

    @Test("tombstones are purged only after every known peer pulled past them and the grace elapsed")
    func tombstonePurge() {
        var net = Self.cluster(settings: ReplicaSettings(tombstoneGrace: 5_000))
        net.perform(.add(collection: "c", id: "old", body: Self.body), id: 2, at: "n1")
        net.perform(.delete(collection: "c", ids: ["old"]), id: 3, at: "n1")
        net.deliverAll()
        #expect(net.engines["n1"]!.tombstoneCount == 1)
        let deleted = net.now

        // Grace elapsed, but no peer has confirmed.
        net.now = deleted + 6_000
        net.tick("n1")
        net.requests.removeAll()
        #expect(net.engines["n1"]!.tombstoneCount == 1)
        // n2 pulls past it (the second pull's watermark confirms the first's).
        net.pull("n2", from: "n1")
        net.pull("n2", from: "n1")
        net.now += 1_000
        net.tick("n1")
        net.requests.removeAll()
        #expect(net.engines["n1"]!.tombstoneCount == 1, "n3 has not confirmed")

        // A second tombstone, confirmed by everyone at once but inside its grace.
        net.perform(.add(collection: "c", id: "young", body: Self.body), id: 4, at: "n1")
        net.perform(.delete(collection: "c", ids: ["young"]), id: 5, at: "n1")
        net.deliverAll()
        let young = net.now
        for peer in ["n2", "n3"] {
            net.pull(peer, from: "n1")
            net.pull(peer, from: "n1")
        }
        net.now += 1_000
        net.tick("n1")
        net.requests.removeAll()
        #expect(net.engines["n1"]!.tombstoneCount == 1, "`old` purged, `young` still in its grace")
        #expect(net.engines["n1"]!.store.collections["c"]?.documents["old"] == nil)
        #expect(net.engines["n1"]!.store.collections["c"]?.documents["young"] != nil)
        net.now = young + 5_000
        net.tick("n1")
        #expect(net.engines["n1"]!.tombstoneCount == 0)
        #expect(net.engines["n1"]!.store.collections["c"]?.documents["young"] == nil)
    }

    @Test("a conditional update on the minority side fails with unavailable, at once or at its deadline")
    func conditionalOnMinority() throws {
        let nodes = ["n1", "n2", "n3", "n4", "n5"]
        var (net, increment) = try Self.counterCluster(nodes)

        // Membership already knows n1 and n2 are cut off.
        net.setAlive(["n2"], at: "n1")
        net.perform(increment, id: 3, at: "n1")
        #expect(Self.isUnavailable(net.completed[3]))

        // Membership does not know yet: only n2 answers; the round waits for its deadline.
        net.setAlive(["n2", "n3", "n4", "n5"], at: "n1")
        let start = net.now
        net.perform(increment, id: 4, at: "n1", timeout: 2_000)
        for _ in 0..<100 {
            net.drop { $0.to != "n2" && $0.from != "n2" }
            net.deliverAll()
            net.now += 20
            if net.now >= start + 2_000 { break }
            net.tick("n1")
            #expect(net.completed[4] == nil)
        }
        net.now = start + 2_000
        net.tick("n1")
        #expect(Self.isUnavailable(net.completed[4]))
        for node in nodes { #expect(net.engines[node]!.store.document("counter", in: "c") == ["n": .number(0)]) }

        // With the majority reachable again, the increment goes through.
        net.requests.removeAll()
        net.perform(increment, id: 5, at: "n1")
        net.deliverAll()
        let receipt = try #require(try net.completed[5]?.get())
        #expect(receipt.document == ["n": .number(1)])
    }

    @Test(
        "replicas restarted without their data vote in compare-and-set rounds only once they pulled from every other, so none decides again what their former selves committed",
        arguments: [3, 5])
    func amnesiacAcceptorsWaitForPulls(nodeCount: Int) throws {
        let nodes = (1...nodeCount).map { "n\($0)" }
        let quorum = nodeCount / 2 + 1
        // A majority commits an increment; then all of it but one member restart empty (one, of 3;
        // two, of 5), and that one is cut off. The rest form a majority whose states lack it.
        let committers = Array(nodes.prefix(quorum))
        let wiped = Array(committers.dropLast())
        let holder = committers.last!
        let coordinator = nodes.last!
        var (net, increment) = try Self.counterCluster(nodes)
        /// Delivers everything, but nothing to or from `cut`.
        func deliverAll(isolating cut: Set<String>) {
            for _ in 0..<10_000 {
                net.drop { cut.contains($0.to) || cut.contains($0.from) }
                net.answers.removeAll { cut.contains($0.from) || cut.contains($0.to) }
                if net.deliverAnswer() || net.deliverRequest() { continue }
                return
            }
        }
        net.perform(increment, id: 3, at: committers[0])
        deliverAll(isolating: Set(nodes).subtracting(committers))
        #expect(try net.completed[3]?.get().document == ["n": .number(1)])
        #expect(net.engines[coordinator]!.store.document("counter", in: "c") == ["n": .number(0)])

        for node in wiped { net.start(node) }
        let rest = Set(nodes).subtracting([holder])
        for node in rest { net.setAlive(rest.subtracting([node]), at: node) }
        deliverAll(isolating: [holder])
        for node in wiped { #expect(net.engines[node]!.hasSynced) }
        // The rest are a majority, but their states hide the committed increment: deciding on them
        // would write n = 1 a second time. The restarted replicas refuse to vote, so the round cannot.
        let start = net.now
        net.perform(increment, id: 4, at: coordinator, timeout: 1_000)
        for _ in 0..<100 where net.now < start + 1_000 {
            deliverAll(isolating: [holder])
            net.now += 20
            net.tick(coordinator)
        }
        net.now = start + 1_000
        net.tick(coordinator)
        #expect(Self.isUnavailable(net.completed[4]), "\(String(describing: net.completed[4]))")

        // Once they pulled from the holder too, they vote again, and the next increment builds on the first.
        net.connectAll()
        net.deliverAll()
        net.perform(increment, id: 5, at: coordinator)
        net.deliverAll()
        #expect(try net.completed[5]?.get().document == ["n": .number(2)])
    }

    @Test("a push delivered twice, and a restart from the log, change nothing")
    func duplicatesAndRestart() {
        var net = Self.cluster()
        net.perform(.add(collection: "c", id: "a", body: Self.body), .majority, id: 2, at: "n1")
        let push = net.requests.first { $0.to == "n2" }!
        net.deliverAll()
        let store = net.engines["n2"]!.store
        let logged = net.logs["n2"]!.count
        let (response, actions) = net.engines["n2"]!.handle(push.request, from: "n1", now: net.now)
        #expect(response == .merged)
        #expect(actions.isEmpty, "nothing new to persist")
        #expect(net.engines["n2"]!.store == store)
        #expect(net.logs["n2"]!.count == logged)
        net.start("n2", fromLog: true)
        #expect(net.engines["n2"]!.store == store)
        #expect(net.engines["n2"]!.changeSequence >= 2)
    }

    // MARK: Bugs found by the simulation

    /// `absorb` adopts `reply.upTo` even when a digest answer was cut short, so the follow-up pull asks
    /// for changes after the responder's head and the rest of the digest delta never comes; the next
    /// complete answer then passes on coverage that hides those documents for good.
    @Test(
        "a digest pull cut at the size limit goes on until the requester holds everything")
    func truncatedDigestAnswer() {
        var net = Self.cluster(["n1", "n2"], settings: ReplicaSettings(maxChangesPerMessage: 3))
        net.setAlive([], at: "n1")
        net.setAlive([], at: "n2")
        for index in 0..<40 {
            net.perform(.add(collection: "c", id: "d\(index)", body: Self.body), id: 10 + UInt64(index), at: "n1")
        }
        #expect(net.requests.isEmpty)
        // n2 restarts empty: it knows no watermark of n1, so it pulls with digests.
        net.start("n2")
        net.setAlive(["n1"], at: "n2")
        net.deliverAll()
        #expect(net.documents("c", on: "n2").count == 40, "n2 holds \(net.documents("c", on: "n2").count) of 40")
        // Later pulls do not repair it either.
        for _ in 0..<3 { net.pull("n2", from: "n1") }
        #expect(net.documents("c", on: "n2").count == 40, "n2 holds \(net.documents("c", on: "n2").count) of 40")
    }

    /// `restore` marks a document as a tombstone whenever a log entry shows it deleted, and never unmarks
    /// it when a later entry shows it written again; `purgeTombstones` then purges the live document.
    @Test(
        "a document deleted and written again survives a restart from the log and the tombstone purge")
    func restoredRevivalIsNotPurged() {
        var net = ReplicaTestNetwork(nodes: ["n1"], settings: ReplicaSettings(tombstoneGrace: 1_000))
        net.connectAll()
        net.perform(.createCollection("c"), id: 1, at: "n1")
        net.perform(.add(collection: "c", id: "d", body: Self.body), id: 2, at: "n1")
        net.perform(.delete(collection: "c", ids: ["d"]), id: 3, at: "n1")
        net.perform(.add(collection: "c", id: "d", body: ["x": .number(2)]), id: 4, at: "n1")
        #expect(net.engines["n1"]!.tombstoneCount == 0)
        net.start("n1", fromLog: true)
        #expect(net.engines["n1"]!.store.document("d", in: "c") == ["x": .number(2)])
        net.now += 5_000
        net.tick("n1")
        #expect(net.engines["n1"]!.store.document("d", in: "c") == ["x": .number(2)], "the live document was purged")
    }

    /// A conditional update's proposal is stamped by its coordinator's clock before it is decided. A
    /// replica that pulls from the coordinator in between adopts coverage past that stamp; when another
    /// coordinator later recovers and commits the proposal, anti-entropy leaves it out for that replica
    /// ("made only of writes it covers"), so the replica never converges.
    @Test(
        "a conditional update committed by a recovering coordinator reaches every replica")
    func recoveredProposalReachesEveryone() throws {
        var net = Self.cluster()
        net.perform(.add(collection: "c", id: "counter", body: ["n": .number(0)]), .all, id: 2, at: "n1")
        net.deliverAll()
        func increment(below limit: Double) throws -> DatabaseOperation {
            .conditional(
                collection: "c", id: "counter",
                condition: try DocumentFilter(.object(["n": .object(["$lt": .number(limit)])])),
                update: DocumentUpdate(increment: ["n": 1]))
        }
        // n1 proposes n = 1; only n2 accepts it, and n1 never hears so.
        net.perform(try increment(below: 5), id: 3, at: "n1")
        net.drop { $0.to == "n3" }
        net.deliverRequest { $0.to == "n2" }
        net.deliverAnswer()
        net.drop { $0.to == "n3" }
        net.deliverRequest { $0.to == "n2" }
        net.drop { _ in true }
        net.answers.removeAll()
        #expect(net.completed[3] == nil)
        // n3 pulls from n1 and adopts n1's coverage.
        net.pull("n3", from: "n1")
        // n2 recovers the accepted proposal (its own update then fails its condition) and commits it;
        // the commit to n3 is lost.
        net.perform(try increment(below: 1), id: 4, at: "n2")
        for _ in 0..<20 {
            net.drop { $0.to == "n3" && $0.from == "n2" }
            if !net.deliverRequest(where: { $0.from == "n2" }) && !net.deliverAnswer(where: { $0.to == "n2" }) { break }
        }
        #expect(net.engines["n2"]!.store.document("counter", in: "c") == ["n": .number(1)])
        if case .failure(let error)? = net.completed[4] { #expect(error.kind == .conditionFailed) }
        // Anti-entropy, every way round.
        net.requests.removeAll()
        for _ in 0..<2 {
            for node in net.nodes { for peer in net.nodes where peer != node { net.pull(node, from: peer) } }
        }
        for node in net.nodes {
            #expect(net.engines[node]!.store.document("counter", in: "c") == ["n": .number(1)], "\(node)")
        }
    }

    /// A pull answered "not understood" (the peer restarted, so the requester's watermark names an old
    /// epoch) counts as a failed peer for the reads riding on it: the session read drops the origin,
    /// settles for the other peers' answers and runs without the session's write, although the origin
    /// is up, reachable, and pulled again at once (without the read).
    @Test(
        "a session read still waits for the write's origin when the origin restarted since the last pull")
    func sessionReadAfterOriginRestart() throws {
        var net = Self.cluster()
        let session = try Self.writeOnlyOnN1(&net)
        // n1 restarts from its log (a new epoch); n2 still names n1's old epoch in its pulls.
        net.start("n1", fromLog: true)
        net.setAlive(["n2", "n3"], at: "n1")
        net.requests.removeAll()
        #expect(net.engines["n1"]!.store.document("mine", in: "c") == Self.body)
        net.read(id: 9, .local, session: session, at: "n2", timeout: 1_000)
        net.deliverAll()
        let result = try #require(net.readable[9])
        #expect((try? result.get()) != nil, "the origin is reachable")
        if case .success = result {
            #expect(
                net.readStores[9]?.document("mine", in: "c") == Self.body,
                "n2 answered the session read without the session's write")
        }
    }

    @Test(
        "a drop frees the collection's documents and log entries on every replica; neither a late push nor a restart from the log brings them back"
    )
    func dropFreesDocuments() {
        var net = Self.cluster()
        for index in 0..<20 {
            net.perform(.add(collection: "c", id: "d\(index)", body: Self.body), .one, id: UInt64(10 + index), at: "n1")
            net.now += 1
        }
        // n2 writes one more whose push to n3 is held back until after the drop.
        net.perform(.add(collection: "c", id: "late", body: Self.body), .one, id: 40, at: "n2")
        let held = net.requests.filter { $0.from == "n2" && $0.to == "n3" }
        net.requests.removeAll { $0.from == "n2" && $0.to == "n3" }
        net.deliverAll()
        #expect(net.documents("c", on: "n3").count == 20)
        net.now += 1
        net.perform(.dropCollection("c"), .all, id: 50, at: "n1")
        net.deliverAll()
        #expect((try? net.completed[50]?.get()) != nil)
        net.requests += held
        net.deliverAll()
        for node in net.nodes {
            let engine = net.engines[node]!
            #expect(engine.store.collections["c"]?.documents.isEmpty == true, "\(node) keeps dropped documents")
            #expect(engine.log.ids(in: "c").isEmpty, "\(node) keeps log entries of dropped documents")
            #expect(engine.tombstoneCount == 0)
            // The freed documents wait for the shell, which frees them off its event loop.
            var released = engine
            let taken = released.takeReleased()
            #expect(taken.documentCount >= 20, "\(node) did not hand over what the drop freed")
            #expect(released.takeReleased().isEmpty, "taking twice hands the storage over twice")
            var ticked = engine
            _ = ticked.tick(now: net.now)
            #expect(ticked.takeReleased().isEmpty, "a tick keeps storage the shell did not take")
        }
        // Restarted from its log (which still holds the adds before the drop), n3 holds none of them.
        net.start("n3", fromLog: true)
        #expect(net.engines["n3"]!.store.collections["c"]?.documents.isEmpty == true)
        #expect(net.engines["n3"]!.log.ids(in: "c").isEmpty)
        // The collection comes back empty, and takes new documents.
        net.connectAll()
        net.deliverAll()
        net.now += 1
        net.perform(.createCollection("c"), .all, id: 60, at: "n2")
        net.perform(.add(collection: "c", id: "new", body: Self.body), .all, id: 61, at: "n2")
        net.deliverAll()
        for node in net.nodes { #expect(net.documents("c", on: node) == ["new"]) }
    }

    @Test(
        "a conditional update tests its condition without the fields a drop forgot, even when a replica that missed the drop answers with them"
    )
    func conditionIgnoresDroppedFields() throws {
        var net = Self.cluster()
        net.perform(.add(collection: "c", id: "x", body: ["a": .number(1)]), .all, id: 2, at: "n1")
        net.deliverAll()
        // n3 misses the drop and the re-creation.
        for (id, operation) in [(UInt64(3), DatabaseOperation.dropCollection("c")), (4, .createCollection("c"))] {
            net.now += 10
            net.perform(operation, .majority, id: id, at: "n1")
            net.deliverRequest { $0.to == "n2" }
            net.deliverAnswer { $0.from == "n2" }
            #expect((try? net.completed[id]?.get()) != nil)
            net.drop { $0.to == "n3" }
        }
        // n3 then writes a field of x; n1 and n2 keep only that field.
        net.now += 10
        net.perform(.update(collection: "c", id: "x", DocumentUpdate(set: ["b": .number(2)])), .one, id: 5, at: "n3")
        while net.deliverRequest(where: { $0.from == "n3" }) || net.deliverAnswer(where: { $0.to == "n3" }) {}
        #expect(net.engines["n1"]!.store.document("x", in: "c") == ["b": .number(2)])
        #expect(net.engines["n3"]!.store.document("x", in: "c") == ["a": .number(1), "b": .number(2)])
        // A round whose majority is n1 and n3: n3's copy still holds the forgotten field `a`.
        net.perform(
            .conditional(
                collection: "c", id: "x", condition: try DocumentFilter(.object(["a": .number(1)])),
                update: DocumentUpdate(set: ["c": .number(3)])),
            id: 6, at: "n1")
        net.drop { $0.to == "n2" }
        net.deliverAll()
        guard case .failure(let error)? = net.completed[6] else {
            Issue.record("the condition held on a forgotten field: \(String(describing: net.completed[6]))")
            return
        }
        #expect(error.kind == .conditionFailed)
        #expect(net.engines["n1"]!.store.document("x", in: "c") == ["b": .number(2)])
    }
}
