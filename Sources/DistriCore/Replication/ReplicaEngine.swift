/// One node's replica of the document DB, as a pure state machine: client operations, peer requests,
/// peer answers and clock ticks go in; messages to send, log entries to persist and operations to
/// complete come out. The shell supplies the wall clock (for the hybrid logical clock) and the seed.
///
/// - Writes are stamped by the hybrid logical clock, applied locally, and pushed to every alive peer
///   at the next ``flush(now:)`` (one batch per peer per flush, while the peer's push window has room;
///   else with the answer that makes room); `majority` and `all` writes complete when enough peers
///   have merged the push.
/// - Anti-entropy pulls from one peer per ``ReplicaSettings/syncInterval``: the request names how far
///   the requester has the responder's change sequence (or sends range digests when it does not
///   know), and per-origin coverage stamps, so only what the requester lacks travels.
/// - Tombstones are purged once every known replica has pulled past them, after a grace period.
/// - Conditional updates run one compare-and-set (Paxos) round per attempt among a majority.
public struct ReplicaEngine: Sendable {
    /// This replica's node id.
    public let node: String
    /// The engine's tuning.
    public let settings: ReplicaSettings
    /// This start's epoch: a fresh random number per start without its data.
    public internal(set) var epoch: UInt64
    /// The replica's documents.
    public internal(set) var store = DocumentStore()
    var clock: HybridLogicalClock
    var log = ChangeLog()
    var random: SplitMix64
    /// Drawn at every start: increments are counted per origin as running totals, and a process that
    /// restarts from its log starts new totals instead of continuing ones that its log may hold
    /// older than its peers do.
    let startNonce: String

    /// Per origin node, the stamp up to which this replica holds all of its writes.
    var coverage: [String: HLCTimestamp] = [:]
    /// What this replica holds of each peer.
    var pulled: [String: Watermark] = [:]
    /// What each peer holds of this replica (as its pull requests say).
    var confirmed: [String: UInt64] = [:]
    /// Other replicas: every known one counts for quorums; only alive ones get messages.
    var known: Set<String> = []
    var alive: Set<String> = []

    var outbox: [String: [DocumentChange]] = [:]
    /// Per alive peer, the clock reading after which every local write went to its outbox: the
    /// start of the next push's ``PushChain``. Nil while the chain is broken.
    var pushSince: [String: HLCTimestamp] = [:]
    var outboxOperations: [String: [UInt64]] = [:]
    var outstanding: [UInt64: Outstanding] = [:]
    var nextRequest: UInt64 = 1
    /// Purged tombstones and their delete stamps: older states of those documents are ignored.
    var purged: [DocumentKey: HLCTimestamp] = [:]
    /// Peers that became alive and are still to be caught up from, in turn.
    var catchUpQueue: [String] = []
    var catchUpInFlight = false
    var catchUpRequest: UInt64 = 0
    /// Batches of each multi-batch flush still in flight.
    var flushesInFlight: [UInt64: Int] = [:]
    var writes: [UInt64: QuorumWrite] = [:]
    var reads: [UInt64: ReadBarrier] = [:]
    /// Reads waiting for the pulls of the next flush.
    var readsToPull: [UInt64] = []
    var rounds: [UInt64: CASRound] = [:]
    var acceptors: [DocumentKey: DocumentAcceptor] = [:]
    var tombstonedAt: [DocumentKey: UInt64] = [:]
    /// Push chains that arrived before the writes they continue from, by origin (`since` to `upTo`):
    /// pushes of one origin overtake each other when they leave from different event loops.
    var chainsAhead: [String: [HLCTimestamp: HLCTimestamp]] = [:]
    /// Storage that drops let go of, until the shell takes it (``takeReleased()``) or the next tick.
    var released = ReleasedMemory()
    var nextSync: UInt64 = 0
    var nextPurge: UInt64 = 0
    var syncCursor = 0

