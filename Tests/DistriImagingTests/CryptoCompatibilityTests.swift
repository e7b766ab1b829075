import DistriImaging
import Testing

/// The sealed stream and the sealed image are byte-for-byte what the implementation made before HKDF
/// and HMAC moved to swift-crypto (AES-GCM of the payload stays OpenSSL EVP): images sealed by earlier
/// versions keep opening. The constants were produced by that implementation from these fixed inputs.
@Suite("Imaging crypto compatibility vectors")
struct ImagingCryptoCompatibilityTests {
    static let fileKey = (0..<32).map { UInt8($0 * 7 & 0xFF) }
    static let plaintext = (0..<100).map { UInt8($0 * 13 & 0xFF) }

    static let sealedStream =
        "44534c4401100000000000000064646070befe52afae62eaaf875e8a2dc057cfa98984339bce9636564cdfd7ec60c379"
        + "d250854667870a74f8c41b8e3ed4e0fc45fb52f40359a4909e6cee5084f62a75298442234442954a7b518d0ff9352696"
        + "7ef244b4cf3a5a801dbdbec17b4ced4a5233f4ff1c99af78f18aad3c450a19a7d87330edb125bc02f8727a745d73bb42"
        + "f1b4a198408de24e93cf16d99817cb5526edcac5d6b66a446d0782e75c068d265d8a"
    /// FNV-1a 64 of the RGBA pixels of a sealed image made under `SeededImagingRandom(seed: 11)`.
    static let sealedImagePixels: UInt64 = 8339596905468316107

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] }, as: UTF8.self)
    }

    static func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        bytes.reduce(0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x0000_0100_0000_01B3 }
    }

    static func sealedImage() throws -> (SealedImage, [UInt8]) {
        let content = try TestSupport.randomPNG(seed: 5, width: 8, height: 8)
        var random = SeededImagingRandom(seed: 11)
        return (try ImageSealer.encrypt(image: content, cover: nil, random: &random), content)
    }

    @Test func sealedStreamIsUnchanged() throws {
        var random = SeededImagingRandom(seed: 9)
        let sealed = try SealedStream.seal(Self.plaintext, fileKey: Self.fileKey, random: &random)
        #expect(Self.hex(sealed) == Self.sealedStream)
        #expect(try SealedStream.open(sealed, fileKey: Self.fileKey) == Self.plaintext)
    }

    @Test func sealedImageIsUnchanged() throws {
        let (sealed, content) = try Self.sealedImage()
        #expect(Self.fnv1a(try PNGCodec.decode(sealed.png).image.pixels) == Self.sealedImagePixels)
        #expect(try ImageSealer.decrypt(png: sealed.png, key: sealed.key) == content)
    }
}
