import Crypto
import DistriCore

/// An Ed25519 public key: checks signatures. 32 raw bytes.
public struct SigningPublicKey: Sendable, Hashable, CustomStringConvertible {
    /// The 32 raw bytes of the key (RFC 8032 encoding), as stored in records and homes.
    public let raw: [UInt8]

    /// The key of 32 raw bytes; throws `invalidKey` for any other length.
    public init(raw: [UInt8]) throws(IdentityError) {
        _ = try Self.key(raw)
        self.raw = raw
    }

    /// The key of 64 hex digits.
    public init(hex: String) throws(IdentityError) {
        guard let raw = Hex.decode(hex) else { throw .invalidKey("the Ed25519 public key is not hex") }
        try self.init(raw: raw)
    }

    /// The key as 64 lower-case hex digits.
    public var hex: String { Hex.encode(raw) }
    public var description: String { hex }

    /// Whether `signature` is this key's Ed25519 signature of `message`.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        guard signature.count == 64, let key = try? Self.key(raw) else { return false }
        return key.isValidSignature(signature, for: message)
    }

    private static func key(_ raw: [UInt8]) throws(IdentityError) -> Curve25519.Signing.PublicKey {
        try parseKey(raw, "an Ed25519 public key") { try Curve25519.Signing.PublicKey(rawRepresentation: $0) }
    }
}

/// An Ed25519 key pair: signs the peer's records and catalog entries.
public struct SigningKeyPair: Sendable {
    /// The 32-byte private key (the RFC 8032 seed). Keep it secret.
    public let privateKey: [UInt8]
    /// The public half, published in the peer's record.
    public let publicKey: SigningPublicKey

    /// A new key pair from the system's secure generator.
    public static func generate() throws(IdentityError) -> SigningKeyPair {
        try SigningKeyPair(privateKey: Array(Curve25519.Signing.PrivateKey().rawRepresentation))
    }

    /// The key pair of a stored 32-byte private key.
    public init(privateKey: [UInt8]) throws(IdentityError) {
        let key = try Self.key(privateKey)
        self.privateKey = privateKey
        self.publicKey = try SigningPublicKey(raw: Array(key.publicKey.rawRepresentation))
    }

    /// The Ed25519 signature (64 bytes) of `message`; deterministic (RFC 8032), so the same key and
    /// message always give the same bytes.
    public func sign(_ message: [UInt8]) throws(IdentityError) -> [UInt8] {
        do {
            return Array(try Self.key(privateKey).signature(for: message))
        } catch {
            throw .cryptoFailure("Ed25519 signing failed: \(error)")
        }
    }

    private static func key(_ raw: [UInt8]) throws(IdentityError) -> Curve25519.Signing.PrivateKey {
        try parseKey(raw, "an Ed25519 private key") { try Curve25519.Signing.PrivateKey(rawRepresentation: $0) }
    }
}

/// An X25519 key pair: agrees shared secrets with other peers (for sending them image keys).
public struct AgreementKeyPair: Sendable {
    /// The 32-byte private key. Keep it secret.
    public let privateKey: [UInt8]
    /// The 32-byte public key.
    public let publicKey: [UInt8]

    /// A new key pair from the system's secure generator.
    public static func generate() throws(IdentityError) -> AgreementKeyPair {
        try AgreementKeyPair(privateKey: Array(Curve25519.KeyAgreement.PrivateKey().rawRepresentation))
    }

    /// The key pair of a stored 32-byte private key.
    public init(privateKey: [UInt8]) throws(IdentityError) {
        let key = try Self.privateKey(privateKey)
        self.privateKey = privateKey
        self.publicKey = Array(key.publicKey.rawRepresentation)
    }

    /// Checks that `raw` is a 32-byte X25519 public key.
    public static func validatePublicKey(_ raw: [UInt8]) throws(IdentityError) {
        _ = try publicKey(raw)
    }

    /// The 32-byte X25519 shared secret with the peer whose public key is `peerPublicKey` (raw; hash it
    /// before use as a key). Throws for a low-order public key (an all-zero secret).
    public func sharedSecret(with peerPublicKey: [UInt8]) throws(IdentityError) -> [UInt8] {
        let secret = try agreement(with: peerPublicKey)
        return secret.withUnsafeBytes { Array($0) }
    }

    /// The swift-crypto shared secret with `peerPublicKey`, for key derivation without a copy.
    func agreement(with peerPublicKey: [UInt8]) throws(IdentityError) -> SharedSecret {
        let mine = try Self.privateKey(privateKey)
        let theirs = try Self.publicKey(peerPublicKey)
        let secret: SharedSecret
        do {
            secret = try mine.sharedSecretFromKeyAgreement(with: theirs)
        } catch {
            throw .cryptoFailure("X25519 derivation failed: \(error)")
        }
        // A low-order public key gives the all-zero secret, which anyone can compute. OpenSSL refused
        // it; swift-crypto's BoringSSL backend returns it, so it is refused here (RFC 7748, section 6.1).
        let isZero = secret.withUnsafeBytes { $0.reduce(UInt8(0)) { $0 | $1 } == 0 }
        guard !isZero else { throw .cryptoFailure("X25519 derivation failed (a low-order public key)") }
        return secret
    }

    private static func privateKey(_ raw: [UInt8]) throws(IdentityError) -> Curve25519.KeyAgreement.PrivateKey {
        try parseKey(raw, "an X25519 private key") { try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: $0) }
    }

    private static func publicKey(_ raw: [UInt8]) throws(IdentityError) -> Curve25519.KeyAgreement.PublicKey {
        try parseKey(raw, "an X25519 public key") { try Curve25519.KeyAgreement.PublicKey(rawRepresentation: $0) }
    }
}

/// The swift-crypto key `make` builds from 32 raw bytes; `invalidKey` naming `what` for any other
/// length or a key swift-crypto refuses.
private func parseKey<Key>(
    _ raw: [UInt8], _ what: String, _ make: ([UInt8]) throws -> Key
) throws(IdentityError) -> Key {
    guard raw.count == 32 else { throw .invalidKey("\(what) has 32 bytes, not \(raw.count)") }
    do {
        return try make(raw)
    } catch {
        throw .invalidKey("not \(what): \(error)")
    }
}
