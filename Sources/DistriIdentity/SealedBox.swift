import COpenSSL
import Glibc

/// Public-key encryption of small secrets (image keys) to an X25519 public key: an ephemeral X25519
/// key pair agrees a secret with the recipient's key, HKDF-SHA256 (salt: both public keys, info: a
/// domain tag) turns it into an AES-256-GCM key, and the secret is sealed with `context` as
/// associated data, so a box made for one grant does not open for another.
///
/// Layout: version `1`, the ephemeral public key (32), the nonce (12), the ciphertext, the tag (16).
public enum SealedBox {
    static let version: UInt8 = 1
    static let overhead = 1 + 32 + 12 + 16
    /// Largest secret sealed (image keys have 49 bytes).
    public static let maxPlaintext = 4096

    /// `plaintext` sealed to `recipient` (a raw X25519 public key) for `domain`, bound to `context`.
    public static func seal(
        _ plaintext: [UInt8], to recipient: [UInt8], domain: String, context: [UInt8]
    ) throws(IdentityError) -> [UInt8] {
        guard plaintext.count <= maxPlaintext else {
            throw .malformed("a sealed secret has at most \(maxPlaintext) bytes")
        }
        let ephemeral = try AgreementKeyPair.generate()
        let key = try derive(
            secret: try ephemeral.sharedSecret(with: recipient), ephemeral: ephemeral.publicKey, recipient: recipient,
            domain: domain)
        let nonce = try randomBytes(12)
        let (ciphertext, tag) = try aesGCM(encrypt: true, key: key, nonce: nonce, input: plaintext, aad: context)
        return [version] + ephemeral.publicKey + nonce + ciphertext + tag
    }

    /// Opens a box sealed to `keys` for `domain` and `context`; throws when it was not, or was altered.
    public static func open(
        _ box: [UInt8], with keys: AgreementKeyPair, domain: String, context: [UInt8]
    ) throws(IdentityError) -> [UInt8] {
        guard box.count >= overhead, box.count <= overhead + maxPlaintext, box[0] == version else {
            throw .malformed("not a sealed box (version 1, \(overhead) to \(overhead + maxPlaintext) bytes)")
        }
        let ephemeral = Array(box[1..<33])
        let nonce = Array(box[33..<45])
        let ciphertext = Array(box[45..<(box.count - 16)])
        let tag = Array(box[(box.count - 16)...])
        let key = try derive(
            secret: try keys.sharedSecret(with: ephemeral), ephemeral: ephemeral, recipient: keys.publicKey,
            domain: domain)
        let (plaintext, _) = try aesGCM(
            encrypt: false, key: key, nonce: nonce, input: ciphertext, aad: context, tag: tag)
        return plaintext
    }

    private static func derive(
        secret: [UInt8], ephemeral: [UInt8], recipient: [UInt8], domain: String
    ) throws(IdentityError) -> [UInt8] {
        let pseudoRandomKey = try Digests.hmacSHA256(key: ephemeral + recipient, secret)
        return try Digests.hmacSHA256(key: pseudoRandomKey, Array("distri.sealed-box.v1/\(domain)".utf8) + [1])
    }

    private static func randomBytes(_ count: Int) throws(IdentityError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        guard out.withUnsafeMutableBufferPointer({ RAND_bytes($0.baseAddress, Int32($0.count)) }) == 1 else {
            throw .cryptoFailure("RAND_bytes failed")
        }
        return out
    }

