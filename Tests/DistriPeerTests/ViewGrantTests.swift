import Distri
import DistriCore
import DistriIdentity
import DistriImaging
import DistriPeer
import DistriTestSupport
import Foundation
import Testing

@Suite("Sending images with views: grants, deliveries and views on real nodes", .serialized)
struct ViewGrantTests {
    /// Peers alice, bob and carol in `directory`, each with a running daemon, and alice's sample image
    /// encrypted.
    struct Peers {
        var alice: PeerIdentity
        var bob: PeerIdentity
        var carol: PeerIdentity
        var daemons: [PeerDaemon]
        var image: [UInt8]

        func stop() async {
            for daemon in daemons { await daemon.endpoint.shutdown() }
        }
    }

    static func peers(in directory: String, cloud: PeerCloud) async throws -> Peers {
        var identities: [PeerIdentity] = []
        var daemons: [PeerDaemon] = []
        for name in ["alice", "bob", "carol"] {
            let identity = try PeerIdentity.create(name: name, home: PeerHome(path: "\(directory)/\(name)"))
            let daemon = PeerDaemon(identity: identity, cloud: cloud)
            try await daemon.start()
            identities.append(identity)
            daemons.append(daemon)
        }
        let image = try samplePNG("rgb8.png")
        _ = try await PeerImages(identity: identities[0], cloud: cloud).encrypt(
            file: image, fileName: "rgb8.png", name: "rgb8")
        return Peers(alice: identities[0], bob: identities[1], carol: identities[2], daemons: daemons, image: image)
    }

    /// Runs `body` with alice, bob and carol (daemons running, alice's sample encrypted) on a 3-node
    /// cloud: the story the request and delivery suites share.
    static func withStory(_ body: (Peers, PeerCloud) async throws -> Void) async throws {
        let deposit = try AgreementKeyPair.generate()
        try await withTemporaryDirectory { directory in
            try await withPeerCloud(nodes: 3, depositKey: deposit.privateKey) { _, addresses in
                try await withClient(addresses) { client in
                    let cloud = PeerCloud(client: client)
                    try await withPeers(in: directory, cloud: cloud) { try await body($0, cloud) }
                }
            }
        }
    }

    /// Runs `body` with ``peers(in:cloud:)``, stopping their daemons afterwards.
    static func withPeers(
        in directory: String, cloud: PeerCloud, _ body: (Peers) async throws -> Void
    ) async throws {
        let peers = try await peers(in: directory, cloud: cloud)
        do {
            try await body(peers)
        } catch {
            await peers.stop()
            throw error
        }
        await peers.stop()
    }

    /// Sends and, when the delivery was queued (a loaded machine can make it time out), retries the
    /// outbox as the daemon would, a few times; true once delivered.
    static func sendDelivered(
        _ sharing: PeerSharing, image: String, to recipient: String, views: UInt64
    ) async throws -> Bool {
        let outcome = try await sharing.send(image: image, to: recipient, views: views)
        guard case .queued(let reason) = outcome else {
            if case .leftInMailbox(let reason) = outcome { Issue.record("left in the mailbox: \(reason)") }
            return true
        }
        var reasons = [reason]
        // Bounded: five retries.
        for _ in 0..<5 {
            let (_, waiting) = try await sharing.deliverOutbox()
            if waiting == 0 { return true }
            reasons.append(contentsOf: try sharing.outbox().map(\.lastError))
        }
        Issue.record("not delivered: \(reasons)")
        return false
    }

    /// Whether `body` fails with a ``PeerError`` whose message contains `text`.
    static func refused(_ text: String, _ body: () async throws -> Void) async -> Bool {
        do {
            try await body()
            return false
        } catch let error as PeerError {
            return error.message.contains(text)
        } catch {
            return false
        }
    }

