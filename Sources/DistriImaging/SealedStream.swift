/// The sealed (encrypted) form of an image's bytes: AES-256-GCM in age's STREAM layout, so large images
/// are processed in 64 KiB chunks and truncation, reordering or changes are detected.
///
/// Layout (all integers big-endian):
///
///     header  = magic "DSLD" | version 1 (1 byte) | log2 chunk size 16 (1 byte)
///               | plaintext length (8 bytes) | nonce (16 random bytes) | HMAC-SHA256 (32 bytes)
///     chunk i = AES-256-GCM(payload key, nonce = i as 11 bytes | last-chunk flag (1 byte), data) | tag (16)
///
/// The payload key is HKDF-SHA256(file key, salt: header nonce, info "distri-image payload v1"); the
/// header MAC is HMAC-SHA256 under HKDF(file key, info "distri-image header v1") over the header's first
/// 30 bytes. Every chunk holds 64 KiB of plaintext except the last (flag 1), which may be shorter and is
/// empty only when the whole plaintext is. Opening checks, in order: magic and version
/// (`malformedPayload` / `unsupportedVersion`), the header MAC (`wrongKey`, before any chunk is
/// touched), the length implied by the header (`truncatedPayload` when bytes are missing), then every
/// chunk's tag (`tampered(chunk:)`).
public enum SealedStream {
    /// Plaintext bytes per chunk.
    public static let chunkSize = 65536
    /// Bytes of header before the first chunk.
    public static let headerSize = 62
    static let magic: [UInt8] = Array("DSLD".utf8)
    static let version: UInt8 = 1
    static let chunkSizeLog2: UInt8 = 16
    static let macOffset = 30

    /// Number of chunks for a plaintext of `count` bytes (at least one).
    public static func chunkCount(plaintextCount count: Int) -> Int {
        max(1, (count + chunkSize - 1) / chunkSize)
    }

    /// Size of the sealed form of `count` plaintext bytes.
    public static func sealedSize(plaintextCount count: Int) -> Int {
        headerSize + count + AESGCM.tagSize * chunkCount(plaintextCount: count)
    }

    /// Seals `plaintext` under the 32-byte `fileKey`; the header nonce comes from `random`.
    public static func seal(
        _ plaintext: [UInt8], fileKey: [UInt8], random: inout some ImagingRandom
    ) throws -> [UInt8] {
        let (header, cipher) = try makeHeader(fileKey: fileKey, length: plaintext.count, random: &random)

        let chunks = chunkCount(plaintextCount: plaintext.count)
        var output = [UInt8](repeating: 0, count: sealedSize(plaintextCount: plaintext.count))
        output.replaceSubrange(0..<headerSize, with: header)
        try plaintext.withUnsafeBytes { (input) throws in
            try output.withUnsafeMutableBytes { (out) throws in
                var chunkNonce = [UInt8](repeating: 0, count: AESGCM.nonceSize)
                var position = headerSize
                for index in 0..<chunks {
                    let start = index * chunkSize
                    let end = min(start + chunkSize, input.count)
                    setChunkNonce(&chunkNonce, index: index, last: index == chunks - 1)
                    let length = end - start
                    try chunkNonce.withUnsafeBytes { (nonceBytes) throws in
                        try cipher.seal(
                            nonce: nonceBytes, input: UnsafeRawBufferPointer(rebasing: input[start..<end]),
                            output: UnsafeMutableRawBufferPointer(rebasing: out[position..<position + length]),
                            tag: UnsafeMutableRawBufferPointer(
                                rebasing: out[position + length..<position + length + AESGCM.tagSize]))
                    }
                    position += length + AESGCM.tagSize
                }
            }
        }
        return output
    }

