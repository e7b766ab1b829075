import Distri
import DistriCore
import DistriIdentity
import DistriPeer
import DistriTestSupport
import Foundation
import Synchronization
import Testing

/// A transfer cut on purpose after some chunks.
private struct Cut: Error {}

@Suite("Requests, answers and resumable deliveries on real nodes", .serialized)
struct RequestAndDeliveryTests {
    @Test(
        "bob requests, alice sees it in her inbox and grants; carol's request is rejected; forgeries and replays refused"
    )
    func requestGrantReject() async throws {
        try await ViewGrantTests.withStory { peers, cloud in
            let alice = PeerSharing(identity: peers.alice, cloud: cloud)
            let bob = PeerSharing(identity: peers.bob, cloud: cloud)
            let carol = PeerSharing(identity: peers.carol, cloud: cloud)

            #expect(
                await ViewGrantTests.refused("no image named") {
                    try await bob.request(image: "nope", from: "alice", views: 1)
                })
            let asked = try await bob.request(image: "rgb8", from: "alice", views: 4)
            try await carol.request(image: "rgb8", from: "alice", views: 1)
            let inbox = try await alice.inbox()
            #expect(Set(inbox.requestsToMe.map(\.requester)) == ["bob", "carol"])
            #expect(inbox.requestsToMe.first { $0.requester == "bob" }?.views == 4)
            #expect(try await bob.inbox().myRequests.map(\.state) == [.pending])

            // Granting delivers the image with the views asked for, and the request shows granted.
            let answer = try await alice.grantRequest(image: "rgb8", to: "bob")
            guard case .delivered = answer.outcome else {
                Issue.record("not delivered: \(answer.outcome)")
                return
            }
            #expect(answer.views == 4)
            let bobsInbox = try await bob.inbox()
            #expect(bobsInbox.myRequests.map(\.state) == [.granted])
            #expect(bobsInbox.grantsToMe.map { [$0.grant.owner, $0.grant.image] } == [["alice", "rgb8"]])
            #expect(bobsInbox.grantsToMe.first?.remaining == 4 && bobsInbox.grantsToMe.first?.received == true)
            #expect(try await bob.view(image: "rgb8", from: "alice").image == peers.image)

            try await alice.reject(image: "rgb8", from: "carol")
            #expect(try await carol.inbox().myRequests.map(\.state) == [.rejected])
            #expect(try await alice.inbox().requestsToMe.isEmpty)

            // Carol cannot answer for alice, bob cannot re-open his request with an old signature, and
            // the plain DB services may not write `requests`.
            let forged = try AccessRequest(
                owner: "alice", image: "rgb8", requester: "carol", views: 9, state: .granted,
                sequence: wallClockMillis() + 1000
            ).signed(by: peers.carol.signing)
            #expect(await remoteCode { try await cloud.post(forged) } == .unauthorized)
            #expect(await remoteCode { try await cloud.post(asked) } == .conflict)
            #expect(
                await remoteCode {
                    _ = try await cloud.database.update(
                        asked.id, in: AccessRequest.collection, set: ["state": "pending"])
                } == .unauthorized)
            #expect(try await carol.inbox().myRequests.map(\.state) == [.rejected])
        }
    }

    @Test("a transfer cut after two chunks resumes from what the recipient holds, and the image arrives whole")
    func resumableDelivery() async throws {
        try await ViewGrantTests.withStory { peers, cloud in
            var alice = PeerSharing(identity: peers.alice, cloud: cloud)
            let png = try SecureFiles.read(peers.alice.home.imageFile("rgb8"))
            alice.deliveryChunkBytes = max(1, png.count / 8)
            alice.deliveryWindow = 1
            let chunk = alice.deliveryChunkBytes
            #expect(png.count > 4 * chunk)

            let seen = Mutex<[Int]>([])
            let cut = try await alice.send(image: "rgb8", to: "bob", views: 1) { held, _ in
                let calls = seen.withLock {
                    $0.append(held)
                    return $0.count
                }
                if calls == 3 { throw Cut() }  // the probe, then two chunks
            }
            guard case .queued = cut else {
                Issue.record("the cut transfer was not queued: \(cut)")
                return
            }
            #expect(seen.withLock { $0 } == [0, chunk, 2 * chunk])
            let received = peers.bob.home.receivedFile(owner: "alice", image: "rgb8")
            #expect(!SecureFiles.exists(received), "a partial transfer is not the image")

            let resumed = Mutex<[Int]>([])
            let outcome = try await alice.deliverOutbox { held, _ in resumed.withLock { $0.append(held) } }
            #expect(outcome == (1, 0))
            // The retry's probe finds the two chunks bob holds and goes on from there.
            #expect(resumed.withLock { $0.first } == 2 * chunk)
            #expect(resumed.withLock { $0.last } == png.count)
            #expect(try SecureFiles.read(received) == png)
            #expect(
                try await PeerSharing(identity: peers.bob, cloud: cloud).view(image: "rgb8", from: "alice").image
                    == peers.image)
        }
    }

    @Test(
        "a chunk that does not continue the file is not written; a whole file that does not match the grant is refused")
    func outOfOrderAndTamperedChunks() async throws {
        try await ViewGrantTests.withStory { peers, cloud in
            let alice = PeerSharing(identity: peers.alice, cloud: cloud)
            let grant = try await alice.grant(image: "rgb8", to: "bob", views: 1)
            let png = try SecureFiles.read(peers.alice.home.imageFile("rgb8"))
            let bobAddress = try #require(peers.daemons[1].address)
            try await withClient([bobAddress], peer: true) { peer in
                func deliver(_ bytes: ArraySlice<UInt8>, at offset: Int) async throws -> String {
                    let reply = try await peer.send(
                        try PeerSharing.deliverPayload(grant: grant, png: Array(bytes)),
                        service: PeerSharing.deliverService,
                        params: PeerSharing.deliverParams(offset: offset, total: png.count))
                    return String(decoding: reply, as: UTF8.self)
                }
                // An offset near Int.max (offset + chunk would overflow) is refused, not a crash.
                let huge = await remoteCode {
                    _ = try await peer.send(
                        try PeerSharing.deliverPayload(grant: grant, png: [1]), service: PeerSharing.deliverService,
                        params: ["offset=\(Int.max)", "total=\(png.count)"])
                }
                #expect(huge == .badParams)
                let half = png.count / 2
                #expect(try await deliver(png[half...], at: half).contains("\"have\":0"))
                #expect(try await deliver(png[..<half], at: 0).contains("\"have\":\(half)"))
                var tampered = Array(png[half...])
                tampered[tampered.count / 2] ^= 1
                #expect(await remoteCode { _ = try await deliver(tampered[...], at: half) } == .badParams)
                #expect(!SecureFiles.exists(peers.bob.home.receivedFile(owner: "alice", image: "rgb8")))
                // Sent again from the start, it arrives.
                _ = try await deliver(png[..<half], at: 0)
                #expect(try await deliver(png[half...], at: half).contains("\"done\":true"))
            }
        }
    }
}

@Suite struct SendAndReceiveStateTests {
    @Test(
        "a send's state: revoked and used-up views first, then the views the cloud counted, then the outbox and the record of its delivery"
    )
    func sentStates() {
        typealias State = SentImage.State
        #expect(State.of(views: 0, remaining: 0, queued: true, outcome: "delivered") == .revoked)
        #expect(State.of(views: 2, remaining: 0, queued: false, outcome: "delivered") == .noViewsLeft)
        #expect(State.of(views: 2, remaining: 1, queued: false, outcome: "mailbox") == .viewed)
        #expect(State.of(views: 2, remaining: 2, queued: true, outcome: nil) == .queued)
        #expect(State.of(views: 2, remaining: 2, queued: false, outcome: "mailbox") == .mailbox)
        #expect(State.of(views: 2, remaining: nil, queued: false, outcome: "delivered") == .delivered)
        #expect(State.of(views: 2, remaining: 2, queued: false, outcome: nil) == .granted)
    }
}
