import Distri
import DistriCore
import DistriIdentity
import DistriImaging
import Foundation
import NIOCore

extension PeerCloud {
    /// The cloud's deposit public key (X25519, raw).
    public func depositKey() async throws -> [UInt8] {
        let reply = try await client.send([], service: ViewServices.cloudKey, params: [])
        guard let key = Hex.decode(String(decoding: reply.prefix(128), as: UTF8.self)), key.count == 32 else {
            throw PeerError("the cloud's CloudKey answer is not a 32-byte hex key")
        }
        try AgreementKeyPair.validatePublicKey(key)
        return key
    }

    /// Sends `grant` to `GrantView`.
    public func grant(_ grant: ViewGrant) async throws {
        _ = try await client.send(
            Array(JSONValue.object(grant.document).jsonText.utf8), service: ViewServices.grantView, params: [])
    }

    /// Sends `request` to `ConsumeView`: the released key (sealed to the recipient) and what is left.
    public func consume(_ request: ViewRequest) async throws -> ReleasedKey {
        let reply = try await client.send(
            Array(JSONValue.object(request.document).jsonText.utf8), service: ViewServices.consumeView, params: [])
        guard let object = (try? JSONParser.parse(reply))?.objectValue,
            let key = object["key"]?.stringValue.flatMap({ Hex.decode($0) }),
            let digest = object["digest"]?.stringValue.flatMap({ Hex.decode($0) }),
            let remaining = object["remaining"]?.wholeNumberValue, let views = object["views"]?.wholeNumberValue
        else { throw PeerError("the cloud's ConsumeView answer is malformed") }
        return ReleasedKey(
            sealedKey: key, digest: digest, remaining: remaining, views: views)
    }

    /// One document read at majority (nil when it or its collection does not exist).
    public func document(_ id: String, in collection: String) async throws -> [String: JSONValue]? {
        let database = DocumentDatabase(client: client, readConsistency: .majority)
        do {
            return try await database.read(collection, filter: ["_id": .string(id)], limit: 1).documents.first?.body
        } catch let error as ClientError where error.remoteCode == .notFound {
            return nil
        }
    }

    /// The grant stored as `permissions/<id>` (nil when there is none or it does not parse; its
    /// signature is not checked here).
    public func storedGrant(_ id: String) async throws -> ViewGrant? {
        try await document(id, in: ViewGrant.collection).flatMap {
            try? ViewGrant(document: $0.merging(["_id": .string(id)]) { a, _ in a })
        }
    }

    /// `name`'s record from `users`, checked against its own signature.
    public func verifiedPeer(_ name: String) async throws -> PeerRecord {
        guard let document = try await document(name, in: PeerRecord.collection) else {
            throw PeerError("'\(name)' is not a registered peer", kind: .notFound)
        }
        let record = try PeerRecord(document: document.merging(["_id": .string(name)]) { a, _ in a })
        try record.verify()
        return record
    }
}

/// What `ConsumeView` released.
public struct ReleasedKey: Sendable, Equatable {
    /// The image key sealed to the recipient's agreement key.
    public var sealedKey: [UInt8]
    /// SHA-256 of the sealed PNG, from the owner's signed grant.
    public var digest: [UInt8]
    /// Views left after this one.
    public var remaining: UInt64
    /// Views the grant gave.
    public var views: UInt64
}

/// Sending sealed images to other peers with a number of views, and viewing what others sent.
///
/// - ``PeerSharing/send(image:to:views:progress:)``: deposits the image key with the cloud in a grant the owner signs
///   (`GrantView`), then delivers the sealed PNG and the grant to the recipient's daemon (`Deliver`):
///   straight to its address, else through the cloud's relay to the link its daemon keeps; when the
///   recipient is offline, the sealed image goes to the cloud's mailbox, which its daemon collects
///   when it comes back. Only when the mailbox refuses it too (full) does the delivery wait in the
///   outbox, which this peer's daemon retries every refresh.
/// - ``view(image:from:)``: asks the cloud for one view (`ConsumeView`), opens the released key with
///   this peer's agreement key, checks the received file against the grant's digest and decrypts it.
///   When the cloud says no views are left, or the grant was revoked, the local copy is removed.
public struct PeerSharing: Sendable {
    /// The service a peer's daemon serves deliveries on.
    public static let deliverService = "Deliver"
    /// Most sends kept in the outbox.
    public static let maxOutbox = 1000

