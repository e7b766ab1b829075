import DistriImaging
import Testing

/// Capacity math, too-small covers and the embedded header's checks.
@Suite struct EmbeddingTests {
    let key: ImageKey

    init() throws {
        key = try ImageKey(fileKey: [UInt8](repeating: 1, count: 32), embeddingKey: [UInt8](repeating: 2, count: 16))
    }

    @Test func capacityMath() {
        // 4 pixels hold 3 bytes (2 bits in each of R, G, B); the first 36 pixels hold the 27-byte header;
        // the rest is used in whole blocks of 16 pixels (12 bytes).
        #expect(PayloadEmbedding.capacity(width: 100, height: 100) == (10_000 / 4 - 9) / 4 * 12)
        #expect(PayloadEmbedding.capacity(width: 6, height: 6) == 0)
        #expect(PayloadEmbedding.capacity(width: 51, height: 1) == 0)
        #expect(PayloadEmbedding.capacity(width: 52, height: 1) == 12)
        #expect(PayloadEmbedding.capacity(width: 0, height: 10) == 0)
        for size in [0, 1, 2, 3, 4, 1000, 123_457] {
            let pixels = PayloadEmbedding.pixelsNeeded(payloadSize: size)
            #expect(PayloadEmbedding.capacity(width: pixels, height: 1) >= size)
            #expect(PayloadEmbedding.capacity(width: pixels - 16, height: 1) < max(1, size))
            let cover = CoverGenerator.size(forPayloadSize: size)
            #expect(PayloadEmbedding.capacity(width: cover.width, height: cover.height) >= size)
        }
    }

    @Test func coverTooSmall() throws {
        var cover = CoverGenerator.cover(width: 20, height: 20, seed: 1)
        let available = PayloadEmbedding.capacity(width: 20, height: 20)
        #expect(throws: ImagingError.coverTooSmall(needed: available + 1, available: available)) {
            try PayloadEmbedding.embed([UInt8](repeating: 0, count: available + 1), into: &cover, key: key)
        }
        let smallCover = try PNGCodec.encode(CoverGenerator.cover(width: 16, height: 16, seed: 2))
        let image = try TestSupport.sample("rgb8.png")
        let needed = SealedStream.sealedSize(plaintextCount: image.count)
        #expect(
            throws: ImagingError.coverTooSmall(
                needed: needed, available: PayloadEmbedding.capacity(width: 16, height: 16))
        ) {
            try ImageSealer.encrypt(image: image, cover: smallCover)
        }
        #expect(ImagingError.coverTooSmall(needed: 9, available: 3).description.contains("too small"))
    }

    @Test func exactFit() throws {
        var cover = CoverGenerator.cover(width: 40, height: 10, seed: 3)
        let payload = (0..<PayloadEmbedding.capacity(width: 40, height: 10)).map { UInt8(truncatingIfNeeded: $0 * 7) }
        try PayloadEmbedding.embed(payload, into: &cover, key: key)
        #expect(try PayloadEmbedding.extract(from: cover, key: key) == payload)
    }

    @Test func coverWithoutPayload() throws {
        let cover = CoverGenerator.cover(width: 64, height: 48, seed: 4)
        #expect(throws: ImagingError.noEmbeddedPayload) { try PayloadEmbedding.extract(from: cover, key: key) }
        let png = try PNGCodec.encode(cover)
        #expect(throws: ImagingError.noEmbeddedPayload) { try ImageSealer.decrypt(png: png, key: key) }
    }

    @Test func wrongImageKey() throws {
        let sealed = try ImageSealer.encrypt(image: TestSupport.sample("gray8.png"))
        let other = try ImageKey.generate()
        #expect(throws: ImagingError.wrongKey) { try ImageSealer.decrypt(png: sealed.png, key: other) }
        // Right embedding key, wrong file key: the key check value catches it too.
        let half = try ImageKey(fileKey: other.fileKey, embeddingKey: sealed.key.embeddingKey)
        #expect(throws: ImagingError.wrongKey) { try ImageSealer.decrypt(png: sealed.png, key: half) }
    }

    @Test func covergeneratorIsDeterministicAndOpaque() {
        let a = CoverGenerator.cover(width: 50, height: 30, seed: 9)
        #expect(a == CoverGenerator.cover(width: 50, height: 30, seed: 9))
        #expect(a != CoverGenerator.cover(width: 50, height: 30, seed: 10))
        #expect(stride(from: 3, to: a.pixels.count, by: 4).allSatisfy { a.pixels[$0] == 255 })
    }
}
