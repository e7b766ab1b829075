/// A replica of the whole document DB: named collections of ``ReplicatedDocument``s. Pure; every
/// change carries its hybrid-logical-clock stamp, so replicas merge instead of overwriting.
public struct DocumentStore: Hashable, Sendable, Codable {
    /// One collection: when it was created and dropped (last writer wins), and its documents.
    public struct Collection: Hashable, Sendable, Codable {
        /// When the collection was created.
        public var created: HLCTimestamp
        /// When it was dropped, if it was (later than `created`).
        public var dropped: HLCTimestamp?
        /// Its documents by id, tombstones included.
        public var documents: [String: ReplicatedDocument] = [:]

        /// Applies the last drop to the documents: what was written at or before it is forgotten,
        /// and documents with nothing written after it are removed, their memory with them.
        mutating func forgetDropped() {
            guard let dropped, !documents.isEmpty else { return }
            // Usually every document predates the drop: the table goes whole, nothing is copied.
            guard documents.values.contains(where: { !$0.isForgotten(upTo: dropped) }) else {
                documents = [:]
                return
            }
            documents = documents.compactMapValues { document in
                if document.isForgotten(upTo: dropped) { return nil }
                var document = document
                return document.forget(upTo: dropped) ? document : nil
            }
        }

        /// Folds another replica's copy of a document in; returns whether this replica's state changed,
        /// and whether it is now exactly the incoming state. What predates the last drop is forgotten:
        /// a late state of a dropped document changes nothing, and a later one brings only what was
        /// written after the drop.
        @discardableResult
        mutating func merge(_ incoming: ReplicatedDocument) -> (changed: Bool, equalsIncoming: Bool) {
            var incoming = incoming
            var forgotten = false
            if let dropped {
                let original = incoming
                guard incoming.forget(upTo: dropped) else { return (false, false) }
                forgotten = incoming != original
            }
            guard let index = documents.index(forKey: incoming.id) else {
                // New here: merging into nothing gives the incoming state (documents are normalised).
                documents[incoming.id] = incoming
                return (true, !forgotten)
            }
            let before = documents.values[index]
            var merged = before
            merged.merge(incoming)
            let changed = merged != before
            if changed { documents.values[index] = merged }
            return (changed, !forgotten && merged == incoming)
        }

        /// True when the collection exists: created after its last drop.
        public var exists: Bool { dropped.map { created > $0 } ?? true }

        /// Documents that are not deleted, and not written only before the last drop.
        public var liveCount: Int { exists ? documents.values.filter(isVisible).count : 0 }

        /// True when readers see the document (as `visibleBody(document) != nil`, without building it).
        public func isVisible(_ document: ReplicatedDocument) -> Bool {
            guard exists, !document.isDeleted else { return false }
            if let dropped, document.version <= dropped { return false }
            return true
        }

        /// A document's body as readers see it, taking the collection's last drop into account.
        public func visibleBody(_ document: ReplicatedDocument) -> [String: JSONValue]? {
            guard exists, let body = document.body else { return nil }
            if let dropped, document.version <= dropped { return nil }
            return body
        }
    }

    /// The collections by name, dropped ones included.
    public internal(set) var collections: [String: Collection] = [:]

    /// An empty store.
    public init() {}

    /// Names of existing collections, sorted.
    public var collectionNames: [String] { collections.filter { $0.value.exists }.keys.sorted() }

    /// Documents per existing collection (for the stats).
    public var counts: [String: Int] {
        collections.filter { $0.value.exists }.mapValues(\.liveCount)
    }

    /// Tombstoned documents kept for replication (for the stats).
    public var tombstoneCount: Int {
        collections.values.reduce(0) { $0 + $1.documents.values.filter(\.isDeleted).count }
    }

    /// Creates the collection `name` at `stamp` (last writer wins against a drop).
    public mutating func createCollection(_ name: String, stamp: HLCTimestamp) {
        guard var collection = collections[name] else {
            collections[name] = Collection(created: stamp)
            return
        }
        collection.created = max(collection.created, stamp)
        collections[name] = collection
    }

    /// Drops a collection at `stamp`: its documents written before are forgotten (see
    /// ``ReplicatedDocument/forget(upTo:)``).
    public mutating func dropCollection(_ name: String, stamp: HLCTimestamp) {
        collections[name, default: Collection(created: .zero)].dropped = max(collections[name]?.dropped ?? stamp, stamp)
        collections[name]?.forgetDropped()
    }

    /// The live document, or nil.
    public func document(_ id: String, in collection: String) -> [String: JSONValue]? {
        guard let stored = collections[collection], let document = stored.documents[id] else { return nil }
        return stored.visibleBody(document)
    }

    /// The live documents of a collection, or nil when it does not exist.
    public func documents(in collection: String) -> [(id: String, body: [String: JSONValue])]? {
        guard let stored = collections[collection], stored.exists else { return nil }
        return stored.documents.values.compactMap { document in
            stored.visibleBody(document).map { (document.id, $0) }
        }
    }

    /// The live documents of a collection that match `filter`, each with its id under `_id` (as
    /// filters and readers see it); nil when the collection does not exist. A filter that pins `_id`
    /// looks the documents up instead of scanning.
    public func documents(in collection: String, matching filter: DocumentFilter) -> [(
        id: String, body: [String: JSONValue]
    )]? {
        guard let stored = collections[collection], stored.exists else { return nil }
        func visible(_ document: ReplicatedDocument) -> (id: String, body: [String: JSONValue])? {
            guard var body = stored.visibleBody(document) else { return nil }
            body["_id"] = .string(document.id)
            return filter.matches(body) ? (document.id, body) : nil
        }
        if let ids = filter.pinnedIDs {
            return Set(ids).sorted().compactMap { stored.documents[$0].flatMap(visible) }
        }
        return stored.documents.values.compactMap(visible)
    }

    /// Applies a change to one document (creating the collection entry if this replica has not seen
    /// it yet: the create may arrive later) and returns the document as it now stands.
    @discardableResult
    public mutating func update(
        _ id: String, in collection: String, _ change: (inout ReplicatedDocument) -> Void
    ) -> ReplicatedDocument {
        // Mutated in place: copying the collection out would copy all of its documents on every write.
        // The result is taken inside the access, which saves looking the document up again.
        func changed(_ document: inout ReplicatedDocument) -> ReplicatedDocument {
            change(&document)
            return document
        }
        return changed(
            &collections[collection, default: Collection(created: .zero)].documents[
                id, default: ReplicatedDocument(id: id)])
    }

    /// Folds another replica's copy of one document in.
    public mutating func merge(_ document: ReplicatedDocument, in collection: String) {
        collections[collection, default: Collection(created: .zero)].merge(document)
    }

    /// Folds another whole replica in. Commutative, associative and idempotent.
    public mutating func merge(_ other: DocumentStore) {
        for (name, theirs) in other.collections {
            var mine = collections[name] ?? Collection(created: theirs.created)
            mine.created = max(mine.created, theirs.created)
            if let dropped = theirs.dropped { mine.dropped = max(mine.dropped ?? dropped, dropped) }
            for (id, document) in theirs.documents {
                var merged = mine.documents[id] ?? ReplicatedDocument(id: id)
                merged.merge(document)
                mine.documents[id] = merged
            }
            mine.forgetDropped()
            collections[name] = mine
        }
    }
}