    /// True once a complete pull from some peer has been merged: a node that joins or restarts
    /// holds what that peer held.
    public internal(set) var hasSynced = false

    /// Peers a complete pull has been merged from since this replica started.
    var pulledCompletely: Set<String> = []
    /// True once this replica may vote in compare-and-set rounds: at once after a restore from its
    /// log, which kept its promises; else once it has pulled completely from every known peer (see
    /// ``votesInRounds``). A replica that restarted without its data forgot the updates its former
    /// self committed with a majority; voting before it learned them again could decide the same
    /// update twice.
    var relearnedCommits = false

    /// Changes received through anti-entropy (pull replies), for the stats.
    public internal(set) var antiEntropyChanges: UInt64 = 0

    /// Pushes sent to peers and the changes they carried, for the stats (their ratio is the batching).
    public internal(set) var pushesSent: UInt64 = 0
    /// Changes those pushes carried.
    public internal(set) var changesPushed: UInt64 = 0

    /// Compare-and-set rounds (Paxos ballots) this replica began as coordinator, retries included; for
    /// the stats.
    public internal(set) var casRounds: UInt64 = 0
    /// Rounds that lost to a higher ballot and backed off to try again (contention), and conditional
    /// updates whose condition did not hold; for the stats.
    public internal(set) var casContentions: UInt64 = 0
    /// Conditional updates whose condition did not hold.
    public internal(set) var casConditionFailures: UInt64 = 0

    enum Outstanding: Sendable {
        /// One batch of a flush to `peer`; the flush's writes count the peer as a holder once every
        /// batch of `flush` has landed.
        case push(peer: String, operations: [UInt64], flush: UInt64)
        /// `digests`: the request sent range digests (the requester did not know the peer's epoch).
        case pull(peer: String, reads: [UInt64], digests: Bool)
        case cas(peer: String, operation: UInt64, ballot: Ballot)
    }

    struct QuorumWrite: Sendable {
        var receipt: WriteReceipt
        /// The write's changes, pushed again to a peer whose push failed while the write still waits.
        var changes: [DocumentChange]
        var needed: Int
        /// The replicas that hold the write, each once (a few: an array costs no hashing).
        var holders: [String]
        var deadline: UInt64
    }

    /// A new, empty replica. `epoch` must be fresh (random) for every start without the data dir.
    public init(node: String, epoch: UInt64, seed: UInt64, settings: ReplicaSettings = .init()) {
        self.node = node
        self.epoch = epoch
        self.settings = settings
        // Stamps name the incarnation (node and epoch), so that a node restarted without its data does
        // not claim to hold the writes of its former self.
        self.clock = HybridLogicalClock(node: Self.incarnation(of: node, epoch: epoch))
        self.random = SplitMix64(seed: seed)
        self.startNonce = String(random.next() & 0xFF_FFFF_FFFF, radix: 36)
    }

    /// The origin this replica's increments count under: its incarnation in this process start.
    var counterOrigin: String { clock.node + "." + startNonce }

    /// The name of a node's incarnation (one start without its data): the HLC node name of its stamps.
    static func incarnation(of node: String, epoch: UInt64) -> String {
        "\(node)~\(String(epoch & 0xFFFF_FFFF, radix: 36))"
    }

    // MARK: Membership

    /// The other replicas: `known` counts for quorums (alive, suspected or dead, but not left), `alive`
    /// receive pushes. A peer that becomes alive is pulled from at once (catch-up after a join or a
    /// restart).
    public mutating func setPeers(known: Set<String>, alive: Set<String>, now: UInt64) -> [ReplicaAction] {
        let joined = alive.subtracting(self.alive)
        self.known = known.union(alive).subtracting([node])
        self.alive = alive.subtracting([node])
        for peer in outbox.keys where !self.alive.contains(peer) {
            outbox[peer] = nil
            outboxOperations[peer] = nil
        }
        for peer in pushSince.keys where !self.alive.contains(peer) { pushSince[peer] = nil }
        for peer in joined where peer != node { pushSince[peer] = clock.last }
        for peer in joined where peer != node {
            for id in writes.keys.sorted() { requeue(id, to: peer) }
        }
        // Catch up from the joined peers one after another: each answer's coverage trims the next.
        catchUpQueue += joined.subtracting([node]).sorted().filter { !catchUpQueue.contains($0) }
        return nextCatchUp() + flush(now: now)
    }

