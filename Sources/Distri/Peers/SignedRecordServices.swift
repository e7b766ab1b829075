import DistriCore
import DistriIdentity
import NIOCore

/// The cloud's services that write the collections only peers' signatures may change:
///
/// - `RegisterPeer` (body: a ``DistriIdentity/PeerRecord`` document): writes `users/<name>` when the
///   record is signed by its own signing key, that key is the one the name was first registered with
///   (trust on first use), and its sequence is above the stored one (no replays).
/// - `PublishImage` (body: a ``DistriIdentity/CatalogEntry`` document): writes `catalog/<owner>/<name>`
///   when the entry is signed by the signing key of the owner's `users` record, with a sequence above
///   the stored entry's.
///
/// Both run on the node asked, on its own replica (as the DB services do, not through a client to
/// itself): they read the current document at `majority`, check, then write at `majority`; a change to
/// an existing document is a conditional update (a compare-and-set round among a majority) whose
/// condition repeats the checks, so two racing writes cannot both pass them.
///
/// - `PostRequest` (body: an ``DistriIdentity/AccessRequest`` document): writes `requests/<id>` when a
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
    public static let registerPeer = "RegisterPeer"
    public static let publishImage = "PublishImage"
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
            RegisteredService(
                name: registerPeer,
                execution: .future { request, loop in
                    do {
                        let record = try decodeSigned(request, limit: limit, PeerRecord.init(document:))
                        do {
                            try record.verify()
                        } catch {
                            throw ServiceError(.unauthorized, "\(error)")
                        }
                        return registerPeer(record, replica: replica, deadline: request.deadline, on: loop)
                    } catch {
                        return loop.makeFailedFuture(error)
                    }
                },
                runsWhereAsked: true))
        registry.register(
            RegisteredService(
                name: publishImage,
                execution: .future { request, loop in
                    do {
                        let entry = try decodeSigned(request, limit: limit, CatalogEntry.init(document:))
                        return publish(entry, replica: replica, deadline: request.deadline, on: loop)
                    } catch {
                        return loop.makeFailedFuture(error)
                    }
                },
                runsWhereAsked: true))
        registry.register(
            RegisteredService(
                name: postRequest,
                execution: .future { request, loop in
                    do {
                        let posted = try decodeSigned(request, limit: limit, AccessRequest.init(document:))
                        return post(posted, replica: replica, deadline: request.deadline, on: loop)
                    } catch {
                        return loop.makeFailedFuture(error)
                    }
                },
                runsWhereAsked: true))
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

    // MARK: RegisterPeer

    private static func registerPeer(
        _ record: PeerRecord, replica: DatabaseReplica, deadline: NIODeadline?, on loop: EventLoop, attempt: Int = 0
    ) -> EventLoopFuture<ByteBuffer> {
        let collection = PeerRecord.collection
        return replica.read(consistency: .majority, session: nil, deadline: deadline, on: loop) { store in
            store.document(record.name, in: collection)
        }.flatMap { stored -> EventLoopFuture<ByteBuffer> in
            let body = record.document.filter { $0.key != "_id" }
            guard let stored else {
                return ensureCollection(collection, replica: replica, deadline: deadline, on: loop).flatMap {
                    replica.write(
                        .add(collection: collection, id: record.name, body: body), consistency: .majority,
                        deadline: deadline, on: loop)
                }.map { DatabaseReply.write($0, extra: ["registered": .string(record.name), "first": true]) }
                    .flatMapError { error in
                        // Someone registered the name a moment ago: check again against what they wrote.
                        guard attempt == 0, (error as? ServiceError)?.code == .conflict else {
                            return loop.makeFailedFuture(error)
                        }
                        return registerPeer(record, replica: replica, deadline: deadline, on: loop, attempt: 1)
                    }
            }
            let current: PeerRecord
            do {
                current = try PeerRecord(document: stored)
                try check(record, against: current)
            } catch {
                return loop.makeFailedFuture(error)
            }
            let condition: JSONValue = .object([
                "signingKey": .string(current.signingKey.hex),
                "sequence": .object(["$lt": .number(Double(record.sequence))]),
            ])
            return conditionalReplace(
                collection: collection, id: record.name, condition: condition, body: body, replica: replica,
                deadline: deadline, on: loop, refusal: "a newer record of '\(record.name)' was registered meanwhile"
            ).map { DatabaseReply.write($0, extra: ["registered": .string(record.name), "first": false]) }
        }
    }

    /// Trust on first use: the stored key owns the name; sequences only rise.
    static func check(_ record: PeerRecord, against current: PeerRecord) throws(ServiceError) {
        guard current.signingKey == record.signingKey else {
            throw ServiceError(
                .unauthorized,
                "the name '\(record.name)' is registered with another signing key (\(current.signingKey.hex.prefix(16))...)"
            )
        }
        guard record.sequence > current.sequence else {
            throw ServiceError(
                .conflict,
                "replayed or stale record of '\(record.name)': sequence \(record.sequence) is not above the stored \(current.sequence)"
            )
        }
    }

    // MARK: PublishImage and PostRequest

    /// Writes `body` as document `id` of `collection` when `verify` accepts the signature under the
    /// signing key of `signer`'s `users` record and `sequence` is above the stored document's.
    private static func storeSigned(
        collection: String, id: String, signer: String, sequence: UInt64, body: [String: JSONValue],
        verify: @escaping @Sendable (SigningPublicKey) throws(IdentityError) -> Void, replica: DatabaseReplica,
        deadline: NIODeadline?, on loop: EventLoop, attempt: Int = 0
    ) -> EventLoopFuture<WriteReceipt> {
        replica.read(consistency: .majority, session: nil, deadline: deadline, on: loop) { store in
            (signer: store.document(signer, in: PeerRecord.collection), stored: store.document(id, in: collection))
        }.flatMap { found -> EventLoopFuture<WriteReceipt> in
            do {
                guard let signerDocument = found.signer else {
                    throw ServiceError(.unauthorized, "'\(signer)' is not a registered peer")
                }
                do {
                    try verify(try PeerRecord(document: signerDocument).signingKey)
                } catch {
                    throw ServiceError(.unauthorized, "\(error)")
                }
                if let stored = found.stored {
                    // A stored sequence that is not a whole number up to 2^53 was not written by a
                    // signed record (only a replica written before `catalog` was reserved can hold
                    // one): nothing can be above it.
                    guard let storedSequence = stored["sequence"]?.wholeNumberValue else {
                        throw ServiceError(
                            .conflict, "\(collection) document \(id) holds no valid sequence; it cannot be replaced")
                    }
                    guard sequence > storedSequence else {
                        throw ServiceError(
                            .conflict,
                            "replayed or stale \(collection) document \(id): sequence \(sequence) is not above the stored \(storedSequence)"
                        )
                    }
                }
            } catch {
                return loop.makeFailedFuture(error)
            }
            guard found.stored != nil else {
                return ensureCollection(collection, replica: replica, deadline: deadline, on: loop).flatMap {
                    replica.write(
                        .add(collection: collection, id: id, body: body), consistency: .majority,
                        deadline: deadline, on: loop)
                }.flatMapError { error in
                    // Written a moment ago by someone else: check again against what they wrote.
                    guard attempt == 0, (error as? ServiceError)?.code == .conflict else {
                        return loop.makeFailedFuture(error)
                    }
                    return storeSigned(
                        collection: collection, id: id, signer: signer, sequence: sequence, body: body, verify: verify,
                        replica: replica, deadline: deadline, on: loop, attempt: 1)
                }
            }
            return conditionalReplace(
                collection: collection, id: id,
                condition: .object(["sequence": .object(["$lt": .number(Double(sequence))])]),
                body: body, replica: replica, deadline: deadline, on: loop,
                refusal: "a newer version of \(collection) document \(id) was written meanwhile")
        }
    }

    private static func publish(
        _ entry: CatalogEntry, replica: DatabaseReplica, deadline: NIODeadline?, on loop: EventLoop
    ) -> EventLoopFuture<ByteBuffer> {
        storeSigned(
            collection: CatalogEntry.collection, id: entry.id, signer: entry.owner, sequence: entry.sequence,
            body: entry.document.filter { $0.key != "_id" },
            verify: { key throws(IdentityError) in try entry.verify(signedBy: key) },
            replica: replica, deadline: deadline, on: loop
        ).map { DatabaseReply.write($0, extra: ["published": .string(entry.id)]) }
    }

    private static func post(
        _ request: AccessRequest, replica: DatabaseReplica, deadline: NIODeadline?, on loop: EventLoop
    ) -> EventLoopFuture<ByteBuffer> {
        storeSigned(
            collection: AccessRequest.collection, id: request.id, signer: request.signer, sequence: request.sequence,
            body: request.document.filter { $0.key != "_id" },
            verify: { key throws(IdentityError) in try request.verify(signedBy: key) }, replica: replica,
            deadline: deadline, on: loop
        ).map {
            DatabaseReply.write($0, extra: ["posted": .string(request.id), "state": .string(request.state.rawValue)])
        }
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

    static func conditionalReplace(
        collection: String, id: String, condition: JSONValue, body: [String: JSONValue], replica: DatabaseReplica,
        deadline: NIODeadline?, on loop: EventLoop, refusal: String
    ) -> EventLoopFuture<WriteReceipt> {
        let filter: DocumentFilter
        do {
            filter = try DocumentFilter(condition)
        } catch {
            return loop.makeFailedFuture(ServiceError(.internal, "condition: \(error)"))
        }
        return replica.write(
            .conditional(
                collection: collection, id: id, condition: filter,
                update: DocumentUpdate(set: body, replace: true)),
            consistency: .majority, deadline: deadline, on: loop
        ).flatMapErrorThrowing { error in
            if let error = error as? ServiceError, error.code == .conflict {
                throw ServiceError(.conflict, refusal)
            }
            throw error
        }
    }
}
