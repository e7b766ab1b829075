import ArgumentParser
import Distri
import DistriCommandLine
import DistriCore
import Foundation
import Logging
import ServiceLifecycle

/// `distri-node run`: one node, until SIGINT or SIGTERM.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run one cloud node until interrupted (SIGINT/SIGTERM drain it gracefully).")

    @Option(name: .long, help: "Address to listen on (port 0: any free port).")
    var listen = NodeAddress(host: "127.0.0.1", port: 7000)

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Address clients and other nodes dial, if not the listen address; a wildcard --listen (0.0.0.0) "
                + "advertises the local address of the route to the seeds (logged)."))
    var advertise: NodeAddress?

    @Option(name: .long, help: "Comma-separated addresses of nodes to join through.")
    var seeds: AddressList?

    @Option(name: .long, help: "Stable node id (default: random).")
    var id: String?

    @Option(name: .long, help: "Tasks that may run at once.")
    var capacity = 64

    @Option(name: .long, help: "Tasks that may wait for a slot before the node answers busy.")
    var queue = 4096

    @Option(name: .customLong("max-payload-mib"), help: "Largest request or reply, in MiB.")
    var maxPayloadMiB = 64

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Directory for the DB replica's write-ahead log and the node's id (default: keep the DB in memory).",
            valueName: "dir"))
    var dataDir: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "File (mode 0600) holding the cloud's deposit key as 64 hex digits; every node of a cloud needs the same one (make one with `openssl rand -hex 32`). Default: a fresh key, which only suits a one-node cloud.",
            valueName: "file"))
    var depositKeyFile: String?

    @Option(
        name: .long,
        help: "MiB each peer may send through this node's relay per hour (peers behind NAT receive through it).")
    var relayMibPerHour = 4096

    @Option(
        name: .long,
        help: "MiB of sealed images the cloud's mailbox holds for one offline recipient (every node must agree).")
    var mailboxMibPerRecipient = 64

    @Option(name: .long, help: "MiB one sender may have waiting in the cloud's mailbox, for all recipients.")
    var mailboxMibPerSender = 64

    @Option(name: .long, help: "MiB the cloud's mailbox holds in all (each node keeps a replica).")
    var mailboxMibTotal = 256

    @Option(name: .long, help: "Days a mailbox delivery waits to be collected before it is deleted.")
    var mailboxDays: Double = 7

    @Option(name: .long, help: "MiB of the largest file this node encrypts streamed (above 48 MiB).")
    var encryptMaxMib = 1024

    @Option(name: .long, help: "Streamed encryptions this node runs at once.")
    var encryptSessions = 4

    @Option(name: .long, help: "Chaos mode: chance per second of going dark (dropping all traffic) for 0.5-3 s.")
    var chaos: Double = 0

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Serve Prometheus metrics at http://HOST:PORT/metrics (plain HTTP; port 0: any free port).",
            valueName: "host:port"))
    var metricsListen: NodeAddress?

    @Flag(name: .long, help: "Also serve the test services Spin, Sleep and GoDark (for load and fault tests).")
    var testServices = false

    @OptionGroup var tls: NodeTLSOptions

    @OptionGroup var log: LogOptions

    func validate() throws {
        if capacity < 1 { throw ValidationError("--capacity must be at least 1") }
        if queue < 0 { throw ValidationError("--queue must not be negative") }
        if maxPayloadMiB < 1 { throw ValidationError("--max-payload-mib must be at least 1") }
        for (flag, value) in [
            ("--mailbox-mib-per-recipient", mailboxMibPerRecipient), ("--mailbox-mib-per-sender", mailboxMibPerSender),
            ("--mailbox-mib-total", mailboxMibTotal),
        ] where !(1...65536).contains(value) {
            throw ValidationError("\(flag) must be from 1 to 65536")
        }
        if !(0.001...365).contains(mailboxDays) { throw ValidationError("--mailbox-days must be from 0.001 to 365") }
        if relayMibPerHour < 1 { throw ValidationError("--relay-mib-per-hour must be at least 1") }
        if !(48...65536).contains(encryptMaxMib) { throw ValidationError("--encrypt-max-mib must be from 48 to 65536") }
        if !(1...64).contains(encryptSessions) { throw ValidationError("--encrypt-sessions must be from 1 to 64") }
        if !(0...1).contains(chaos) { throw ValidationError("--chaos is a rate between 0 and 1 per second") }
        if let advertise, AdvertisedAddress.isWildcard(advertise.host) {
            throw ValidationError("--advertise must be an address others can dial, not \(advertise)")
        }
    }

    func run() async throws {
        log.bootstrap()
        let logger = Logger(label: "distri.node")
        var limits = WireLimits.standard
        limits.maxMessageSize = maxPayloadMiB << 20
        let depositKey = try depositKeyFile.map { try DepositKeyFile.read($0) }
        if depositKey == nil, seeds != nil {
            logger.warning(
                "no --deposit-key-file: this node makes its own deposit key, so view grants deposited through other nodes will not open here"
            )
        }
        let tls = try self.tls.nodeTLS()
        let certified = tls?.identity?.name
        if let certified, let id, id != certified {
            throw ValidationError(
                "--id \(id) differs from the name in --cert (\(certified)): a node is its certificate")
        }
        let nodeID = try dataDir.map { try DataDirectory.nodeID(in: $0, requested: certified ?? id) } ?? certified ?? id
        var configuration = CloudNodeConfiguration(
            listen: listen, advertise: advertise, seeds: seeds?.addresses ?? [], nodeID: nodeID, tls: tls)
        configuration.capacity = capacity
        configuration.queueLimit = queue
        configuration.limits = limits
        configuration.cluster.chaosRate = chaos
        configuration.dataDirectory = dataDir
        configuration.depositKey = depositKey
        configuration.relayQuotas.bytesPerWindow = UInt64(relayMibPerHour) << 20
        configuration.mailbox.perRecipientBytes = mailboxMibPerRecipient << 20
        configuration.mailbox.perSenderBytes = mailboxMibPerSender << 20
        configuration.mailbox.totalBytes = mailboxMibTotal << 20
        configuration.mailbox.expiryMillis = UInt64(mailboxDays * 86_400_000)
        configuration.encryptStream.maxBytes = encryptMaxMib << 20
        configuration.encryptStream.maxSessions = encryptSessions
        configuration.metricsListen = metricsListen
        let node = CloudNode(configuration: configuration, logger: logger)
        if chaos > 0 { logger.warning("chaos mode: this node will go dark at random", metadata: ["rate": "\(chaos)"]) }
        if testServices { TestServices.register(on: node) }
        let address = try await node.start()
        // One line on standard output, written at once, for scripts and tests that start nodes.
        var lines = "node \(node.id) listening on \(address)\n"
        if let metrics = node.metricsAddress { lines += "metrics on http://\(metrics)/metrics\n" }
        FileHandle.standardOutput.write(Data(lines.utf8))
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [node], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// The cloud's deposit key file: 64 hex digits (whitespace around them ignored), readable by its
/// owner only.
enum DepositKeyFile {
    static func read(_ path: String) throws -> [UInt8] {
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: path)
        } catch {
            throw ValidationError("cannot read --deposit-key-file \(path): \(error.localizedDescription)")
        }
        if let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue, mode & 0o077 != 0 {
            throw ValidationError(
                "--deposit-key-file \(path) may be read by others (mode \(String(mode, radix: 8))); run chmod 600 \(path)"
            )
        }
        guard (attributes[.size] as? NSNumber)?.intValue ?? 0 <= 4096,
            let data = FileManager.default.contents(atPath: path)
        else { throw ValidationError("--deposit-key-file \(path) is not a small key file") }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let key = Hex.decode(text), key.count == 32 else {
            throw ValidationError("--deposit-key-file \(path) must hold 64 hex digits (32 bytes)")
        }
        return key
    }
}
