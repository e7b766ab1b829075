/// A hybrid logical clock timestamp (Kulkarni et al. 2014): physical milliseconds, a logical counter
/// for events within the same millisecond, and the node id as the final tie-break, so any two
/// timestamps from different nodes are ordered and equal only for the same event.
public struct HLCTimestamp: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    /// Wall-clock milliseconds.
    public var millis: UInt64
    /// Orders events within the same millisecond.
    public var counter: UInt32
    /// The id of the node that made the stamp: the final tie-break.
    public var node: String

    /// The stamp `millis`.`counter` of `node`.
    public init(millis: UInt64, counter: UInt32, node: String) {
        self.millis = millis
        self.counter = counter
        self.node = node
    }

    /// Orders by time, then counter, then node id.
    public static func < (a: HLCTimestamp, b: HLCTimestamp) -> Bool {
        if a.millis != b.millis { return a.millis < b.millis }
        if a.counter != b.counter { return a.counter < b.counter }
        return a.node < b.node
    }

    /// The smallest timestamp.
    public static let zero = HLCTimestamp(millis: 0, counter: 0, node: "")

    public var description: String {
        // Appended piece by piece: string interpolation costs several times more (replies carry it).
        var text = String(millis)
        text += "."
        text += String(counter)
        text += "@"
        text += node
        return text
    }
}

/// One node's hybrid logical clock. Pure: the wall-clock reading comes in as a parameter.
public struct HybridLogicalClock: Sendable {
    /// The node this clock stamps for.
    public let node: String
    /// The last stamp this clock issued or saw.
    public private(set) var last: HLCTimestamp

    /// A clock for `node`, starting at zero.
    public init(node: String) {
        self.node = node
        self.last = HLCTimestamp(millis: 0, counter: 0, node: node)
    }

    /// A timestamp for a local event, greater than every timestamp seen so far.
    public mutating func now(wallMillis: UInt64) -> HLCTimestamp {
        if wallMillis > last.millis {
            last = HLCTimestamp(millis: wallMillis, counter: 0, node: node)
        } else {
            last = HLCTimestamp(millis: last.millis, counter: last.counter &+ 1, node: node)
        }
        return last
    }

    /// Takes a timestamp from another node into account, so later local events order after it.
    public mutating func observe(_ remote: HLCTimestamp, wallMillis: UInt64) {
        let millis = max(wallMillis, last.millis, remote.millis)
        var counter: UInt32 = 0
        if millis == last.millis && millis == remote.millis {
            counter = max(last.counter, remote.counter) &+ 1
        } else if millis == last.millis {
            counter = last.counter &+ 1
        } else if millis == remote.millis {
            counter = remote.counter &+ 1
        }
        last = HLCTimestamp(millis: millis, counter: counter, node: node)
    }
}
