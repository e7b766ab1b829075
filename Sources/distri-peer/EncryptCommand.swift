import ArgumentParser
import DistriCommandLine
import DistriPeer
import Foundation

/// `distri-peer encrypt image.png`.
struct EncryptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encrypt",
        abstract: "Encrypt a PNG in the cloud, keep the sealed image and its key here, and publish it in the catalog.",
        discussion: """
            The cloud's answer is opened with its key and checked against the image before it is kept. \
            The sealed image goes to HOME/images/NAME.png and its key to HOME/keys/NAME.key (both 0600); \
            the catalog gets the name, size, dimensions and owner, signed by this peer, never the key.
            """)

    @Argument(help: "The PNG to encrypt.")
    var image: String

    @Option(name: .long, help: "A PNG to hide the image in (default: one is generated).")
    var cover: String?

    @Option(name: .customLong("as"), help: "The image's name (default: the file's name without extension).")
    var imageName: String?

    @Flag(name: .long, help: "Replace an image stored under the same name.")
    var force = false

    @OptionGroup var jsonOutput: JSONOutputOptions
    var json: Bool { jsonOutput.enabled }

    @OptionGroup var peer: PeerOptions
    @OptionGroup var cloud: CloudOption

    func run() async throws {
        let identity = try peer.loadIdentity()
        let bytes = try SecureFiles.read(image)
        let coverBytes = try cover.map { try SecureFiles.read($0) }
        let name = imageName ?? PeerImages.defaultName(for: image)
        let force = self.force
        let stored = try await withClient(cloud) { client in
            try await PeerImages(identity: identity, cloud: PeerCloud(client: client)).encrypt(
                image: bytes, cover: coverBytes, name: name, overwrite: force)
        }
        if json {
            printLine(stored.json.outputText)
        } else {
            printLine(
                "encrypted \(image) as \(stored.name): \(stored.entry.width)x\(stored.entry.height), \(stored.entry.bytes) bytes"
            )
            printLine("sealed image: \(stored.imageFile)")
            printLine("key:          \(stored.keyFile)")
            printLine("published in the catalog as \(stored.entry.id)")
        }
    }
}
