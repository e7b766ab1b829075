import ArgumentParser
import DistriCommandLine
import Logging

/// Every setting of `distri-peer serve`: its key (the flag's name, the configuration file's key,
/// `DISTRI_KEY` in the environment; the home is `DISTRI_PEER_HOME`, as for every command), kind,
/// default and meaning.
enum ServeSettings {
    static let specs: [SettingSpec] =
        [
            SettingSpec("name", .text, "The peer's name (its home is ~/.distri/peers/NAME)."),
            SettingSpec("home", .text, environment: "DISTRI_PEER_HOME", "The peer's home directory."),
            SettingSpec(
                "cloud", .list,
                "Comma-separated addresses of the cloud's nodes (default: the cloud file ~/.distri/cloud)."),
            SettingSpec("ca", .text, "The cluster CA certificate (default: the local cloud's ~/.distri/cloud.ca.pem)."),
            SettingSpec(
                "insecure", .boolean, default: .boolean(false),
                "Plain TCP without TLS, for a cloud started with --insecure (debugging only)."),
            SettingSpec(
                "listen", .text, default: .text("127.0.0.1:0"),
                "Address to listen on for other peers (port 0: any free port)."),
            SettingSpec(
                "advertise", .text,
                "Address other peers dial, if not the listen address (a NAT's forwarded port, a DNS name); "
                    + "a wildcard listen advertises the address of the route to the cloud."),
            SettingSpec("refresh", .number, default: .number(5), "Seconds between refreshes of the record (lastSeen)."),
            SettingSpec(
                "no-relay", .boolean, default: .boolean(false),
                "Keep no relay link: peers that cannot dial this one leave deliveries in the cloud's mailbox instead."),
            SettingSpec(
                "on-receive", .text,
                "A shell command to run for each image that arrives, with DISTRI_SENDER, DISTRI_IMAGE and DISTRI_FILE set."
            ),
            SettingSpec(
                "metrics-listen", .text,
                "Serve the daemon's Prometheus metrics at http://HOST:PORT/metrics (plain HTTP; port 0: any free port)."
            ),
        ] + LogSettings.specs(defaultLevel: .warning)
}

/// The options of `distri-peer serve` and `distri-peer config show`: every setting as an optional
/// flag, and `--config`.
struct ServeOptions: ParsableArguments {
    private static let specs = ServeSettings.specs

    @Option(name: .long, help: ConfigurationFileHelp.help) var config: String?
    @Option(name: .long, help: specs.help("name")) var name: String?
    @Option(name: .long, help: specs.help("home", valueName: "dir")) var home: String?
    @Option(name: .long, help: specs.help("cloud", valueName: "host:port,...")) var cloud: String?
    @Option(name: .long, help: specs.help("ca", valueName: "file")) var ca: String?
    @Flag(name: .long, help: specs.help("insecure")) var insecure = false
    @Option(name: .long, help: specs.help("listen", valueName: "host:port")) var listen: String?
    @Option(name: .long, help: specs.help("advertise", valueName: "host:port")) var advertise: String?
    @Option(name: .long, help: specs.help("refresh")) var refresh: Double?
    @Flag(name: .long, help: specs.help("no-relay")) var noRelay = false
    @Option(name: .long, help: specs.help("on-receive", valueName: "command")) var onReceive: String?
    @Option(name: .long, help: specs.help("metrics-listen", valueName: "host:port")) var metricsListen: String?
    @Option(name: .long, help: specs.help("log-level")) var logLevel: Logger.Level?
    @Option(name: .long, help: specs.help("log-format")) var logFormat: LogFormat?

    /// The flags given on the command line, by setting key.
    var given: [String: SettingValue] {
        let all: [(String, SettingValue?)] =
            [
                ("name", name.map(SettingValue.text)), ("home", home.map(SettingValue.text)),
                ("cloud", cloud.map { .list(SettingValue.items(of: $0)) }), ("ca", ca.map(SettingValue.text)),
                ("insecure", insecure ? .boolean(true) : nil), ("listen", listen.map(SettingValue.text)),
                ("advertise", advertise.map(SettingValue.text)), ("refresh", refresh.map(SettingValue.number)),
                ("no-relay", noRelay ? .boolean(true) : nil), ("on-receive", onReceive.map(SettingValue.text)),
                ("metrics-listen", metricsListen.map(SettingValue.text)),
            ] + LogSettings.given(level: logLevel, format: logFormat)
        return Dictionary(uniqueKeysWithValues: all.compactMap { key, value in value.map { (key, $0) } })
    }

    /// The settings in force: flags, then the environment, then `--config`, then the defaults.
    func resolve() async throws -> ResolvedSettings {
        try await LayeredSettings.resolve(Self.specs, flags: given, configFile: config)
    }
}