    /// Pulls from the next peer waiting in the catch-up queue, if no catch-up pull is in flight.
    mutating func nextCatchUp() -> [ReplicaAction] {
        guard !catchUpInFlight else { return [] }
        while let peer = catchUpQueue.first {
            catchUpQueue.removeFirst()
            guard alive.contains(peer) else { continue }
            catchUpInFlight = true
            let action = pull(from: peer, reads: [])
            if case .send(_, let request, _) = action { catchUpRequest = request }
            return [action]
        }
        return []
    }

    /// Queues a waiting write's changes for `peer` again, unless the peer already holds them.
    mutating func requeue(_ id: UInt64, to peer: String) {
        guard let write = writes[id], !write.holders.contains(peer) else { return }
        outbox[peer, default: []].append(contentsOf: write.changes)
        outboxOperations[peer, default: []].append(id)
    }

    /// Replicas counted for quorums, this one included.
    public var replicaCount: Int { known.count + 1 }

    func quorum(_ consistency: WriteConsistency) -> Int {
        switch consistency {
        case .one: 1
        case .majority: replicaCount / 2 + 1
        case .all: replicaCount
        }
    }

    // MARK: Writes

    /// Applies a client's write locally and starts replicating it; completes at once for `one`, or
    /// when enough replicas hold it, or with `unavailable` at `deadline`.
    ///
    /// `idempotencyKey` (the call's task id; 0: none) is recorded in every document the write changes.
    /// A write whose key a document already holds was applied before (a retry of the same call, here
    /// or on another replica): it is not applied again, and completes with a receipt for the
    /// document as it stands once enough replicas hold that state.
    public mutating func perform(
        _ operation: DatabaseOperation, consistency: WriteConsistency, id: UInt64, now: UInt64, deadline: UInt64,
        idempotencyKey: UInt64 = 0
    ) -> [ReplicaAction] {
        if case .conditional(let collection, let document, let condition, let update) = operation {
            return startConditional(
                id: id, key: DocumentKey(collection: collection, id: document), condition: condition, update: update,
                idempotencyKey: idempotencyKey, now: now, deadline: deadline)
        }
        let needed = quorum(consistency)
        let reachable = alive.count + 1
        if needed > reachable {
            let error = DatabaseError(
                .unavailable,
                "\(consistency.rawValue) needs \(needed) of \(replicaCount) replicas; \(reachable) reachable")
            return [.completed(operation: id, .failure(error))]
        }
        let applied: (receipt: WriteReceipt, changes: [(DocumentKey, DocumentChange)])
        var actions: [ReplicaAction] = []
        if let replay = replay(of: operation, idempotencyKey: idempotencyKey) {
            applied = replay
        } else {
            do {
                applied = try apply(operation, idempotencyKey: idempotencyKey, now: now)
            } catch {
                return [.completed(operation: id, .failure(error))]
            }
            actions.append(.persist(applied.changes.map { record($0.0, $0.1, source: nil, now: now) }))
        }
        let changes = applied.changes.map(\.1)
        for peer in alive {
            outbox[peer, default: []].append(contentsOf: changes)
            if needed > 1 { outboxOperations[peer, default: []].append(id) }
        }
        if needed <= 1 {
            actions.append(.completed(operation: id, .success(applied.receipt)))
        } else {
            writes[id] = QuorumWrite(
                receipt: applied.receipt, changes: changes, needed: needed, holders: [node], deadline: deadline)
        }
        return actions
    }

