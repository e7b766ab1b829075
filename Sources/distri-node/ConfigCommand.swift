import ArgumentParser
import DistriCommandLine

/// `distri-node config`: the configuration `run` would use.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Show the configuration `distri-node run` would use.",
        subcommands: [Show.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Print every setting of `run` with its value and where it came from, then check it as `run` does.",
            discussion: """
                Takes `run`'s options and --config. A setting comes from its flag, else the environment \
                (DISTRI_ and its name in capitals, `_` for `-`), else the configuration file (with its line), \
                else its default. Exits 78 when `run` would refuse the configuration, naming the setting.
                """)

        @OptionGroup var options: NodeRunOptions
        @OptionGroup var jsonOutput: JSONOutputOptions

        func run() async throws {
            let settings = try await options.resolve()
            settings.show(json: jsonOutput)
            _ = try NodeRunPlan(settings)
        }
    }
}
