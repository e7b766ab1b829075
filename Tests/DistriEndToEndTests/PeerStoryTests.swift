import Distri
import DistriCore
import DistriIdentity
import DistriPeer
import DistriTestSupport
import Foundation
import Testing

/// The whole peer story with the real executables: three `distri-node run` processes sharing a
/// deposit key, and `distri-peer` for alice, bob and carol.
@Suite(.serialized) struct PeerStoryTests {
    private static let sampleImage = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../sample-images/rgb8.png").standardizedFileURL.path

    /// A JSON object printed by a command.
    private static func object(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    @Test(
        "send with 2 views, view twice, third refused, carol refused, revoke and grant again, offline send, a node killed, forged and replayed grants refused, requests answered"
    )
    func story() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("distri-story-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let depositFile = root.appendingPathComponent("deposit.key").path
        try Hex.encode(try AgreementKeyPair.generate().privateKey).write(
            toFile: depositFile, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: depositFile)
        let keyArguments = ["--deposit-key-file", depositFile]

        var nodes: [NodeProcess] = []
        defer { for node in nodes { node.stop() } }
        nodes.append(try NodeProcess(id: "node-1", seeds: [], extraArguments: keyArguments))
        for index in 2...3 {
            nodes.append(try NodeProcess(id: "node-\(index)", seeds: [nodes[0].address], extraArguments: keyArguments))
        }
        let addresses = nodes.map(\.address)
        #expect(
            await poll(timeout: .seconds(30)) {
                await membershipAgrees(observers: addresses, alive: ["node-1", "node-2", "node-3"])
            }, "the cloud formed")
        let cloud = addresses.map(\.description).joined(separator: ",")

        let homes = Dictionary(
            uniqueKeysWithValues: ["alice", "bob", "carol"].map { ($0, root.appendingPathComponent($0).path) })
        /// Runs `distri-peer` as `peer` against the cloud.
        func peer(_ name: String, _ arguments: String...) throws -> (status: Int32, output: String, errors: String) {
            try runPeerCommand(arguments + ["--home", homes[name]!, "--cloud", cloud])
        }
        for name in ["alice", "bob", "carol"] {
            let made = try runPeerCommand(["init", "--name", name, "--home", homes[name]!])
            #expect(made.status == 0, "init \(name): \(made.errors)")
        }
        var daemons = try ["alice", "bob", "carol"].map {
            try PeerDaemonProcess(home: homes[$0]!, cloud: cloud, refresh: 1)
        }
        defer { for daemon in daemons { daemon.stop() } }
        #expect(
            await poll(timeout: .seconds(30)) {
                let list = try? runPeerCommand(["list", "peers", "--json", "--cloud", cloud, "--refresh", "1"])
                return ["alice", "bob", "carol"].allSatisfy { list?.output.contains("\"name\":\"\($0)\"") == true }
            }, "every daemon registered")

