/// Formats node stats for people: a table, and the original seed's report layout.
public enum StatsReport {
    /// One line per node with the main counters.
    public static func table(_ rows: [(address: String, stats: NodeStats?, error: String?)]) -> String {
        let headers = [
            "node", "id", "recv", "accepted", "done", "failed", "busy", "srvfail", "inflight", "avg ms",
            "p50 ms", "p99 ms", "uptime s", "relay", "documents",
        ]
        var lines: [[String]] = []
        for row in rows {
            guard let s = row.stats else {
                lines.append([row.address, "-", "unreachable: \(row.error ?? "unknown")"])
                continue
            }
            let docs = s.collections.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }
                .joined(separator: " ")
            lines.append([
                row.address, s.nodeID, "\(s.requestsReceived)", "\(s.accepted)", "\(s.completed)",
                "\(s.failed)",
                "\(s.rejectedBusy)", "\(s.serverFails)", "\(s.inFlight)", ms(s.averageServiceTime),
                ms(s.p50ServiceTime), ms(s.p99ServiceTime), String(format1: s.uptime),
                s.relay.map { "\($0.attachedPeers) links, \(String(format1: Double($0.relayedBytes) / 1e6)) MB" }
                    ?? "-",
                docs.isEmpty ? "-" : docs,
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
            Total Task Time: \(String(format1: s.totalServiceTime))s
            Avg Completion Time: \(String(format1: s.averageServiceTime))s
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

/// Plain fixed-width text tables for terminal output.
public enum TextTable {
    public static func render(headers: [String], rows: [[String]]) -> String {
        var widths = headers.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count {
                widths[i] = max(widths[i], cell.count)
            }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                i < widths.count && i < cells.count - 1 ? cell.padding(to: widths[i]) : cell
            }.joined(separator: "  ")
        }
        var out = [line(headers), line(widths.map { String(repeating: "-", count: $0) })]
        out.append(contentsOf: rows.map(line))
        return out.joined(separator: "\n")
    }
}

extension String {
    fileprivate func padding(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
