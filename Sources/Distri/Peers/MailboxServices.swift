import Crypto
import DistriCore
import DistriIdentity
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// The cloud's store-and-forward mailbox: a sender whose recipient is offline deposits the sealed
/// image with the cloud, and the recipient collects it when it is back. Everything runs on the node
/// asked, on its own replica; writes are at `majority`, so losing one node of three loses nothing.
///
/// - `MailboxPut` (body: a `DeliverPayload`, the grant and a chunk; parameters
///   `offset=O`, `total=T`, as `Deliver`): takes a chunk when the grant is signed by its owner's
///   registered key and is the grant in force in `permissions` (views left, same digest), else
///   `unauthorized`. A chunk is kept only at the offset the entry holds (anything else just gets the
///   current answer), so a cut deposit resumes; an empty chunk is a probe. Quotas
///   (``MailboxLimits``) are checked against the whole `T` before the first chunk is kept:
///   `quotaExceeded` with a message saying what is held and what the limit is. When the last chunk
///   arrives the node checks the whole image against the grant's digest (a mismatch discards the
///   entry: `badParams`). Answers `DeliverAnswer` JSON, `{"have": N, "done": B}`.
///   A deposit of the same grant and digest resumes; one with a new digest replaces the old entry.
/// - `MailboxList` (body: `{"proof": PeerProof}`, purpose `mailbox`): the recipient's complete,
///   unexpired entries, `{"entries": [{"id", "sender", "image", "digest", "total", "expiresAt"}]}`.
/// - `MailboxFetch` (body: `{"proof", "id", "offset"}`): a `DeliverPayload` of the
///   grant as deposited and the bytes from `offset` to the end of the stored chunk holding it (at most
///   ``MailboxLimits/maxChunkBytes``), to be handed to the recipient's own `Deliver` logic with
///   `offset=O total=T` (`T` is the entry's `total` from `MailboxList`).
/// - `MailboxRemove` (body: `{"proof", "id"}`): deletes the entry and its chunks; only its recipient
///   may. Idempotent: `{"removed": true|false}`.
///
/// A proof is checked against the signing key of the peer's `users` record and the node's clock
/// (`PeerProof.maxSkewMillis`). The plain DB services may neither write nor read
/// `mailbox` (who sends to whom is for the recipient only). Each node deletes entries past their
/// expiry from its replica every ``MailboxLimits/sweepIntervalMillis`` (the deletes replicate and
/// converge), at most ``MailboxLimits/maxSweepDeletes`` documents at a time. The layout of the
/// documents is in `MailboxEntry`.
///
/// Quotas are checked against what a majority holds when a deposit starts: two deposits that start
/// at the same moment on different nodes may together exceed a quota by at most one image each.
public enum MailboxServices {
    /// Deposits a chunk of a sealed image for an offline recipient.
    public static let put = "MailboxPut"
    /// Lists what waits for the calling recipient.
    public static let list = "MailboxList"
    /// Fetches a chunk of a waiting image, for its recipient.
    public static let fetch = "MailboxFetch"
    /// Removes a collected image, for its recipient.
    public static let remove = "MailboxRemove"
    /// Attempts of one call against concurrent changes of the same entry.
    static let maxAttempts = 8
    /// Largest body of `MailboxList`, `MailboxFetch` and `MailboxRemove`.
    static let maxRequestBytes = 16 << 10
    /// Largest `total` a `MailboxPut` may name (quotas refuse far less).
    static let maxTotalBytes = 1 << 40

