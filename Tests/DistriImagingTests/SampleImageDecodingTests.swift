import DistriImaging
import Testing

/// Every PNG kind in sample-images decodes to the dimensions and pixels scripts/make-sample-images.py
/// computed.
@Suite struct SampleImageDecodingTests {
    func decode(_ name: String) throws -> DecodedPNG {
        try PNGCodec.decode(TestSupport.sample(name))
    }

    func pixel(_ image: RGBAImage, _ x: Int, _ y: Int) -> [UInt8] {
        let offset = (y * image.width + x) * 4
        return Array(image.pixels[offset..<offset + 4])
    }

    @Test func gray8() throws {
        let png = try decode("gray8.png")
        #expect((png.image.width, png.image.height, png.bitDepth, png.colorType) == (64, 48, 8, 0))
        #expect(pixel(png.image, 10, 7) == [54, 54, 54, 255])
        let gray = UInt8((63 * 4 + 47 * 2) & 255)
        #expect(pixel(png.image, 63, 47) == [gray, gray, gray, 255])
    }

    @Test func gray1() throws {
        let png = try decode("gray1.png")
        #expect((png.image.width, png.image.height, png.bitDepth) == (96, 64, 1))
        #expect(pixel(png.image, 0, 0) == [0, 0, 0, 255])
        #expect(pixel(png.image, 8, 0) == [255, 255, 255, 255])
        #expect(pixel(png.image, 8, 8) == [0, 0, 0, 255])
    }

    @Test func gray4() throws {
        let png = try decode("gray4.png")
        #expect((png.image.width, png.image.height, png.bitDepth) == (80, 60, 4))
        // (x + y) % 16 scaled by 17.
        #expect(pixel(png.image, 3, 4) == [119, 119, 119, 255])
        #expect(pixel(png.image, 10, 5) == [255, 255, 255, 255])
    }

    @Test func grayAlpha() throws {
        let png = try decode("gray-alpha8.png")
        #expect((png.image.width, png.image.height, png.colorType) == (64, 64, 4))
        #expect(pixel(png.image, 5, 9) == [20, 20, 20, 36])
    }

    @Test func rgb8() throws {
        let png = try decode("rgb8.png")
        #expect((png.image.width, png.image.height, png.colorType) == (128, 96, 2))
        #expect(pixel(png.image, 100, 50) == [200, 100, 150, 255])
        #expect(pixel(png.image, 127, 95) == [254, 190, 222, 255])
    }

    @Test func rgb16KeepsHighByte() throws {
        let png = try decode("rgb16.png")
        #expect((png.image.width, png.image.height, png.bitDepth) == (64, 48, 16))
        let x = 7
        let y = 3
        let red = UInt8((x * 1000 & 0xFFFF) >> 8)
        let green = UInt8((y * 1300 & 0xFFFF) >> 8)
        #expect(pixel(png.image, x, y) == [red, green, 0xAB, 255])
    }

    @Test func rgba8() throws {
        let png = try decode("rgba8.png")
        #expect((png.image.width, png.image.height, png.colorType) == (100, 75, 6))
        #expect(pixel(png.image, 20, 30) == [40, 90, 128, 100])
    }

    @Test func paletteWithTransparency() throws {
        let png = try decode("palette4-trns.png")
        #expect((png.image.width, png.image.height, png.colorType, png.bitDepth) == (72, 54, 3, 4))
        #expect(png.hasTransparencyChunk)
        // index 0 at (0, 0): color (0, 255, 0), alpha 0; index 9 at (9, 9): no tRNS entry, opaque.
        #expect(pixel(png.image, 0, 0) == [0, 255, 0, 0])
        #expect(pixel(png.image, 9, 0) == [16, 239, 40, 64])
        #expect(pixel(png.image, 9, 9) == [144, 111, 104, 255])
    }

    @Test func interlaced() throws {
        let png = try decode("interlaced-rgb8.png")
        #expect((png.image.width, png.image.height) == (65, 47))
        #expect(png.interlaced)
        for (x, y) in [(0, 0), (13, 29), (64, 46), (33, 1)] {
            let expected: [UInt8] = [UInt8(x * 3 & 255), UInt8(y * 5 & 255), UInt8(x * y & 255), 255]
            #expect(pixel(png.image, x, y) == expected)
        }
    }
}