    @Test func sendViewTwiceThenRefusedRevokeAndGrantAgain() async throws {
        let deposit = try AgreementKeyPair.generate()
        try await withTemporaryDirectory { directory in
            try await withPeerCloud(nodes: 3, depositKey: deposit.privateKey) { _, addresses in
                try await withClient(addresses) { client in
                    let cloud = PeerCloud(client: client)
                    try await Self.withPeers(in: directory, cloud: cloud) { peers in
                        #expect(try await cloud.depositKey() == deposit.publicKey)
                        let alice = PeerSharing(identity: peers.alice, cloud: cloud)
                        let bob = PeerSharing(identity: peers.bob, cloud: cloud)
                        let carol = PeerSharing(identity: peers.carol, cloud: cloud)

                        guard try await Self.sendDelivered(alice, image: "rgb8", to: "bob", views: 2) else { return }
                        let received = peers.bob.home.receivedFile(owner: "alice", image: "rgb8")
                        #expect(SecureFiles.mode(received) == 0o600)
                        #expect(try SecureFiles.read(received) == SecureFiles.read(peers.alice.home.imageFile("rgb8")))
                        // The grant in the cloud holds the key only sealed to the cloud.
                        let keyText = String(
                            decoding: try SecureFiles.read(peers.alice.home.keyFile("rgb8")), as: UTF8.self)
                        let grantDocument = try #require(try await cloud.document("alice:rgb8:bob", in: "permissions"))
                        #expect(
                            !grantDocument.values.contains(
                                .string(keyText.trimmingCharacters(in: .whitespacesAndNewlines)))
                        )
                        #expect(grantDocument["remaining"] == .number(2))

                        // Carol, holding bob's copy, cannot open it: she has no grant.
                        let carolCopy = peers.carol.home.receivedFile(owner: "alice", image: "rgb8")
                        try SecureFiles.makeDirectory((carolCopy as NSString).deletingLastPathComponent)
                        try SecureFiles.write(try SecureFiles.read(received), to: carolCopy)
                        #expect(
                            await Self.refused("refused") { _ = try await carol.view(image: "rgb8", from: "alice") })
                        // Nor by a request naming bob that she signs.
                        let posing = try ViewRequest(
                            owner: "alice", image: "rgb8", recipient: "bob", sequence: wallClockMillis()
                        ).signed(by: peers.carol.signing)
                        #expect(await remoteCode { _ = try await cloud.consume(posing) } == .unauthorized)
                        #expect(
                            try await cloud.document("alice:rgb8:bob", in: "permissions")?["remaining"] == .number(2))

                        // Two views, byte-exact; the third is refused and the local copy removed.
                        let first = try await bob.view(image: "rgb8", from: "alice")
                        #expect(first.image == peers.image)
                        #expect(first.remaining == 1)
                        #expect(first.width > 0 && first.height > 0)
                        let second = try await bob.view(image: "rgb8", from: "alice")
                        #expect(second.image == peers.image)
                        #expect(second.remaining == 0)
                        #expect(
                            await Self.refused("no views left") { _ = try await bob.view(image: "rgb8", from: "alice") }
                        )
                        #expect(!SecureFiles.exists(received))

                        // Granted again (new sequence): one more view after a new delivery.
                        guard try await Self.sendDelivered(alice, image: "rgb8", to: "bob", views: 3) else { return }
                        #expect(try await bob.view(image: "rgb8", from: "alice").remaining == 2)
                        // Revoked: refused, local copy removed.
                        try await alice.grant(image: "rgb8", to: "bob", views: 0)
                        #expect(await Self.refused("revoked") { _ = try await bob.view(image: "rgb8", from: "alice") })
                        #expect(!SecureFiles.exists(received))
                        // And granted again after the revoke.
                        guard try await Self.sendDelivered(alice, image: "rgb8", to: "bob", views: 1) else { return }
                        #expect(try await bob.view(image: "rgb8", from: "alice").image == peers.image)
                    }
                }
            }
        }
    }

    @Test func forgedAndReplayedGrantsAndRequestsAreRefused() async throws {
        try await withTemporaryDirectory { directory in
            try await withPeerCloud(nodes: 1) { _, addresses in
                try await withClient(addresses) { client in
                    let cloud = PeerCloud(client: client)
                    try await Self.withPeers(in: directory, cloud: cloud) { peers in
                        let alice = PeerSharing(identity: peers.alice, cloud: cloud)
                        let grant = try await alice.grant(image: "rgb8", to: "bob", views: 5)

                        // Replayed: the same signed grant again.
                        #expect(await remoteCode { try await cloud.grant(grant) } == .conflict)
                        // Forged: claims alice, signed by carol (more views for bob).
                        var forged = grant
                        forged.views = 100
                        forged.sequence += 10
                        #expect(
                            await remoteCode { try await cloud.grant(try forged.signed(by: peers.carol.signing)) }
                                == .unauthorized)
                        // Carol grants herself alice's deposit (copied into her own grant): it does not open there.
                        var stolen = grant
                        stolen.owner = "carol"
                        stolen.recipient = "bob"
                        stolen.sequence += 20
                        #expect(
                            await remoteCode { try await cloud.grant(try stolen.signed(by: peers.carol.signing)) }
                                == .badParams)
                        // Direct writes to permissions are refused.
                        let db = DocumentDatabase(client: client)
                        #expect(
                            await remoteCode {
                                try await db.update("alice:rgb8:bob", in: "permissions", set: ["remaining": 99])
                            }
                                == .unauthorized)
                        #expect(
                            try await cloud.document("alice:rgb8:bob", in: "permissions")?["remaining"] == .number(5))

                        // A replayed view request is refused, and so is an older one.
                        let request = try ViewRequest(
                            owner: "alice", image: "rgb8", recipient: "bob", sequence: wallClockMillis()
                        ).signed(by: peers.bob.signing)
                        let released = try await cloud.consume(request)
                        #expect(released.remaining == 4)
                        #expect(await remoteCode { _ = try await cloud.consume(request) } == .conflict)
                        var older = request
                        older.sequence -= 1
                        #expect(
                            await remoteCode { _ = try await cloud.consume(try older.signed(by: peers.bob.signing)) }
                                == .conflict)
                        #expect(
                            try await cloud.document("alice:rgb8:bob", in: "permissions")?["remaining"] == .number(4))
                        // The same signed request sent five times at once: one view, one key.
                        let once = try ViewRequest(
                            owner: "alice", image: "rgb8", recipient: "bob", sequence: request.sequence + 10
                        ).signed(by: peers.bob.signing)
                        let keys = await withTaskGroup(of: Bool.self) { group in
                            for _ in 0..<5 {
                                group.addTask { (try? await cloud.consume(once)) != nil }
                            }
                            var count = 0
                            for await ok in group where ok { count += 1 }
                            return count
                        }
                        #expect(keys == 1)
                        #expect(
                            try await cloud.document("alice:rgb8:bob", in: "permissions")?["remaining"] == .number(3))
                        // The released key opens only with bob's agreement key, for that request.
                        let key = try SealedBox.open(
                            released.sealedKey, with: peers.bob.agreement, domain: ViewGrant.releaseDomain,
                            context: request.releaseContext)
                        #expect(key.count == 49)
                        #expect(throws: IdentityError.self) {
                            try SealedBox.open(
                                released.sealedKey, with: peers.carol.agreement, domain: ViewGrant.releaseDomain,
                                context: request.releaseContext)
                        }
                        // A delivery under a grant in force, but to someone else, is refused by bob's daemon
                        // for naming another recipient (not for lack of a grant).
                        let toCarol = try await alice.grant(image: "rgb8", to: "carol", views: 1)
                        let png = try SecureFiles.read(peers.alice.home.imageFile("rgb8"))
                        let bobAddress = try #require(peers.daemons[1].address)
                        try await withClient([bobAddress], peer: true) { peer in
                            do {
                                _ = try await peer.send(
                                    try PeerSharing.deliverPayload(grant: toCarol, png: png),
                                    service: PeerSharing.deliverService,
                                    params: PeerSharing.deliverParams(offset: 0, total: png.count))
                                Issue.record("bob's daemon took a delivery meant for carol")
                            } catch let error as ClientError {
                                #expect(error.remoteCode == .unauthorized)
                                #expect(error.message.contains("not 'carol'"), "\(error.message)")
                            }
                        }
                    }
                }
            }
        }
    }

    @Test("ten concurrent views of three: exactly three succeed, never below zero")
    func concurrentViewsNeverGoBelowZero() async throws {
        let deposit = try AgreementKeyPair.generate()
        try await withTemporaryDirectory { directory in
            try await withPeerCloud(nodes: 3, depositKey: deposit.privateKey) { _, addresses in
                try await withClient(addresses) { client in
                    let cloud = PeerCloud(client: client)
                    try await Self.withPeers(in: directory, cloud: cloud) { peers in
                        try await PeerSharing(identity: peers.alice, cloud: cloud).grant(
                            image: "rgb8", to: "bob", views: 3)
                        let base = wallClockMillis()
                        let signing = peers.bob.signing
                        // Each on its own client, spread over the nodes.
                        let (successes, outcomes) = await withTaskGroup(of: (Bool, String).self) { group in
                            for index in 0..<10 {
                                group.addTask {
                                    let request = try? ViewRequest(
                                        owner: "alice", image: "rgb8", recipient: "bob", sequence: base + UInt64(index)
                                    ).signed(by: signing)
                                    guard let request else { return (false, "unsigned") }
                                    let one = Client(nodes: [addresses[index % addresses.count]], configuration: .tls)
                                    do {
                                        _ = try await PeerCloud(client: one).consume(request)
                                        await one.shutdown()
                                        return (true, "ok \(index)")
                                    } catch {
                                        // Refused: stale (a later request won) or no views left.
                                        await one.shutdown()
                                        return (false, "\(index): \(error)")
                                    }
                                }
                            }
                            var count = 0
                            var outcomes: [String] = []
                            for await (ok, outcome) in group {
                                if ok { count += 1 }
                                outcomes.append(outcome)
                            }
                            return (count, outcomes)
                        }
                        #expect(successes >= 1 && successes <= 3)
                        // Later requests (fresh sequences) take what is left, and no more.
                        var total = successes
                        var refusals: [String] = []
                        for attempt in 0..<5 {
                            let request = try ViewRequest(
                                owner: "alice", image: "rgb8", recipient: "bob", sequence: base + 100 + UInt64(attempt)
                            ).signed(by: signing)
                            do {
                                _ = try await cloud.consume(request)
                                total += 1
                            } catch {
                                refusals.append("\(error)")
                            }
                        }
                        #expect(total == 3, "concurrent: \(outcomes); later refusals: \(refusals)")
                        #expect(
                            try await cloud.document("alice:rgb8:bob", in: "permissions")?["remaining"] == .number(0))
                    }
                }
            }
        }
    }

    @Test func offlineSendIsQueuedAndDeliveredWhenTheRecipientReturns() async throws {
        try await withTemporaryDirectory { directory in
            try await withPeerCloud(nodes: 1) { _, addresses in
                try await withClient(addresses) { client in
                    let cloud = PeerCloud(client: client)
                    try await Self.withPeers(in: directory, cloud: cloud) { peers in
                        // Bob goes offline: his daemon stops listening (his record keeps the old address).
                        await peers.daemons[1].endpoint.shutdown()
                        // The outbox, not the mailbox (MailboxTests and RelayTests cover that path).
                        var alice = PeerSharing(identity: peers.alice, cloud: cloud)
                        alice.usesMailbox = false
                        let outcome = try await alice.send(image: "rgb8", to: "bob", views: 1)
                        guard case .queued(let reason) = outcome else {
                            Issue.record("delivered to an offline peer: \(outcome)")
                            return
                        }
                        #expect(reason.contains("offline"))
                        #expect(try alice.outbox().map(\.grant.recipient) == ["bob"])
                        #expect(SecureFiles.mode(peers.alice.home.outboxFile) == 0o600)
                        // Still offline: the retry keeps it.
                        #expect(try await alice.deliverOutbox() == (0, 1))

                        // Bob comes back on a new port; alice's daemon delivers at its next refresh.
                        let back = PeerDaemon(identity: peers.bob, cloud: cloud)
                        try await back.start()
                        let aliceDaemon = PeerDaemon(
                            identity: peers.alice, cloud: cloud, configuration: .init(refreshMillis: 50))
                        let running = Task { try await aliceDaemon.run() }
                        let received = peers.bob.home.receivedFile(owner: "alice", image: "rgb8")
                        #expect(await eventually(timeout: .seconds(20)) { SecureFiles.exists(received) })
                        #expect(await eventually { (try? alice.outbox().isEmpty) == true })
                        running.cancel()
                        try await running.value
                        let viewed = try await PeerSharing(identity: peers.bob, cloud: cloud).view(
                            image: "rgb8", from: "alice")
                        #expect(viewed.image == peers.image)

                        // Revoked: the old delivery replayed to bob is refused.
                        let delivered = try await alice.grant(image: "rgb8", to: "bob", views: 2)
                        try await alice.grant(image: "rgb8", to: "bob", views: 0)
                        let png = try SecureFiles.read(peers.alice.home.imageFile("rgb8"))
                        try await withClient([try #require(back.address)], peer: true) { peer in
                            let payload = try PeerSharing.deliverPayload(grant: delivered, png: png)
                            #expect(
                                await remoteCode {
                                    _ = try await peer.send(
                                        payload, service: PeerSharing.deliverService,
                                        params: PeerSharing.deliverParams(offset: 0, total: png.count))
                                }
                                    == .unauthorized)
                        }
                        await back.endpoint.shutdown()
                        // A send queued, then revoked before bob is back: dropped from the outbox.
                        guard case .queued = try await alice.send(image: "rgb8", to: "bob", views: 1) else {
                            Issue.record("delivered to an offline peer")
                            return
                        }
                        try await alice.grant(image: "rgb8", to: "bob", views: 0)
                        #expect(try await alice.deliverOutbox() == (0, 0))
                    }
                }
            }
        }
    }

    @Test("a node cut off from the majority never releases a key; views are never over-released")
    func minoritySideRefusesViews() async throws {
        let deposit = try AgreementKeyPair.generate()
        try await withTemporaryDirectory { directory in
            try await withPeerCloud(nodes: 3, depositKey: deposit.privateKey) { nodes, addresses in
                try await withClient(addresses) { client in
                    let cloud = PeerCloud(client: client)
                    try await Self.withPeers(in: directory, cloud: cloud) { peers in
                        try await PeerSharing(identity: peers.alice, cloud: cloud).grant(
                            image: "rgb8", to: "bob", views: 2)
                        let signing = peers.bob.signing
                        var sequence = wallClockMillis()
                        func request() throws -> ViewRequest {
                            sequence += 1
                            return try ViewRequest(owner: "alice", image: "rgb8", recipient: "bob", sequence: sequence)
                                .signed(by: signing)
                        }
                        // Two of three nodes go dark: the third is a minority and must refuse.
                        nodes[1].goDark(for: .seconds(4))
                        nodes[2].goDark(for: .seconds(4))
                        let lonely = Client(
                            nodes: [addresses[0]],
                            configuration: ClientConfiguration(timeout: .seconds(2), tls: TestTLS.authority.clientTLS))
                        let partitioned = try request()
                        var alone: String
                        do {
                            _ = try await PeerCloud(client: lonely).consume(partitioned)
                            alone = "released"
                        } catch {
                            alone = "\(error)"
                        }
                        await lonely.shutdown()
                        #expect(alone != "released", "the minority side released a key")
                        // Healed: the views left are released, and no more.
                        // Short calls: a node still dark drops them without an answer.
                        let healing = Client(
                            nodes: addresses,
                            configuration: ClientConfiguration(timeout: .seconds(2), tls: TestTLS.authority.clientTLS))
                        let healed = PeerCloud(client: healing)
                        var released = 0
                        var failures: [String] = []
                        let clock = ContinuousClock()
                        let end = clock.now + .seconds(30)
                        // Bounded in count and time.
                        for _ in 0..<100 where clock.now < end {
                            do {
                                _ = try await healed.consume(try request())
                                released += 1
                            } catch let error as ClientError where error.remoteCode == .unauthorized {
                                failures.append("\(error)")
                                break
                            } catch {
                                failures.append("\(error)")
                                try await Task.sleep(for: .milliseconds(100))
                            }
                        }
                        await healing.shutdown()
                        #expect((1...2).contains(released), "alone: \(alone); failures: \(failures.suffix(5))")
                        let remaining = try await cloud.document("alice:rgb8:bob", in: "permissions")?["remaining"]
                        #expect(remaining == .number(0))
                    }
                }
            }
        }
    }

    @Test func twoViewsAtOnceByTheRecipientBothSucceed() async throws {
        try await withTemporaryDirectory { directory in
            try await withPeerCloud(nodes: 1) { _, addresses in
                try await withClient(addresses) { client in
                    let cloud = PeerCloud(client: client)
                    try await Self.withPeers(in: directory, cloud: cloud) { peers in
                        let alice = PeerSharing(identity: peers.alice, cloud: cloud)
                        guard try await Self.sendDelivered(alice, image: "rgb8", to: "bob", views: 2) else { return }
                        let bob = PeerSharing(identity: peers.bob, cloud: cloud)
                        async let first = bob.view(image: "rgb8", from: "alice")
                        async let second = bob.view(image: "rgb8", from: "alice")
                        let both = try await [first, second]
                        #expect(both.allSatisfy { $0.image == peers.image })
                        #expect(Set(both.map(\.remaining)) == [0, 1])
                        #expect(
                            await Self.refused("no views left") { _ = try await bob.view(image: "rgb8", from: "alice") }
                        )
                    }
                }
            }
        }
    }
}
