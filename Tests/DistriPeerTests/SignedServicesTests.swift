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

                // A plain write to the catalog (allowed: the seed's DB test uses that name) is not
                // trusted by readers.
                let db = DocumentDatabase(client: client)
                var forged = try newer.signed(by: bob).document
                forged["_id"] = .string("alice/dog")
                forged["name"] = .string("dog")
                try await db.add(forged, to: "catalog")
                try await db.add(["_id": "junk", "x": 1], to: "catalog")
                let listed = try await cloud.catalog()
                #expect(listed.map(\.id) == ["alice/cat", "alice/dog", "junk"])
                #expect(listed.map { $0.entry != nil } == [true, false, false])

                // A planted catalog document whose sequence no integer holds does not take the node
                // down: publishing over it is refused, and the node keeps answering.
                try await db.add(["_id": "alice/bird", "owner": "alice", "sequence": .number(1e300)], to: "catalog")
                let bird = CatalogEntry(owner: "alice", name: "bird", bytes: 1, width: 1, height: 1, sequence: now)
                #expect(await remoteCode { try await cloud.publish(try bird.signed(by: alice)) } == .conflict)
                #expect(try await client.send([1], service: BuiltinServices.echo) == [1])
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
