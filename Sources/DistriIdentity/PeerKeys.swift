import COpenSSL

/// An EVP_PKEY owned by Swift: freed when the last reference goes.
final class OwnedKey {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) { self.pointer = pointer }

    deinit { EVP_PKEY_free(pointer) }

    /// A fresh key of `type` (EVP_PKEY_ED25519 or EVP_PKEY_X25519) from OpenSSL's generator.
    static func generate(type: Int32, name: String) throws(IdentityError) -> OwnedKey {
        guard let context = EVP_PKEY_CTX_new_id(type, nil) else {
            throw .cryptoFailure("EVP_PKEY_CTX_new_id(\(name)) failed")
        }
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(context) == 1, EVP_PKEY_keygen(context, &key) == 1, let key else {
            throw .cryptoFailure("\(name) key generation failed")
        }
        return OwnedKey(key)
    }

    static func privateKey(type: Int32, raw: [UInt8], name: String) throws(IdentityError) -> OwnedKey {
        guard raw.count == 32 else { throw .invalidKey("a \(name) private key has 32 bytes, not \(raw.count)") }
        guard let key = raw.withUnsafeBufferPointer({ EVP_PKEY_new_raw_private_key(type, nil, $0.baseAddress, 32) })
        else { throw .invalidKey("OpenSSL refused the \(name) private key") }
        return OwnedKey(key)
    }

    static func publicKey(type: Int32, raw: [UInt8], name: String) throws(IdentityError) -> OwnedKey {
        guard raw.count == 32 else { throw .invalidKey("a \(name) public key has 32 bytes, not \(raw.count)") }
        guard let key = raw.withUnsafeBufferPointer({ EVP_PKEY_new_raw_public_key(type, nil, $0.baseAddress, 32) })
        else { throw .invalidKey("OpenSSL refused the \(name) public key") }
        return OwnedKey(key)
    }

    func rawPublic() throws(IdentityError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length = 32
        guard
            out.withUnsafeMutableBufferPointer({ EVP_PKEY_get_raw_public_key(pointer, $0.baseAddress, &length) }) == 1,
            length == 32
        else { throw .cryptoFailure("EVP_PKEY_get_raw_public_key failed") }
        return out
    }

    func rawPrivate() throws(IdentityError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length = 32
        guard
            out.withUnsafeMutableBufferPointer({ EVP_PKEY_get_raw_private_key(pointer, $0.baseAddress, &length) }) == 1,
            length == 32
        else { throw .cryptoFailure("EVP_PKEY_get_raw_private_key failed") }
        return out
    }
}

/// An Ed25519 public key: checks signatures. 32 raw bytes.
public struct SigningPublicKey: Sendable, Hashable, CustomStringConvertible {
    public let raw: [UInt8]

    public init(raw: [UInt8]) throws(IdentityError) {
        // Parsed once so a key OpenSSL would refuse is refused here.
        _ = try OwnedKey.publicKey(type: EVP_PKEY_ED25519, raw: raw, name: "Ed25519")
        self.raw = raw
    }

    public init(hex: String) throws(IdentityError) {
        guard let raw = Hex.decode(hex) else { throw .invalidKey("the Ed25519 public key is not hex") }
        try self.init(raw: raw)
    }

    public var hex: String { Hex.encode(raw) }
    public var description: String { hex }

    /// Whether `signature` is this key's Ed25519 signature of `message`.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        guard signature.count == 64,
            let key = try? OwnedKey.publicKey(type: EVP_PKEY_ED25519, raw: raw, name: "Ed25519"),
            let context = EVP_MD_CTX_new()
        else { return false }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit(context, nil, nil, nil, key.pointer) == 1 else { return false }
        return signature.withUnsafeBufferPointer { sig in
            message.withUnsafeBufferPointer { msg in
                EVP_DigestVerify(context, sig.baseAddress, sig.count, msg.baseAddress, msg.count) == 1
            }
        }
    }
}

/// An Ed25519 key pair: signs the peer's records and catalog entries.
public struct SigningKeyPair: Sendable {
    /// The 32-byte private key (the seed). Keep it secret.
    public let privateKey: [UInt8]
    public let publicKey: SigningPublicKey

