/// A Paxos ballot: a round number and the proposing node's id, totally ordered.
public struct Ballot: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    /// The round number, compared first.
    public var round: UInt64
    /// The proposer's id, the tie-break.
    public var node: String

    /// The ballot `round` of `node`.
    public init(round: UInt64, node: String) {
        self.round = round
        self.node = node
    }

    public static func < (a: Ballot, b: Ballot) -> Bool {
        a.round != b.round ? a.round < b.round : a.node < b.node
    }

    /// The lowest ballot: none promised or accepted yet.
    public static let zero = Ballot(round: 0, node: "")

    public var description: String { "\(round)@\(node)" }
}
