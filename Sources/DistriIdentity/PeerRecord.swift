import DistriCore

/// A peer as the `users` collection holds it: its name, where it listens, its public keys, when it
/// was last seen, and the peer's Ed25519 signature over all of that. The cloud accepts a change to a
/// peer's record only with a valid signature by the key the name was first registered with, and a
/// sequence above the stored one (no replays).
public struct PeerRecord: Sendable, Equatable {
    /// The collection peer records live in; the document id is the peer's name.
    public static let collection = "users"
    static let domain = "distri.peer-record.v1"
    /// The domain of records that carry ``reachable``.
    static let domainV2 = "distri.peer-record.v2"
    /// Most addresses a record may carry.
    public static let maxAddresses = 16

    /// The peer's name.
    public var name: String
    /// `host:port` addresses other peers can reach this peer at.
    public var addresses: [String]
    /// The peer's Ed25519 public key, fixed at its first registration.
    public var signingKey: SigningPublicKey
    /// The X25519 public key (32 bytes) for agreeing secrets with this peer.
    public var agreementKey: [UInt8]
    /// Milliseconds since 1970 when the peer signed this record.
    public var lastSeen: UInt64
    /// Whether the cloud could dial one of ``addresses`` when the peer last checked (a reachability
    /// check, `CheckReachable`): false for a peer behind NAT, which others reach through the cloud's
    /// relay. nil in records from before the check (senders then try the addresses first).
    public var reachable: Bool?
    /// Rises with every record the peer signs (milliseconds at signing); the cloud refuses any record
    /// whose sequence is not above the stored one.
    public var sequence: UInt64
    /// Ed25519 signature of ``signedBytes`` (64 bytes; empty until signed).
    public var signature: [UInt8]

    /// A record with the given fields (unsigned unless `signature` is given).
    public init(
        name: String, addresses: [String], signingKey: SigningPublicKey, agreementKey: [UInt8], lastSeen: UInt64,
        sequence: UInt64, reachable: Bool? = nil, signature: [UInt8] = []
    ) {
        self.reachable = reachable
        self.name = name
        self.addresses = addresses
        self.signingKey = signingKey
        self.agreementKey = agreementKey
        self.lastSeen = lastSeen
        self.sequence = sequence
        self.signature = signature
    }

    /// The record signed by `keys` (which must be the record's signing key).
    public static func signed(
        name: String, addresses: [String], signing keys: SigningKeyPair, agreementKey: [UInt8], now: UInt64,
        sequence: UInt64? = nil, reachable: Bool? = nil
    ) throws(IdentityError) -> PeerRecord {
        var record = PeerRecord(
            name: name, addresses: addresses, signingKey: keys.publicKey, agreementKey: agreementKey, lastSeen: now,
            sequence: sequence ?? now, reachable: reachable)
        try record.validate()
        record.signature = try keys.sign(record.signedBytes)
        return record
    }

    /// The canonical bytes the signature covers (with ``reachable``, under the v2 domain).
    public var signedBytes: [UInt8] {
        var encoder = CanonicalEncoder(domain: reachable == nil ? Self.domain : Self.domainV2)
        encoder.append(name)
        encoder.append(list: addresses)
        encoder.append(signingKey.raw)
        encoder.append(agreementKey)
        encoder.append(lastSeen)
        encoder.append(sequence)
        if let reachable { encoder.append(UInt64(reachable ? 1 : 0)) }
        return encoder.bytes
    }

    /// Checks the fields' shapes (not the signature).
    public func validate() throws(IdentityError) {
        try PeerName.validate(name, what: "peer name")
        guard addresses.count <= Self.maxAddresses else {
            throw .malformed("a peer record carries at most \(Self.maxAddresses) addresses")
        }
        for address in addresses where address.isEmpty || address.utf8.count > 300 {
            throw .malformed("an address must have 1 to 300 bytes")
        }
        try AgreementKeyPair.validatePublicKey(agreementKey)
        guard lastSeen <= JSONValue.maxExactInteger, sequence <= JSONValue.maxExactInteger, sequence > 0 else {
            throw .malformed("lastSeen and sequence must be whole numbers from 1 to 2^53")
        }
    }

