import Distri
import DistriTestSupport
import Foundation

/// Runs `distri-peer` with `arguments` to the end (at most `timeout`), with its output. Commands given
/// `--cloud` also get the tests' CA.
func runPeerCommand(_ arguments: [String], timeout: TimeInterval = 60) throws -> (
    status: Int32, output: String, errors: String
) {
    try runBuilt(
        "distri-peer", arguments + (arguments.contains("--cloud") ? ["--ca", E2ETLS.caFile] : []), timeout: timeout)
}

/// Runs the built executable `name` with `arguments` to the end (terminated after `timeout`), with its
/// standard output and error; in `environment` instead of this process's, when given.
func runBuilt(
    _ name: String, _ arguments: [String], timeout: TimeInterval = 60, environment: [String: String]? = nil
) throws -> (status: Int32, output: String, errors: String) {
    let result = try runBuiltData(name, arguments, timeout: timeout, environment: environment)
    return (result.status, String(decoding: result.output, as: UTF8.self), result.errors)
}

/// ``runBuilt(_:_:timeout:environment:)`` with standard output as bytes (a PNG written to a pipe).
func runBuiltData(
    _ name: String, _ arguments: [String], timeout: TimeInterval = 60, environment: [String: String]? = nil
) throws -> (status: Int32, output: Data, errors: String) {
    let process = Process()
    process.executableURL = builtExecutable(name)
    process.arguments = arguments
    if let environment { process.environment = environment }
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    let timer = DispatchWorkItem { if process.isRunning { process.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
    let out = output.fileHandleForReading.readDataToEndOfFile()
    let err = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    timer.cancel()
    return (process.terminationStatus, out, String(decoding: err, as: UTF8.self))
}

/// A `distri-peer serve` daemon started by a test and stopped by its PID.
final class PeerDaemonProcess {
    let process = Process()
    private(set) var address = ""

    init(home: String, cloud: String, refresh: Double, extraArguments: [String] = []) throws {
        process.executableURL = builtExecutable("distri-peer")
        process.arguments =
            [
                "serve", "--home", home, "--cloud", cloud, "--refresh", "\(refresh)", "--ca", E2ETLS.caFile,
            ] + extraArguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        address = try listeningAddress(of: process, output: output, name: "the daemon")
    }

    /// SIGTERM, then wait.
    func stop() {
        stopProcess(process)
    }
}

/// A temporary directory holding the homes of peers made with `distri-peer init`, and one
/// `distri-node run` process they use: the setting of the single-node process tests. ``stop()``
/// stops the node and removes the directory.
final class PeersOnOneNode {
    let root: URL
    let node: NodeProcess
    /// The node's address, for `--cloud`.
    let cloud: String
    /// Each peer's home.
    let homes: [String: String]

    init(_ names: [String], label: String) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("distri-\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        node = try NodeProcess(id: "node-1", seeds: [])
        cloud = node.address.description
        let root = root
        homes = Dictionary(uniqueKeysWithValues: names.map { ($0, root.appendingPathComponent($0).path) })
        for name in names {
            let made = try runPeerCommand(["init", "--name", name, "--home", homes[name]!])
            guard made.status == 0 else { throw PeerProcessError("init \(name): \(made.errors)") }
        }
    }

    /// Runs `distri-peer` as `name` against the node.
    func peer(_ name: String, _ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
        try runPeerCommand(arguments + ["--home", homes[name]!, "--cloud", cloud])
    }

    func stop() {
        node.stop()
        try? FileManager.default.removeItem(at: root)
    }

    /// A JSON object a command printed (empty when it is not one).
    static func object(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }
}

/// A setting of a process test could not be made.
struct PeerProcessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
