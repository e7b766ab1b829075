import Distri
import DistriCommandLine
import Logging

/// `distri-peer serve`'s settings checked and typed, each refusal naming the setting, its value and
/// where it came from. Reads no files: `config show` checks a configuration with it too.
struct ServePlan {
    let settings: ResolvedSettings
    let name: String?
    let home: String?
    let listen: NodeAddress
    let advertise: String?
    let refresh: Double
    let noRelay: Bool
    let onReceive: String?
    let metricsListen: NodeAddress?
    let logLevel: Logger.Level
    let logFormat: LogFormat

    init(_ settings: ResolvedSettings) throws {
        self.settings = settings
        name = settings.text("name")
        home = settings.text("home")
        guard let listen = NodeAddress(settings.text("listen") ?? "") else {
            throw settings.invalid("listen", "must be host:port")
        }
        self.listen = listen
        advertise = settings.text("advertise")
        if let advertise {
            guard let address = NodeAddress(advertise), address.port != 0, !AdvertisedAddress.isWildcard(address.host)
            else { throw settings.invalid("advertise", "must be a dialable host:port") }
        }
        refresh = settings.number("refresh")
        try settings.require((0.05...3600).contains(refresh), "refresh", "must be between 0.05 and 3600 seconds")
        noRelay = settings.boolean("no-relay")
        onReceive = settings.text("on-receive")
        metricsListen = try settings.text("metrics-listen").map { text in
            guard let address = NodeAddress(text) else { throw settings.invalid("metrics-listen", "must be host:port") }
            return address
        }
        if settings.boolean("insecure"), settings.text("ca") != nil {
            throw settings.invalid("insecure", "takes no ca")
        }
        (logLevel, logFormat) = try settings.logging()
    }

    /// A client of the cloud (``CloudLocator``: the setting, else the cloud file), over TLS checked
    /// against the cluster's authority unless `insecure`.
    func client() throws -> Client {
        let insecure = settings.boolean("insecure")
        if insecure { printWarning(TLSFiles.insecureWarning) }
        let location = try CloudLocator.locate(flag: settings.list("cloud")?.joined(separator: ","))
        return Client(
            nodes: location.addresses,
            configuration: ClientConfiguration(
                timeout: .seconds(30), tls: try TLSFiles.clientTLS(authority: settings.text("ca"), insecure: insecure)))
    }
}
