import DistriCommandLine
import DistriCore
import Foundation

/// How experiment results are printed: a table (default), JSON or CSV.
enum ExperimentFormat {
    case table, json, csv

    init(json: Bool, csv: Bool) {
        self = json ? .json : csv ? .csv : .table
    }

    /// The results, and each server's stats (the original's report) for the table.
    func render(_ results: [ExperimentResult], stats: [(node: String, stats: NodeStats?)] = []) throws -> String {
        switch self {
        case .json:
            return try JSONStyle.text(results)
        case .csv:
            return ([ExperimentResult.csvHeader] + results.map(\.csvRow)).joined(separator: "\n")
        case .table:
            var rows: [[String]] = []
            for r in results {
                let documents = r.documentsAcknowledged.map { "\(r.documentsOnEveryNode ?? 0) of \($0)" } ?? "-"
                rows.append([
                    r.test, "\(r.servers)", "\(r.clients)", "\(r.tasks)", "\(r.failedTasks)",
                    String(format: "%.3f", r.averageSeconds), String(format: "%.3f", r.p50Seconds),
                    String(format: "%.3f", r.p99Seconds), String(format: "%.1f", r.wallSeconds), documents,
                ])
            }
            var text = TextTable.render(
                headers: [
                    "test", "servers", "clients", "tasks", "failed", "avg s", "p50 s", "p99 s", "wall s",
                    "docs on every node",
                ], rows: rows)
            for r in results where !r.sampleErrors.isEmpty {
                text += "\n\(r.test) errors: " + r.sampleErrors.joined(separator: "; ")
            }
            for item in stats {
                if let answer = item.stats {
                    text += "\nReceived response from \(item.node): " + StatsReport.seedReport(answer)
                } else {
                    text += "\nNo response from \(item.node)"
                }
            }
            return text
        }
    }
}
