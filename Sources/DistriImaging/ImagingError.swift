/// Everything that can go wrong when reading PNGs, sealing, embedding or opening an image. Each failure
/// has its own case so callers (and tests) can tell a wrong key from tampering from truncation.
public enum ImagingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The bytes do not start with the PNG signature.
    case notPNG
    /// The PNG ends before the image is complete.
    case truncatedPNG
    /// libpng rejected the PNG (bad CRC, bad chunk, bad compressed data, ...); the text is libpng's.
    case invalidPNG(String)
    /// The PNG's dimensions are above the decoding limits (a guard against decompression bombs).
    case imageTooLarge(width: Int, height: Int)
    /// Encoding a PNG failed (out of memory or bad dimensions).
    case encodingFailed(String)
    /// The cover has room for `available` payload bytes but `needed` are required.
    case coverTooSmall(needed: Int, available: Int)
    /// No embedded payload header (magic) was found in the image.
    case noEmbeddedPayload
    /// The embedded payload or sealed stream has a version this code does not read.
    case unsupportedVersion(Int)
    /// The embedded payload's header or body does not match its CRC32 (the image was modified).
    case payloadChecksumMismatch
    /// The embedded header is self-consistent but describes an impossible payload.
    case malformedPayload(String)
    /// The key does not belong to this image (key check value or sealed-header MAC mismatch).
    case wrongKey
    /// A sealed chunk failed authentication: the ciphertext was changed or chunks were reordered.
    case tampered(chunk: Int)
    /// The sealed stream ends before its last chunk.
    case truncatedPayload
    /// A serialized key could not be parsed.
    case invalidKey(String)
    /// OpenSSL failed internally (not caused by the input).
    case cryptoFailure(String)
    /// The bytes are not a JPEG file (no start-of-image marker).
    case notJPEG
    /// The JPEG is malformed or ends early; the text says where.
    case invalidJPEG(String)
    /// A sealed envelope (name, media type, bytes) could not be read.
    case malformedEnvelope(String)

    public var description: String {
        switch self {
        case .notPNG: "not a PNG file"
        case .truncatedPNG: "the PNG data ends early (truncated file)"
        case .invalidPNG(let reason): "invalid PNG: \(reason)"
        case .imageTooLarge(let width, let height): "image of \(width)x\(height) pixels is above the decoding limits"
        case .encodingFailed(let reason): "PNG encoding failed: \(reason)"
        case .coverTooSmall(let needed, let available):
            "the cover image is too small: it holds \(available) payload bytes, \(needed) are needed"
        case .noEmbeddedPayload: "no embedded payload found in the image"
        case .unsupportedVersion(let version): "unsupported payload format version \(version)"
        case .payloadChecksumMismatch: "the embedded payload does not match its checksum (image modified)"
        case .malformedPayload(let reason): "malformed embedded payload: \(reason)"
        case .wrongKey: "wrong key for this image"
        case .tampered(let chunk): "sealed data was tampered with (chunk \(chunk) failed authentication)"
        case .truncatedPayload: "sealed data is truncated"
        case .invalidKey(let reason): "invalid image key: \(reason)"
        case .cryptoFailure(let reason): "OpenSSL failure: \(reason)"
        case .notJPEG: "not a JPEG file"
        case .invalidJPEG(let reason): "invalid JPEG: \(reason)"
        case .malformedEnvelope(let reason): "malformed sealed content: \(reason)"
        }
    }
}
