/// Opens a cover written row by row (``StreamEmbedder``) from its file, a row at a time: the header
/// from the first row, then the sealed payload in raster order, opened 64 KiB at a time
/// (``SealedStreamReader``). Holds one row and one chunk, whatever the file's size.
public enum StreamExtractor {
    /// Opens the cover at `path` with `key` and hands the plaintext to `body` a piece at a time, in
    /// order. Throws what ``ImageSealer/decrypt(png:key:limits:)`` would: `wrongKey`, `tampered`,
    /// `truncatedPayload`, `noEmbeddedPayload`, or `unsupportedVersion` for a cover of the permuted
    /// layout (version 1, which opens whole, in memory).
    public static func open(
        path: String, key: ImageKey, limits: PNGLimits = .default, _ body: ([UInt8]) throws -> Void
    ) throws {
        let reader = try PNGRowReader(path: path, limits: limits)
        let width = reader.width
        guard width % PayloadEmbedding.pixelsPerUnit == 0,
            width / PayloadEmbedding.pixelsPerUnit > PayloadEmbedding.headerUnits
        else { throw ImagingError.noEmbeddedPayload }
        var row = [UInt8](repeating: 0, count: width * 4)
        var sealed = try SealedStreamReader(fileKey: key.fileKey)
        var header = [UInt8](repeating: 0, count: PayloadEmbedding.headerSize)
        var length = 0
        var bits = 2
        var taken = 0
        let unitsPerRow = width / PayloadEmbedding.pixelsPerUnit
        // Bounded by the cover's rows.
        for y in 0..<reader.height where y == 0 || taken < length {
            try row.withUnsafeMutableBytes { try reader.read(into: $0) }
            var firstUnit = 0
            if y == 0 {
                row.withUnsafeBytes { pixels in
                    header.withUnsafeMutableBufferPointer { bytes in
                        for unit in 0..<PayloadEmbedding.headerUnits {
                            PayloadEmbedding.readUnit(pixels.baseAddress!, unit: unit, into: bytes, at: unit * 3)
                        }
                    }
                }
                let parsed = try PayloadEmbedding.parse(header: header, key: key, width: width, height: reader.height)
                // Only covers written row by row keep the payload in raster order.
                guard parsed.version == PayloadEmbedding.sequentialVersion else {
                    throw ImagingError.unsupportedVersion(Int(parsed.version))
                }
                (length, bits) = (parsed.length, parsed.bits)
                firstUnit = PayloadEmbedding.headerUnits
            }
            let unitBytes = 3 * bits / 2
            let units = min(unitsPerRow - firstUnit, (length - taken + unitBytes - 1) / unitBytes)
            guard units > 0 else { continue }
            var piece = [UInt8](repeating: 0, count: units * unitBytes)
            row.withUnsafeBytes { pixels in
                piece.withUnsafeMutableBufferPointer { bytes in
                    for index in 0..<units {
                        if bits == 2 {
                            PayloadEmbedding.readUnit(
                                pixels.baseAddress!, unit: firstUnit + index, into: bytes, at: index * unitBytes)
                        } else {
                            PayloadEmbedding.readDenseUnit(
                                pixels.baseAddress!, unit: firstUnit + index, into: bytes, at: index * unitBytes,
                                bits: bits)
                        }
                    }
                }
            }
            piece.removeLast(max(0, taken + piece.count - length))
            taken += piece.count
            let plaintext = try sealed.append(piece)
            if !plaintext.isEmpty { try body(plaintext) }
        }
        guard taken == length else { throw ImagingError.truncatedPayload }
        try sealed.finish()
    }
}
