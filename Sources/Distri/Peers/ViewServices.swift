import DistriCore
import DistriIdentity
import DistriImaging
import NIOCore

/// The cloud's side of sending images with a number of views:
///
/// - `CloudKey`: the public half (hex) of the cloud's deposit key (X25519), which owners seal image
///   keys to. Every node of a cloud must share the key pair (``CloudNodeConfiguration/depositKey``);
///   a node without one makes its own, which only suits a one-node cloud.
/// - `GrantView` (body: a ``DistriIdentity/ViewGrant`` document): records `permissions/<owner>:<image>:<recipient>`
///   with `remaining` set to the grant's views, when the owner's `users` key signed it, the recipient is
///   registered, the deposited key opens with the deposit key for that grant, and its sequence is above
///   the stored grant's (no replays). `views: 0` revokes.
/// - `ConsumeView` (body: a ``DistriIdentity/ViewRequest`` document signed by the recipient): takes one
///   view with a conditional update (one compare-and-set round among a majority; a minority side
///   refuses), requiring `remaining > 0`, the grant read, and the last accepted request sequence
///   as read, which the request's must exceed (no replays). Only once that has committed does it open the deposit and release the image key,
///   sealed to the recipient's agreement key, as `{"key", "digest", "remaining", "views"}`.
public enum ViewServices {
    public static let cloudKey = "CloudKey"
    public static let grantView = "GrantView"
    public static let consumeView = "ConsumeView"
    /// Conditional-update attempts of one ConsumeView or GrantView against concurrent changes.
    static let maxAttempts = 8
    /// Views a grant document remembers (`recent`: `<request sequence>/<call token>` of the last
    /// ones taken), so a call whose own conditional update was completed by another coordinator, and
    /// then overwritten by a later view, still recognises it as its own. The token is random per call:
    /// the same signed request sent twice at once is two calls, and only the one whose update was
    /// chosen gets the key.
    static let recentRequests = 16

    static func register(on registry: ServiceRegistry, replica: DatabaseReplica, deposit: AgreementKeyPair) {
        let limit = replica.limits.maxDocumentBytes
        let publicHex = Hex.encode(deposit.publicKey)
        registry.register(
            RegisteredService(name: cloudKey, execution: .inline { _ in ByteBuffer(string: publicHex) }))
        registry.register(
            RegisteredService(
                name: grantView,
                execution: .future { request, loop in
                    let promise = loop.makePromise(of: ByteBuffer.self)
                    promise.completeWithTask {
                        let grant = try SignedRecordServices.decodeSigned(
                            request, limit: limit, ViewGrant.init(document:))
                        return try await record(
                            grant, deposit: deposit, replica: replica, deadline: request.deadline, on: loop)
                    }
                    return promise.futureResult
                },
                runsWhereAsked: true))
        registry.register(
            RegisteredService(
                name: consumeView,
                execution: .future { request, loop in
                    let promise = loop.makePromise(of: ByteBuffer.self)
                    promise.completeWithTask {
                        let view = try SignedRecordServices.decodeSigned(
                            request, limit: limit, ViewRequest.init(document:))
                        return try await consume(
                            view, deposit: deposit, replica: replica, deadline: request.deadline, on: loop)
                    }
                    return promise.futureResult
                },
                runsWhereAsked: true, remembersResult: false))
    }

    private struct Stored: Sendable {
        var owner: [String: JSONValue]?
        var recipient: [String: JSONValue]?
        var grant: [String: JSONValue]?
    }

    private static func read(
        owner: String, recipient: String, grant: String, replica: DatabaseReplica, deadline: NIODeadline?,
        on loop: EventLoop
    ) async throws -> Stored {
        try await replica.read(consistency: .majority, session: nil, deadline: deadline, on: loop) { store in
            Stored(
                owner: store.document(owner, in: PeerRecord.collection),
                recipient: store.document(recipient, in: PeerRecord.collection),
                grant: store.document(grant, in: ViewGrant.collection))
        }.get()
    }

