import ArgumentParser
import DistriCommandLine

/// `distri-node`: runs and inspects Distri cloud nodes.
@main
struct DistriNode: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distri-node",
        abstract: "Run and inspect Distri cloud nodes.",
        discussion: """
            Start a local cloud of three nodes with `distri-node local`, or one node with `distri-node run`; \
            `distri-node db` works its document DB. Benchmarks, the tour and the original experiments are in \
            `distri-bench`.
            """,
        version: DistriVersion.current,
        subcommands: [
            RunCommand.self, LocalCommand.self, StatsCommand.self, MembersCommand.self, DBCommand.self,
            CertsCommand.self, ConfigCommand.self,
        ]
    )

    /// Errors print as sentences with hints and documented exit codes (``UserFacingError``).
    static func main() async {
        await mainWithUserFacingErrors()
    }
}
