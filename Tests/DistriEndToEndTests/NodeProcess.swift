import Distri
import DistriTestSupport
import Foundation

/// A real `distri-node run` process started by a test, stopped (or killed) by its PID.
final class NodeProcess {
    private(set) var process: Process
    let id: String
    private(set) var address: NodeAddress
    private let seeds: [NodeAddress]
    private let extraArguments: [String]
    private var input = Pipe()

    struct StartError: Error, CustomStringConvertible { var description: String }

    /// The `distri-node` binary built beside the test bundle.
    static var executable: URL { builtExecutable("distri-node") }

    init(
        id: String, listen: NodeAddress = NodeAddress(host: "127.0.0.1", port: 0), seeds: [NodeAddress],
        extraArguments: [String] = []
    ) throws {
        self.id = id
        self.seeds = seeds
        self.extraArguments = extraArguments
        self.address = listen
        self.process = Process()
        try launch(listen: listen)
    }

    private func launch(listen: NodeAddress) throws {
        let process = Process()
        process.executableURL = Self.executable
        var arguments = [
            "run", "--listen", listen.description, "--id", id, "--test-services", "--log-level", "warning",
        ]
        if !seeds.isEmpty { arguments += ["--seeds", seeds.map(\.description).joined(separator: ",")] }
        if !extraArguments.contains("--insecure") { arguments += try E2ETLS.nodeArguments(id) }
        arguments += extraArguments
        process.arguments = arguments
        let output = Pipe()
        input = Pipe()
        process.standardOutput = output
        process.standardInput = input
        try process.run()
        self.process = process
        guard let address = NodeAddress(try listeningAddress(of: process, output: output, name: "node \(id)")) else {
            throw StartError(description: "node \(id) printed no host:port")
        }
        self.address = address
    }

    var pid: Int32 { process.processIdentifier }

    /// kill -9.
    func kill9() {
        guard process.isRunning else { return }
        kill(pid, SIGKILL)
        process.waitUntilExit()
    }

    /// Starts the node again with the same id on the same address.
    func restart() throws {
        try launch(listen: address)
    }

    /// SIGTERM, then wait.
    func stop() {
        stopProcess(process)
    }
}

/// SIGTERM, then SIGKILL if `process` has not exited after `grace`; waits for it.
func stopProcess(_ process: Process, grace: TimeInterval = 10) {
    guard process.isRunning else { return }
    let exited = DispatchSemaphore(value: 0)
    // Set before the signal, so the exit it causes is seen; an exit before it leaves isRunning false.
    process.terminationHandler = { _ in exited.signal() }
    process.terminate()
    if process.isRunning, exited.wait(timeout: .now() + grace) == .timedOut, process.isRunning {
        kill(process.processIdentifier, SIGKILL)
    }
    process.waitUntilExit()
}

/// Reads `process`'s standard output until its first line, and returns what follows "listening on "
/// there. A process that says nothing within `timeout` is terminated (which ends the read).
func listeningAddress(of process: Process, output: Pipe, name: String, timeout: TimeInterval = 30) throws -> String {
    let timer = DispatchWorkItem { if process.isRunning { process.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
    defer { timer.cancel() }
    let reader = output.fileHandleForReading
    var text = ""
    // Bounded: every read returns data or ends the loop (at exit, or when the timer stops the process).
    while !text.contains("\n") {
        let chunk = reader.availableData
        if chunk.isEmpty { throw ProcessStartError(description: "\(name) exited before listening: \(text)") }
        text += String(decoding: chunk, as: UTF8.self)
    }
    guard let range = text.range(of: "listening on ") else {
        throw ProcessStartError(description: "\(name) printed no address: \(text)")
    }
    return String(text[range.upperBound...].prefix { !$0.isNewline })
}

struct ProcessStartError: Error, CustomStringConvertible { var description: String }

/// An executable of this package built beside the test bundle.
func builtExecutable(_ name: String) -> URL {
    let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    var directory = me.deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = directory.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    return URL(fileURLWithPath: ".build/debug/\(name)")
}

/// Starts `count` nodes, the first as everyone's seed; stops them all after `body`.
func withNodeProcesses<T>(_ count: Int, _ body: ([NodeProcess]) async throws -> T) async throws -> T {
    var nodes: [NodeProcess] = []
    defer { for node in nodes { node.stop() } }
    let first = try NodeProcess(id: "node-1", seeds: [])
    nodes.append(first)
    for index in 2...max(2, count) where index <= count {
        nodes.append(try NodeProcess(id: "node-\(index)", seeds: [first.address]))
    }
    return try await body(nodes)
}

/// Polls until `condition` holds, or `timeout` passes; returns whether it held.
func poll(timeout: Duration, every interval: Duration = .milliseconds(50), _ condition: () async -> Bool) async -> Bool
{
    let clock = ContinuousClock()
    let end = clock.now + timeout
    while clock.now < end {
        if await condition() { return true }
        try? await Task.sleep(for: interval)
    }
    return await condition()
}

/// Each node's stats by address (nil for an unreachable node).
func stats(of nodes: [NodeAddress]) async -> [NodeAddress: NodeStats] {
    let client = Client(
        nodes: nodes, configuration: ClientConfiguration(timeout: .seconds(2), tls: E2ETLS.authority.clientTLS))
    defer { Task { await client.shutdown() } }
    var result: [NodeAddress: NodeStats] = [:]
    for item in await client.collectStats(of: nodes) {
        if case .success(let stats) = item.result { result[item.node] = stats }
    }
    return result
}

/// True when every node in `observers` sees exactly `alive` as its alive members.
func membershipAgrees(observers: [NodeAddress], alive: Set<String>) async -> Bool {
    let views = await stats(of: observers)
    guard views.count == observers.count else { return false }
    return views.values.allSatisfy { view in
        Set(view.members.filter { $0.status == "alive" }.map(\.id)) == alive
    }
}

/// The end-to-end tests' cluster authority, with its files in a private temporary directory: nodes
/// started by the tests run with a certificate from it, and clients and peers trust it.
enum E2ETLS {
    static var authority: ThrowawayAuthority { TestTLS.authority }

    /// Unique to this run, and removed when it exits: a directory named after the process id alone
    /// was found again by a later run that got the same id, whose nodes then showed certificates of
    /// the earlier run's authority (every handshake failed).
    static let directory: String = {
        let path = (NSTemporaryDirectory() as NSString).appendingPathComponent(
            "distri-e2e-certs-\(getpid())-\(UUID().uuidString)")
        do {
            try TLSFiles.write(
                authority.authority.certificatePEM, to: (path as NSString).appendingPathComponent("ca.pem"))
        } catch {
            fatalError("cannot write the tests' CA certificate: \(error)")
        }
        atexit { try? FileManager.default.removeItem(atPath: E2ETLS.directory) }
        return path
    }()

    /// The authority's certificate, for `--ca`.
    static var caFile: String { (directory as NSString).appendingPathComponent("ca.pem") }

    /// `--ca`, `--cert` and `--key` for a node named `id` (its certificate made on first use).
    static func nodeArguments(_ id: String) throws -> [String] {
        let certificate = (directory as NSString).appendingPathComponent("\(id).pem")
        let key = (directory as NSString).appendingPathComponent("\(id).key")
        if !FileManager.default.fileExists(atPath: certificate) {
            let issued = try ClusterCertificates.issue(name: id, role: .node, authority: authority.authority)
            try TLSFiles.write(issued.certificatePEM, to: certificate)
            try TLSFiles.write(issued.keyPEM, to: key)
        }
        return ["--ca", caFile, "--cert", certificate, "--key", key]
    }
}
