/// One document as a replica holds it: a map of top-level fields, each a last-writer-wins register
/// stamped with a hybrid logical clock, plus two tombstones: when the document was last deleted and
/// when it was last replaced whole.
///
/// Merging is per field: concurrent updates of different fields both survive; for the same field the
/// later timestamp wins. A delete removes every field written before it; a field written after the
/// delete revives the document with just the later fields. ``merge(_:)`` is commutative, associative
/// and idempotent, so replicas that have seen the same updates in any order hold the same document.
public struct ReplicatedDocument: Hashable, Sendable, Codable {
    /// A field: a base value written by `$set` (or by the add or replace that made the document) and
    /// the increments made on top of that base, one running total per origin.
    ///
    /// Increments count on the base their origin saw: a later base (a `$set`, a replace, a delete, a
    /// drop) resets them, and increments made on it count from there. Two increments never overwrite
    /// each other, because each origin only ever raises its own total (a grow-only map of totals, as a
    /// PN-Counter keeps one): merging keeps, per origin, the total with the newer stamp, so any order,
    /// duplication or interleaving of the same writes gives the same sum.
    public struct Field: Hashable, Sendable, Codable {
        /// The base value (nil: none, a counter that started on a missing field counts from 0).
        public var value: JSONValue?
        /// When the base was written; for a base that ``startsAfterStamp``, the document's reset point
        /// (its last delete or replace) that it starts right after.
        public var stamp: HLCTimestamp
        /// True for the implicit base of a counter started on a missing field: it sits just after
        /// `stamp`, so every origin that increments the missing field agrees on it.
        public var startsAfterStamp: Bool
        /// Per origin (a node's incarnation in one process start, or a compare-and-set coordinator),
        /// the running total of the increments it made on this base, and the stamp of its latest one.
        public var counts: [String: Count]

        /// One origin's running total.
        public struct Count: Hashable, Sendable, Codable {
            /// The sum of the origin's increments on the field's base.
            public var total: Double
            /// When the origin last added to it.
            public var stamp: HLCTimestamp

            /// A running total `total` at `stamp`.
            public init(total: Double, stamp: HLCTimestamp) {
                self.total = total
                self.stamp = stamp
            }
        }

        /// A field with `value` written at `stamp` and the given increments.
        public init(
            value: JSONValue?, stamp: HLCTimestamp, startsAfterStamp: Bool = false, counts: [String: Count] = [:]
        ) {
            self.value = value
            self.stamp = stamp
            self.startsAfterStamp = startsAfterStamp
            self.counts = counts
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.init(
                value: try container.decodeIfPresent(JSONValue.self, forKey: .value),
                stamp: try container.decode(HLCTimestamp.self, forKey: .stamp),
                startsAfterStamp: try container.decodeIfPresent(Bool.self, forKey: .startsAfterStamp) ?? false,
                counts: try container.decodeIfPresent([String: Count].self, forKey: .counts) ?? [:])
        }

        /// The value readers see: the base plus every origin's total (summed in origin order, so every
        /// replica rounds alike). A base that is not a number keeps its value (no origin increments one).
        public var current: JSONValue? {
            guard !counts.isEmpty else { return value }
            let base: Double
            switch value {
            case nil, .null?: base = 0
            case .number(let number)?: base = number
            default: return value
            }
            return .number(counts.sorted { $0.key < $1.key }.reduce(base) { $0 + $1.value.total })
        }

        /// The newest stamp in the field: its base's or its latest increment's.
        public var newest: HLCTimestamp {
            var newest = stamp
            for count in counts.values where count.stamp > newest { newest = count.stamp }
            return newest
        }

        /// Calls `body` with every stamp the field holds.
        public func forEachStamp(_ body: (HLCTimestamp) -> Void) {
            body(stamp)
            for count in counts.values { body(count.stamp) }
        }

        /// True when the base is at or before `stamp` (`orAt`), or before it.
        func baseIsBefore(_ other: HLCTimestamp, orAt: Bool) -> Bool {
            // A base that starts right after its stamp is never at a tombstone's stamp, only after it.
            if startsAfterStamp { return stamp < other }
            return orAt ? stamp <= other : stamp < other
        }

        /// Orders bases: by stamp, and a base that starts after a stamp comes after a base at it.
        func baseIsOlder(than other: Field) -> Bool {
            if stamp != other.stamp { return stamp < other.stamp }
            return !startsAfterStamp && other.startsAfterStamp
        }

        /// Folds another replica's copy of the field in: the newer base wins with its increments; on
        /// the same base, each origin keeps its newer total.
        mutating func merge(_ other: Field) {
            if baseIsOlder(than: other) {
                self = other
                return
            }
            guard !other.baseIsOlder(than: self) else { return }
            for (origin, count) in other.counts {
                if let mine = counts[origin], mine.stamp >= count.stamp { continue }
                counts[origin] = count
            }
        }
    }

    /// The document's id.
    public var id: String
    /// Its fields, by name, with their stamps.
    public private(set) var fields: [String: Field]
    /// When the document was last deleted, if ever: fields written at or before it are gone.
    public private(set) var deleted: HLCTimestamp?
    /// When the document was last replaced whole, if ever: fields written before it are gone.
    public private(set) var cleared: HLCTimestamp?
    /// The idempotency keys (task ids) of the writes applied to this document, with the wall-clock
    /// milliseconds of each write's stamp: a retry of one of them finds it here, on any replica, and is
    /// answered without applying it again. Kept for ``appliedKeyLifetimeMillis`` after the newest,
    /// and at most ``maxAppliedKeys`` of them (the newest): the rule depends only on the keys held, so
    /// replicas that merged the same keys hold the same ones.
    public private(set) var applied: AppliedKeys

