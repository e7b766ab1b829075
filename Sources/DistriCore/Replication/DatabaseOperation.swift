/// How many replicas must hold a write before it is acknowledged.
public enum WriteConsistency: String, Sendable, CaseIterable, Codable {
    /// After the local write: fastest, and lost if this node dies before it pushes or syncs.
    case one
    /// After more than half of all replicas (this one included) hold it: survives losing any minority.
    case majority
    /// After every known replica holds it.
    case all
}

/// Which replicas a read consults.
public enum ReadConsistency: String, Sendable, CaseIterable, Codable {
    /// This replica only.
    case local
    /// This replica after pulling from a majority: sees every write acknowledged at `majority` or `all`.
    case majority
    /// This replica after pulling from every alive replica: sees every write any of them holds.
    case all
}

/// Changes to one document's fields: values to set (top level), numbers to add to, and whether the
/// set values replace the whole document.
public struct DocumentUpdate: Hashable, Sendable {
    /// Fields to set (top level), by name.
    public var set: [String: JSONValue]
    /// Numbers to add to fields (`$inc`), by name.
    public var increment: [String: Double]
    /// Whether the set values replace the whole document.
    public var replace: Bool

    /// An update setting `set`, adding `increment`, replacing the document when `replace`.
    public init(set: [String: JSONValue] = [:], increment: [String: Double] = [:], replace: Bool = false) {
        self.set = set
        self.increment = increment
        self.replace = replace
    }

    /// Applies the update to `document`, whose body as readers see it is `current`, at `stamp`.
    ///
    /// `$set` fields get a new base. `$inc` adds to the field as `origin`'s increment (see
    /// ``ReplicatedDocument/Field``): concurrent increments from any number of origins all count, and
    /// a `$set` of the field that this replica has seen comes before them. With `replace`, the
    /// document's other fields go, so an incremented field is written as its new value instead.
    ///
    /// Call ``validate(against:)`` with the same `current` first.
    public func apply(
        to document: inout ReplicatedDocument, current: [String: JSONValue], stamp: HLCTimestamp, origin: String
    ) {
        guard !replace else {
            let values = settingIncrements(from: current).set
            document.write(values, stamp: stamp, replace: true)
            return
        }
        document.write(set, stamp: stamp, replace: false)
        for (field, amount) in increment.sorted(by: { $0.key < $1.key }) {
            document.increment(field, by: amount, origin: origin, stamp: stamp)
        }
    }

    /// The same update with each `$inc` turned into a value to set (the field's current number plus
    /// the amount), as a conditional update writes it: its compare-and-set round decides the whole
    /// value, so the new value supersedes older states, even a stale proposal a later round recovers.
    public func settingIncrements(from current: [String: JSONValue]) -> DocumentUpdate {
        var values = set
        for (field, amount) in increment { values[field] = .number((current[field]?.numberValue ?? 0) + amount) }
        return DocumentUpdate(set: values, replace: replace)
    }

    /// Throws `badRequest` when `$inc` meets a field that is not a number, names a field that is also
    /// set, or would give a number beyond the JSON range (a double: ±1.797e308).
    public func validate(against current: [String: JSONValue]) throws(DatabaseError) {
        for (field, amount) in increment {
            if set[field] != nil { throw DatabaseError(.badRequest, "$inc and a value both name field \(field)") }
            let now: Double
            switch current[field] {
            case nil, .null?: now = 0
            case .number(let value)?: now = value
            default: throw DatabaseError(.badRequest, "$inc on \(field), which is not a number")
            }
            guard amount.isFinite, (now + amount).isFinite else {
                throw DatabaseError(
                    .badRequest, "$inc on \(field) would give a number beyond the JSON range (a double, ±1.797e308)")
            }
        }
    }
}

/// A change a client asks for.
public enum DatabaseOperation: Hashable, Sendable {
    /// Creates a collection.
    case createCollection(String)
    /// Drops a collection and its documents.
    case dropCollection(String)
    /// Adds a document under an id the caller chose (unique: the shell makes a random one).
    case add(collection: String, id: String, body: [String: JSONValue])
    /// Changes an existing document.
    case update(collection: String, id: String, DocumentUpdate)
    /// Deletes existing documents.
    case delete(collection: String, ids: [String])
    /// Applies `update` only if the document, as a majority of replicas hold it, matches `condition`:
    /// one compare-and-set consensus round per attempt.
    case conditional(collection: String, id: String, condition: DocumentFilter, update: DocumentUpdate)

    /// The collection the operation touches.
    public var collection: String {
        switch self {
        case .createCollection(let name), .dropCollection(let name): name
        case .add(let collection, _, _), .update(let collection, _, _), .delete(let collection, _),
            .conditional(let collection, _, _, _):
            collection
        }
    }
}

/// Why a database operation failed.
public struct DatabaseError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure it is.
    public enum Kind: Hashable, Sendable {
        /// The collection or document does not exist.
        case notFound
        /// An add found the id taken.
        case exists
        /// The request is malformed or asks for something impossible.
        case badRequest
        /// A conditional update's condition did not hold: nothing was written.
        case conditionFailed
        /// Not enough replicas answered in time for the consistency asked.
        case unavailable
        /// A size or count limit.
        case limit
    }

    /// What kind of failure it is.
    public var kind: Kind
    /// What happened, for people.
    public var message: String

    /// A failure of `kind` that says `message`.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// What a successful write returns.
public struct WriteReceipt: Hashable, Sendable {
    /// The document's id for document writes.
    public var id: String?
    /// The write's stamp: the session token a client keeps to read its own writes anywhere.
    public var stamp: HLCTimestamp
    /// Replicas known to hold it when it was acknowledged (this one included).
    public var replicas: Int
    /// For conditional updates: the document as written.
    public var document: [String: JSONValue]?
    /// True when the write had been applied before (a retry of the same call, found by its
    /// idempotency key): it was not applied again, and `stamp` is the document's version.
    public var replayed: Bool

    /// A receipt with the given fields.
    public init(
        id: String?, stamp: HLCTimestamp, replicas: Int, document: [String: JSONValue]? = nil, replayed: Bool = false
    ) {
        self.id = id
        self.stamp = stamp
        self.replicas = replicas
        self.document = document
        self.replayed = replayed
    }
}

/// The writes a client has made, as a set of stamps (one per origin node): a replica that has every
/// origin's writes up to these stamps can serve the client's reads.
public struct SessionToken: Hashable, Sendable, CustomStringConvertible {
    /// The newest stamp seen from each origin node.
    public private(set) var stamps: [String: HLCTimestamp] = [:]

    /// An empty session: no writes yet.
    public init() {}

    /// Adds a write's stamp.
    public mutating func observe(_ stamp: HLCTimestamp) {
        if let current = stamps[stamp.node], current >= stamp { return }
        stamps[stamp.node] = stamp
    }

    /// Adds another token's stamps.
    public mutating func merge(_ other: SessionToken) {
        for stamp in other.stamps.values { observe(stamp) }
    }

    /// Text form: `millis.counter@node` joined by commas.
    public var description: String {
        stamps.values.sorted { $0.node < $1.node }.map(\.description).joined(separator: ",")
    }

    /// Parses the text form; nil when it is malformed.
    public init?(_ text: String) {
        for part in text.split(separator: ",") {
            guard let at = part.firstIndex(of: "@") else { return nil }
            let time = part[..<at].split(separator: ".")
            guard time.count == 2, let millis = UInt64(time[0]), let counter = UInt32(time[1]) else { return nil }
            observe(HLCTimestamp(millis: millis, counter: counter, node: String(part[part.index(after: at)...])))
        }
    }
}
