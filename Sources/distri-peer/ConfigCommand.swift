import ArgumentParser
import DistriCommandLine

/// `distri-peer config`: the configuration `serve` would use.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Show the configuration `distri-peer serve` would use.",
        subcommands: [Show.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Print every setting of `serve` with its value and where it came from, then check it as `serve` does.",
            discussion: """
                Takes `serve`'s options and --config. A setting comes from its flag, else the environment \
                (DISTRI_ and its name in capitals, `_` for `-`; the home is DISTRI_PEER_HOME), else the \
                configuration file (with its line), else its default. Exits 78 when `serve` would refuse the \
                configuration, naming the setting.
                """)

        @OptionGroup var options: ServeOptions
        @OptionGroup var jsonOutput: JSONOutputOptions

        func run() async throws {
            let settings = try await options.resolve()
            settings.show(json: jsonOutput)
            _ = try ServePlan(settings)
        }
    }
}
