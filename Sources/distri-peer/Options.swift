import ArgumentParser
import Distri
import DistriPeer
import Foundation
import Logging

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

    func client() throws -> Client {
        Client(nodes: try CloudLocator.resolve(flag: cloud), configuration: ClientConfiguration(timeout: .seconds(30)))
    }
}

/// Logging options.
struct LogOptions: ParsableArguments {
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .warning

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

/// Writes a line to standard output at once (a parent reading a pipe sees it).
func printLine(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
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
        throw error
    }
}
