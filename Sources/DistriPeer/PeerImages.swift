import Distri
import DistriCore
import DistriIdentity
import DistriImaging
import Foundation

/// `distri-peer encrypt`: the image goes through the cloud's `Encrypt` service; the front end verifies
/// the answer (`ImageEncryptionClient`), keeps the sealed PNG and its key in the peer home (0600),
/// and publishes the image's name, size and dimensions, signed, in the `catalog` (never the key).
public struct PeerImages: Sendable {
    /// The peer that encrypts and publishes.
    public let identity: PeerIdentity
    /// The cloud it encrypts through and publishes in.
    public let cloud: PeerCloud

    /// Images of `identity`, through `cloud`.
    public init(identity: PeerIdentity, cloud: PeerCloud) {
        self.identity = identity
        self.cloud = cloud
    }

    /// What `encrypt` did.
    public struct Stored: Sendable, Equatable {
        /// The image's name.
        public var name: String
        /// Where the sealed PNG is kept.
        public var imageFile: String
        /// Where its key is kept.
        public var keyFile: String
        /// The catalog entry published for it.
        public var entry: CatalogEntry
        /// Whether the cloud generated the cover (no cover was given).
        public var coverWasGenerated: Bool
        /// What was sealed: its kind, media type and file name, size and (for an image) dimensions.
        public var original: Original
        /// The cover it is hidden in: the sealed PNG's bytes and dimensions, and the density.
        public var cover: Cover

        /// What `encrypt` did, as JSON, for `--json`.
        public var json: JSONValue {
            .object([
                "name": .string(name), "image": .string(imageFile), "key": .string(keyFile),
                "catalog": .string(entry.id), "kind": .string(original.kind.name),
                "mediaType": .string(original.mediaType), "fileName": .string(original.fileName),
                "bytes": .number(Double(original.bytes)), "width": .number(Double(original.width)),
                "height": .number(Double(original.height)), "coverGenerated": .bool(coverWasGenerated),
                "cover": .object([
                    "bytes": .number(Double(cover.bytes)), "width": .number(Double(cover.width)),
                    "height": .number(Double(cover.height)), "bitsPerChannel": .number(Double(cover.bitsPerChannel)),
                    "generated": .bool(coverWasGenerated),
                ]),
            ])
        }
    }

    /// What was sealed.
    public struct Original: Sendable, Equatable {
        /// What the file is.
        public var kind: SealedContent.Kind
        /// Its media type.
        public var mediaType: String
        /// Its file name.
        public var fileName: String
        /// Its size in bytes.
        public var bytes: Int
        /// Its width in pixels (0 for a file that is not an image).
        public var width: Int
        /// Its height in pixels (0 for a file that is not an image).
        public var height: Int
    }

    /// The cover a sealed image is hidden in.
    public struct Cover: Sendable, Equatable {
        /// The sealed PNG's size in bytes.
        public var bytes: Int
        /// Its width in pixels.
        public var width: Int
        /// Its height in pixels.
        public var height: Int
        /// Bits of the file per RGB channel of the cover: 2, 4 or 8.
        public var bitsPerChannel: Int
    }

    /// The image name a file gives by default: its base name without extension.
    public static func defaultName(for path: String) -> String {
        ((path as NSString).lastPathComponent as NSString).deletingPathExtension
    }

    /// The limits the cloud's nodes apply by default, which the peer checks before it uploads.
    public static let cloudLimits = EncryptService.Limits(resources: ResourceLimits())

    /// Everything `encrypt` checks here before a byte is uploaded: the size the cloud takes, an
    /// image's structure and dimensions and a full decode of it (so a damaged photo is refused here,
    /// with the reason), and the density whose cover fits (the lowest, when `density` is nil). Returns
    /// the content to seal, what it is, and the density.
    public static func prepare(
        file bytes: [UInt8], fileName: String, cover: [UInt8]?, density: Int?,
        limits: EncryptService.Limits = cloudLimits
    ) throws -> (content: SealedContent, envelope: [UInt8], found: ContentCheck.Found, bitsPerChannel: Int) {
        let content = SealedContent(file: bytes, name: (fileName as NSString).lastPathComponent)
        try Self.refuseMisnamed(content, fileName: fileName)
        let envelope = content.encoded()
        guard envelope.count <= limits.maxImageBytes else {
            throw PeerError(
                "\(fileName) has \(bytes.count) bytes; the cloud seals at most \(limits.maxImageBytes - (envelope.count - bytes.count)) bytes in one piece (nothing was uploaded)",
                kind: .refused)
        }
        let found: ContentCheck.Found
        do {
            found = try ContentCheck.check(envelope, limits: limits.content)
            switch content.kind {
            case .png: try PNGCodec.validate(bytes, limits: limits.content)
            case .jpeg: _ = try JPEGCodec.decode(bytes, limits: limits.content, upright: false)
            case .file: break
            }
        } catch let error as ImagingError {
            throw PeerError("\(fileName) cannot be encrypted: \(error) (nothing was uploaded)", kind: .refused)
        }
        let sealedSize = SealedStream.sealedSize(plaintextCount: envelope.count)
        let coverSize = try cover.map { cover -> (width: Int, height: Int) in
            guard let size = PNGStructure.declaredSize(cover) else {
                throw PeerError("the cover is not a PNG (nothing was uploaded)", kind: .refused)
            }
            return size
        }
        func fits(_ bits: Int) -> Bool {
            if let coverSize {
                return PayloadEmbedding.capacity(width: coverSize.width, height: coverSize.height, bitsPerChannel: bits)
                    >= sealedSize
            }
            let size = CoverGenerator.size(forPayloadSize: sealedSize, bitsPerChannel: bits)
            return size.width * size.height <= limits.png.maxPixels
        }
        let choices = density.map { [$0] } ?? PayloadEmbedding.densities
        guard let bits = choices.first(where: fits) else {
            let denser = density.map { $0 < 8 ? "; a denser --density holds more" : "" } ?? ""
            let room =
                coverSize.map { "the cover (\($0.width)x\($0.height))" }
                ?? "a cover of at most \(limits.png.maxPixels) pixels"
            throw PeerError(
                "\(fileName) (\(bytes.count) bytes) does not fit in \(room) at \(choices.map(String.init).joined(separator: ", ")) bits per channel\(denser) (nothing was uploaded)",
                kind: .refused)
        }
        return (content, envelope, found, bits)
    }

