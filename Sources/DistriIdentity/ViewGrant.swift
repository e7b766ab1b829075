import DistriCore

/// An owner's permission for one recipient to view one image a number of times, as the cloud's
/// `permissions` collection holds it: signed by the owner over every field, including the image's
/// digest and its key sealed to the cloud's deposit key (``SealedBox``, bound to ``id``). `views: 0`
/// revokes. Sequences only rise; the cloud refuses a grant whose sequence is not above the stored one.
public struct ViewGrant: SignedRecord, Equatable {
    /// The collection grants are kept in.
    public static let collection = "permissions"
    static let domain = "distri.view-grant.v1"
    /// The ``SealedBox`` domain of image keys deposited with the cloud.
    public static let depositDomain = "deposit"
    /// The ``SealedBox`` domain of image keys the cloud releases to a recipient.
    public static let releaseDomain = "release"
    /// Most views one grant gives.
    public static let maxViews: UInt64 = 1_000_000

    /// The image's owner, who signs the grant.
    public var owner: String
    /// The image's name.
    public var image: String
    /// The peer the views are granted to.
    public var recipient: String
    /// The views granted; 0 revokes.
    public var views: UInt64
    /// SHA-256 of the sealed PNG the recipient gets.
    public var digest: [UInt8]
    /// The image key sealed to the cloud's deposit key, context ``id``; empty when revoking.
    public var sealedKey: [UInt8]
    /// Rises with every grant of the same id; the cloud refuses one not above the stored one.
    public var sequence: UInt64
    public var signature: [UInt8]

    /// A grant with the given fields (unsigned unless `signature` is given).
    public init(
        owner: String, image: String, recipient: String, views: UInt64, digest: [UInt8], sealedKey: [UInt8],
        sequence: UInt64, signature: [UInt8] = []
    ) {
        self.owner = owner
        self.image = image
        self.recipient = recipient
        self.views = views
        self.digest = digest
        self.sealedKey = sealedKey
        self.sequence = sequence
        self.signature = signature
    }

    /// `owner:image:recipient` (names never hold ':'): the `permissions` document id.
    public static func id(owner: String, image: String, recipient: String) -> String {
        "\(owner):\(image):\(recipient)"
    }

    /// The grant's id, `owner:image:recipient`.
    public var id: String { Self.id(owner: owner, image: image, recipient: recipient) }

    public var signedBytes: [UInt8] {
        var encoder = CanonicalEncoder(domain: Self.domain)
        encoder.append(owner)
        encoder.append(image)
        encoder.append(recipient)
        encoder.append(views)
        encoder.append(digest)
        encoder.append(sealedKey)
        encoder.append(sequence)
        return encoder.bytes
    }

    public func validate() throws(IdentityError) {
        try PeerName.validate(owner, what: "owner")
        try PeerName.validate(image, what: "image name")
        try PeerName.validate(recipient, what: "recipient")
        guard owner != recipient else { throw .malformed("an owner does not grant views to itself") }
        guard views <= Self.maxViews else { throw .malformed("a grant gives at most \(Self.maxViews) views") }
        guard digest.count == 32 else { throw .malformed("the image digest is a 32-byte SHA-256") }
        guard sealedKey.count <= SealedBox.maxPlaintext + SealedBox.overhead, views == 0 || !sealedKey.isEmpty else {
            throw .malformed("a grant of views carries the sealed image key")
        }
        try validateSequence(sequence)
    }

    public var badSignatureMessage: String { "the grant \(id) is not signed by its owner '\(owner)'" }

    /// The signed fields as a document (`_id` is ``id``).
    public var document: [String: JSONValue] {
        [
            "_id": .string(id), "owner": .string(owner), "image": .string(image), "recipient": .string(recipient),
            "views": .number(Double(views)), "digest": .string(Hex.encode(digest)),
            "sealedKey": .string(Hex.encode(sealedKey)), "sequence": .number(Double(sequence)),
            "signature": .string(Hex.encode(signature)),
        ]
    }

    /// A grant from its document (extra fields, such as the cloud's `remaining`, are ignored).
    public init(document: [String: JSONValue]) throws(IdentityError) {
        let fields = DocumentFields(document, what: "grant")
        self.init(
            owner: try fields.string("owner"), image: try fields.string("image"),
            recipient: try fields.string("recipient"), views: try fields.integer("views"),
            digest: try fields.hex("digest"), sealedKey: try fields.hex("sealedKey"),
            sequence: try fields.integer("sequence"), signature: try fields.hex("signature"))
        if let id = document["_id"], id != .string(self.id) {
            throw .malformed("the grant's _id differs from owner:image:recipient")
        }
        try validate()
    }
}

/// A recipient's signed request to consume one view of a grant. Its sequence must be above the last
/// request the cloud accepted for that grant, so a replayed request is refused.
public struct ViewRequest: SignedRecord, Equatable {
    static let domain = "distri.view-request.v1"

    /// The image's owner.
    public var owner: String
    /// The image's name.
    public var image: String
    /// The recipient taking the view, who signs the request.
    public var recipient: String
    /// Rises with every request; the cloud refuses one not above the last it accepted.
    public var sequence: UInt64
    public var signature: [UInt8]

    /// A request with the given fields (unsigned unless `signature` is given).
    public init(owner: String, image: String, recipient: String, sequence: UInt64, signature: [UInt8] = []) {
        self.owner = owner
        self.image = image
        self.recipient = recipient
        self.sequence = sequence
        self.signature = signature
    }

    /// The id of the grant the view is taken from.
    public var grantID: String { ViewGrant.id(owner: owner, image: image, recipient: recipient) }

    public var signedBytes: [UInt8] {
        var encoder = CanonicalEncoder(domain: Self.domain)
        encoder.append(owner)
        encoder.append(image)
        encoder.append(recipient)
        encoder.append(sequence)
        return encoder.bytes
    }

    public func validate() throws(IdentityError) {
        try PeerName.validate(owner, what: "owner")
        try PeerName.validate(image, what: "image name")
        try PeerName.validate(recipient, what: "recipient")
        try validateSequence(sequence)
    }

    public var badSignatureMessage: String { "the view request is not signed by '\(recipient)'" }

    /// The ``SealedBox`` context of the key released for this request.
    public var releaseContext: [UInt8] { signedBytes }

    /// The request as a JSON object.
    public var document: [String: JSONValue] {
        [
            "owner": .string(owner), "image": .string(image), "recipient": .string(recipient),
            "sequence": .number(Double(sequence)), "signature": .string(Hex.encode(signature)),
        ]
    }

    /// The request a JSON object holds; throws when a field is missing or malformed.
    public init(document: [String: JSONValue]) throws(IdentityError) {
        let fields = DocumentFields(document, what: "view request")
        self.init(
            owner: try fields.string("owner"), image: try fields.string("image"),
            recipient: try fields.string("recipient"), sequence: try fields.integer("sequence"),
            signature: try fields.hex("signature"))
        try validate()
    }
}
