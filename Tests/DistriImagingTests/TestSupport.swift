import DistriImaging
import Foundation

/// Shared helpers: the sample-images folder, seeded PNGs and seeded random sources.
enum TestSupport {
    static let sampleDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("sample-images")

    static let sampleNames = [
        "gray8.png", "gray1.png", "gray4.png", "gray-alpha8.png", "rgb8.png", "rgb16.png", "rgba8.png",
        "palette4-trns.png", "interlaced-rgb8.png",
    ]

    static func sample(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: sampleDirectory.appendingPathComponent(name)))
    }

    /// A seeded RGBA image with smooth areas and noise, encoded as PNG.
    static func randomPNG(seed: UInt64, width: Int, height: Int) throws -> [UInt8] {
        var generator = TestRNG(seed: seed)
        var pixels = [UInt8](repeating: 0, count: width * height * 4)
        for index in 0..<pixels.count {
            pixels[index] =
                index % 7 == 0 ? UInt8(truncatingIfNeeded: generator.next()) : UInt8(truncatingIfNeeded: index / 5)
        }
        return try PNGCodec.encode(RGBAImage(width: width, height: height, pixels: pixels))
    }
}

/// SplitMix64 for test data.
struct TestRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
