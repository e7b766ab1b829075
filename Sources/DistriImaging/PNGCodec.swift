import CPNG
import CPNGShim

/// Limits applied while decoding a PNG, a guard against decompression bombs: libpng's user limits plus
/// an own check of width, height and width × height before any pixel memory is allocated.
public struct PNGLimits: Sendable, Equatable {
    /// Widest image accepted, in pixels.
    public var maxWidth: Int
    /// Tallest image accepted, in pixels.
    public var maxHeight: Int
    /// Most pixels (width × height) accepted.
    public var maxPixels: Int

    /// Limits with the given values.
    public init(maxWidth: Int, maxHeight: Int, maxPixels: Int) {
        self.maxWidth = maxWidth
        self.maxHeight = maxHeight
        self.maxPixels = maxPixels
    }

    /// At most 32768 pixels per side and 64 Mpixel (256 MiB of RGBA8) in total.
    public static let `default` = PNGLimits(maxWidth: 32768, maxHeight: 32768, maxPixels: 64 * 1024 * 1024)
}

/// Pixels as 8-bit RGBA, rows top to bottom, `width * height * 4` bytes.
public struct RGBAImage: Sendable, Equatable {
    /// Width in pixels.
    public var width: Int
    /// Height in pixels.
    public var height: Int
    /// The pixels, RGBA8, rows top to bottom.
    public var pixels: [UInt8]

    /// An image of `width` × `height` with `pixels` (`width * height * 4` bytes).
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0 && pixels.count == width * height * 4, "RGBA size mismatch")
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// A decoded PNG: its pixels converted to RGBA8 and what the file declared.
public struct DecodedPNG: Sendable, Equatable {
    /// The pixels, as RGBA8.
    public var image: RGBAImage
    /// Bit depth in the file: 1, 2, 4, 8 or 16.
    public var bitDepth: Int
    /// PNG color type in the file: 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA.
    public var colorType: Int
    /// True for Adam7-interlaced files.
    public var interlaced: Bool
    /// True when the file has a tRNS chunk.
    public var hasTransparencyChunk: Bool
}

/// PNG decoding and encoding through libpng (via the CPNGShim C target, which keeps libpng's longjmp
/// inside C and turns every libpng error into an `ImagingError`).
public enum PNGCodec {
    /// The 8-byte PNG signature.
    public static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Decodes any PNG kind (gray, gray+alpha, RGB, RGBA, palette; 1 to 16 bits; interlaced; tRNS) to
    /// RGBA8. 16-bit samples keep their high byte; low bit depths scale to 0...255.
    public static func decode(_ data: [UInt8], limits: PNGLimits = .default) throws -> DecodedPNG {
        var info = cpng_info()
        var pixels: UnsafeMutablePointer<UInt8>? = nil
        var message = [CChar](repeating: 0, count: 256)
        let maxWidth = UInt32(clamping: max(0, limits.maxWidth))
        let maxHeight = UInt32(clamping: max(0, limits.maxHeight))
        let maxPixels = UInt64(clamping: max(0, limits.maxPixels))
        let code = data.withUnsafeBufferPointer { input in
            message.withUnsafeMutableBufferPointer { text in
                cpng_decode_rgba8(
                    input.baseAddress, input.count, maxWidth, maxHeight, maxPixels, &info, &pixels, text.baseAddress,
                    text.count)
            }
        }
        guard code == Int32(CPNG_OK), let pixels else {
            throw error(code: code, message: message, width: Int(info.width), height: Int(info.height))
        }
        defer { cpng_free(pixels) }
        let width = Int(info.width)
        let height = Int(info.height)
        let bytes = copied(pixels, count: width * height * 4)
        return DecodedPNG(
            image: RGBAImage(width: width, height: height, pixels: bytes), bitDepth: Int(info.bit_depth),
            colorType: Int(info.color_type), interlaced: info.interlace != 0, hasTransparencyChunk: info.has_trns != 0)
    }

    /// Checks that `data` is a complete, valid PNG within `limits` (every chunk, CRC and compressed row is
    /// read) without converting or keeping its pixels; returns its width and height. Much cheaper than
    /// `decode` for input that is only validated.
    @discardableResult
    public static func validate(_ data: [UInt8], limits: PNGLimits = .default) throws -> (width: Int, height: Int) {
        var info = cpng_info()
        var message = [CChar](repeating: 0, count: 256)
        let code = data.withUnsafeBufferPointer { input in
            message.withUnsafeMutableBufferPointer { text in
                cpng_validate(
                    input.baseAddress, input.count, UInt32(clamping: max(0, limits.maxWidth)),
                    UInt32(clamping: max(0, limits.maxHeight)), UInt64(clamping: max(0, limits.maxPixels)), &info,
                    text.baseAddress, text.count)
            }
        }
        guard code == Int32(CPNG_OK) else {
            throw error(code: code, message: message, width: Int(info.width), height: Int(info.height))
        }
        return (Int(info.width), Int(info.height))
    }

    /// Encodes RGBA8 pixels as a non-interlaced 8-bit RGBA PNG.
    public static func encode(_ image: RGBAImage, settings: PNGEncodeSettings = .default) throws -> [UInt8] {
        try image.pixels.withUnsafeBufferPointer { (pixels) throws in
            try encode(pixels: pixels, width: image.width, height: image.height, settings: settings)
        }
    }

    static func encode(
        pixels: UnsafeBufferPointer<UInt8>, width: Int, height: Int, settings: PNGEncodeSettings
    ) throws -> [UInt8] {
        guard width > 0, height > 0, width <= 1_000_000, height <= 1_000_000, pixels.count == width * height * 4
        else { throw ImagingError.encodingFailed("invalid dimensions \(width)x\(height)") }
        var output: UnsafeMutablePointer<UInt8>? = nil
        var size = 0
        var message = [CChar](repeating: 0, count: 256)
        let code = message.withUnsafeMutableBufferPointer { text in
            cpng_encode_rgba8(
                pixels.baseAddress, UInt32(width), UInt32(height), Int32(settings.level), settings.filter.libpngMask,
                settings.strategy.zlibValue, &output, &size, text.baseAddress, text.count)
        }
        guard code == Int32(CPNG_OK), let output else {
            throw ImagingError.encodingFailed(messageText(message))
        }
        defer { cpng_free(output) }
        return copied(output, count: size)
    }

    private static func error(code: Int32, message: [CChar], width: Int, height: Int) -> ImagingError {
        switch code {
        case Int32(CPNG_ERR_NOT_PNG): .notPNG
        case Int32(CPNG_ERR_TRUNCATED): .truncatedPNG
        case Int32(CPNG_ERR_TOO_LARGE): .imageTooLarge(width: width, height: height)
        default: .invalidPNG(messageText(message))
        }
    }

    /// `count` bytes at `source` (a buffer of the C shim's), in an array of their own.
    private static func copied(_ source: UnsafeMutablePointer<UInt8>, count: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            if let base = buffer.baseAddress { base.initialize(from: source, count: count) }
            initialized = count
        }
    }

    private static func messageText(_ message: [CChar]) -> String {
        let bytes = message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
