import DistriImaging
import Testing

/// Encrypt then decrypt gives back the exact original file bytes.
@Suite struct RoundTripTests {
    @Test("every sample image round-trips byte-exactly", arguments: TestSupport.sampleNames)
    func sample(name: String) throws {
        let original = try TestSupport.sample(name)
        var random = SeededImagingRandom(seed: 7)
        let sealed = try ImageSealer.encrypt(image: original, cover: nil, random: &random)
        #expect(sealed.coverWasGenerated)
        #expect(Array(sealed.png.prefix(8)) == PNGCodec.signature)
        #expect(try ImageSealer.decrypt(png: sealed.png, key: sealed.key) == original)
    }

    @Test("sample images round-trip inside a given cover")
    func givenCover() throws {
        let cover = try TestSupport.randomPNG(seed: 99, width: 400, height: 300)
        for name in TestSupport.sampleNames {
            let original = try TestSupport.sample(name)
            var random = SeededImagingRandom(seed: 11)
            let sealed = try ImageSealer.encrypt(image: original, cover: cover, random: &random)
            #expect(!sealed.coverWasGenerated)
            #expect((sealed.width, sealed.height) == (400, 300))
            #expect(try ImageSealer.decrypt(png: sealed.png, key: sealed.key) == original)
        }
    }

    @Test("seeded random images of random sizes round-trip, with generated and given covers")
    func randomImages() throws {
        var generator = TestRNG(seed: 2024)
        for round in 0..<12 {
            let width = Int(generator.next() % 300) + 1
            let height = Int(generator.next() % 200) + 1
            let original = try TestSupport.randomPNG(seed: generator.next(), width: width, height: height)
            var random = SeededImagingRandom(seed: UInt64(round))
            let generated = try ImageSealer.encrypt(image: original, cover: nil, random: &random)
            #expect(try ImageSealer.decrypt(png: generated.png, key: generated.key) == original)

            let needed = SealedStream.sealedSize(plaintextCount: original.count)
            let side = CoverGenerator.size(forPayloadSize: needed)
            let cover = try TestSupport.randomPNG(seed: UInt64(round), width: side.width + 8, height: side.height)
            let given = try ImageSealer.encrypt(image: original, cover: cover, random: &random)
            #expect(try ImageSealer.decrypt(png: given.png, key: given.key) == original)
        }
    }

    @Test("a multi-chunk image (over 64 KiB) round-trips")
    func multiChunk() throws {
        let original = try TestSupport.randomPNG(seed: 5, width: 400, height: 300)
        #expect(original.count > 2 * SealedStream.chunkSize)
        let sealed = try ImageSealer.encrypt(image: original)
        #expect(try ImageSealer.decrypt(png: sealed.png, key: sealed.key) == original)
    }

    @Test("the sealed PNG keeps the cover's alpha channel")
    func alphaUntouched() throws {
        let coverPixels = try PNGCodec.decode(TestSupport.sample("rgba8.png")).image
        let big = RGBAImage(
            width: coverPixels.width, height: coverPixels.height * 4,
            pixels: coverPixels.pixels + coverPixels.pixels + coverPixels.pixels + coverPixels.pixels)
        let cover = try PNGCodec.encode(big)
        let sealed = try ImageSealer.encrypt(image: try TestSupport.sample("gray1.png"), cover: cover)
        let result = try PNGCodec.decode(sealed.png).image
        for index in stride(from: 3, to: big.pixels.count, by: 4) {
            #expect(result.pixels[index] == big.pixels[index])
        }
    }
}
