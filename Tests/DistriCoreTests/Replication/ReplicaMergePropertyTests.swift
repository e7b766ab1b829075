import Testing

@testable import DistriCore

/// Property tests of the store-level merge the replicas rely on: changes may arrive in any order, twice,
/// or folded into whole stores, and every replica must end up with the same state.
@Suite struct ReplicaMergePropertyTests {
    /// One client event with a stamp of its own, as a replica could have seen it.
    enum Event {
        case write(collection: String, id: String, [String: JSONValue], replace: Bool)
        case delete(collection: String, id: String)
        case create(String)
        case drop(String)
    }

    /// A history of events with unique stamps, and the changes replicas derive from parts of it.
    struct History {
        var events: [(stamp: HLCTimestamp, event: Event)] = []

        init(random: inout SplitMix64, count: Int) {
            var used: Set<HLCTimestamp> = []
            while events.count < count {
                let stamp = random.stamp()
                guard used.insert(stamp).inserted else { continue }
                let collection = random.element(["c1", "c2"])
                let id = random.element(["d1", "d2", "d3"])
                let event: Event
                switch random.below(10) {
                case 0: event = .create(collection)
                case 1: event = .drop(collection)
                case 2, 3: event = .delete(collection: collection, id: id)
                default:
                    var fields: [String: JSONValue] = [:]
                    for _ in 0...random.below(3) { fields[random.element(["a", "b", "c"])] = random.jsonValue() }
                    event = .write(collection: collection, id: id, fields, replace: random.chance(0.2))
                }
                events.append((stamp, event))
            }
        }

        /// The change a replica that saw exactly `seen` (in a random order) would send for each key.
        func changes(of seen: [Int], random: inout SplitMix64) -> [DocumentChange] {
            var documents: [DocumentKey: ReplicatedDocument] = [:]
            var collections: [String: (created: HLCTimestamp, dropped: HLCTimestamp?)] = [:]
            for index in seen.shuffled(using: &random) {
                let (stamp, event) = events[index]
                switch event {
                case .write(let collection, let id, let fields, let replace):
                    let key = DocumentKey(collection: collection, id: id)
                    documents[key, default: ReplicatedDocument(id: id)].write(fields, stamp: stamp, replace: replace)
                case .delete(let collection, let id):
                    documents[DocumentKey(collection: collection, id: id), default: ReplicatedDocument(id: id)]
                        .delete(stamp: stamp)
                case .create(let name):
                    let current = collections[name] ?? (.zero, nil)
                    collections[name] = (max(current.created, stamp), current.dropped)
                case .drop(let name):
                    let current = collections[name] ?? (.zero, nil)
                    collections[name] = (current.created, max(current.dropped ?? stamp, stamp))
                }
            }
            return collections.map {
                DocumentChange.collection(name: $0.key, created: $0.value.created, dropped: $0.value.dropped)
            }
                + documents.map { DocumentChange.document(collection: $0.key.collection, $0.value) }
        }

        /// The state of a replica that saw every event.
        func reference(random: inout SplitMix64) -> DocumentStore {
            var store = DocumentStore()
            for change in changes(of: Array(events.indices), random: &random) { store.apply(change) }
            return store
        }
    }

    /// Random subsets of the history's events, as different replicas would hold them.
    private static func subsets(
        of history: History, count: Int, random: inout SplitMix64
    ) -> [[Int]] {
        var subsets = (0..<count).map { _ in history.events.indices.filter { _ in random.chance(0.5) } }
        // Together they hold every event.
        for index in history.events.indices where !subsets.contains(where: { $0.contains(index) }) {
            subsets[random.below(count)].append(index)
        }
        return subsets
    }

    private static func store(_ changes: [DocumentChange]) -> DocumentStore {
        var store = DocumentStore()
        for change in changes { store.apply(change) }
        return store
    }

