import DistriCore

/// The `permissions` rules. A grant document holds the owner's signed ``ViewGrant`` fields plus the
/// cloud's `remaining` (views left) and `lastRequest` (the sequence of the last view request taken).
/// Documents written before this ledger may also hold `recent`; it is ignored, and a new grant drops it.
extension GrantLedger {
    /// The write that records `grant` (`views: 0` revokes; a later grant gives views again), or why
    /// not: the owner signed it, the recipient is registered, and its sequence is above the stored
    /// grant's. `remaining` becomes the grant's views; `lastRequest` carries over, so a view request
    /// taken under an earlier grant cannot be replayed under this one.
    ///
    /// `peers` must hold the owner and the recipient. The shell checks beforehand that the deposited
    /// key opens with the cloud's deposit key (that needs the private key).
    public func grant(_ grant: ViewGrant) throws(LedgerRefusal) -> LedgerWrite {
        try verify(grant, signedBy: try peer(grant.owner))
        _ = try peer(grant.recipient)
        var body = grant.document.filter { $0.key != "_id" }
        body["remaining"] = .number(Double(grant.views))
        guard let stored else {
            body["lastRequest"] = .number(0)
            return LedgerWrite(
                collection: ViewGrant.collection, id: grant.id, condition: nil, update: DocumentUpdate(set: body))
        }
        let storedSequence = stored["sequence"]?.wholeNumberValue ?? 0
        guard grant.sequence > storedSequence else {
            throw LedgerRefusal(
                .stale,
                "replayed or stale grant \(grant.id): sequence \(grant.sequence) is not above the stored \(storedSequence)"
            )
        }
        let lastRequest = stored["lastRequest"] ?? .number(0)
        body["lastRequest"] = lastRequest
        // Unchanged since read: neither a newer grant nor a view came in between.
        let condition: JSONValue = .object(["sequence": .number(Double(storedSequence)), "lastRequest": lastRequest])
        return LedgerWrite(
            collection: ViewGrant.collection, id: grant.id, condition: condition,
            update: DocumentUpdate(set: body, replace: true))
    }

    /// The view `request` may take, or why not: the recipient signed it, the stored grant verifies
    /// under its owner's key and gives views, one is left, and the request's sequence is above the
    /// last one taken (no replays). The write takes exactly one view, conditional on the grant, its
    /// `remaining` being above zero and `lastRequest` as read, so concurrent views never overshoot.
    ///
    /// `alreadyTaken`: the stored grant holds the call's idempotency key, so an earlier attempt of
    /// this call (a retry after a failover, or a pass whose update another coordinator completed)
    /// took its view: it is released again, while the grant still gives views, without taking
    /// another. `peers` must hold the owner and the recipient.
    public func view(_ request: ViewRequest, alreadyTaken: Bool = false) throws(LedgerRefusal) -> ViewTaking {
        let recipient = try peer(request.recipient)
        try verify(request, signedBy: recipient)
        guard let stored else {
            throw LedgerRefusal(
                .unauthorized, "'\(request.owner)' has granted '\(request.recipient)' no views of '\(request.image)'")
        }
        let owner = try peer(request.owner)
        let grant: ViewGrant
        do {
            grant = try ViewGrant(document: stored)
            try grant.verify(signedBy: owner.signingKey)
        } catch {
            throw LedgerRefusal(.unauthorized, "the stored grant \(request.grantID) does not verify: \(error)")
        }
        let remaining = stored["remaining"]?.wholeNumberValue ?? 0
        guard grant.views > 0 else {
            throw LedgerRefusal(.unauthorized, "'\(request.owner)' revoked the views of '\(request.image)'")
        }
        if alreadyTaken {
            return ViewTaking(grant: grant, recipient: recipient, write: nil, remaining: remaining)
        }
        guard remaining > 0 else {
            throw LedgerRefusal(.unauthorized, "no views left of '\(request.image)' from '\(request.owner)'")
        }
        let lastRequest = stored["lastRequest"]?.wholeNumberValue ?? 0
        guard request.sequence > lastRequest else {
            throw LedgerRefusal(
                .stale,
                "replayed or stale view request: sequence \(request.sequence) is not above the last accepted \(lastRequest)"
            )
        }
        let condition: JSONValue = .object([
            "sequence": .number(Double(grant.sequence)), "remaining": .object(["$gt": .number(0)]),
            "lastRequest": .number(Double(lastRequest)),
        ])
        let take = DocumentUpdate(
            set: ["lastRequest": .number(Double(request.sequence))], increment: ["remaining": -1])
        return ViewTaking(
            grant: grant, recipient: recipient,
            write: LedgerWrite(collection: ViewGrant.collection, id: grant.id, condition: condition, update: take),
            remaining: remaining)
    }
}
