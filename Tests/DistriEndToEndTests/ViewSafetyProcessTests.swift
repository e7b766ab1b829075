import Distri
import DistriIdentity
import DistriTestSupport
import Foundation
import Testing

/// `distri-peer view` spends a view only when the image can be shown: checked with the real
/// executables against one `distri-node run` process.
@Suite(.serialized) struct ViewSafetyProcessTests {
    private static let sampleImage = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../sample-images/rgb8.png").standardizedFileURL.path

    private static func object(_ text: String) -> [String: Any] { PeersOnOneNode.object(text) }

    @Test(
        "serve --on-receive runs for an arrival; list images shows the verified catalog; a taken --out file, a viewer that does not exist, a directory not writable: refused before the cloud is asked (views left unchanged); a failing viewer fails the command; a pipe gets the PNG byte-exact"
    )
    func viewSpendsOnlyWhatItShows() async throws {
        let world = try PeersOnOneNode(["alice", "bob"], label: "views")
        defer { world.stop() }
        let (root, cloud, homes, peer) = (world.root, world.cloud, world.homes, world.peer)
        // Bob's daemon runs a command for each arrival, with the sender and image in its environment.
        let arrivals = root.appendingPathComponent("arrivals.txt").path
        let hook = ["--on-receive", "echo \"$DISTRI_SENDER $DISTRI_IMAGE\" >> '\(arrivals)'"]
        let daemons = try ["alice", "bob"].map {
            try PeerDaemonProcess(home: homes[$0]!, cloud: cloud, refresh: 1, extraArguments: $0 == "bob" ? hook : [])
        }
        defer { for daemon in daemons { daemon.stop() } }
        #expect(try peer("alice", ["encrypt", Self.sampleImage]).status == 0)
        let sent = try peer("alice", ["send", "rgb8", "--to", "bob", "--views", "3", "--json"])
        #expect(Self.object(sent.output)["status"] as? String == "delivered", "\(sent.output) \(sent.errors)")
        let original = try Data(contentsOf: URL(fileURLWithPath: Self.sampleImage))
        #expect(
            await poll(timeout: .seconds(10)) {
                (try? String(contentsOfFile: arrivals, encoding: .utf8)) == "alice rgb8\n"
            }, "the --on-receive command ran once, with the sender and the image")

        // What exists: the verified catalog.
        let images = try runPeerCommand(["list", "images", "--json", "--cloud", cloud])
        let entries = (try? JSONSerialization.jsonObject(with: Data(images.output.utf8))) as? [[String: Any]] ?? []
        #expect(entries.count == 1 && entries.first?["owner"] as? String == "alice", "\(images.output)")
        #expect(entries.first?["name"] as? String == "rgb8" && (entries.first?["width"] as? Int ?? 0) > 0)
        let none = try runPeerCommand(["list", "images", "--from", "bob", "--cloud", cloud])
        #expect(none.status == 0 && none.output.contains("'bob' has published no images"), "\(none.output)")

        /// The views bob has left, as the cloud holds them.
        func remaining() throws -> Int? {
            let inbox = try peer("bob", ["inbox", "--json"])
            let grants = Self.object(inbox.output)["grantsToMe"] as? [[String: Any]]
            return grants?.first { $0["image"] as? String == "rgb8" }?["remaining"] as? Int
        }
        #expect(try remaining() == 3)

        // Refused before a view is taken.
        let taken = root.appendingPathComponent("taken.png").path
        try Data("mine".utf8).write(to: URL(fileURLWithPath: taken))
        let overwrite = try peer("bob", ["view", "rgb8", "--from", "alice", "--out", taken])
        #expect(overwrite.status != 0 && overwrite.errors.contains("--force"), "\(overwrite.errors)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: taken)) == Data("mine".utf8))
        let missing = try peer("bob", ["view", "rgb8", "--from", "alice", "--viewer", "no-such-viewer-xyz -b"])
        #expect(missing.status != 0 && missing.errors.contains("not found on PATH"), "\(missing.errors)")
        let nowhere = try peer("bob", ["view", "rgb8", "--from", "alice", "--out", "/nonexistent-dir/x.png"])
        #expect(nowhere.status != 0 && nowhere.errors.contains("cannot write"), "\(nowhere.errors)")
        #expect(try remaining() == 3, "no view was spent on the refusals")