    /// Forgets the log entries and tombstone times of the documents a drop removed from the store.
    /// `before`, the collection's documents before the drop, and the log's old table go to
    /// ``released`` when the drop removed any, so that the shell frees them off its event loop.
    mutating func forgetVanished(in collection: String, before: [String: ReplicatedDocument]? = nil) {
        let documents = store.collections[collection]?.documents ?? [:]
        if let before, before.count > documents.count { released.documents.append(before) }
        if let table = log.removeDocuments(in: collection, where: { documents[$0] == nil }) {
            released.logTables.append(table)
        }
        if !tombstonedAt.isEmpty {
            tombstonedAt = tombstonedAt.filter { key, _ in
                key.collection != collection || key.id.map { documents[$0] != nil } ?? true
            }
        }
    }

    /// Records a change in the log and returns its entry for the durable log.
    mutating func record(_ key: DocumentKey, _ change: DocumentChange, source: String?, now: UInt64) -> PersistedEntry {
        let sequence = log.record(key, source: source, newest: DocumentStore.singleOriginNewest(of: change))
        if case .document(_, let document) = change, document.isDeleted {
            tombstonedAt[key] = now
        } else if !tombstonedAt.isEmpty {
            tombstonedAt[key] = nil
        }
        return .change(sequence: sequence, change)
    }

    /// The receipt and current states of the documents that already hold `idempotencyKey`, when every
    /// document the operation names does: the write was applied before and is not applied again.
    private func replay(of operation: DatabaseOperation, idempotencyKey: UInt64) -> (
        receipt: WriteReceipt, changes: [(DocumentKey, DocumentChange)]
    )? {
        guard idempotencyKey != 0 else { return nil }
        let ids: [String]
        switch operation {
        case .add(_, let id, _), .update(_, let id, _): ids = [id]
        case .delete(_, let targets): ids = targets
        case .createCollection, .dropCollection, .conditional: return nil
        }
        let name = operation.collection
        guard let collection = store.collections[name], collection.exists, !ids.isEmpty else { return nil }
        var changes: [(DocumentKey, DocumentChange)] = []
        var newest = HLCTimestamp.zero
        for id in ids {
            guard let document = collection.documents[id], document.applied[idempotencyKey] != nil else { return nil }
            changes.append((DocumentKey(collection: name, id: id), .document(collection: name, document)))
            newest = max(newest, document.version)
        }
        return (WriteReceipt(id: ids.count == 1 ? ids[0] : nil, stamp: newest, replicas: 1, replayed: true), changes)
    }

