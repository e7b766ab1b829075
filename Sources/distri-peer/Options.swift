import ArgumentParser
import Distri
import DistriCommandLine
import DistriCore
import DistriPeer
import Foundation
import Logging
import Synchronization

/// Which peer: `--home`, else `$DISTRI_PEER_HOME`, else `~/.distri/peers/NAME`.
struct PeerOptions: ParsableArguments {
    @Option(name: .long, help: "The peer's name (its home is ~/.distri/peers/NAME).")
    var name: String?

    @Option(
        name: .long, help: ArgumentHelp("The peer's home directory (overrides $DISTRI_PEER_HOME).", valueName: "dir"))
    var home: String?

    func resolveHome() throws -> PeerHome {
        try PeerHome.resolve(flag: home, name: name)
    }

    func loadIdentity() throws -> PeerIdentity {
        try PeerIdentity.load(from: try resolveHome())
    }
}

/// Where the cloud is.
struct CloudOption: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Comma-separated addresses of the cloud's nodes (default: $DISTRI_CLOUD, else ~/.distri/cloud).",
            valueName: "host:port,..."))
    var cloud: String?

    @OptionGroup var tls: ClientTLSOptions

    /// Where the cloud is (``CloudLocator``), and where that came from.
    func location() throws -> CloudLocation {
        try CloudLocator.locate(flag: cloud)
    }

    /// A client of the cloud, over TLS checked against the cluster's authority unless --insecure.
    func client() throws -> Client {
        Client(
            nodes: try location().addresses,
            configuration: ClientConfiguration(timeout: .seconds(30), tls: try tls.clientTLS()))
    }
}

/// Logging options of the peer daemon (warnings by default: it runs beside a person's work).
struct PeerLogOptions: ParsableArguments {
    @Option(
        name: .long,
        help:
            "Log level: trace, debug, info, notice, warning, error or critical (default: $DISTRI_LOG_LEVEL, else warning)."
    )
    var logLevel: Logger.Level?

    @Option(name: .long, help: "Log format: text (lines for people) or json (one JSON object a line).")
    var logFormat: LogFormat = .text

    func bootstrap() {
        bootstrapLogging(level: LogOptions.level(flag: logLevel, default: .warning), format: logFormat)
    }
}

/// Runs `body` with a client of the cloud, shutting the client down afterwards.
func withClient<T>(_ option: CloudOption, _ body: (Client) async throws -> T) async throws -> T {
    let client = try option.client()
    do {
        let result = try await body(client)
        await client.shutdown()
        return result
    } catch {
        await client.shutdown()
        throw (try? option.location())?.explain(error) ?? error
    }
}

/// Prints `rows` as a table (the first row is the header) that fits 100 columns, long cells cut with an
/// ellipsis.
func printTable(_ rows: [[String]]) {
    guard let headers = rows.first else { return }
    printLine(TextTable.render(headers: headers, rows: Array(rows.dropFirst())))
}

/// Times a transfer from its first progress report (the recipient's answer to the empty first call,
/// when the first chunk goes out) to the one that reports the whole image held (sent only once the
/// recipient has checked it against the grant's digest, synced it and put it in place), and forwards
/// each report to a progress bar.
final class TransferTiming: Sendable {
    private let state = Mutex<
        (first: ContinuousClock.Instant?, last: ContinuousClock.Instant?, start: Int, total: Int)
    >(
        (nil, nil, 0, 0))

    /// A progress callback that records the timing, then calls `bar`.
    func progress(then bar: DeliveryProgress?) -> DeliveryProgress {
        { held, total in
            let now = ContinuousClock.now
            self.state.withLock { state in
                if state.first == nil {
                    state.first = now
                    state.start = held
                }
                if held >= total, state.last == nil { state.last = now }
                state.total = total
            }
            try bar?(held, total)
        }
    }