    private static func peer(_ document: [String: JSONValue]?, _ name: String) throws -> PeerRecord {
        guard let document, let record = try? PeerRecord(document: document) else {
            throw ServiceError(.unauthorized, "'\(name)' is not a registered peer")
        }
        return record
    }

    // MARK: GrantView

    private static func record(
        _ grant: ViewGrant, deposit: AgreementKeyPair, replica: DatabaseReplica, deadline: NIODeadline?,
        on loop: EventLoop
    ) async throws -> ByteBuffer {
        let collection = ViewGrant.collection
        if grant.views > 0 {
            do {
                let key = try SealedBox.open(
                    grant.sealedKey, with: deposit, domain: ViewGrant.depositDomain, context: Array(grant.id.utf8))
                _ = try ImageKey(serialized: key)
            } catch {
                throw ServiceError.badParams(
                    "the deposited key of \(grant.id) does not open with this cloud's deposit key for that grant: \(error)"
                )
            }
        }
        // Bounded: each pass either returns, throws, or lost a race to a concurrent change.
        for _ in 0..<maxAttempts {
            let stored = try await read(
                owner: grant.owner, recipient: grant.recipient, grant: grant.id, replica: replica, deadline: deadline,
                on: loop)
            let owner = try peer(stored.owner, grant.owner)
            do {
                try grant.verify(signedBy: owner.signingKey)
            } catch {
                throw ServiceError(.unauthorized, "\(error)")
            }
            _ = try peer(stored.recipient, grant.recipient)
            var body = grant.document.filter { $0.key != "_id" }
            body["remaining"] = .number(Double(grant.views))
            guard let existing = stored.grant else {
                body["lastRequest"] = .number(0)
                body["recent"] = .array([])
                try await SignedRecordServices.ensureCollection(
                    collection, replica: replica, deadline: deadline, on: loop
                )
                .get()
                do {
                    let receipt = try await replica.write(
                        .add(collection: collection, id: grant.id, body: body), consistency: .majority,
                        deadline: deadline, on: loop
                    ).get()
                    return DatabaseReply.write(receipt, extra: ["granted": .string(grant.id)])
                } catch let error as ServiceError where error.code == .conflict {
                    continue
                }
            }
            let storedSequence = existing["sequence"]?.wholeNumberValue ?? 0
            guard grant.sequence > storedSequence else {
                throw ServiceError(
                    .conflict,
                    "replayed or stale grant \(grant.id): sequence \(grant.sequence) is not above the stored \(storedSequence)"
                )
            }
            let lastRequest = existing["lastRequest"] ?? .number(0)
            body["lastRequest"] = lastRequest
            body["recent"] = existing["recent"] ?? .array([])
            let filter = try DocumentFilter(
                .object(["sequence": .number(Double(storedSequence)), "lastRequest": lastRequest]))
            do {
                let receipt = try await replica.write(
                    .conditional(
                        collection: collection, id: grant.id, condition: filter,
                        update: DocumentUpdate(set: body, replace: true)),
                    consistency: .majority, deadline: deadline, on: loop
                ).get()
                return DatabaseReply.write(receipt, extra: ["granted": .string(grant.id)])
            } catch let error as ServiceError where error.code == .conflict {
                continue
            }
        }
        throw ServiceError(.unavailable, "the grant \(grant.id) kept changing; try again")
    }

    // MARK: ConsumeView

