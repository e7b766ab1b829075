import DistriImaging
import Testing

/// Single-bit changes anywhere in the sealed payload are detected, with the error that names the layer.
@Suite struct TamperDetectionTests {
    let key: ImageKey
    let original: [UInt8]
    let carrier: RGBAImage

    init() throws {
        key = try ImageKey(fileKey: [UInt8](repeating: 7, count: 32), embeddingKey: [UInt8](repeating: 8, count: 16))
        // The sample plus 6 trailing bytes seals to 300 bytes, a whole number of 12-byte blocks.
        original = try TestSupport.sample("palette4-trns.png") + [1, 2, 3, 4, 5, 6]
        var random = SeededImagingRandom(seed: 1)
        let sealed = try SealedStream.seal(original, fileKey: key.fileKey, random: &random)
        precondition(sealed.count % 12 == 0)
        // Exactly full: one row of the pixels the payload needs.
        var cover = CoverGenerator.cover(
            width: PayloadEmbedding.pixelsNeeded(payloadSize: sealed.count), height: 1, seed: 5)
        try PayloadEmbedding.embed(sealed, into: &cover, key: key)
        carrier = cover
    }

    /// Flips each of the 2 low bits of every RGB channel of an exactly-full carrier (the sealed size is a
    /// multiple of 12, so no block has padding), re-encodes and decrypts: every flip fails.
    @Test("flipping any embedded bit is detected after re-encoding")
    func embeddedFlips() throws {
        let png = try PNGCodec.encode(carrier)
        #expect(try ImageSealer.decrypt(png: png, key: key) == original)
        for pixel in 0..<(carrier.width * carrier.height) {
            for channel in 0..<3 {
                for bit in 0..<2 {
                    var copy = carrier
                    copy.pixels[pixel * 4 + channel] ^= 1 << UInt8(bit)
                    // The 4-byte magic sits in pixels 0-4 and the red channel of pixel 5.
                    let inMagic = pixel < 5 || (pixel == 5 && channel == 0)
                    let expected: ImagingError = inMagic ? .noEmbeddedPayload : .payloadChecksumMismatch
                    #expect(throws: expected) { try ImageSealer.decrypt(png: PNGCodec.encode(copy), key: key) }
                }
            }
        }
    }

    @Test("flipping bits in header pixels names the header error")
    func headerFlips() throws {
        for pixel in 0..<36 {
            for channel in 0..<3 {
                var copy = carrier
                copy.pixels[pixel * 4 + channel] ^= 1
                #expect(throws: ImagingError.self) { try PayloadEmbedding.extract(from: copy, key: key) }
            }
        }
    }

    @Test("flips inside the sealed bytes before embedding: header -> wrongKey, chunk -> tampered")
    func sealedFlipsBeforeEmbedding() throws {
        var random = SeededImagingRandom(seed: 2)
        let sealed = try SealedStream.seal(original, fileKey: key.fileKey, random: &random)
        var generator = TestRNG(seed: 9)
        for _ in 0..<120 {
            let bit = 48 + Int(generator.next() % UInt64(sealed.count * 8 - 48))
            var copy = sealed
            copy[bit / 8] ^= 1 << UInt8(bit % 8)
            var cover = CoverGenerator.cover(forPayloadSize: copy.count, seed: 6)
            try PayloadEmbedding.embed(copy, into: &cover, key: key)
            let expected: ImagingError = bit < SealedStream.headerSize * 8 ? .wrongKey : .tampered(chunk: 0)
            #expect(throws: expected) { try ImageSealer.decrypt(png: PNGCodec.encode(cover), key: key) }
        }
    }

    @Test("a sealed stream embedded without its tail reports truncation")
    func truncatedBeforeEmbedding() throws {
        var random = SeededImagingRandom(seed: 2)
        let sealed = try SealedStream.seal(original, fileKey: key.fileKey, random: &random)
        var cover = CoverGenerator.cover(forPayloadSize: sealed.count, seed: 6)
        try PayloadEmbedding.embed(Array(sealed.dropLast(10)), into: &cover, key: key)
        #expect(throws: ImagingError.truncatedPayload) {
            try ImageSealer.decrypt(png: PNGCodec.encode(cover), key: key)
        }
    }
}
