import Distri
import DistriCommandLine
import DistriCore
import Logging

/// `distri-node run`'s settings checked and typed: every range and address as `run` needs it, each
/// refusal naming the setting, its value and where it came from (a flag, `DISTRI_…`, the file's
/// line). Reads no files: `config show` checks a configuration with it too.
struct NodeRunPlan {
    let settings: ResolvedSettings
    let listen: NodeAddress
    let advertise: NodeAddress?
    let seeds: [NodeAddress]
    let id: String?
    let dataDir: String?
    let depositKeyFile: String?
    let metricsListen: NodeAddress?
    let chaos: Double
    let testServices: Bool
    /// The TLS files, or nil for `insecure`.
    let tlsFiles: (ca: String, cert: String, key: String)?
    let logLevel: Logger.Level
    let logFormat: LogFormat

    init(_ settings: ResolvedSettings) throws {
        self.settings = settings
        func address(_ key: String) throws -> NodeAddress? {
            guard let text = settings.text(key) else { return nil }
            guard let address = NodeAddress(text) else { throw settings.invalid(key, "must be host:port") }
            return address
        }
        guard let listen = try address("listen") else { throw settings.invalid("listen", "must be host:port") }
        self.listen = listen
        advertise = try address("advertise")
        if let advertise, AdvertisedAddress.isWildcard(advertise.host) || advertise.port == 0 {
            throw settings.invalid("advertise", "must be an address others can dial")
        }
        seeds = try (settings.list("seeds") ?? []).map { text in
            guard let address = NodeAddress(text) else { throw settings.invalid("seeds", "must be host:port,...") }
            return address
        }
        id = settings.text("id")
        dataDir = settings.text("data-dir")
        depositKeyFile = settings.text("deposit-key-file")
        metricsListen = try address("metrics-listen")
        chaos = settings.number("chaos")
        testServices = settings.boolean("test-services")
        for (key, range) in [
            ("capacity", 1...1_000_000), ("queue", 0...10_000_000), ("max-payload-mib", 1...4096),
            ("mailbox-mib-per-recipient", 1...65536), ("mailbox-mib-per-sender", 1...65536),
            ("mailbox-mib-total", 1...65536), ("relay-mib-per-hour", 1...(1 << 30)), ("encrypt-max-mib", 48...65536),
            ("encrypt-sessions", 1...64),
        ] {
            try settings.require(
                range.contains(settings.integer(key)), key, "must be from \(range.lowerBound) to \(range.upperBound)")
        }
        try settings.require(
            (0.001...365).contains(settings.number("mailbox-days")), "mailbox-days", "must be from 0.001 to 365")
        try settings.require((0...1).contains(chaos), "chaos", "is a rate between 0 and 1 per second")
        let files = ["ca", "cert", "key"].compactMap { settings.text($0) }
        if settings.boolean("insecure") {
            try settings.require(files.isEmpty, "insecure", "takes no ca, cert or key")
            tlsFiles = nil
        } else {
            guard files.count == 3 else {
                throw CommandFailure.configuration(
                    "a node needs ca, cert and key (flags, DISTRI_CA/CERT/KEY or the configuration file), or insecure",
                    hint: "make them with `distri-node certs init` and `distri-node certs node --name NAME`")
            }
            tlsFiles = (files[0], files[1], files[2])
        }
        (logLevel, logFormat) = try settings.logging()
    }

    /// The node's configuration.
    func configuration(nodeID: String?, tls: ClusterTLS?, depositKey: [UInt8]?) -> CloudNodeConfiguration {
        var configuration = CloudNodeConfiguration(
            listen: listen, advertise: advertise, seeds: seeds, nodeID: nodeID, tls: tls)
        var limits = WireLimits.standard
        limits.maxMessageSize = settings.integer("max-payload-mib") << 20
        configuration.capacity = settings.integer("capacity")
        configuration.queueLimit = settings.integer("queue")
        configuration.limits = limits
        configuration.cluster.chaosRate = chaos
        configuration.dataDirectory = dataDir
        configuration.depositKey = depositKey
        configuration.relayQuotas.bytesPerWindow = UInt64(settings.integer("relay-mib-per-hour")) << 20
        configuration.mailbox.perRecipientBytes = settings.integer("mailbox-mib-per-recipient") << 20
        configuration.mailbox.perSenderBytes = settings.integer("mailbox-mib-per-sender") << 20
        configuration.mailbox.totalBytes = settings.integer("mailbox-mib-total") << 20
        configuration.mailbox.expiryMillis = UInt64(settings.number("mailbox-days") * 86_400_000)
        configuration.encryptStream.maxBytes = settings.integer("encrypt-max-mib") << 20
        configuration.encryptStream.maxSessions = settings.integer("encrypt-sessions")
        configuration.metricsListen = metricsListen
        if settings.boolean("trace-propagation") { configuration.tracer = PropagatingTracer() }
        return configuration
    }
}
