import Foundation

/// Measures the imaging pipeline's parts in one run, for `distri-bench encrypt`.
///
/// Convention: AES-GCM throughput counts plaintext bytes (the input image file); every PNG figure and
/// both end-to-end figures count the cover's raw RGBA bytes (width × height × 4), so
/// `encryptEmbedToEncodeRatio` compares like with like: 1.0 means sealing costs nothing beyond
/// encoding the cover.
public struct ImagingBenchmarkReport: Sendable, CustomStringConvertible {
    /// Size of the image sealed.
    public var imageBytes: Int
    /// Size of the sealed payload embedded.
    public var sealedBytes: Int
    /// The cover's width in pixels.
    public var coverWidth: Int
    /// The cover's height in pixels.
    public var coverHeight: Int
    /// Cover RGBA bytes (width × height × 4), the unit of the PNG figures.
    public var coverRawBytes: Int
    /// Size of the produced PNG.
    public var pngBytes: Int
    /// The PNG settings the cover was encoded with.
    public var settings: PNGEncodeSettings
    /// AES-256-GCM sealing (`SealedStream.seal`, 64 KiB chunks), MB/s of plaintext.
    public var aesGCMMBps: Double
    /// libpng encoding of the carrier pixels at `settings`, MB/s of RGBA.
    public var pngEncodeMBps: Double
    /// libpng decoding of the produced PNG, MB/s of RGBA.
    public var pngDecodeMBps: Double
    /// Full `ImageSealer.encrypt` (validate, seal, generate cover, embed, encode), MB/s of RGBA.
    public var encryptEmbedMBps: Double
    /// Full `ImageSealer.decrypt` (decode, extract, open), MB/s of RGBA.
    public var extractDecryptMBps: Double
    /// `encryptEmbedMBps / pngEncodeMBps`.
    public var encryptEmbedToEncodeRatio: Double { pngEncodeMBps > 0 ? encryptEmbedMBps / pngEncodeMBps : 0 }

    public var description: String {
        func f(_ value: Double) -> String { String(format: "%.1f", value) }
        return """
            image \(imageBytes) B, sealed \(sealedBytes) B, cover \(coverWidth)x\(coverHeight) \
            (\(coverRawBytes) B RGBA), PNG \(pngBytes) B, zlib level \(settings.level) \(settings.filter) \
            \(settings.strategy)
            AES-256-GCM      \(f(aesGCMMBps)) MB/s (plaintext)
            PNG encode       \(f(pngEncodeMBps)) MB/s (RGBA)
            PNG decode       \(f(pngDecodeMBps)) MB/s (RGBA)
            encrypt+embed    \(f(encryptEmbedMBps)) MB/s (RGBA)
            extract+decrypt  \(f(extractDecryptMBps)) MB/s (RGBA)
            encrypt+embed / encode = \(f(encryptEmbedToEncodeRatio * 100))%
            """
    }
}

/// Runs the imaging benchmark.
public enum ImagingBenchmark {
    /// Measures each part for about `seconds / 5` (at least one run each) on `image` (an envelope of any
    /// file, or a bare PNG) with a generated cover at `bitsPerChannel`.
    public static func run(
        image: [UInt8], seconds: Double = 2, settings: PNGEncodeSettings = .default, limits: PNGLimits = .default,
        bitsPerChannel: Int = PayloadEmbedding.bitsPerChannel
    ) throws -> ImagingBenchmarkReport {
        let budget = Duration.milliseconds(Int64(max(0.05, seconds) * 1000 / 5))
        let sealedImage = try ImageSealer.encrypt(
            image: image, cover: nil, settings: settings, limits: limits, bitsPerChannel: bitsPerChannel)
        let carrier = try PNGCodec.decode(sealedImage.png, limits: limits).image
        let rawBytes = carrier.width * carrier.height * 4
        var random = SeededImagingRandom(seed: 1)
        let key = sealedImage.key

        let aes = try measure(budget: budget) {
            _ = try SealedStream.seal(image, fileKey: key.fileKey, random: &random)
        }
        let encode = try measure(budget: budget) { _ = try PNGCodec.encode(carrier, settings: settings) }
        let decode = try measure(budget: budget) { _ = try PNGCodec.decode(sealedImage.png, limits: limits) }
        let encrypt = try measure(budget: budget) {
            _ = try ImageSealer.encrypt(
                image: image, cover: nil, settings: settings, limits: limits, bitsPerChannel: bitsPerChannel)
        }
        let decrypt = try measure(budget: budget) {
            _ = try ImageSealer.decrypt(png: sealedImage.png, key: key, limits: limits)
        }
        return ImagingBenchmarkReport(
            imageBytes: image.count, sealedBytes: SealedStream.sealedSize(plaintextCount: image.count),
            coverWidth: carrier.width, coverHeight: carrier.height, coverRawBytes: rawBytes,
            pngBytes: sealedImage.png.count, settings: settings, aesGCMMBps: Double(image.count) / aes / 1e6,
            pngEncodeMBps: Double(rawBytes) / encode / 1e6, pngDecodeMBps: Double(rawBytes) / decode / 1e6,
            encryptEmbedMBps: Double(rawBytes) / encrypt / 1e6, extractDecryptMBps: Double(rawBytes) / decrypt / 1e6)
    }

    /// Seconds per run of `body`, repeated until `budget` has passed (at most 100000 runs).
    static func measure(budget: Duration, _ body: () throws -> Void) throws -> Double {
        let clock = ContinuousClock()
        let start = clock.now
        var runs = 0
        repeat {
            try body()
            runs += 1
        } while clock.now - start < budget && runs < 100_000
        let elapsed = clock.now - start
        let seconds = elapsed / .seconds(1)
        return seconds / Double(runs)
    }
}
