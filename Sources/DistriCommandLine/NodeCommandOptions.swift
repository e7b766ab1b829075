import ArgumentParser
import Distri
import Foundation
import Logging

/// Parses `host:port`.
extension NodeAddress: ExpressibleByArgument {
    public init?(argument: String) {
        self.init(argument)
    }
}

/// A comma-separated list of node addresses.
public struct AddressList: ExpressibleByArgument, Sendable {
    public var addresses: [NodeAddress]

    public init?(argument: String) {
        guard let parsed = NodeAddress.parseList(argument) else { return nil }
        addresses = parsed
    }
}

/// Options shared by the commands that talk to a cloud: found as `distri-peer` finds it
/// (``CloudLocator``: `--cloud`, else `$DISTRI_CLOUD`, else the cloud file).
public struct CloudOptions: ParsableArguments {
    public init() {}

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Addresses of the cloud's nodes; one is enough (default: $DISTRI_CLOUD, else ~/.distri/cloud).",
            valueName: "host:port,..."))
    public var cloud: String?

    @OptionGroup var tls: ClientTLSOptions

    /// Where the cloud is, and where that came from.
    public func location() throws -> CloudLocation {
        try CloudLocator.locate(flag: cloud)
    }

    /// A client of the cloud, over TLS unless --insecure.
    public func client(_ configuration: ClientConfiguration = .init()) throws -> Client {
        var configuration = configuration
        configuration.tls = try tls.clientTLS()
        return Client(nodes: try location().addresses, configuration: configuration)
    }
}

/// Logging options.
public struct LogOptions: ParsableArguments {
    public init() {}

    @Option(
        name: .long,
        help:
            "Log level: trace, debug, info, notice, warning, error or critical (default: $DISTRI_LOG_LEVEL, else info)."
    )
    public var logLevel: Logger.Level?

    @Option(name: .long, help: "Log format: text (lines for people) or json (one JSON object a line).")
    public var logFormat: LogFormat = .text

    public func validate() throws {
        if logLevel == nil, let text = ProcessInfo.processInfo.environment["DISTRI_LOG_LEVEL"],
            Logger.Level(rawValue: text) == nil
        {
            throw ValidationError(
                "$DISTRI_LOG_LEVEL is '\(text)': use trace, debug, info, notice, warning, error or critical")
        }
    }

    /// The level in force: the flag, else `$DISTRI_LOG_LEVEL`, else `info`.
    public var level: Logger.Level { Self.level(flag: logLevel, default: .info) }

    /// `flag`, else `$DISTRI_LOG_LEVEL`, else `fallback`.
    public static func level(flag: Logger.Level?, default fallback: Logger.Level) -> Logger.Level {
        flag ?? ProcessInfo.processInfo.environment["DISTRI_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
            ?? fallback
    }

    public func bootstrap() { bootstrapLogging(level: level, format: logFormat) }
}

/// Sends the process's logs to standard error at `level`, as text or JSON lines.
public func bootstrapLogging(level: Logger.Level, format: LogFormat = .text) {
    LoggingSystem.bootstrap { label in
        switch format {
        case .text:
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        case .json:
            var handler = JSONLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

extension LogFormat: ExpressibleByArgument {}

/// `one`, `majority` or `all`.
extension WriteConsistency: ExpressibleByArgument {}

/// `local` or `majority`.
extension ReadConsistency: ExpressibleByArgument {}
