/// A structural check of a JPEG file without decoding it: the start-of-image marker, every segment's
/// length, one frame header (SOF) with its dimensions and components within the limits before any scan,
/// scans whose entropy-coded data ends at a marker, and the end-of-image marker. Pure: used by the
/// cloud's `Encrypt` before it seals a JPEG (it never decodes one) and by the peer before it uploads.
public enum JPEGStructure {
    /// What the frame header and the EXIF data say.
    public struct Info: Sendable, Equatable {
        /// Width in pixels, from the frame header.
        public var width: Int
        /// Height in pixels, from the frame header.
        public var height: Int
        /// Colour components: 1 (grayscale), 3 (YCbCr or RGB), 4 (CMYK).
        public var components: Int
        /// True for a progressive frame (SOF2, SOF6, SOF10, SOF14).
        public var progressive: Bool
        /// The EXIF orientation (1-8; 1 when absent): how a viewer should turn the pixels.
        public var orientation: Int
    }

    /// The JPEG start-of-image marker, followed by the first marker's 0xFF.
    public static let signature: [UInt8] = [0xFF, 0xD8, 0xFF]

    /// Whether `data` starts like a JPEG file.
    public static func looksLikeJPEG(_ data: [UInt8]) -> Bool {
        data.count >= 3 && Array(data[0..<3]) == signature
    }

    /// The width and height the frame header declares, found by walking the segments before the
    /// first scan (nil when `data` does not start like a JPEG or ends before a frame header): what a
    /// caller needs to budget before it has the whole file.
    public static func declaredSize(_ data: [UInt8]) -> (width: Int, height: Int)? {
        guard data.count >= 4, data[0] == 0xFF, data[1] == 0xD8 else { return nil }
        var offset = 2
        // Bounded: each pass moves past one segment of at least 4 bytes.
        while offset + 4 <= data.count, data[offset] == 0xFF {
            let marker = data[offset + 1]
            let length = Int(data[offset + 2]) << 8 | Int(data[offset + 3])
            guard length >= 2, marker != 0xDA else { return nil }
            if [0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF].contains(marker) {
                guard offset + 9 <= data.count else { return nil }
                let height = Int(data[offset + 5]) << 8 | Int(data[offset + 6])
                let width = Int(data[offset + 7]) << 8 | Int(data[offset + 8])
                return (width, height)
            }
            offset += 2 + length
        }
        return nil
    }

    /// Checks `data`; returns what its headers say. Throws `notJPEG`, `invalidJPEG` saying what is
    /// wrong, or `imageTooLarge` beyond `limits`.
    public static func check(_ data: [UInt8], limits: PNGLimits = .default) throws(ImagingError) -> Info {
        try data.withUnsafeBufferPointer { (buffer) throws(ImagingError) in try check(buffer: buffer, limits: limits) }
    }

