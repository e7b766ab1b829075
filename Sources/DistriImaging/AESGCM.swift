import COpenSSL

/// An AES-256-GCM context that keeps its expanded key and changes only the nonce per message, so a
/// stream of 64 KiB chunks pays the key schedule once.
///
/// The image payload's cipher stays on OpenSSL EVP (the one place the project uses OpenSSL directly);
/// key derivation and MACs around it go through swift-crypto (``ImageCrypto``).
final class AESGCM {
    /// Bytes of an AES-256 key.
    static let keySize = 32
    /// Bytes of a GCM tag.
    static let tagSize = 16
    /// Bytes of a GCM nonce.
    static let nonceSize = 12

    private let context: OpaquePointer
    private let encrypting: Bool

    init(key: [UInt8], encrypting: Bool) throws {
        guard key.count == AESGCM.keySize else { throw ImagingError.cryptoFailure("AES-256 needs a 32-byte key") }
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
        precondition(encrypting && tag.count == AESGCM.tagSize)
        try start(nonce: nonce, input: input, output: output)
        var written: Int32 = 0
        var finalBlock = (UInt64(0), UInt64(0))
        let finalOK = withUnsafeMutableBytes(of: &finalBlock) {
            EVP_EncryptFinal_ex(context, $0.baseAddress?.assumingMemoryBound(to: UInt8.self), &written) == 1
        }
        guard finalOK, EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, Int32(AESGCM.tagSize), tag.baseAddress) == 1
        else { throw ImagingError.cryptoFailure("EVP_EncryptFinal_ex failed") }
    }

    /// Decrypts `input` into `output` and checks `tag`; false when authentication fails.
    func open(
        nonce: UnsafeRawBufferPointer, input: UnsafeRawBufferPointer, tag: UnsafeRawBufferPointer,
        output: UnsafeMutableRawBufferPointer
    ) throws -> Bool {
        precondition(!encrypting && tag.count == AESGCM.tagSize)
        try start(nonce: nonce, input: input, output: output)
        guard
            EVP_CIPHER_CTX_ctrl(
                context, EVP_CTRL_AEAD_SET_TAG, Int32(AESGCM.tagSize),
                UnsafeMutableRawPointer(mutating: tag.baseAddress))
                == 1
        else { throw ImagingError.cryptoFailure("EVP_CTRL_AEAD_SET_TAG failed") }
        var finalBlock = (UInt64(0), UInt64(0))
        var written: Int32 = 0
        return withUnsafeMutableBytes(of: &finalBlock) {
            EVP_DecryptFinal_ex(context, $0.baseAddress?.assumingMemoryBound(to: UInt8.self), &written) > 0
        }
    }

    /// Sets `nonce` for the next message and runs `input` through the cipher (this context's direction)
    /// into `output`, of the same length; sealing and opening then differ only in the tag.
    private func start(
        nonce: UnsafeRawBufferPointer, input: UnsafeRawBufferPointer, output: UnsafeMutableRawBufferPointer
    ) throws {
        precondition(nonce.count == AESGCM.nonceSize && output.count == input.count)
        let nonceBytes = nonce.baseAddress?.assumingMemoryBound(to: UInt8.self)
        guard EVP_CipherInit_ex(context, nil, nil, nil, nonceBytes, encrypting ? 1 : 0) == 1 else {
            throw ImagingError.cryptoFailure("EVP_CipherInit_ex (nonce) failed")
        }
        guard input.count > 0 else { return }
        var written: Int32 = 0
        guard
            EVP_CipherUpdate(
                context, output.baseAddress?.assumingMemoryBound(to: UInt8.self), &written,
                input.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(input.count)) == 1,
            written == Int32(input.count)
        else { throw ImagingError.cryptoFailure("EVP_CipherUpdate failed") }
    }
}