    /// The peer that sends and views.
    public let identity: PeerIdentity
    /// The cloud it grants, delivers and views through.
    public let cloud: PeerCloud
    /// How long one call of a delivery (one chunk) may take.
    public var deliveryTimeout: TimeAmount = .seconds(10)
    /// Bytes per `Deliver` call: an image travels in chunks, so a cut transfer resumes where it stopped.
    /// The default (``frameChunkBytes``) fills one wire frame with the call's header and ticket.
    public var deliveryChunkBytes = PeerSharing.frameChunkBytes
    /// A chunk that travels in one frame of the wire protocol (`WireLimits.chunkSize`, less room for
    /// the call's header and the ticket): the chunks in flight then travel one after another, not cut
    /// into frames interleaved with each other (so the first arrives after one chunk's time, not after
    /// the whole window's), and each arrives whole in the buffer it was read into.
    public static let frameChunkBytes = WireLimits.standard.chunkSize - (4 << 10)
    /// Chunks in flight at once: a window of several keeps a link busy across its round trip (through
    /// the cloud's relay, at most 8).
    public var deliveryWindow = 16
    /// Called once for every image that takes its place in this peer's `received/` (delivered
    /// directly, through the relay, or collected from the mailbox).
    public var onReceive: (@Sendable (ReceivedImage) -> Void)?
    /// Whether a send the recipient cannot take now goes to the cloud's mailbox (else to the outbox).
    public var usesMailbox = true
    /// How many times a relayed delivery locates the recipient's relay link (again after the node
    /// relaying it failed) before it gives up.
    public var relayAttempts = 10
    /// The transfers this peer is receiving (its daemon's `Deliver` and mailbox collection).
    let incoming = IncomingDeliveries()

    /// Sharing for `identity`, through `cloud`.
    public init(identity: PeerIdentity, cloud: PeerCloud) {
        self.identity = identity
        self.cloud = cloud
    }

    // MARK: Granting

    /// Signs and records a grant of `views` views of this peer's image `image` to `recipient` (0
    /// revokes), with the image key deposited for the cloud. Returns the grant.
    @discardableResult
    public func grant(image: String, to recipient: String, views: UInt64) async throws -> ViewGrant {
        try await grant(image: image, to: recipient, views: views, png: nil)
    }

    /// ``grant(image:to:views:)`` for the sealed image's bytes when they were read already (else its
    /// file is hashed). The cloud's deposit key and the grant stored before are asked for while the
    /// image is hashed.
    func grant(image: String, to recipient: String, views: UInt64, png: [UInt8]?) async throws -> ViewGrant {
        try PeerName.validate(image, what: "image name")
        try PeerName.validate(recipient, what: "recipient")
        let home = identity.home
        guard SecureFiles.exists(home.imageFile(image)), SecureFiles.exists(home.keyFile(image)) else {
            throw PeerError(
                "no image named '\(image)' in \(home.path); encrypt it first (distri-peer encrypt)", kind: .notFound)
        }
        let id = ViewGrant.id(owner: identity.name, image: image, recipient: recipient)
        async let depositKey = views > 0 ? cloud.depositKey() : []
        async let stored = cloud.storedGrant(id)
        let digest: [UInt8]
        do {
            guard let found = png.map({ Digests.sha256($0) }) ?? Digests.sha256(fileAt: home.imageFile(image)) else {
                throw PeerError("cannot read \(home.imageFile(image))")
            }
            digest = found
        } catch {
            _ = try? await (depositKey, stored)
            throw error
        }
        var sealedKey: [UInt8] = []
        if views > 0 {
            let keyText = String(decoding: try SecureFiles.read(home.keyFile(image), private: true), as: UTF8.self)
            let key = try ImageKey(text: keyText.trimmingCharacters(in: .whitespacesAndNewlines))
            sealedKey = try SealedBox.seal(
                key.serialized(), to: try await depositKey, domain: ViewGrant.depositDomain, context: Array(id.utf8))
        }
        let previous = try await stored?.sequence ?? 0
        let grant = try ViewGrant(
            owner: identity.name, image: image, recipient: recipient, views: views, digest: digest,
            sealedKey: sealedKey, sequence: max(wallClockMillis(), previous + 1)
        ).signed(by: identity.signing)
        try await cloud.grant(grant)
        return grant
    }

