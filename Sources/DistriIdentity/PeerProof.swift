import DistriCore

/// A peer's short-lived proof that it holds its name's signing key, for calls that act as that peer
/// without writing a signed record: attaching a relay link (`purpose` ``Purpose/relay``) and
/// collecting its mailbox (``Purpose/mailbox``). The cloud accepts it when the signature is by the
/// signing key of the peer's `users` record and `issuedAt` lies within ``maxSkewMillis`` of its own
/// clock; the purpose and the random nonce keep a proof from serving another kind of call.
public struct PeerProof: SignedRecord, Equatable {
    static let domain = "distri.peer-proof.v1"
    /// How far `issuedAt` may lie from the verifier's clock: 5 minutes.
    public static let maxSkewMillis: UInt64 = 5 * 60 * 1000

    /// What a proof may be used for.
    public struct Purpose: RawRepresentable, Sendable, Equatable, Hashable {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// Attaching a relay link to a node.
        public static let relay = Purpose(rawValue: "relay")
        /// Listing, fetching and removing the peer's mailbox deliveries.
        public static let mailbox = Purpose(rawValue: "mailbox")
    }

    /// The peer's name.
    public var name: String
    /// What the proof may be used for.
    public var purpose: Purpose
    /// Milliseconds since 1970 when the peer signed it.
    public var issuedAt: UInt64
    /// 16 random bytes.
    public var nonce: [UInt8]
    public var signature: [UInt8]

    /// A proof with the given fields (unsigned unless `signature` is given).
    public init(name: String, purpose: Purpose, issuedAt: UInt64, nonce: [UInt8], signature: [UInt8] = []) {
        self.name = name
        self.purpose = purpose
        self.issuedAt = issuedAt
        self.nonce = nonce
        self.signature = signature
    }

    /// A fresh proof for `name`, signed by `keys`.
    public static func make(name: String, purpose: Purpose, signing keys: SigningKeyPair, now: UInt64)
        throws(IdentityError) -> PeerProof
    {
        var generator = SystemRandomNumberGenerator()
        let nonce = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return try PeerProof(name: name, purpose: purpose, issuedAt: now, nonce: nonce).signed(by: keys)
    }

    public var signedBytes: [UInt8] {
        var encoder = CanonicalEncoder(domain: Self.domain)
        encoder.append(name)
        encoder.append(purpose.rawValue)
        encoder.append(issuedAt)
        encoder.append(nonce)
        return encoder.bytes
    }

    public func validate() throws(IdentityError) {
        try PeerName.validate(name, what: "peer name")
        guard (1...32).contains(purpose.rawValue.utf8.count) else {
            throw .malformed("a proof's purpose has 1 to 32 bytes")
        }
        guard nonce.count == 16 else { throw .malformed("a proof's nonce has 16 bytes") }
        guard issuedAt <= JSONValue.maxExactInteger else {
            throw .malformed("issuedAt must be a whole number up to 2^53")
        }
    }

    public var badSignatureMessage: String { "the proof is not signed by the key '\(name)' registered" }

    /// Checks shape, purpose, freshness against `now` and the signature by `key`.
    public func verify(purpose expected: Purpose, signedBy key: SigningPublicKey, now: UInt64) throws(IdentityError) {
        guard purpose == expected else {
            throw .malformed("a proof for '\(purpose.rawValue)' cannot serve '\(expected.rawValue)'")
        }
        guard issuedAt + Self.maxSkewMillis >= now, issuedAt <= now + Self.maxSkewMillis else {
            throw .malformed(
                "the proof of '\(name)' was signed at \(issuedAt), more than 5 minutes from the cloud's clock (\(now)); check the clock"
            )
        }
        try verify(signedBy: key)
    }

    /// The proof as JSON.
    public var document: [String: JSONValue] {
        [
            "name": .string(name), "purpose": .string(purpose.rawValue), "issuedAt": .number(Double(issuedAt)),
            "nonce": .string(Hex.encode(nonce)), "signature": .string(Hex.encode(signature)),
        ]
    }

    /// A proof from its JSON; checks shapes, not the signature.
    public init(document: [String: JSONValue]) throws(IdentityError) {
        let fields = DocumentFields(document, what: "peer proof")
        self.init(
            name: try fields.string("name"), purpose: Purpose(rawValue: try fields.string("purpose")),
            issuedAt: try fields.integer("issuedAt"), nonce: try fields.hex("nonce"),
            signature: try fields.hex("signature"))
        try validate()
    }
}
