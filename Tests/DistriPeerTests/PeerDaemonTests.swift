import Distri
import DistriIdentity
import DistriImaging
import DistriPeer
import DistriTestSupport
import Foundation
import Testing

@Suite("The peer daemon and encrypt on real nodes")
struct PeerDaemonTests {
    @Test func daemonListensRegistersAndRefreshes() async throws {
        try await withTemporaryDirectory { directory in
            let identity = try PeerIdentity.create(name: "alice", home: PeerHome(path: directory + "/alice"))
            try await withPeerCloud(nodes: 1) { _, addresses in
                try await withClient(addresses) { client in
                    let daemon = PeerDaemon(
                        identity: identity, cloud: PeerCloud(client: client),
                        configuration: .init(refreshMillis: 50))
                    let address = try await daemon.start()
                    #expect(address.port != 0)
                    let running = Task { try await daemon.run() }
                    // Another peer reaches it on the address it published.
                    // Judged with a long refresh interval: on a loaded machine the read may come late.
                    let peers = try await PeerCloud(client: client).peers(refreshMillis: 600_000)
                    #expect(peers.map(\.addresses) == [[address.description]])
                    #expect(peers.first?.status == .online)
                    try await withClient([address], peer: true) { peer throws in
                        let pong = try await peer.send([], service: PeerDaemon.pingService)
                        #expect(pong == Array("alice".utf8))
                        #expect(await remoteCode { _ = try await peer.send([], service: "Nope") } == .unknownService)
                    }
                    #expect(
                        await eventually(timeout: .seconds(60)) { daemon.registrations >= 3 },
                        "the daemon did not refresh its record")
                    running.cancel()
                    try await running.value
                    // Restarted with a clock behind the stored sequence: it continues after it.
                    let ahead = try identity.signedRecord(addresses: [], now: wallClockMillis() + 3_600_000)
                    try await PeerCloud(client: client).register(ahead)
                    let restarted = PeerDaemon(identity: identity, cloud: PeerCloud(client: client))
                    _ = try await restarted.start()
                    #expect(restarted.registrations == 1)
                    await restarted.endpoint.shutdown()
                    // A second identity cannot take the name.
                    let impostor = try PeerIdentity.create(name: "alice", home: PeerHome(path: directory + "/impostor"))
                    let second = PeerDaemon(identity: impostor, cloud: PeerCloud(client: client))
                    await #expect(throws: PeerError.self) { try await second.start() }
                }
            }
        }
    }

    @Test func encryptStoresPrivatelyAndPublishes() async throws {
        try await withTemporaryDirectory { directory in
            let identity = try PeerIdentity.create(name: "alice", home: PeerHome(path: directory + "/alice"))
            let image = try samplePNG("rgb8.png")
            try await withPeerCloud(nodes: 2) { _, addresses in
                try await withClient(addresses) { client in
                    let cloud = PeerCloud(client: client)
                    try await cloud.register(try identity.signedRecord(addresses: [], now: wallClockMillis()))
                    let images = PeerImages(identity: identity, cloud: cloud)
                    let stored = try await images.encrypt(file: image, fileName: "rgb8.png", name: "rgb8")
                    #expect(SecureFiles.mode(stored.imageFile) == 0o600)
                    #expect(SecureFiles.mode(stored.keyFile) == 0o600)
                    let sealed = try SecureFiles.read(stored.imageFile)
                    let keyText = String(decoding: try SecureFiles.read(stored.keyFile), as: UTF8.self)
                    let key = try ImageKey(text: keyText.trimmingCharacters(in: .whitespacesAndNewlines))
                    let opened = try ImageSealer.open(png: sealed, key: key)
                    #expect(opened.bytes == image && opened.kind == .png && opened.name == "rgb8.png")
                    #expect(stored.entry.bytes == UInt64(image.count), "the catalog has the original's size")
                    #expect(stored.cover.bytes == sealed.count && stored.entry.kind == nil)

                    let catalog = try await cloud.documents(in: "catalog")
                    #expect(catalog.map(\.id) == ["alice/rgb8"])
                    let entry = try CatalogEntry(document: try #require(catalog.first?.body))
                    try entry.verify(signedBy: identity.signing.publicKey)
                    #expect(!(catalog.first?.body.values.contains(.string(keyText)) ?? true))

                    // The same name again is refused unless overwriting.
                    await #expect(throws: PeerError.self) {
                        try await images.encrypt(file: image, fileName: "rgb8.png", name: "rgb8")
                    }
                    _ = try await images.encrypt(file: image, fileName: "rgb8.png", name: "rgb8", overwrite: true)
                    // A damaged PNG is refused here, before anything is uploaded, and nothing is stored.
                    await #expect(throws: PeerError.self) {
                        try await images.encrypt(file: Array(image.prefix(100)), fileName: "cut.png", name: "junk")
                    }
                    #expect(!SecureFiles.exists(identity.home.imageFile("junk")))
                    // Any other bytes are a file, sealed with its name and media type.
                    let notes = Array("meeting notes".utf8)
                    let file = try await images.encrypt(file: notes, fileName: "notes.txt", name: "notes")
                    let keyOfFile = try ImageKey(
                        text: String(decoding: try SecureFiles.read(file.keyFile), as: UTF8.self)
                            .trimmingCharacters(in: .whitespacesAndNewlines))
                    let content = try ImageSealer.open(png: try SecureFiles.read(file.imageFile), key: keyOfFile)
                    #expect(
                        content == SealedContent(kind: .file, name: "notes.txt", mediaType: "text/plain", bytes: notes))
                }
            }
        }
    }
}
