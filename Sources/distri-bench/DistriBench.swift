import ArgumentParser
import DistriCommandLine

/// `distri-bench`: measures a Distri cloud and reruns the original experiments, apart from the node
/// tool so that `distri-node` carries neither the load drivers nor the peer library.
@main
struct DistriBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distri-bench",
        abstract: "Measure a Distri cloud, tour it, and rerun the original experiments.",
        discussion: """
            Without --cloud, each measurement starts a local cloud (`distri-node local`, found beside this tool) \
            as a child process and stops it afterwards. Figures are ratios against a baseline measured in the \
            same run (BENCHMARKS.md).
            """,
        version: DistriVersion.current,
        subcommands: [
            BenchCallsCommand.self, BenchDBCommand.self, BenchEncryptCommand.self, DemoCommand.self,
            GossipRateCommand.self, ExampleCommand.self, SweepCommand.self,
        ],
        defaultSubcommand: BenchCallsCommand.self
    )

    /// Errors print as sentences with hints and documented exit codes (``UserFacingError``).
    static func main() async {
        await mainWithUserFacingErrors()
    }
}