    @Test("changes applied in any order, with duplicates, give the state of the whole history")
    func anyOrderAnyDuplicates() {
        for seed in UInt64(0)..<300 {
            var random = SplitMix64(seed: seed)
            let history = History(random: &random, count: 4 + random.below(20))
            let reference = history.reference(random: &random)
            var changes = Self.subsets(of: history, count: 3, random: &random).flatMap {
                history.changes(of: $0, random: &random)
            }
            for _ in 0..<random.below(6) where !changes.isEmpty { changes.append(random.element(changes)) }
            for _ in 0..<4 {
                changes.shuffle(using: &random)
                let store = Self.store(changes)
                #expect(store == reference, "seed \(seed): the order of changes changed the state")
                #expect(store.collectionNames == reference.collectionNames)
                for name in reference.collectionNames {
                    let sorted = { (store: DocumentStore) in store.documents(in: name)?.sorted { $0.id < $1.id } }
                    #expect(sorted(store)?.map(\.id) == sorted(reference)?.map(\.id), "seed \(seed)")
                    #expect(sorted(store)?.map(\.body) == sorted(reference)?.map(\.body), "seed \(seed)")
                }
            }
        }
    }

    @Test("applying a change reports whether it changed the store and whether the result is the change")
    func applyReportsChanges() {
        for seed in UInt64(0)..<300 {
            var random = SplitMix64(seed: 10_000 + seed)
            let history = History(random: &random, count: 4 + random.below(16))
            var changes = Self.subsets(of: history, count: 3, random: &random).flatMap {
                history.changes(of: $0, random: &random)
            }
            changes.shuffle(using: &random)
            var store = DocumentStore()
            for change in changes + changes.prefix(3) {
                let before = store
                let (key, changed, equalsIncoming) = store.apply(change)
                #expect(changed == (before != store), "seed \(seed): `changed` is wrong for \(key)")
                #expect(
                    equalsIncoming == (store.change(at: key) == change), "seed \(seed): `equalsIncoming` for \(key)")
                var again = store
                #expect(again.apply(change).changed == false, "seed \(seed): applying twice changed \(key)")
                #expect(again == store)
            }
        }
    }

    @Test("whole-store merge is commutative, associative and idempotent, and equals applying the changes")
    func storeMergeIsASemilattice() {
        for seed in UInt64(0)..<300 {
            var random = SplitMix64(seed: 20_000 + seed)
            let history = History(random: &random, count: 4 + random.below(20))
            let parts = Self.subsets(of: history, count: 3, random: &random).map {
                history.changes(of: $0, random: &random)
            }
            let (a, b, c) = (Self.store(parts[0]), Self.store(parts[1]), Self.store(parts[2]))
            func merged(_ x: DocumentStore, _ y: DocumentStore) -> DocumentStore {
                var out = x
                out.merge(y)
                return out
            }
            #expect(merged(a, b) == merged(b, a), "seed \(seed): merge is not commutative")
            #expect(merged(merged(a, b), c) == merged(a, merged(b, c)), "seed \(seed): merge is not associative")
            #expect(merged(a, a) == a, "seed \(seed): merge is not idempotent")
            #expect(merged(merged(a, b), b) == merged(a, b), "seed \(seed): merging again changed the state")
            #expect(merged(a, b) == Self.store(parts[0] + parts[1]), "seed \(seed): merge differs from applying")
            #expect(merged(merged(a, b), c) == history.reference(random: &random), "seed \(seed)")
            var empty = DocumentStore()
            empty.merge(a)
            #expect(empty == a, "seed \(seed): merging into an empty store is not a copy")
        }
    }

    @Test("document merge is commutative, associative and idempotent over states of one history")
    func documentMerge() {
        for seed in UInt64(0)..<500 {
            var random = SplitMix64(seed: 30_000 + seed)
            let history = History(random: &random, count: 4 + random.below(20))
            let parts = Self.subsets(of: history, count: 3, random: &random)
            func document(_ part: [Int]) -> ReplicatedDocument {
                var random = random
                let changes = history.changes(of: part, random: &random)
                for case .document("c1", let document) in changes where document.id == "d1" { return document }
                return ReplicatedDocument(id: "d1")
            }
            let (a, b, c) = (document(parts[0]), document(parts[1]), document(parts[2]))
            func merged(_ x: ReplicatedDocument, _ y: ReplicatedDocument) -> ReplicatedDocument {
                var out = x
                out.merge(y)
                return out
            }
            #expect(merged(a, b) == merged(b, a), "seed \(seed)")
            #expect(merged(merged(a, b), c) == merged(a, merged(b, c)), "seed \(seed)")
            #expect(merged(a, a) == a, "seed \(seed)")
            #expect(merged(a, b).body == merged(b, a).body, "seed \(seed)")
        }
    }
}
