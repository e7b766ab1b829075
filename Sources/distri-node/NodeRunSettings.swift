import ArgumentParser
import DistriCommandLine
import Logging

/// Every setting of `distri-node run`: its key (the flag's name, the configuration file's key,
/// `DISTRI_KEY` in the environment), kind, default and meaning. `run` and `config show` read them
/// through ``LayeredSettings``.
enum NodeRunSettings {
    static let specs: [SettingSpec] =
        [
            SettingSpec(
                "listen", .text, default: .text("127.0.0.1:7000"), "Address to listen on (port 0: any free port)."),
            SettingSpec(
                "advertise", .text,
                "Address clients and other nodes dial, if not the listen address; a wildcard listen (0.0.0.0) "
                    + "advertises the local address of the route to the seeds (logged)."),
            SettingSpec("seeds", .list, "Comma-separated addresses of nodes to join through."),
            SettingSpec("id", .text, "Stable node id (default: the certificate's name, else random)."),
            SettingSpec("capacity", .integer, default: .integer(64), "Tasks that may run at once."),
            SettingSpec(
                "queue", .integer, default: .integer(4096),
                "Tasks that may wait for a slot before the node answers busy."),
            SettingSpec("max-payload-mib", .integer, default: .integer(64), "Largest request or reply, in MiB."),
            SettingSpec(
                "data-dir", .text,
                "Directory for the DB replica's write-ahead log and the node's id (default: keep the DB in memory)."),
            SettingSpec(
                "deposit-key-file", .text,
                "File (mode 0600) holding the cloud's deposit key as 64 hex digits; every node of a cloud needs the same "
                    + "one (make one with `openssl rand -hex 32`). Default: a fresh key, which only suits a one-node cloud."
            ),
            SettingSpec(
                "relay-mib-per-hour", .integer, default: .integer(4096),
                "MiB each peer may send through this node's relay per hour (peers behind NAT receive through it)."),
            SettingSpec(
                "mailbox-mib-per-recipient", .integer, default: .integer(64),
                "MiB of sealed images the cloud's mailbox holds for one offline recipient (every node must agree)."),
            SettingSpec(
                "mailbox-mib-per-sender", .integer, default: .integer(64),
                "MiB one sender may have waiting in the cloud's mailbox, for all recipients."),
            SettingSpec(
                "mailbox-mib-total", .integer, default: .integer(256),
                "MiB the cloud's mailbox holds in all (each node keeps a replica)."),
            SettingSpec(
                "mailbox-days", .number, default: .number(7),
                "Days a mailbox delivery waits to be collected before it is deleted."),
            SettingSpec(
                "encrypt-max-mib", .integer, default: .integer(1024),
                "MiB of the largest file this node encrypts streamed (above 48 MiB)."),
            SettingSpec(
                "encrypt-sessions", .integer, default: .integer(4), "Streamed encryptions this node runs at once."),
            SettingSpec(
                "chaos", .number, default: .number(0),
                "Chaos mode: chance per second of going dark (dropping all traffic) for 0.5-3 s; 0 is off."),
            SettingSpec(
                "metrics-listen", .text,
                "Serve Prometheus metrics at http://HOST:PORT/metrics (plain HTTP; port 0: any free port)."),
            SettingSpec(
                "trace-propagation", .boolean, default: .boolean(false),
                "Carry W3C trace context through (a caller's traceparent goes on to executors and replicas) and record "
                    + "no spans, as OpenTelemetry with its sampler off; processes that export spans embed the node."),
            SettingSpec(
                "test-services", .boolean, default: .boolean(false),
                "Also serve the test services Spin, Sleep and GoDark (for load and fault tests)."),
            SettingSpec("ca", .text, "The cluster CA certificate (distri-node certs init)."),
            SettingSpec("cert", .text, "This node's certificate (distri-node certs node); its name is the node's id."),
            SettingSpec("key", .text, "This node's private key (mode 0600)."),
            SettingSpec(
                "insecure", .boolean, default: .boolean(false),
                "Plain TCP without TLS or authentication (debugging only; warns on every start)."),
        ] + LogSettings.specs(defaultLevel: .info)
}

/// The options of `distri-node run` and `distri-node config show`: every setting as an optional
/// flag (a flag given wins over the environment, the file and the default), and `--config`.
struct NodeRunOptions: ParsableArguments {
    private static let specs = NodeRunSettings.specs

    @Option(name: .long, help: ConfigurationFileHelp.help)
    var config: String?