    /// Registers the services and starts the node's sweep, which ends when `replica` stops.
    static func register(
        on registry: ServiceRegistry, replica: DatabaseReplica, limits: MailboxLimits, counters: MailboxCounters,
        group: EventLoopGroup, clock: @escaping @Sendable () -> UInt64 = DatabaseReplica.wallMillis,
        logger: Logger = Logger(label: "distri.mailbox")
    ) {
        let mailbox = Mailbox(replica: replica, limits: limits, counters: counters, clock: clock, logger: logger)
        func service(
            _ name: String, remembersResult: Bool,
            _ body: @escaping @Sendable (ServiceRequest, EventLoop) async throws -> ByteBuffer
        ) {
            registry.register(
                RegisteredService(
                    name: name,
                    execution: .future { request, loop in
                        let promise = loop.makePromise(of: ByteBuffer.self)
                        promise.completeWithTask { try await body(request, loop) }
                        return promise.futureResult
                    },
                    runsWhereAsked: true, remembersResult: remembersResult))
        }
        service(put, remembersResult: true) { try await mailbox.put($0, on: $1) }
        // Entries and image bytes are for the recipient only: not kept in the retry window.
        service(list, remembersResult: false) { try await mailbox.list($0, on: $1) }
        service(fetch, remembersResult: false) { try await mailbox.fetch($0, on: $1) }
        service(remove, remembersResult: true) { try await mailbox.remove($0, on: $1) }
        mailbox.startSweep(on: group.next())
    }

    /// The mailbox as `replica` holds it, for the node's stats.
    static func stats(replica: DatabaseReplica, counters: MailboxCounters) -> MailboxStats {
        let held = replica.withStore { store -> (entries: Int, bytes: UInt64) in
            store.documents(in: MailboxEntry.collection).map(MailboxSweep.held) ?? (0, 0)
        }
        return MailboxStats(entries: held.entries, bytes: held.bytes, refusedOverQuota: counters.refusedOverQuota)
    }
}

/// A node's mailbox counters (the held figures are read from the replica).
final class MailboxCounters: Sendable {
    private let refused = NIOLockedValueBox<UInt64>(0)

    init() {}

    /// Counts a deposit refused over a quota.
    func countRefusal() { refused.withLockedValue { $0 += 1 } }

    /// Deposits refused over a quota so far.
    var refusedOverQuota: UInt64 { refused.withLockedValue { $0 } }
}

/// The services' shell: reads and writes the node's replica; the decisions are in ``MailboxEntry``,
/// ``MailboxQuota`` and ``MailboxSweep``.
private struct Mailbox: Sendable {
    let replica: DatabaseReplica
    let limits: MailboxLimits
    let counters: MailboxCounters
    let clock: @Sendable () -> UInt64
    let logger: Logger

    private var collection: String { MailboxEntry.collection }

    /// The largest chunk kept: the configured one, held below the DB's document size (base64 makes
    /// 4 bytes of 3, and the chunk document has a few small fields).
    var chunkLimit: Int { max(1, min(limits.maxChunkBytes, (replica.limits.maxDocumentBytes - 1024) / 4 * 3)) }

    // MARK: MailboxPut

    /// What a deposit call reads, at `majority`.
    private struct DepositState: Sendable {
        var owner: [String: JSONValue]?
        var grant: [String: JSONValue]?
        var entry: MailboxEntry?
        /// True when a document holds the entry's id but not an entry's shape.
        var damaged: Bool
        /// Every entry, when this deposit has none yet (for the quotas).
        var held: [MailboxEntry]
    }

