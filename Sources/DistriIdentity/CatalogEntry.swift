import DistriCore

/// An image a peer offers, as the `catalog` collection holds it: name, size, dimensions and owner,
/// signed by the owner's signing key. Never the image's key.
public struct CatalogEntry: SignedRecord, Equatable {
    /// The collection catalog entries are kept in.
    public static let collection = "catalog"
    static let domain = "distri.catalog-entry.v1"
    /// The domain of entries that carry ``kind``.
    static let domainV2 = "distri.catalog-entry.v2"

    /// The owning peer's name.
    public var owner: String
    /// The image's name, unique per owner.
    public var name: String
    /// Size of the original (the image or file before sealing) in bytes.
    public var bytes: UInt64
    /// The original image's dimensions (0 for a file that is not an image).
    public var width: UInt64
    /// The original image's height (0 for a file that is not an image).
    public var height: UInt64
    /// What it is (`png`, `jpeg`, or a media type such as `application/pdf`), only when the owner chose
    /// to publish it; nil otherwise.
    public var kind: String?
    /// Rises with every entry the owner signs for this image; replays are refused.
    public var sequence: UInt64
    /// Ed25519 signature of ``signedBytes`` by the owner's signing key.
    public var signature: [UInt8]

    /// An entry with the given fields (unsigned unless `signature` is given).
    public init(
        owner: String, name: String, bytes: UInt64, width: UInt64, height: UInt64, sequence: UInt64,
        kind: String? = nil, signature: [UInt8] = []
    ) {
        self.kind = kind
        self.owner = owner
        self.name = name
        self.bytes = bytes
        self.width = width
        self.height = height
        self.sequence = sequence
        self.signature = signature
    }

    /// The document id: `owner/name`.
    public var id: String { "\(owner)/\(name)" }

    public var signedBytes: [UInt8] {
        var encoder = CanonicalEncoder(domain: kind == nil ? Self.domain : Self.domainV2)
        encoder.append(owner)
        encoder.append(name)
        encoder.append(bytes)
        encoder.append(width)
        encoder.append(height)
        encoder.append(sequence)
        if let kind { encoder.append(kind) }
        return encoder.bytes
    }

    public func validate() throws(IdentityError) {
        try PeerName.validate(owner, what: "owner")
        try PeerName.validate(name, what: "image name")
        guard [bytes, width, height, sequence].allSatisfy({ $0 <= JSONValue.maxExactInteger }), sequence > 0 else {
            throw .malformed("sizes and sequence must be whole numbers up to 2^53 (sequence from 1)")
        }
        if let kind, kind.isEmpty || kind.utf8.count > 127 {
            throw .malformed("the kind must be 1 to 127 bytes")
        }
    }

    public var badSignatureMessage: String { "the catalog entry \(id) is not signed by its owner '\(owner)'" }

    public var document: [String: JSONValue] {
        var document: [String: JSONValue] = [
            "_id": .string(id), "owner": .string(owner), "name": .string(name), "bytes": .number(Double(bytes)),
            "width": .number(Double(width)), "height": .number(Double(height)),
            "sequence": .number(Double(sequence)), "signature": .string(Hex.encode(signature)),
        ]
        if let kind { document["kind"] = .string(kind) }
        return document
    }

    /// The entry a document of `catalog` holds; throws when a field is missing or malformed.
    public init(document: [String: JSONValue]) throws(IdentityError) {
        let fields = DocumentFields(document, what: "catalog entry")
        self.init(
            owner: try fields.string("owner"), name: try fields.string("name"), bytes: try fields.integer("bytes"),
            width: try fields.integer("width"), height: try fields.integer("height"),
            sequence: try fields.integer("sequence"), kind: try fields.optionalString("kind"),
            signature: try fields.hex("signature"))
        if let id = document["_id"], id != .string(self.id) {
            throw .malformed("the catalog entry's _id differs from owner/name")
        }
        try validate()
    }
}
