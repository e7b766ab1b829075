import Distri
import DistriCore
import DistriIdentity
import DistriPeer
import DistriTestSupport
import Testing

@Suite("RegisterPeer and PublishImage on real nodes")
struct SignedServicesTests {
    static func record(
        _ name: String, _ keys: SigningKeyPair, now: UInt64, addresses: [String] = ["127.0.0.1:1"]
    ) throws -> PeerRecord {
        try PeerRecord.signed(
            name: name, addresses: addresses, signing: keys, agreementKey: try AgreementKeyPair.generate().publicKey,
            now: now)
    }

    @Test func registerAcceptsSignedAndRefusesForgedReplayedAndDirectWrites() async throws {
        try await withPeerCloud(nodes: 3) { _, addresses in
            try await withClient(addresses) { client in
                let cloud = PeerCloud(client: client)
                let alice = try SigningKeyPair.generate()
                let mallory = try SigningKeyPair.generate()
                let now = wallClockMillis()
                try await cloud.register(try Self.record("alice", alice, now: now))

                // Forged: claims alice's key, signed by mallory's.
                var forged = try Self.record("alice", alice, now: now + 10)
                forged.signature = try mallory.sign(forged.signedBytes)
                #expect(await remoteCode { try await cloud.register(forged) } == .unauthorized)
                // Taking alice's name with another key: trust on first use refuses it.
                #expect(
                    await remoteCode { try await cloud.register(try Self.record("alice", mallory, now: now + 20)) }
                        == .unauthorized)
                // Replays: the same record again, and an older one.
                let older = try Self.record("alice", alice, now: now - 1000)
                #expect(
                    await remoteCode { try await cloud.register(try Self.record("alice", alice, now: now)) }
                        == .conflict)
                #expect(await remoteCode { try await cloud.register(older) } == .conflict)
                // A newer record replaces it.
                try await cloud.register(try Self.record("alice", alice, now: now + 30, addresses: ["127.0.0.1:2"]))

                // Direct writes to users are refused; reads stay open.
                let db = DocumentDatabase(client: client)
                #expect(
                    await remoteCode { try await db.update("alice", in: "users", set: ["addresses": ["x:1"]]) }
                        == .unauthorized)
                #expect(await remoteCode { try await db.add(["_id": "bob"], to: "users") } == .unauthorized)
                #expect(await remoteCode { try await db.delete("alice", from: "users") } == .unauthorized)
                #expect(await remoteCode { try await db.dropCollection("users") } == .unauthorized)

