extension DocumentStore {
    /// The replicated state at `key`, as a change to send, or nil when this replica has none.
    public func change(at key: DocumentKey) -> DocumentChange? {
        guard let collection = collections[key.collection] else { return nil }
        guard let id = key.id else {
            return .collection(name: key.collection, created: collection.created, dropped: collection.dropped)
        }
        return collection.documents[id].map { .document(collection: key.collection, $0) }
    }

    /// Merges a change in; returns the key it touched and whether this replica's state changed, and
    /// whether the result is exactly the incoming state.
    @discardableResult
    public mutating func apply(_ change: DocumentChange) -> (key: DocumentKey, changed: Bool, equalsIncoming: Bool) {
        switch change {
        case .collection(let name, let created, let dropped):
            let before = collections[name]
            var collection = before ?? Collection(created: created)
            collection.created = max(collection.created, created)
            if let dropped { collection.dropped = max(collection.dropped ?? dropped, dropped) }
            if before?.dropped != collection.dropped { collection.forgetDropped() }
            collections[name] = collection
            let changed = before?.created != collection.created || before?.dropped != collection.dropped
            let equal = collection.created == created && collection.dropped == dropped
            return (DocumentKey(collection: name, id: nil), changed, equal)
        case .document(let name, let incoming):
            // Merged in place, in one access: copying the collection out would copy all of its documents.
            let (changed, equal) = collections[name, default: Collection(created: .zero)].merge(incoming)
            return (DocumentKey(collection: name, id: incoming.id), changed, equal)
        }
    }

    /// Forgets a document entirely (a tombstone every replica has seen).
    public mutating func purge(_ key: DocumentKey) {
        guard let id = key.id else { return }
        collections[key.collection]?.documents[id] = nil
    }

    /// The newest stamp of a change whose stamps all name one origin; nil when several origins wrote
    /// it or it has no stamp.
    static func singleOriginNewest(of change: DocumentChange) -> HLCTimestamp? {
        var newest: HLCTimestamp?
        func see(_ stamp: HLCTimestamp) -> Bool {
            guard let current = newest else {
                newest = stamp
                return true
            }
            guard current.node == stamp.node else { return false }
            if stamp > current { newest = stamp }
            return true
        }
        switch change {
        case .collection(_, let created, let dropped):
            guard see(created), dropped.map(see) ?? true else { return nil }
        case .document(_, let document):
            for field in document.fields.values {
                guard see(field.stamp), field.counts.values.allSatisfy({ see($0.stamp) }) else { return nil }
            }
            guard document.deleted.map(see) ?? true, document.cleared.map(see) ?? true else { return nil }
        }
        return newest
    }

    /// The newest stamp in a change, if it has any.
    static func newestStamp(of change: DocumentChange) -> HLCTimestamp? {
        var newest: HLCTimestamp?
        func see(_ stamp: HLCTimestamp?) {
            guard let stamp, newest.map({ stamp > $0 }) ?? true else { return }
            newest = stamp
        }
        switch change {
        case .collection(_, let created, let dropped):
            see(created)
            see(dropped)
        case .document(_, let document):
            see(document.deleted)
            see(document.cleared)
            for field in document.fields.values { see(field.newest) }
        }
        return newest
    }
}
