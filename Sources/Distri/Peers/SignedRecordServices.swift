import DistriCore
import DistriIdentity
import NIOCore

/// The cloud's services that write the collections only peers' signatures may change:
///
/// - `RegisterPeer` (body: a `PeerRecord` document): writes `users/<name>` when the
///   record is signed by its own signing key, that key is the one the name was first registered with
///   (trust on first use), and its sequence is above the stored one (no replays).
/// - `PublishImage` (body: a `CatalogEntry` document): writes `catalog/<owner>/<name>`
///   when the entry is signed by the signing key of the owner's `users` record, with a sequence above
///   the stored entry's.
///
/// Both run on the node asked, on its own replica (as the DB services do, not through a client to
/// itself): they read the current document at `majority`, check, then write at `majority`; a change to
/// an existing document is a conditional update (a compare-and-set round among a majority) whose
/// condition repeats the checks, so two racing writes cannot both pass them. The checks are
/// `GrantLedger`'s; `LedgerWriter` reads, writes and retries.
///
/// - `PostRequest` (body: an `AccessRequest` document): writes `requests/<id>` when a
///   `pending` request is signed by its requester, or a `granted`/`rejected` answer by the image's
///   owner, each with a sequence above the stored one.
///
/// The plain DB services (`AddDocument`, `UpdateDocument`, `DeleteDocument` by id or by filter,
/// `CreateCollection`, `DropCollection`) refuse ``reservedCollections`` (`users`, `catalog`,
/// `permissions`, `requests`, `mailbox`) with `unauthorized`; reads stay open, except of
/// ``privateCollections`` (`mailbox`). Only the signed services write
/// them (`catalog` through `PublishImage`; it has no delete of its own). Readers still verify each
/// entry against its owner's `users` record (`PeerCloud.catalog()` in DistriPeer does), so a node
/// that was tampered with cannot make a client trust a forged one.
public enum SignedRecordServices {
    /// Writes a peer's signed record in `users`.
    public static let registerPeer = "RegisterPeer"
    /// Writes an image's signed entry in `catalog`.
    public static let publishImage = "PublishImage"
    /// Writes a signed request for views, or its answer, in `requests`.
    public static let postRequest = "PostRequest"
    /// Collections only signed services write: `users`, `catalog`, `permissions`, `requests`, and
    /// `mailbox` (``MailboxServices``).
    public static let reservedCollections: Set<String> = [
        PeerRecord.collection, CatalogEntry.collection, ViewGrant.collection, AccessRequest.collection,
        MailboxEntry.collection,
    ]
    /// Reserved collections the plain DB services may not read either: `mailbox` (who sends to whom is
    /// for the recipient only; it lists its entries through ``MailboxServices``).
    public static let privateCollections: Set<String> = [MailboxEntry.collection]

    /// Throws `unauthorized` when `collection` may only be read through its own services.
    static func checkReadable(_ collection: String, by service: String) throws(ServiceError) {
        guard privateCollections.contains(collection) else { return }
        throw ServiceError(
            .unauthorized,
            "collection '\(collection)' is private; \(service) may not read it (a recipient lists, fetches and removes its deliveries through \(MailboxServices.list), \(MailboxServices.fetch) and \(MailboxServices.remove), with a signed proof)"
        )
    }

    /// Throws `unauthorized` when `collection` is reserved for the signed services.
    static func checkWritable(_ collection: String, by service: String) throws(ServiceError) {
        guard reservedCollections.contains(collection) else { return }
        let through =
            switch collection {
            case PeerRecord.collection: " (peers register through \(registerPeer) with a signed record)"
            case CatalogEntry.collection: " (owners publish through \(publishImage), signed)"
            case AccessRequest.collection: " (peers ask and answer through \(postRequest), signed)"
            case MailboxEntry.collection: " (senders deposit through \(MailboxServices.put) with a grant in force)"
            default: ""
            }
        throw ServiceError(
            .unauthorized,
            "collection '\(collection)' is reserved for signed changes; \(service) may not write it\(through)")
    }

