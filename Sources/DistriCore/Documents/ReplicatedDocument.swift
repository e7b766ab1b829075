/// One document as a replica holds it: a map of top-level fields, each a last-writer-wins register
/// stamped with a hybrid logical clock, plus two tombstones: when the document was last deleted and
/// when it was last replaced whole.
///
/// Merging is per field: concurrent updates of different fields both survive; for the same field the
/// later timestamp wins. A delete removes every field written before it; a field written after the
/// delete revives the document with just the later fields. ``merge(_:)`` is commutative, associative
/// and idempotent, so replicas that have seen the same updates in any order hold the same document.
public struct ReplicatedDocument: Hashable, Sendable, Codable {
    /// A field's current value (nil: removed) and when it was written.
    public struct Field: Hashable, Sendable, Codable {
        public var value: JSONValue?
        public var stamp: HLCTimestamp

        public init(value: JSONValue?, stamp: HLCTimestamp) {
            self.value = value
            self.stamp = stamp
        }
    }

    public var id: String
    public private(set) var fields: [String: Field]
    /// When the document was last deleted, if ever: fields written at or before it are gone.
    public private(set) var deleted: HLCTimestamp?
    /// When the document was last replaced whole, if ever: fields written before it are gone.
    public private(set) var cleared: HLCTimestamp?

    public init(id: String) {
        self.id = id
        self.fields = [:]
        self.deleted = nil
        self.cleared = nil
    }

    /// A document as decoded from the wire or a log (normalised as every merge leaves it).
    public init(id: String, fields: [String: Field], deleted: HLCTimestamp?, cleared: HLCTimestamp?) {
        self.id = id
        self.fields = fields
        self.deleted = deleted
        self.cleared = cleared
        prune()
    }

    /// Decoded through the normalising initialiser, as wire and log documents are: a replica stores a
    /// document new to it as it arrives, which equals the merge only for normalised documents.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try container.decode(String.self, forKey: .id),
            fields: try container.decode([String: Field].self, forKey: .fields),
            deleted: try container.decodeIfPresent(HLCTimestamp.self, forKey: .deleted),
            cleared: try container.decodeIfPresent(HLCTimestamp.self, forKey: .cleared))
    }

    /// A document created with `body`'s fields, all stamped `stamp`.
    public init(id: String, body: [String: JSONValue], stamp: HLCTimestamp) {
        self.init(id: id)
        write(body, stamp: stamp, replace: false)
    }

    /// The newest stamp in the document: its version.
    public var version: HLCTimestamp {
        var newest = max(deleted ?? .zero, cleared ?? .zero)
        for field in fields.values where field.stamp > newest { newest = field.stamp }
        return newest
    }

    /// True when the document is deleted and no field was written after the delete.
    public var isDeleted: Bool {
        // As `body == nil`, without building the body: pruning keeps only fields newer than the delete.
        guard let deleted, deleted >= (cleared ?? .zero) else { return false }
        return fields.values.allSatisfy { $0.value == nil }
    }

    /// The document as JSON, or nil when deleted.
    public var body: [String: JSONValue]? {
        var out: [String: JSONValue] = [:]
        for (key, field) in fields where !isSuperseded(field) {
            if let value = field.value { out[key] = value }
        }
        if out.isEmpty, let deleted, deleted >= (cleared ?? .zero) { return nil }
        return out
    }

    /// Sets the given fields (merge), or makes them the whole document (replace: other fields are
    /// removed), at `stamp`.
    public mutating func write(_ changes: [String: JSONValue], stamp: HLCTimestamp, replace: Bool) {
        if replace { cleared = max(cleared ?? stamp, stamp) }
        for (key, value) in changes { set(key, Field(value: value, stamp: stamp)) }
        prune()
    }

    /// Deletes the document at `stamp`.
    public mutating func delete(stamp: HLCTimestamp) {
        deleted = max(deleted ?? stamp, stamp)
        prune()
    }

    /// Forgets everything stamped at or before `horizon`, the drop of the document's collection:
    /// readers see nothing from before a drop either way, and the result does not depend on when a
    /// replica forgets, so replicas stay equal. Returns false when nothing is left.
    @discardableResult
    public mutating func forget(upTo horizon: HLCTimestamp) -> Bool {
        if let deleted, deleted <= horizon { self.deleted = nil }
        if let cleared, cleared <= horizon { self.cleared = nil }
        // The usual case of a drop, every field before it, empties the table without building a new one.
        if fields.values.allSatisfy({ $0.stamp <= horizon }) {
            fields = [:]
        } else if fields.values.contains(where: { $0.stamp <= horizon }) {
            fields = fields.filter { $0.value.stamp > horizon }
        }
        return !fields.isEmpty || deleted != nil || cleared != nil
    }

    /// True when ``forget(upTo:)`` would leave nothing: every stamp is at or before `horizon`.
    public func isForgotten(upTo horizon: HLCTimestamp) -> Bool {
        version <= horizon
    }

    /// Folds another replica's copy of the same document into this one.
    public mutating func merge(_ other: ReplicatedDocument) {
        precondition(other.id == id, "merging different documents")
        for (key, field) in other.fields { set(key, field) }
        if let theirs = other.deleted { delete(stamp: theirs) }
        if let theirs = other.cleared { cleared = max(cleared ?? theirs, theirs) }
        prune()
    }

    /// Drops fields a delete or a replace has superseded, so that equal histories give equal states
    /// and a tombstone carries no old values.
    private mutating func prune() {
        guard deleted != nil || cleared != nil else { return }
        // Usually nothing is superseded (a replace stamps its own fields with the replace's stamp):
        // then the table stays as it is instead of being rebuilt.
        guard fields.values.contains(where: isSuperseded) else { return }
        fields = fields.filter { !isSuperseded($0.value) }
    }

    /// True when a delete at or after the field's stamp, or a replace after it, removed the field.
    private func isSuperseded(_ field: Field) -> Bool {
        if let deleted, field.stamp <= deleted { return true }
        if let cleared, field.stamp < cleared { return true }
        return false
    }

    private mutating func set(_ key: String, _ field: Field) {
        guard let current = fields[key] else {
            fields[key] = field
            return
        }
        if current.stamp < field.stamp { fields[key] = field }
    }
}
