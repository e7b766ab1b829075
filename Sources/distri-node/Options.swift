import ArgumentParser
import Distri
import DistriCommandLine
import Foundation
import Logging

/// Parses `host:port`.
extension NodeAddress: ExpressibleByArgument {
    public init?(argument: String) {
        self.init(argument)
    }
}

/// A comma-separated list of node addresses.
struct AddressList: ExpressibleByArgument {
    var addresses: [NodeAddress]

    init?(argument: String) {
        guard let parsed = NodeAddress.parseList(argument) else { return nil }
        addresses = parsed
    }
}

/// Options shared by the commands that talk to a cloud: found as `distri-peer` finds it
/// (``CloudLocator``: `--cloud`, else `$DISTRI_CLOUD`, else the cloud file).
struct CloudOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Addresses of the cloud's nodes; one is enough (default: $DISTRI_CLOUD, else ~/.distri/cloud).",
            valueName: "host:port,..."))
    var cloud: String?

    @OptionGroup var tls: ClientTLSOptions

    /// Where the cloud is, and where that came from.
    func location() throws -> CloudLocation {
        try CloudLocator.locate(flag: cloud)
    }

    /// A client of the cloud, over TLS unless --insecure.
    func client(_ configuration: ClientConfiguration = .init()) throws -> Client {
        var configuration = configuration
        configuration.tls = try tls.clientTLS()
        return Client(nodes: try location().addresses, configuration: configuration)
    }
}

/// TLS of a node: the cluster CA and the node's certificate and key, or --insecure.
struct NodeTLSOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The cluster CA certificate (distri-node certs init).", valueName: "file"))
    var ca: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "This node's certificate (distri-node certs node); its name is the node's id.", valueName: "file"))
    var cert: String?

    @Option(name: .long, help: ArgumentHelp("This node's private key (mode 0600).", valueName: "file"))
    var key: String?

    @Flag(name: .long, help: "Plain TCP without TLS or authentication (debugging only; warns on every start).")
    var insecure = false

    func validate() throws {
        let given = [ca, cert, key].compactMap { $0 }.count
        if insecure, given > 0 { throw ValidationError("--insecure takes no --ca, --cert or --key") }
        if !insecure, given != 3 {
            throw ValidationError(
                "a node needs --ca, --cert and --key (make them with `distri-node certs init` and `distri-node certs node --name NAME`), or --insecure"
            )
        }
    }

    /// The node's TLS; nil with --insecure (after the warning).
    func nodeTLS() throws -> ClusterTLS? {
        guard let ca, let cert, let key else {
            printWarning(TLSFiles.insecureWarning)
            return nil
        }
        return try ClusterTLS.load(authority: ca, certificate: cert, key: key)
    }
}

/// Logging options.
struct LogOptions: ParsableArguments {
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    func bootstrap() {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// `one`, `majority` or `all`.
extension WriteConsistency: ExpressibleByArgument {}

/// `local` or `majority`.
extension ReadConsistency: ExpressibleByArgument {}
