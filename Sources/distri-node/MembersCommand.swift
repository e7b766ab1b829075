import ArgumentParser
import Distri
import DistriCommandLine
import DistriCore
import Foundation

/// `distri-node members`: the membership as each node sees it.
struct MembersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "members", abstract: "Print the membership table as each node sees it (or JSON).")

    @OptionGroup var cloud: CloudOptions

    @OptionGroup var jsonOutput: JSONOutputOptions
    var json: Bool { jsonOutput.enabled }

    func run() async throws {
        let client = try cloud.client()
        let results = await client.collectStats()
        await client.shutdown()
        if let error = results.noneAnswered { throw try cloud.location().explain(error) }
        var views: [MembershipView] = []
        for item in results {
            switch item.result {
            case .success(let stats):
                views.append(MembershipView(node: item.node.description, nodeID: stats.nodeID, members: stats.members))
            case .failure(let error):
                views.append(MembershipView(node: item.node.description, error: UserFacingError(error).message))
            }
        }
        if json {
            print(try JSONStyle.text(views))
            return
        }
        for view in views {
            guard let members = view.members else {
                print("\(view.node): unreachable: \(view.error ?? "")\n")
                continue
            }
            print("as seen by \(view.nodeID ?? "?") at \(view.node):")
            print(
                TextTable.render(
                    headers: ["id", "address", "status", "incarnation", "load", "detected in", "services"],
                    rows: members.map { m in
                        [
                            m.id, m.address, m.status, "\(m.incarnation)", String(format: "%.2f", m.load),
                            m.detectionMillis.map { "\($0) ms" } ?? "-", m.services.joined(separator: ","),
                        ]
                    }))
            print("")
        }
    }
}

struct MembershipView: Codable {
    var node: String
    var nodeID: String?
    var members: [MemberSummary]?
    var error: String?

    init(node: String, nodeID: String? = nil, members: [MemberSummary]? = nil, error: String? = nil) {
        self.node = node
        self.nodeID = nodeID
        self.members = members
        self.error = error
    }
}