    /// A new key pair from OpenSSL's generator.
    public static func generate() throws(IdentityError) -> SigningKeyPair {
        try SigningKeyPair(privateKey: try OwnedKey.generate(type: EVP_PKEY_ED25519, name: "Ed25519").rawPrivate())
    }

    /// The key pair of a stored 32-byte private key.
    public init(privateKey: [UInt8]) throws(IdentityError) {
        let key = try OwnedKey.privateKey(type: EVP_PKEY_ED25519, raw: privateKey, name: "Ed25519")
        self.privateKey = privateKey
        self.publicKey = try SigningPublicKey(raw: try key.rawPublic())
    }

    /// The Ed25519 signature (64 bytes) of `message`.
    public func sign(_ message: [UInt8]) throws(IdentityError) -> [UInt8] {
        let key = try OwnedKey.privateKey(type: EVP_PKEY_ED25519, raw: privateKey, name: "Ed25519")
        guard let context = EVP_MD_CTX_new() else { throw .cryptoFailure("EVP_MD_CTX_new failed") }
        defer { EVP_MD_CTX_free(context) }
        // Ed25519 hashes internally: no message digest is named.
        guard EVP_DigestSignInit(context, nil, nil, nil, key.pointer) == 1 else {
            throw .cryptoFailure("EVP_DigestSignInit failed")
        }
        var signature = [UInt8](repeating: 0, count: 64)
        var length = 64
        let ok = signature.withUnsafeMutableBufferPointer { sig in
            message.withUnsafeBufferPointer { msg in
                EVP_DigestSign(context, sig.baseAddress, &length, msg.baseAddress, msg.count) == 1
            }
        }
        guard ok, length == 64 else { throw .cryptoFailure("EVP_DigestSign failed") }
        return signature
    }
}

/// An X25519 key pair: agrees shared secrets with other peers (for sending them image keys).
public struct AgreementKeyPair: Sendable {
    /// The 32-byte private key. Keep it secret.
    public let privateKey: [UInt8]
    /// The 32-byte public key.
    public let publicKey: [UInt8]

    public static func generate() throws(IdentityError) -> AgreementKeyPair {
        try AgreementKeyPair(privateKey: try OwnedKey.generate(type: EVP_PKEY_X25519, name: "X25519").rawPrivate())
    }

    public init(privateKey: [UInt8]) throws(IdentityError) {
        let key = try OwnedKey.privateKey(type: EVP_PKEY_X25519, raw: privateKey, name: "X25519")
        self.privateKey = privateKey
        self.publicKey = try key.rawPublic()
    }

    /// Checks that `raw` is an X25519 public key OpenSSL accepts.
    public static func validatePublicKey(_ raw: [UInt8]) throws(IdentityError) {
        _ = try OwnedKey.publicKey(type: EVP_PKEY_X25519, raw: raw, name: "X25519")
    }

    /// The 32-byte X25519 shared secret with the peer whose public key is `peerPublicKey` (raw; hash it
    /// before use as a key).
    public func sharedSecret(with peerPublicKey: [UInt8]) throws(IdentityError) -> [UInt8] {
        let mine = try OwnedKey.privateKey(type: EVP_PKEY_X25519, raw: privateKey, name: "X25519")
        let theirs = try OwnedKey.publicKey(type: EVP_PKEY_X25519, raw: peerPublicKey, name: "X25519")
        guard let context = EVP_PKEY_CTX_new(mine.pointer, nil) else { throw .cryptoFailure("EVP_PKEY_CTX_new failed") }
        defer { EVP_PKEY_CTX_free(context) }
        var secret = [UInt8](repeating: 0, count: 32)
        var length = 32
        guard EVP_PKEY_derive_init(context) == 1, EVP_PKEY_derive_set_peer(context, theirs.pointer) == 1,
            secret.withUnsafeMutableBufferPointer({ EVP_PKEY_derive(context, $0.baseAddress, &length) }) == 1,
            length == 32
        else { throw .cryptoFailure("X25519 derivation failed (a low-order public key?)") }
        return secret
    }
}
