import Distri
import DistriCore
import DistriIdentity
import DistriImaging
import DistriPeer
import DistriTestSupport
import Foundation
import NIOConcurrencyHelpers
import Synchronization
import Testing

@Suite("Peers the cloud cannot dial: the reachability check and the relay, on real nodes", .serialized)
struct RelayTests {
    /// alice (reachable, daemon started) and bob (advertising an address nobody answers at, daemon
    /// running with a relay link) on a 3-node cloud; alice's large sample encrypted.
    private struct Story {
        var nodes: [CloudNode]
        var cloud: PeerCloud
        var alice: PeerIdentity
        var bob: PeerIdentity
        var bobDaemon: PeerDaemon
        /// Bob's daemon's `run()`.
        var bobRunning: Task<Void, Error>
        var image: [UInt8]
    }

    private func withStory(
        configure: @escaping (inout CloudNodeConfiguration) -> Void = { _ in }, _ body: (Story) async throws -> Void
    ) async throws {
        let deposit = try AgreementKeyPair.generate()
        try await withTemporaryDirectory { directory in
            try await withPeerCloud(nodes: 3, depositKey: deposit.privateKey, configure: configure) {
                nodes, addresses in
                try await withClient(addresses) { client in
                    let cloud = PeerCloud(client: client)
                    let alice = try PeerIdentity.create(name: "alice", home: PeerHome(path: "\(directory)/alice"))
                    let bob = try PeerIdentity.create(name: "bob", home: PeerHome(path: "\(directory)/bob"))
                    let aliceDaemon = PeerDaemon(identity: alice, cloud: cloud)
                    try await aliceDaemon.start()
                    // Port 1 on loopback: nothing listens there, as nothing outside reaches a NATed address.
                    let bobDaemon = PeerDaemon(
                        identity: bob, cloud: cloud,
                        configuration: .init(advertise: ["127.0.0.1:1"], refreshMillis: 500))
                    let running = Task { try await bobDaemon.run() }
                    let image = try samplePNG("rgb8.png")
                    _ = try await PeerImages(identity: alice, cloud: cloud).encrypt(
                        file: image, fileName: "rgb8.png", name: "rgb8")
                    #expect(await eventually(timeout: .seconds(20)) { bobDaemon.relayNode != nil })
                    do {
                        try await body(
                            Story(
                                nodes: nodes, cloud: cloud, alice: alice, bob: bob, bobDaemon: bobDaemon,
                                bobRunning: running, image: image))
                    } catch {
                        running.cancel()
                        _ = try? await running.value
                        await aliceDaemon.endpoint.shutdown()
                        throw error
                    }
                    running.cancel()
                    try await running.value
                    await aliceDaemon.endpoint.shutdown()
                }
            }
        }
    }

    @Test("the cloud's check finds bob unreachable; alice's send goes through the relay and bob views it byte-exact")
    func relayedDeliveryArrivesWhole() async throws {
        try await withStory { story in
            #expect(story.bobDaemon.reachable == false)
            let record = try await story.cloud.verifiedPeer("bob")
            #expect(record.reachable == false, "the signed record publishes the check's answer")
            #expect(try await story.cloud.verifiedPeer("alice").reachable == true)

            var alice = PeerSharing(identity: story.alice, cloud: story.cloud)
            let png = try SecureFiles.read(story.alice.home.imageFile("rgb8"))
            alice.deliveryChunkBytes = max(1, png.count / 10)
            let outcome = try await alice.send(image: "rgb8", to: "bob", views: 1)
            let relayNode = try #require(story.bobDaemon.relayNode)
            #expect(outcome == .delivered(.relayed(node: relayNode.description)))
            let viewed = try await PeerSharing(identity: story.bob, cloud: story.cloud).view(
                image: "rgb8", from: "alice")
            #expect(viewed.image == story.image)
            // A tidy home: the image, no partial or lock file left beside it.
            let received = (story.bob.home.receivedFile(owner: "alice", image: "rgb8") as NSString)
                .deletingLastPathComponent
            #expect(try FileManager.default.contentsOfDirectory(atPath: received) == ["rgb8.png"])

            let relayed = story.nodes.compactMap { $0.stats().relay }
            #expect(relayed.map(\.attachedPeers).reduce(0, +) == 1)
            #expect(relayed.map(\.relayedBytes).reduce(0, +) == UInt64(png.count), "each byte crossed the relay once")
        }
    }

