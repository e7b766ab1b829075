import Distri
import DistriCore
import DistriIdentity
import DistriTestSupport
import Foundation
import NIOCore
import Synchronization
import Testing

@testable import DistriPeer

/// A transfer cut on purpose after some chunks.
private struct Stop: Error {}

/// The receiving side of deliveries, hashed as it is written: the open transfers, their digest, and
/// what happens when the file changes behind them.
@Suite struct IncomingDeliveriesTests {
    private func withPartial(_ body: (String, String) throws -> Void) throws {
        let directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("distri-in-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let partial = (directory as NSString).appendingPathComponent("image.png.0123.part")
        try SecureFiles.append([], to: partial, sync: false)
        try body(partial, (directory as NSString).appendingPathComponent(".lock"))
    }

    private static func bytes(_ count: Int, seed: UInt8) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
    }

    @Test("chunks appended in order are hashed as written; a chunk out of place is not written")
    func appendsInOrderAndHashes() throws {
        try withPartial { partial, lock in
            let image = Self.bytes(10_000, seed: 7)
            let incoming = IncomingDeliveries()
            let transfer = try #require(try incoming.open(partial))
            func append(_ range: Range<Int>) throws -> IncomingDeliveries.Appended {
                try incoming.append(
                    transfer, offset: range.lowerBound, chunk: ByteBuffer(bytes: image[range]), total: image.count,
                    lock: lock)
            }
            #expect(try append(0..<4000) == .held(4000))
            #expect(try append(6000..<10_000) == .held(4000), "ahead of what is held: not written")
            #expect(try append(0..<4000) == .held(4000), "again: not written twice")
            #expect(try append(4000..<6000) == .held(6000))
            #expect(try append(6000..<10_000) == .held(10_000))
            #expect(incoming.seal(transfer, total: image.count, digest: Digests.sha256(image)) == .ready)
            incoming.finished(transfer)
            #expect(try SecureFiles.read(partial) == image)
        }
    }

    @Test("a partial file opened afresh (a restarted daemon) is hashed from its bytes; wrong bytes do not seal")
    func resumesFromTheFileAndRefusesWrongBytes() throws {
        try withPartial { partial, lock in
            let image = Self.bytes(9000, seed: 3)
            try SecureFiles.append(Array(image[..<5000]), to: partial, sync: false)
            let incoming = IncomingDeliveries()
            let transfer = try #require(try incoming.open(partial))
            #expect(transfer.held == 5000)
            #expect(
                try incoming.append(
                    transfer, offset: 5000, chunk: ByteBuffer(bytes: image[5000...]), total: image.count, lock: lock)
                    == .held(9000))
            #expect(incoming.seal(transfer, total: image.count, digest: Digests.sha256(image)) == .ready)
            incoming.finished(transfer)

            // Another writer changed the file behind the transfer: it is hashed again from the file, and
            // a tampered byte is caught when the transfer ends.
            try FileManager.default.removeItem(atPath: partial)
            try SecureFiles.append(Array(image[..<3000]), to: partial, sync: false)
            let again = try #require(try incoming.open(partial))
            var tampered = Array(image[3000..<6000])
            tampered[10] ^= 1
            try SecureFiles.append(tampered, to: partial, sync: false)
            #expect(
                try incoming.append(
                    again, offset: 6000, chunk: ByteBuffer(bytes: image[6000...]), total: image.count, lock: lock)
                    == .held(9000))
            #expect(incoming.seal(again, total: image.count, digest: Digests.sha256(image)) == .mismatch)
            incoming.finished(again)
        }
    }

    @Test("a partial file removed behind the transfer is gone, not written to")
    func removedFileIsGone() throws {
        try withPartial { partial, lock in
            let incoming = IncomingDeliveries()
            let transfer = try #require(try incoming.open(partial))
            try FileManager.default.removeItem(atPath: partial)
            #expect(
                try incoming.append(transfer, offset: 0, chunk: ByteBuffer(bytes: [1, 2]), total: 2, lock: lock)
                    == .gone)
            #expect(try incoming.open(partial) == nil)
        }
    }

    @Test("a Deliver body splits into the ticket and the chunk as DeliverPayload decodes it; malformed bodies refused")
    func splitsBodies() throws {
        let ticket = DeliveryTicket(
            owner: "alice", image: "photo", recipient: "bob", digest: [UInt8](repeating: 9, count: 32), sequence: 42)
        let chunk = Self.bytes(3000, seed: 1)
        let body = DeliverPayload(ticket: ticket, chunk: chunk).encoded()
        let split = try DeliverPayload.split(ByteBuffer(bytes: body))
        #expect(split.ticket == ticket)
        #expect(Array(buffer: split.chunk) == chunk)
        #expect(try DeliverPayload(decoding: body).chunk == chunk)
        for bad in [[], [0, 0, 1], [0, 0, 0, 200, 1, 2], [0, 0, 0, 2] + Array("no".utf8), [0, 16, 0, 1] + body] {
            #expect(throws: IdentityError.self) { try DeliverPayload.split(ByteBuffer(bytes: bad)) }
            #expect(throws: IdentityError.self) { try DeliverPayload(decoding: bad) }
        }
    }
}

