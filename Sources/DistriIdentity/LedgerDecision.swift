import DistriCore

/// A change the ``GrantLedger`` decided: add the document when it is absent, else update it where
/// ``condition`` still holds (one compare-and-set round). The shell writes it at `majority`; when
/// the add finds the document present, or the condition no longer holds, it reads again and asks the
/// ledger again.
public struct LedgerWrite: Hashable, Sendable {
    /// The collection written.
    public var collection: String
    /// The document written.
    public var id: String
    /// Nil: the document was absent, add it with ``update``'s values. Otherwise the filter (a JSON
    /// filter document) the stored document must still match for ``update`` to apply.
    public var condition: JSONValue?
    /// The values to set (and numbers to add to) on the document.
    public var update: DocumentUpdate

    /// A write of `update` to document `id` of `collection`, conditional on `condition` (nil: add).
    public init(collection: String, id: String, condition: JSONValue?, update: DocumentUpdate) {
        self.collection = collection
        self.id = id
        self.condition = condition
        self.update = update
    }
}

/// Why the ``GrantLedger`` refused a signed record or a view.
public struct LedgerRefusal: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of refusal; more may come.
    public struct Reason: Hashable, Sendable, CustomStringConvertible {
        private let name: String

        /// The signer is unknown, the signature is not theirs, or no view may be taken.
        public static let unauthorized = Reason(name: "unauthorized")
        /// The record or request is a replay, or older than what is stored.
        public static let stale = Reason(name: "stale")

        public var description: String { name }
    }

    /// The kind of refusal.
    public var reason: Reason
    /// What a user reads: which record, and why.
    public var message: String

    /// A refusal for `reason`, explained by `message`.
    public init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    public var description: String { "\(reason): \(message)" }
}

/// The ledger's answer to a view request that may go ahead.
public struct ViewTaking: Sendable {
    /// The stored grant, verified under its owner's key.
    public var grant: ViewGrant
    /// The recipient's `users` record (its agreement key receives the image key).
    public var recipient: PeerRecord
    /// The conditional update that takes one view; nil when this call's view was taken already (by
    /// an earlier attempt whose update another coordinator completed).
    public var write: LedgerWrite?
    /// Views left as read: before this view when ``write`` is set, after it when it is nil.
    public var remaining: UInt64
}
