import DistriImaging
import NIOCore

/// The built-in `Encrypt` service: seals a PNG with a fresh AES-256-GCM key and hides it in a cover
/// PNG (``DistriImaging/ImageSealer``). Elected by load like any task; runs as a Swift task because
/// encoding the cover takes milliseconds. The reply (``DistriImaging/EncryptReply``) carries the key to
/// the caller only: the node keeps no copy of the image, the key or the result (the result is not
/// remembered for retries; a retried task simply runs again).
///
/// Body: the image PNG, followed by a cover PNG when the parameter `cover=N` gives the cover's length
/// in bytes. Without a cover, or when no cover is given, one just big enough is generated.
public enum EncryptService {
    public static let name = "Encrypt"

    /// Limits on what the service accepts.
    public struct Limits: Sendable {
        /// Largest image accepted, in bytes. Default 16 MiB.
        public var maxImageBytes: Int
        /// Dimension and pixel limits for the image and the cover (decompression bombs).
        public var png: PNGLimits

        public init(maxImageBytes: Int = 16 << 20, png: PNGLimits = .default) {
            self.maxImageBytes = maxImageBytes
            self.png = png
        }
    }

    static func register(on registry: ServiceRegistry, limits: Limits = Limits()) {
        registry.register(
            RegisteredService(
                name: name, execution: .async { request in try encrypt(request, limits: limits) },
                remembersResult: false))
    }

    static func encrypt(_ request: ServiceRequest, limits: Limits) throws -> ByteBuffer {
        let (image, cover) = try split(request)
        guard image.count <= limits.maxImageBytes else {
            throw ServiceError(.tooLarge, "the image has \(image.count) bytes; the limit is \(limits.maxImageBytes)")
        }
        do {
            let sealed = try ImageSealer.encrypt(image: image, cover: cover, limits: limits.png)
            return ByteBuffer(bytes: EncryptReply.encode(sealed))
        } catch let error as ImagingError {
            if case .imageTooLarge = error { throw ServiceError(.tooLarge, "\(error)") }
            if case .cryptoFailure = error { throw ServiceError(.internal, "\(error)") }
            throw ServiceError(.badParams, "\(error)")
        }
    }

    /// The image and the optional cover from the body, as the `cover=N` parameter splits it.
    static func split(_ request: ServiceRequest) throws(ServiceError) -> (image: [UInt8], cover: [UInt8]?) {
        let bytes = request.bytes
        guard let option = request.params.first(where: { $0.hasPrefix("cover=") }) else { return (bytes, nil) }
        guard let length = Int(option.dropFirst("cover=".count)), length > 0, length < bytes.count else {
            throw .badParams(
                "cover=N must give the cover's length in bytes, between 1 and the body's \(bytes.count) - 1")
        }
        return (Array(bytes[..<(bytes.count - length)]), Array(bytes[(bytes.count - length)...]))
    }
}
