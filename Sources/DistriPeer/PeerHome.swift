import Distri
import DistriIdentity
import Foundation

/// Where a peer keeps its identity, its sealed images and their keys:
///
/// ```
/// HOME/            0700
///   peer.json      0600  name and public keys
///   signing.key    0600  Ed25519 private key (hex)
///   agreement.key  0600  X25519 private key (hex)
///   images/NAME.png 0600 sealed images
///   keys/NAME.key  0600  their keys
///   received/OWNER/NAME.png 0600 sealed images other peers sent (opened only through the cloud)
///   outbox.json    0600  sends waiting for their recipient to come online
///   sent.json      0600  what became of each send (delivered, left in the mailbox) and when
/// ```
///
/// HOME is `--home`, else `$DISTRI_PEER_HOME`, else `~/.distri/peers/NAME`.
public struct PeerHome: Sendable, Equatable {
    /// The home directory.
    public let path: String

    /// The home at `path`.
    public init(path: String) {
        self.path = path
    }

    /// The home as the flag, the environment and the peer name choose it. Without a flag, variable or
    /// name, the only peer under `~/.distri/peers`, if there is exactly one.
    public static func resolve(
        flag: String?, name: String?, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> PeerHome {
        if let flag, !flag.isEmpty { return PeerHome(path: expand(flag)) }
        if let env = environment["DISTRI_PEER_HOME"], !env.isEmpty { return PeerHome(path: expand(env)) }
        let base = peersDirectory(environment: environment)
        if let name {
            try PeerName.validate(name, what: "peer name")
            return PeerHome(path: (base as NSString).appendingPathComponent(name))
        }
        let existing =
            ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []).filter {
                SecureFiles.exists((base as NSString).appendingPathComponent("\($0)/peer.json"))
            }
        guard existing.count == 1 else {
            throw PeerError(
                existing.isEmpty
                    ? "no peer identity found in \(base); run `distri-peer init --name NAME` first"
                    : "several peers in \(base) (\(existing.sorted().joined(separator: ", "))); choose one with --name or --home"
            )
        }
        return PeerHome(path: (base as NSString).appendingPathComponent(existing[0]))
    }

    /// `~/.distri/peers` (or `$DISTRI_HOME/peers`).
    public static func peersDirectory(environment: [String: String]) -> String {
        (distriHome(environment: environment) as NSString).appendingPathComponent("peers")
    }

    /// `$DISTRI_HOME`, else `~/.distri`.
    public static func distriHome(environment: [String: String]) -> String {
        TLSFiles.home(environment: environment)
    }

    static func expand(_ path: String) -> String {
        (path as NSString).expandingTildeInPath
    }

    /// `peer.json`: the peer's name and public keys.
    public var recordFile: String { file("peer.json") }
    /// `signing.key`: the Ed25519 private key.
    public var signingKeyFile: String { file("signing.key") }
    /// `agreement.key`: the X25519 private key.
    public var agreementKeyFile: String { file("agreement.key") }
    /// `images/`: this peer's sealed images.
    public var imagesDirectory: String { file("images") }
    /// `keys/`: their keys.
    public var keysDirectory: String { file("keys") }

    /// `received/`: sealed images other peers sent.
    public var receivedDirectory: String { file("received") }
    /// `outbox.json`: sends waiting to be delivered.
    public var outboxFile: String { file("outbox.json") }
    /// What became of each send (delivered, left in the mailbox), for `distri-peer outbox`.
    public var sentFile: String { file("sent.json") }
    /// Where a large file being viewed is opened, until it is moved where it goes.
    public var openedDirectory: String { file("opened") }

    /// Where a sealed image `owner` sent is kept.
    public func receivedFile(owner: String, image: String) -> String {
        (receivedDirectory as NSString).appendingPathComponent("\(owner)/\(image).png")
    }

    /// Where this peer's sealed image `name` is kept.
    public func imageFile(_ name: String) -> String {
        (imagesDirectory as NSString).appendingPathComponent("\(name).png")
    }
    /// Where the key of this peer's image `name` is kept.
    public func keyFile(_ name: String) -> String { (keysDirectory as NSString).appendingPathComponent("\(name).key") }

    private func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
}