    // MARK: Sending

    /// What ``PeerSharing/send(image:to:views:progress:)`` did.
    public enum SendOutcome: Sendable, Equatable {
        /// Delivered, directly or through the cloud's relay.
        case delivered(DeliveryPath)
        /// The recipient was offline: the sealed image waits in the cloud's mailbox until the
        /// recipient's daemon collects it (this peer need not stay online).
        case leftInMailbox(reason: String)
        /// Neither the recipient nor the cloud's mailbox took it; the delivery waits in the outbox.
        case queued(reason: String)

        /// `delivered`, `mailbox` or `queued`.
        public var status: String {
            switch self {
            case .delivered: "delivered"
            case .leftInMailbox: "mailbox"
            case .queued: "queued"
            }
        }
    }

    /// Grants `views` views of `image` to `recipient`, then delivers the sealed image to it (or queues
    /// it), reporting bytes the recipient holds to `progress`.
    public func send(image: String, to recipient: String, views: UInt64, progress: DeliveryProgress? = nil)
        async throws -> SendOutcome
    {
        guard views > 0 else { throw PeerError("send at least one view (revoke with `permissions --views 0`)") }
        try PeerName.validate(image, what: "image name")
        // The recipient's record is read while the image is read, hashed and granted; it must be a
        // registered peer before anything is granted.
        async let record = cloud.verifiedPeer(recipient)
        let png: [UInt8]
        do {
            png = try SecureFiles.read(identity.home.imageFile(image), limit: SecureFiles.maxSealedImageBytes)
        } catch {
            _ = try? await record
            throw SecureFiles.exists(identity.home.imageFile(image))
                ? error
                : PeerError(
                    "no image named '\(image)' in \(identity.home.path); encrypt it first (distri-peer encrypt)",
                    kind: .notFound)
        }
        let recipientRecord = try await record
        let grant = try await grant(image: image, to: recipient, views: views, png: png)
        return try await deliver(png, granted: grant, record: recipientRecord, progress: progress)
    }

    /// Delivers the image of `grant` (a grant of views this peer just made) as ``send(image:to:views:progress:)``
    /// does: directly, through the relay, into the mailbox, else into the outbox. A recipient that holds
    /// the image already answers at once, so this also re-sends an image a revoke removed.
    public func deliver(granted grant: ViewGrant, progress: DeliveryProgress? = nil) async throws -> SendOutcome {
        let png = try SecureFiles.read(identity.home.imageFile(grant.image), limit: SecureFiles.maxSealedImageBytes)
        return try await deliver(png, granted: grant, record: nil, progress: progress)
    }

    /// ``deliver(granted:progress:)`` of the sealed image's bytes `png`, to the recipient whose
    /// `record` was read already (nil: it is read here).
    func deliver(_ png: [UInt8], granted grant: ViewGrant, record: PeerRecord?, progress: DeliveryProgress?)
        async throws -> SendOutcome
    {
        do {
            let outcome = try await deliverOrDeposit(png, grant: grant, record: record, progress: progress)
            try? SentLedger(file: identity.home.sentFile).record(grant, outcome: outcome, at: wallClockMillis())
            return outcome
        } catch {
            try Outbox(file: identity.home.outboxFile).add(
                OutboxEntry(grant: grant, queuedAt: wallClockMillis(), lastError: "\(error)"))
            return .queued(reason: "\(error)")
        }
    }

