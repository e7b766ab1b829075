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
    public var set: [String: JSONValue]
    public var increment: [String: Double]
    public var replace: Bool

    public init(set: [String: JSONValue] = [:], increment: [String: Double] = [:], replace: Bool = false) {
        self.set = set
        self.increment = increment
        self.replace = replace
    }

    /// The field values to write, given the document's current body; throws when `$inc` meets a field
    /// that is not a number.
    public func changes(from current: [String: JSONValue]) throws(DatabaseError) -> [String: JSONValue] {
        var changes = set
        for (field, amount) in increment {
            switch current[field] {
            case nil, .null?: changes[field] = .number(amount)
            case .number(let value)?: changes[field] = .number(value + amount)
            default: throw DatabaseError(.badRequest, "$inc on \(field), which is not a number")
            }
        }
        return changes
    }
}

/// A change a client asks for.
public enum DatabaseOperation: Hashable, Sendable {
    case createCollection(String)
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
    public enum Kind: Hashable, Sendable {
        case notFound
        /// An add found the id taken.
        case exists
        case badRequest
        /// A conditional update's condition did not hold: nothing was written.
        case conditionFailed
        /// Not enough replicas answered in time for the consistency asked.
        case unavailable
        /// A size or count limit.
        case limit
    }

    public var kind: Kind
    public var message: String

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

    public init(id: String?, stamp: HLCTimestamp, replicas: Int, document: [String: JSONValue]? = nil) {
        self.id = id
        self.stamp = stamp
        self.replicas = replicas
        self.document = document
    }
}

/// The writes a client has made, as a set of stamps (one per origin node): a replica that has every
/// origin's writes up to these stamps can serve the client's reads.
public struct SessionToken: Hashable, Sendable, CustomStringConvertible {
    public private(set) var stamps: [String: HLCTimestamp] = [:]

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