    private mutating func apply(_ operation: DatabaseOperation, idempotencyKey: UInt64, now: UInt64)
        throws(DatabaseError) -> (
            receipt: WriteReceipt, changes: [(DocumentKey, DocumentChange)]
        )
    {
        let name = operation.collection
        let exists = store.collections[name]?.exists == true
        switch operation {
        case .createCollection:
            try Self.validate(collection: name)
            if !exists && store.collections[name] == nil && store.collections.count >= settings.maxCollections {
                throw DatabaseError(.limit, "at most \(settings.maxCollections) collections")
            }
            let stamp = clock.now(wallMillis: now)
            store.createCollection(name, stamp: stamp)
            return (receipt(nil, stamp), [collectionChange(name)])
        case .dropCollection:
            guard exists else { throw DatabaseError(.notFound, "no collection '\(name)'") }
            let stamp = clock.now(wallMillis: now)
            let before = store.collections[name]?.documents
            store.dropCollection(name, stamp: stamp)
            forgetVanished(in: name, before: before)
            return (receipt(nil, stamp), [collectionChange(name)])
        case .add(_, let id, let body):
            guard exists else { throw DatabaseError(.notFound, "no collection '\(name)'") }
            guard store.document(id, in: name) == nil else {
                throw DatabaseError(.exists, "document \(id) already exists in '\(name)'")
            }
            let stamp = clock.now(wallMillis: now)
            let document = store.update(id, in: name) {
                $0.write(body, stamp: stamp, replace: true)
                $0.noteApplied(idempotencyKey, millis: stamp.millis)
            }
            return (
                receipt(id, stamp), [(DocumentKey(collection: name, id: id), .document(collection: name, document))]
            )
        case .update(_, let id, let update):
            guard exists else { throw DatabaseError(.notFound, "no collection '\(name)'") }
            guard let body = store.document(id, in: name) else {
                throw DatabaseError(.notFound, "no document \(id) in '\(name)'")
            }
            try update.validate(against: body)
            let stamp = clock.now(wallMillis: now)
            let origin = counterOrigin
            let document = store.update(id, in: name) {
                update.apply(to: &$0, current: body, stamp: stamp, origin: origin)
                $0.noteApplied(idempotencyKey, millis: stamp.millis)
            }
            return (
                receipt(id, stamp), [(DocumentKey(collection: name, id: id), .document(collection: name, document))]
            )
        case .delete(_, let ids):
            guard exists else { throw DatabaseError(.notFound, "no collection '\(name)'") }
            let live = ids.filter { store.document($0, in: name) != nil }
            if live.isEmpty && ids.count == 1 { throw DatabaseError(.notFound, "no document \(ids[0]) in '\(name)'") }
            let stamp = clock.now(wallMillis: now)
            let changes = live.map { id -> (DocumentKey, DocumentChange) in
                let document = store.update(id, in: name) {
                    $0.delete(stamp: stamp)
                    $0.noteApplied(idempotencyKey, millis: stamp.millis)
                }
                return (DocumentKey(collection: name, id: id), .document(collection: name, document))
            }
            return (WriteReceipt(id: live.count == 1 ? live[0] : nil, stamp: stamp, replicas: 1), changes)
        case .conditional:
            throw DatabaseError(.badRequest, "conditional updates run as a consensus round")
        }
    }

    private func receipt(_ id: String?, _ stamp: HLCTimestamp) -> WriteReceipt {
        WriteReceipt(id: id, stamp: stamp, replicas: 1)
    }

    private func collectionChange(_ name: String) -> (DocumentKey, DocumentChange) {
        let collection = store.collections[name]!
        return (
            DocumentKey(collection: name, id: nil),
            .collection(name: name, created: collection.created, dropped: collection.dropped)
        )
    }