    @Test("killing the node that relays a delivery resumes it through another node, not from the start")
    func relayResumesOnAnotherNode() async throws {
        try await withStory { story in
            var alice = PeerSharing(identity: story.alice, cloud: story.cloud)
            let png = try SecureFiles.read(story.alice.home.imageFile("rgb8"))
            alice.deliveryChunkBytes = max(1, png.count / 20)
            alice.deliveryWindow = 1
            let first = try #require(story.bobDaemon.relayNode)
            let victim = try #require(story.nodes.first { $0.address == first })
            let killer = NodeKiller(victim: victim, at: png.count / 3)
            let outcome = try await alice.send(image: "rgb8", to: "bob", views: 1) { have, _ in killer.observe(have) }
            await killer.waitForShutdown()
            guard case .delivered(.relayed(let node)) = outcome else {
                Issue.record("not relayed: \(outcome)")
                return
            }
            #expect(node != first.description, "resumed through another node")
            let viewed = try await PeerSharing(identity: story.bob, cloud: story.cloud).view(
                image: "rgb8", from: "alice")
            #expect(viewed.image == story.image)
            let survivors = story.nodes.filter { $0 !== victim }.compactMap { $0.stats().relay }
            let carried = survivors.map(\.relayedBytes).reduce(0, +)
            #expect(
                carried > 0 && carried < UInt64(png.count),
                "the other node carried only the rest: \(carried) of \(png.count)")
            #expect(killer.held.last == png.count)
        }
    }

    @Test(
        "a sender over its relay quota gets a clear refusal from the relay, and the image goes to the mailbox instead")
    func relayQuotaRefuses() async throws {
        try await withStory(configure: { $0.relayQuotas.bytesPerWindow = 1000 }) { story in
            let alice = PeerSharing(identity: story.alice, cloud: story.cloud)
            let outcome = try await alice.send(image: "rgb8", to: "bob", views: 1)
            guard case .leftInMailbox(let reason) = outcome else {
                Issue.record("relayed over the quota: \(outcome)")
                return
            }
            #expect(reason.contains("relay quota"), "\(reason)")
            #expect(story.nodes.compactMap { $0.stats().relay?.refusedOverQuota }.reduce(0, +) >= 1)
        }
    }

    @Test(
        "bob offline: alice's send waits in the cloud's mailbox; with alice gone, bob's daemon collects it when it comes back"
    )
    func offlineSendGoesToTheMailbox() async throws {
        try await withStory { story in
            // Bob's daemon stops: no relay link, nothing listening.
            story.bobRunning.cancel()
            try await story.bobRunning.value
            #expect(
                await eventually(timeout: .seconds(20)) {
                    story.nodes.allSatisfy { ($0.stats().relay?.attachedPeers ?? 0) == 0 }
                })
            let alice = PeerSharing(identity: story.alice, cloud: story.cloud)
            let outcome = try await alice.send(image: "rgb8", to: "bob", views: 1)
            guard case .leftInMailbox(let reason) = outcome else {
                Issue.record("not left in the mailbox: \(outcome)")
                return
            }
            #expect(reason.contains("offline"), "\(reason)")
            #expect(try alice.outbox().isEmpty, "nothing waits on alice's side")
            #expect(story.nodes.compactMap { $0.stats().mailbox?.entries }.allSatisfy { $0 == 1 })

            // Bob comes back (alice has no daemon running): his daemon collects at start.
            let back = PeerDaemon(identity: story.bob, cloud: story.cloud, configuration: .init(refreshMillis: 200))
            let running = Task { try await back.run() }
            let received = story.bob.home.receivedFile(owner: "alice", image: "rgb8")
            #expect(await eventually(timeout: .seconds(20)) { SecureFiles.exists(received) })
            running.cancel()
            try await running.value
            let viewed = try await PeerSharing(identity: story.bob, cloud: story.cloud).view(
                image: "rgb8", from: "alice")
            #expect(viewed.image == story.image)
            #expect(
                await eventually(timeout: .seconds(20)) {
                    story.nodes.allSatisfy { ($0.stats().mailbox?.entries ?? 0) == 0 }
                }, "removed once collected")
        }
    }

    @Test(
        "what travels through the relay and into the mailbox holds no key: a ticket, checked against the grant in force"
    )
    func deliveriesCarryNoKey() async throws {
        try await withStory { story in
            let alice = PeerSharing(identity: story.alice, cloud: story.cloud)
            let grant = try await alice.grant(image: "rgb8", to: "bob", views: 2)
            #expect(!grant.sealedKey.isEmpty)
            let payload = try PeerSharing.deliverPayload(grant: grant, png: [1, 2, 3])
            let text = String(decoding: payload, as: UTF8.self)
            #expect(!text.contains(Hex.encode(grant.sealedKey)) && !text.contains("sealedKey"))
            let decoded = try DeliverPayload(decoding: payload)
            #expect(decoded.grant == grant.ticket && decoded.chunk == [1, 2, 3])
            // A ticket for another image (a digest the grant in force does not have) is not relayed.
            var forged = grant.ticket
            forged.digest = Array(repeating: 9, count: 32)
            let code = await remoteCode {
                _ = try await story.cloud.client.send(
                    DeliverPayload(ticket: forged, chunk: [1]).encoded(), service: RelayServices.relayDeliver,
                    params: ["to=bob"] + PeerSharing.deliverParams(offset: 0, total: 1))
            }
            #expect(code == .unauthorized)
        }
    }

    @Test("attaching as another peer, relaying a grant to someone else, and checking a stranger's port are refused")
    func forgeriesAreRefused() async throws {
        try await withStory { story in
            let mallory = try SigningKeyPair.generate()
            let forged = try PeerProof.make(name: "bob", purpose: .relay, signing: mallory, now: wallClockMillis())
            let endpoint = PeerEndpoint()
            let node = try #require(story.nodes[0].address)
            let body = Array(JSONValue.object(["proof": .object(forged.document)]).jsonText.utf8)
            await #expect(throws: ClientError.self) {
                _ = try await endpoint.attachRelay(to: node, tls: story.cloud.client.configuration.tls, body: body)
            }
            // A proof for the mailbox does not attach a relay link.
            let wrongPurpose = try PeerProof.make(
                name: "bob", purpose: .mailbox, signing: story.bob.signing, now: wallClockMillis())
            let wrongBody = Array(JSONValue.object(["proof": .object(wrongPurpose.document)]).jsonText.utf8)
            await #expect(throws: ClientError.self) {
                _ = try await endpoint.attachRelay(to: node, tls: story.cloud.client.configuration.tls, body: wrongBody)
            }

            // A grant for carol cannot be relayed to bob.
            let grant = try ViewGrant(
                owner: "alice", image: "rgb8", recipient: "carol", views: 0, digest: Array(repeating: 7, count: 32),
                sealedKey: [], sequence: 1
            ).signed(by: story.alice.signing)
            let payload = try PeerSharing.deliverPayload(grant: grant, png: [1, 2, 3])
            let code = await remoteCode {
                _ = try await story.cloud.client.send(
                    payload, service: RelayServices.relayDeliver,
                    params: ["to=bob"] + PeerSharing.deliverParams(offset: 0, total: 3))
            }
            #expect(code == .badParams)

            // The check dials only what it is given and says why an address did not answer as the peer.
            let reply = try await story.cloud.client.send(
                Array(#"{"name":"alice","addresses":["\#(node)","127.0.0.1:1"]}"#.utf8),
                service: RelayServices.checkReachable, params: [])
            let answer = try #require((try? JSONParser.parse(reply))?.objectValue)
            #expect(answer["reachable"]?.arrayValue == [])
            #expect(answer["unreachable"]?.objectValue?.count == 2)
        }
    }
}

/// Shuts a node down (once) when a transfer's progress passes `at` bytes, and remembers the progress.
private final class NodeKiller: Sendable {
    private let victim: CloudNode
    private let at: Int
    private let state = NIOLockedValueBox<(held: [Int], shutdown: Task<Void, Never>?)>(([], nil))

    init(victim: CloudNode, at: Int) {
        self.victim = victim
        self.at = at
    }

    var held: [Int] { state.withLockedValue { $0.held } }

    func observe(_ have: Int) {
        let victim = self.victim
        state.withLockedValue { state in
            state.held.append(have)
            if have >= at, state.shutdown == nil { state.shutdown = Task { await victim.shutdown() } }
        }
    }

    func waitForShutdown() async {
        await state.withLockedValue { $0.shutdown }?.value
    }
}