                // Every node holds the newest record, signed.
                for address in addresses {
                    try await withClient([address]) { one in
                        // A refresh interval longer than the test can take on a loaded machine: online.
                        let peers = try await PeerCloud(client: one).peers(refreshMillis: 600_000)
                        #expect(peers.map(\.name) == ["alice"])
                        #expect(peers.first?.addresses == ["127.0.0.1:2"])
                        #expect(peers.first?.status == .online)
                    }
                }
            }
        }
    }

    @Test("a conditional update completes on a one-node cloud (a lone replica is its own majority)")
    func loneReplicaConditionalUpdate() async throws {
        try await withPeerCloud(nodes: 1) { _, addresses in
            try await withClient(addresses) { client in
                let db = DocumentDatabase(client: client)
                try await db.createCollection("limits")
                try await db.add(["_id": "a", "n": 1], to: "limits")
                let written = try await db.update("a", in: "limits", increment: ["n": 1], if: ["n": ["$lt": 2]])
                #expect(written?["n"] == .number(2))
                do {
                    let again = try await db.update("a", in: "limits", increment: ["n": 1], if: ["n": ["$lt": 2]])
                    Issue.record("the condition n < 2 held for \(String(describing: again))")
                } catch let error as ClientError {
                    #expect(error.remoteCode == .conflict, "\(error)")
                }
            }
        }
    }

    @Test func publishNeedsTheOwnersSignature() async throws {
        try await withPeerCloud(nodes: 1) { _, addresses in
            try await withClient(addresses) { client in
                let cloud = PeerCloud(client: client)
                let alice = try SigningKeyPair.generate()
                let bob = try SigningKeyPair.generate()
                let now = wallClockMillis()
                let entry = CatalogEntry(owner: "alice", name: "cat", bytes: 100, width: 4, height: 5, sequence: now)
                // Not registered yet.
                #expect(await remoteCode { try await cloud.publish(try entry.signed(by: alice)) } == .unauthorized)
                try await cloud.register(try Self.record("alice", alice, now: now))
                try await cloud.register(try Self.record("bob", bob, now: now))
                // Signed by bob, owned by alice.
                #expect(await remoteCode { try await cloud.publish(try entry.signed(by: bob)) } == .unauthorized)
                try await cloud.publish(try entry.signed(by: alice))
                #expect(await remoteCode { try await cloud.publish(try entry.signed(by: alice)) } == .conflict)
                var newer = entry
                newer.sequence += 1
                newer.bytes = 200
                try await cloud.publish(try newer.signed(by: alice))
                let documents = try await cloud.documents(in: "catalog")
                #expect(documents.map(\.id) == ["alice/cat"])
                #expect(documents.first?.body["bytes"] == .number(200))
                #expect(documents.first?.body["key"] == nil)

                #expect(try await client.send([1], service: BuiltinServices.echo) == [1])
            }
        }
    }

    @Test("catalog is written only by PublishImage: every plain DB write is refused and changes nothing")
    func catalogRefusesPlainWrites() async throws {
        try await withPeerCloud(nodes: 1) { _, addresses in
            try await withClient(addresses) { client in
                let cloud = PeerCloud(client: client)
                let alice = try SigningKeyPair.generate()
                let mallory = try SigningKeyPair.generate()
                let now = wallClockMillis()
                try await cloud.register(try Self.record("alice", alice, now: now))
                let entry = CatalogEntry(owner: "alice", name: "cat", bytes: 100, width: 4, height: 5, sequence: now)
                try await cloud.publish(try entry.signed(by: alice))
                let before = try await cloud.documents(in: "catalog")
                #expect(before.map(\.id) == ["alice/cat"])

                let db = DocumentDatabase(client: client)
                var forged = try entry.signed(by: mallory).document
                forged["_id"] = .string("alice/dog")
                forged["name"] = .string("dog")
                let refusals: [(String, () async throws -> Void)] = [
                    ("add a forged entry", { _ = try await db.add(forged, to: "catalog") }),
                    ("add without an id", { _ = try await db.add(["x": 1], to: "catalog") }),
                    ("update alice's entry", { try await db.update("alice/cat", in: "catalog", set: ["bytes": 1]) }),
                    (
                        "replace alice's entry",
                        { try await db.update("alice/cat", in: "catalog", set: ["owner": "mallory"], replace: true) }
                    ),
                    (
                        "conditionally update alice's entry",
                        {
                            try await db.update(
                                "alice/cat", in: "catalog", set: ["bytes": 1], if: ["owner": "alice"])
                        }
                    ),
                    ("delete alice's entry", { try await db.delete("alice/cat", from: "catalog") }),
                    ("delete by filter", { _ = try await db.delete(matching: ["owner": "alice"], from: "catalog") }),
                    ("delete everything", { _ = try await db.delete(matching: [:], from: "catalog") }),
                    ("create the collection", { try await db.createCollection("catalog") }),
                    ("drop the collection", { try await db.dropCollection("catalog") }),
                    // Options before the collection: it is still the first positional parameter.
                    (
                        "add with options first",
                        {
                            _ = try await client.send(
                                Array(#"{"x":1}"#.utf8), service: "AddDocument", params: ["consistency=one", "catalog"])
                        }
                    ),
                ]
                for (what, write) in refusals {
                    let code = await remoteCode(write)
                    #expect(code == .unauthorized, "\(what): \(String(describing: code))")
                }
                do {
                    _ = try await db.add(forged, to: "catalog")
                } catch let error as ClientError {
                    #expect("\(error)".contains("PublishImage"), "the refusal names the way in: \(error)")
                }
                // Nothing changed: the collection, alice's entry and its signature are as published.
                let after = try await cloud.documents(in: "catalog")
                #expect(after.map(\.id) == before.map(\.id))
                #expect(after.first?.body == before.first?.body)
                #expect(try await cloud.catalog().map { $0.entry != nil } == [true])
                #expect(try await db.listCollections().contains("catalog"))
                // PublishImage still writes it.
                var newer = entry
                newer.sequence += 1
                try await cloud.publish(try newer.signed(by: alice))
                #expect(try await cloud.documents(in: "catalog").first?.body["sequence"] == .number(Double(now + 1)))
            }
        }
    }

    @Test func listMarksOfflineAndUnverified() async throws {
        try await withPeerCloud(nodes: 1) { _, addresses in
            try await withClient(addresses) { client in
                let cloud = PeerCloud(client: client)
                let now = wallClockMillis()
                try await cloud.register(try Self.record("alice", try SigningKeyPair.generate(), now: now))
                try await cloud.register(try Self.record("bob", try SigningKeyPair.generate(), now: now - 60_000))
                let peers = try await cloud.peers(now: now + 100, refreshMillis: 5000)
                #expect(peers.map(\.name) == ["alice", "bob"])
                #expect(peers.map(\.status) == [.online, .offline])
                // Fifteen seconds later (three intervals of 5 s) alice is still online; then offline.
                #expect(try await cloud.peers(now: now + 15_000, refreshMillis: 5000).first?.status == .online)
                #expect(try await cloud.peers(now: now + 15_001, refreshMillis: 5000).first?.status == .offline)
            }
        }
        // A record whose signature does not verify is marked, not trusted.
        let keys = try SigningKeyPair.generate()
        var document = try Self.record("carol", keys, now: 5).document
        document["addresses"] = .array([.string("6.6.6.6:1")])
        let listing = PeerListing(id: "carol", document: document, now: 5, refreshMillis: 5000)
        #expect(listing.status == .unverified)
        #expect(listing.problem != nil)
    }
}
