import Distri
import DistriCore
import DistriIdentity
import Foundation
import NIOCore

/// One delivery waiting in this peer's mailbox, as `MailboxList` lists it.
public struct MailboxListing: Sendable, Equatable {
    /// The entry's id, to fetch and remove it.
    public var id: String
    /// The peer that sent the image.
    public var sender: String
    /// The image's name.
    public var image: String
    /// SHA-256 of the sealed PNG, from the grant.
    public var digest: [UInt8]
    /// The sealed PNG's size in bytes.
    public var total: Int
    /// When the cloud drops it, in milliseconds since 1970.
    public var expiresAt: UInt64

    init?(_ value: JSONValue) {
        guard let object = value.objectValue, let id = object["id"]?.stringValue,
            let sender = object["sender"]?.stringValue, let image = object["image"]?.stringValue,
            let digest = object["digest"]?.stringValue.flatMap({ Hex.decode($0) }), digest.count == 32,
            let total = object["total"]?.wholeNumberValue, (1...UInt64(PeerSharing.maxDeliveryBytes)).contains(total),
            let expiresAt = object["expiresAt"]?.wholeNumberValue, (try? PeerName.validate(sender)) != nil,
            (try? PeerName.validate(image)) != nil
        else { return nil }
        self.id = id
        self.sender = sender
        self.image = image
        self.digest = digest
        self.total = Int(total)
        self.expiresAt = expiresAt
    }
}

/// The cloud's mailbox services (see `MailboxServices` in Distri): a remote refusal (`quotaExceeded`,
/// `unauthorized`, `badParams`, `tooLarge`, `notFound`) becomes a ``PeerError`` carrying the
/// cloud's message; a transport failure stays a `ClientError`.
extension PeerCloud {
    /// Most entries a `MailboxList` answer may hold here.
    static let maxMailboxListing = 10_000

    /// `MailboxPut`: a chunk of `grant`'s sealed image at `offset` of `total` bytes (an empty chunk
    /// probes); answers what the cloud holds.
    public func mailboxPut(grant: ViewGrant, chunk: [UInt8], offset: Int, total: Int, timeout: TimeAmount? = nil)
        async throws -> DeliverAnswer
    {
        let reply = try await Self.refusingClearly("the cloud's mailbox refused the deposit for '\(grant.recipient)'") {
            try await client.send(
                DeliverPayload(grant: grant, chunk: chunk).encoded(), service: MailboxServices.put,
                params: PeerSharing.deliverParams(offset: offset, total: total), timeout: timeout)
        }
        return try DeliverAnswer(reply, total: total)
    }

    /// `MailboxList`: the complete deliveries waiting for the peer that signed `proof`.
    public func mailboxList(proof: PeerProof) async throws -> [MailboxListing] {
        let reply = try await Self.refusingClearly("the cloud's mailbox refused the listing") {
            try await client.send(Self.body(proof), service: MailboxServices.list, params: [])
        }
        guard let entries = (try? JSONParser.parse(reply))?.objectValue?["entries"]?.arrayValue,
            entries.count <= Self.maxMailboxListing
        else { throw PeerError("the cloud's MailboxList answer is malformed") }
        return try entries.map {
            guard let listing = MailboxListing($0) else {
                throw PeerError("the cloud's MailboxList entry is malformed")
            }
            return listing
        }
    }

    /// `MailboxFetch`: the grant and the bytes of entry `id` from `offset`, as a `Deliver` body.
    public func mailboxFetch(proof: PeerProof, id: String, offset: Int) async throws -> [UInt8] {
        try await Self.refusingClearly("the cloud's mailbox refused to fetch \(id)") {
            try await client.send(
                Self.body(proof, ["id": .string(id), "offset": .number(Double(offset))]),
                service: MailboxServices.fetch, params: [])
        }
    }

    /// `MailboxRemove`: deletes entry `id`; false when it was gone already.
    @discardableResult
    public func mailboxRemove(proof: PeerProof, id: String) async throws -> Bool {
        let reply = try await Self.refusingClearly("the cloud's mailbox refused to remove \(id)") {
            try await client.send(Self.body(proof, ["id": .string(id)]), service: MailboxServices.remove, params: [])
        }
        guard case .bool(let removed)? = (try? JSONParser.parse(reply))?.objectValue?["removed"] else {
            throw PeerError("the cloud's MailboxRemove answer is malformed")
        }
        return removed
    }

    private static func body(_ proof: PeerProof, _ fields: [String: JSONValue] = [:]) -> [UInt8] {
        Array(JSONValue.object(fields.merging(["proof": .object(proof.document)]) { a, _ in a }).jsonText.utf8)
    }

    /// Runs `call`; a refusal by the cloud becomes a ``PeerError`` saying `what` and the cloud's reason.
    private static func refusingClearly<T>(_ what: String, _ call: () async throws -> T) async throws -> T {
        do {
            return try await call()
        } catch let error as ClientError
            where [.quotaExceeded, .unauthorized, .badParams, .tooLarge, .notFound].contains(error.remoteCode)
        {
            throw PeerError("\(what): \(error.message)")
        }
    }
}

