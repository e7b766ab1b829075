import Distri
import Foundation

/// A node's data directory as the command line uses it: the library keeps the DB replica's
/// write-ahead log there, and this tool keeps the node's id beside it (`node-id`), so a restarted
/// node comes back as the same replica instead of a new member next to a dead one.
public enum DataDirectory {
    /// The directory holds another node's replica.
    public struct Mismatch: Error, CustomStringConvertible {
        public var description: String
    }

    /// The id to start with: `requested` if given (recorded on first use), else the recorded one,
    /// else a new one (recorded). Throws when `requested` differs from the recorded id.
    public static func nodeID(in directory: String, requested: String?) throws -> String {
        let path = (directory as NSString).appendingPathComponent("node-id")
        let recorded = (try? String(contentsOfFile: path, encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if let recorded, !recorded.isEmpty {
            if let requested, requested != recorded {
                throw Mismatch(
                    description:
                        "\(directory) holds the replica of node \(recorded), not \(requested): pass --id \(recorded) or another --data-dir"
                )
            }
            return recorded
        }
        let id = requested ?? NodeID.random()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data((id + "\n").utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        return id
    }
}