    func put(_ request: ServiceRequest, on loop: EventLoop) async throws -> ByteBuffer {
        let chunkLimit = self.chunkLimit
        guard request.data.readableBytes <= 4 + DeliverPayload.maxGrantBytes + chunkLimit else {
            throw ServiceError(
                .tooLarge, "a MailboxPut of \(request.data.readableBytes) bytes exceeds a chunk of \(chunkLimit) bytes")
        }
        let payload: DeliverPayload
        do {
            payload = try DeliverPayload(decoding: request.bytes)
        } catch {
            throw ServiceError.badParams("\(error)")
        }
        let (grant, chunk) = (payload.grant, payload.chunk)
        guard let offset = DeliverParams.value("offset", in: request.params, max: MailboxServices.maxTotalBytes),
            let total = DeliverParams.value("total", in: request.params, max: MailboxServices.maxTotalBytes),
            total >= 1, chunk.count <= total,
            offset <= total - chunk.count
        else {
            throw ServiceError.badParams("MailboxPut needs offset=O and total=T (T from 1 byte) with the chunk inside")
        }
        guard chunk.count <= chunkLimit else {
            throw ServiceError(
                .tooLarge, "a chunk of \(chunk.count) bytes exceeds the \(chunkLimit) a MailboxPut takes")
        }
        let key = MailboxEntry.key(grantID: grant.id, digest: grant.digest)
        let deadline = request.deadline
        // Bounded: each pass returns, throws, or lost a race to a concurrent change of the entry.
        for _ in 0..<MailboxServices.maxAttempts {
            let now = clock()
            let collection = self.collection
            let found = try await replica.read(consistency: .majority, session: nil, deadline: deadline, on: loop) {
                store in
                let document = store.document(key, in: collection)
                let entry = document.flatMap { MailboxEntry(id: key, document: $0) }
                return DepositState(
                    owner: store.document(grant.owner, in: PeerRecord.collection),
                    grant: store.document(grant.id, in: ViewGrant.collection), entry: entry,
                    damaged: document != nil && entry == nil,
                    held: document == nil ? Self.entries(in: store) : [])
            }.get()
            try TicketInForce.check(grant, owner: found.owner, stored: found.grant)
            guard !found.damaged else {
                throw ServiceError(.internal, "the mailbox entry \(key) is damaged; it expires with its chunks")
            }
            guard let entry = found.entry else {
                // A new deposit: it starts at 0 and must fit, whole, beside what is held (an entry of
                // the same grant for another image is replaced, so it does not count).
                guard offset == 0 else { return Self.answer(have: 0, done: false) }
                let replaced = found.held.filter { $0.grantID == grant.id && $0.id != key }
                let held = found.held.filter { !$0.isExpired(at: now) && $0.grantID != grant.id }
                if let refusal = MailboxQuota.refusal(
                    total: total, recipient: grant.recipient, sender: grant.owner, held: held, limits: limits)
                {
                    counters.countRefusal()
                    logger.notice(
                        "mailbox deposit refused over quota",
                        metadata: ["entry": "\(key)", "total": "\(total)", "reason": "\(refusal)"])
                    throw ServiceError(.quotaExceeded, refusal)
                }
                if chunk.isEmpty { return Self.answer(have: 0, done: false) }
                for old in replaced { try await deleteEntry(old.id, deadline: deadline, on: loop) }
                let created = MailboxEntry(grant: grant, total: total, now: now, expiryMillis: limits.expiryMillis)
                try await SignedRecordServices.ensureCollection(
                    collection, replica: replica, deadline: deadline, on: loop
                )
                .get()
                do {
                    _ = try await replica.write(
                        .add(collection: collection, id: key, body: created.document), consistency: .majority,
                        deadline: deadline, on: loop
                    ).get()
                } catch let error as ServiceError where error.code == .conflict {
                    continue  // created meanwhile by another call: read it again
                }
                if let answer = try await append(chunk, at: offset, to: created, now: now, deadline: deadline, on: loop)
                {
                    return answer
                }
                continue
            }
            if entry.isExpired(at: now) {
                try await deleteEntry(entry.id, deadline: deadline, on: loop)
                continue
            }
            guard entry.total == total else {
                throw ServiceError.badParams(
                    "the mailbox holds \(key) as an image of \(entry.total) bytes, not \(total); its digest names the image"
                )
            }
            if entry.complete { return Self.answer(have: total, done: true) }
            // Every byte is here but the check did not finish (a timeout, a race): finish it now.
            if entry.have == entry.total { return try await complete(entry, deadline: deadline, on: loop) }
            guard offset == entry.have, !chunk.isEmpty else { return Self.answer(have: entry.have, done: false) }
            if let answer = try await append(chunk, at: offset, to: entry, now: now, deadline: deadline, on: loop) {
                return answer
            }
        }
        throw ServiceError(.unavailable, "the mailbox entry \(key) kept changing; try again")
    }

