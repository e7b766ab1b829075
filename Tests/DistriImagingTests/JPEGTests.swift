import DistriImaging
import Testing

@Suite struct JPEGTests {
    static let jpegs = ["photo-baseline.jpg", "photo-progressive.jpg", "gray.jpg", "photo-exif-rotated.jpg"]

    @Test("the structure check reads dimensions, components, progressive and EXIF orientation of every sample")
    func structureOfSamples() throws {
        let infos = try Self.jpegs.map { try JPEGStructure.check(try TestSupport.sample($0)) }
        #expect(infos.allSatisfy { $0.width == 320 && $0.height == 240 })
        #expect(infos.map(\.components) == [3, 3, 1, 3])
        #expect(infos.map(\.progressive) == [false, true, false, false])
        #expect(infos.map(\.orientation) == [1, 1, 1, 6])
    }

    @Test("libjpeg-turbo decodes every sample to RGBA; EXIF orientation 6 turns it upright (240x320)")
    func decodesSamples() throws {
        for name in Self.jpegs {
            let image = try JPEGCodec.decode(try TestSupport.sample(name))
            let upright = name.contains("exif") ? (240, 320) : (320, 240)
            #expect((image.width, image.height) == upright, "\(name)")
            #expect(image.pixels.count == image.width * image.height * 4)
        }
        // Turned, not mirrored: the stored top-left pixel is the upright top-right one.
        let stored = try JPEGCodec.decode(try TestSupport.sample("photo-exif-rotated.jpg"), upright: false)
        let upright = try JPEGCodec.decode(try TestSupport.sample("photo-exif-rotated.jpg"))
        #expect(Array(stored.pixels[0..<4]) == Array(upright.pixels[(upright.width - 1) * 4..<upright.width * 4]))
    }

    @Test("truncated, malformed and oversized JPEGs are refused with a reason, in the check and the decoder")
    func hostileJPEGs() throws {
        let jpeg = try TestSupport.sample("photo-baseline.jpg")
        for cut in [1, 2, 3, 20, 200, jpeg.count / 2, jpeg.count - 1] {
            #expect(throws: ImagingError.self) { try JPEGStructure.check(Array(jpeg.prefix(cut))) }
            #expect(throws: ImagingError.self) { try JPEGCodec.decode(Array(jpeg.prefix(cut))) }
        }
        #expect(throws: ImagingError.notJPEG) { try JPEGStructure.check(Array("not a jpeg".utf8)) }
        let limits = PNGLimits(maxWidth: 100, maxHeight: 100, maxPixels: 10_000)
        #expect(throws: ImagingError.imageTooLarge(width: 320, height: 240)) {
            try JPEGStructure.check(jpeg, limits: limits)
        }
        // A frame header claiming 65535x65535 is refused before any pixel is decoded.
        var bomb = jpeg
        let sof = try #require((0..<bomb.count - 9).first { bomb[$0] == 0xFF && bomb[$0 + 1] == 0xC0 })
        for offset in 5...8 { bomb[sof + offset] = 0xFF }
        #expect(throws: ImagingError.imageTooLarge(width: 65535, height: 65535)) { try JPEGCodec.decode(bomb) }
    }

    @Test("2,000 seeded mutations of JPEG headers: every one is accepted or refused with an error, none crashes")
    func fuzzedHeaders() throws {
        var generator = TestRNG(seed: 24)
        let samples = try Self.jpegs.map { try TestSupport.sample($0) }
        var refused = 0
        for round in 0..<2000 {
            var bytes = samples[round % samples.count]
            // Flip, set or drop bytes among the first 700 (the headers and tables).
            for _ in 0..<(1 + Int(generator.next() % 4)) {
                let at = Int(generator.next() % 700)
                switch generator.next() % 4 {
                case 0: bytes[at] ^= UInt8(1 << (generator.next() % 8))
                case 1: bytes[at] = UInt8(truncatingIfNeeded: generator.next())
                case 2: bytes[at] = 0xFF
                default: bytes.remove(at: at)
                }
            }
            if round % 5 == 0 { bytes = Array(bytes.prefix(Int(generator.next() % UInt64(bytes.count)))) }
            do {
                let limits = PNGLimits(maxWidth: 4096, maxHeight: 4096, maxPixels: 4_000_000)
                let info = try JPEGStructure.check(bytes, limits: limits)
                let image = try JPEGCodec.decode(bytes, limits: limits, upright: false)
                #expect(image.width == info.width && image.height == info.height)
            } catch is ImagingError {
                refused += 1
            }
        }
        #expect(refused > 100, "mutations should be refused often (\(refused))")
    }
}

@Suite struct SealedContentTests {
    @Test(
        "an envelope keeps the kind, the name and the media type inside; a bare PNG of an earlier version opens as a PNG"
    )
    func envelopeRoundTrip() throws {
        let pdf = try TestSupport.sample("document.pdf")
        let content = SealedContent(file: pdf, name: "document.pdf")
        #expect(content.kind == .file && content.mediaType == "application/pdf")
        #expect(try SealedContent(plaintext: content.encoded()) == content)
        #expect(SealedContent(file: try TestSupport.sample("gray.jpg"), name: "gray.jpg").kind == .jpeg)
        let png = try TestSupport.sample("rgb8.png")
        #expect(
            try SealedContent(plaintext: png) == SealedContent(kind: .png, name: "", mediaType: "image/png", bytes: png)
        )
        #expect(throws: ImagingError.self) { try SealedContent(plaintext: Array("DENV".utf8) + [1, 2, 0, 9]) }
        #expect(content.fileName(fallback: "x") == "document.pdf")
        #expect(
            SealedContent(kind: .file, name: "../..", mediaType: "application/pdf", bytes: []).fileName(fallback: "x")
                == "x.pdf")
    }

    @Test(
        "any file and every JPEG seal, embed and open byte-exact at 2, 4 and 8 bits per channel; denser covers are smaller"
    )
    func sealsEveryKindAtEveryDensity() throws {
        var generator = TestRNG(seed: 7)
        let big = (0..<300_000).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        var previousPixels = Int.max
        let files = try [("noise.bin", big)] + JPEGTests.jpegs.map({ ($0, try TestSupport.sample($0)) })
        for bits in PayloadEmbedding.densities {
            for (name, bytes) in files {
                let content = SealedContent(file: bytes, name: name)
                let sealed = try ImageSealer.encrypt(image: content.encoded(), bitsPerChannel: bits)
                #expect(try ImageSealer.open(png: sealed.png, key: sealed.key) == content, "\(name) at \(bits)")
                if name == "noise.bin" {
                    #expect(sealed.width * sealed.height < previousPixels)
                    previousPixels = sealed.width * sealed.height
                }
            }
        }
        #expect(throws: ImagingError.self) {
            try ImageSealer.encrypt(image: SealedContent(file: [1, 2], name: "x").encoded(), bitsPerChannel: 3)
        }
    }
}
