import DistriCore
import DistriIdentity
import DistriImaging
import NIOCore

/// The cloud's side of sending images with a number of views:
///
/// - `CloudKey`: the public half (hex) of the cloud's deposit key (X25519), which owners seal image
///   keys to. Every node of a cloud must share the key pair (``CloudNodeConfiguration/depositKey``);
///   a node without one makes its own, which only suits a one-node cloud.
/// - `GrantView` (body: a `ViewGrant` document): records `permissions/<owner>:<image>:<recipient>`
///   with `remaining` set to the grant's views, when the owner's `users` key signed it, the recipient is
///   registered, the deposited key opens with the deposit key for that grant, and its sequence is above
///   the stored grant's (no replays). `views: 0` revokes.
/// - `ConsumeView` (body: a `ViewRequest` document signed by the recipient): takes one
///   view with a conditional update (one compare-and-set round among a majority; a minority side
///   refuses), requiring `remaining > 0`, the grant read, and the last accepted request sequence
///   as read, which the request's must exceed (no replays). Only once that has committed does it open
///   the deposit and release the image key, sealed to the recipient's agreement key, as
///   `{"key", "digest", "remaining", "views"}`. The call's task id is the update's idempotency key: a
///   retry of the call whose view was taken gets the key again without taking a second view.
///
/// The rules are `GrantLedger`'s; `LedgerWriter` reads, writes and retries.
public enum ViewServices {
    /// Answers the cloud's deposit public key (X25519).
    public static let cloudKey = "CloudKey"
    /// Records a view grant signed by the image's owner.
    public static let grantView = "GrantView"
    /// Takes one view of a grant and releases the image key to the recipient.
    public static let consumeView = "ConsumeView"
    static func register(on registry: ServiceRegistry, replica: DatabaseReplica, deposit: AgreementKeyPair) {
        let limit = replica.limits.maxDocumentBytes
        let publicHex = Hex.encode(deposit.publicKey)
        registry.register(
            RegisteredService(name: cloudKey, execution: .inline { _ in ByteBuffer(string: publicHex) }))
        registry.register(
            RegisteredService(
                name: grantView,
                execution: LedgerWriter.execution { request, loop in
                    let grant = try SignedRecordServices.decodeSigned(request, limit: limit, ViewGrant.init(document:))
                    return try await record(
                        grant, deposit: deposit, replica: replica, deadline: request.deadline, on: loop)
                },
                runsWhereAsked: true))
        registry.register(
            RegisteredService(
                name: consumeView,
                execution: LedgerWriter.execution { request, loop in
                    let view = try SignedRecordServices.decodeSigned(request, limit: limit, ViewRequest.init(document:))
                    // The same on every retry of the call (a failover, or the client's own retry), so a
                    // retry whose first attempt took the view is answered with it, not charged again.
                    let key = request.taskID != 0 ? request.taskID : UInt64.random(in: 1...UInt64.max)
                    return try await consume(
                        view, key: key, deposit: deposit, replica: replica, deadline: request.deadline, on: loop)
                },
                runsWhereAsked: true, remembersResult: false))
    }

    // MARK: GrantView

    private static func record(
        _ grant: ViewGrant, deposit: AgreementKeyPair, replica: DatabaseReplica, deadline: NIODeadline?,
        on loop: EventLoop
    ) async throws -> ByteBuffer {
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
        let written = try await LedgerWriter.write(
            "the grant \(grant.id)", ViewGrant.collection, grant.id, peers: [grant.owner, grant.recipient],
            replica: replica, deadline: deadline, on: loop
        ) { ledger throws(LedgerRefusal) in try ledger.grant(grant) }
        return try SignedRecordServices.reply(written, extra: ["granted": .string(grant.id)])
    }

    // MARK: ConsumeView

    /// What a ConsumeView reads: the ledger's documents, and whether the grant holds the call's key.
    private struct ViewState: Sendable {
        var ledger: GrantLedger
        var holdsKey: Bool
    }

    /// Takes one view under idempotency key `key` and releases the key. The replica's conditional
    /// update reports whether this call's own update is the one chosen: success (also when another
    /// coordinator completed an earlier attempt's update, found by `key` in the grant), or `conflict`
    /// (the condition failed on a state without `key`: not taken, so read and try again). A pass that
    /// finds `key` in the grant before writing (a retried call, or a pass whose update another
    /// coordinator completed after its round gave up) releases the view already taken.
    private static func consume(
        _ request: ViewRequest, key: UInt64, deposit: AgreementKeyPair, replica: DatabaseReplica,
        deadline: NIODeadline?, on loop: EventLoop
    ) async throws -> ByteBuffer {
        let written = try await LedgerWriter.run(
            "the grant \(request.grantID)", replica: replica, idempotencyKey: key, deadline: deadline, on: loop,
            read: { store in
                let collection = ViewGrant.collection
                return ViewState(
                    ledger: LedgerWriter.ledger(
                        store, peers: [request.owner, request.recipient], collection, request.grantID),
                    holdsKey: store.collections[collection]?.documents[request.grantID]?.applied[key] != nil)
            },
            decide: { state throws(LedgerRefusal) in
                let taking = try state.ledger.view(request, alreadyTaken: state.holdsKey)
                return (taking.write, taking)
            })
        let taking = written.outcome
        // The view is taken: only now is the key opened and released.
        let remaining = written.receipt.map { $0.document?["remaining"]?.wholeNumberValue ?? 0 } ?? taking.remaining
        return try release(taking.grant, to: taking.recipient, for: request, deposit: deposit, remaining: remaining)
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
