/// The nodes a client calls, merged from the addresses it was given (its seeds) and the membership
/// reports of the nodes it reaches. A value type: ``merge(_:parse:)`` takes a report, ``active`` and
/// ``fallback`` say whom to call.
///
/// Rules:
/// - Members reported `alive` are ``active``: calls go to them in turn.
/// - Members reported `suspect` go to ``fallback`` (they may be paused or cut off; tried last), with
///   the seeds that are not active. Members `dead` or `left` are dropped (a seed stays a fallback).
/// - A report naming no alive member with a usable address (a node not in a cluster, a wildcard
///   address) changes nothing: the seeds, or the last good view, stay in use.
public struct ClientMembershipView<Address: Hashable & Sendable>: Sendable {
    /// The addresses the client was given.
    public let seeds: [Address]
    /// Called in turn.
    public private(set) var active: [Address]
    /// Tried after every active address failed.
    public private(set) var fallback: [Address]
    /// Reports merged that changed the view.
    public private(set) var changes = 0

    /// A view of the seeds only: all active.
    public init(seeds: [Address]) {
        self.seeds = seeds
        self.active = seeds
        self.fallback = []
    }

    /// Every address the view knows, active first.
    public var all: [Address] { active + fallback }

    /// Merges one node's membership report. `parse` turns a reported address into an `Address`, or nil
    /// when the client cannot use it (a wildcard address). Returns true when the view changed.
    @discardableResult
    public mutating func merge(_ report: [MemberSummary], parse: (String) -> Address?) -> Bool {
        var alive: [Address] = []
        var suspect: [Address] = []
        var seen: Set<Address> = []
        // Sorted by id, so every node's report gives the same order and the rotation is stable.
        for member in report.sorted(by: { $0.id < $1.id }) {
            guard let address = parse(member.address), !seen.contains(address) else { continue }
            switch member.status {
            case "alive":
                alive.append(address)
                seen.insert(address)
            case "suspect":
                suspect.append(address)
                seen.insert(address)
            default:
                continue
            }
        }
        guard !alive.isEmpty else { return false }
        let activeSet = Set(alive)
        var fallback = suspect
        for seed in seeds where !activeSet.contains(seed) && !fallback.contains(seed) { fallback.append(seed) }
        guard alive != active || fallback != self.fallback else { return false }
        active = alive
        self.fallback = fallback
        changes += 1
        return true
    }
}