@Suite("Deliveries streamed to the recipient's file, verified as they arrive, on real nodes", .serialized)
struct DeliveryStreamingTests {
    @Test(
        "a transfer cut mid-way resumes at bob's restarted daemon from the partial file it left, and the image verifies"
    )
    func resumesAtARestartedDaemon() async throws {
        try await ViewGrantTests.withStory { peers, cloud in
            var alice = PeerSharing(identity: peers.alice, cloud: cloud)
            let png = try SecureFiles.read(peers.alice.home.imageFile("rgb8"))
            alice.deliveryChunkBytes = max(1, png.count / 8)
            alice.deliveryWindow = 1
            let chunk = alice.deliveryChunkBytes
            let seen = Mutex(0)
            let cut = try await alice.send(image: "rgb8", to: "bob", views: 1) { _, _ in
                // The probe, then three chunks.
                if seen.withLock({ count in
                    count += 1
                    return count
                }) == 4 {
                    throw Stop()
                }
            }
            guard case .queued = cut else {
                Issue.record("the cut transfer was not queued: \(cut)")
                return
            }
            // Bob's daemon stops (its open transfer with it) and a new one starts on another port.
            await peers.daemons[1].endpoint.shutdown()
            let restarted = PeerDaemon(identity: peers.bob, cloud: cloud)
            try await restarted.start()
            let received = peers.bob.home.receivedFile(owner: "alice", image: "rgb8")
            #expect(!SecureFiles.exists(received))

            let resumed = Mutex<[Int]>([])
            let outcome = try await alice.deliverOutbox { held, _ in resumed.withLock { $0.append(held) } }
            await restarted.endpoint.shutdown()
            #expect(outcome == (1, 0))
            // The new daemon read what the old one wrote and went on from there.
            #expect(resumed.withLock { $0.first } == 3 * chunk)
            #expect(resumed.withLock { $0.last } == png.count)
            #expect(try SecureFiles.read(received) == png)
            #expect(
                try await PeerSharing(identity: peers.bob, cloud: cloud).view(image: "rgb8", from: "alice").image
                    == peers.image)
        }
    }

    @Test(
        "a chunk with wrong bytes early in a transfer is refused when the transfer ends, and the partial file removed")
    func wrongBytesRefusedAtTheEnd() async throws {
        try await ViewGrantTests.withStory { peers, cloud in
            let alice = PeerSharing(identity: peers.alice, cloud: cloud)
            let grant = try await alice.grant(image: "rgb8", to: "bob", views: 1)
            let png = try SecureFiles.read(peers.alice.home.imageFile("rgb8"))
            let bobAddress = try #require(peers.daemons[1].address)
            let received = peers.bob.home.receivedFile(owner: "alice", image: "rgb8")
            let partial = received + ".\(Hex.encode(grant.digest).prefix(16)).part"
            let quarter = png.count / 4
            try await withClient([bobAddress], peer: true) { peer in
                func deliver(_ bytes: [UInt8], at offset: Int) async throws -> DeliverAnswer {
                    let reply = try await peer.send(
                        try PeerSharing.deliverPayload(grant: grant, png: bytes), service: PeerSharing.deliverService,
                        params: PeerSharing.deliverParams(offset: offset, total: png.count))
                    return try DeliverAnswer(reply, total: png.count)
                }
                var tampered = Array(png[quarter..<(2 * quarter)])
                tampered[7] ^= 0x80
                let first = try await deliver(Array(png[..<quarter]), at: 0)
                #expect(first == DeliverAnswer(have: quarter, done: false))
                // Taken: nothing is known to be wrong until the whole image is there.
                let second = try await deliver(tampered, at: quarter)
                #expect(second.have == 2 * quarter)
                let third = try await deliver(Array(png[(2 * quarter)..<(3 * quarter)]), at: 2 * quarter)
                #expect(third.have == 3 * quarter)
                #expect(
                    await remoteCode { _ = try await deliver(Array(png[(3 * quarter)...]), at: 3 * quarter) }
                        == .badParams)
                #expect(!SecureFiles.exists(partial), "the partial file is removed")
                #expect(!SecureFiles.exists(received))
            }
            // Sent again whole, it arrives and verifies.
            guard case .delivered = try await alice.deliver(granted: grant) else {
                Issue.record("not delivered when sent again")
                return
            }
            #expect(try SecureFiles.read(received) == png)
        }
    }
}
