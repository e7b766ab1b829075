import Distri
import DistriCore
import DistriIdentity
import Foundation
import NIOCore

/// Called as a transfer advances: bytes the recipient holds, and the image's size. Throwing stops
/// the transfer (the recipient keeps what it has, and the next attempt resumes from there).
public typealias DeliveryProgress = @Sendable (_ held: Int, _ total: Int) throws -> Void

/// Sealed images travel from peer to peer in chunks through the recipient daemon's `Deliver`
/// service, so a cut transfer resumes where it stopped:
///
/// - each call carries the grant and a chunk at an offset (parameters `offset=O`, `total=T`); the
///   first is an empty probe;
/// - the recipient appends a chunk only at the offset it holds (its partial file, named by the
///   image's digest) and answers `{"have": N, "done": false}`; the sender goes on from `N`;
/// - a new transfer starts only for a grant signed by the owner's registered key and in force in the
///   cloud; at the end the whole file must match the grant's digest and the grant must still be in
///   force, and only then does the image take its place (`received/OWNER/IMAGE.png`).
extension PeerSharing {
    /// Largest image a daemon accepts.
    public static let maxDeliveryBytes = SecureFiles.maxReadBytes

    /// The body of a `Deliver` call: `grant` and a `chunk` of the sealed PNG.
    public static func deliverPayload(grant: ViewGrant, png chunk: [UInt8]) throws -> [UInt8] {
        DeliverPayload(grant: grant, chunk: chunk).encoded()
    }

    /// The parameters of a `Deliver` call for a chunk at `offset` of an image of `total` bytes.
    public static func deliverParams(offset: Int, total: Int) -> [String] {
        ["offset=\(offset)", "total=\(total)"]
    }

    // MARK: Sending

    /// Delivers `png` and its grant to the recipient's daemon at each address it published, resuming
    /// whatever it already holds; returns the address that took it.
    func deliver(_ png: [UInt8], grant: ViewGrant, progress: DeliveryProgress?) async throws -> String {
        let record = try await cloud.verifiedPeer(grant.recipient)
        guard !record.addresses.isEmpty else { throw PeerError("'\(grant.recipient)' publishes no address") }
        var failures: [String] = []
        for text in record.addresses.prefix(PeerRecord.maxAddresses) {
            guard let address = NodeAddress(text) else {
                failures.append("\(text): not host:port")
                continue
            }
            let client = Client(
                nodes: [address],
                // A peer's endpoint, not a cloud: no membership to learn.
                configuration: ClientConfiguration(
                    timeout: deliveryTimeout, connectTimeout: .seconds(2), membershipRefresh: nil))
            do {
                try await transfer(png, grant: grant, over: client, progress: progress)
                await client.shutdown()
                return text
            } catch let error as DeliveryStopped {
                await client.shutdown()
                throw error.reason
            } catch {
                await client.shutdown()
                failures.append("\(text): \(error)")
            }
        }
        throw PeerError("'\(grant.recipient)' is offline (\(failures.joined(separator: "; ")))")
    }

    /// Sends `png` chunk by chunk from the offset the recipient holds.
    private func transfer(_ png: [UInt8], grant: ViewGrant, over client: Client, progress: DeliveryProgress?)
        async throws
    {
        let chunkBytes = max(1, deliveryChunkBytes)
        var held = 0
        var chunk: ArraySlice<UInt8> = []
        // Bounded: every round either advances the offset or ends; the count is capped as well.
        for _ in 0..<(png.count / chunkBytes + 16) {
            let reply = try await client.send(
                DeliverPayload(grant: grant, chunk: Array(chunk)).encoded(), service: Self.deliverService,
                params: Self.deliverParams(offset: held, total: png.count), timeout: deliveryTimeout)
            let answer = try DeliverAnswer(reply, total: png.count)
            do {
                try progress?(answer.have, png.count)
            } catch {
                throw DeliveryStopped(reason: error)
            }
            if answer.done { return }
            held = answer.have
            chunk = png[held..<min(png.count, held + chunkBytes)]
        }
        throw PeerError("the transfer to '\(grant.recipient)' made no progress")
    }

    // MARK: Receiving

