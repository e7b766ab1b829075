import ArgumentParser
import Distri
import DistriCommandLine
import DistriCore
import Foundation

/// `distri-node stats`: every node's stats.
struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "Print every node's stats as a table (or JSON).")

    @OptionGroup var cloud: CloudOptions

    @OptionGroup var jsonOutput: JSONOutputOptions
    var json: Bool { jsonOutput.enabled }

    @Flag(name: .long, help: "Print the original seed's per-server report.")
    var seedReport = false

    func run() async throws {
        let client = try cloud.client()
        let results = await client.collectStats()
        await client.shutdown()
        if let error = results.noneAnswered { throw try cloud.location().explain(error) }
        if json {
            let rows = results.map { item -> StatsRow in
                switch item.result {
                case .success(let stats): StatsRow(node: item.node.description, stats: stats, error: nil)
                case .failure(let error):
                    StatsRow(node: item.node.description, stats: nil, error: UserFacingError(error).message)
                }
            }
            print(try JSONStyle.text(rows))
        } else if seedReport {
            for item in results {
                switch item.result {
                case .success(let stats): print("Received response from \(item.node): \(StatsReport.seedReport(stats))")
                case .failure(let error): print("No response from \(item.node): \(error)")
                }
            }
        } else {
            print(
                StatsReport.table(
                    results.map { item in
                        switch item.result {
                        case .success(let stats): (item.node.description, stats, nil)
                        case .failure(let error): (item.node.description, nil, UserFacingError(error).message)
                        }
                    }))
        }
        if results.contains(where: { if case .failure = $0.result { true } else { false } }) {
            throw ExitCode(2)
        }
    }
}

struct StatsRow: Codable {
    var node: String
    var stats: NodeStats?
    var error: String?
}

extension Array where Element == NodeStatsResult {
    /// When no node answered: the one error, or one naming every node's.
    var noneAnswered: ClientError? {
        var errors: [ClientError] = []
        for item in self {
            guard case .failure(let error) = item.result else { return nil }
            errors.append(error)
        }
        if errors.count == 1 { return errors[0] }
        if errors.isEmpty { return nil }
        return ClientError(.noReachableNode, node: nil, message: errors.map(\.description).joined(separator: "; "))
    }
}
