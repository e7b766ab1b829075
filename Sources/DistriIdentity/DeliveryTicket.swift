import DistriCore

/// What travels with a delivery's chunks, through the cloud's relay and into its mailbox: which grant
/// the sealed image is delivered under (owner, image, recipient, sequence) and the sealed image's
/// digest, but not the grant's sealed image key. Nobody can act on a ticket alone: the recipient, the
/// relay and the mailbox each check it against the grant in force in the cloud (`permissions`,
/// signed by the owner's registered key: same digest, views left), so the image key stays in
/// `permissions` and is released only through views.
public struct DeliveryTicket: Sendable, Equatable {
    /// The grant's owner.
    public var owner: String
    /// The image's name.
    public var image: String
    /// The recipient.
    public var recipient: String
    /// SHA-256 of the sealed PNG.
    public var digest: [UInt8]
    /// The grant's sequence.
    public var sequence: UInt64

    /// A ticket naming the grant `owner:image:recipient` at `sequence`, for the sealed PNG of `digest`.
    public init(owner: String, image: String, recipient: String, digest: [UInt8], sequence: UInt64) {
        self.owner = owner
        self.image = image
        self.recipient = recipient
        self.digest = digest
        self.sequence = sequence
    }

    /// The grant's `permissions` document id.
    public var id: String { ViewGrant.id(owner: owner, image: image, recipient: recipient) }

    /// Checks the fields' shapes.
    public func validate() throws(IdentityError) {
        try PeerName.validate(owner, what: "owner")
        try PeerName.validate(image, what: "image name")
        try PeerName.validate(recipient, what: "recipient")
        guard owner != recipient else { throw .malformed("an owner does not deliver to itself") }
        guard digest.count == 32 else { throw .malformed("the image digest is a 32-byte SHA-256") }
        try validateSequence(sequence)
    }

    /// Throws unless `grant` (verified against `ownerKey` here) is the grant in force this ticket
    /// delivers under: its id, signed by the owner, views left, the same image digest.
    public func check(inForce grant: ViewGrant?, ownerKey: SigningPublicKey) throws(IdentityError) {
        guard let grant, grant.id == id, (try? grant.verify(signedBy: ownerKey)) != nil else {
            throw .badSignature("the cloud holds no grant by '\(owner)' for this delivery (\(id))")
        }
        guard grant.views > 0 else { throw .malformed("'\(owner)' revoked the grant \(id)") }
        guard grant.digest == digest else {
            throw .malformed("the grant \(id) in force is for another image (its digest differs)")
        }
    }

    /// The ticket as a JSON object.
    public var document: [String: JSONValue] {
        [
            "owner": .string(owner), "image": .string(image), "recipient": .string(recipient),
            "digest": .string(Hex.encode(digest)), "sequence": .number(Double(sequence)),
        ]
    }

    /// A ticket from its JSON (a whole grant document is read too; its key is ignored).
    public init(document: [String: JSONValue]) throws(IdentityError) {
        let fields = DocumentFields(document, what: "delivery ticket")
        self.init(
            owner: try fields.string("owner"), image: try fields.string("image"),
            recipient: try fields.string("recipient"), digest: try fields.hex("digest"),
            sequence: try fields.integer("sequence"))
        try validate()
    }
}

extension ViewGrant {
    /// The ticket deliveries under this grant carry (everything but the sealed key and signature).
    public var ticket: DeliveryTicket {
        DeliveryTicket(owner: owner, image: image, recipient: recipient, digest: digest, sequence: sequence)
    }
}