        // Alice encrypts a sample and sends it to bob with 2 views.
        let encrypted = try peer("alice", "encrypt", Self.sampleImage, "--json")
        #expect(encrypted.status == 0, "encrypt: \(encrypted.errors)")
        let sent = try peer("alice", "send", "rgb8", "--to", "bob", "--views", "2", "--json")
        #expect(Self.object(sent.output)["status"] as? String == "delivered", "send: \(sent.output) \(sent.errors)")
        let original = try Data(contentsOf: URL(fileURLWithPath: Self.sampleImage))
        /// rgb8's state as bob's inbox and alice's outbox show it.
        func states() throws -> [String?] {
            let inbox = Self.object(try peer("bob", "inbox", "--json").output)["grantsToMe"] as? [[String: Any]]
            let outbox = try JSONSerialization.jsonObject(with: Data(try peer("alice", "outbox", "--json").output.utf8))
            return [
                inbox?.first { $0["image"] as? String == "rgb8" }?["state"] as? String,
                (outbox as? [[String: Any]])?.first { $0["to"] as? String == "bob" }?["state"] as? String,
            ]
        }
        #expect(try states() == ["received", "delivered"])
        let inbox = Self.object(try peer("bob", "inbox", "--json").output)
        let grants = inbox["grantsToMe"] as? [[String: Any]] ?? []
        #expect(
            grants.count == 1 && grants.first?["remaining"] as? Int == 2 && grants.first?["received"] as? Bool == true)

        // Bob views it twice, byte-exact; one cloud node is killed between the two.
        func view(_ name: String) throws -> (status: Int32, output: String, errors: String, bytes: Data?) {
            let out = root.appendingPathComponent("\(name)-view-\(UUID().uuidString).png").path
            let result = try peer(name, "view", "rgb8", "--from", "alice", "--out", out, "--json")
            return (result.status, result.output, result.errors, FileManager.default.contents(atPath: out))
        }
        let first = try view("bob")
        #expect(first.status == 0 && first.bytes == original, "first view: \(first.errors)")
        #expect(try states() == ["viewed", "viewed"])
        nodes[1].kill9()
        let second = try view("bob")
        #expect(second.status == 0 && second.bytes == original, "second view with a node killed: \(second.errors)")
        #expect(Self.object(second.output)["remaining"] as? Int == 0)
        let third = try view("bob")
        #expect(
            third.status != 0 && third.bytes == nil && third.errors.contains("no views left"), "third: \(third.errors)")
        #expect(try states() == ["noViewsLeft", "noViewsLeft"])

        // Carol, holding a copy of what bob received, cannot open it.
        let received = root.appendingPathComponent("bob/received/alice/rgb8.png").path
        #expect(try peer("alice", "send", "rgb8", "--to", "bob", "--views", "1").status == 0)
        let carolCopy = root.appendingPathComponent("carol/received/alice").path
        try FileManager.default.createDirectory(atPath: carolCopy, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: received, toPath: carolCopy + "/rgb8.png")
        let carols = try view("carol")
        #expect(carols.status != 0 && carols.bytes == nil, "carol opened bob's copy")
        #expect(carols.errors.contains("has granted 'carol' no views"), "carol: \(carols.errors)")

        // A forged grant (carol signs 99 views of alice's image for bob) and a replayed one (alice's
        // earlier grant, after the revoke below) are refused by the cloud.
        let client = Client(nodes: [addresses[0], addresses[2]], configuration: .tls)
        defer { Task { await client.shutdown() } }
        let peerCloud = PeerCloud(client: client)
        let inForce = try ViewGrant(
            document: try #require(try await peerCloud.document("alice:rgb8:bob", in: "permissions")))
        let carolKeys = try PeerIdentity.load(from: PeerHome(path: homes["carol"]!))
        var forged = inForce
        forged.views = 99
        forged.sequence += 1
        #expect(
            await remoteCode { try await peerCloud.grant(try forged.signed(by: carolKeys.signing)) } == .unauthorized)

        // Alice revokes: bob's view is refused and his copy removed; then she grants again.
        let revoked = try peer("alice", "permissions", "rgb8", "--to", "bob", "--views", "0")
        #expect(revoked.status == 0, "revoke: \(revoked.errors)")
        #expect(
            await remoteCode { try await peerCloud.grant(inForce) } == .conflict, "a replayed grant must be refused")
        let afterRevoke = try view("bob")
        #expect(
            afterRevoke.status != 0 && afterRevoke.errors.contains("revoked"), "after revoke: \(afterRevoke.errors)")
        #expect(!FileManager.default.fileExists(atPath: received))
        #expect(try states() == ["revoked", "revoked"])
        // A new grant after the revoke sends the image again: bob's copy was removed.
        let again = try peer("alice", "permissions", "rgb8", "--to", "bob", "--views", "1", "--json")
        #expect(Self.object(again.output)["delivery"] as? String == "delivered", "\(again.output) \(again.errors)")
        #expect(try states() == ["received", "delivered"])
        #expect(try view("bob").bytes == original)
        #expect(try states() == ["noViewsLeft", "noViewsLeft"])

        // Bob goes offline: the send waits in the cloud's mailbox, and bob's daemon collects it when
        // he is back (nothing waits in alice's outbox: she need not stay online).
        daemons[1].stop()
        // Bob's copy (viewed to the end) is gone, so only the mailbox can bring it back.
        try FileManager.default.removeItem(atPath: received)
        let waiting = try peer("alice", "send", "rgb8", "--to", "bob", "--views", "1", "--json")
        #expect(Self.object(waiting.output)["status"] as? String == "mailbox", "send to offline bob: \(waiting.output)")
        #expect(try states() == ["waiting", "mailbox"])
        let live = [addresses[0], addresses[2]]
        func mailboxEntries() async -> [Int] { await stats(of: live).values.map { $0.mailbox?.entries ?? -1 } }
        #expect(await mailboxEntries() == [1, 1], "the deposit is on every live replica")
        daemons[1] = try PeerDaemonProcess(home: homes["bob"]!, cloud: cloud, refresh: 1)
        #expect(
            await poll(timeout: .seconds(60), every: .milliseconds(200)) { await mailboxEntries() == [0, 0] },
            "bob's daemon collected the mailbox, and the entry was removed")
        #expect(try states() == ["received", "mailbox"], "alice's record says where she left it")
        #expect(try view("bob").bytes == original)

        // Requests: carol asks, alice sees it and rejects; bob asks, alice grants.
        // The older order still works, with a note naming the new one.
        let older = try peer("carol", "request", "alice", "rgb8", "--views", "2")
        #expect(older.status == 0 && older.errors.contains("distri-peer request rgb8 --from alice"), "\(older.errors)")
        #expect(try peer("alice", "inbox").output.contains("carol asks for 2 view(s) of rgb8"))
        #expect(try peer("alice", "reject", "rgb8", "--to", "carol").status == 0)
        #expect(try peer("carol", "inbox").output.contains("rgb8 from alice: rejected"))
        #expect(try peer("bob", "request", "rgb8", "--from", "alice", "--views", "3").status == 0)
        let granted = try peer("alice", "grant", "rgb8", "--to", "bob", "--json")
        #expect(Self.object(granted.output)["views"] as? Int == 3, "grant: \(granted.output) \(granted.errors)")
        #expect(Self.object(try view("bob").output)["remaining"] as? Int == 2)

        // Clear errors and non-zero exits.
        let unknown = try peer("alice", "send", "nothing", "--to", "bob", "--views", "1")
        #expect(unknown.status != 0 && unknown.errors.contains("no image named"))
        let stranger = try peer("alice", "send", "rgb8", "--to", "mallory", "--views", "1")
        #expect(stranger.status != 0 && stranger.errors.contains("mallory"))
    }
}