    /// ``check(_:limits:)`` of bytes held elsewhere (part of a larger buffer), without copying them.
    public static func check(buffer data: UnsafeBufferPointer<UInt8>, limits: PNGLimits = .default) throws(ImagingError)
        -> Info
    {
        guard data.count >= 2, data[0] == 0xFF, data[1] == 0xD8 else { throw .notJPEG }
        var offset = 2
        var frame: Info?
        var orientation = 1
        var scans = 0
        // Every pass consumes at least one byte (a marker, a segment, or entropy-coded data up to the
        // next marker), so the loop ends within data.count passes.
        while offset < data.count {
            guard data[offset] == 0xFF else {
                throw .invalidJPEG("expected a marker at byte \(offset), found 0x\(String(data[offset], radix: 16))")
            }
            // Fill bytes: any number of 0xFF before a marker.
            while offset < data.count, data[offset] == 0xFF { offset += 1 }
            guard offset < data.count else { break }
            let marker = data[offset]
            offset += 1
            switch marker {
            case 0xD9:
                guard let frame else { throw .invalidJPEG("the image ends before a frame header") }
                guard scans > 0 else { throw .invalidJPEG("the image has no scan") }
                var info = frame
                info.orientation = orientation
                return info
            case 0xD8: throw .invalidJPEG("a second start-of-image marker at byte \(offset - 2)")
            case 0x01, 0xD0...0xD7: continue  // TEM, RSTn: no length
            case 0x00: throw .invalidJPEG("a stray 0xFF00 at byte \(offset - 2)")
            default: break
            }
            guard offset + 2 <= data.count else { throw .invalidJPEG("truncated in a segment header") }
            let length = Int(data[offset]) << 8 | Int(data[offset + 1])
            guard length >= 2, offset + length <= data.count else {
                throw .invalidJPEG("a segment at byte \(offset - 2) runs past the end of the file (truncated)")
            }
            let body = offset + 2..<offset + length
            switch marker {
            case 0xC0...0xC3, 0xC5...0xC7, 0xC9...0xCB, 0xCD...0xCF:
                guard frame == nil else { throw .invalidJPEG("more than one frame header") }
                guard body.count >= 6 else { throw .invalidJPEG("the frame header is too short") }
                let height = Int(data[body.lowerBound + 1]) << 8 | Int(data[body.lowerBound + 2])
                let width = Int(data[body.lowerBound + 3]) << 8 | Int(data[body.lowerBound + 4])
                let components = Int(data[body.lowerBound + 5])
                guard width > 0, height > 0 else {
                    throw .invalidJPEG("the frame declares \(width)x\(height) pixels (a DNL height is not supported)")
                }
                guard [1, 3, 4].contains(components), body.count == 6 + 3 * components else {
                    throw .invalidJPEG("the frame declares \(components) components in \(body.count) bytes")
                }
                guard width <= limits.maxWidth, height <= limits.maxHeight, width * height <= limits.maxPixels else {
                    throw .imageTooLarge(width: width, height: height)
                }
                frame = Info(
                    width: width, height: height, components: components,
                    progressive: [0xC2, 0xC6, 0xCA, 0xCE].contains(marker), orientation: 1)
            case 0xE1:
                if let found = exifOrientation(data, body) { orientation = found }
            case 0xDA:
                guard frame != nil else { throw .invalidJPEG("a scan before the frame header") }
                scans += 1
                offset = try endOfEntropyCodedData(data, from: body.upperBound)
                continue
            default: break
            }
            offset = body.upperBound
        }
        throw .invalidJPEG("the file ends without an end-of-image marker (truncated)")
    }

    /// Where the entropy-coded data that starts at `start` ends: at the first marker other than a
    /// stuffed 0xFF00 or a restart marker.
    private static func endOfEntropyCodedData(_ data: UnsafeBufferPointer<UInt8>, from start: Int) throws(ImagingError)
        -> Int
    {
        var index = start
        while index + 1 < data.count {
            if data[index] == 0xFF {
                let next = data[index + 1]
                if next != 0x00, next != 0xFF, !(0xD0...0xD7).contains(next) { return index }
                index += next == 0xFF ? 1 : 2
            } else {
                index += 1
            }
        }
        throw .invalidJPEG("the scan data runs to the end of the file (truncated)")
    }

    /// The orientation (1-8) in an APP1 EXIF segment's first image directory, if it has one.
    static func exifOrientation(_ data: UnsafeBufferPointer<UInt8>, _ body: Range<Int>) -> Int? {
        let exif = Array("Exif".utf8) + [0, 0]
        guard body.count >= 14 + 8, Array(data[body.lowerBound..<body.lowerBound + 6]) == exif else { return nil }
        let tiff = body.lowerBound + 6
        let little: Bool
        switch (data[tiff], data[tiff + 1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: return nil
        }
        func u16(_ at: Int) -> Int? {
            guard at >= tiff, at + 2 <= body.upperBound else { return nil }
            return little ? Int(data[at]) | Int(data[at + 1]) << 8 : Int(data[at]) << 8 | Int(data[at + 1])
        }
        func u32(_ at: Int) -> Int? {
            guard let high = u16(little ? at + 2 : at), let low = u16(little ? at : at + 2) else { return nil }
            return high << 16 | low
        }
        guard let first = u32(tiff + 4), let entries = u16(tiff + first) else { return nil }
        // Bounded: at most the entries that fit in the segment.
        for entry in 0..<min(entries, body.count / 12) {
            let at = tiff + first + 2 + entry * 12
            guard let tag = u16(at) else { return nil }
            if tag == 0x0112, let value = u16(at + 8), (1...8).contains(value) { return value }
        }
        return nil
    }
}