    /// Opens a sealed stream with the 32-byte `fileKey`, returning the exact original bytes.
    public static func open(_ sealed: [UInt8], fileKey: [UInt8]) throws -> [UInt8] {
        let (length, cipher) = try readHeader(sealed.prefix(headerSize), fileKey: fileKey)
        let expected = sealedSize(plaintextCount: length)
        guard sealed.count >= expected else { throw ImagingError.truncatedPayload }
        guard sealed.count == expected else { throw ImagingError.malformedPayload("data after the last chunk") }

        let chunks = chunkCount(plaintextCount: length)
        var plaintext = [UInt8](repeating: 0, count: length)
        try sealed.withUnsafeBytes { (input) throws in
            try plaintext.withUnsafeMutableBytes { (out) throws in
                var chunkNonce = [UInt8](repeating: 0, count: AESGCM.nonceSize)
                var position = headerSize
                for index in 0..<chunks {
                    let start = index * chunkSize
                    let count = min(chunkSize, length - start)
                    setChunkNonce(&chunkNonce, index: index, last: index == chunks - 1)
                    let authentic = try chunkNonce.withUnsafeBytes { (nonceBytes) throws in
                        try cipher.open(
                            nonce: nonceBytes,
                            input: UnsafeRawBufferPointer(rebasing: input[position..<position + count]),
                            tag: UnsafeRawBufferPointer(
                                rebasing: input[position + count..<position + count + AESGCM.tagSize]),
                            output: UnsafeMutableRawBufferPointer(rebasing: out[start..<start + count]))
                    }
                    guard authentic else { throw ImagingError.tampered(chunk: index) }
                    position += count + AESGCM.tagSize
                }
            }
        }
        return plaintext
    }

    /// The header for `length` plaintext bytes under `fileKey` (its nonce from `random`), and the
    /// cipher that seals the chunks.
    static func makeHeader(fileKey: [UInt8], length: Int, random: inout some ImagingRandom) throws -> (
        header: [UInt8], cipher: AESGCM
    ) {
        guard fileKey.count == AESGCM.keySize else { throw ImagingError.invalidKey("the file key must be 32 bytes") }
        let nonce = try random.bytes(16)
        var header = magic + [version, chunkSizeLog2]
        header += bigEndianBytes(UInt64(length))
        header += nonce
        let headerKey = ImageCrypto.hkdfSHA256(key: fileKey, salt: [], info: "distri-image header v1")
        header += ImageCrypto.hmacSHA256(key: headerKey, header)
        let payloadKey = ImageCrypto.hkdfSHA256(key: fileKey, salt: nonce, info: "distri-image payload v1")
        return (header, try AESGCM(key: payloadKey, encrypting: true))
    }

    /// The plaintext length a sealed stream's first bytes declare and the cipher that opens its
    /// chunks, checked in order: magic and version (`malformedPayload` / `unsupportedVersion`), length
    /// (`truncatedPayload` when the header is cut short), the header MAC (`wrongKey`).
    static func readHeader(_ bytes: ArraySlice<UInt8>, fileKey: [UInt8]) throws -> (length: Int, cipher: AESGCM) {
        guard fileKey.count == AESGCM.keySize else { throw ImagingError.invalidKey("the file key must be 32 bytes") }
        let header = Array(bytes)
        guard header.count >= 6, Array(header[0..<4]) == magic else {
            throw ImagingError.malformedPayload("not sealed data (magic missing)")
        }
        guard header[4] == version else { throw ImagingError.unsupportedVersion(Int(header[4])) }
        guard header[5] == chunkSizeLog2 else { throw ImagingError.malformedPayload("unsupported chunk size") }
        guard header.count >= headerSize else { throw ImagingError.truncatedPayload }
        let headerKey = ImageCrypto.hkdfSHA256(key: fileKey, salt: [], info: "distri-image header v1")
        guard
            ImageCrypto.isValidHMACSHA256(
                Array(header[macOffset..<headerSize]), key: headerKey, Array(header[0..<macOffset]))
        else { throw ImagingError.wrongKey }
        let declared = header[6..<14].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard declared <= UInt64(Int.max / 2) else { throw ImagingError.malformedPayload("declared length too large") }
        let nonce = Array(header[14..<30])
        let payloadKey = ImageCrypto.hkdfSHA256(key: fileKey, salt: nonce, info: "distri-image payload v1")
        return (Int(declared), try AESGCM(key: payloadKey, encrypting: false))
    }

    /// The nonce of chunk `index`: the index as 11 big-endian bytes, then 1 for the last chunk.
    static func setChunkNonce(_ nonce: inout [UInt8], index: Int, last: Bool) {
        var value = UInt64(index)
        for position in stride(from: 10, through: 0, by: -1) {
            nonce[position] = UInt8(truncatingIfNeeded: value)
            value >>= 8
        }
        nonce[11] = last ? 1 : 0
    }
}

func bigEndianBytes(_ value: UInt64) -> [UInt8] {
    (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) }
}

func bigEndianBytes(_ value: UInt32) -> [UInt8] {
    (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) }
}
