import DistriImaging
import NIOCore

/// The built-in `Encrypt` service: seals an image (PNG or JPEG) or any file, in its envelope
/// (`SealedContent`), with a fresh AES-256-GCM key and hides it in a cover PNG
/// (`ImageSealer`). An image's structure and dimensions are checked first (never its
/// pixels: the node does not decode what it seals). Elected by load like any task; runs as a Swift task because
/// encoding the cover takes milliseconds. The reply (`EncryptReply`) carries the key to
/// the caller only: the node keeps no copy of the image, the key or the result (the result is not
/// remembered for retries; a retried task simply runs again).
///
/// Body: the envelope (or an earlier version's bare PNG), followed by a cover PNG when the parameter
/// `cover=N` gives the cover's length in bytes. Without a cover one just big enough is generated.
/// `density=2|4|8`: bits of payload per RGB channel of the cover (default 2).
public enum EncryptService {
    /// The service name, `Encrypt`.
    public static let name = "Encrypt"

    /// Limits on what the service accepts.
    public struct Limits: Sendable {
        /// Largest content accepted (the envelope), in bytes. Default 48 MiB (the largest message is
        /// 64 MiB, and the cover comes back in one).
        public var maxImageBytes: Int
        /// Dimension and pixel limits for the image and the cover (decompression bombs), checked from
        /// the PNG header before anything is decoded. Default at most 32768 pixels a side and
        /// 16 Mpixel (`ResourceLimits.maxImagePixels`).
        public var png: PNGLimits
        /// Dimension and pixel limits for an image that is sealed (checked from its header; the node
        /// never decodes it, but whoever opens it does). Default 32768 a side and 64 Mpixel: a photo.
        public var content: PNGLimits

        /// Limits with the given values; every argument has a default.
        public init(
            maxImageBytes: Int = 48 << 20,
            png: PNGLimits = PNGLimits(maxWidth: 32768, maxHeight: 32768, maxPixels: ResourceLimits().maxImagePixels),
            content: PNGLimits = .default
        ) {
            self.maxImageBytes = maxImageBytes
            self.png = png
            self.content = content
        }

        /// The defaults, with images and covers up to `resources.maxImagePixels`.
        public init(resources: ResourceLimits) {
            self.init(png: PNGLimits(maxWidth: 32768, maxHeight: 32768, maxPixels: resources.maxImagePixels))
        }
    }

    /// Registers the service; with `pixels`, the covers of all its calls at once stay within that
    /// budget (a call beyond it is answered `busy`).
    static func register(on registry: ServiceRegistry, limits: Limits = Limits(), pixels: ResourceBudget? = nil) {
        registry.register(
            RegisteredService(
                name: name, execution: .async { request in try encrypt(request, limits: limits, pixels: pixels) },
                remembersResult: false))
    }

    static func encrypt(_ request: ServiceRequest, limits: Limits, pixels budget: ResourceBudget? = nil) throws
        -> ByteBuffer
    {
        let (image, cover) = try split(request)
        guard image.count <= limits.maxImageBytes else {
            throw ServiceError(
                .tooLarge, "the content has \(image.count) bytes; the limit is \(limits.maxImageBytes)")
        }
        let density = try density(request)
        // The pixels this call will hold, from the cover's header or the generated cover's size,
        // before anything is decoded; reserved from the node's budget for the call's length.
        let coverPixels = try pixels(image: image, cover: cover, limits: limits.png, bitsPerChannel: density)
        if let budget {
            guard coverPixels <= budget.capacity else {
                throw ServiceError(
                    .tooLarge, "a cover of \(coverPixels) pixels exceeds the node's \(budget.capacity) pixels in flight"
                )
            }
            guard budget.reserve(coverPixels) else {
                throw ServiceError(
                    .busy,
                    "the node is encrypting into covers of up to \(budget.capacity) pixels at once already; retry later"
                )
            }
        }
        defer { budget?.release(coverPixels) }
        do {
            let sealed = try ImageSealer.encrypt(
                image: image, cover: cover, limits: limits.png, contentLimits: limits.content, bitsPerChannel: density)
            return ByteBuffer(bytes: EncryptReply.encode(sealed))
        } catch let error as ImagingError {
            if case .imageTooLarge = error { throw ServiceError(.tooLarge, "\(error)") }
            if case .cryptoFailure = error { throw ServiceError(.internal, "\(error)") }
            throw ServiceError(.badParams, "\(error)")
        }
    }

    /// The pixels of the cover a call fills: the given cover's as its header declares them (refused
    /// `tooLarge` beyond `limits`), or the generated cover's for the content's sealed size (refused
    /// beyond `limits` too). The content's own header is checked by the sealer, against
    /// ``Limits/content``.
    static func pixels(
        image: [UInt8], cover: [UInt8]?, limits: PNGLimits, bitsPerChannel: Int = PayloadEmbedding.bitsPerChannel
    ) throws(ServiceError) -> Int {
        func check(_ png: [UInt8], _ what: String) throws(ServiceError) -> Int? {
            // Not a PNG at all: the sealer says why.
            guard let (width, height) = PNGStructure.declaredSize(png) else { return nil }
            guard width <= limits.maxWidth, height <= limits.maxHeight, width * height <= limits.maxPixels else {
                throw ServiceError(
                    .tooLarge,
                    "the \(what) is \(width)x\(height) pixels; the limit is \(limits.maxWidth)x\(limits.maxHeight) and \(limits.maxPixels) pixels"
                )
            }
            return width * height
        }
        if let cover { return try check(cover, "cover") ?? 0 }
        let size = CoverGenerator.size(
            forPayloadSize: SealedStream.sealedSize(plaintextCount: image.count), bitsPerChannel: bitsPerChannel)
        guard size.width * size.height <= limits.maxPixels else {
            throw ServiceError(
                .tooLarge,
                "\(image.count) bytes need a cover of \(size.width)x\(size.height) pixels at \(bitsPerChannel) bits per channel; the limit is \(limits.maxPixels) pixels (a denser embedding needs fewer)"
            )
        }
        return size.width * size.height
    }

    /// The `density=N` parameter: bits of payload per RGB channel (2 when absent).
    static func density(_ request: ServiceRequest) throws(ServiceError) -> Int {
        guard let option = request.stringParam("density") else { return PayloadEmbedding.bitsPerChannel }
        guard let bits = Int(option), PayloadEmbedding.densities.contains(bits) else {
            throw .badParams("density=N must be one of \(PayloadEmbedding.densities) (bits per RGB channel)")
        }
        return bits
    }

    /// The image and the optional cover from the body, as the `cover=N` parameter splits it.
    static func split(_ request: ServiceRequest) throws(ServiceError) -> (image: [UInt8], cover: [UInt8]?) {
        let bytes = request.bytes
        guard let option = request.stringParam("cover") else { return (bytes, nil) }
        guard let length = Int(option), length > 0, length < bytes.count else {
            throw .badParams(
                "cover=N must give the cover's length in bytes, between 1 and the body's \(bytes.count) - 1")
        }
        return (Array(bytes[..<(bytes.count - length)]), Array(bytes[(bytes.count - length)...]))
    }
}