    private static func consume(
        _ request: ViewRequest, deposit: AgreementKeyPair, replica: DatabaseReplica, deadline: NIODeadline?,
        on loop: EventLoop
    ) async throws -> ByteBuffer {
        /// The grant sequence this call's conditional update was tried under (it may have been chosen).
        var attemptedUnder: UInt64?
        let mark = "\(request.sequence)/\(UInt64.random(in: 1...UInt64.max))"
        // Bounded: each pass either returns, throws, or lost a race to a concurrent view or grant.
        for _ in 0..<maxAttempts {
            let stored = try await read(
                owner: request.owner, recipient: request.recipient, grant: request.grantID, replica: replica,
                deadline: deadline, on: loop)
            let recipient = try peer(stored.recipient, request.recipient)
            do {
                try request.verify(signedBy: recipient.signingKey)
            } catch {
                throw ServiceError(.unauthorized, "\(error)")
            }
            guard let document = stored.grant else {
                throw ServiceError(
                    .unauthorized,
                    "'\(request.owner)' has granted '\(request.recipient)' no views of '\(request.image)'")
            }
            let owner = try peer(stored.owner, request.owner)
            let grant: ViewGrant
            do {
                grant = try ViewGrant(document: document)
                try grant.verify(signedBy: owner.signingKey)
            } catch {
                throw ServiceError(.unauthorized, "the stored grant \(request.grantID) does not verify: \(error)")
            }
            let remaining = document["remaining"]?.wholeNumberValue ?? 0
            let lastRequest = document["lastRequest"]?.wholeNumberValue ?? 0
            let recent = (document["recent"]?.arrayValue ?? []).compactMap(\.stringValue)
            if attemptedUnder == grant.sequence, recent.contains(mark) {
                // This call's own conditional update was chosen although its round reported a conflict
                // (another coordinator completed it, and a later view overwrote its fields before this
                // one could see them): the view is taken, so the key is released.
                return try release(grant, to: recipient, for: request, deposit: deposit, remaining: remaining)
            }
            guard grant.views > 0 else {
                throw ServiceError(.unauthorized, "'\(request.owner)' revoked the views of '\(request.image)'")
            }
            guard remaining > 0 else {
                throw ServiceError(.unauthorized, "no views left of '\(request.image)' from '\(request.owner)'")
            }
            guard request.sequence > lastRequest else {
                throw ServiceError(
                    .conflict,
                    "replayed or stale view request: sequence \(request.sequence) is not above the last accepted \(lastRequest)"
                )
            }
            let filter = try DocumentFilter(
                .object([
                    "sequence": .number(Double(grant.sequence)), "remaining": .object(["$gt": .number(0)]),
                    "lastRequest": .number(Double(lastRequest)),
                ]))
            let accepted = (recent + [mark]).suffix(recentRequests).map(JSONValue.string)
            let receipt: WriteReceipt
            attemptedUnder = grant.sequence
            do {
                receipt = try await replica.write(
                    .conditional(
                        collection: ViewGrant.collection, id: request.grantID, condition: filter,
                        update: DocumentUpdate(
                            set: ["lastRequest": .number(Double(request.sequence)), "recent": .array(accepted)],
                            increment: ["remaining": -1])),
                    consistency: .majority, deadline: deadline, on: loop
                ).get()
            } catch let error as ServiceError where error.code == .conflict {
                continue
            }
            // The view is taken: only now is the key opened and released.
            return try release(
                grant, to: recipient, for: request, deposit: deposit,
                remaining: receipt.document?["remaining"]?.wholeNumberValue ?? 0
            )
        }
        throw ServiceError(.unavailable, "too many concurrent changes to \(request.grantID); try again")
    }

    /// The deposited image key, opened with the deposit key and sealed to the recipient for `request`.
    private static func release(
        _ grant: ViewGrant, to recipient: PeerRecord, for request: ViewRequest, deposit: AgreementKeyPair,
        remaining: UInt64
    ) throws -> ByteBuffer {
        let released: [UInt8]
        do {
            let key = try SealedBox.open(
                grant.sealedKey, with: deposit, domain: ViewGrant.depositDomain, context: Array(grant.id.utf8))
            released = try SealedBox.seal(
                key, to: recipient.agreementKey, domain: ViewGrant.releaseDomain, context: request.releaseContext)
        } catch {
            throw ServiceError(.internal, "the deposited key of \(grant.id) does not open: \(error)")
        }
        let reply: JSONValue = .object([
            "key": .string(Hex.encode(released)), "digest": .string(Hex.encode(grant.digest)),
            "remaining": .number(Double(remaining)), "views": .number(Double(grant.views)),
        ])
        return ByteBuffer(string: reply.jsonText)
    }
}
