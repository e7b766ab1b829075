import Distri
import DistriCore
import DistriIdentity
import DistriImaging
import Foundation

/// `distri-peer encrypt`: the image goes through the cloud's `Encrypt` service; the front end verifies
/// the answer (``ImageEncryptionClient``), keeps the sealed PNG and its key in the peer home (0600),
/// and publishes the image's name, size and dimensions, signed, in the `catalog` (never the key).
public struct PeerImages: Sendable {
    public let identity: PeerIdentity
    public let cloud: PeerCloud

    public init(identity: PeerIdentity, cloud: PeerCloud) {
        self.identity = identity
        self.cloud = cloud
    }

    /// What `encrypt` did.
    public struct Stored: Sendable, Equatable {
        public var name: String
        public var imageFile: String
        public var keyFile: String
        public var entry: CatalogEntry
        public var coverWasGenerated: Bool

        public var json: JSONValue {
            .object([
                "name": .string(name), "image": .string(imageFile), "key": .string(keyFile),
                "catalog": .string(entry.id), "bytes": .number(Double(entry.bytes)),
                "width": .number(Double(entry.width)), "height": .number(Double(entry.height)),
                "coverGenerated": .bool(coverWasGenerated),
            ])
        }
    }

    /// The image name a file gives by default: its base name without extension.
    public static func defaultName(for path: String) -> String {
        ((path as NSString).lastPathComponent as NSString).deletingPathExtension
    }

    public func encrypt(
        image: [UInt8], cover: [UInt8]? = nil, name: String, overwrite: Bool = false
    ) async throws -> Stored {
        try PeerName.validate(name, what: "image name")
        let home = identity.home
        let imageFile = home.imageFile(name)
        let keyFile = home.keyFile(name)
        if !overwrite, SecureFiles.exists(imageFile) || SecureFiles.exists(keyFile) {
            throw PeerError("an image named '\(name)' is already stored in \(home.path); use --force or --as NAME")
        }
        let sealed = try await ImageEncryptionClient(client: cloud.client).encrypt(image, cover: cover)
        try SecureFiles.makeDirectory(home.imagesDirectory)
        try SecureFiles.makeDirectory(home.keysDirectory)
        // The key first: a sealed image without its key would be lost.
        try SecureFiles.write(Array((sealed.key.text + "\n").utf8), to: keyFile)
        try SecureFiles.write(sealed.png, to: imageFile)
        let entry = try CatalogEntry(
            owner: identity.name, name: name, bytes: UInt64(sealed.png.count), width: UInt64(sealed.width),
            height: UInt64(sealed.height), sequence: wallClockMillis()
        ).signed(by: identity.signing)
        do {
            try await cloud.publish(entry)
        } catch {
            throw PeerError("stored \(imageFile) and \(keyFile), but publishing in the catalog failed: \(error)")
        }
        return Stored(
            name: name, imageFile: imageFile, keyFile: keyFile, entry: entry,
            coverWasGenerated: sealed.coverWasGenerated)
    }
}
