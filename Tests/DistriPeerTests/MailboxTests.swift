import Distri
import DistriCore
import DistriIdentity
import DistriPeer
import DistriTestSupport
import Foundation
import Synchronization
import Testing

/// A deposit cut on purpose.
private struct Cut: Error {}

/// A 3-node cloud with mailbox `limits`, alice, bob and carol registered (their daemons stopped:
/// everyone is offline), and alice's sample encrypted.
private struct MailboxStory {
    var nodes: [CloudNode]
    var addresses: [NodeAddress]
    var cloud: PeerCloud
    var peers: ViewGrantTests.Peers
    var alice: PeerSharing { PeerSharing(identity: peers.alice, cloud: cloud) }
    var bob: PeerSharing { PeerSharing(identity: peers.bob, cloud: cloud) }
    var carol: PeerSharing { PeerSharing(identity: peers.carol, cloud: cloud) }

    /// Alice's sealed sample, as she sends it.
    func sealed() throws -> [UInt8] { try SecureFiles.read(peers.alice.home.imageFile("rgb8")) }

    /// An "image" of `count` random bytes named `name` in `owner`'s home, with a real image key (a
    /// copy of alice's): enough to grant and deposit it; the mailbox checks only the digest.
    func blob(_ name: String, of owner: PeerIdentity, bytes count: Int) throws -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
        try SecureFiles.makeDirectory(owner.home.imagesDirectory)
        try SecureFiles.makeDirectory(owner.home.keysDirectory)
        try SecureFiles.write(bytes, to: owner.home.imageFile(name))
        try SecureFiles.write(
            try SecureFiles.read(peers.alice.home.keyFile("rgb8"), private: true), to: owner.home.keyFile(name))
        return bytes
    }

    /// The mailbox figures of every node still running.
    func mailboxStats() -> [MailboxStats] { nodes.compactMap { $0.stats().mailbox } }
}

extension MailboxLimits {
    /// The defaults but for 1 KiB chunks (the stories' files are small), changed by `change`.
    fileprivate static func smallChunks(_ change: (inout MailboxLimits) -> Void) -> MailboxLimits {
        var limits = MailboxLimits()
        limits.minChunkBytes = 1024
        change(&limits)
        return limits
    }
}

/// Runs `body` with a ``MailboxStory`` on nodes started with `limits`.
private func withMailboxStory(
    limits: MailboxLimits = .smallChunks { _ in }, _ body: (MailboxStory) async throws -> Void
) async throws {
    let deposit = try AgreementKeyPair.generate()
    try await withTemporaryDirectory { directory in
        try await withPeerCloud(nodes: 3, depositKey: deposit.privateKey, configure: { $0.mailbox = limits }) {
            nodes, addresses in
            try await withClient(addresses) { client in
                let cloud = PeerCloud(client: client)
                let peers = try await ViewGrantTests.peers(in: directory, cloud: cloud)
                await peers.stop()
                try await body(MailboxStory(nodes: nodes, addresses: addresses, cloud: cloud, peers: peers))
            }
        }
    }
}

