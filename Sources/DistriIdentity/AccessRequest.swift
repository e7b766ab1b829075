import DistriCore

/// A peer's request for views of another peer's image, and the owner's answer, as the `requests`
/// collection holds it (one document per owner, image and requester, id `owner:image:requester`).
///
/// The requester signs a `pending` request; the owner signs the answer (`granted` or `rejected`) over
/// the same fields. The cloud keeps whichever was signed last by the party allowed to sign that state,
/// and sequences only rise, so neither side can forge or replay the other's word.
public struct AccessRequest: SignedRecord, Equatable {
    /// The collection requests are kept in.
    public static let collection = "requests"
    static let domain = "distri.access-request.v1"

    /// Where a request stands.
    public enum State: String, Sendable {
        /// Asked by the requester, not answered yet.
        case pending
        /// The owner granted views (the grant itself is in `permissions`).
        case granted
        /// The owner said no.
        case rejected
    }

    /// The image's owner, asked for views.
    public var owner: String
    /// The image's name.
    public var image: String
    /// The peer asking for views.
    public var requester: String
    /// Views asked for (pending) or given (granted).
    public var views: UInt64
    /// Pending, or the owner's answer.
    public var state: State
    /// Rises with every version signed; the cloud refuses one not above the stored sequence.
    public var sequence: UInt64
    /// Ed25519 signature by ``signer``.
    public var signature: [UInt8]

    /// A request with the given fields (unsigned unless `signature` is given).
    public init(
        owner: String, image: String, requester: String, views: UInt64, state: State, sequence: UInt64,
        signature: [UInt8] = []
    ) {
        self.owner = owner
        self.image = image
        self.requester = requester
        self.views = views
        self.state = state
        self.sequence = sequence
        self.signature = signature
    }

    /// The document id, the same as the grant's: `owner:image:requester`.
    public var id: String { ViewGrant.id(owner: owner, image: image, recipient: requester) }

    /// Who must sign this state: the requester asks, the owner answers.
    public var signer: String { state == .pending ? requester : owner }

    public var signedBytes: [UInt8] {
        var encoder = CanonicalEncoder(domain: Self.domain)
        encoder.append(owner)
        encoder.append(image)
        encoder.append(requester)
        encoder.append(views)
        encoder.append(state.rawValue)
        encoder.append(sequence)
        return encoder.bytes
    }

    public func validate() throws(IdentityError) {
        try PeerName.validate(owner, what: "owner")
        try PeerName.validate(image, what: "image name")
        try PeerName.validate(requester, what: "requester")
        guard owner != requester else { throw .malformed("a peer does not ask itself for views") }
        guard views <= ViewGrant.maxViews, state != .pending || views > 0 else {
            throw .malformed("a request asks for 1 to \(ViewGrant.maxViews) views")
        }
        try validateSequence(sequence)
    }

    public var badSignatureMessage: String { "the request \(id) (\(state.rawValue)) is not signed by '\(signer)'" }

    public var document: [String: JSONValue] {
        [
            "_id": .string(id), "owner": .string(owner), "image": .string(image), "requester": .string(requester),
            "views": .number(Double(views)), "state": .string(state.rawValue), "sequence": .number(Double(sequence)),
            "signature": .string(Hex.encode(signature)),
        ]
    }

    /// The request a document of `requests` holds; throws when a field is missing or malformed.
    public init(document: [String: JSONValue]) throws(IdentityError) {
        let fields = DocumentFields(document, what: "request")
        let stateText = try fields.string("state")
        guard let state = State(rawValue: stateText) else {
            throw .malformed("a request's state is pending, granted or rejected, not '\(stateText)'")
        }
        self.init(
            owner: try fields.string("owner"), image: try fields.string("image"),
            requester: try fields.string("requester"), views: try fields.integer("views"), state: state,
            sequence: try fields.integer("sequence"), signature: try fields.hex("signature"))
        if let id = document["_id"], id != .string(self.id) {
            throw .malformed("the request's _id differs from owner:image:requester")
        }
        try validate()
    }
}
