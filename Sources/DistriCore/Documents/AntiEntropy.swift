/// Digests for anti-entropy: replicas compare a hash per collection, then per range of document ids,
/// and send only the documents of ranges that differ, so a replica that is mostly in sync catches up
/// without a full dump. Pure.
public enum AntiEntropy {
    /// Number of id ranges per collection (by the first byte of the id's hash).
    public static let rangeCount = 256

    /// A collection's summary: its metadata stamps and a hash per id range.
    public struct CollectionDigest: Hashable, Sendable, Codable {
        /// When the collection was created.
        public var created: HLCTimestamp
        /// When it was dropped, if it was.
        public var dropped: HLCTimestamp?
        /// A hash per id range (``rangeCount`` of them).
        public var ranges: [UInt64]

        /// One hash of the whole collection.
        public var combined: UInt64 { ranges.reduce(0xcbf2_9ce4_8422_2325) { mix($0 ^ $1) } }
    }

    /// Digests of every collection in a store.
    public static func digest(_ store: DocumentStore) -> [String: CollectionDigest] {
        store.collections.mapValues { collection in
            var ranges = [UInt64](repeating: 0, count: rangeCount)
            for document in collection.documents.values {
                // Sum of per-document hashes: independent of order, cheap to update.
                ranges[range(of: document.id)] &+= documentHash(document)
            }
            return CollectionDigest(created: collection.created, dropped: collection.dropped, ranges: ranges)
        }
    }

    /// What `local` must send so that a replica with digests `remote` has everything `local` has:
    /// collection metadata where it differs, and the documents of every id range whose hash differs.
    public static func missing(
        from local: DocumentStore, comparedTo remote: [String: CollectionDigest]
    ) -> DocumentStore {
        var delta = DocumentStore()
        let mine = digest(local)
        for (name, collection) in local.collections {
            guard let digest = mine[name] else { continue }
            let theirs = remote[name]
            if theirs?.created != digest.created || theirs?.dropped != digest.dropped || theirs == nil {
                delta.createCollection(name, stamp: collection.created)
                if let dropped = collection.dropped { delta.dropCollection(name, stamp: dropped) }
            }
            guard theirs?.ranges != digest.ranges else { continue }
            for document in collection.documents.values
            where theirs.map({ $0.ranges[range(of: document.id)] != digest.ranges[range(of: document.id)] }) ?? true {
                delta.merge(document, in: name)
            }
        }
        return delta
    }

    /// The id range a document falls in.
    public static func range(of id: String) -> Int {
        Int(mix(fnv(id)) >> 56) % rangeCount
    }

    /// A hash of a document's full replicated state (every field's value and stamp, and tombstones).
    public static func documentHash(_ document: ReplicatedDocument) -> UInt64 {
        var hash = fnv(document.id)
        for key in document.fields.keys.sorted() {
            guard let field = document.fields[key] else { continue }
            hash = mix(hash ^ fnv(key))
            hash = mix(hash ^ stampHash(field.stamp) ^ (field.startsAfterStamp ? 0xA : 0))
            hash = mix(hash ^ (field.value.map(valueHash) ?? 0x5EED))
            for origin in field.counts.keys.sorted() {
                guard let count = field.counts[origin] else { continue }
                hash = mix(hash ^ fnv(origin) ^ count.total.bitPattern)
                hash = mix(hash ^ stampHash(count.stamp))
            }
        }
        if let deleted = document.deleted { hash = mix(hash ^ stampHash(deleted) ^ 0xD) }
        if let cleared = document.cleared { hash = mix(hash ^ stampHash(cleared) ^ 0xC) }
        for (key, millis) in document.applied.sorted { hash = mix(hash ^ mix(key ^ 0xE) ^ millis) }
        return hash
    }

    /// A structural hash of a JSON value (objects hashed in key order).
    static func valueHash(_ value: JSONValue) -> UInt64 {
        switch value {
        case .null: return 0x11
        case .bool(let flag): return flag ? 0x13 : 0x17
        case .number(let number): return mix(number.bitPattern ^ 0x19)
        case .string(let text): return mix(fnv(text) ^ 0x1D)
        case .array(let items): return items.reduce(UInt64(0x1F)) { mix($0 ^ valueHash($1)) }
        case .object(let fields):
            return fields.keys.sorted().reduce(UInt64(0x25)) { hash, key in
                mix(mix(hash ^ fnv(key)) ^ valueHash(fields[key]!))
            }
        }
    }

    private static func stampHash(_ stamp: HLCTimestamp) -> UInt64 {
        mix(stamp.millis ^ (UInt64(stamp.counter) << 40) ^ fnv(stamp.node))
    }

    static func fnv(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }

    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
