import ArgumentParser
import Distri
import Foundation
import Logging
import ServiceLifecycle

/// `distri-node run`: one node, until SIGINT or SIGTERM.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run one cloud node until interrupted (SIGINT/SIGTERM drain it gracefully).")

    @Option(name: .long, help: "Address to listen on (port 0: any free port).")
    var listen = NodeAddress(host: "127.0.0.1", port: 7000)

    @Option(name: .long, help: "Address to advertise to clients and other nodes, if not the listen address.")
    var advertise: NodeAddress?

    @Option(name: .long, help: "Comma-separated addresses of nodes to join through.")
    var seeds: AddressList?

    @Option(name: .long, help: "Stable node id (default: random).")
    var id: String?

    @Option(name: .long, help: "Tasks that may run at once.")
    var capacity = 64

    @Option(name: .long, help: "Tasks that may wait for a slot before the node answers busy.")
    var queue = 4096

    @Option(name: .long, help: "Largest request or reply, in MiB.")
    var maxPayloadMiB = 64

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Directory for the DB replica's write-ahead log and the node's id (default: keep the DB in memory).",
            valueName: "dir"))
    var dataDir: String?

    @Option(name: .long, help: "Chaos mode: chance per second of going dark (dropping all traffic) for 0.5-3 s.")
    var chaos: Double = 0

    @Flag(name: .long, help: "Also serve the test services Spin, Sleep and GoDark (for load and fault tests).")
    var testServices = false

    @OptionGroup var log: LogOptions

    func validate() throws {
        if capacity < 1 { throw ValidationError("--capacity must be at least 1") }
        if queue < 0 { throw ValidationError("--queue must not be negative") }
        if maxPayloadMiB < 1 { throw ValidationError("--max-payload-mib must be at least 1") }
        if !(0...1).contains(chaos) { throw ValidationError("--chaos is a rate between 0 and 1 per second") }
    }

    func run() async throws {
        log.bootstrap()
        let logger = Logger(label: "distri.node")
        var limits = WireLimits.standard
        limits.maxMessageSize = maxPayloadMiB << 20
        let nodeID = try dataDir.map { try DataDirectory.nodeID(in: $0, requested: id) } ?? id
        let node = CloudNode(
            configuration: CloudNodeConfiguration(
                listen: listen, advertise: advertise, seeds: seeds?.addresses ?? [], nodeID: nodeID,
                capacity: capacity, queueLimit: queue, limits: limits, cluster: ClusterSettings(chaosRate: chaos),
                dataDirectory: dataDir),
            logger: logger)
        if chaos > 0 { logger.warning("chaos mode: this node will go dark at random", metadata: ["rate": "\(chaos)"]) }
        if testServices { TestServices.register(on: node) }
        let address = try await node.start()
        // One line on standard output, written at once, for scripts and tests that start nodes.
        FileHandle.standardOutput.write(Data("node \(node.id) listening on \(address)\n".utf8))
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [node], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
