import Crypto

/// Public-key encryption of small secrets (image keys) to an X25519 public key: an ephemeral X25519
/// key pair agrees a secret with the recipient's key, HKDF-SHA256 (salt: both public keys, info: a
/// domain tag) turns it into an AES-256-GCM key, and the secret is sealed with `context` as
/// associated data, so a box made for one grant does not open for another.
///
/// Layout: version `1`, the ephemeral public key (32), the nonce (12), the ciphertext, the tag (16).
///
/// Built from swift-crypto primitives (`Curve25519.KeyAgreement`, `HKDF<SHA256>`, `AES.GCM`). It is
/// close to HPKE's base mode but not the same bytes (HPKE's labelled key schedule differs), and boxes
/// already stored in mailboxes and grants must keep opening, so the construction stays as it is.
public enum SealedBox {
    static let version: UInt8 = 1
    static let overhead = 1 + 32 + 12 + 16
    /// Largest secret sealed (image keys have 49 bytes).
    public static let maxPlaintext = 4096

    /// `plaintext` sealed to `recipient` (a raw X25519 public key) for `domain`, bound to `context`.
    public static func seal(
        _ plaintext: [UInt8], to recipient: [UInt8], domain: String, context: [UInt8]
    ) throws(IdentityError) -> [UInt8] {
        try seal(
            plaintext, to: recipient, domain: domain, context: context, ephemeral: try AgreementKeyPair.generate(),
            nonce: Array(AES.GCM.Nonce()))
    }

    /// `seal` with a given ephemeral key pair and nonce: for the compatibility vectors only (both must be
    /// fresh for every box in production).
    static func seal(
        _ plaintext: [UInt8], to recipient: [UInt8], domain: String, context: [UInt8], ephemeral: AgreementKeyPair,
        nonce: [UInt8]
    ) throws(IdentityError) -> [UInt8] {
        guard plaintext.count <= maxPlaintext else {
            throw .malformed("a sealed secret has at most \(maxPlaintext) bytes")
        }
        let key = derive(
            secret: try ephemeral.agreement(with: recipient), ephemeral: ephemeral.publicKey, recipient: recipient,
            domain: domain)
        do {
            let sealed = try AES.GCM.seal(
                plaintext, using: key, nonce: try AES.GCM.Nonce(data: nonce), authenticating: context)
            return [version] + ephemeral.publicKey + nonce + Array(sealed.ciphertext) + Array(sealed.tag)
        } catch {
            throw .cryptoFailure("AES-256-GCM sealing failed: \(error)")
        }
    }

    /// Opens a box sealed to `keys` for `domain` and `context`; throws when it was not, or was altered.
    public static func open(
        _ box: [UInt8], with keys: AgreementKeyPair, domain: String, context: [UInt8]
    ) throws(IdentityError) -> [UInt8] {
        guard box.count >= overhead, box.count <= overhead + maxPlaintext, box[0] == version else {
            throw .malformed("not a sealed box (version 1, \(overhead) to \(overhead + maxPlaintext) bytes)")
        }
        let ephemeral = Array(box[1..<33])
        let key = derive(
            secret: try keys.agreement(with: ephemeral), ephemeral: ephemeral, recipient: keys.publicKey,
            domain: domain)
        let sealed: AES.GCM.SealedBox
        do {
            sealed = try AES.GCM.SealedBox(
                nonce: try AES.GCM.Nonce(data: box[33..<45]), ciphertext: box[45..<(box.count - 16)],
                tag: box[(box.count - 16)...])
        } catch {
            throw .malformed("not a sealed box: \(error)")
        }
        do {
            return Array(try AES.GCM.open(sealed, using: key, authenticating: context))
        } catch {
            throw .badSignature("the sealed box does not open with this key and context (altered, or not for it)")
        }
    }

    /// HKDF-SHA256 (RFC 5869) of the agreed secret, salted with both public keys, one 32-byte block.
    private static func derive(
        secret: SharedSecret, ephemeral: [UInt8], recipient: [UInt8], domain: String
    ) -> SymmetricKey {
        secret.hkdfDerivedSymmetricKey(
            using: SHA256.self, salt: ephemeral + recipient, sharedInfo: Array("distri.sealed-box.v1/\(domain)".utf8),
            outputByteCount: 32)
    }
}
