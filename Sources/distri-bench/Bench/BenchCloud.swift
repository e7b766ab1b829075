import ArgumentParser
import Distri
import DistriCommandLine

/// The cloud a benchmark measures: `--cloud` addresses, or a `distri-node local` child process.
struct BenchCloud: ParsableArguments {
    @Option(name: .long, help: "Comma-separated node addresses; default: start a local cloud.")
    var cloud: AddressList?

    @Option(name: .long, help: "Nodes of the local cloud started when --cloud is not given.")
    var nodes = 3

    @OptionGroup var tls: ClientTLSOptions

    /// A cloud to measure, ready for clients.
    struct Target {
        var addresses: [NodeAddress]
        var configuration: ClientConfiguration
        /// The local cloud started for the run (stop it afterwards), nil for `--cloud`.
        var child: LocalCloudProcess?
    }

    /// The given cloud, or a fresh local child (TLS unless `--insecure`) with `extraArguments`.
    func open(extraArguments: [String] = []) throws -> Target {
        if let cloud {
            return Target(addresses: cloud.addresses, configuration: ClientConfiguration(tls: try tls.clientTLS()))
        }
        return try Self.startLocal(nodes: nodes, insecure: tls.insecure, extraArguments: extraArguments)
    }

    /// A local child cloud of `nodes` nodes.
    static func startLocal(nodes: Int, insecure: Bool, extraArguments: [String] = []) throws -> Target {
        let child = try LocalCloudProcess.start(nodes: nodes, insecure: insecure, extraArguments: extraArguments)
        return Target(addresses: child.addresses, configuration: ClientConfiguration(tls: child.tls), child: child)
    }
}
