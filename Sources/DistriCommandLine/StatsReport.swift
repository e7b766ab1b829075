import Distri

/// Formats node stats for people: a table, and the original seed's report layout.
public enum StatsReport {
    /// One line per node with the main counters, within ``TextTable/defaultWidth`` columns; a node
    /// that did not answer has its error in the last column.
    public static func table(_ rows: [(address: String, stats: NodeStats?, error: String?)]) -> String {
        let headers = [
            "node", "id", "recv", "done", "failed", "busy", "p50 ms", "p99 ms", "up s", "links", "docs", "error",
        ]
        var lines: [[String]] = []
        for row in rows {
            guard let s = row.stats else {
                lines.append(
                    [row.address] + Array(repeating: "-", count: headers.count - 2) + [row.error ?? "no answer"])
                continue
            }
            lines.append([
                row.address, s.nodeID, "\(s.requestsReceived)", "\(s.completed)", "\(s.failed)", "\(s.rejectedBusy)",
                ms(s.p50ServiceTimeSeconds), ms(s.p99ServiceTimeSeconds), "\(Int(s.uptimeSeconds))",
                s.relay.map { "\($0.attachedPeers)" } ?? "-", "\(s.collections.values.reduce(0, +))", "",
            ])
        }
        return TextTable.render(headers: headers, rows: lines)
    }

    /// The seed's per-server report, kept for users of the original.
    public static func seedReport(_ s: NodeStats) -> String {
        let collections = s.collections.sorted { $0.key < $1.key }.map {
            "\($0.key): \($0.value) entries"
        }
        .joined(separator: ", ")
        return """
            Server Stats:
            Requests Recieved: \(s.requestsReceived)
            Accepted Requests: \(s.accepted)
            Completed Tasks: \(s.completed)
            Server Fails: \(s.serverFails)
            Total Task Time: \(String(format1: s.totalServiceTimeSeconds))s
            Avg Completion Time: \(String(format1: s.averageServiceTimeSeconds))s
            DB Data: \(collections)
            """
    }

    private static func ms(_ seconds: Double) -> String { String(format1: seconds * 1000) }
}

extension String {
    /// A number with a few significant decimals, without Foundation.
    init(format1 value: Double) {
        if value.isNaN || value.isInfinite {
            self = "\(value)"
            return
        }
        let scaled = (value * 1000).rounded() / 1000
        self = "\(scaled)"
    }
}

/// Plain fixed-width text tables for terminal output, cut to fit a width: the widest columns give
/// up characters first, and a cut cell ends with an ellipsis.
public enum TextTable {
    /// The width tables fit by default.
    public static let defaultWidth = 100

    public static func render(headers: [String], rows: [[String]], maxWidth: Int = defaultWidth) -> String {
        var widths = headers.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count {
                widths[i] = max(widths[i], cell.count)
            }
        }
        // The last column (errors, lists) gives up characters first, down to 16; then the widest.
        // Bounded: every pass takes one character from a column wider than its floor.
        let floors = headers.map { max($0.count, 4) }
        var total = widths.reduce(0, +) + 2 * max(widths.count - 1, 0)
        if let last = widths.indices.last, total > maxWidth {
            let cut = min(total - maxWidth, max(widths[last] - max(floors[last], 16), 0))
            widths[last] -= cut
            total -= cut
        }
        while total > maxWidth,
            let widest = widths.indices.filter({ widths[$0] > floors[$0] }).max(by: { widths[$0] < widths[$1] })
        {
            widths[widest] -= 1
            total -= 1
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                guard i < widths.count else { return cell }
                let fitted = cell.count > widths[i] ? String(cell.prefix(widths[i] - 1)) + "…" : cell
                return i < cells.count - 1 ? fitted.padding(to: widths[i]) : fitted
            }.joined(separator: "  ")
        }
        var out = [line(headers), line(widths.map { String(repeating: "-", count: $0) })]
        out.append(contentsOf: rows.map(line))
        return out.map { $0.trimmingTrailingSpaces() }.joined(separator: "\n")
    }
}

extension String {
    fileprivate func padding(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }

    fileprivate func trimmingTrailingSpaces() -> String {
        var text = Substring(self)
        while text.last == " " { text = text.dropLast() }
        return String(text)
    }
}

extension Array where Element == NodeStatsResult {
    /// The results as a printable table.
    public var table: String {
        StatsReport.table(
            map { item in
                switch item.result {
                case .success(let stats): (item.node.description, stats, nil)
                case .failure(let error): (item.node.description, nil, "unreachable: \(error.message)")
                }
            })
    }
}
