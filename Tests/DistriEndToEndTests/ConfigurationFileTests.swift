import Distri
import DistriCore
import DistriTestSupport
import Foundation
import Testing

/// `--config`: a file of settings under the environment and the flags, `config show` naming where
/// each value came from, and bad files refused with their line (exit 78).
@Suite struct ConfigurationFileTests {
    /// A directory of its own for one test, removed afterwards by the caller.
    private static func directory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("distri-config-\(UUID())")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// The environment a tool runs with here: no DISTRI_ variables but those given.
    private static func environment(_ extra: [String: String] = [:]) -> [String: String] {
        ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("DISTRI_") }.merging(extra) { $1 }
    }

    /// `config show --json`'s settings by key: (value, source, layer).
    private static func show(
        _ tool: String, _ arguments: [String], environment: [String: String]
    ) throws -> [String: (value: JSONValue, source: String, layer: String)] {
        let result = try runBuilt(tool, ["config", "show", "--json"] + arguments, environment: environment)
        #expect(result.status == 0, "\(tool) config show: \(result.errors)")
        let shown = try JSONDecoder().decode(JSONValue.self, from: Data(result.output.utf8))
        var settings: [String: (JSONValue, String, String)] = [:]
        for case .object(let entry) in shown[path: "settings"]?.arrayValue ?? [] {
            guard case .string(let key)? = entry["key"], case .string(let source)? = entry["source"],
                case .string(let layer)? = entry["layer"]
            else { continue }
            settings[key] = (entry["value"] ?? .null, source, layer)
        }
        return settings
    }

    @Test(
        "distri-node: a YAML file, one value overridden by the environment and one by a flag",
        arguments: ["yaml", "json"])
    func nodeLayers(format: String) throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("node.\(format)")
        let text =
            format == "yaml"
            ? "# a node\nlisten: 127.0.0.1:7100\ncapacity: 16\nqueue: 100\nseeds:\n  - 127.0.0.1:7101\n  - 127.0.0.1:7102\ninsecure: true\n"
            : "{\n  \"listen\": \"127.0.0.1:7100\",\n  \"capacity\": 16,\n  \"queue\": 100,\n  \"seeds\": [\"127.0.0.1:7101\", \"127.0.0.1:7102\"],\n  \"insecure\": true\n}\n"
        try text.write(to: file, atomically: true, encoding: .utf8)
        let settings = try Self.show(
            "distri-node", ["--config", file.path, "--capacity", "8"],
            environment: Self.environment(["DISTRI_QUEUE": "7", "DISTRI_MAILBOX_DAYS": "2.5"]))
        let path = file.path
        #expect(settings["capacity"]?.value == .number(8))
        #expect(settings["capacity"]?.source == "flag --capacity")
        #expect(settings["queue"]?.value == .number(7))
        #expect(settings["queue"]?.source == "environment DISTRI_QUEUE")
        #expect(settings["mailbox-days"]?.value == .number(2.5))
        #expect(settings["listen"]?.value == .string("127.0.0.1:7100"))
        #expect(settings["listen"]?.source == "file \(path):\(format == "yaml" ? 2 : 2)")
        #expect(settings["seeds"]?.value == .array([.string("127.0.0.1:7101"), .string("127.0.0.1:7102")]))
        #expect(settings["seeds"]?.source == "file \(path):5")
        #expect(settings["insecure"]?.value == .bool(true))
        #expect(settings["max-payload-mib"]?.value == .number(64))
        #expect(settings["max-payload-mib"]?.layer == "default")
        #expect(settings["data-dir"]?.layer == "unset")
    }

    @Test("distri-peer serve: file, environment (DISTRI_PEER_HOME, DISTRI_LOG_LEVEL) and flag")
    func peerLayers() throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("peer.yml")
        try "name: alice\nrefresh: 2\ncloud: [127.0.0.1:7000, 127.0.0.1:7001]\n".write(
            to: file, atomically: true, encoding: .utf8)
        let settings = try Self.show(
            "distri-peer", ["--config", file.path, "--listen", "0.0.0.0:9000"],
            environment: Self.environment(["DISTRI_PEER_HOME": "/tmp/alice", "DISTRI_LOG_LEVEL": "debug"]))
        #expect(settings["name"]?.source == "file \(file.path):1")
        #expect(settings["refresh"]?.value == .number(2))
        #expect(settings["cloud"]?.value == .array([.string("127.0.0.1:7000"), .string("127.0.0.1:7001")]))
        #expect(settings["home"]?.source == "environment DISTRI_PEER_HOME")
        #expect(settings["log-level"]?.value == .string("debug"))
        #expect(settings["listen"]?.source == "flag --listen")
        #expect(settings["log-format"]?.layer == "default")
    }

    @Test("contrib/config's example files are accepted as they are", arguments: ["distri-node", "distri-peer"])
    func examplesAccepted(tool: String) throws {
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../contrib/config/\(tool == "distri-node" ? "node" : "peer").yaml")
            .standardizedFileURL.path
        let settings = try Self.show(tool, ["--config", example], environment: Self.environment())
        #expect(settings["listen"]?.layer == "file")
        #expect(settings["log-format"]?.value == .string("json"))
    }

    /// A bad configuration: (file name, contents, words the error must hold).
    static let badFiles: [(String, String, [String])] = [
        (
            "unknown.yaml", "listen: 127.0.0.1:7000\ncapacty: 3\n",
            ["unknown.yaml:2", "unknown key 'capacty'", "did you mean 'capacity'"]
        ),
        ("broken.yaml", "listen: [127.0.0.1:7000\ncapacity: 2\n", ["broken.yaml:2", "not YAML"]),
        ("broken.json", "{\n  \"capacity\": 4,\n  \"queue\": ,\n}\n", ["broken.json:3", "not JSON"]),
        (
            "kind.json", "{\n  \"insecure\": true,\n  \"capacity\": \"lots\"\n}\n",
            ["capacity from file", "kind.json:3", "whole number"]
        ),
        ("nested.yaml", "insecure: true\nmailbox:\n  days: 3\n", ["nested.yaml:2", "'mailbox'", "not a mapping"]),
        ("twice.json", "{\n  \"capacity\": 4,\n  \"capacity\": 5\n}\n", ["twice.json:3", "set twice"]),
        ("range.yaml", "insecure: true\ncapacity: 0\n", ["capacity (0, from file", "range.yaml:2", "must be from 1"]),
        ("node.toml", "capacity = 3\n", [".json, .yaml or .yml"]),
    ]

    @Test("a bad file is refused with its line, exit 78", arguments: 0..<badFiles.count)
    func badFile(index: Int) throws {
        let (name, contents, words) = Self.badFiles[index]
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent(name)
        try contents.write(to: file, atomically: true, encoding: .utf8)
        for command in [["config", "show"], ["run"]] {
            let result = try runBuilt(
                "distri-node", command + ["--config", file.path], timeout: 30, environment: Self.environment())
            #expect(result.status == 78, "\(command) \(name): \(result.status) \(result.errors)")
            for word in words { #expect(result.errors.contains(word), "\(name): \(result.errors)") }
        }
    }

    @Test("distri-node run takes its settings from the file under its flags")
    func runUsesFile() async throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("node.yaml")
        // The flags NodeProcess gives (--listen, --id, --log-level) win over the file's.
        try "listen: 127.0.0.1:1\nid: from-file\ncapacity: 3\nqueue: 5\n".write(
            to: file, atomically: true, encoding: .utf8)
        let node = try NodeProcess(id: "from-flag", seeds: [], extraArguments: ["--insecure", "--config", file.path])
        defer { node.stop() }
        let client = Client(nodes: [node.address])
        defer { Task { await client.shutdown() } }
        let stats = try #require(await client.collectStats(of: [node.address]).first?.result.get())
        #expect(stats.nodeID == "from-flag")
        #expect(stats.capacity == 3)
    }
}
