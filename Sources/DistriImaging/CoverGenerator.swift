import Foundation

/// Makes deterministic, natural-looking covers: smooth color gradients (a sky-to-ground blend with a
/// soft horizontal band) plus mild per-channel noise from a seeded generator, fully opaque. The same
/// seed and size always give the same pixels.
public enum CoverGenerator {
    /// The smallest cover at least 64×48 with a 4:3-ish shape that holds `payloadSize` embedded bytes
    /// at `bitsPerChannel`.
    public static func size(
        forPayloadSize payloadSize: Int, bitsPerChannel: Int = PayloadEmbedding.bitsPerChannel
    ) -> (width: Int, height: Int) {
        let pixels = PayloadEmbedding.pixelsNeeded(payloadSize: payloadSize, bitsPerChannel: bitsPerChannel)
        var width = max(64, Int((Double(pixels) * 4.0 / 3.0).squareRoot().rounded(.up)))
        width = (width + 3) / 4 * 4
        let height = max(48, (pixels + width - 1) / width)
        return (width, height)
    }

    /// A cover big enough for `payloadSize` bytes at `bitsPerChannel`.
    public static func cover(
        forPayloadSize payloadSize: Int, seed: UInt64, bitsPerChannel: Int = PayloadEmbedding.bitsPerChannel
    ) -> RGBAImage {
        let (width, height) = size(forPayloadSize: payloadSize, bitsPerChannel: bitsPerChannel)
        return cover(width: width, height: height, seed: seed)
    }

    /// A `width` × `height` cover.
    ///
    /// Every channel is a row part (vertical gradient and band) plus a column part (horizontal shade),
    /// both non-negative and summing to at most 240, plus 4 bits of noise: no sum overflows a byte, so
    /// two pixels are produced with one 64-bit add of packed bytes.
    public static func cover(width: Int, height: Int, seed: UInt64) -> RGBAImage {
        precondition(width > 0 && height > 0, "cover dimensions must be positive")
        var rows = CoverRows(width: width, height: height, seed: seed)
        var pixels = [UInt8](repeating: 0, count: width * height * 4)
        pixels.withUnsafeMutableBytes { raw in
            let rowBytes = width * 4
            for y in 0..<height {
                rows.next(into: UnsafeMutableRawBufferPointer(rebasing: raw[y * rowBytes..<(y + 1) * rowBytes]))
            }
        }
        return RGBAImage(width: width, height: height, pixels: pixels)
    }
}

/// The rows of ``CoverGenerator/cover(width:height:seed:)``, one at a time, top to bottom: the same
/// pixels without holding the image (a cover written row by row).
public struct CoverRows {
    /// The cover's width in pixels.
    public let width: Int
    /// The cover's height in pixels.
    public let height: Int
    /// The next row's index.
    public private(set) var y = 0
    private var random: ImagingPRNG
    private let hue: Int
    private let bandCenter: Int
    /// Column parts for pixel pairs (the last pair of an odd width is padded and not stored).
    private let columns: [UInt64]
    private var pairRow: [UInt64]

    /// The rows of the cover `width` × `height` generated from `seed`.
    public init(width: Int, height: Int, seed: UInt64) {
        precondition(width > 0 && height > 0, "cover dimensions must be positive")
        self.width = width
        self.height = height
        var generator = ImagingPRNG(seed: seed)
        hue = Int(generator.next() % 32)
        bandCenter = height / 3 + Int(generator.next() % UInt64(max(1, height / 3)))
        let pairs = (width + 1) / 2
        columns = (0..<pairs).map { pair in
            func part(_ x: Int) -> UInt64 {
                let shade = UInt64(min(x, width - 1) * 48 / width)
                return shade | (shade / 2) << 8 | (24 - shade / 2) << 16
            }
            return part(2 * pair) | part(2 * pair + 1) << 32
        }
        random = generator
        pairRow = [UInt64](repeating: 0, count: pairs)
    }

    /// Writes the next row (`width * 4` bytes of RGBA) into `row`.
    ///
    /// Every channel is a row part (vertical gradient and band) plus a column part (horizontal shade),
    /// both non-negative and summing to at most 240, plus 4 bits of noise: no sum overflows a byte, so
    /// two pixels are produced with one 64-bit add of packed bytes.
    public mutating func next(into row: UnsafeMutableRawBufferPointer) {
        precondition(y < height && row.count >= width * 4, "no row left, or the row buffer is too small")
        let noiseMask: UInt64 = 0x000F_0F0F_000F_0F0F
        let vertical = y * 256 / height
        let band = max(0, 40 - abs(y - bandCenter) * 512 / height)
        let red = UInt64(40 + hue + vertical / 4 + band)
        let green = UInt64(70 + vertical / 4 + band / 2)
        let blue = UInt64(176 - vertical / 2 + band / 3)
        let rowPart = red | green << 8 | blue << 16 | 0xFF << 24
        let rowPair = rowPart | rowPart << 32
        let width = width
        columns.withUnsafeBufferPointer { columnParts in
            for pair in 0..<columnParts.count {
                pairRow[pair] = UInt64(littleEndian: rowPair &+ columnParts[pair] &+ random.next() & noiseMask)
            }
        }
        pairRow.withUnsafeBytes { source in
            row.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[0..<width * 4]))
        }
        y += 1
    }
}
