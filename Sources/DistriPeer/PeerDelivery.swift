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
///   cloud; at the end the whole file must match the grant's digest (hashed as the chunks are
///   written, `IncomingDeliveries`) and the grant must still be in force (asked while the file is
///   synced), and only then does the image take its place (`received/OWNER/IMAGE.png`).
extension PeerSharing {
    /// Largest image a daemon accepts (written to disk chunk by chunk, and hashed as it is written).
    public static let maxDeliveryBytes = SecureFiles.maxSealedImageBytes

    /// The body of a `Deliver` call: `grant` and a `chunk` of the sealed PNG.
    public static func deliverPayload(grant: ViewGrant, png chunk: [UInt8]) throws -> [UInt8] {
        DeliverPayload(grant: grant, chunk: chunk).encoded()
    }

    /// The parameters of a `Deliver` call for a chunk at `offset` of an image of `total` bytes.
    public static func deliverParams(offset: Int, total: Int) -> [String] {
        DeliverParams.make(offset: offset, total: total)
    }

    // MARK: Sending

    /// Delivers `png` and its grant to the recipient by the first path that works: straight to its
    /// daemon at each address it published (unless its record says the cloud could not dial it),
    /// else through the cloud's relay to the link its daemon keeps (``deliverRelayed(_:grant:progress:)``);
    /// `record`: the recipient's, when it was read already.
    /// Either resumes whatever the recipient already holds. Throws when neither path works, or
    /// ``DeliveryStopped`` when `progress` stopped the transfer.
    func deliver(
        _ png: [UInt8], grant: ViewGrant, record recordGiven: PeerRecord? = nil, progress: DeliveryProgress?
    ) async throws -> DeliveryPath {
        let record: PeerRecord
        if let given = recordGiven {
            record = given
        } else {
            record = try await cloud.verifiedPeer(grant.recipient)
        }
        var failures: [String] = []
        if record.reachable == false {
            failures.append("direct: the cloud could not dial '\(grant.recipient)' (behind NAT or a firewall)")
        } else if record.addresses.isEmpty {
            failures.append("direct: '\(grant.recipient)' publishes no address")
        } else {
            do {
                return .direct(address: try await deliverDirect(png, grant: grant, record: record, progress: progress))
            } catch let error as DeliveryStopped {
                throw error
            } catch {
                failures.append("direct: \(error)")
            }
        }
        do {
            return .relayed(node: try await deliverRelayed(png, grant: grant, progress: progress))
        } catch let error as DeliveryStopped {
            throw error
        } catch {
            failures.append("relay: \(error)")
        }
        throw PeerError("'\(grant.recipient)' could not be reached (\(failures.joined(separator: "; ")))")
    }

