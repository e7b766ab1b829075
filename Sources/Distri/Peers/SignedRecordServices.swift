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
/// The plain DB services refuse writes to ``reservedCollections`` (`users`, `permissions`); reads stay
/// open. `catalog` is not reserved: the seed's own DB test uses a collection of that name, so plain
/// writes there stay allowed, and readers verify each entry against its owner's `users` record
/// (`PeerCloud.catalog()` in DistriPeer does) instead of trusting the collection.
public enum SignedRecordServices {
    public static let registerPeer = "RegisterPeer"
    public static let publishImage = "PublishImage"
    /// Collections only signed services write: `users`, `permissions`.
    public static let reservedCollections: Set<String> = [PeerRecord.collection, "permissions"]

    /// Throws `unauthorized` when `collection` is reserved for the signed services.
    static func checkWritable(_ collection: String, by service: String) throws(ServiceError) {
        guard reservedCollections.contains(collection) else { return }
        let through =
            switch collection {
            case PeerRecord.collection: " (peers register through \(registerPeer) with a signed record)"
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
                        let record = try PeerRecord(document: try signedBody(request, limit: limit))
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
                        let entry = try CatalogEntry(document: try signedBody(request, limit: limit))
                        return publish(entry, replica: replica, deadline: request.deadline, on: loop)
                    } catch {
                        return loop.makeFailedFuture(error)
                    }
                },
                runsWhereAsked: true))
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

    // MARK: PublishImage

    private static func publish(
        _ entry: CatalogEntry, replica: DatabaseReplica, deadline: NIODeadline?, on loop: EventLoop, attempt: Int = 0
    ) -> EventLoopFuture<ByteBuffer> {
        let collection = CatalogEntry.collection
        return replica.read(consistency: .majority, session: nil, deadline: deadline, on: loop) { store in
            (
                owner: store.document(entry.owner, in: PeerRecord.collection),
                entry: store.document(entry.id, in: collection)
            )
        }.flatMap { stored -> EventLoopFuture<ByteBuffer> in
            let ownerKey: SigningPublicKey
            do {
                guard let ownerDocument = stored.owner else {
                    throw ServiceError(.unauthorized, "the owner '\(entry.owner)' is not a registered peer")
                }
                ownerKey = try PeerRecord(document: ownerDocument).signingKey
                do {
                    try entry.verify(signedBy: ownerKey)
                } catch {
                    throw ServiceError(.unauthorized, "\(error)")
                }
                if let existing = stored.entry {
                    let current = try CatalogEntry(document: existing)
                    guard entry.sequence > current.sequence else {
                        throw ServiceError(
                            .conflict,
                            "replayed or stale entry \(entry.id): sequence \(entry.sequence) is not above the stored \(current.sequence)"
                        )
                    }
                }
            } catch {
                return loop.makeFailedFuture(error)
            }
            let body = entry.document.filter { $0.key != "_id" }
            guard stored.entry != nil else {
                return ensureCollection(collection, replica: replica, deadline: deadline, on: loop).flatMap {
                    replica.write(
                        .add(collection: collection, id: entry.id, body: body), consistency: .majority,
                        deadline: deadline, on: loop)
                }.map { DatabaseReply.write($0, extra: ["published": .string(entry.id)]) }
                    .flatMapError { error in
                        guard attempt == 0, (error as? ServiceError)?.code == .conflict else {
                            return loop.makeFailedFuture(error)
                        }
                        return publish(entry, replica: replica, deadline: deadline, on: loop, attempt: 1)
                    }
            }
            let condition: JSONValue = .object([
                "owner": .string(entry.owner), "sequence": .object(["$lt": .number(Double(entry.sequence))]),
            ])
            return conditionalReplace(
                collection: collection, id: entry.id, condition: condition, body: body, replica: replica,
                deadline: deadline, on: loop, refusal: "a newer entry \(entry.id) was published meanwhile"
            ).map { DatabaseReply.write($0, extra: ["published": .string(entry.id)]) }
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