    /// Keeps `chunk` as the entry's next part; nil when a concurrent call changed the entry first.
    private func append(
        _ chunk: [UInt8], at offset: Int, to entry: MailboxEntry, now: UInt64, deadline: NIODeadline?,
        on loop: EventLoop
    ) async throws -> ByteBuffer? {
        let remaining = entry.total - offset
        guard chunk.count >= min(limits.minChunkBytes, remaining) else {
            throw ServiceError.badParams(
                "a mailbox chunk holds at least \(min(limits.minChunkBytes, remaining)) bytes (all that is left, at the end)"
            )
        }
        let index = entry.parts.count
        guard index < MailboxEntry.maxParts else {
            throw ServiceError.badParams("the mailbox entry \(entry.id) has as many chunks as it may")
        }
        let token = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let chunkID = MailboxEntry.chunkID(entry: entry.id, index: index, token: token)
        _ = try await replica.write(
            .add(
                collection: collection, id: chunkID, body: entry.chunkDocument(offset: offset, bytes: chunk, now: now)),
            consistency: .majority, deadline: deadline, on: loop
        ).get()
        let have = offset + chunk.count
        do {
            _ = try await replica.write(
                .conditional(
                    collection: collection, id: entry.id,
                    condition: try DocumentFilter(
                        .object(["have": .number(Double(offset)), "chunks": .number(Double(index))])),
                    update: DocumentUpdate(set: [
                        "have": .number(Double(have)), "chunks": .number(Double(index + 1)),
                        MailboxEntry.partField(index): .string("\(offset)/\(token)"),
                    ])),
                consistency: .majority, deadline: deadline, on: loop
            ).get()
        } catch let error as ServiceError where error.code == .conflict || error.code == .notFound {
            // Another call took this offset (or the entry went): this chunk is named by nothing.
            try? await deleteDocuments([chunkID], deadline: deadline, on: loop)
            return nil
        }
        guard have == entry.total else { return Self.answer(have: have, done: false) }
        var whole = entry
        whole.have = have
        whole.parts.append(MailboxEntry.Part(offset: offset, token: token))
        return try await complete(whole, deadline: deadline, on: loop)
    }

    /// Checks the whole image against the grant's digest and marks the entry complete; a mismatch
    /// discards it.
    private func complete(_ entry: MailboxEntry, deadline: NIODeadline?, on loop: EventLoop) async throws -> ByteBuffer
    {
        let collection = self.collection
        let texts = try await replica.read(consistency: .majority, session: nil, deadline: deadline, on: loop) {
            store in
            entry.parts.enumerated().map { index, part in
                store.document(
                    MailboxEntry.chunkID(entry: entry.id, index: index, token: part.token), in: collection)
            }
        }.get()
        // Decoded and hashed outside the replica's lock.
        var hasher = SHA256()
        var length = 0
        for (index, document) in texts.enumerated() {
            guard let document, let bytes = MailboxEntry.chunkBytes(document),
                document["offset"]?.wholeNumberValue == UInt64(entry.parts[index].offset)
            else {
                throw ServiceError(.unavailable, "chunk \(index) of \(entry.id) is not here yet; try again")
            }
            hasher.update(data: bytes)
            length += bytes.count
        }
        guard length == entry.total, Array(hasher.finalize()) == entry.digest else {
            try await deleteEntry(entry.id, deadline: deadline, on: loop)
            throw ServiceError.badParams(
                "the image deposited for \(entry.grantID) does not match the grant's digest; it was discarded, deposit it again"
            )
        }
        do {
            _ = try await replica.write(
                .conditional(
                    collection: collection, id: entry.id,
                    condition: try DocumentFilter(.object(["have": .number(Double(entry.total))])),
                    update: DocumentUpdate(set: ["complete": .bool(true)])),
                consistency: .majority, deadline: deadline, on: loop
            ).get()
        } catch let error as ServiceError where error.code == .conflict {
            throw ServiceError(.unavailable, "the mailbox entry \(entry.id) changed meanwhile; try again")
        }
        return Self.answer(have: entry.total, done: true)
    }

    // MARK: MailboxList, MailboxFetch, MailboxRemove

    func list(_ request: ServiceRequest, on loop: EventLoop) async throws -> ByteBuffer {
        let body = try Self.body(request)
        let now = clock()
        let (name, entries) = try await withProof(body, request: request, on: loop) { store, name in
            Self.entries(in: store).filter { $0.recipient == name }
        }
        let listed = entries.filter { $0.complete && !$0.isExpired(at: now) }.sorted { $0.createdAt < $1.createdAt }
        logger.debug("mailbox listed", metadata: ["peer": "\(name)", "entries": "\(listed.count)"])
        return ByteBuffer(string: JSONValue.object(["entries": .array(listed.map(\.listing))]).jsonText)
    }

