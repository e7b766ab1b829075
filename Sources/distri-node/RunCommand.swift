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

    @OptionGroup var options: NodeRunOptions

    func run() async throws {
        let plan = try NodeRunPlan(try await options.resolve())
        bootstrapLogging(level: plan.logLevel, format: plan.logFormat)
        let logger = Logger(label: "distri.node")
        if let file = plan.settings.configFile { logger.info("configuration", metadata: ["file": "\(file)"]) }
        let depositKey = try plan.depositKeyFile.map { try DepositKeyFile.read($0) }
        if depositKey == nil, !plan.seeds.isEmpty {
            logger.warning(
                "no deposit-key-file: this node makes its own deposit key, so view grants deposited through other nodes will not open here"
            )
        }
        let tls: ClusterTLS?
        if let files = plan.tlsFiles {
            tls = try ClusterTLS.load(authority: files.ca, certificate: files.cert, key: files.key)
        } else {
            printWarning(TLSFiles.insecureWarning)
            tls = nil
        }
        let certified = tls?.identity?.name
        if let certified, let id = plan.id, id != certified {
            throw plan.settings.invalid(
                "id", "differs from the name in the certificate (\(certified)): a node is its certificate")
        }
        let nodeID =
            try plan.dataDir.map { try DataDirectory.nodeID(in: $0, requested: certified ?? plan.id) } ?? certified
            ?? plan.id
        let node = CloudNode(
            configuration: plan.configuration(nodeID: nodeID, tls: tls, depositKey: depositKey), logger: logger)
        if plan.chaos > 0 {
            logger.warning("chaos mode: this node will go dark at random", metadata: ["rate": "\(plan.chaos)"])
        }
        if plan.testServices { TestServices.register(on: node) }
        // Metrics that libraries record through swift-metrics go to this node's /metrics too.
        if plan.metricsListen != nil { node.bootstrapProcessMetrics() }
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
            throw CommandFailure.configuration("cannot read deposit-key-file \(path): \(error.localizedDescription)")
        }
        if let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue, mode & 0o077 != 0 {
            throw CommandFailure.configuration(
                "deposit-key-file \(path) may be read by others (mode \(String(mode, radix: 8))); run chmod 600 \(path)"
            )
        }
        guard (attributes[.size] as? NSNumber)?.intValue ?? 0 <= 4096,
            let data = FileManager.default.contents(atPath: path)
        else { throw CommandFailure.configuration("deposit-key-file \(path) is not a small key file") }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let key = Hex.decode(text), key.count == 32 else {
            throw CommandFailure.configuration("deposit-key-file \(path) must hold 64 hex digits (32 bytes)")
        }
        return key
    }
}
