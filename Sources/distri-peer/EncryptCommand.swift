import ArgumentParser
import DistriCommandLine
import DistriIdentity
import DistriImaging
import DistriPeer
import Foundation

/// `distri-peer encrypt image.png` (or photo.jpg, report.pdf).
struct EncryptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encrypt",
        abstract:
            "Encrypt an image (PNG, JPEG) or any file in the cloud, keep it sealed here, and publish it in the catalog.",
        discussion: """
            Checked here before anything is uploaded: the size the cloud takes (48 MiB in one call, 1 GiB \
            streamed), an image's structure, dimensions (64 Mpixel) and a full decode, and a density whose \
            cover fits. Files above 48 MiB go up in 4 MiB chunks, with a progress bar on a terminal. The file is \
            sealed with its name and media type inside (never in the clear) and hidden in a cover PNG; the \
            cloud's answer is opened with its key and checked against the file before it is kept. The sealed \
            image goes to HOME/images/NAME.png and its key to HOME/keys/NAME.key (both 0600); the catalog \
            gets the name, the original's size and dimensions and the owner, signed by this peer, never the \
            key (and what kind of file it is only with --publish-kind). --density: bits of the file per RGB \
            channel of the cover: 2 keeps the cover looking like itself (1.33 cover pixels per byte), 4 and 8 \
            are denser (0.67, 0.33) and make the cover noise; auto takes the lowest that fits.
            """)

    @Argument(help: "The PNG, JPEG or other file to encrypt.")
    var image: String

    @Option(name: .long, help: "A PNG to hide it in (default: one is generated).")
    var cover: String?

    @Option(
        name: .customLong("as"),
        help: "The name it is stored and published under (default: the file's name without extension).")
    var imageName: String?

    @Option(name: .long, help: "Bits per RGB channel of the cover: auto, 2, 4 or 8.")
    var density = "auto"

    @Flag(name: .long, help: "Publish what kind of file it is (png, jpeg, or its media type) in the catalog.")
    var publishKind = false

    @Flag(name: .long, help: "Replace an image stored under the same name.")
    var force = false

    @OptionGroup var jsonOutput: JSONOutputOptions
    var json: Bool { jsonOutput.enabled }

    @OptionGroup var peer: PeerOptions
    @OptionGroup var cloud: CloudOption

    func validate() throws {
        guard density == "auto" || PayloadEmbedding.densities.contains(Int(density) ?? 0) else {
            throw ValidationError("--density must be auto, 2, 4 or 8")
        }
    }

    func run() async throws {
        let identity = try peer.loadIdentity()
        if let size = SecureFiles.size(image), size > PeerImages.streamingThreshold {
            try await runStreamed(identity: identity)
            return
        }
        let bytes = try SecureFiles.read(image)
        let coverBytes = try cover.map { try SecureFiles.read($0) }
        let name = imageName ?? PeerImages.defaultName(for: image)
        let (force, file, bits, publishKind) = (self.force, image, Int(density), self.publishKind)
        // Refused here, before a client exists, when the file cannot go.
        _ = try PeerImages.prepare(file: bytes, fileName: file, cover: coverBytes, density: bits)
        let stored = try await withClient(cloud) { client in
            try await PeerImages(identity: identity, cloud: PeerCloud(client: client)).encrypt(
                file: bytes, fileName: file, cover: coverBytes, name: name, overwrite: force, density: bits,
                publishKind: publishKind)
        }
        report(stored)
    }

    /// A file above what one call seals: streamed through the node a chunk at a time, with a progress
    /// bar on a terminal.
    private func runStreamed(identity: PeerIdentity) async throws {
        guard cover == nil else {
            throw CommandFailure(
                .refused,
                "\(image) is larger than \(PeerImages.streamingThreshold) bytes: it is streamed, into a generated cover only",
                hint: "drop --cover")
        }
        let name = imageName ?? PeerImages.defaultName(for: image)
        let (force, path, bits, publishKind, json) = (self.force, image, Int(density), self.publishKind, self.json)
        let stored = try await withClient(cloud) { client in
            try await PeerImages(identity: identity, cloud: PeerCloud(client: client)).encryptStreamed(
                path: path, name: name, overwrite: force, density: bits, publishKind: publishKind,
                progress: progressBar(enabled: !json))
        }
        report(stored)
    }

    private func report(_ stored: PeerImages.Stored) {
        if json {
            printLine(stored.json.outputText)
            return
        }
        let original = stored.original
        let what =
            original.kind == .file
            ? "\(original.mediaType), \(original.bytes) bytes"
            : "\(original.kind.name.uppercased()) \(original.width)x\(original.height), \(original.bytes) bytes"
        printLine("encrypted \(image) as \(stored.name): \(what)")
        printLine(
            "cover:        \(stored.cover.width)x\(stored.cover.height) PNG, \(stored.cover.bytes) bytes, \(stored.cover.bitsPerChannel) bits per channel\(stored.coverWasGenerated ? " (generated)" : "")"
        )
        printLine("sealed image: \(stored.imageFile)")
        printLine("key:          \(stored.keyFile)")
        printLine("published in the catalog as \(stored.entry.id)")
    }
}