        // A viewer command line is split into words; one that fails fails the command.
        let listed = try peer("bob", ["view", "rgb8", "--from", "alice", "--viewer", "ls -l"])
        #expect(listed.status == 0 && listed.output.contains("distri-view-"), "\(listed.output) \(listed.errors)")
        let failing = try peer("bob", ["view", "rgb8", "--from", "alice", "--viewer", "false"])
        #expect(failing.status != 0 && failing.errors.contains("failed"), "\(failing.errors)")

        // Standard output a pipe: the decrypted PNG, byte-exact; the summary on standard error.
        let piped = try runBuiltData(
            "distri-peer",
            ["view", "rgb8", "--from", "alice", "--home", homes["bob"]!, "--cloud", cloud, "--ca", E2ETLS.caFile])
        #expect(piped.status == 0 && piped.output == original, "\(piped.errors)")
        #expect(piped.errors.contains("views left"))
        #expect(try remaining() == 0)

        // Under --json (and --pretty) every error is JSON on standard error, with the exit code of its
        // kind (README, "Exit codes").
        let otherCA = root.appendingPathComponent("other-ca").path
        #expect(try runBuilt("distri-node", ["certs", "init", "--dir", otherCA]).status == 0)
        let bobHome = ["--home", homes["bob"]!]
        let cases: [(what: String, arguments: [String], code: String, status: Int32)] = [
            (
                "unreachable cloud", ["list", "peers", "--cloud", "127.0.0.1:1", "--ca", E2ETLS.caFile], "unreachable",
                69
            ),
            ("wrong CA", ["list", "peers", "--cloud", cloud, "--ca", otherCA + "/ca.pem"], "tls", 69),
            ("--insecure against TLS", ["list", "peers", "--cloud", cloud, "--insecure"], "tls", 69),
            (
                "unknown peer",
                [
                    "send", "rgb8", "--to", "mallory", "--views", "1", "--home", homes["alice"]!, "--cloud", cloud,
                    "--ca", E2ETLS.caFile,
                ],
                "notFound", 66
            ),
            (
                "no views left",
                [
                    "view", "rgb8", "--from", "alice", "--out", root.appendingPathComponent("none.png").path, "--cloud",
                    cloud, "--ca", E2ETLS.caFile,
                ] + bobHome,
                "refused", 77
            ),
        ]
        for (what, arguments, code, status) in cases {
            for style in ["--json", "--pretty"] {
                let failed = try runBuilt("distri-peer", arguments + [style])
                // Warnings (e.g. --insecure's) are JSON lines of their own.
                let errorText = failed.errors.split(separator: "\n").filter { !$0.hasPrefix(#"{"warning""#) }
                    .joined(separator: "\n")
                let error = Self.object(errorText)["error"] as? [String: Any]
                #expect(failed.status == status, "\(what) \(style): exit \(failed.status), \(failed.errors)")
                #expect(error?["code"] as? String == code, "\(what) \(style): \(failed.errors)")
                #expect((error?["message"] as? String)?.isEmpty == false, "\(what) \(style): \(failed.errors)")
                #expect(failed.output.isEmpty, "\(what) \(style): standard output holds only results")
            }
        }
        let insecureErrors = try runBuilt("distri-peer", cases[2].arguments + ["--json"]).errors.split(separator: "\n")
        #expect(insecureErrors.first?.hasPrefix(#"{"warning":"--insecure"#) == true, "\(insecureErrors)")
        let insecure = Self.object(String(insecureErrors.last ?? ""))
        #expect(((insecure["error"] as? [String: Any])?["hint"] as? String)?.contains("drop --insecure") == true)
    }
}