    /// `{"bytes", "seconds", "bytesPerSecond"}` of the bytes that travelled, when any did.
    var json: JSONValue? {
        state.withLock { state in
            guard let first = state.first, let last = state.last, state.total > state.start else { return nil }
            let seconds =
                Double((last - first).components.attoseconds) / 1e18 + Double((last - first).components.seconds)
            let bytes = state.total - state.start
            return .object([
                "bytes": .number(Double(bytes)), "seconds": .number(seconds),
                "bytesPerSecond": .number(seconds > 0 ? (Double(bytes) / seconds).rounded() : 0),
            ])
        }
    }
}

/// The `send` and `grant` outcome, as one line or as JSON (with the transfer's timing, when given).
func printSendOutcome(
    _ outcome: PeerSharing.SendOutcome, image: String, to recipient: String, views: UInt64, json: Bool,
    timing: TransferTiming? = nil
) {
    var fields: [String: JSONValue] = [
        "image": .string(image), "to": .string(recipient), "views": .number(Double(views)),
    ]
    if let transfer = timing?.json { fields["transfer"] = transfer }
    switch outcome {
    case .delivered(let path):
        fields["status"] = "delivered"
        switch path {
        case .direct(let address):
            fields["path"] = "direct"
            fields["address"] = .string(address)
        case .relayed(let node):
            fields["path"] = "relayed"
            fields["node"] = .string(node)
        }
        if !json { printLine("sent \(image) to \(recipient) \(path) with \(views) view\(views == 1 ? "" : "s")") }
    case .leftInMailbox(let reason):
        fields["status"] = "mailbox"
        fields["path"] = "mailbox"
        fields["reason"] = .string(reason)
        if !json {
            printLine(
                "\(recipient) is offline: \(image) waits for \(recipient) in the cloud's mailbox (sealed; \(views) view\(views == 1 ? "" : "s")); you need not stay online"
            )
        }
    case .queued(let reason):
        fields["status"] = "queued"
        fields["reason"] = .string(reason)
        if !json {
            printLine("not delivered: \(UserFacingError.readable(reason))")
            printLine("queued in the outbox (distri-peer outbox); distri-peer serve retries it")
        }
    }
    if json { printLine(JSONValue.object(fields).outputText) }
}

/// A progress bar on standard error (when it is a terminal) for transfers over 256 KiB: the share
/// done, the megabytes, the rate since the first report and the time left at that rate.
func progressBar(enabled: Bool) -> DeliveryProgress? {
    guard enabled, isatty(STDERR_FILENO) != 0 else { return nil }
    let start = FirstReport()
    return { held, total in
        guard total > 256 << 10 else { return }
        let now = ContinuousClock.now
        let first = start.state.withLock { first in
            if first == nil { first = (now, held) }
            return first!
        }
        let seconds = (now - first.instant) / .seconds(1)
        let rate = seconds > 0.2 ? Double(held - first.held) / seconds : 0
        let left = rate > 0 ? String(format: "  %.1f MB/s  %.0fs left", rate / 1e6, Double(total - held) / rate) : ""
        let width = 30
        let filled = total == 0 ? width : held * width / total
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = String(
            format: "\r[%@] %3d%%  %.1f of %.1f MB", bar, total == 0 ? 100 : held * 100 / total,
            Double(held) / 1e6, Double(total) / 1e6)
        FileHandle.standardError.write(Data((line + left + "\u{1B}[K" + (held >= total ? "\n" : "")).utf8))
    }
}

/// When a progress bar's first report came, and how much was done then.
private final class FirstReport: Sendable {
    let state = Mutex<(instant: ContinuousClock.Instant, held: Int)?>(nil)
}

/// Runs `body` with this peer's sharing front end on the cloud.
func withSharing<T>(
    _ peer: PeerOptions, _ cloud: CloudOption, _ body: (PeerSharing) async throws -> T
) async throws -> T {
    let identity = try peer.loadIdentity()
    return try await withClient(cloud) { client in
        try await body(PeerSharing(identity: identity, cloud: PeerCloud(client: client)))
    }
}
