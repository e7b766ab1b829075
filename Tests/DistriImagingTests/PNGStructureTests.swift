import DistriImaging
import Testing

/// The structural check `encrypt` runs on its input agrees with libpng on good files and refuses
/// broken and hostile ones with a clear error.
@Suite struct PNGStructureTests {
    @Test("every sample passes with the dimensions libpng reads")
    func samples() throws {
        for name in TestSupport.sampleNames {
            let png = try TestSupport.sample(name)
            let checked = try PNGStructure.check(png)
            let decoded = try PNGCodec.validate(png)
            #expect(checked.width == decoded.width && checked.height == decoded.height, "\(name)")
        }
    }

    @Test("other formats, truncation at every length, bad CRCs, trailing data and huge sizes are refused")
    func refusals() throws {
        #expect(throws: ImagingError.notPNG) { try PNGStructure.check(Array("GIF89a".utf8) + [0, 0, 0]) }
        #expect(throws: ImagingError.notPNG) { try PNGStructure.check([]) }
        let png = try TestSupport.sample("rgb8.png")
        for length in 1..<png.count {
            #expect(throws: ImagingError.self) { try PNGStructure.check(Array(png.prefix(length))) }
        }
        // A flipped bit anywhere after the signature breaks a CRC or the layout.
        for position in stride(from: 8, to: png.count, by: max(1, png.count / 300)) {
            var broken = png
            broken[position] ^= 0x10
            #expect(throws: ImagingError.self) { try PNGStructure.check(broken) }
        }
        #expect(throws: ImagingError.invalidPNG("data after IEND")) { try PNGStructure.check(png + [0]) }
        var ihdr = MalformedPNGTests.bigEndian(100_000) + MalformedPNGTests.bigEndian(100_000)
        ihdr += [8, 6, 0, 0, 0]
        let bomb =
            PNGCodec.signature + MalformedPNGTests.chunk("IHDR", ihdr)
            + MalformedPNGTests.chunk("IDAT", [0x78, 0x01, 0x03, 0x00]) + MalformedPNGTests.chunk("IEND", [])
        #expect(throws: ImagingError.imageTooLarge(width: 100_000, height: 100_000)) { try PNGStructure.check(bomb) }
        let noData =
            PNGCodec.signature + MalformedPNGTests.chunk("IHDR", [0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0])
            + MalformedPNGTests.chunk("IEND", [])
        #expect(throws: ImagingError.invalidPNG("no image data (IDAT)")) { try PNGStructure.check(noData) }
    }

    @Test("encrypt refuses a forged zlib stream only with the full decode, and says so clearly either way")
    func forgedStream() throws {
        let header: [UInt8] = [0, 0, 0, 4, 0, 0, 0, 4, 8, 2, 0, 0, 0]
        let forged =
            PNGCodec.signature + MalformedPNGTests.chunk("IHDR", header)
            + MalformedPNGTests.chunk("IDAT", [0x78, 0x01, 0xFF, 0xFF, 0xFF]) + MalformedPNGTests.chunk("IEND", [])
        #expect(throws: ImagingError.self) { try ImageSealer.encrypt(image: forged, inputCheck: .fullDecode) }
        // The structure is sound, so the default check lets the bytes through; they come back exactly.
        let sealed = try ImageSealer.encrypt(image: forged)
        #expect(try ImageSealer.decrypt(png: sealed.png, key: sealed.key) == forged)
    }
}
