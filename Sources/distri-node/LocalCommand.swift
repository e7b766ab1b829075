import ArgumentParser
import Distri
import DistriCommandLine
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// `distri-node local`: a whole cloud in one process, on free loopback ports.
struct LocalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "local", abstract: "Run a local cloud of N nodes on free loopback ports until interrupted.")

    @Option(name: .long, help: "Number of nodes.")
    var nodes = 3

    @Option(name: .long, help: "Loopback host to bind.")
    var host = "127.0.0.1"

    @Option(name: .long, help: "Tasks that may run at once, per node.")
    var capacity = 64

    @Option(
        name: .long,
        help: "Event-loop threads per node: each node runs on its own, as on a machine of its own.")
    var loopsPerNode = LocalCloud.defaultLoopsPerNode

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Directory for the nodes' DB write-ahead logs: node i (1...N) uses DIR/node-i and keeps its id there (default: in memory).",
            valueName: "dir"))
    var dataDir: String?

    @Flag(name: .long, help: "Stop when standard input closes (used when started by another process).")
    var stopOnEOF = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "File to write the cloud's addresses to, for peers to find it (default: $DISTRI_HOME/cloud, else ~/.distri/cloud); removed on exit.",
            valueName: "path"))
    var cloudFile: String?

    @Flag(name: .long, help: "Every node also serves Prometheus metrics on a free port (listed as `metrics: URL`).")
    var metrics = false

    @Flag(
        name: .long,
        help: "Every node carries W3C trace context through its calls and records no spans (a sampler off).")
    var tracePropagation = false

    @Flag(name: .long, help: "Do not write the cloud file.")
    var noCloudFile = false

    @Flag(name: .long, help: "Plain TCP without TLS (debugging only; warns on every start).")
    var insecure = false

    @OptionGroup var log: LogOptions

    func validate() throws {
        if !(1...64).contains(nodes) { throw ValidationError("--nodes must be between 1 and 64") }
        if !(1...64).contains(loopsPerNode) { throw ValidationError("--loops-per-node must be between 1 and 64") }
    }

    func run() async throws {
        log.bootstrap()
        let logger = Logger(label: "distri.local")
        if insecure { printWarning(TLSFiles.insecureWarning) }
        let authority = insecure ? nil : try ThrowawayAuthority()
        let cloud = try await LocalCloud.start(
            nodes: nodes, host: host, capacity: capacity, loopsPerNode: loopsPerNode, dataDirectory: dataDir,
            authority: authority, metrics: metrics, tracePropagation: tracePropagation, logger: logger)
        var listing = ""
        for (node, address) in zip(cloud.nodes, cloud.addresses) {
            listing += "node \(node.id) listening on \(address)\n"
            if let metrics = node.metricsAddress { listing += "metrics: http://\(metrics)/metrics\n" }
        }
        // The throw-away authority's certificate, for clients: in a private temporary file (removed
        // on exit), and beside the cloud file.
        let authorityFile = try authority.map { authority -> String in
            let path = (NSTemporaryDirectory() as NSString).appendingPathComponent(
                "distri-local-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).ca.pem")
            try TLSFiles.write(authority.authority.certificatePEM, to: path)
            return path
        }
        defer { if let authorityFile { try? FileManager.default.removeItem(atPath: authorityFile) } }
        if let authorityFile { listing += "ca: \(authorityFile)\n" }
        listing += "cloud: \(cloud.addresses.map(\.description).joined(separator: ","))\n"
        // Written straight to the file descriptor: a parent reading a pipe must see it at once.
        FileHandle.standardOutput.write(Data(listing.utf8))
        let cloudList = cloud.addresses.map(\.description).joined(separator: ",") + "\n"
        let cloudFilePath = noCloudFile ? nil : (cloudFile ?? TLSFiles.localCloudFile)
        if let cloudFilePath {
            do {
                try FileManager.default.createDirectory(
                    atPath: (cloudFilePath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try Data(cloudList.utf8).write(to: URL(fileURLWithPath: cloudFilePath), options: .atomic)
                if let authority {
                    try TLSFiles.write(
                        authority.authority.certificatePEM, to: TLSFiles.authorityFile(besideCloudFile: cloudFilePath),
                        public: true)
                }
            } catch {
                logger.warning(
                    "could not write the cloud file", metadata: ["path": "\(cloudFilePath)", "error": "\(error)"])
            }
        }
        defer {
            // Only our own list: another local cloud may have replaced it since.
            if let cloudFilePath, FileManager.default.contents(atPath: cloudFilePath) == Data(cloudList.utf8) {
                try? FileManager.default.removeItem(atPath: cloudFilePath)
                try? FileManager.default.removeItem(atPath: TLSFiles.authorityFile(besideCloudFile: cloudFilePath))
            }
        }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [cloud], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        if stopOnEOF {
            Thread.detachNewThread {
                _ = FileHandle.standardInput.readDataToEndOfFile()
                Task { await group.triggerGracefulShutdown() }
            }
        }
        try await group.run()
    }
}