    static func register(on registry: ServiceRegistry, replica: DatabaseReplica) {
        let limit = replica.limits.maxDocumentBytes
        registry.register(
            service(registerPeer) { request, loop in
                let record = try decodeSigned(request, limit: limit, PeerRecord.init(document:))
                let written = try await LedgerWriter.write(
                    "the record of '\(record.name)'", PeerRecord.collection, record.name, peers: [], replica: replica,
                    deadline: request.deadline, on: loop
                ) { ledger throws(LedgerRefusal) in try ledger.register(record) }
                return try reply(
                    written,
                    extra: ["registered": .string(record.name), "first": .bool(written.write?.condition == nil)])
            })
        registry.register(
            service(publishImage) { request, loop in
                let entry = try decodeSigned(request, limit: limit, CatalogEntry.init(document:))
                let written = try await LedgerWriter.write(
                    "catalog document \(entry.id)", CatalogEntry.collection, entry.id, peers: [entry.owner],
                    replica: replica, deadline: request.deadline, on: loop
                ) { ledger throws(LedgerRefusal) in try ledger.publish(entry) }
                return try reply(written, extra: ["published": .string(entry.id)])
            })
        registry.register(
            service(postRequest) { request, loop in
                let posted = try decodeSigned(request, limit: limit, AccessRequest.init(document:))
                let written = try await LedgerWriter.write(
                    "requests document \(posted.id)", AccessRequest.collection, posted.id, peers: [posted.signer],
                    replica: replica, deadline: request.deadline, on: loop
                ) { ledger throws(LedgerRefusal) in try ledger.post(posted) }
                return try reply(
                    written, extra: ["posted": .string(posted.id), "state": .string(posted.state.rawValue)])
            })
    }

    /// A signed service named `name`, run on the node asked, as a Swift task.
    private static func service(
        _ name: String, _ body: @escaping @Sendable (ServiceRequest, EventLoop) async throws -> ByteBuffer
    ) -> RegisteredService {
        RegisteredService(name: name, execution: LedgerWriter.execution(body), runsWhereAsked: true)
    }

    /// The reply to a signed write: its receipt with `extra` fields.
    static func reply<Outcome>(_ written: LedgerWriter.Written<Outcome>, extra: [String: JSONValue]) throws
        -> ByteBuffer
    {
        guard let receipt = written.receipt else { throw ServiceError(.internal, "the ledger decided no write") }
        return DatabaseReply.write(receipt, extra: extra)
    }

    /// The body decoded into a signed record by `make`; every shape error is `badParams`.
    static func decodeSigned<Record>(
        _ request: ServiceRequest, limit: Int, _ make: ([String: JSONValue]) throws(IdentityError) -> Record
    ) throws -> Record {
        let body = try signedBody(request, limit: limit)
        do {
            return try make(body)
        } catch {
            throw ServiceError.badParams("\(error)")
        }
    }

    /// The body as a JSON object; shape errors are `badParams`.
    static func signedBody(_ request: ServiceRequest, limit: Int) throws -> [String: JSONValue] {
        guard request.data.readableBytes <= limit else {
            throw ServiceError(.tooLarge, "a record of \(request.data.readableBytes) bytes exceeds \(limit)")
        }
        guard let object = (try? JSONParser.parse(request.bytes))?.objectValue else {
            throw ServiceError.badParams("\(request.service) needs a JSON object")
        }
        return object
    }

    // MARK: Writes

    static func ensureCollection(
        _ name: String, replica: DatabaseReplica, deadline: NIODeadline?, on loop: EventLoop
    ) -> EventLoopFuture<Void> {
        let exists = replica.withStore { $0.collections[name]?.exists == true }
        if exists { return loop.makeSucceededVoidFuture() }
        return replica.write(.createCollection(name), consistency: .majority, deadline: deadline, on: loop)
            .map { _ in }
            .flatMapError { error in
                // Created meanwhile by another node: fine.
                (error as? ServiceError)?.code == .conflict
                    ? loop.makeSucceededVoidFuture() : loop.makeFailedFuture(error)
            }
    }
}
