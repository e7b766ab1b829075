/// One compare-and-set attempt by a coordinator, as a state machine over the acceptors' answers:
/// prepare with a ballot, learn the current value from a majority (finishing any value a previous
/// coordinator left accepted but uncommitted), test the condition, then propose and commit the new
/// value. A coordinator that cannot reach a majority decides nothing, which is how the minority side
/// of a partition refuses conditional writes. Pure.
public struct CASProposer<Value: Hashable & Sendable>: Sendable {
    /// What the coordinator should do next.
    public enum Step: Equatable, Sendable {
        /// Send `propose(ballot, value)` to every replica. `recovering` means this re-proposes a
        /// value a previous attempt left behind; the caller's own change comes after it.
        case propose(Value, recovering: Bool)
        /// The condition failed on the current value: nothing was written.
        case rejected(current: Value?)
        /// Send `commit(ballot, value)` to every replica; the change is decided.
        case commit(Value)
        /// A replica promised a higher ballot: retry with a higher one.
        case retry(after: Ballot)
    }

    public let ballot: Ballot
    public let quorum: Int
    private let change: @Sendable (Value?) -> Value?
    private var promises: [String: CASAcceptor<Value>.Promise] = [:]
    private var accepts: Set<String> = []
    private var proposed: (value: Value, recovering: Bool)?
    private var decided = false

    /// `change` maps the current value to the new one, or nil when its condition fails.
    public init(ballot: Ballot, replicas: Int, change: @escaping @Sendable (Value?) -> Value?) {
        self.ballot = ballot
        self.quorum = replicas / 2 + 1
        self.change = change
    }

    /// A replica answered the prepare (nil: refused because it promised `higher`).
    public mutating func onPromise(from replica: String, _ promise: CASAcceptor<Value>.Promise?, higher: Ballot? = nil)
        -> Step?
    {
        guard proposed == nil, !decided else { return nil }
        guard let promise else { return .retry(after: higher ?? ballot) }
        promises[replica] = promise
        guard promises.count >= quorum else { return nil }
        let newestCommit = promises.values.compactMap { p in p.committed.map { ($0, p.committedValue) } }
            .max { $0.0 < $1.0 }
        let pending = promises.values.compactMap { p in p.accepted.map { ($0, p.acceptedValue) } }
            .max { $0.0 < $1.0 }
        if let pending, let value = pending.1, pending.0 > (newestCommit?.0 ?? .zero) {
            proposed = (value, true)
            return .propose(value, recovering: true)
        }
        let current = newestCommit?.1 ?? nil
        guard let next = change(current) else {
            decided = true
            return .rejected(current: current)
        }
        proposed = (next, false)
        return .propose(next, recovering: false)
    }

    /// A replica answered the proposal.
    public mutating func onAccept(from replica: String, accepted: Bool, higher: Ballot? = nil) -> Step? {
        guard let proposed, !decided else { return nil }
        guard accepted else { return .retry(after: higher ?? ballot) }
        accepts.insert(replica)
        guard accepts.count >= quorum else { return nil }
        decided = true
        return .commit(proposed.value)
    }

    /// True when the committed value is a recovered one: the caller must retry its own change.
    public var committedRecovery: Bool { decided && proposed?.recovering == true }
}
