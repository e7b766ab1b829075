/// A `host:port` pair naming a node. IPv6 hosts are written in brackets: `[::1]:7000`.
public struct NodeAddress: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The host name or IP address.
    public var host: String
    /// The TCP port.
    public var port: Int

    /// The address `host:port`.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`; nil when it is not of that form or the port is out of range.
    public init?(_ text: String) {
        let trimmed = text.trimmingWhitespace()
        let host: Substring
        let portText: Substring
        if trimmed.hasPrefix("[") {
            guard let close = trimmed.firstIndex(of: "]"),
                trimmed.index(after: close) < trimmed.endIndex,
                trimmed[trimmed.index(after: close)] == ":"
            else { return nil }
            host = trimmed[trimmed.index(after: trimmed.startIndex)..<close]
            portText = trimmed[trimmed.index(close, offsetBy: 2)...]
        } else {
            guard let colon = trimmed.lastIndex(of: ":") else { return nil }
            host = trimmed[..<colon]
            portText = trimmed[trimmed.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(portText), (0...65535).contains(port) else { return nil }
        self.init(host: String(host), port: port)
    }

    /// Parses a comma-separated list, ignoring empty entries.
    public static func parseList(_ text: String) -> [NodeAddress]? {
        var result: [NodeAddress] = []
        for part in text.split(separator: ",") where !part.trimmingWhitespace().isEmpty {
            guard let address = NodeAddress(String(part)) else { return nil }
            result.append(address)
        }
        return result
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

extension StringProtocol {
    package func trimmingWhitespace() -> Substring {
        let s = Substring(self)
        guard let first = s.firstIndex(where: { !$0.isWhitespace }),
            let last = s.lastIndex(where: { !$0.isWhitespace })
        else { return "" }
        return s[first...last]
    }
}
