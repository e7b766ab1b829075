/// The idempotency keys (task ids) applied to one document, each with the wall-clock milliseconds of
/// its write. Most documents hold one key (the write that made them), kept inline: a table is
/// allocated only from the second key on, which saves about 100 bytes per document.
///
/// The form is canonical (one key inline, two or more in the table), so equal sets compare equal.
public struct AppliedKeys: Hashable, Sendable, Codable {
    /// The only key (0: none, or the keys are in `table`).
    private var key: UInt64 = 0
    private var millis: UInt64 = 0
    /// Two keys or more.
    private var table: [UInt64: UInt64] = [:]

    /// No keys.
    public init() {}

    /// The keys of `pairs` (key 0 is no key and is skipped; a repeated key keeps its newest time).
    public init(_ pairs: some Sequence<(key: UInt64, millis: UInt64)>) {
        for pair in pairs { insert(pair.key, millis: pair.millis) }
    }

    public init(from decoder: any Decoder) throws {
        let table = try decoder.singleValueContainer().decode([UInt64: UInt64].self)
        self.init(table.map { (key: $0.key, millis: $0.value) })
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Dictionary(uniqueKeysWithValues: sorted.map { ($0.key, $0.millis) }))
    }

    /// How many keys are held.
    public var count: Int { key != 0 ? 1 : table.count }
    /// Whether no key is held.
    public var isEmpty: Bool { count == 0 }

    /// The write time of `key`, or nil when it was not applied here.
    public subscript(key: UInt64) -> UInt64? {
        if self.key != 0 { return self.key == key ? millis : nil }
        return table[key]
    }

    /// The keys in ascending order, with their times.
    public var sorted: [(key: UInt64, millis: UInt64)] {
        if key != 0 { return [(key, millis)] }
        return table.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// The newest write time, nil when empty.
    public var newest: UInt64? {
        key != 0 ? millis : table.values.max()
    }

    /// Adds `key` (keeping its newest time when present).
    public mutating func insert(_ key: UInt64, millis: UInt64) {
        guard key != 0 else { return }
        if self.key == key {
            self.millis = max(self.millis, millis)
        } else if self.key == 0 && table.isEmpty {
            (self.key, self.millis) = (key, millis)
        } else {
            if self.key != 0 {
                table[self.key] = self.millis
                (self.key, self.millis) = (0, 0)
            }
            table[key] = max(table[key] ?? millis, millis)
        }
    }

    /// Adds every key of `other`.
    public mutating func merge(_ other: AppliedKeys) {
        if other.key != 0 { insert(other.key, millis: other.millis) }
        for (key, millis) in other.table { insert(key, millis: millis) }
    }

    /// Removes the keys whose time satisfies `predicate`.
    public mutating func removeAll(where predicate: (UInt64) -> Bool) {
        if key != 0 {
            if predicate(millis) { (key, millis) = (0, 0) }
            return
        }
        guard table.values.contains(where: predicate) else { return }
        let kept = table.filter { !predicate($0.value) }
        table = [:]
        for (key, millis) in kept { insert(key, millis: millis) }
    }

    /// Keeps the `limit` newest keys (by time, then key).
    public mutating func keepNewest(_ limit: Int) {
        guard count > limit else { return }
        let kept = table.sorted { ($0.value, $0.key) > ($1.value, $1.key) }.prefix(limit)
        self = AppliedKeys(kept.map { (key: $0.key, millis: $0.value) })
    }
}