/// The mailbox, for recipients that are offline: the sender deposits the sealed image with the cloud
/// (``depositInMailbox(_:grant:progress:)``), and the recipient collects it later
/// (``collectMailbox()``) through its own `Deliver` logic, so a collected image is checked exactly as
/// one sent straight to its daemon (grant in force, digest) before it takes its place.
extension PeerSharing {
    /// Bytes per `MailboxPut` and at most per `MailboxFetch`: the cloud's default largest chunk.
    public static let mailboxChunkBytes = 512 << 10

    /// Deposits `png` with the cloud for `grant`'s recipient, chunk by chunk from what the cloud
    /// already holds (a cut deposit resumes), reporting bytes held to `progress`. A refusal (a full
    /// mailbox, a grant not in force) throws a ``PeerError`` with the cloud's reason.
    public func depositInMailbox(_ png: [UInt8], grant: ViewGrant, progress: DeliveryProgress?) async throws {
        guard !png.isEmpty else { throw PeerError("an empty image is not deposited") }
        let chunkBytes = Self.mailboxChunkBytes
        var held = 0
        var chunk: ArraySlice<UInt8> = []
        // Bounded: every round either advances the offset or ends; the count is capped as well.
        for _ in 0..<(png.count / chunkBytes + 16) {
            let answer = try await cloud.mailboxPut(
                grant: grant, chunk: Array(chunk), offset: held, total: png.count, timeout: deliveryTimeout)
            try progress?(answer.have, png.count)
            if answer.done { return }
            held = answer.have
            chunk = png[held..<min(png.count, held + chunkBytes)]
        }
        throw PeerError("the deposit for '\(grant.recipient)' in the cloud's mailbox made no progress")
    }

    /// Collects every delivery waiting in this peer's mailbox: fetches each from the offset its partial
    /// file holds, hands the chunks to this peer's `Deliver` logic (which checks the grant is in force
    /// and, at the end, the digest), and removes the entry once the image is in place. An entry whose
    /// grant is no longer in force (revoked, or granted again for another image) is removed too, and
    /// listed in `failed` as dropped. Returns the images collected and, per entry that was not, why.
    public func collectMailbox() async throws -> (collected: Int, failed: [String]) {
        let entries = try await cloud.mailboxList(proof: try mailboxProof())
        var collected = 0
        var failed: [String] = []
        for entry in entries {
            do {
                try await collect(entry)
                collected += 1
            } catch {
                failed.append("\(entry.image) from \(entry.sender) (\(entry.id)): \(error)")
            }
        }
        return (collected, failed)
    }

    /// A fresh proof for the mailbox services (each call signs its own: a proof lasts minutes).
    private func mailboxProof() throws -> PeerProof {
        try PeerProof.make(name: identity.name, purpose: .mailbox, signing: identity.signing, now: wallClockMillis())
    }

    /// Fetches `entry` into place and removes it from the mailbox.
    private func collect(_ entry: MailboxListing) async throws {
        let file = identity.home.receivedFile(owner: entry.sender, image: entry.image)
        let partial = file + ".\(Hex.encode(entry.digest).prefix(16)).part"
        // Resume from what the partial file holds; a full one only needs its last byte again to end.
        var have = min(SecureFiles.size(partial) ?? 0, entry.total - 1)
        var stalled = 0
        // Bounded: a round that does not advance counts towards `stalled`, and rounds are capped.
        for _ in 0..<(entry.total / 1024 + 64) {
            let payload = try await cloud.mailboxFetch(proof: try mailboxProof(), id: entry.id, offset: have)
            let reply: [UInt8]
            do {
                reply = try await receive(payload, params: Self.deliverParams(offset: have, total: entry.total))
            } catch let error as ServiceError where error.code == .unauthorized {
                try await dropIfNotInForce(entry, reason: error.message)
                throw error
            }
            let answer = try DeliverAnswer(reply, total: entry.total)
            if answer.done {
                try await cloud.mailboxRemove(proof: try mailboxProof(), id: entry.id)
                return
            }
            stalled = answer.have > have ? 0 : stalled + 1
            guard stalled < 3 else { break }
            have = answer.have
        }
        throw PeerError("collecting \(entry.id) from the mailbox made no progress")
    }

    /// Removes `entry` from the mailbox when the cloud confirms its grant is no longer in force
    /// (nothing to deliver), then says so; otherwise returns and the entry waits for another try.
    private func dropIfNotInForce(_ entry: MailboxListing, reason: String) async throws {
        // `receive` also says `unauthorized` when the cloud could not be asked: check again here, and
        // keep the entry unless the cloud answers that the grant is gone.
        let grantID = ViewGrant.id(owner: entry.sender, image: entry.image, recipient: identity.name)
        let current = try await cloud.storedGrant(grantID)
        if let current, current.views > 0, current.digest == entry.digest { return }
        try await cloud.mailboxRemove(proof: try mailboxProof(), id: entry.id)
        throw PeerError("dropped from the mailbox, the grant is no longer in force (\(reason))")
    }
}
