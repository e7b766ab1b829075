import ArgumentParser
import Distri
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

/// Options shared by the commands that talk to a cloud.
struct CloudOptions: ParsableArguments {
    @Option(name: .long, help: "Comma-separated addresses of the cloud's nodes (host:port,...).")
    var cloud: AddressList

    func validate() throws {
        if cloud.addresses.isEmpty { throw ValidationError("--cloud needs at least one host:port") }
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