    /// How long an idempotency key is kept, in milliseconds after the document's newest one: ten
    /// minutes, far beyond a call's retries.
    public static let appliedKeyLifetimeMillis: UInt64 = 600_000
    /// Most idempotency keys a document keeps (its newest writes); ~16 bytes each on the wire.
    public static let maxAppliedKeys = 256

    /// An empty document `id`.
    public init(id: String) {
        self.id = id
        self.fields = [:]
        self.deleted = nil
        self.cleared = nil
        self.applied = AppliedKeys()
    }

    /// A document as decoded from the wire or a log (normalised as every merge leaves it).
    public init(
        id: String, fields: [String: Field], deleted: HLCTimestamp?, cleared: HLCTimestamp?,
        applied: AppliedKeys = AppliedKeys()
    ) {
        self.id = id
        self.fields = fields
        self.deleted = deleted
        self.cleared = cleared
        self.applied = applied
        prune()
        pruneApplied()
    }

    /// Decoded through the normalising initialiser, as wire and log documents are: a replica stores a
    /// document new to it as it arrives, which equals the merge only for normalised documents.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try container.decode(String.self, forKey: .id),
            fields: try container.decode([String: Field].self, forKey: .fields),
            deleted: try container.decodeIfPresent(HLCTimestamp.self, forKey: .deleted),
            cleared: try container.decodeIfPresent(HLCTimestamp.self, forKey: .cleared),
            applied: try container.decodeIfPresent(AppliedKeys.self, forKey: .applied) ?? AppliedKeys())
    }

    /// A document created with `body`'s fields, all stamped `stamp`.
    public init(id: String, body: [String: JSONValue], stamp: HLCTimestamp) {
        self.init(id: id)
        write(body, stamp: stamp, replace: false)
    }

    /// The newest stamp in the document: its version.
    public var version: HLCTimestamp {
        var newest = max(deleted ?? .zero, cleared ?? .zero)
        for field in fields.values {
            let stamp = field.newest
            if stamp > newest { newest = stamp }
        }
        return newest
    }

    /// True when the document is deleted and no field was written after the delete.
    public var isDeleted: Bool {
        // As `body == nil`, without building the body: pruning keeps only fields newer than the delete.
        guard let deleted, deleted >= (cleared ?? .zero) else { return false }
        return fields.values.allSatisfy { $0.value == nil && $0.counts.isEmpty }
    }

    /// The document as JSON, or nil when deleted.
    public var body: [String: JSONValue]? {
        var out: [String: JSONValue] = [:]
        for (key, field) in fields where !isSuperseded(field) {
            if let value = field.current { out[key] = value }
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

    /// Adds `amount` to `key` as `origin`'s increment, stamped `stamp`: on the field's base as this
    /// replica holds it, or, when the field is missing, on the implicit base right after the
    /// document's last delete or replace (every origin that finds it missing agrees on that one).
    public mutating func increment(_ key: String, by amount: Double, origin: String, stamp: HLCTimestamp) {
        if var field = fields[key], !isSuperseded(field) {
            let total = (field.counts[origin]?.total ?? 0) + amount
            field.counts[origin] = Field.Count(total: total, stamp: max(stamp, field.counts[origin]?.stamp ?? stamp))
            fields[key] = field
            return
        }
        let resetPoint = max(deleted ?? .zero, cleared ?? .zero)
        fields[key] = Field(
            value: nil, stamp: resetPoint, startsAfterStamp: true,
            counts: [origin: Field.Count(total: amount, stamp: stamp)])
    }

    /// Records that the write with idempotency key `key`, stamped at `millis`, was applied here.
    public mutating func noteApplied(_ key: UInt64, millis: UInt64) {
        guard key != 0 else { return }
        applied.insert(key, millis: millis)
        pruneApplied()
    }

    /// Keeps the keys within the lifetime of the newest, and the newest ``maxAppliedKeys`` of those.
    /// Both cuts depend only on the keys held and only ever tighten as keys are added, so pruning
    /// before or after a merge gives the same keys.
    private mutating func pruneApplied() {
        guard applied.count > 1, let newest = applied.newest else { return }
        let oldest = newest > Self.appliedKeyLifetimeMillis ? newest - Self.appliedKeyLifetimeMillis : 0
        applied.removeAll { $0 < oldest }
        applied.keepNewest(Self.maxAppliedKeys)
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
        // A field whose base predates the drop goes with its increments: the drop reset it.
        // The usual case of a drop, every field before it, empties the table without building a new one.
        if fields.values.allSatisfy({ $0.baseIsBefore(horizon, orAt: true) }) {
            fields = [:]
        } else if fields.values.contains(where: { $0.baseIsBefore(horizon, orAt: true) }) {
            fields = fields.filter { !$0.value.baseIsBefore(horizon, orAt: true) }
        }
        applied.removeAll { $0 <= horizon.millis }
        guard !fields.isEmpty || deleted != nil || cleared != nil else {
            applied = AppliedKeys()
            return false
        }
        return true
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
        if !other.applied.isEmpty {
            applied.merge(other.applied)
            pruneApplied()
        }
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
        if let deleted, field.baseIsBefore(deleted, orAt: true) { return true }
        if let cleared, field.baseIsBefore(cleared, orAt: false) { return true }
        return false
    }

    private mutating func set(_ key: String, _ field: Field) {
        // Merged in place: the table's storage is not copied.
        if fields[key]?.merge(field) == nil { fields[key] = field }
    }
}
