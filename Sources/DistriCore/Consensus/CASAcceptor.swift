/// The acceptor side of a single-key compare-and-set register (Paxos, as in Cassandra's lightweight
/// transactions): one per key on every replica. Pure.
public struct CASAcceptor<Value: Hashable & Sendable>: Hashable, Sendable {
    /// The highest ballot promised.
    public private(set) var promised: Ballot = .zero
    /// A value accepted but perhaps not yet committed everywhere.
    public private(set) var accepted: (ballot: Ballot, value: Value)?
    /// The last committed value and its ballot.
    public private(set) var committed: (ballot: Ballot, value: Value)?

    public init(initial: Value? = nil) {
        committed = initial.map { (.zero, $0) }
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.promised == b.promised && a.accepted?.ballot == b.accepted?.ballot && a.accepted?.value == b.accepted?.value
            && a.committed?.ballot == b.committed?.ballot && a.committed?.value == b.committed?.value
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(promised)
        hasher.combine(committed?.ballot)
    }

    /// The answer to a prepare.
    public struct Promise: Hashable, Sendable {
        public var accepted: Ballot?
        public var acceptedValue: Value?
        public var committed: Ballot?
        public var committedValue: Value?
    }

    /// Phase 1: promise to ignore lower ballots. Nil means refused (a higher ballot was promised).
    public mutating func prepare(_ ballot: Ballot) -> Promise? {
        guard ballot > promised else { return nil }
        promised = ballot
        return Promise(
            accepted: accepted?.ballot, acceptedValue: accepted?.value, committed: committed?.ballot,
            committedValue: committed?.value)
    }

    /// Phase 2: accept `value` unless a higher ballot was promised since.
    public mutating func propose(_ ballot: Ballot, value: Value) -> Bool {
        guard ballot >= promised else { return false }
        promised = ballot
        accepted = (ballot, value)
        return true
    }

    /// Learn a chosen value.
    public mutating func commit(_ ballot: Ballot, value: Value) {
        if committed == nil || committed!.ballot < ballot { committed = (ballot, value) }
        if let accepted, accepted.ballot <= ballot { self.accepted = nil }
    }
}