    /// Delivers directly or through the relay (``deliver(_:grant:record:progress:)``); when the recipient
    /// cannot be reached either way, deposits the image in the cloud's mailbox (when
    /// ``usesMailbox``). Throws when none took it, or with `progress`'s error when it stopped the
    /// transfer (no other path is tried then).
    func deliverOrDeposit(
        _ png: [UInt8], grant: ViewGrant, record: PeerRecord? = nil, progress: DeliveryProgress?
    ) async throws -> SendOutcome {
        let unreachable: Error
        do {
            return .delivered(try await deliver(png, grant: grant, record: record, progress: progress))
        } catch let error as DeliveryStopped {
            throw error.reason
        } catch {
            unreachable = error
        }
        guard usesMailbox else { throw unreachable }
        do {
            try await depositInMailbox(png, grant: grant, progress: progress)
        } catch {
            throw PeerError("\(unreachable); the cloud's mailbox did not take it either: \(error)")
        }
        return .leftInMailbox(reason: "\(unreachable)")
    }

    /// Tries every queued delivery once; keeps those that fail. Returns how many were delivered and
    /// how many wait.
    @discardableResult
    public func deliverOutbox(progress: DeliveryProgress? = nil) async throws -> (delivered: Int, waiting: Int) {
        let outbox = Outbox(file: identity.home.outboxFile)
        var delivered = 0
        for entry in try outbox.entries() {
            let current: String?
            do {
                let inForce = try await cloud.storedGrant(entry.grant.id)
                guard let inForce, inForce.views > 0, inForce.digest == entry.grant.digest else {
                    // Revoked, or granted again for another image since: nothing to deliver.
                    try outbox.remove(entry.grant.id, sequence: entry.grant.sequence)
                    continue
                }
                let png = try SecureFiles.read(
                    identity.home.imageFile(entry.grant.image), limit: SecureFiles.maxSealedImageBytes)
                guard Digests.sha256(png) == entry.grant.digest else {
                    // The image was encrypted again since: this send's grant no longer matches it.
                    try outbox.remove(entry.grant.id, sequence: entry.grant.sequence)
                    continue
                }
                let outcome = try await deliverOrDeposit(png, grant: entry.grant, progress: progress)
                try? SentLedger(file: identity.home.sentFile).record(
                    entry.grant, outcome: outcome, at: wallClockMillis())
                current = nil
            } catch {
                current = "\(error)"
            }
            if let current {
                try outbox.update(entry.grant.id, sequence: entry.grant.sequence, lastError: current)
            } else {
                try outbox.remove(entry.grant.id, sequence: entry.grant.sequence)
                delivered += 1
            }
        }
        return (delivered, try outbox.entries().count)
    }

    /// The queued sends.
    public func outbox() throws -> [OutboxEntry] {
        try Self.outbox(in: identity.home)
    }

    /// The sends queued in `home` (no cloud needed).
    public static func outbox(in home: PeerHome) throws -> [OutboxEntry] {
        try Outbox(file: home.outboxFile).entries()
    }

    // MARK: Viewing

    /// One view of `image` from `owner`.
    public struct Viewed: Sendable {
        /// The original bytes (an image or any file); empty when they are in ``file``.
        public var image: [UInt8]
        /// A temporary 0600 file holding the original bytes, for a large one (opened a row at a time):
        /// the caller moves it where it goes or removes it.
        public var file: String?
        /// What they are: kind, media type, the original file name.
        public var kind: SealedContent.Kind
        /// The original's media type.
        public var mediaType: String
        /// The original's file name.
        public var fileName: String
        /// Views left after this one.
        public var remaining: UInt64
        /// Views the grant gave.
        public var views: UInt64
        /// The image's width in pixels (0 for a file that is not an image).
        public var width: Int
        /// The image's height in pixels (0 for a file that is not an image).
        public var height: Int
        /// The original's size in bytes.
        public var bytes: Int

