import ArgumentParser
import DistriCommandLine
import DistriPeer

/// `distri-peer init --name alice`.
struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Make a peer's signing (Ed25519) and key-agreement (X25519) key pairs in its home.",
        discussion:
            "The home is --home, else $DISTRI_PEER_HOME, else ~/.distri/peers/NAME: a 0700 directory of 0600 files.")

    @Option(name: .long, help: "The peer's name: 1 to 64 letters, digits, '.', '_' or '-'.")
    var name: String

    @Option(name: .long, help: ArgumentHelp("The peer's home directory.", valueName: "dir"))
    var home: String?

    @Flag(name: .long, help: "Replace an existing identity in that home.")
    var force = false

    @OptionGroup var jsonOutput: JSONOutputOptions
    var json: Bool { jsonOutput.enabled }

    func run() async throws {
        let home = try PeerHome.resolve(flag: home, name: name)
        let identity = try PeerIdentity.create(name: name, home: home, force: force)
        if json {
            printLine(identity.publicDescription.outputText)
        } else {
            printLine("peer \(identity.name) created in \(home.path)")
            printLine("signing key (Ed25519):   \(identity.signing.publicKey.hex)")
        }
    }
}
