extension ReplicaEngine {
    /// Rebuilds a replica from its log after a restart. The replica takes a fresh `epoch` all the same:
    /// changes it had not yet made durable may have reached peers under sequence numbers it would
    /// otherwise hand out again. Peers then compare digests once, and the coverage stamps keep that
    /// exchange down to what actually differs.
    public mutating func restore(_ entries: [PersistedEntry], now: UInt64) {
        // The log kept this replica's promises and what it committed: it votes at once.
        relearnedCommits = true
        for entry in entries {
            switch entry {
            case .change(let sequence, let change):
                let (key, _, _) = store.apply(change)
                log.restore(key, sequence: sequence)
                if let newest = DocumentStore.newestStamp(of: change) { clock.observe(newest, wallMillis: now) }
            case .syncState(let state):
                pulled = state.pulled
                for (origin, stamp) in state.coverage { coverage[origin] = max(coverage[origin] ?? .zero, stamp) }
                // The former incarnation's own writes up to its clock at this entry were logged before
                // it: this replica holds all of them, and says so to the peers it pulls from.
                if state.clock.node != clock.node {
                    coverage[state.clock.node] = max(coverage[state.clock.node] ?? .zero, state.clock)
                }
                clock.observe(state.clock, wallMillis: now)
            case .acceptor(let key, let acceptor):
                acceptors[key] = acceptor
            }
        }
        // Documents a later drop removed left their earlier log entries behind.
        for (name, collection) in store.collections where collection.dropped != nil { forgetVanished(in: name) }
        log.finishRestore()
        // Tombstones as the merged state has them: a later entry may have revived a deleted document.
        for (key, _) in log.entries {
            guard let id = key.id, store.collections[key.collection]?.documents[id]?.isDeleted == true else { continue }
            tombstonedAt[key] = now
        }
    }

    /// The whole replica as log entries, to compact the log into.
    public func snapshot() -> [PersistedEntry] {
        var entries: [PersistedEntry] = []
        for (key, entry) in log.entries.sorted(by: { $0.entry.sequence < $1.entry.sequence }) {
            if let change = store.change(at: key) { entries.append(.change(sequence: entry.sequence, change)) }
        }
        entries.append(.syncState(syncState))
        for (key, acceptor) in acceptors.sorted(by: { "\($0.key)" < "\($1.key)" }) {
            entries.append(.acceptor(key, acceptor))
        }
        return entries
    }
}
