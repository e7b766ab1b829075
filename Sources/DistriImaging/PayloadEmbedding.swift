import CPNG

/// Hides bytes in the least-significant bits of the red, green and blue channels of a cover (alpha is
/// never touched, so transparency stays intact): 2 bits per channel by default, or 4 or 8 for a denser
/// embedding (the owner's choice: 2 keeps the cover looking like itself, 8 replaces its colours with
/// the sealed bytes). Cover pixels per payload byte: 1.33 at 2 bits, 0.67 at 4, 0.33 at 8 (the PNG of
/// the cover takes about 2.9, 1.6 and 1.1 bytes per payload byte: the sealed bits do not compress).
///
/// Pixels are grouped in *units* of 4 consecutive pixels (raster order); a unit's 12 RGB channels × 2
/// bits hold exactly 3 bytes (6 at 4 bits, 12 at 8). The first 9 units (36 pixels) hold a 27-byte
/// header, always at 2 bits per channel (its second byte after the version gives the body's):
///
///     magic "DSTG" | version 1 | bits per channel 2 | 0 | payload length (UInt32 BE)
///     | CRC32 of the payload | key check value (8) | CRC32 of the 23 bytes before it
///
/// The rest of the image is cut into *blocks* of 4 units (16 pixels, 64 bytes of RGBA: one cache line,
/// 12 payload bytes at 2 bits per channel). Payload blocks are spread over the image by `KeyedPermutation`, keyed from the
/// `ImageKey`'s embedding key. Permuting blocks rather than bits or single units keeps the cost at one
/// permutation step per 12 bytes, and embedding walks the image in memory order (asking the inverse
/// permutation which payload block goes where), so embedding costs a small fraction of PNG encoding. The key check value (8 bytes of an HMAC of the key) tells a wrong key
/// apart from a damaged image before anything is decrypted.
public enum PayloadEmbedding {
    /// Bits of payload per RGB channel, by default.
    public static let bitsPerChannel = 2
    /// The densities a cover may carry: bits of payload per RGB channel.
    public static let densities = [2, 4, 8]
    /// Bytes of the embedded header.
    public static let headerSize = 27
    static let magic: [UInt8] = Array("DSTG".utf8)
    static let version: UInt8 = 1
    /// The layout of covers written row by row (``StreamEmbedder``): the payload in raster order from
    /// the unit after the header, no payload CRC (AES-GCM authenticates every chunk).
    static let sequentialVersion: UInt8 = 2
    static let pixelsPerUnit = 4
    static let bytesPerUnit = 3
    static let headerUnits = headerSize / bytesPerUnit
    static let unitsPerBlock = 4
    static let bytesPerBlock = bytesPerUnit * unitsPerBlock

    /// Payload bytes in a block at `bits` per channel.
    static func bytesPerBlock(bits: Int) -> Int { 12 * bits / 8 * unitsPerBlock }

    /// Payload bytes a `width` × `height` cover holds (after the header) at `bitsPerChannel`.
    public static func capacity(width: Int, height: Int, bitsPerChannel bits: Int = bitsPerChannel) -> Int {
        guard width > 0, height > 0 else { return 0 }
        let units = width.multipliedReportingOverflow(by: height).partialValue / pixelsPerUnit
        return max(0, units - headerUnits) / unitsPerBlock * bytesPerBlock(bits: bits)
    }

    /// Pixels a cover needs to hold `payloadSize` bytes at `bitsPerChannel`.
    public static func pixelsNeeded(payloadSize: Int, bitsPerChannel bits: Int = bitsPerChannel) -> Int {
        let block = bytesPerBlock(bits: bits)
        return (headerUnits + (payloadSize + block - 1) / block * unitsPerBlock) * pixelsPerUnit
    }