    /// Checks the shapes and that the signature is the record's signing key's.
    public func verify() throws(IdentityError) {
        try validate()
        guard signingKey.isValidSignature(signature, for: signedBytes) else {
            throw .badSignature("the record of '\(name)' is not signed by its signing key")
        }
    }

    /// The DB document (`_id` is the name).
    public var document: [String: JSONValue] {
        var document: [String: JSONValue] = [
            "_id": .string(name), "name": .string(name), "addresses": .array(addresses.map(JSONValue.string)),
            "signingKey": .string(signingKey.hex), "agreementKey": .string(Hex.encode(agreementKey)),
            "lastSeen": .number(Double(lastSeen)), "sequence": .number(Double(sequence)),
            "signature": .string(Hex.encode(signature)),
        ]
        if let reachable { document["reachable"] = .bool(reachable) }
        return document
    }

    /// A record from its DB document (with or without `_id`); checks shapes, not the signature.
    public init(document: [String: JSONValue]) throws(IdentityError) {
        let fields = DocumentFields(document, what: "peer record")
        let name = try fields.string("name")
        if let id = document["_id"], id != .string(name) {
            throw .malformed("the peer record's _id differs from its name")
        }
        let addresses = try fields.strings("addresses", max: Self.maxAddresses)
        let signingKey = try SigningPublicKey(hex: try fields.string("signingKey"))
        self.init(
            name: name, addresses: addresses, signingKey: signingKey, agreementKey: try fields.hex("agreementKey"),
            lastSeen: try fields.integer("lastSeen"), sequence: try fields.integer("sequence"),
            reachable: try fields.optionalBool("reachable"), signature: try fields.hex("signature"))
        try validate()
    }
}

/// Names of peers and images: also used as file names and document ids.
public enum PeerName {
    /// 1 to 64 characters of `a-z A-Z 0-9 . _ -`, not starting with a dot.
    public static func validate(_ name: String, what: String = "name") throws(IdentityError) {
        let bytes = Array(name.utf8)
        guard (1...64).contains(bytes.count), bytes.first != UInt8(ascii: "."),
            bytes.allSatisfy({ byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                    || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            })
        else {
            throw .malformed(
                "\(what) '\(name)' must be 1 to 64 characters of letters, digits, '.', '_' or '-', not starting with '.'"
            )
        }
    }
}

/// Typed access to a document's fields, with errors naming the field.
struct DocumentFields {
    let fields: [String: JSONValue]
    let what: String

    init(_ fields: [String: JSONValue], what: String) {
        self.fields = fields
        self.what = what
    }

    func string(_ key: String) throws(IdentityError) -> String {
        guard case .string(let value)? = fields[key] else { throw .malformed("the \(what) has no string '\(key)'") }
        return value
    }

    func strings(_ key: String, max: Int) throws(IdentityError) -> [String] {
        guard case .array(let items)? = fields[key], items.count <= max else {
            throw .malformed("the \(what) has no list '\(key)' of at most \(max) strings")
        }
        var out: [String] = []
        for item in items {
            guard case .string(let value) = item else { throw .malformed("'\(key)' of the \(what) holds a non-string") }
            out.append(value)
        }
        return out
    }

    func optionalBool(_ key: String) throws(IdentityError) -> Bool? {
        switch fields[key] {
        case nil, .null?: return nil
        case .bool(let value)?: return value
        default: throw .malformed("'\(key)' of the \(what) is not true or false")
        }
    }

    func optionalString(_ key: String) throws(IdentityError) -> String? {
        switch fields[key] {
        case nil, .null?: return nil
        case .string(let value)?: return value
        default: throw .malformed("'\(key)' of the \(what) is not a string")
        }
    }

    func hex(_ key: String) throws(IdentityError) -> [UInt8] {
        guard let bytes = Hex.decode(try string(key)) else { throw .malformed("'\(key)' of the \(what) is not hex") }
        return bytes
    }

    func integer(_ key: String) throws(IdentityError) -> UInt64 {
        guard let value = fields[key]?.wholeNumberValue else {
            throw .malformed("'\(key)' of the \(what) is not a whole number from 0 to 2^53")
        }
        return value
    }
}
