import ArgumentParser
import DistriCommandLine

/// `distri-node`: runs and inspects Distri cloud nodes.
@main
struct DistriNode: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distri-node",
        abstract: "Run and inspect Distri cloud nodes.",
        discussion: """
            Start a local cloud of three nodes with `distri-node local`, or one node with `distri-node run`. \
            `distri-node demo` shows a cloud at work from start to finish; `distri-node db` works its document DB.
            """,
        version: DistriVersion.current,
        subcommands: [
            RunCommand.self, LocalCommand.self, StatsCommand.self, MembersCommand.self, GossipRateCommand.self,
            DBCommand.self, BenchCommand.self, DemoCommand.self, CertsCommand.self, ExampleCommand.self,
            SweepCommand.self,
        ]
    )

    /// Errors print as sentences with hints and documented exit codes (``UserFacingError``).
    static func main() async {
        await mainWithUserFacingErrors()
    }
}
