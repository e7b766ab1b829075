/// A SWIM protocol message.
public enum SWIMMessage: Sendable, Equatable {
    /// Are you alive? Answered with ``ack(sequence:gossip:)`` carrying the same sequence.
    case ping(sequence: UInt64, gossip: [Member])
    /// Please ping `target` at `targetAddress` for me and forward its ack, or answer
    /// ``nack(sequence:)`` if it does not answer in time (Lifeguard).
    case pingRequest(sequence: UInt64, target: String, targetAddress: String, gossip: [Member])
    /// The answer to a ping, direct or forwarded by a relay.
    case ack(sequence: UInt64, gossip: [Member])
    /// A relay's report that the target of a ``pingRequest(sequence:target:targetAddress:gossip:)``
    /// did not answer.
    case nack(sequence: UInt64)
    /// Full-state exchange, used to join and periodically for anti-entropy. A request
    /// (`isReply == false`) is answered with the receiver's full state.
    case pushPull(members: [Member], isReply: Bool)
}

/// A message between nodes, with the sender's identity.
public struct SWIMEnvelope: Sendable, Equatable {
    /// The sender's own current self-view (id, address, incarnation, metadata). This is also how
    /// metadata such as load spreads: it is never gossiped as an update of its own.
    public var from: Member
    /// The message.
    public var message: SWIMMessage

    /// An envelope.
    public init(from: Member, message: SWIMMessage) {
        self.from = from
        self.message = message
    }
}

/// What the shell must do after a call into ``Membership``.
public enum SWIMDirective: Sendable, Equatable {
    /// Send the envelope to "host:port".
    case send(SWIMEnvelope, to: String)
    /// A member's status changed; `previous == nil` means it was newly learned. For logs and stats.
    case statusChanged(Member, previous: MemberStatus?)
}