    /// Delivers straight to the recipient's daemon at each address it published in turn; returns the
    /// address that took it.
    private func deliverDirect(_ png: [UInt8], grant: ViewGrant, record: PeerRecord, progress: DeliveryProgress?)
        async throws -> String
    {
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
            let body = DeliverBody(grant: grant)
            do {
                try await pump(png, grant: grant, window: deliveryWindow, progress: progress) { offset, chunk in
                    // To this address, run there: a large call to a cloud would first ask where to run.
                    let reply = try await client.call(
                        body.with(chunk), service: Self.deliverService,
                        params: Self.deliverParams(offset: offset, total: png.count), node: address,
                        timeout: deliveryTimeout, routing: .local
                    ).get()
                    return try DeliverAnswer(Array(buffer: reply), total: png.count)
                }
                await client.shutdown()
                return text
            } catch let error as DeliveryStopped {
                await client.shutdown()
                throw error
            } catch {
                await client.shutdown()
                failures.append("\(text): \(error)")
            }
        }
        throw PeerError("'\(grant.recipient)' did not answer (\(failures.joined(separator: "; ")))")
    }

    /// Delivers through the cloud: asks which node holds the recipient's relay link (`RelayLocate`),
    /// then sends the chunks there (`RelayDeliver`), which forwards them over the link. When that
    /// node fails or the link moves (the recipient's daemon attaches to another node), locates it
    /// again and resumes from what the recipient holds, a bounded number of times. Returns the node.
    func deliverRelayed(_ png: [UInt8], grant: ViewGrant, progress: DeliveryProgress?) async throws -> String {
        let client = cloud.client
        var failures: [String] = []
        // Bounded: at most `relayAttempts` locations, with a growing pause between them.
        for attempt in 0..<relayAttempts {
            if attempt > 0 { try await Task.sleep(for: .milliseconds(min(2000, 250 << attempt))) }
            let node: NodeAddress
            do {
                let reply = try await client.send(
                    [], service: RelayServices.relayLocate, params: ["to=\(grant.recipient)"])
                guard let located = NodeAddress(String(decoding: reply.prefix(300), as: UTF8.self)) else {
                    throw PeerError("the cloud's RelayLocate answer is not host:port")
                }
                node = located
            } catch let error as ClientError where error.remoteCode == .notFound {
                // Not connected: on the first try the recipient is offline; later, its daemon may be
                // moving to another node.
                if attempt == 0 { throw PeerError("'\(grant.recipient)' is offline (not connected to the cloud)") }
                failures.append("\(error.message)")
                continue
            }
            let body = DeliverBody(grant: grant)
            do {
                // Within the relay's quota of chunks in flight per sender, with room for a second transfer.
                try await pump(png, grant: grant, window: min(deliveryWindow, Self.relayWindow), progress: progress) {
                    offset, chunk in
                    let reply = try await client.call(
                        body.with(chunk), service: RelayServices.relayDeliver,
                        params: ["to=\(grant.recipient)"] + Self.deliverParams(offset: offset, total: png.count),
                        node: node, timeout: deliveryTimeout, routing: .local
                    ).get()
                    return try DeliverAnswer(Array(buffer: reply), total: png.count)
                }
                return node.description
            } catch let error as DeliveryStopped {
                throw error
            } catch let error as ClientError where Self.relayMoved(error) {
                failures.append("\(node): \(error)")
            }
        }
        throw PeerError("the relay to '\(grant.recipient)' failed (\(failures.joined(separator: "; ")))")
    }

    /// Most chunks of one relayed transfer in flight: half the relay's quota per sender
    /// (`RelayQuotas.Limits.chunksInFlightPerPeer`, 16), so two transfers of one sender fit.
    static let relayWindow = 8

    /// Whether a relayed chunk failed because its node or link went away (locate again), not
    /// because the recipient or a quota refused it.
    private static func relayMoved(_ error: ClientError) -> Bool {
        if error.kind == .remote { return [.notFound, .unavailable, .shuttingDown].contains(error.remoteCode) }
        return [.connectFailed, .connectionLost, .deadlineExceeded, .unresponsive, .noReachableNode].contains(
            error.kind)
    }

    /// Sends `png` in chunks through `send`, from the offset the recipient holds, keeping up to
    /// `window` chunks in flight, fewer on a slow path (the recipient puts them in order,
    /// see ``DeliveryOrder``).
    /// When a window ends short of what was sent (a chunk was refused), goes on from what the
    /// recipient holds.
    private func pump(
        _ png: [UInt8], grant: ViewGrant, window maxWindow: Int, progress: DeliveryProgress?,
        send: @escaping @Sendable (_ offset: Int, _ chunk: ArraySlice<UInt8>) async throws -> DeliverAnswer
    ) async throws {
        let total = png.count
        let chunkBytes = max(1, deliveryChunkBytes)
        let maxWindow = max(1, maxWindow)
        func report(_ answer: DeliverAnswer) throws {
            do {
                try progress?(answer.have, total)
            } catch {
                throw DeliveryStopped(reason: error)
            }
        }
        let probe = try await send(0, [])
        try report(probe)
        if probe.done { return }
        var have = probe.have
        // The window follows the path's speed: as many chunks as it carries in about 2 s (at least 2,
        // at most `deliveryWindow`), so that on a slow link a chunk's answer never waits long enough
        // behind the others to time out.
        let clock = ContinuousClock()
        let started = clock.now
        let startedAt = have
        func window(held: Int) -> Int {
            let seconds =
                Double((clock.now - started).components.attoseconds) / 1e18
                + Double((clock.now - started).components.seconds)
            // About 2 MiB until the rate is known.
            guard seconds > 0.05, held > startedAt else { return min(maxWindow, max(2, (2 << 20) / chunkBytes)) }
            let rate = Double(held - startedAt) / seconds
            return max(min(2, maxWindow), min(maxWindow, Int(rate * 2 / Double(chunkBytes)) + 1))
        }
        // Bounded: each round sends at most the image once and either advances `have` or counts a stall.
        var stalls = 0
        while stalls < 3 {
            let start = have
            let answers = try await withThrowingTaskGroup(of: DeliverAnswer.self) { group in
                var next = start
                var inFlight = 0
                var held = start
                var answers: [DeliverAnswer] = []
                // Bounded: every chunk is sent once per round, and the round ends with the image.
                while next < total || inFlight > 0 {
                    while inFlight < window(held: held), next < total {
                        let offset = next
                        let end = min(total, offset + chunkBytes)
                        let chunk = png[offset..<end]
                        group.addTask { try await send(offset, chunk) }
                        next = end
                        inFlight += 1
                    }
                    guard let answer = try await group.next() else { break }
                    inFlight -= 1
                    try report(answer)
                    answers.append(answer)
                    held = max(held, answer.have)
                    if answer.done {
                        group.cancelAll()
                        break
                    }
                }
                return answers
            }
            if answers.contains(where: \.done) { return }
            let reached = answers.map(\.have).max() ?? have
            stalls = reached > have ? 0 : stalls + 1
            have = max(have, reached)
        }
        throw PeerError("the transfer to '\(grant.recipient)' made no progress")
    }

    // MARK: Receiving

    /// The daemon's `Deliver` for a body given as bytes (a chunk collected from the mailbox).
    func receive(_ bytes: [UInt8], params: [String], order: DeliveryOrder? = nil) async throws -> [UInt8] {
        try await receive(ByteBuffer(bytes: bytes), params: params, order: order).encoded()
    }

    /// The daemon's `Deliver`: keeps a chunk of a sealed image (see the type's notes) and answers how
    /// much it holds. The chunk is written from the request's own buffer and hashed as it is written
    /// (`IncomingDeliveries`); the whole file's digest is checked at the end without reading it back.
    func receive(_ body: ByteBuffer, params: [String], order: DeliveryOrder?) async throws -> DeliverAnswer {
        let (grant, chunk): (DeliveryTicket, ByteBuffer)
        do {
            (grant, chunk) = try DeliverPayload.split(body)
        } catch {
            throw ServiceError.badParams("\(error)")
        }
        guard let offset = DeliverParams.value("offset", in: params, max: Self.maxDeliveryBytes),
            let total = DeliverParams.value("total", in: params, max: Self.maxDeliveryBytes),
            (1...Self.maxDeliveryBytes).contains(total), chunk.readableBytes <= total,
            offset <= total - chunk.readableBytes
        else {
            throw ServiceError.badParams(
                "Deliver needs offset=O and total=T (1 to \(Self.maxDeliveryBytes) bytes) with the chunk inside")
        }
        guard grant.recipient == identity.name else {
            throw ServiceError(.unauthorized, "this is '\(identity.name)', not '\(grant.recipient)'")
        }
        let file = identity.home.receivedFile(owner: grant.owner, image: grant.image)
        let partial = file + ".\(Hex.encode(grant.digest).prefix(16)).part"
        // One lock for the home's deliveries, never removed (a lock file per transfer would pile up,
        // and removing one would let a waiter and a newcomer lock different files). Taken to start a
        // transfer, to append each chunk (through the transfer held open) and to put the file in place.
        let lock = (identity.home.receivedDirectory as NSString).appendingPathComponent(".deliveries.lock")
        let completedMeanwhile = {
            DeliverAnswer(have: Self.holds(file, digest: grant.digest) ? total : 0, done: false)
        }
        // Bounded: a transfer closed meanwhile (too many open) is opened again once.
        for _ in 0..<2 {
            var transfer = try incoming.open(partial)
            if transfer == nil {
                try await checkInForce(grant)
                if Self.holds(file, digest: grant.digest) { return DeliverAnswer(have: total, done: true) }
                try SecureFiles.makeDirectory(identity.home.receivedDirectory)
                try SecureFiles.makeDirectory((file as NSString).deletingLastPathComponent)
                try SecureFiles.withLock(lock) {
                    // A transfer of another version of this image is superseded: its partial file goes.
                    Self.removeSuperseded(of: file, keeping: partial)
                    if !SecureFiles.exists(partial) { try SecureFiles.append([], to: partial, sync: false) }
                }
                transfer = try incoming.open(partial)
            }
            guard let transfer else {
                let answer = completedMeanwhile()
                return answer.have == total ? DeliverAnswer(have: total, done: true) : answer
            }
            // A chunk ahead of what is held waits for the chunks before it (sent in the same window).
            if let order {
                let current = transfer.held
                if offset > current { await order.waitTurn(partial, offset: offset, current: current) }
            }
            let have: Int
            switch try incoming.append(transfer, offset: offset, chunk: chunk, total: total, lock: lock) {
            case .held(let held): have = held
            case .closed: continue
            case .gone:
                let answer = completedMeanwhile()
                return answer.have == total ? DeliverAnswer(have: total, done: true) : answer
            }
            order?.appended(partial, have: have)
            guard have >= total else { return DeliverAnswer(have: have, done: false) }
            return try await finish(transfer, grant: grant, file: file, lock: lock, total: total, order: order)
        }
        return DeliverAnswer(have: (try incoming.open(partial))?.held ?? 0, done: false)
    }

    /// Ends a transfer that holds all `total` bytes: its digest (hashed as it arrived) must be the
    /// grant's, and the grant still in force (asked of the cloud while the file is synced); then the
    /// file takes its place. A call that finds another finishing it waits for that one.
    private func finish(
        _ transfer: IncomingDeliveries.Transfer, grant: DeliveryTicket, file: String, lock: String, total: Int,
        order: DeliveryOrder?
    ) async throws -> DeliverAnswer {
        let partial = transfer.partial
        // Bounded: a call waits at most once for another that is finishing, then looks again.
        for _ in 0..<2 {
            // The grant check runs on the cloud while the digest is compared and the file synced here.
            async let inForce: Void = checkInForce(grant)
            switch incoming.seal(transfer, total: total, digest: grant.digest) {
            case .mismatch:
                _ = try? await inForce
                try? SecureFiles.withLock(lock) { try? FileManager.default.removeItem(atPath: partial) }
                incoming.finished(transfer)
                order?.finished(partial)
                throw ServiceError.badParams("the image does not match the grant's digest; send it again")
            case .finishing:
                _ = try? await inForce
                await incoming.waitFinished(transfer)
                continue
            case .gone:
                _ = try? await inForce
                guard Self.holds(file, digest: grant.digest) else {
                    throw ServiceError(.conflict, "the transfer was discarded meanwhile; send it again")
                }
                return DeliverAnswer(have: total, done: true)
            case .ready:
                do {
                    try await inForce
                    try SecureFiles.withLock(lock) {
                        guard SecureFiles.exists(partial) else {
                            throw ServiceError(.conflict, "the transfer was discarded meanwhile; send it again")
                        }
                        guard rename(partial, file) == 0 else { throw PeerError("cannot move \(partial) to \(file)") }
                    }
                } catch {
                    incoming.failed(transfer)
                    throw error
                }
                incoming.finished(transfer)
                order?.finished(partial)
                onReceive?(ReceivedImage(owner: grant.owner, image: grant.image, file: file, bytes: total))
                return DeliverAnswer(have: total, done: true)
            }
        }
        guard Self.holds(file, digest: grant.digest) else {
            throw ServiceError(.conflict, "the transfer is being finished by another call; send it again")
        }
        return DeliverAnswer(have: total, done: true)
    }

    /// Throws `unauthorized` unless the grant in force in the cloud, signed by its owner's registered
    /// key, is the one `ticket` delivers under (not revoked, the same image): an old delivery
    /// replayed cannot replace it.
    private func checkInForce(_ ticket: DeliveryTicket) async throws {
        // Both reads at once: each is a majority read, a round trip to the cloud and one among its nodes.
        async let stored = cloud.storedGrant(ticket.id)
        let owner: PeerRecord
        do {
            owner = try await cloud.verifiedPeer(ticket.owner)
        } catch {
            _ = try? await stored
            throw ServiceError(.unauthorized, "'\(ticket.owner)' is not a registered peer: \(error)")
        }
        do {
            try ticket.check(inForce: try await stored, ownerKey: owner.signingKey)
        } catch let error as IdentityError {
            throw ServiceError(.unauthorized, "\(error)")
        }
    }

    /// Removes the partial files of other versions of `file` (and the per-transfer lock files earlier
    /// versions left), keeping `partial`.
    private static func removeSuperseded(of file: String, keeping partial: String) {
        let directory = (file as NSString).deletingLastPathComponent
        let prefix = (file as NSString).lastPathComponent + "."
        let keep = (partial as NSString).lastPathComponent
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        where name.hasPrefix(prefix) && name != keep && (name.hasSuffix(".part") || name.hasSuffix(".part.lock")) {
            try? FileManager.default.removeItem(atPath: (directory as NSString).appendingPathComponent(name))
        }
    }

    /// Whether `file` exists and is the image with `digest`.
    private static func holds(_ file: String, digest: [UInt8]) -> Bool {
        SecureFiles.exists(file) && Digests.sha256(fileAt: file) == digest
    }

    /// Registers `Deliver` on `endpoint`.
    public func registerDeliver(on endpoint: PeerEndpoint) {
        let sharing = self
        let order = DeliveryOrder()
        endpoint.services.register(
            RegisteredService(
                name: Self.deliverService,
                execution: .async { request in
                    ByteBuffer(
                        bytes: try await sharing.receive(request.data, params: request.params, order: order).encoded())
                }))
    }
}

/// How a delivery reached its recipient.
public enum DeliveryPath: Sendable, Equatable, CustomStringConvertible {
    /// Straight to the recipient's daemon at this address.
    case direct(address: String)
    /// Through the cloud's relay, at this node.
    case relayed(node: String)

    public var description: String {
        switch self {
        case .direct(let address): "directly to \(address)"
        case .relayed(let node): "through the cloud's relay (node \(node))"
        }
    }
}

/// The progress callback stopped a transfer: not a failure of the path, so no other is tried.
struct DeliveryStopped: Error {
    var reason: Error
}

/// A `Deliver` body's ticket, encoded once per transfer; each chunk's body is it and the chunk in one
/// buffer (the chunk copied once, from the image into the request).
struct DeliverBody: Sendable {
    let prefix: [UInt8]

    init(grant: ViewGrant) {
        prefix = DeliverPayload(grant: grant, chunk: []).encoded()
    }

    /// The body carrying `chunk`.
    func with(_ chunk: ArraySlice<UInt8>) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: prefix.count + chunk.count)
        buffer.writeBytes(prefix)
        buffer.writeBytes(chunk)
        return buffer
    }
}
