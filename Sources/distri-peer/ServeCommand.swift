import ArgumentParser
import Distri
import DistriCommandLine
import DistriPeer
import Foundation
import Logging
import ServiceLifecycle

/// `distri-peer serve`.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the peer daemon: listen for other peers and keep this peer's record in the cloud fresh.",
        discussion: """
            Prints `peer NAME listening on HOST:PORT` once registered, then whether the cloud could dial \
            the advertised address (`reachable: yes` or `reachable: no (peers deliver through the cloud's relay)`). \
            Keeps a relay link to one cloud node (another when it fails) and collects the mailbox. \
            Runs until SIGINT or SIGTERM.
            """)

    @OptionGroup var options: ServeOptions

    func run() async throws {
        let plan = try ServePlan(try await options.resolve())
        bootstrapLogging(level: plan.logLevel, format: plan.logFormat)
        let logger = Logger(label: "distri.peer")
        let identity = try PeerIdentity.load(from: try PeerHome.resolve(flag: plan.home, name: plan.name))
        let address = plan.listen
        let metricsAddress = plan.metricsListen
        let advertise = plan.advertise
        let onReceive = plan.onReceive
        let client = try plan.client()
        let daemon = PeerDaemon(
            identity: identity, cloud: PeerCloud(client: client),
            configuration: .init(
                host: address.host, port: address.port, advertise: advertise.map { [$0] } ?? [],
                refreshMillis: UInt64(plan.refresh * 1000), keepsRelayLink: !plan.noRelay,
                describeError: { error in
                    let words = UserFacingError(error)
                    return words.hint.map { "\(words.message) (hint: \($0))" } ?? words.message
                }),
            logger: logger,
            onReceive: { [onReceive] image in
                printLine("received \(image.image) from \(image.owner) (\(image.bytes) bytes): \(image.file)")
                if let onReceive { ReceiveHook.run(onReceive, for: image, logger: logger) }
            })
        do {
            let bound = try await daemon.start()
            printLine("peer \(identity.name) listening on \(bound)")
            let endpoint = daemon.endpoint
            var metrics: MetricsEndpoint?
            if let metricsAddress {
                metrics = try await MetricsEndpoint.serve(metricsAddress) { endpoint.stats() }
                printLine("metrics on \(metrics?.url ?? "")")
            }
            if daemon.advertised != [bound.description] {
                printLine("advertised as \(daemon.advertised.joined(separator: ","))")
            }
            switch daemon.reachable {
            case true?: printLine("reachable: yes")
            case false?: printLine("reachable: no (peers deliver through the cloud's relay)")
            case nil: printLine("reachable: unknown (the cloud's check failed; see the log)")
            }
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: [daemon], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
            metrics?.close()
        } catch {
            await client.shutdown()
            throw error
        }
        await client.shutdown()
    }
}

/// Runs `serve --on-receive`'s command through `/bin/sh -c`, not waiting for it; a failure is logged.
enum ReceiveHook {
    static func run(_ command: String, for image: ReceivedImage, logger: Logger) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        var environment = ProcessInfo.processInfo.environment
        environment["DISTRI_SENDER"] = image.owner
        environment["DISTRI_IMAGE"] = image.image
        environment["DISTRI_FILE"] = image.file
        process.environment = environment
        process.terminationHandler = { finished in
            if finished.terminationStatus != 0 {
                logger.warning(
                    "the --on-receive command failed",
                    metadata: ["status": "\(finished.terminationStatus)", "image": "\(image.image)"])
            }
        }
        do {
            try process.run()
        } catch {
            logger.warning("the --on-receive command could not start", metadata: ["error": "\(error)"])
        }
    }
}
