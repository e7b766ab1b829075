import Distri
import DistriPeer
import DistriTestSupport
import Foundation
import Testing

/// The real `distri-peer` executable against real `distri-node` processes.
@Suite(.serialized) struct PeerProcessTests {
    private static let sampleImage = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../sample-images/rgb8.png").standardizedFileURL.path

    private static func peers(_ json: String) -> [String: String] {
        let rows = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [[String: Any]] ?? []
        return Dictionary(
            rows.compactMap { row in (row["name"] as? String).map { ($0, row["status"] as? String ?? "?") } },
            uniquingKeysWith: { first, _ in first })
    }

    @Test("init, serve, list peers online then offline, encrypt and publish, clear errors: with the real executables")
    func peerFlow() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("distri-peers-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        try await withNodeProcesses(3) { nodes in
            let cloud = nodes.map(\.address.description).joined(separator: ",")
            let alice = root.appendingPathComponent("alice").path
            let bob = root.appendingPathComponent("bob").path
            for (name, home) in [("alice", alice), ("bob", bob)] {
                let made = try runPeerCommand(["init", "--name", name, "--home", home, "--json"])
                #expect(made.status == 0, "init \(name): \(made.errors)")
            }
            let again = try runPeerCommand(["init", "--name", "alice", "--home", alice])
            #expect(again.status != 0 && !again.errors.isEmpty, "a second init must refuse, saying why")
            let mode = try FileManager.default.attributesOfItem(atPath: alice)[.posixPermissions] as? Int
            #expect(mode == 0o700)

            let aliceDaemon = try PeerDaemonProcess(home: alice, cloud: cloud, refresh: 1)
            defer { aliceDaemon.stop() }
            let bobDaemon = try PeerDaemonProcess(home: bob, cloud: cloud, refresh: 1)
            defer { bobDaemon.stop() }
            #expect(aliceDaemon.address.hasPrefix("127.0.0.1:"))

            func listed() throws -> [String: String] {
                let list = try runPeerCommand(["list", "peers", "--json", "--cloud", cloud, "--refresh", "1"])
                #expect(list.status == 0, "list peers: \(list.errors)")
                return Self.peers(list.output)
            }
            let bothOnline = await poll(timeout: .seconds(30)) {
                (try? listed()).map { $0["alice"] == "online" && $0["bob"] == "online" } ?? false
            }
            #expect(bothOnline, "both daemons registered and show online")

            let encrypted = try runPeerCommand([
                "encrypt", Self.sampleImage, "--home", alice, "--cloud", cloud, "--json",
            ])
            #expect(encrypted.status == 0, "encrypt: \(encrypted.errors)")
            let stored = (try? JSONSerialization.jsonObject(with: Data(encrypted.output.utf8))) as? [String: Any] ?? [:]
            #expect(stored["name"] as? String == "rgb8", "encrypt --json prints what it stored: \(encrypted.output)")
            #expect(stored["catalog"] as? String == "alice/rgb8")
            for key in ["image", "key"] {
                let path = try #require(stored[key] as? String)
                let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
                #expect(mode == 0o600, "\(key) file \(path)")
            }
            let reader = Client(nodes: nodes.map(\.address), configuration: .tls)
            let catalog = try await PeerCloud(client: reader).documents(in: "catalog").map(\.id)
            await reader.shutdown()
            #expect(catalog == ["alice/rgb8"], "published in the catalog")

            let notPNG = root.appendingPathComponent("not-a.png")
            try Data("just text".utf8).write(to: notPNG)
            let refused = try runPeerCommand(["encrypt", notPNG.path, "--home", alice, "--cloud", cloud])
            #expect(refused.status != 0)
            #expect(refused.errors.contains("PNG"), "the error names the problem: \(refused.errors)")

            bobDaemon.stop()
            let bobOffline = await poll(timeout: .seconds(30)) {
                (try? listed()).map { $0["bob"] == "offline" && $0["alice"] == "online" } ?? false
            }
            #expect(bobOffline, "a stopped daemon shows offline after three refreshes")
        }
    }
}
