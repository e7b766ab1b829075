import DistriCore

/// The rules of the cloud's signed collections as a pure value: the documents a request depends on,
/// as read, in; the write to make or a refusal with its reason out. No I/O and no clock: none of the
/// rules depends on the time, and the shell reads, writes and retries.
///
/// - `users` (``register(_:)``): a record signed by its own key; the key the name was first
///   registered with keeps it (trust on first use); sequences only rise.
/// - `catalog` and `requests` (``publish(_:)``, ``post(_:)``): signed by the signer's registered key,
///   with a sequence above the stored document's.
/// - `permissions` (``grant(_:)``, ``view(_:alreadyTaken:)``): see `GrantLedger+Views.swift`.
public struct GrantLedger: Sendable {
    /// The `users` documents of the peers the request names, by name (absent: not registered).
    public var peers: [String: [String: JSONValue]]
    /// The stored document the request would change, or nil when there is none.
    public var stored: [String: JSONValue]?

    /// A ledger over the documents as read: `peers` by name and the `stored` target document.
    public init(peers: [String: [String: JSONValue]] = [:], stored: [String: JSONValue]?) {
        self.peers = peers
        self.stored = stored
    }

    // MARK: users

    /// The write that registers `record`, or why not.
    public func register(_ record: PeerRecord) throws(LedgerRefusal) -> LedgerWrite {
        do {
            try record.verify()
        } catch {
            throw LedgerRefusal(.unauthorized, "\(error)")
        }
        let collection = PeerRecord.collection
        let body = record.document.filter { $0.key != "_id" }
        guard let stored else {
            return LedgerWrite(
                collection: collection, id: record.name, condition: nil, update: DocumentUpdate(set: body))
        }
        let current: PeerRecord
        do {
            current = try PeerRecord(document: stored)
        } catch {
            throw LedgerRefusal(.stale, "the stored record of '\(record.name)' cannot be replaced: \(error)")
        }
        guard current.signingKey == record.signingKey else {
            throw LedgerRefusal(
                .unauthorized,
                "the name '\(record.name)' is registered with another signing key (\(current.signingKey.hex.prefix(16))...)"
            )
        }
        guard record.sequence > current.sequence else {
            throw LedgerRefusal(
                .stale,
                "replayed or stale record of '\(record.name)': sequence \(record.sequence) is not above the stored \(current.sequence)"
            )
        }
        let condition: JSONValue = .object([
            "signingKey": .string(current.signingKey.hex),
            "sequence": .object(["$lt": .number(Double(record.sequence))]),
        ])
        return LedgerWrite(
            collection: collection, id: record.name, condition: condition,
            update: DocumentUpdate(set: body, replace: true))
    }

    // MARK: catalog and requests

    /// The write that publishes `entry` in the catalog, or why not.
    public func publish(_ entry: CatalogEntry) throws(LedgerRefusal) -> LedgerWrite {
        try storeSigned(entry, collection: CatalogEntry.collection, id: entry.id, signer: entry.owner)
    }

    /// The write that posts `request` (asked by its requester, answered by the owner), or why not.
    public func post(_ request: AccessRequest) throws(LedgerRefusal) -> LedgerWrite {
        try storeSigned(request, collection: AccessRequest.collection, id: request.id, signer: request.signer)
    }

    /// The registered peer `name`, or an `unauthorized` refusal.
    func peer(_ name: String) throws(LedgerRefusal) -> PeerRecord {
        guard let document = peers[name], let record = try? PeerRecord(document: document) else {
            throw LedgerRefusal(.unauthorized, "'\(name)' is not a registered peer")
        }
        return record
    }

    /// Throws `unauthorized` unless `signer` signed `record`.
    func verify(_ record: some SignedRecord, signedBy signer: PeerRecord) throws(LedgerRefusal) {
        do {
            try record.verify(signedBy: signer.signingKey)
        } catch {
            throw LedgerRefusal(.unauthorized, "\(error)")
        }
    }

    /// Writes `record` as document `id` of `collection` when `signer`'s registered key signed it and
    /// its sequence is above the stored document's.
    private func storeSigned<Record: SignedRecord>(
        _ record: Record, collection: String, id: String, signer: String
    ) throws(LedgerRefusal) -> LedgerWrite where Record: DocumentRecord {
        try verify(record, signedBy: try peer(signer))
        let body = record.document.filter { $0.key != "_id" }
        guard let stored else {
            return LedgerWrite(collection: collection, id: id, condition: nil, update: DocumentUpdate(set: body))
        }
        // A stored sequence that is not a whole number up to 2^53 was not written by a signed record
        // (only a replica written before the collection was reserved can hold one): nothing is above it.
        guard let storedSequence = stored["sequence"]?.wholeNumberValue else {
            throw LedgerRefusal(.stale, "\(collection) document \(id) holds no valid sequence; it cannot be replaced")
        }
        guard record.sequence > storedSequence else {
            throw LedgerRefusal(
                .stale,
                "replayed or stale \(collection) document \(id): sequence \(record.sequence) is not above the stored \(storedSequence)"
            )
        }
        return LedgerWrite(
            collection: collection, id: id,
            condition: .object(["sequence": .object(["$lt": .number(Double(record.sequence))])]),
            update: DocumentUpdate(set: body, replace: true))
    }
}

/// A signed record the ledger stores as a document: its fields and its sequence.
public protocol DocumentRecord {
    /// The signed fields as a document.
    var document: [String: JSONValue] { get }
    /// Rises with every version signed.
    var sequence: UInt64 { get }
}

extension CatalogEntry: DocumentRecord {}
extension AccessRequest: DocumentRecord {}
