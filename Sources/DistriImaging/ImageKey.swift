import DistriCore

/// The secret that opens one sealed image: a fresh random 32-byte AES-256 file key plus a 16-byte
/// embedding key that decides where the payload sits in the cover's pixels.
///
/// `description` is redacted so keys do not leak into logs; use `text` or `serialized()` to store one.
public struct ImageKey: Sendable, Equatable, CustomStringConvertible {
    /// Bytes of the AES-256-GCM file key.
    public static let fileKeySize = 32
    /// Bytes of the pixel permutation's key.
    public static let embeddingKeySize = 16
    static let serializedVersion: UInt8 = 1
    static let textPrefix = "distri-image-key-v1:"

    /// Key of the sealed stream (AES-256-GCM via HKDF).
    public let fileKey: [UInt8]
    /// Key of the pixel permutation.
    public let embeddingKey: [UInt8]

    /// A key from its two parts; throws when a part has the wrong size.
    public init(fileKey: [UInt8], embeddingKey: [UInt8]) throws {
        guard fileKey.count == Self.fileKeySize else { throw ImagingError.invalidKey("the file key must be 32 bytes") }
        guard embeddingKey.count == Self.embeddingKeySize else {
            throw ImagingError.invalidKey("the embedding key must be 16 bytes")
        }
        self.fileKey = fileKey
        self.embeddingKey = embeddingKey
    }

    /// A fresh random key.
    public static func generate(random: inout some ImagingRandom) throws -> ImageKey {
        try ImageKey(fileKey: random.bytes(fileKeySize), embeddingKey: random.bytes(embeddingKeySize))
    }

    /// A fresh key from OpenSSL's `RAND_bytes`.
    public static func generate() throws -> ImageKey {
        var random = SystemImagingRandom()
        return try generate(random: &random)
    }

    /// 49 bytes: version 1, the file key, the embedding key.
    public func serialized() -> [UInt8] {
        [Self.serializedVersion] + fileKey + embeddingKey
    }

    /// The key ``serialized()`` wrote; throws when the bytes are not one.
    public init(serialized bytes: [UInt8]) throws {
        guard bytes.count == 1 + Self.fileKeySize + Self.embeddingKeySize else {
            throw ImagingError.invalidKey("a serialized key has 49 bytes, got \(bytes.count)")
        }
        guard bytes[0] == Self.serializedVersion else {
            throw ImagingError.invalidKey("unknown key version \(bytes[0])")
        }
        try self.init(
            fileKey: Array(bytes[1...Self.fileKeySize]), embeddingKey: Array(bytes[(1 + Self.fileKeySize)...]))
    }

    /// Text form for command lines: `distri-image-key-v1:` followed by the serialized bytes in hex.
    public var text: String {
        Self.textPrefix + Hex.encode(serialized())
    }

    /// The key ``text`` wrote; throws when the text is not one.
    public init(text: String) throws {
        let trimmed = text.trimmingWhitespace
        guard trimmed.hasPrefix(Self.textPrefix) else {
            throw ImagingError.invalidKey("missing \(Self.textPrefix) prefix")
        }
        let hex = trimmed.dropFirst(Self.textPrefix.count)
        guard hex.utf8.count % 2 == 0, hex.utf8.count <= 2 * 64 else { throw ImagingError.invalidKey("bad hex length") }
        guard let bytes = Hex.decode(hex) else { throw ImagingError.invalidKey("not hexadecimal") }
        try self.init(serialized: bytes)
    }

    public var description: String { "ImageKey(redacted)" }

    /// 8 bytes that tell whether a key belongs to an image without revealing the key.
    func checkValue() -> [UInt8] {
        Array(ImageCrypto.hmacSHA256(key: fileKey + embeddingKey, Array("distri-image key check v1".utf8)).prefix(8))
    }

}

extension String {
    fileprivate var trimmingWhitespace: Substring {
        let isSpace: (Character) -> Bool = { $0.isWhitespace }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return self[start...end]
    }
}
