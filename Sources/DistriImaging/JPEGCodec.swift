import CTurboJPEG

/// Decodes JPEG files to RGBA through the system's libjpeg-turbo (its TurboJPEG API), in the peer
/// front end: to verify a JPEG before it is uploaded and to draw one in the terminal. The headers are
/// checked first (``JPEGStructure``, within the limits), so no hostile size reaches the decoder.
public enum JPEGCodec {
    /// Decodes `data` to RGBA, turned upright by its EXIF orientation when `upright`.
    public static func decode(_ data: [UInt8], limits: PNGLimits = .default, upright: Bool = true) throws -> RGBAImage {
        let info = try JPEGStructure.check(data, limits: limits)
        guard let handle = tjInitDecompress() else { throw ImagingError.invalidJPEG("libjpeg-turbo did not start") }
        defer { tjDestroy(handle) }
        var pixels = [UInt8](repeating: 0, count: info.width * info.height * 4)
        let status = data.withUnsafeBufferPointer { input in
            pixels.withUnsafeMutableBufferPointer { output in
                tjDecompress2(
                    handle, input.baseAddress, UInt(input.count), output.baseAddress, Int32(info.width),
                    Int32(info.width * 4), Int32(info.height), Int32(TJPF_RGBA.rawValue), 0)
            }
        }
        // libjpeg-turbo answers warnings (e.g. premature end of data, which it fills in) with -1 as well;
        // only an error stops the decode.
        if status != 0, tjGetErrorCode(handle) == Int32(TJERR_FATAL.rawValue) {
            throw ImagingError.invalidJPEG(String(cString: tjGetErrorStr2(handle)))
        }
        let image = RGBAImage(width: info.width, height: info.height, pixels: pixels)
        return upright ? Orientation.upright(image, exif: info.orientation) : image
    }
}

/// EXIF orientations (1-8) applied to pixels: what a viewer does to show a photo the right way up.
public enum Orientation {
    /// `image` turned by EXIF orientation `exif` (1 and unknown values leave it as it is).
    public static func upright(_ image: RGBAImage, exif: Int) -> RGBAImage {
        guard (2...8).contains(exif) else { return image }
        let (w, h) = (image.width, image.height)
        let swaps = exif >= 5
        let (outW, outH) = swaps ? (h, w) : (w, h)
        var out = [UInt8](repeating: 0, count: image.pixels.count)
        image.pixels.withUnsafeBytes { source in
            out.withUnsafeMutableBytes { target in
                let from = source.bindMemory(to: UInt32.self)
                let to = target.bindMemory(to: UInt32.self)
                for y in 0..<h {
                    for x in 0..<w {
                        let (tx, ty): (Int, Int)
                        switch exif {
                        case 2: (tx, ty) = (w - 1 - x, y)
                        case 3: (tx, ty) = (w - 1 - x, h - 1 - y)
                        case 4: (tx, ty) = (x, h - 1 - y)
                        case 5: (tx, ty) = (y, x)
                        case 6: (tx, ty) = (h - 1 - y, x)
                        case 7: (tx, ty) = (h - 1 - y, w - 1 - x)
                        default: (tx, ty) = (y, w - 1 - x)
                        }
                        to[ty * outW + tx] = from[y * w + x]
                    }
                }
            }
        }
        return RGBAImage(width: outW, height: outH, pixels: out)
    }
}