    func fetch(_ request: ServiceRequest, on loop: EventLoop) async throws -> ByteBuffer {
        let body = try Self.body(request)
        let id = try Self.entryID(body)
        guard let offset = body["offset"]?.wholeNumberValue, offset <= UInt64(MailboxServices.maxTotalBytes) else {
            throw ServiceError.badParams("\(MailboxServices.fetch) needs an offset, a whole number of bytes")
        }
        let collection = self.collection
        let now = clock()
        let (name, found) = try await withProof(body, request: request, on: loop) {
            store, name -> (entry: MailboxEntry, chunk: [String: JSONValue]?)? in
            guard let entry = store.document(id, in: collection).flatMap({ MailboxEntry(id: id, document: $0) }),
                entry.recipient == name, entry.complete, !entry.isExpired(at: now),
                let part = entry.part(containing: Int(offset))
            else { return nil }
            let chunkID = MailboxEntry.chunkID(entry: id, index: part.index, token: part.part.token)
            return (entry, store.document(chunkID, in: collection))
        }
        guard let found else {
            throw ServiceError.notFound("no delivery \(id) from byte \(offset) in \(name)'s mailbox")
        }
        let part = found.entry.part(containing: Int(offset))
        guard let part, let document = found.chunk, let bytes = MailboxEntry.chunkBytes(document),
            bytes.count == part.end - part.part.offset
        else {
            throw ServiceError(.unavailable, "the chunk of \(id) at byte \(offset) is not here yet; try again")
        }
        let ticket: DeliveryTicket
        do {
            ticket = try DeliveryTicket(document: found.entry.grant)
        } catch {
            throw ServiceError(.internal, "the ticket kept with \(id) does not parse: \(error)")
        }
        let slice = Array(bytes[(Int(offset) - part.part.offset)...])
        return ByteBuffer(bytes: DeliverPayload(ticket: ticket, chunk: slice).encoded())
    }

    func remove(_ request: ServiceRequest, on loop: EventLoop) async throws -> ByteBuffer {
        let body = try Self.body(request)
        let id = try Self.entryID(body)
        let collection = self.collection
        let (name, recipient) = try await withProof(body, request: request, on: loop) { store, _ in
            store.document(id, in: collection).map { $0["recipient"]?.stringValue ?? "" }
        }
        guard let recipient else {
            // Removed already (or never there): nothing to do.
            return ByteBuffer(string: JSONValue.object(["removed": false]).jsonText)
        }
        guard recipient == name else {
            throw ServiceError(.unauthorized, "only the recipient of \(id) may remove it, not '\(name)'")
        }
        try await deleteEntry(id, deadline: request.deadline, on: loop)
        return ByteBuffer(string: JSONValue.object(["removed": true]).jsonText)
    }

    /// Verifies the body's proof (purpose `mailbox`) against the peer's `users` record and the node's
    /// clock, reading at `majority`, and runs `body` on the same read of the store.
    private func withProof<T: Sendable>(
        _ request: [String: JSONValue], request service: ServiceRequest, on loop: EventLoop,
        _ body: @escaping @Sendable (DocumentStore, String) -> T
    ) async throws -> (name: String, value: T) {
        guard let document = request["proof"]?.objectValue else {
            throw ServiceError.badParams("\(service.service) needs a proof: {\"proof\": {...}} signed by the recipient")
        }
        let proof: PeerProof
        do {
            proof = try PeerProof(document: document)
        } catch {
            throw ServiceError.badParams("\(error)")
        }
        let name = proof.name
        let (record, value) = try await replica.read(
            consistency: .majority, session: nil, deadline: service.deadline, on: loop
        ) { store in
            (store.document(name, in: PeerRecord.collection), body(store, name))
        }.get()
        guard let record, let peer = try? PeerRecord(document: record) else {
            throw ServiceError(.unauthorized, "'\(name)' is not a registered peer")
        }
        do {
            try proof.verify(purpose: .mailbox, signedBy: peer.signingKey, now: clock())
        } catch {
            throw ServiceError(.unauthorized, "\(error)")
        }
        return (name, value)
    }