    /// One-shot AES-256-GCM; decrypting checks `tag` and throws `badSignature` when it does not match.
    private static func aesGCM(
        encrypt: Bool, key: [UInt8], nonce: [UInt8], input: [UInt8], aad: [UInt8], tag: [UInt8] = []
    ) throws(IdentityError) -> (output: [UInt8], tag: [UInt8]) {
        guard let context = EVP_CIPHER_CTX_new() else { throw .cryptoFailure("EVP_CIPHER_CTX_new failed") }
        defer { EVP_CIPHER_CTX_free(context) }
        let mode: Int32 = encrypt ? 1 : 0
        guard EVP_CipherInit_ex(context, EVP_aes_256_gcm(), nil, nil, nil, mode) == 1,
            key.withUnsafeBufferPointer({ k in
                nonce.withUnsafeBufferPointer { n in
                    EVP_CipherInit_ex(context, nil, nil, k.baseAddress, n.baseAddress, mode)
                }
            }) == 1
        else { throw .cryptoFailure("AES-256-GCM setup failed") }
        var written: Int32 = 0
        if !aad.isEmpty {
            guard
                aad.withUnsafeBufferPointer({
                    EVP_CipherUpdate(context, nil, &written, $0.baseAddress, Int32($0.count))
                })
                    == 1
            else { throw .cryptoFailure("AES-256-GCM associated data failed") }
        }
        var output = [UInt8](repeating: 0, count: input.count + 16)
        var total: Int32 = 0
        if !input.isEmpty {
            guard
                output.withUnsafeMutableBufferPointer({ out in
                    input.withUnsafeBufferPointer {
                        EVP_CipherUpdate(context, out.baseAddress, &total, $0.baseAddress, Int32($0.count))
                    }
                }) == 1
            else { throw .cryptoFailure("AES-256-GCM update failed") }
        }
        if !encrypt {
            var tagCopy = tag
            guard tagCopy.count == 16,
                tagCopy.withUnsafeMutableBytes({
                    EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, 16, $0.baseAddress)
                }) == 1
            else { throw .cryptoFailure("AES-256-GCM tag setup failed") }
        }
        let finalOK = output.withUnsafeMutableBufferPointer { out in
            EVP_CipherFinal_ex(context, out.baseAddress.map { $0 + Int(total) }, &written) > 0
        }
        guard finalOK else {
            if encrypt { throw .cryptoFailure("AES-256-GCM final failed") }
            throw .badSignature("the sealed box does not open with this key and context (altered, or not for it)")
        }
        output.removeSubrange(Int(total + written)...)
        var outTag = [UInt8](repeating: 0, count: 16)
        if encrypt {
            guard
                outTag.withUnsafeMutableBytes({
                    EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, 16, $0.baseAddress)
                }) == 1
            else { throw .cryptoFailure("AES-256-GCM tag failed") }
        }
        return (output, outTag)
    }
}

/// SHA-256 and HMAC-SHA256.
public enum Digests {
    /// The SHA-256 digest (32 bytes) of `data`.
    public static func sha256(_ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let ok = data.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer {
                EVP_Digest(input.baseAddress, input.count, $0.baseAddress, &length, EVP_sha256(), nil) == 1
            }
        }
        // SHA-256 over memory cannot fail short of a broken OpenSSL; an all-zero digest matches nothing real.
        return ok && length == 32 ? out : [UInt8](repeating: 0, count: 32)
    }

    /// The SHA-256 digest of the file at `path`, read 1 MiB at a time (nil when it cannot be read).
    public static func sha256(fileAt path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb"), let context = EVP_MD_CTX_new() else { return nil }
        defer {
            fclose(file)
            EVP_MD_CTX_free(context)
        }
        guard EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        // Bounded by the file's length: each pass reads at least one byte or ends.
        while true {
            let count = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if count == 0 { break }
            guard buffer.withUnsafeBytes({ EVP_DigestUpdate(context, $0.baseAddress, count) }) == 1 else { return nil }
        }
        guard ferror(file) == 0 else { return nil }
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        guard out.withUnsafeMutableBufferPointer({ EVP_DigestFinal_ex(context, $0.baseAddress, &length) }) == 1,
            length == 32
        else { return nil }
        return out
    }

    static func hmacSHA256(key: [UInt8], _ data: [UInt8]) throws(IdentityError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let ok = key.withUnsafeBytes { keyBytes in
            data.withUnsafeBufferPointer { dataBytes in
                out.withUnsafeMutableBufferPointer { outBytes in
                    HMAC(
                        EVP_sha256(), keyBytes.baseAddress, Int32(keyBytes.count), dataBytes.baseAddress,
                        dataBytes.count, outBytes.baseAddress, &length) != nil
                }
            }
        }
        guard ok, length == 32 else { throw .cryptoFailure("HMAC-SHA256 failed") }
        return out
    }
}
