import COpenSSL

/// Small wrappers over OpenSSL 3: HMAC-SHA256, HKDF-SHA256 and an AES-256-GCM context.
enum Crypto {
    static let keySize = 32
    static let tagSize = 16
    static let nonceSize = 12

    /// HMAC-SHA256 of `data` under `key`.
    static func hmacSHA256(key: [UInt8], _ data: [UInt8]) throws -> [UInt8] {
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
        guard ok, length == 32 else { throw ImagingError.cryptoFailure("HMAC-SHA256 failed") }
        return out
    }

    /// HKDF-SHA256 (RFC 5869) producing one 32-byte output block.
    static func hkdfSHA256(key: [UInt8], salt: [UInt8], info: String) throws -> [UInt8] {
        let pseudoRandomKey = try hmacSHA256(key: salt.isEmpty ? [UInt8](repeating: 0, count: 32) : salt, key)
        return try hmacSHA256(key: pseudoRandomKey, Array(info.utf8) + [1])
    }

    /// Constant-time comparison of two byte arrays of the same length.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { x in
            b.withUnsafeBytes { y in CRYPTO_memcmp(x.baseAddress, y.baseAddress, x.count) == 0 }
        }
    }
}

/// An AES-256-GCM context that keeps its expanded key and changes only the nonce per message, so a
/// stream of 64 KiB chunks pays the key schedule once.
final class AESGCM {
    private let context: OpaquePointer
    private let encrypting: Bool

    init(key: [UInt8], encrypting: Bool) throws {
        guard key.count == Crypto.keySize else { throw ImagingError.cryptoFailure("AES-256 needs a 32-byte key") }
        guard let context = EVP_CIPHER_CTX_new() else { throw ImagingError.cryptoFailure("EVP_CIPHER_CTX_new failed") }
        self.context = context
        self.encrypting = encrypting
        let ok = key.withUnsafeBufferPointer {
            EVP_CipherInit_ex(context, EVP_aes_256_gcm(), nil, $0.baseAddress, nil, encrypting ? 1 : 0) == 1
        }
        guard ok else { throw ImagingError.cryptoFailure("EVP_CipherInit_ex failed") }
    }

    deinit {
        EVP_CIPHER_CTX_free(context)
    }

    /// Encrypts `input` into `output` (same length) and writes the 16-byte tag to `tag`.
    func seal(
        nonce: UnsafeRawBufferPointer, input: UnsafeRawBufferPointer, output: UnsafeMutableRawBufferPointer,
        tag: UnsafeMutableRawBufferPointer
    ) throws {
        precondition(encrypting && nonce.count == Crypto.nonceSize && output.count == input.count)
        precondition(tag.count == Crypto.tagSize)
        guard EVP_CipherInit_ex(context, nil, nil, nil, nonce.baseAddress?.assumingMemoryBound(to: UInt8.self), 1) == 1
        else { throw ImagingError.cryptoFailure("EVP_CipherInit_ex (nonce) failed") }
        var written: Int32 = 0
        if input.count > 0 {
            guard
                EVP_EncryptUpdate(
                    context, output.baseAddress?.assumingMemoryBound(to: UInt8.self), &written,
                    input.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(input.count)) == 1,
                written == Int32(input.count)
            else { throw ImagingError.cryptoFailure("EVP_EncryptUpdate failed") }
        }
        var finalBlock = (UInt64(0), UInt64(0))
        let finalOK = withUnsafeMutableBytes(of: &finalBlock) {
            EVP_EncryptFinal_ex(context, $0.baseAddress?.assumingMemoryBound(to: UInt8.self), &written) == 1
        }
        guard finalOK, EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, Int32(Crypto.tagSize), tag.baseAddress) == 1
        else { throw ImagingError.cryptoFailure("EVP_EncryptFinal_ex failed") }
    }

    /// Decrypts `input` into `output` and checks `tag`; false when authentication fails.
    func open(
        nonce: UnsafeRawBufferPointer, input: UnsafeRawBufferPointer, tag: UnsafeRawBufferPointer,
        output: UnsafeMutableRawBufferPointer
    ) throws -> Bool {
        precondition(!encrypting && nonce.count == Crypto.nonceSize && output.count == input.count)
        precondition(tag.count == Crypto.tagSize)
        guard EVP_CipherInit_ex(context, nil, nil, nil, nonce.baseAddress?.assumingMemoryBound(to: UInt8.self), 0) == 1
        else { throw ImagingError.cryptoFailure("EVP_CipherInit_ex (nonce) failed") }
        var written: Int32 = 0
        if input.count > 0 {
            guard
                EVP_DecryptUpdate(
                    context, output.baseAddress?.assumingMemoryBound(to: UInt8.self), &written,
                    input.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(input.count)) == 1,
                written == Int32(input.count)
            else { throw ImagingError.cryptoFailure("EVP_DecryptUpdate failed") }
        }
        guard
            EVP_CIPHER_CTX_ctrl(
                context, EVP_CTRL_AEAD_SET_TAG, Int32(Crypto.tagSize),
                UnsafeMutableRawPointer(mutating: tag.baseAddress))
                == 1
        else { throw ImagingError.cryptoFailure("EVP_CTRL_AEAD_SET_TAG failed") }
        var finalBlock = (UInt64(0), UInt64(0))
        return withUnsafeMutableBytes(of: &finalBlock) {
            EVP_DecryptFinal_ex(context, $0.baseAddress?.assumingMemoryBound(to: UInt8.self), &written) > 0
        }
    }
}
