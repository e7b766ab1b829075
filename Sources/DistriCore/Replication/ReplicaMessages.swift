/// One replicated change, as state: merging it is idempotent and commutative, so changes may arrive
/// late, twice or out of order.
public enum DocumentChange: Hashable, Sendable {
    /// A collection's create and drop stamps.
    case collection(name: String, created: HLCTimestamp, dropped: HLCTimestamp?)
    /// A document's whole replicated state.
    case document(collection: String, ReplicatedDocument)
}

/// A document's address: its collection and id (nil id: the collection's own create/drop stamps).
public struct DocumentKey: Hashable, Sendable, CustomStringConvertible {
    /// The collection.
    public var collection: String
    /// The document's id; nil for the collection itself.
    public var id: String?

    /// The address of document `id` in `collection`.
    public init(collection: String, id: String?) {
        self.collection = collection
        self.id = id
    }

    public var description: String { id.map { "\(collection)/\($0)" } ?? collection }
}

/// How far one replica has another's state: the other's epoch (a fresh random number per start
/// without its data) and its change sequence number.
public struct Watermark: Hashable, Sendable, Comparable {
    /// The replica's epoch: a fresh random number per start without its data.
    public var epoch: UInt64
    /// The change sequence number within that epoch.
    public var sequence: UInt64

    /// The position `sequence` in `epoch`.
    public init(epoch: UInt64, sequence: UInt64) {
        self.epoch = epoch
        self.sequence = sequence
    }

    public static func < (a: Watermark, b: Watermark) -> Bool {
        (a.epoch, a.sequence) < (b.epoch, b.sequence)
    }
}

/// Requests one replica sends another; each has exactly one ``ReplicaResponse``.
public enum ReplicaRequest: Hashable, Sendable {
    /// Changes written on the sender, pushed at once (batched per flush). With a chain, the push
    /// holds every write of the sender's incarnation stamped after `chain.since` up to `chain.upTo`.
    /// `sender` names the sending incarnation (the HLC node name of its stamps): a receiver does not
    /// send a state back to the incarnation that sent it, but does send it to a later one, which
    /// restarted without it.
    case push([DocumentChange], chain: PushChain? = nil, sender: String? = nil)
    /// Anti-entropy: "send me what you have that I lack".
    case pull(PullRequest)
    /// Compare-and-set phase 1 for one document.
    case prepare(DocumentKey, Ballot)
    /// Compare-and-set phase 2: accept this state of the document.
    case propose(DocumentKey, Ballot, ReplicatedDocument)
    /// Compare-and-set decided: merge the state and forget the accepted value.
    case commit(DocumentKey, Ballot, ReplicatedDocument)
}

/// A push's claim that it carries every write its origin made in `(since, upTo]`: a receiver that
/// holds all of the origin's writes up to `since` then holds them up to `upTo`, so its coverage of
/// the origin advances without a pull and anti-entropy does not send those writes a second time.
public struct PushChain: Hashable, Sendable {
    /// The origin incarnation (the HLC node name of its stamps).
    public var origin: String
    /// The origin's stamp the chain starts after.
    public var since: HLCTimestamp
    /// The origin's newest stamp the push carries.
    public var upTo: HLCTimestamp

    /// A claim that the push carries every write of `origin` in `(since, upTo]`.
    public init(origin: String, since: HLCTimestamp, upTo: HLCTimestamp) {
        self.origin = origin
        self.since = since
        self.upTo = upTo
    }
}

/// What the requester already holds of the responder.
public struct PullRequest: Hashable, Sendable {
    /// The responder's state the requester holds, when it knows the responder's current epoch.
    public var since: Watermark?
    /// Per-collection id-range digests of the requester, sent when `since` is unknown, so the
    /// responder sends only the ranges that differ.
    public var digests: [String: AntiEntropy.CollectionDigest]?
    /// Per origin node, the stamp up to which the requester holds all of that node's writes: the
    /// responder leaves out changes made entirely of such writes.
    public var coverage: [String: HLCTimestamp]
    /// The requester's incarnation (the HLC node name of its stamps): the responder leaves out the
    /// states this very incarnation sent it.
    public var incarnation: String?

    /// A pull with the given fields.
    public init(
        since: Watermark?, digests: [String: AntiEntropy.CollectionDigest]?, coverage: [String: HLCTimestamp],
        incarnation: String? = nil
    ) {
        self.since = since
        self.digests = digests
        self.coverage = coverage
        self.incarnation = incarnation
    }
}

/// The answer to a ``PullRequest``.
public struct PullReply: Hashable, Sendable {
    /// The responder's epoch and the change sequence these changes bring the requester up to.
    public var upTo: Watermark
    /// False when the reply was cut at the size limit: the requester should pull again.
    public var complete: Bool
    /// False when the requester named an epoch the responder no longer has and sent no digests:
    /// it must pull again with digests.
    public var understood: Bool
    /// The responder's coverage (its own clock included), which a complete reply passes on.
    public var coverage: [String: HLCTimestamp]
    /// The changes the requester lacks.
    public var changes: [DocumentChange]

    /// A reply with the given fields.
    public init(
        upTo: Watermark, complete: Bool, understood: Bool, coverage: [String: HLCTimestamp],
        changes: [DocumentChange]
    ) {
        self.upTo = upTo
        self.complete = complete
        self.understood = understood
        self.coverage = coverage
        self.changes = changes
    }
}

/// A compare-and-set acceptor's promise, with the replica's current state of the document.
public struct CASPromise: Hashable, Sendable {
    /// The ballot of the value this acceptor accepted, if any.
    public var accepted: Ballot?
    /// The value it accepted under that ballot.
    public var acceptedDocument: ReplicatedDocument?
    /// The ballot of the last round it saw committed.
    public var committed: Ballot
    /// The replica's current state of the document.
    public var current: ReplicatedDocument?

    /// A promise with the given fields.
    public init(
        accepted: Ballot?, acceptedDocument: ReplicatedDocument?, committed: Ballot, current: ReplicatedDocument?
    ) {
        self.accepted = accepted
        self.acceptedDocument = acceptedDocument
        self.committed = committed
        self.current = current
    }
}

/// Answers to ``ReplicaRequest``s.
public enum ReplicaResponse: Hashable, Sendable {
    /// The push or commit was merged (and made durable where the node keeps a log).
    case merged
    /// The changes a pull asked for.
    case pulled(PullReply)
    /// The prepare was promised, or refused because of a higher promise.
    case promise(CASPromise?, promised: Ballot)
    /// The proposal was accepted, or refused because of a higher promise.
    case accepted(Bool, promised: Ballot)
}
