/// A Paxos ballot: a round number and the proposing node's id, totally ordered.
public struct Ballot: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public var round: UInt64
    public var node: String

    public init(round: UInt64, node: String) {
        self.round = round
        self.node = node
    }

    public static func < (a: Ballot, b: Ballot) -> Bool {
        a.round != b.round ? a.round < b.round : a.node < b.node
    }

    public static let zero = Ballot(round: 0, node: "")

    public var description: String { "\(round)@\(node)" }
}
