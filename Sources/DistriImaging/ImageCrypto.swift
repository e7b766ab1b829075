import Crypto

/// HMAC-SHA256 and HKDF-SHA256 of the sealed-image format, through swift-crypto.
enum ImageCrypto {
    /// HMAC-SHA256 (32 bytes) of `data` under `key`.
    static func hmacSHA256(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: data, using: SymmetricKey(data: key)))
    }

    /// Whether `mac` is the HMAC-SHA256 of `data` under `key`, compared in constant time.
    static func isValidHMACSHA256(_ mac: [UInt8], key: [UInt8], _ data: [UInt8]) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: data, using: SymmetricKey(data: key))
    }

    /// HKDF-SHA256 (RFC 5869) producing one 32-byte output block; an empty salt is HashLen zeros.
    static func hkdfSHA256(key: [UInt8], salt: [UInt8], info: String) -> [UInt8] {
        let derived = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: key), salt: salt, info: Array(info.utf8), outputByteCount: 32)
        return derived.withUnsafeBytes { Array($0) }
    }

    /// Whether `a` and `b` are equal, in time that depends only on their length.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
