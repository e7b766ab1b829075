import ArgumentParser
import DistriCommandLine
import DistriCore
import DistriPeer
import Foundation

/// `distri-peer list ...`.
struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List what the cloud knows.", subcommands: [PeersCommand.self])
}

/// `distri-peer list peers`.
struct PeersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peers",
        abstract: "Every registered peer: online, offline, or unverified when its record's signature does not verify.",
        discussion: "A peer is online when its record was signed within three refresh intervals.")

    @OptionGroup var cloud: CloudOption

    @Option(name: .long, help: "The peers' refresh interval in seconds (online: seen within three of them).")
    var refresh: Double = 5

    @Flag(name: .long, help: "Print a JSON array.")
    var json = false

    func run() async throws {
        let refreshMillis = UInt64(max(0.05, refresh) * 1000)
        let peers = try await withClient(cloud) { client in
            try await PeerCloud(client: client).peers(refreshMillis: refreshMillis)
        }
        if json {
            printLine(JSONValue.array(peers.map(\.json)).jsonText)
            return
        }
        if peers.isEmpty {
            printLine("no peers registered")
            return
        }
        let now = Date()
        var lines = [["NAME", "STATUS", "ADDRESSES", "REACHABLE", "LAST SEEN"]]
        for peer in peers {
            let seen = peer.lastSeen.map { millis -> String in
                let ago = now.timeIntervalSince1970 - Double(millis) / 1000
                return ago < 0 ? "in the future" : String(format: "%.1fs ago", ago)
            }
            lines.append([
                peer.name, peer.status.rawValue, peer.addresses.joined(separator: ","),
                peer.reachable.map { $0 ? "yes" : "no (relay)" } ?? "-", seen ?? (peer.problem ?? "-"),
            ])
        }
        printTable(lines)
    }
}