    /// Collection names: 1 to 128 characters, no control characters.
    static func validate(collection name: String) throws(DatabaseError) {
        guard !name.isEmpty, name.utf8.count <= 128 else {
            throw DatabaseError(.badRequest, "a collection name needs 1 to 128 bytes")
        }
        guard !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw DatabaseError(.badRequest, "a collection name may not hold control characters")
        }
    }

    /// Sends what local writes and reads have queued: one push per alive peer that has room in its
    /// push window (the others keep their outbox until an answer makes room), and one pull per alive
    /// peer for all reads that wait on one.
    public mutating func flush(now: UInt64) -> [ReplicaAction] {
        var actions = pullForReads()
        var sent: [String] = []
        for (peer, changes) in outbox where !changes.isEmpty {
            guard pushesInFlight(to: peer) < settings.pushWindow else { continue }
            sent.append(peer)
            let operations = outboxOperations[peer] ?? []
            let flushID = nextRequest
            var batches = 0
            var start = 0
            while start < changes.count {
                let end = min(changes.count, start + settings.maxChangesPerMessage)
                let request = nextRequest
                nextRequest += 1
                outstanding[request] = .push(peer: peer, operations: operations, flush: flushID)
                actions.append(
                    .send(to: peer, request: request, .push(Array(changes[start..<end]), sender: clock.node)))
                batches += 1
                start = end
            }
            flushesInFlight[flushID] = batches
            pushesSent += UInt64(batches)
            changesPushed += UInt64(changes.count)
            // Every local write since `pushSince` is in this flush; one batch can say so (batches of
            // a split flush may land apart, so they claim nothing and the chain restarts after them).
            if batches == 1, let since = pushSince[peer],
                case .send(_, let request, .push(let changes, _, let sender)) = actions.last
            {
                let chain = PushChain(origin: clock.node, since: since, upTo: clock.last)
                actions[actions.count - 1] = .send(
                    to: peer, request: request, .push(changes, chain: chain, sender: sender))
            }
            if pushSince[peer] != nil { pushSince[peer] = clock.last }
        }
        // Emptied in place: the arrays keep their capacity for the next flush.
        for peer in sent {
            outbox[peer]?.removeAll(keepingCapacity: true)
            outboxOperations[peer]?.removeAll(keepingCapacity: true)
        }
        return actions
    }

    /// Push requests to `peer` still waiting for an answer: a handful at most, so counting them
    /// beats keeping a count that could drift from what is actually outstanding.
    func pushesInFlight(to peer: String) -> Int {
        outstanding.values.reduce(0) { count, pending in
            if case .push(peer, _, _) = pending { count + 1 } else { count }
        }
    }

    /// True when `peer` has changes waiting for room in its push window.
    func hasWaitingPush(for peer: String) -> Bool {
        !(outbox[peer]?.isEmpty ?? true)
    }

    // MARK: Answers from peers

    /// A peer answered request `request`.
    public mutating func receive(_ response: ReplicaResponse, for request: UInt64, now: UInt64) -> [ReplicaAction] {
        guard let pending = outstanding.removeValue(forKey: request) else { return [] }
        if request == catchUpRequest, catchUpInFlight {
            catchUpInFlight = false
            return receive(response, pending, now: now) + nextCatchUp()
        }
        return receive(response, pending, now: now)
    }

    private mutating func receive(_ response: ReplicaResponse, _ pending: Outstanding, now: UInt64) -> [ReplicaAction] {
        switch (pending, response) {
        case (.push(let peer, let operations, let flush), .merged):
            // The answer made room in the peer's push window (the request is no longer outstanding).
            let waiting = hasWaitingPush(for: peer) ? self.flush(now: now) : []
            // The peer holds the flush's writes only once every batch of it has landed.
            guard let remaining = flushesInFlight[flush] else { return waiting }  // another batch failed
            if remaining > 1 {
                flushesInFlight[flush] = remaining - 1
                return waiting
            }
            flushesInFlight[flush] = nil
            return operations.compactMap { acknowledge($0, by: peer) } + waiting
        case (.pull(let peer, let reads, let digests), .pulled(let reply)):
            return absorb(reply, from: peer, reads: reads, sentDigests: digests, now: now)
        case (.cas(let peer, let operation, let ballot), _):
            return casAnswer(response, from: peer, operation: operation, ballot: ballot, now: now)
        default:
            return requestFailed(pending, now: now)
        }
    }

    /// Request `request` failed: timed out, lost its connection or the peer refused it.
    public mutating func requestFailed(_ request: UInt64, now: UInt64) -> [ReplicaAction] {
        guard let pending = outstanding.removeValue(forKey: request) else { return [] }
        if request == catchUpRequest, catchUpInFlight {
            catchUpInFlight = false
            return requestFailed(pending, now: now) + nextCatchUp()
        }
        return requestFailed(pending, now: now)
    }

    private mutating func requestFailed(_ pending: Outstanding, now: UInt64) -> [ReplicaAction] {
        switch pending {
        case .push(let peer, let operations, let flushID):
            // Writes still waiting for replicas push again to this peer while it is alive (a lost
            // connection, a slow moment); the rest reach it through anti-entropy. The other batches
            // of the flush no longer acknowledge anything.
            flushesInFlight[flushID] = nil
            guard alive.contains(peer) else { return [] }
            for id in operations { requeue(id, to: peer) }
            return flush(now: now)
        case .pull(let peer, let reads, _):
            return reads.flatMap { pullFailed(read: $0, peer: peer) }
        case .cas(let peer, let operation, let ballot):
            return casFailed(from: peer, operation: operation, ballot: ballot, now: now)
        }
    }

    private mutating func acknowledge(_ operation: UInt64, by peer: String) -> ReplicaAction? {
        guard let index = writes.index(forKey: operation) else { return nil }
        // In place: a copy taken out of the table would copy its holders on insert.
        if !writes.values[index].holders.contains(peer) { writes.values[index].holders.append(peer) }
        guard writes.values[index].holders.count >= writes.values[index].needed else { return nil }
        var write = writes.remove(at: index).value
        write.receipt.replicas = write.holders.count
        return .completed(operation: operation, .success(write.receipt))
    }

    // MARK: Requests from peers

    /// Answers a peer's request; the returned actions (log entries first) must be performed before
    /// the answer is sent.
    public mutating func handle(_ request: ReplicaRequest, from peer: String, now: UInt64) -> (
        ReplicaResponse, [ReplicaAction]
    ) {
        switch request {
        case .push(let changes, let chain, let sender):
            let entries = merge(changes, from: sender, now: now)
            if let chain { follow(chain) }
            return (.merged, entries.isEmpty ? [] : [.persist(entries)])
        case .pull(let pull):
            notePull(pull, from: peer)
            return (.pulled(answer(pull)), [])
        case .prepare(let key, let ballot):
            let (response, entries) = prepare(key, ballot)
            return (response, entries.isEmpty ? [] : [.persist(entries)])
        case .propose(let key, let ballot, let document):
            let (response, entries) = propose(key, ballot, document)
            return (response, entries.isEmpty ? [] : [.persist(entries)])
        case .commit(let key, let ballot, let document):
            return (.merged, [.persist(commit(key, ballot, document, now: now))])
        }
    }

    /// Merges changes that incarnation `peer` sent (nil: none, or unknown); returns the log entries of
    /// those that changed this replica.
    mutating func merge(_ changes: [DocumentChange], from peer: String?, now: UInt64) -> [PersistedEntry] {
        var entries: [PersistedEntry] = []
        entries.reserveCapacity(changes.count)
        for change in changes {
            if let newest = DocumentStore.newestStamp(of: change) { clock.observe(newest, wallMillis: now) }
            // A state from before a purged delete (a pull answer or push still in flight) stays dead,
            // and a newer one keeps only the fields written after the delete, as it would have had the
            // tombstone still been here.
            if !purged.isEmpty, case .document(let collection, var document) = change,
                let horizon = purged[DocumentKey(collection: collection, id: document.id)]
            {
                if document.version <= horizon { continue }
                purged[DocumentKey(collection: collection, id: document.id)] = nil
                document.delete(stamp: horizon)
                if let entry = mergeOne(.document(collection: collection, document), from: peer, now: now) {
                    entries.append(entry)
                }
                continue
            }
            if let entry = mergeOne(change, from: peer, now: now) { entries.append(entry) }
        }
        return entries
    }

    /// Merges one change into the store; returns its log entry when it changed this replica.
    private mutating func mergeOne(_ change: DocumentChange, from peer: String?, now: UInt64) -> PersistedEntry? {
        var droppedBefore: HLCTimestamp?
        var documentsBefore: [String: ReplicatedDocument]?
        if case .collection(let name, _, _) = change {
            droppedBefore = store.collections[name]?.dropped
            // Holding the table costs no copy: a drop replaces the store's table instead of editing it.
            documentsBefore = store.collections[name]?.documents
        }
        let (key, changed, equal) = store.apply(change)
        // A state equal to the incoming one is the incoming change: no need to look it up again.
        guard changed, let merged = equal ? change : store.change(at: key) else { return nil }
        // Only a newer drop removes documents: a create alone must not walk the collection's log.
        if key.id == nil, store.collections[key.collection]?.dropped != droppedBefore {
            forgetVanished(in: key.collection, before: documentsBefore)
        }
        return record(key, merged, source: equal ? peer : nil, now: now)
    }
}
