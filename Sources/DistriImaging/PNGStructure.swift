import CPNG

/// A structural check of a PNG file without inflating its pixels: the signature, every chunk's length
/// and CRC, a valid IHDR within the limits, a palette where the color type needs one, consecutive IDAT
/// chunks, and IEND at the very end. Catches other formats, truncation, bit rot (CRCs), hostile sizes
/// and misplaced chunks at memory speed; only a deliberately forged zlib stream under valid CRCs gets
/// past it, which a full decode (``PNGCodec/validate(_:limits:)``) would refuse.
public enum PNGStructure {
    /// The width and height the IHDR chunk declares, read from its fixed place at the start of the
    /// file without checking anything else (nil when the file does not start with a signature and an
    /// IHDR): what a caller needs to budget for the pixels before anything is decoded.
    public static func declaredSize(_ data: [UInt8]) -> (width: Int, height: Int)? {
        guard data.count >= 24, Array(data[0..<8]) == PNGCodec.signature, Array(data[12..<16]) == Array("IHDR".utf8)
        else { return nil }
        func u32(_ at: Int) -> Int { (0..<4).reduce(0) { $0 << 8 | Int(data[at + $1]) } }
        return (u32(16), u32(20))
    }

    /// Checks `data`; returns the image's width and height.
    @discardableResult
    public static func check(_ data: [UInt8], limits: PNGLimits = .default) throws -> (width: Int, height: Int) {
        try data.withUnsafeBufferPointer { bytes in try check(buffer: bytes, limits: limits) }
    }

    /// ``check(_:limits:)`` of bytes held elsewhere (part of a larger buffer), without copying them.
    @discardableResult
    public static func check(
        buffer bytes: UnsafeBufferPointer<UInt8>, limits: PNGLimits = .default
    ) throws -> (width: Int, height: Int) {
        guard bytes.count >= 8, Array(bytes[0..<8]) == PNGCodec.signature else {
            throw !bytes.isEmpty && bytes.count < 8 && Array(bytes) == Array(PNGCodec.signature.prefix(bytes.count))
                ? ImagingError.truncatedPNG : ImagingError.notPNG
        }
        func u32(_ at: Int) -> Int { (0..<4).reduce(0) { $0 << 8 | Int(bytes[at + $1]) } }
        var offset = 8
        var size: (width: Int, height: Int)?
        var colorType = -1
        var sawPalette = false
        var idat = (seen: false, ended: false)
        // Each pass consumes one chunk of at least 12 bytes, so the loop ends within count / 12 passes.
        while offset < bytes.count {
            guard bytes.count - offset >= 12 else { throw ImagingError.truncatedPNG }
            let length = u32(offset)
            guard length <= 0x7FFF_FFFF else { throw ImagingError.invalidPNG("chunk length \(length) out of range") }
            guard bytes.count - offset - 12 >= length else { throw ImagingError.truncatedPNG }
            let type = String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
            let stored = UInt32(u32(offset + 8 + length))
            let computed = UInt32(crc32_z(0, bytes.baseAddress.map { $0 + offset + 4 }, 4 + length))
            guard stored == computed else { throw ImagingError.invalidPNG("CRC error in chunk \(type)") }
            let body = offset + 8
            if size == nil && type != "IHDR" { throw ImagingError.invalidPNG("the first chunk is \(type), not IHDR") }
            switch type {
            case "IHDR":
                guard size == nil else { throw ImagingError.invalidPNG("a second IHDR") }
                guard length == 13 else { throw ImagingError.invalidPNG("IHDR of \(length) bytes") }
                let width = u32(body)
                let height = u32(body + 4)
                let depth = Int(bytes[body + 8])
                colorType = Int(bytes[body + 9])
                guard width > 0, height > 0 else { throw ImagingError.invalidPNG("zero image width or height") }
                guard width <= limits.maxWidth, height <= limits.maxHeight, width * height <= limits.maxPixels else {
                    throw ImagingError.imageTooLarge(width: width, height: height)
                }
                let depths: [Int: Set<Int>] = [
                    0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16],
                ]
                guard depths[colorType]?.contains(depth) == true else {
                    throw ImagingError.invalidPNG("bit depth \(depth) with color type \(colorType)")
                }
                guard bytes[body + 10] == 0, bytes[body + 11] == 0, bytes[body + 12] <= 1 else {
                    throw ImagingError.invalidPNG("unknown compression, filter or interlace method")
                }
                size = (width, height)
            case "PLTE":
                guard length % 3 == 0, length > 0, length <= 768 else {
                    throw ImagingError.invalidPNG("palette of \(length) bytes")
                }
                sawPalette = true
            case "IDAT":
                guard !idat.ended else { throw ImagingError.invalidPNG("IDAT chunks are not consecutive") }
                if colorType == 3 && !sawPalette { throw ImagingError.invalidPNG("palette image without PLTE") }
                idat.seen = true
            case "IEND":
                guard idat.seen else { throw ImagingError.invalidPNG("no image data (IDAT)") }
                guard offset + 12 == bytes.count else { throw ImagingError.invalidPNG("data after IEND") }
                guard let size else { throw ImagingError.invalidPNG("no IHDR") }
                return size
            default:
                if idat.seen { idat.ended = true }
                // Ancillary chunks (lowercase first letter) are skipped; an unknown critical one is refused.
                if bytes[offset + 4] & 0x20 == 0 { throw ImagingError.invalidPNG("unknown critical chunk \(type)") }
            }
            offset += 12 + length
        }
        throw ImagingError.truncatedPNG
    }
}