    /// The daemon's `Deliver`: keeps a chunk of a sealed image (see the type's notes) and answers how
    /// much it holds.
    func receive(_ bytes: [UInt8], params: [String]) async throws -> [UInt8] {
        let payload: DeliverPayload
        do {
            payload = try DeliverPayload(decoding: bytes)
        } catch {
            throw ServiceError.badParams("\(error)")
        }
        let (grant, chunk) = (payload.grant, payload.chunk)
        guard let offset = Self.parameter("offset", in: params), let total = Self.parameter("total", in: params),
            (1...Self.maxDeliveryBytes).contains(total), chunk.count <= total, offset <= total - chunk.count
        else {
            throw ServiceError.badParams(
                "Deliver needs offset=O and total=T (1 to \(Self.maxDeliveryBytes) bytes) with the chunk inside")
        }
        guard grant.recipient == identity.name else {
            throw ServiceError(.unauthorized, "this is '\(identity.name)', not '\(grant.recipient)'")
        }
        let file = identity.home.receivedFile(owner: grant.owner, image: grant.image)
        let partial = file + ".\(Hex.encode(grant.digest).prefix(16)).part"
        if !SecureFiles.exists(partial) {
            try await checkInForce(grant)
            if Self.holds(file, digest: grant.digest) { return DeliverAnswer(have: total, done: true).encoded() }
            try SecureFiles.makeDirectory(identity.home.receivedDirectory)
            try SecureFiles.makeDirectory((file as NSString).deletingLastPathComponent)
            try SecureFiles.append([], to: partial)
        }
        // The lock file stays: removing it would let a waiter and a newcomer lock different files.
        let lock = partial + ".lock"
        let have = try SecureFiles.withLock(lock) { () throws -> Int in
            // Completed meanwhile by another call of the same transfer.
            guard SecureFiles.exists(partial) else { return Self.holds(file, digest: grant.digest) ? total : 0 }
            let have = SecureFiles.size(partial) ?? 0
            guard offset == have, !chunk.isEmpty, chunk.count <= total - have else { return have }
            try SecureFiles.append(chunk, to: partial)
            return have + chunk.count
        }
        guard have >= total else { return DeliverAnswer(have: have, done: false).encoded() }
        try await checkInForce(grant)
        try SecureFiles.withLock(lock) {
            guard SecureFiles.exists(partial) else {
                guard Self.holds(file, digest: grant.digest) else {
                    throw ServiceError(.conflict, "the transfer was discarded meanwhile; send it again")
                }
                return
            }
            guard Digests.sha256(try SecureFiles.read(partial)) == grant.digest else {
                try? FileManager.default.removeItem(atPath: partial)
                throw ServiceError.badParams("the image does not match the grant's digest; send it again")
            }
            guard rename(partial, file) == 0 else { throw PeerError("cannot move \(partial) to \(file)") }
        }
        return DeliverAnswer(have: total, done: true).encoded()
    }

    /// Throws `unauthorized` unless `grant` is signed by its owner's registered key and is the grant
    /// in force in the cloud (not revoked, same image): an old delivery replayed cannot replace it.
    private func checkInForce(_ grant: ViewGrant) async throws {
        let owner: PeerRecord
        do {
            owner = try await cloud.verifiedPeer(grant.owner)
            try grant.verify(signedBy: owner.signingKey)
        } catch {
            throw ServiceError(.unauthorized, "the grant does not verify against '\(grant.owner)': \(error)")
        }
        let current = try await cloud.storedGrant(grant.id)
        guard let current, (try? current.verify(signedBy: owner.signingKey)) != nil, current.views > 0,
            current.digest == grant.digest
        else {
            throw ServiceError(.unauthorized, "the cloud holds no grant in force for this image (\(grant.id))")
        }
    }

    /// Whether `file` exists and is the image with `digest`.
    private static func holds(_ file: String, digest: [UInt8]) -> Bool {
        (try? SecureFiles.read(file)).map { Digests.sha256($0) == digest } ?? false
    }

    /// A numeric parameter from 0 to ``maxDeliveryBytes`` (nil when missing or out of range).
    private static func parameter(_ name: String, in params: [String]) -> Int? {
        params.first { $0.hasPrefix(name + "=") }.flatMap { Int($0.dropFirst(name.count + 1)) }.flatMap {
            (0...maxDeliveryBytes).contains($0) ? $0 : nil
        }
    }

    /// Registers `Deliver` on `endpoint`.
    public func registerDeliver(on endpoint: PeerEndpoint) {
        let sharing = self
        endpoint.services.register(
            RegisteredService(
                name: Self.deliverService,
                execution: .async { request in
                    ByteBuffer(bytes: try await sharing.receive(request.bytes, params: request.params))
                }))
    }
}

/// The progress callback stopped a transfer: not a failure of the address, so no other is tried.
private struct DeliveryStopped: Error {
    var reason: Error
}