    @Option(name: .long, help: specs.help("listen", valueName: "host:port")) var listen: String?
    @Option(name: .long, help: specs.help("advertise", valueName: "host:port")) var advertise: String?
    @Option(name: .long, help: specs.help("seeds", valueName: "host:port,...")) var seeds: String?
    @Option(name: .long, help: specs.help("id")) var id: String?
    @Option(name: .long, help: specs.help("capacity")) var capacity: Int?
    @Option(name: .long, help: specs.help("queue")) var queue: Int?
    @Option(name: .customLong("max-payload-mib"), help: specs.help("max-payload-mib")) var maxPayloadMiB: Int?
    @Option(name: .long, help: specs.help("data-dir", valueName: "dir")) var dataDir: String?
    @Option(name: .long, help: specs.help("deposit-key-file", valueName: "file")) var depositKeyFile: String?
    @Option(name: .long, help: specs.help("relay-mib-per-hour")) var relayMibPerHour: Int?
    @Option(name: .long, help: specs.help("mailbox-mib-per-recipient")) var mailboxMibPerRecipient: Int?
    @Option(name: .long, help: specs.help("mailbox-mib-per-sender")) var mailboxMibPerSender: Int?
    @Option(name: .long, help: specs.help("mailbox-mib-total")) var mailboxMibTotal: Int?
    @Option(name: .long, help: specs.help("mailbox-days")) var mailboxDays: Double?
    @Option(name: .long, help: specs.help("encrypt-max-mib")) var encryptMaxMib: Int?
    @Option(name: .long, help: specs.help("encrypt-sessions")) var encryptSessions: Int?
    @Option(name: .long, help: specs.help("chaos")) var chaos: Double?
    @Option(name: .long, help: specs.help("metrics-listen", valueName: "host:port")) var metricsListen: String?
    @Flag(name: .long, help: specs.help("trace-propagation")) var tracePropagation = false
    @Flag(name: .long, help: specs.help("test-services")) var testServices = false
    @Option(name: .long, help: specs.help("ca", valueName: "file")) var ca: String?
    @Option(name: .long, help: specs.help("cert", valueName: "file")) var cert: String?
    @Option(name: .long, help: specs.help("key", valueName: "file")) var key: String?
    @Flag(name: .long, help: specs.help("insecure")) var insecure = false
    @Option(name: .long, help: specs.help("log-level")) var logLevel: Logger.Level?
    @Option(name: .long, help: specs.help("log-format")) var logFormat: LogFormat?

    /// The flags given on the command line, by setting key.
    var given: [String: SettingValue] {
        let all: [(String, SettingValue?)] =
            [
                ("listen", listen.map(SettingValue.text)), ("advertise", advertise.map(SettingValue.text)),
                ("seeds", seeds.map { .list(SettingValue.items(of: $0)) }),
                ("id", id.map(SettingValue.text)), ("capacity", capacity.map(SettingValue.integer)),
                ("queue", queue.map(SettingValue.integer)),
                ("max-payload-mib", maxPayloadMiB.map(SettingValue.integer)),
                ("data-dir", dataDir.map(SettingValue.text)),
                ("deposit-key-file", depositKeyFile.map(SettingValue.text)),
                ("relay-mib-per-hour", relayMibPerHour.map(SettingValue.integer)),
                ("mailbox-mib-per-recipient", mailboxMibPerRecipient.map(SettingValue.integer)),
                ("mailbox-mib-per-sender", mailboxMibPerSender.map(SettingValue.integer)),
                ("mailbox-mib-total", mailboxMibTotal.map(SettingValue.integer)),
                ("mailbox-days", mailboxDays.map(SettingValue.number)),
                ("encrypt-max-mib", encryptMaxMib.map(SettingValue.integer)),
                ("encrypt-sessions", encryptSessions.map(SettingValue.integer)),
                ("chaos", chaos.map(SettingValue.number)),
                ("metrics-listen", metricsListen.map(SettingValue.text)),
                ("trace-propagation", tracePropagation ? .boolean(true) : nil),
                ("test-services", testServices ? .boolean(true) : nil), ("ca", ca.map(SettingValue.text)),
                ("cert", cert.map(SettingValue.text)), ("key", key.map(SettingValue.text)),
                ("insecure", insecure ? .boolean(true) : nil),
            ] + LogSettings.given(level: logLevel, format: logFormat)
        return Dictionary(uniqueKeysWithValues: all.compactMap { key, value in value.map { (key, $0) } })
    }

    /// The settings in force: flags, then the environment, then `--config`, then the defaults.
    func resolve() async throws -> ResolvedSettings {
        try await LayeredSettings.resolve(Self.specs, flags: given, configFile: config)
    }
}
