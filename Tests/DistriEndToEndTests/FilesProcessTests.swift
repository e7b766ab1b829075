import Distri
import DistriTestSupport
import Foundation
import Testing

/// Photos and any file, with the real executables against one `distri-node run` process: JPEGs
/// (baseline, progressive, grayscale, with EXIF orientation) and a PDF are encrypted, sent and viewed
/// byte-exact; a damaged or too large file is refused before a byte is uploaded.
@Suite(.serialized) struct FilesProcessTests {
    private static let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../sample-images").standardizedFileURL

    private static func object(_ text: String) -> [String: Any] { PeersOnOneNode.object(text) }

    @Test(
        "JPEGs and a PDF: encrypt, send and view byte-exact; the catalog has the original's size and dimensions; damaged and oversized files refused before upload (no call reaches the cloud)"
    )
    func photosAndFiles() async throws {
        let world = try PeersOnOneNode(["alice", "bob"], label: "files")
        defer { world.stop() }
        let (root, node, cloud, homes, peer) = (world.root, world.node, world.cloud, world.homes, world.peer)

        // Refused here, before anything is uploaded: the node counts no call but the two Stats calls.
        let photo = try Data(contentsOf: Self.samples.appendingPathComponent("photo-baseline.jpg"))
        let cut = root.appendingPathComponent("cut.jpg").path
        try photo.prefix(photo.count / 2).write(to: URL(fileURLWithPath: cut))
        let huge = root.appendingPathComponent("huge.bin").path
        _ = FileManager.default.createFile(atPath: huge, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: huge))
        try handle.truncate(atOffset: (1 << 30) + 1)
        try handle.close()
        let before = await stats(of: [node.address])[node.address]?.requestsReceived
        let damaged = try peer("alice", ["encrypt", cut, "--json"])
        #expect(damaged.status == 77, "\(damaged.errors)")
        let message = (Self.object(damaged.errors)["error"] as? [String: Any])?["message"] as? String
        #expect(message?.contains("invalid JPEG") == true, "\(damaged.errors)")
        let tooLarge = try peer("alice", ["encrypt", huge])
        #expect(tooLarge.status == 77 && tooLarge.errors.contains("at most"), "\(tooLarge.errors)")
        let after = await stats(of: [node.address])[node.address]?.requestsReceived
        #expect(
            before.map { $0 + 1 } == after,
            "only the Stats call reached the node: \(String(describing: before)) -> \(String(describing: after))")

        let daemons = try ["alice", "bob"].map { try PeerDaemonProcess(home: homes[$0]!, cloud: cloud, refresh: 1) }
        defer { for daemon in daemons { daemon.stop() } }
        let files = [
            ("photo-baseline.jpg", "jpeg", 320, 240), ("photo-progressive.jpg", "jpeg", 320, 240),
            ("gray.jpg", "jpeg", 320, 240), ("photo-exif-rotated.jpg", "jpeg", 320, 240),
            ("document.pdf", "file", 0, 0),
        ]
        for (file, kind, width, height) in files {
            let path = Self.samples.appendingPathComponent(file).path
            let original = try Data(contentsOf: URL(fileURLWithPath: path))
            let name = (file as NSString).deletingPathExtension
            let encrypted = Self.object(try peer("alice", ["encrypt", path, "--json"]).output)
            #expect(encrypted["kind"] as? String == kind, "\(file): \(encrypted)")
            #expect(encrypted["bytes"] as? Int == original.count && encrypted["width"] as? Int == width)
            #expect(encrypted["height"] as? Int == height && (encrypted["cover"] as? [String: Any])?["width"] != nil)
            let sent = try peer("alice", ["send", name, "--to", "bob", "--views", "1", "--json"])
            #expect(Self.object(sent.output)["status"] as? String == "delivered", "\(file): \(sent.errors)")
            if file == "photo-baseline.jpg" {
                // A damaged local copy is refused before a view is spent on it.
                let received = URL(fileURLWithPath: homes["bob"]!).appendingPathComponent("received/alice/\(name).png")
                let good = try Data(contentsOf: received)
                var bad = good
                bad[bad.count / 2] ^= 0xFF
                try bad.write(to: received)
                let out = root.path + "/x.jpg"
                let refused = try peer("bob", ["view", name, "--from", "alice", "--json", "--out", out])
                #expect(refused.status == 77 && refused.errors.contains("no view was used"), "\(refused.errors)")
                try good.write(to: received)
            }
            let viewed = try runBuiltData(
                "distri-peer",
                ["view", name, "--from", "alice", "--home", homes["bob"]!, "--cloud", cloud, "--ca", E2ETLS.caFile])
            #expect(viewed.status == 0 && viewed.output == original, "\(file) byte-exact: \(viewed.errors)")
            #expect(
                viewed.errors.contains(kind == "file" ? "document.pdf (application/pdf)" : "JPEG"), "\(viewed.errors)")
        }
        // A file larger than one call seals is streamed through the node, and opens byte-exact.
        let large = root.appendingPathComponent("large.bin").path
        let random = try #require(FileHandle(forReadingAtPath: "/dev/urandom"))
        // Above 64 MiB of cover, the recipient opens it a row at a time too.
        let largeBytes = try #require(try random.read(upToCount: 66 << 20))
        try random.close()
        try largeBytes.write(to: URL(fileURLWithPath: large))
        let streamedRun = try runPeerCommand(
            ["encrypt", large, "--json", "--home", homes["alice"]!, "--cloud", cloud], timeout: 240)
        let streamed = Self.object(streamedRun.output)
        #expect(streamedRun.status == 0, "\(streamedRun.errors)")
        #expect(streamed["bytes"] as? Int == largeBytes.count && streamed["kind"] as? String == "file", "\(streamed)")
        #expect((streamed["cover"] as? [String: Any])?["bitsPerChannel"] as? Int == 8)
        let sentLarge = try runPeerCommand(
            ["send", "large", "--to", "bob", "--views", "1", "--json", "--home", homes["alice"]!, "--cloud", cloud],
            timeout: 240)
        #expect(Self.object(sentLarge.output)["status"] as? String == "delivered", "\(sentLarge.errors)")
        let viewedLarge = try runBuiltData(
            "distri-peer",
            ["view", "large", "--from", "alice", "--home", homes["bob"]!, "--cloud", cloud, "--ca", E2ETLS.caFile],
            timeout: 240)
        #expect(
            viewedLarge.status == 0 && viewedLarge.output == largeBytes,
            "streamed file byte-exact: \(viewedLarge.errors)")

        // The catalog has the original's size and dimensions, not the cover's; no kind unless published.
        let images = try runPeerCommand(["list", "images", "--json", "--cloud", cloud])
        let entries = (try? JSONSerialization.jsonObject(with: Data(images.output.utf8))) as? [[String: Any]] ?? []
        let pdfEntry = entries.first { $0["name"] as? String == "document" }
        #expect(pdfEntry?["bytes"] as? Int == 458 && pdfEntry?["kind"] == nil, "\(images.output)")
        let published = try peer(
            "alice",
            [
                "encrypt", Self.samples.appendingPathComponent("gray.jpg").path, "--as", "shown", "--publish-kind",
                "--density", "8",
            ])
        #expect(published.status == 0 && published.output.contains("8 bits per channel"), "\(published.errors)")
        let listed = try runPeerCommand(["list", "images", "--json", "--cloud", cloud])
        #expect(listed.output.contains(#""kind":"jpeg""#), "\(listed.output)")
    }
}