@Suite("The mailbox: deposits for offline recipients, collected later", .serialized)
struct MailboxTests {
    @Test(
        "a deposit is collected byte-exact with its sender gone, viewed, and removed; the DB services cannot read or write it"
    )
    func depositCollectRemove() async throws {
        try await withMailboxStory { story in
            let png = try story.sealed()
            let grant = try await story.alice.grant(image: "rgb8", to: "bob", views: 2)
            let seen = Mutex<[Int]>([])
            try await story.alice.depositInMailbox(png, grant: grant) { held, _ in seen.withLock { $0.append(held) } }
            #expect(seen.withLock { $0 } == [0, png.count])
            // Depositing again changes nothing: the entry is complete.
            try await story.alice.depositInMailbox(png, grant: grant, progress: nil)
            #expect(
                await eventually {
                    story.mailboxStats().allSatisfy { $0.entries == 1 && $0.bytes == UInt64(png.count) }
                })

            // The metadata is for bob only: the plain DB services neither read nor write `mailbox`.
            let database = story.cloud.database
            let reading = await remoteCode { _ = try await database.read("mailbox") }
            #expect(reading == .unauthorized)
            #expect(await remoteCode { _ = try await database.count("mailbox") } == .unauthorized)
            #expect(await remoteCode { _ = try await database.add(["x": 1], to: "mailbox") } == .unauthorized)
            #expect(await remoteCode { _ = try await database.delete(matching: [:], from: "mailbox") } == .unauthorized)
            #expect(await remoteCode { try await database.dropCollection("mailbox") } == .unauthorized)
            do {
                _ = try await database.read("mailbox")
            } catch let error as ClientError {
                #expect(error.message.contains("MailboxList"), "\(error.message)")
            }

            // Alice is gone; bob collects from the cloud alone.
            let received = story.peers.bob.home.receivedFile(owner: "alice", image: "rgb8")
            #expect(!SecureFiles.exists(received))
            let outcome = try await story.bob.collectMailbox()
            #expect(outcome.collected == 1 && outcome.failed.isEmpty, "\(outcome.failed)")
            #expect(try SecureFiles.read(received) == png)
            #expect(try await story.bob.view(image: "rgb8", from: "alice").image == story.peers.image)

            // Removed once collected, on every node.
            let proof = try PeerProof.make(
                name: "bob", purpose: .mailbox, signing: story.peers.bob.signing, now: wallClockMillis())
            #expect(try await story.cloud.mailboxList(proof: proof).isEmpty)
            #expect(try await story.bob.collectMailbox() == (0, []))
            #expect(await eventually { story.mailboxStats().allSatisfy { $0.entries == 0 && $0.bytes == 0 } })
            #expect(
                try await story.cloud.mailboxRemove(
                    proof: proof, id: "alice:rgb8:bob:\(Hex.encode(grant.digest).prefix(16))") == false)
        }
    }

    @Test("a cut deposit resumes from what the cloud holds; a chunk out of place only gets the current answer")
    func resumeCutDeposit() async throws {
        try await withMailboxStory { story in
            let png = try story.blob("blob", of: story.peers.alice, bytes: 1_200_000)
            let grant = try await story.alice.grant(image: "blob", to: "bob", views: 1)
            let cut = Mutex<[Int]>([])
            await #expect(throws: Cut.self) {
                try await story.alice.depositInMailbox(png, grant: grant) { held, _ in
                    let calls = cut.withLock {
                        $0.append(held)
                        return $0.count
                    }
                    if calls == 3 { throw Cut() }  // the probe, then two chunks
                }
            }
            let chunk = PeerSharing.mailboxChunkBytes
            #expect(cut.withLock { $0 } == [0, chunk, 2 * chunk])

            // A chunk at another offset than the one held is not kept.
            let stray = try await story.cloud.mailboxPut(
                grant: grant, chunk: Array(png[0..<2048]), offset: 0, total: png.count)
            #expect(stray == DeliverAnswer(have: 2 * chunk, done: false))
            // A total that differs from the entry's is refused.
            #expect(
                await ViewGrantTests.refused("not \(png.count + 1)") {
                    _ = try await story.cloud.mailboxPut(grant: grant, chunk: [], offset: 0, total: png.count + 1)
                })
            // Nothing incomplete is listed.
            let proof = try PeerProof.make(
                name: "bob", purpose: .mailbox, signing: story.peers.bob.signing, now: wallClockMillis())
            #expect(try await story.cloud.mailboxList(proof: proof).isEmpty)

            let resumed = Mutex<[Int]>([])
            try await story.alice.depositInMailbox(png, grant: grant) { held, _ in resumed.withLock { $0.append(held) }
            }
            #expect(resumed.withLock { $0 } == [2 * chunk, png.count])
            #expect(try await story.cloud.mailboxList(proof: proof).map(\.total) == [png.count])

            let outcome = try await story.bob.collectMailbox()
            #expect(outcome.collected == 1 && outcome.failed.isEmpty, "\(outcome.failed)")
            #expect(try SecureFiles.read(story.peers.bob.home.receivedFile(owner: "alice", image: "blob")) == png)
        }
    }

    @Test("quotas refuse with a message that says what is held; a revoked grant's entry is dropped at collection")
    func quotasAndRevocation() async throws {
        let limits = MailboxLimits.smallChunks {
            $0.perRecipientBytes = 96 << 10
            $0.perSenderBytes = 100 << 10
        }
        try await withMailboxStory(limits: limits) { story in
            let toBob = try story.blob("one", of: story.peers.alice, bytes: 40 << 10)
            let grant = try await story.alice.grant(image: "one", to: "bob", views: 1)
            try await story.alice.depositInMailbox(toBob, grant: grant, progress: nil)

            // Carol's 60 KiB do not fit beside alice's 40 KiB in bob's 96 KiB.
            let fromCarol = try story.blob("two", of: story.peers.carol, bytes: 60 << 10)
            let carolsGrant = try await story.carol.grant(image: "two", to: "bob", views: 1)
            do {
                try await story.carol.depositInMailbox(fromCarol, grant: carolsGrant, progress: nil)
                Issue.record("carol's deposit was taken over the quota")
            } catch let error as PeerError {
                #expect(
                    error.message.contains("bob's mailbox is full: 40 KiB held of 96 KiB; 60 KiB more would exceed it"),
                    "\(error.message)")
            }
            // Alice's own share: 40 + 40 KiB fit, 30 KiB more do not.
            let toCarol = try story.blob("three", of: story.peers.alice, bytes: 40 << 10)
            try await story.alice.depositInMailbox(
                toCarol, grant: try await story.alice.grant(image: "three", to: "carol", views: 1), progress: nil)
            let more = try story.blob("four", of: story.peers.alice, bytes: 30 << 10)
            let moreGrant = try await story.alice.grant(image: "four", to: "carol", views: 1)
            #expect(
                await ViewGrantTests.refused(
                    "alice already has 80 KiB waiting in mailboxes, of the 100 KiB one sender may"
                ) {
                    try await story.alice.depositInMailbox(more, grant: moreGrant, progress: nil)
                })
            #expect(story.nodes.map { $0.stats().mailbox?.refusedOverQuota ?? 0 }.reduce(0, +) == 2)

            // Alice revokes bob's views: nothing to deliver, so collecting drops the entry.
            try await story.alice.grant(image: "one", to: "bob", views: 0)
            let outcome = try await story.bob.collectMailbox()
            #expect(outcome.collected == 0 && outcome.failed.count == 1)
            #expect(outcome.failed.first?.contains("dropped") == true, "\(outcome.failed)")
            #expect(!SecureFiles.exists(story.peers.bob.home.receivedFile(owner: "alice", image: "one")))
            let proof = try PeerProof.make(
                name: "bob", purpose: .mailbox, signing: story.peers.bob.signing, now: wallClockMillis())
            #expect(try await story.cloud.mailboxList(proof: proof).isEmpty)
            // A revoked grant deposits nothing.
            #expect(
                await ViewGrantTests.refused("no grant in force") {
                    try await story.alice.depositInMailbox(toBob, grant: grant, progress: nil)
                })
            // Now carol's deposit fits.
            try await story.carol.depositInMailbox(fromCarol, grant: carolsGrant, progress: nil)
        }
    }

    @Test(
        "proofs by another peer's key, out of time or for another purpose are refused; only the recipient fetches or removes"
    )
    func proofsAndStrangers() async throws {
        try await withMailboxStory { story in
            let png = try story.sealed()
            let grant = try await story.alice.grant(image: "rgb8", to: "bob", views: 1)
            try await story.alice.depositInMailbox(png, grant: grant, progress: nil)
            let cloud = story.cloud
            let now = wallClockMillis()
            let bobKey = story.peers.bob.signing
            let forged = try PeerProof.make(
                name: "bob", purpose: .mailbox, signing: story.peers.carol.signing, now: now)
            #expect(await ViewGrantTests.refused("not signed by") { _ = try await cloud.mailboxList(proof: forged) })
            let stale = try PeerProof.make(name: "bob", purpose: .mailbox, signing: bobKey, now: now - 10 * 60_000)
            #expect(await ViewGrantTests.refused("5 minutes") { _ = try await cloud.mailboxList(proof: stale) })
            let future = try PeerProof.make(name: "bob", purpose: .mailbox, signing: bobKey, now: now + 10 * 60_000)
            #expect(await ViewGrantTests.refused("5 minutes") { _ = try await cloud.mailboxList(proof: future) })
            let relay = try PeerProof.make(name: "bob", purpose: .relay, signing: bobKey, now: now)
            #expect(await ViewGrantTests.refused("cannot serve") { _ = try await cloud.mailboxList(proof: relay) })
            let nobody = try PeerProof.make(name: "dave", purpose: .mailbox, signing: bobKey, now: now)
            #expect(
                await ViewGrantTests.refused("not a registered peer") { _ = try await cloud.mailboxList(proof: nobody) }
            )

            let proof = try PeerProof.make(name: "bob", purpose: .mailbox, signing: bobKey, now: now)
            let id = try #require(try await cloud.mailboxList(proof: proof).first?.id)
            #expect(
                await ViewGrantTests.refused("not signed by") {
                    _ = try await cloud.mailboxFetch(proof: forged, id: id, offset: 0)
                })
            #expect(
                await ViewGrantTests.refused("not signed by") { try await cloud.mailboxRemove(proof: forged, id: id) })
            // Carol, with a proof of her own, sees nothing of bob's.
            let carols = try PeerProof.make(
                name: "carol", purpose: .mailbox, signing: story.peers.carol.signing, now: now)
            #expect(try await cloud.mailboxList(proof: carols).isEmpty)
            #expect(
                await ViewGrantTests.refused("no delivery") {
                    _ = try await cloud.mailboxFetch(proof: carols, id: id, offset: 0)
                })
            #expect(
                await ViewGrantTests.refused("only the recipient") {
                    try await cloud.mailboxRemove(proof: carols, id: id)
                })
            // Bad input is refused clearly.
            #expect(
                await ViewGrantTests.refused("no delivery") {
                    _ = try await cloud.mailboxFetch(proof: proof, id: id, offset: png.count)
                })
            let client = cloud.client
            #expect(
                await remoteCode { _ = try await client.send([1, 2, 3], service: MailboxServices.put, params: []) }
                    == .badParams)
            #expect(
                await remoteCode {
                    _ = try await client.send(Array("[]".utf8), service: MailboxServices.list, params: [])
                } == .badParams)
            #expect(
                await remoteCode {
                    _ = try await client.send(Array("{\"proof\":1}".utf8), service: MailboxServices.fetch, params: [])
                } == .badParams)
            #expect(
                await remoteCode {
                    _ = try await client.send(
                        DeliverPayload(grant: grant, chunk: []).encoded(), service: MailboxServices.put,
                        params: ["offset=0", "total=\(Int.max)"])
                } == .badParams)

            // Bob fetches and collects it; the proof's own checks still hold.
            #expect(try await story.bob.collectMailbox() == (1, []))
        }
    }

    @Test("an entry past its expiry is not listed and is swept from every replica")
    func expiry() async throws {
        let limits = MailboxLimits.smallChunks {
            $0.expiryMillis = 2_500
            $0.sweepIntervalMillis = 200
        }
        try await withMailboxStory(limits: limits) { story in
            let png = try story.sealed()
            let grant = try await story.alice.grant(image: "rgb8", to: "bob", views: 1)
            try await story.alice.depositInMailbox(png, grant: grant, progress: nil)
            #expect(await eventually(timeout: .seconds(15)) { story.mailboxStats().allSatisfy { $0.entries == 0 } })
            #expect(story.nodes.allSatisfy { ($0.stats().collections["mailbox"] ?? 0) == 0 })
            let proof = try PeerProof.make(
                name: "bob", purpose: .mailbox, signing: story.peers.bob.signing, now: wallClockMillis())
            #expect(try await story.cloud.mailboxList(proof: proof).isEmpty)
            #expect(try await story.bob.collectMailbox() == (0, []))
        }
    }

    @Test("losing one node of three after the deposit loses nothing: bob collects from the other two")
    func replicaLoss() async throws {
        try await withMailboxStory { story in
            let png = try story.blob("big", of: story.peers.alice, bytes: 700_000)
            let grant = try await story.alice.grant(image: "big", to: "bob", views: 1)
            try await story.alice.depositInMailbox(png, grant: grant, progress: nil)
            await story.nodes[0].shutdown()
            try await withClient(Array(story.addresses[1...])) { client in
                let bob = PeerSharing(identity: story.peers.bob, cloud: PeerCloud(client: client))
                let outcome = try await bob.collectMailbox()
                #expect(outcome.collected == 1 && outcome.failed.isEmpty, "\(outcome.failed)")
            }
            #expect(try SecureFiles.read(story.peers.bob.home.receivedFile(owner: "alice", image: "big")) == png)
        }
    }
}