    // MARK: Deletes and the sweep

    /// Deletes an entry and every chunk document of it.
    private func deleteEntry(_ id: String, deadline: NIODeadline?, on loop: EventLoop) async throws {
        let collection = self.collection
        let ids = try await replica.read(consistency: .majority, session: nil, deadline: deadline, on: loop) {
            store in
            Self.liveIDs(in: store, collection: collection).filter { $0 == id || $0.hasPrefix(id + "~") }
        }.get()
        try await deleteDocuments(ids, deadline: deadline, on: loop)
    }

    private func deleteDocuments(_ ids: [String], deadline: NIODeadline?, on loop: EventLoop) async throws {
        guard !ids.isEmpty else { return }
        do {
            _ = try await replica.write(
                .delete(collection: collection, ids: ids), consistency: .majority, deadline: deadline, on: loop
            ).get()
        } catch let error as ServiceError where error.code == .notFound {
            // Deleted meanwhile.
        }
    }

    /// Every ``MailboxLimits/sweepIntervalMillis``, deletes what ``MailboxSweep`` says is due from
    /// this node's replica (the deletes replicate; every node doing it converges). Ends when the
    /// replica stops.
    func startSweep(on loop: EventLoop) {
        let interval = TimeAmount.milliseconds(Int64(clamping: max(1, limits.sweepIntervalMillis)))
        let mailbox = self
        loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { task in
            guard !mailbox.replica.isStopped else {
                task.cancel()
                return
            }
            mailbox.sweep(on: loop)
        }
    }

    private func sweep(on loop: EventLoop) {
        let now = clock()
        let (collection, limit) = (self.collection, limits.maxSweepDeletes)
        let due = replica.withStore { store in
            store.documents(in: collection).map { MailboxSweep.due($0, now: now, limit: limit) } ?? []
        }
        guard !due.isEmpty else { return }
        let logger = self.logger
        replica.write(.delete(collection: collection, ids: due), consistency: .one, deadline: nil, on: loop)
            .whenComplete { result in
                switch result {
                case .success: logger.info("mailbox sweep", metadata: ["deleted": "\(due.count)"])
                case .failure(let error): logger.notice("mailbox sweep failed", metadata: ["error": "\(error)"])
                }
            }
    }

    // MARK: Helpers

    private static func answer(have: Int, done: Bool) -> ByteBuffer {
        ByteBuffer(bytes: DeliverAnswer(have: have, done: done).encoded())
    }

    /// Every entry of the mailbox (none when it does not exist yet).
    private static func entries(in store: DocumentStore) -> [MailboxEntry] {
        (store.documents(in: MailboxEntry.collection) ?? []).compactMap { MailboxEntry(id: $0.id, document: $0.body) }
    }

    /// Ids of the live documents of `collection`, without building their bodies.
    private static func liveIDs(in store: DocumentStore, collection: String) -> [String] {
        guard let stored = store.collections[collection], stored.exists else { return [] }
        return stored.documents.values.filter(stored.isVisible).map(\.id)
    }

    /// A request's JSON object body, bounded.
    private static func body(_ request: ServiceRequest) throws -> [String: JSONValue] {
        guard request.data.readableBytes <= MailboxServices.maxRequestBytes else {
            throw ServiceError(
                .tooLarge,
                "a \(request.service) body of \(request.data.readableBytes) bytes exceeds \(MailboxServices.maxRequestBytes)"
            )
        }
        guard let object = (try? JSONParser.parse(request.bytes))?.objectValue else {
            throw ServiceError.badParams("\(request.service) needs a JSON object")
        }
        return object
    }

    /// The entry id a body names.
    private static func entryID(_ body: [String: JSONValue]) throws -> String {
        guard let id = body["id"]?.stringValue, (1...256).contains(id.utf8.count), !id.contains("~") else {
            throw ServiceError.badParams("name the mailbox entry: \"id\", as MailboxList gives it")
        }
        return id
    }
}