    /// Writes `payload` into `image`'s low bits (`bitsPerChannel` of each RGB channel: 2, 4 or 8);
    /// throws `coverTooSmall` when it does not fit.
    public static func embed(
        _ payload: [UInt8], into image: inout RGBAImage, key: ImageKey, bitsPerChannel bits: Int = bitsPerChannel
    ) throws {
        guard densities.contains(bits) else {
            throw ImagingError.malformedPayload("\(bits) bits per channel: the densities are \(densities)")
        }
        let available = capacity(width: image.width, height: image.height, bitsPerChannel: bits)
        guard payload.count <= available, payload.count <= Int(UInt32.max),
            image.width * image.height >= headerUnits * pixelsPerUnit
        else {
            throw ImagingError.coverTooSmall(needed: payload.count, available: available)
        }
        let header = try Self.header(
            version: version, bits: bits, length: payload.count, payloadCRC: crc(payload), key: key)
        let permutation = try bodyPermutation(image: image, key: key)
        Self.spread.withUnsafeBufferPointer { spread in
            image.pixels.withUnsafeMutableBytes { buffer in
                // Covers have at least one unit (capacity > 0 above when anything is embedded).
                guard let pixels = buffer.baseAddress, buffer.count >= (headerUnits + permutation.count) * 16 else {
                    return
                }
                header.withUnsafeBufferPointer { bytes in
                    for unit in 0..<headerUnits {
                        writeUnit(pixels, unit: unit, bytes, at: unit * bytesPerUnit, spread: spread)
                    }
                }
                payload.withUnsafeBufferPointer { bytes in
                    // Walk the cover in memory order and ask the inverse permutation which payload block
                    // lands there: pixel writes stay sequential (a forward walk would miss the cache on
                    // every block of a large cover); only the small payload is read out of order.
                    let blockBytes = bytesPerBlock(bits: bits)
                    let unitBytes = blockBytes / unitsPerBlock
                    let blocks = (bytes.count + blockBytes - 1) / blockBytes
                    for position in 0..<permutation.count {
                        let block = permutation.inverse(position)
                        guard block < blocks else { continue }
                        let firstUnit = headerUnits + position * unitsPerBlock
                        for index in 0..<unitsPerBlock {
                            let at = block * blockBytes + index * unitBytes
                            if bits == 2 {
                                writeUnit(pixels, unit: firstUnit + index, bytes, at: at, spread: spread)
                            } else {
                                writeDenseUnit(pixels, unit: firstUnit + index, bytes, at: at, bits: bits)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Reads the payload embedded with `key`. Throws `noEmbeddedPayload` (no magic),
    /// `payloadChecksumMismatch` (header or body CRC), `wrongKey` (key check value),
    /// `unsupportedVersion` or `malformedPayload`.
    public static func extract(from image: RGBAImage, key: ImageKey) throws -> [UInt8] {
        guard capacity(width: image.width, height: image.height) > 0 else { throw ImagingError.noEmbeddedPayload }
        var header = [UInt8](repeating: 0, count: headerSize)
        image.pixels.withUnsafeBytes { buffer in
            guard let pixels = buffer.baseAddress, buffer.count >= headerUnits * 16 else { return }
            header.withUnsafeMutableBufferPointer { bytes in
                for unit in 0..<headerUnits {
                    readUnit(pixels, unit: unit, into: bytes, at: unit * bytesPerUnit)
                }
            }
        }
        let (headerVersion, length, bits) = try parse(
            header: header, key: key, width: image.width, height: image.height)
        if headerVersion == sequentialVersion { return readSequential(from: image, length: length, bits: bits) }
        let permutation = try bodyPermutation(image: image, key: key)
        let blockBytes = bytesPerBlock(bits: bits)
        let unitBytes = blockBytes / unitsPerBlock
        let blocks = (length + blockBytes - 1) / blockBytes
        var payload = [UInt8](repeating: 0, count: blocks * blockBytes)
        image.pixels.withUnsafeBytes { buffer in
            let needed = (headerUnits + permutation.count * unitsPerBlock) * pixelsPerUnit * 4
            guard let pixels = buffer.baseAddress, buffer.count >= needed else { return }
            payload.withUnsafeMutableBufferPointer { bytes in
                for position in 0..<permutation.count {
                    let block = permutation.inverse(position)
                    guard block < blocks else { continue }
                    let firstUnit = headerUnits + position * unitsPerBlock
                    for index in 0..<unitsPerBlock {
                        let at = block * blockBytes + index * unitBytes
                        if bits == 2 {
                            readUnit(pixels, unit: firstUnit + index, into: bytes, at: at)
                        } else {
                            readDenseUnit(pixels, unit: firstUnit + index, into: bytes, at: at, bits: bits)
                        }
                    }
                }
            }
        }
        payload.removeLast(payload.count - length)
        guard crc(payload) == readUInt32(header, at: 11) else { throw ImagingError.payloadChecksumMismatch }
        return payload
    }

    /// The version, payload length and density a 27-byte header gives, checked in order: magic
    /// (`noEmbeddedPayload`), header CRC (`payloadChecksumMismatch`), version, density, key check
    /// value (`wrongKey`), and the length against a `width` x `height` cover's capacity.
    static func parse(header: [UInt8], key: ImageKey, width: Int, height: Int) throws -> (
        version: UInt8, length: Int, bits: Int
    ) {
        guard header.count == headerSize, Array(header[0..<4]) == magic else { throw ImagingError.noEmbeddedPayload }
        guard crc(Array(header[0..<23])) == readUInt32(header, at: 23) else {
            throw ImagingError.payloadChecksumMismatch
        }
        guard header[4] == version || header[4] == sequentialVersion else {
            throw ImagingError.unsupportedVersion(Int(header[4]))
        }
        let bits = Int(header[5])
        guard densities.contains(bits), header[6] == 0 else {
            throw ImagingError.malformedPayload("unsupported embedding parameters")
        }
        guard ImageCrypto.constantTimeEqual(Array(header[15..<23]), key.checkValue()) else {
            throw ImagingError.wrongKey
        }
        let length = Int(readUInt32(header, at: 7))
        guard length <= capacity(width: width, height: height, bitsPerChannel: bits) else {
            throw ImagingError.malformedPayload("declared length \(length) exceeds the image's capacity")
        }
        return (header[4], length, bits)
    }

    /// The payload of a cover written row by row: `length` bytes in raster order from the unit after
    /// the header (the caller checked `length` against the capacity).
    static func readSequential(from image: RGBAImage, length: Int, bits: Int) -> [UInt8] {
        let unitBytes = 3 * bits / 2
        let units = (length + unitBytes - 1) / unitBytes
        var payload = [UInt8](repeating: 0, count: units * unitBytes)
        image.pixels.withUnsafeBytes { buffer in
            guard let pixels = buffer.baseAddress, buffer.count >= (headerUnits + units) * pixelsPerUnit * 4 else {
                return
            }
            payload.withUnsafeMutableBufferPointer { bytes in
                for unit in 0..<units {
                    if bits == 2 {
                        readUnit(pixels, unit: headerUnits + unit, into: bytes, at: unit * unitBytes)
                    } else {
                        readDenseUnit(pixels, unit: headerUnits + unit, into: bytes, at: unit * unitBytes, bits: bits)
                    }
                }
            }
        }
        payload.removeLast(payload.count - length)
        return payload
    }

    /// The 27-byte header for `length` payload bytes at `bits`, with the payload's CRC (0 in the
    /// sequential layout, whose chunks AES-GCM authenticates).
    static func header(version: UInt8, bits: Int, length: Int, payloadCRC: UInt32, key: ImageKey) throws -> [UInt8] {
        var header = magic + [version, UInt8(bits), 0]
        header += bigEndianBytes(UInt32(length))
        header += bigEndianBytes(payloadCRC)
        header += key.checkValue()
        header += bigEndianBytes(crc(header))
        return header
    }

    private static func bodyPermutation(image: RGBAImage, key: ImageKey) throws -> KeyedPermutation {
        let blocks = (image.width * image.height / pixelsPerUnit - headerUnits) / unitsPerBlock
        let material = ImageCrypto.hmacSHA256(key: key.embeddingKey, Array("distri-image permutation v1".utf8))
        func word(_ index: Int) -> UInt64 {
            material[index * 8..<index * 8 + 8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        }
        return KeyedPermutation(count: max(0, blocks), key: (word(0), word(1), word(2), word(3)))
    }

    /// For each 6-bit group `rrggbb`, the two low bits of R, G and B as a little-endian RGBA word.
    static let spread: [UInt32] = (0..<64).map { t in
        UInt32(t >> 4) | UInt32((t >> 2) & 3) << 8 | UInt32(t & 3) << 16
    }

    /// Writes bytes `at..<at+3` (zero past the end) into the 4 pixels of `unit`: each pixel takes 6
    /// bits, most significant first, as the 2 low bits of R, G and B.
    @inline(__always)
    static func writeUnit(
        _ pixels: UnsafeMutableRawPointer, unit: Int, _ bytes: UnsafeBufferPointer<UInt8>, at offset: Int,
        spread: UnsafeBufferPointer<UInt32>
    ) {
        var value: UInt32 = 0
        if offset + 3 <= bytes.count {
            value = UInt32(bytes[offset]) << 16 | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2])
        } else {
            for index in 0..<3 where offset + index < bytes.count {
                value |= UInt32(bytes[offset + index]) << UInt32(16 - 8 * index)
            }
        }
        let base = pixels + unit * pixelsPerUnit * 4
        let keep = UInt32(0xFFFC_FCFC)
        for pixel in 0..<pixelsPerUnit {
            let group = Int((value >> UInt32(18 - 6 * pixel)) & 63)
            let word = UInt32(littleEndian: base.load(fromByteOffset: pixel * 4, as: UInt32.self))
            base.storeBytes(of: (word & keep | spread[group]).littleEndian, toByteOffset: pixel * 4, as: UInt32.self)
        }
    }

    @inline(__always)
    static func readUnit(
        _ pixels: UnsafeRawPointer, unit: Int, into bytes: UnsafeMutableBufferPointer<UInt8>, at offset: Int
    ) {
        let base = pixels + unit * pixelsPerUnit * 4
        var value: UInt32 = 0
        for pixel in 0..<pixelsPerUnit {
            let bits = UInt32(littleEndian: base.load(fromByteOffset: pixel * 4, as: UInt32.self)) & 0x0003_0303
            value = value << 6 | (bits & 3) << 4 | (bits >> 6) & 0xC | (bits >> 16)
        }
        bytes[offset] = UInt8(truncatingIfNeeded: value >> 16)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: value >> 8)
        bytes[offset + 2] = UInt8(truncatingIfNeeded: value)
    }

    /// Writes the `3 * bits / 2` bytes at `at` (zero past the end) into the 12 RGB channels of `unit`,
    /// `bits` (4 or 8) per channel, most significant first.
    @inline(__always)
    static func writeDenseUnit(
        _ pixels: UnsafeMutableRawPointer, unit: Int, _ bytes: UnsafeBufferPointer<UInt8>, at offset: Int, bits: Int
    ) {
        let base = (pixels + unit * pixelsPerUnit * 4).assumingMemoryBound(to: UInt8.self)
        for channel in 0..<12 {
            let target = base + channel / 3 * 4 + channel % 3
            if bits == 8 {
                target.pointee = offset + channel < bytes.count ? bytes[offset + channel] : 0
            } else {
                let index = offset + channel / 2
                let byte = index < bytes.count ? bytes[index] : 0
                let nibble = channel % 2 == 0 ? byte >> 4 : byte & 0x0F
                target.pointee = target.pointee & 0xF0 | nibble
            }
        }
    }

    /// Reads what ``writeDenseUnit(_:unit:_:at:bits:)`` wrote.
    @inline(__always)
    static func readDenseUnit(
        _ pixels: UnsafeRawPointer, unit: Int, into bytes: UnsafeMutableBufferPointer<UInt8>, at offset: Int, bits: Int
    ) {
        let base = (pixels + unit * pixelsPerUnit * 4).assumingMemoryBound(to: UInt8.self)
        for channel in 0..<12 {
            let value = base[channel / 3 * 4 + channel % 3]
            if bits == 8 {
                bytes[offset + channel] = value
            } else if channel % 2 == 0 {
                bytes[offset + channel / 2] = (value & 0x0F) << 4
            } else {
                bytes[offset + channel / 2] |= value & 0x0F
            }
        }
    }

    private static func readUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        bytes[offset..<offset + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    static func crc(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBufferPointer { UInt32(crc32_z(0, $0.baseAddress, $0.count)) }
    }
}