        /// A view with the given fields.
        public init(
            image: [UInt8], file: String?, kind: SealedContent.Kind, mediaType: String, fileName: String,
            remaining: UInt64, views: UInt64, width: Int, height: Int, bytes: Int? = nil
        ) {
            self.image = image
            self.file = file
            self.kind = kind
            self.mediaType = mediaType
            self.fileName = fileName
            self.remaining = remaining
            self.views = views
            self.width = width
            self.height = height
            self.bytes = bytes ?? image.count
        }

        /// The original bytes, from memory or from ``file``.
        public func contents() throws -> [UInt8] {
            guard let file else { return image }
            return try SecureFiles.read(file, private: true)
        }
    }

    /// Consumes one view of the image `owner` sent and returns it decrypted. When the cloud refuses
    /// because no views are left or the grant was revoked, removes the local copy.
    public func view(image: String, from owner: String) async throws -> Viewed {
        try PeerName.validate(image, what: "image name")
        try PeerName.validate(owner, what: "owner")
        let file = identity.home.receivedFile(owner: owner, image: image)
        guard SecureFiles.exists(file) else { throw try await notHere(image: image, from: owner) }
        let large = (SecureFiles.size(file) ?? 0) > Self.inMemoryViewLimit
        let png = large ? [] : try SecureFiles.read(file)
        guard let digest = large ? Digests.sha256(fileAt: file) : Digests.sha256(png) else {
            throw PeerError("cannot read \(file)")
        }
        let id = ViewGrant.id(owner: owner, image: image, recipient: identity.name)
        // The local copy must be what the grant in force names before a view is spent on it.
        if let inForce = try await cloud.storedGrant(id), inForce.views > 0, inForce.digest != digest {
            throw PeerError(
                "\(file) is not the image '\(owner)' granted now (digest differs): ask \(owner) to send it again (no view was used)",
                kind: .refused)
        }
        var request: ViewRequest
        var released: ReleasedKey?
        var attempt = 0
        // Bounded: a request that lost to another view of this peer's (its sequence went stale) is
        // signed again with a fresh sequence, at most three times.
        repeat {
            attempt += 1
            let stored = try await cloud.document(id, in: ViewGrant.collection)
            let lastRequest = stored.flatMap { $0["lastRequest"]?.wholeNumberValue } ?? 0
            request = try ViewRequest(
                owner: owner, image: image, recipient: identity.name, sequence: max(wallClockMillis(), lastRequest + 1)
            ).signed(by: identity.signing)
            released = try await consume(request, file: file, grant: id, retryStale: attempt < 3)
        } while released == nil
        guard let released else { throw PeerError("the cloud did not release the key") }
        guard released.digest == digest else {
            throw PeerError("\(file) is not the image '\(owner)' granted (digest differs)")
        }
        let key = try ImageKey(
            serialized: try SealedBox.open(
                released.sealedKey, with: identity.agreement, domain: ViewGrant.releaseDomain,
                context: request.releaseContext))
        if large { return try openToFile(file, key: key, image: image, released: released) }
        let content = try ImageSealer.open(png: png, key: key, limits: PeerImages.coverLimits)
        var size = (width: 0, height: 0)
        switch content.kind {
        case .png: if let found = try? PNGStructure.check(content.bytes) { size = found }
        case .jpeg:
            if let info = try? JPEGStructure.check(content.bytes) {
                // As a viewer shows it: turned by its EXIF orientation.
                size = info.orientation >= 5 ? (info.height, info.width) : (info.width, info.height)
            }
        case .file: break
        }
        return Viewed(
            image: content.bytes, file: nil, kind: content.kind, mediaType: content.mediaType,
            fileName: content.fileName(fallback: image), remaining: released.remaining, views: released.views,
            width: size.width, height: size.height)
    }

    /// Received files above this are opened a row at a time into a temporary file, not in memory.
    public static let inMemoryViewLimit = 64 << 20

