import ArgumentParser
import DistriCommandLine

/// `distri-peer`: a peer of the Distri cloud.
@main
struct DistriPeerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distri-peer",
        abstract: "A peer of the Distri cloud: its identity, its daemon, its images.",
        discussion: """
            Make an identity with `distri-peer init --name alice`, run the daemon with `distri-peer serve`, \
            see who is online with `distri-peer list peers` and what was published with `distri-peer list images`, encrypt an image with `distri-peer encrypt image.png`, send it with \
            `distri-peer send image.png --to bob --views 3`, and view what others sent with \
            `distri-peer view image.png --from alice`. Ask for an image with `distri-peer request image --from alice`, \
            see requests and grants with `distri-peer inbox`, answer with `distri-peer grant image --to bob` or `reject`. \
            The cloud is found through --cloud, else $DISTRI_CLOUD, else the file ~/.distri/cloud that \
            `distri-node local` writes.
            """,
        version: DistriVersion.current,
        subcommands: [
            InitCommand.self, ServeCommand.self, ListCommand.self, EncryptCommand.self, SendCommand.self,
            ViewCommand.self, RequestCommand.self, InboxCommand.self, GrantCommand.self, RejectCommand.self,
            PermissionsCommand.self, OutboxCommand.self, ConfigCommand.self,
        ]
    )

    /// Errors print as sentences with hints and documented exit codes (``UserFacingError``).
    static func main() async {
        await mainWithUserFacingErrors()
    }
}
