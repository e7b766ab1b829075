import ArgumentParser
import Distri
import DistriCommandLine
import DistriCore
import DistriImaging
import DistriPeer
import Foundation

/// `distri-bench example`: the original example program's interface, kept for its users.
struct ExampleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "example",
        abstract: "The original example program: a server, a client running the original tests or report, or a peer.",
        discussion: """
            --mode server --ips A,B,C runs a node at A that joins through B and C (as `distri-node run`). \
            --mode client --report --ips ... prints every server's stats as the original did; --mode client \
            --test test-client-encrypt|test-client-db --n N runs the original test with N clients against the \
            first --n-servers of --ips. --mode peer --identifier NAME runs a peer daemon (`distri-peer serve`). \
            TLS as everywhere: --ca (and --cert/--key for a server), or --insecure.
            """)

    enum Mode: String, ExpressibleByArgument, CaseIterable { case server, client, peer }
    enum Test: String, ExpressibleByArgument, CaseIterable {
        case encrypt = "test-client-encrypt"
        case database = "test-client-db"
    }

    @Option(name: .long, help: "server, client or peer.")
    var mode: Mode

    @Option(name: .long, help: "Comma-separated node addresses; for a server, the first is this node.")
    var ips: AddressList?

    @Option(name: .long, help: "test-client-encrypt or test-client-db.")
    var test: Test?

    @Flag(name: .long, help: "Print every server's stats (the original's report).")
    var report = false

    @Option(name: .long, help: "Number of clients of the test.")
    var n = 5

    @Option(name: .customLong("n-servers"), help: "Use only the first N addresses of --ips.")
    var nServers: Int?

    @Option(name: .long, help: "The peer's name (--mode peer).")
    var identifier: String?

    @Option(
        name: .long, help: ArgumentHelp("A PNG to encrypt (default: a generated 160x120 image).", valueName: "file"))
    var image: String?

    @OptionGroup var tls: ClientTLSOptions

    @Option(name: .long, help: ArgumentHelp("The server's certificate (--mode server).", valueName: "file"))
    var cert: String?

    @Option(name: .long, help: ArgumentHelp("The server's private key (--mode server).", valueName: "file"))
    var key: String?

    @OptionGroup var jsonOutput: JSONOutputOptions
    var json: Bool { jsonOutput.enabled }

    @Flag(name: .long, help: "Print CSV.")
    var csv = false

    func validate() throws {
        if mode != .peer, ips?.addresses.isEmpty ?? true { throw ValidationError("--ips needs at least one host:port") }
        if mode == .peer, identifier == nil { throw ValidationError("--mode peer needs --identifier NAME") }
        if mode == .client, test == nil, !report { throw ValidationError("--mode client needs --test or --report") }
        if !(1...100_000).contains(n) { throw ValidationError("--n must be from 1 to 100000") }
    }

    func run() async throws {
        var tlsArguments = tls.insecure ? ["--insecure"] : []
        if let ca = tls.ca { tlsArguments += ["--ca", ca] }
        switch mode {
        case .server:
            guard let ips else { return }
            var arguments = ["--listen", ips.addresses[0].description]
            if ips.addresses.count > 1 {
                arguments += ["--seeds", ips.addresses.dropFirst().map(\.description).joined(separator: ",")]
            }
            if let cert { arguments += ["--cert", cert] }
            if let key { arguments += ["--key", key] }
            // The server is `distri-node run`, in place of this process.
            try Self.exec(SiblingTool.url("distri-node"), ["run"] + arguments + tlsArguments)
        case .peer:
            try runPeer(tlsArguments: tlsArguments)
        case .client:
            try await runClient()
        }
    }

    private func runClient() async throws {
        guard let ips else { return }
        let addresses = Array(ips.addresses.prefix(max(1, nServers ?? ips.addresses.count)))
        let configuration = ClientConfiguration(tls: try tls.clientTLS())
        var results: [ExperimentResult] = []
        switch test {
        case .encrypt:
            results.append(
                await SeedExperiments.encrypt(
                    clients: n, addresses: addresses, configuration: configuration, image: try Self.testImage(image)))
        case .database:
            results.append(
                await SeedExperiments.database(clients: n, addresses: addresses, configuration: configuration))
        case nil:
            break
        }
        var stats: [(node: String, stats: NodeStats?)] = []
        if report || test != nil {
            let client = Client(nodes: addresses, configuration: configuration)
            stats = await client.collectStats().map { ($0.node.description, try? $0.result.get()) }
            await client.shutdown()
        }
        print(try ExperimentFormat(json: json, csv: csv).render(results, stats: json || csv ? [] : stats))
        if results.contains(where: { $0.failedTasks > 0 || $0.documentsOnEveryNode != $0.documentsAcknowledged }) {
            throw ExitCode(2)
        }
    }

    /// `distri-peer init` (when the peer has no home yet) and `distri-peer serve`, found beside this program.
    private func runPeer(tlsArguments: [String]) throws {
        guard let identifier else { return }
        let peerTool = SiblingTool.url("distri-peer")
        func peer(_ arguments: [String]) throws -> Int32 {
            let process = Process()
            process.executableURL = peerTool
            process.arguments = arguments
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus
        }
        // Where distri-peer keeps this peer ($DISTRI_PEER_HOME, else the named home).
        let home = try PeerHome.resolve(flag: nil, name: identifier)
        if !SecureFiles.exists(home.recordFile) {
            guard try peer(["init", "--name", identifier]) == 0 else { throw ExitCode(1) }
        }
        let cloud = ips.map { ["--cloud", $0.addresses.map(\.description).joined(separator: ",")] } ?? []
        let status = try peer(["serve", "--name", identifier] + cloud + tlsArguments)
        if status != 0 { throw ExitCode(status) }
    }

    /// The image the Encrypt test sends: `path`, or a generated 160x120 one.
    static func testImage(_ path: String?) throws -> [UInt8] {
        if let path {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ValidationError("cannot read \(path)")
            }
            return Array(data)
        }
        return try PNGCodec.encode(CoverGenerator.cover(width: 160, height: 120, seed: 7))
    }

    /// Replaces this process with `tool` (its output, signals and exit status are the server's).
    private static func exec(_ tool: URL, _ arguments: [String]) throws -> Never {
        let argv = ([tool.path] + arguments).map { strdup($0) } + [nil]
        execv(tool.path, argv)
        throw CommandFailure(.failed, "could not start \(tool.path): \(String(cString: strerror(errno)))")
    }
}