    /// Opens the received cover `file` with `key` a row at a time (``DistriImaging/StreamExtractor``)
    /// into a temporary 0600 file in the home (`opened/`), which the caller moves or removes.
    private func openToFile(_ file: String, key: ImageKey, image: String, released: ReleasedKey) throws -> Viewed {
        let directory = identity.home.openedDirectory
        try SecureFiles.makeDirectory(directory)
        let target = (directory as NSString).appendingPathComponent(UUID().uuidString)
        var head: [UInt8] = []
        var header: (kind: SealedContent.Kind, name: String, mediaType: String)?
        var written = 0
        do {
            try StreamExtractor.open(path: file, key: key, limits: PeerImages.streamedCoverLimits) { plaintext in
                var bytes = plaintext
                if header == nil {
                    head += plaintext
                    // The envelope's header is at most 392 bytes: a whole first chunk holds it.
                    if let found = try SealedContent.header(of: head) {
                        header = (found.kind, found.name, found.mediaType)
                        bytes = Array(head[found.start...])
                    } else {
                        header = (.png, "", "image/png")
                        bytes = head
                    }
                    head = []
                }
                try SecureFiles.append(bytes, to: target, sync: false)
                written += bytes.count
            }
        } catch ImagingError.unsupportedVersion(1) where written == 0 {
            // A cover of the permuted layout (sealed in one call) opens whole, in memory.
            try? FileManager.default.removeItem(atPath: target)
            let content = try ImageSealer.open(
                png: try SecureFiles.read(file, limit: SecureFiles.maxSealedImageBytes), key: key,
                limits: PeerImages.coverLimits)
            return Viewed(
                image: content.bytes, file: nil, kind: content.kind, mediaType: content.mediaType,
                fileName: content.fileName(fallback: image), remaining: released.remaining, views: released.views,
                width: 0, height: 0)
        } catch {
            try? FileManager.default.removeItem(atPath: target)
            throw error
        }
        guard let header else { throw PeerError("\(file) opened to nothing") }
        let content = SealedContent(kind: header.kind, name: header.name, mediaType: header.mediaType, bytes: [])
        return Viewed(
            image: [], file: target, kind: header.kind, mediaType: header.mediaType,
            fileName: content.fileName(fallback: image), remaining: released.remaining, views: released.views,
            width: 0, height: 0, bytes: written)
    }

    /// `ConsumeView` for `request`; nil when its sequence went stale and `retryStale`. Removes the
    /// local copy `file` when the cloud refuses because no views are left or the grant was revoked.
    private func consume(_ request: ViewRequest, file: String, grant id: String, retryStale: Bool) async throws
        -> ReleasedKey?
    {
        let (owner, image) = (request.owner, request.image)
        do {
            return try await cloud.consume(request)
        } catch let error as ClientError where error.remoteCode == .conflict && retryStale {
            return nil
        } catch let error as ClientError where error.remoteCode == .unauthorized {
            guard let current = try await cloud.document(id, in: ViewGrant.collection) else {
                throw PeerError(
                    "the cloud refused to open '\(image)': '\(owner)' has granted '\(identity.name)' no views of it",
                    kind: .refused)
            }
            let remaining = current["remaining"]?.numberValue ?? 0
            let views = current["views"]?.numberValue ?? 0
            if remaining <= 0 || views <= 0 {
                try? FileManager.default.removeItem(atPath: file)
                let why = views <= 0 ? "'\(owner)' revoked it" : "no views left"
                throw PeerError(
                    "\(why): the cloud refused to open '\(image)' from '\(owner)'; local copy removed", kind: .refused)
            }
            throw PeerError("the cloud refused to open '\(image)' from '\(owner)': \(error.message)", kind: .refused)
        }
    }

    /// Why `image` from `owner` is not in `received/`, as the grant in force says: never granted,
    /// revoked, no views left, or not arrived yet.
    private func notHere(image: String, from owner: String) async throws -> PeerError {
        let id = ViewGrant.id(owner: owner, image: image, recipient: identity.name)
        guard let current = try await cloud.document(id, in: ViewGrant.collection) else {
            return PeerError("'\(owner)' has granted '\(identity.name)' no views of '\(image)'", kind: .notFound)
        }
        if (current["views"]?.numberValue ?? 0) <= 0 {
            return PeerError("'\(owner)' revoked '\(identity.name)''s views of '\(image)'", kind: .refused)
        }
        if (current["remaining"]?.numberValue ?? 0) <= 0 {
            return PeerError("no views left of '\(image)' from '\(owner)'", kind: .refused)
        }
        return PeerError(
            "'\(image)' from '\(owner)' has not arrived yet: it waits in the cloud's mailbox or in \(owner)'s outbox "
                + "(`distri-peer serve` collects it; `distri-peer inbox` shows its state)", kind: .notFound)
    }
}