    /// Signs and publishes the catalog entry of a stored image: the original's size and dimensions,
    /// and its kind when `publishKind`.
    func publish(
        name: String, bytes: Int, found: ContentCheck.Found, content: SealedContent, publishKind: Bool,
        stored: (image: String, key: String)
    ) async throws -> CatalogEntry {
        let entry = try CatalogEntry(
            owner: identity.name, name: name, bytes: UInt64(bytes), width: UInt64(found.width),
            height: UInt64(found.height), sequence: wallClockMillis(),
            kind: publishKind ? (content.kind == .file ? content.mediaType : content.kind.name) : nil
        ).signed(by: identity.signing)
        do {
            try await cloud.publish(entry)
        } catch {
            throw PeerError("stored \(stored.image) and \(stored.key), but publishing in the catalog failed: \(error)")
        }
        return entry
    }

    /// Refuses a file whose name says PNG or JPEG but whose bytes are not one (a damaged photo, or a
    /// mistake), rather than sealing it as any file.
    static func refuseMisnamed(_ content: SealedContent, fileName: String) throws {
        let claimed = MediaTypes.forName(fileName)
        guard content.kind == .file, claimed == "image/png" || claimed == "image/jpeg" else { return }
        throw PeerError(
            "\(fileName) is named as a \(claimed == "image/png" ? "PNG" : "JPEG") but is not one (its first bytes are not a \(claimed == "image/png" ? "PNG signature" : "JPEG start marker")); nothing was uploaded",
            kind: .refused)
    }

    /// Encrypts the file `bytes` (an image or any file, named `fileName`) in the cloud as `name`,
    /// after the checks of ``prepare(file:fileName:cover:density:limits:)``; keeps the sealed image and
    /// its key in the home and publishes the original's size and dimensions (and its kind, when
    /// `publishKind`) in the catalog.
    public func encrypt(
        file bytes: [UInt8], fileName: String, cover: [UInt8]? = nil, name: String, overwrite: Bool = false,
        density: Int? = nil, publishKind: Bool = false
    ) async throws -> Stored {
        try PeerName.validate(name, what: "image name")
        let home = identity.home
        let imageFile = home.imageFile(name)
        let keyFile = home.keyFile(name)
        if !overwrite, SecureFiles.exists(imageFile) || SecureFiles.exists(keyFile) {
            throw PeerError("an image named '\(name)' is already stored in \(home.path); use --force or --as NAME")
        }
        let (content, envelope, found, bits) = try Self.prepare(
            file: bytes, fileName: fileName, cover: cover, density: density)
        let sealed = try await ImageEncryptionClient(client: cloud.client).encrypt(
            envelope, cover: cover, bitsPerChannel: bits)
        try SecureFiles.makeDirectory(home.imagesDirectory)
        try SecureFiles.makeDirectory(home.keysDirectory)
        // The key first: a sealed image without its key would be lost.
        try SecureFiles.write(Array((sealed.key.text + "\n").utf8), to: keyFile)
        try SecureFiles.write(sealed.png, to: imageFile)
        let entry = try await publish(
            name: name, bytes: bytes.count, found: found, content: content, publishKind: publishKind,
            stored: (imageFile, keyFile))
        return Stored(
            name: name, imageFile: imageFile, keyFile: keyFile, entry: entry,
            coverWasGenerated: sealed.coverWasGenerated,
            original: Original(
                kind: content.kind, mediaType: content.mediaType, fileName: content.name, bytes: bytes.count,
                width: found.width, height: found.height),
            cover: Cover(bytes: sealed.png.count, width: sealed.width, height: sealed.height, bitsPerChannel: bits))
    }
}
