/// Makes deterministic, natural-looking covers: smooth color gradients (a sky-to-ground blend with a
/// soft horizontal band) plus mild per-channel noise from a seeded generator, fully opaque. The same
/// seed and size always give the same pixels.
public enum CoverGenerator {
    /// The smallest cover at least 64×48 with a 4:3-ish shape that holds `payloadSize` embedded bytes.
    public static func size(forPayloadSize payloadSize: Int) -> (width: Int, height: Int) {
        let pixels = PayloadEmbedding.pixelsNeeded(payloadSize: payloadSize)
        var width = max(64, Int((Double(pixels) * 4.0 / 3.0).squareRoot().rounded(.up)))
        width = (width + 3) / 4 * 4
        let height = max(48, (pixels + width - 1) / width)
        return (width, height)
    }

    /// A cover big enough for `payloadSize` bytes.
    public static func cover(forPayloadSize payloadSize: Int, seed: UInt64) -> RGBAImage {
        let (width, height) = size(forPayloadSize: payloadSize)
        return cover(width: width, height: height, seed: seed)
    }

    /// A `width` × `height` cover.
    public static func cover(width: Int, height: Int, seed: UInt64) -> RGBAImage {
        precondition(width > 0 && height > 0, "cover dimensions must be positive")
        var generator = ImagingPRNG(seed: seed)
        let hue = Int(generator.next() % 64)
        let bandCenter = height / 3 + Int(generator.next() % UInt64(max(1, height / 3)))
        var pixels = [UInt8](repeating: 255, count: width * height * 4)
        pixels.withUnsafeMutableBufferPointer { out in
            for y in 0..<height {
                let vertical = y * 256 / height
                let distance = abs(y - bandCenter) * 512 / height
                let band = max(0, 48 - distance)
                let rowRed = 60 + hue + vertical / 3 + band
                let rowGreen = 90 + vertical / 4 + band / 2
                let rowBlue = 210 - vertical / 2 + band / 3
                var row = y * width * 4
                var noise: UInt64 = 0
                for x in 0..<width {
                    if x & 1 == 0 { noise = generator.next() }
                    let horizontal = x * 64 / width
                    // Two pixels per random word: 3 channels × 5 bits of noise each, centered (±15 / 2).
                    let red = rowRed + horizontal + Int(noise & 15) - 8
                    let green = rowGreen + horizontal / 2 + Int((noise >> 5) & 15) - 8
                    let blue = rowBlue - horizontal / 2 + Int((noise >> 10) & 15) - 8
                    noise >>= 16
                    out[row] = UInt8(clamping: red)
                    out[row + 1] = UInt8(clamping: green)
                    out[row + 2] = UInt8(clamping: blue)
                    row += 4
                }
            }
        }
        return RGBAImage(width: width, height: height, pixels: pixels)
    }
}
