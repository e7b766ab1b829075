import ArgumentParser
import DistriCommandLine
import DistriCore
import DistriPeer
import Foundation

/// `distri-peer list ...`.
struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List what the cloud knows.",
        subcommands: [PeersCommand.self, ImagesCommand.self])
}

/// `distri-peer list images`.
struct ImagesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "images",
        abstract: "The images peers published (the catalog), each checked against its owner's signature.",
        discussion: """
            Lists owner, name, kind (only when the owner published it), the original's size and \
            dimensions, and when it was published. An entry whose signature does \
            not verify against its owner's registered key is shown as unverified, with why. Ask the owner \
            for views with `distri-peer request`.
            """)

    @OptionGroup var cloud: CloudOption

    @Option(name: .long, help: "Only the images this peer published.")
    var from: String?

    @OptionGroup var jsonOutput: JSONOutputOptions
    var json: Bool { jsonOutput.enabled }

    func run() async throws {
        let owner = from
        let listings = try await withClient(cloud) { client in try await PeerCloud(client: client).catalog() }
            .filter { listing in
                owner.map { (listing.entry?.owner ?? listing.id.split(separator: "/").first.map(String.init)) == $0 }
                    ?? true
            }
        if json {
            printLine(
                JSONValue.array(
                    listings.map { listing in
                        guard let entry = listing.entry else {
                            return .object([
                                "id": .string(listing.id), "problem": .string(listing.problem ?? "unverified"),
                            ])
                        }
                        var fields: [String: JSONValue] = [
                            "owner": .string(entry.owner), "name": .string(entry.name),
                            "bytes": .number(Double(entry.bytes)),
                            "width": .number(Double(entry.width)), "height": .number(Double(entry.height)),
                            "publishedAtMillis": .number(Double(entry.sequence)),
                        ]
                        if let kind = entry.kind { fields["kind"] = .string(kind) }
                        return .object(fields)
                    }
                ).outputText)
            return
        }
        if listings.isEmpty {
            printLine(owner.map { "'\($0)' has published no images" } ?? "no images published")
            return
        }
        let formatter = ISO8601DateFormatter()
        var lines = [["OWNER", "NAME", "KIND", "SIZE", "DIMENSIONS", "PUBLISHED"]]
        for listing in listings {
            guard let entry = listing.entry else {
                lines.append([listing.id, "unverified", "-", "-", "-", listing.problem ?? ""])
                continue
            }
            lines.append([
                entry.owner, entry.name, entry.kind ?? "-", String(format: "%.1f KB", Double(entry.bytes) / 1000),
                entry.width > 0 ? "\(entry.width)x\(entry.height)" : "-",
                formatter.string(from: Date(timeIntervalSince1970: Double(entry.sequence) / 1000)),
            ])
        }
        printTable(lines)
    }
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

    @OptionGroup var jsonOutput: JSONOutputOptions
    var json: Bool { jsonOutput.enabled }

    func run() async throws {
        let refreshMillis = UInt64(max(0.05, refresh) * 1000)
        let peers = try await withClient(cloud) { client in
            try await PeerCloud(client: client).peers(refreshMillis: refreshMillis)
        }
        if json {
            printLine(JSONValue.array(peers.map(\.json)).outputText)
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
