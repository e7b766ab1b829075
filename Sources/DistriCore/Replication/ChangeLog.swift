/// The order in which a replica's documents last changed: each change gets the next sequence number,
/// so "everything changed since N" is a walk from N instead of a scan, and remembers which peer
/// sent exactly this state (so anti-entropy does not echo it back). Pure.
struct ChangeLog: Sendable {
    struct Entry: Hashable, Sendable {
        var sequence: UInt64
        /// The peer incarnation that holds exactly this state, because it sent it; nil for local writes
        /// and merges. An incarnation, not a node: a node restarted without its data no longer holds it.
        var source: String?
    }

    private(set) var sequence: UInt64 = 0
    /// The latest entry of every key, by collection and then id (nil: the collection's own stamps).
    /// Nested so that a lookup hashes and compares the id alone: the big table is per collection.
    private var latest: [String: [String?: Entry]] = [:]
    private var count = 0
    /// Keys in the order of their changes; stale positions (a key changed again later) are skipped.
    /// `newest` is the newest stamp of the state recorded when every stamp in it names one origin (nil
    /// when several do), so an anti-entropy answer can pass over what the reader covers at a glance.
    private var order: [(sequence: UInt64, key: DocumentKey, newest: HLCTimestamp?)] = []

    /// Records a change of `key` and returns its sequence number.
    @discardableResult
    mutating func record(_ key: DocumentKey, source: String?, newest: HLCTimestamp? = nil) -> UInt64 {
        sequence += 1
        set(key, Entry(sequence: sequence, source: source))
        order.append((sequence, key, newest))
        if order.count > 1024 && order.count > 2 * count { compact() }
        return sequence
    }

    /// Restores an entry from a snapshot or log (sequence numbers survive a restart with a data dir).
    mutating func restore(_ key: DocumentKey, sequence restored: UInt64) {
        sequence = max(sequence, restored)
        if let current = entry(key), current.sequence >= restored { return }
        set(key, Entry(sequence: restored, source: nil))
        order.append((restored, key, nil))
    }

    /// Sorts after a restore, whose entries may come out of order.
    mutating func finishRestore() {
        compact()
    }

    mutating func remove(_ key: DocumentKey) {
        set(key, nil)
    }

    /// Removes the entries of a collection's documents whose ids `vanished` accepts, in one pass over
    /// the collection's table; the collection's own entry stays. Returns the old table when entries
    /// went (the caller decides where it is freed).
    mutating func removeDocuments(in collection: String, where vanished: (String) -> Bool) -> [String?: Entry]? {
        guard let table = latest[collection] else { return nil }
        let kept = table.filter { id, _ in id.map { !vanished($0) } ?? true }
        guard kept.count < table.count else { return nil }
        count -= table.count - kept.count
        latest[collection] = kept
        return table
    }

    /// The latest entry of `key`, if the log has one.
    func entry(_ key: DocumentKey) -> Entry? {
        latest[key.collection]?[key.id]
    }

    /// The ids of a collection's documents that have an entry.
    func ids(in collection: String) -> [String] {
        latest[collection]?.keys.compactMap { $0 } ?? []
    }

    /// Every key with its latest entry, in no particular order.
    var entries: [(key: DocumentKey, entry: Entry)] {
        latest.flatMap { collection, entries in
            entries.map { (DocumentKey(collection: collection, id: $0.key), $0.value) }
        }
    }

    private mutating func set(_ key: DocumentKey, _ entry: Entry?) {
        // Mutated in place: copying a collection's table out would copy every entry.
        if let entry {
            if latest[key.collection, default: [:]].updateValue(entry, forKey: key.id) == nil { count += 1 }
        } else if latest[key.collection]?.removeValue(forKey: key.id) != nil {
            count -= 1
        }
    }

    /// Keys changed after `sequence`, in order, with their latest entries, passing over positions
    /// whose single-origin newest stamp `covered` says the reader holds.
    func changes(after sequence: UInt64, skipping covered: (HLCTimestamp) -> Bool = { _ in false }) -> [(
        key: DocumentKey, entry: Entry
    )] {
        var low = 0
        var high = order.count
        while low < high {
            let middle = (low + high) / 2
            if order[middle].sequence <= sequence { low = middle + 1 } else { high = middle }
        }
        var out: [(key: DocumentKey, entry: Entry)] = []
        for index in low..<order.count {
            let (position, key, newest) = order[index]
            if let newest, covered(newest) { continue }
            if let entry = entry(key), entry.sequence == position { out.append((key, entry)) }
        }
        return out
    }

    private mutating func compact() {
        order = entries.map { ($0.entry.sequence, $0.key, nil) }.sorted { $0.sequence < $1.sequence }
    }
}