/// An image that arrived: who sent it, its name, where it is kept and its size.
public struct ReceivedImage: Sendable, Equatable {
    /// The peer that sent it, the image's owner.
    public var owner: String
    /// The image's name.
    public var image: String
    /// Where the sealed PNG is kept.
    public var file: String
    /// Its size in bytes.
    public var bytes: Int
}

/// A send waiting for its recipient.
public struct OutboxEntry: Sendable, Equatable {
    /// The grant the send delivers.
    public var grant: ViewGrant
    /// When it was queued, in milliseconds since 1970.
    public var queuedAt: UInt64
    /// Why the last attempt failed.
    public var lastError: String

    /// The entry as JSON, for `--json`.
    public var json: JSONValue {
        .object([
            "image": .string(grant.image), "to": .string(grant.recipient), "views": .number(Double(grant.views)),
            "queuedAt": .number(Double(queuedAt)), "lastError": .string(lastError),
        ])
    }

    var document: JSONValue {
        .object([
            "grant": .object(grant.document), "queuedAt": .number(Double(queuedAt)), "lastError": .string(lastError),
        ])
    }

    init(grant: ViewGrant, queuedAt: UInt64, lastError: String) {
        self.grant = grant
        self.queuedAt = queuedAt
        self.lastError = lastError
    }

    init?(_ value: JSONValue) {
        guard let object = value.objectValue, let grantObject = object["grant"]?.objectValue,
            let grant = try? ViewGrant(document: grantObject)
        else { return nil }
        self.init(
            grant: grant, queuedAt: object["queuedAt"]?.wholeNumberValue ?? 0,
            lastError: object["lastError"]?.stringValue ?? "")
    }
}

/// The outbox file: a JSON array of entries, one per grant id (a newer send replaces an older one).
/// Each change is a read-modify-write under an exclusive `flock` on `outbox.json.lock`, so a `send`
/// and the daemon's retry do not lose each other's changes.
struct Outbox {
    let file: String

    func entries() throws -> [OutboxEntry] {
        guard SecureFiles.exists(file) else { return [] }
        guard let items = (try? JSONParser.parse(try SecureFiles.read(file, private: true)))?.arrayValue else {
            throw PeerError("\(file) is not a JSON array")
        }
        return items.prefix(PeerSharing.maxOutbox).compactMap(OutboxEntry.init)
    }

    func add(_ entry: OutboxEntry) throws {
        try SecureFiles.withLock(file + ".lock") {
            var all = try entries().filter { $0.grant.id != entry.grant.id }
            guard all.count < PeerSharing.maxOutbox else {
                throw PeerError("the outbox holds \(PeerSharing.maxOutbox) sends already")
            }
            all.append(entry)
            try save(all)
        }
    }

    func remove(_ id: String, sequence: UInt64) throws {
        try SecureFiles.withLock(file + ".lock") {
            try save(try entries().filter { !($0.grant.id == id && $0.grant.sequence == sequence) })
        }
    }

    func update(_ id: String, sequence: UInt64, lastError: String) throws {
        try SecureFiles.withLock(file + ".lock") {
            try save(
                try entries().map { entry in
                    var entry = entry
                    if entry.grant.id == id, entry.grant.sequence == sequence { entry.lastError = lastError }
                    return entry
                })
        }
    }

    private func save(_ entries: [OutboxEntry]) throws {
        try SecureFiles.write(Array((JSONValue.array(entries.map(\.document)).jsonText + "\n").utf8), to: file)
    }
}
