extension ReplicaEngine {
    /// A read barrier: the read runs once enough peers have answered a pull started after it arrived,
    /// and this replica covers the client's session stamps.
    struct ReadBarrier: Sendable {
        var neededPeers: Int
        /// Peers asked; once all have answered, session stamps still not covered are taken as lost
        /// with a replica that died (a `majority` write is never lost that way).
        var asked: Set<String> = []
        var answered: Set<String> = []
        var failed: Set<String> = []
        var session: SessionToken
        var deadline: UInt64
    }

    // MARK: Reads

    /// Makes a read wait until it may run on the local store: at once for `local` without a session;
    /// after pulling from a majority for `majority`; after pulling from the origins of session stamps
    /// this replica does not cover yet.
    public mutating func prepareRead(
        id: UInt64, consistency: ReadConsistency, session: SessionToken?, now: UInt64, deadline: UInt64
    ) -> [ReplicaAction] {
        let neededPeers =
            switch consistency {
            case .local: 0
            case .majority: replicaCount / 2
            case .all: alive.count
            }
        let barrier = ReadBarrier(neededPeers: neededPeers, session: session ?? SessionToken(), deadline: deadline)
        let origins = uncovered(barrier.session)
        if neededPeers == 0 && origins.isEmpty { return [.readable(operation: id, .success(()))] }
        if neededPeers > alive.count {
            return [
                .readable(
                    operation: id,
                    .failure(
                        DatabaseError(
                            .unavailable, "a majority read needs \(neededPeers) peers; \(alive.count) reachable")))
            ]
        }
        if alive.isEmpty {
            // Alone, this replica's own conditional updates were committed here before they were
            // answered: their proposal origin is covered.
            let own = clock.node + Self.proposalOriginSuffix
            if neededPeers == 0 && origins.allSatisfy({ $0 == own }) { return [.readable(operation: id, .success(()))] }
            // Nobody to pull from: the session's writes cannot be here.
            let error = DatabaseError(
                .unavailable, "this session's writes on \(origins) are not here and no peer is reachable")
            return [.readable(operation: id, .failure(error))]
        }
        // The pulls go out at the next flush, shared by every read that arrived in between.
        reads[id] = barrier
        readsToPull.append(id)
        return []
    }

    /// Pulls from every alive peer once for all reads waiting since the last flush. Session stamps
    /// name a node incarnation; pulling from every alive peer finds them wherever they went, and the
    /// coverage that complete replies pass on settles the barriers.
    mutating func pullForReads() -> [ReplicaAction] {
        guard !readsToPull.isEmpty else { return [] }
        let ids = readsToPull.filter { reads[$0] != nil }
        readsToPull.removeAll(keepingCapacity: true)
        var actions: [ReplicaAction] = []
        var pulling: [UInt64] = []
        for id in ids {
            guard var barrier = reads[id] else { continue }
            guard !alive.isEmpty, barrier.neededPeers <= alive.count else {
                reads[id] = nil
                let error = DatabaseError(
                    .unavailable, "the read needs \(max(1, barrier.neededPeers)) peers; \(alive.count) reachable")
                actions.append(.readable(operation: id, .failure(error)))
                continue
            }
            barrier.asked = alive
            reads[id] = barrier
            pulling.append(id)
        }
        guard !pulling.isEmpty else { return actions }
        return actions + alive.sorted().map { pull(from: $0, reads: pulling) }
    }

    /// Origins of session stamps this replica does not cover yet.
    func uncovered(_ session: SessionToken) -> [String] {
        session.stamps.values.filter { $0.node != clock.node && (coverage[$0.node] ?? .zero) < $0 }.map(\.node).sorted()
    }

    private mutating func readAnswered(_ id: UInt64, by peer: String) -> ReplicaAction? {
        guard let index = reads.index(forKey: id) else { return nil }
        reads.values[index].answered.insert(peer)
        return settleRead(id)
    }

    mutating func pullFailed(read id: UInt64, peer: String) -> [ReplicaAction] {
        guard let index = reads.index(forKey: id) else { return [] }
        reads.values[index].failed.insert(peer)
        return settleRead(id).map { [$0] } ?? []
    }

    /// Runs read `id` once enough peers answered and this replica covers the session, or once every
    /// peer asked answered (session stamps still not covered were lost with an incarnation that died).
    /// Fails once too few peers are left, or once a peer that may hold the session's writes did not
    /// answer: a lost pull is no evidence that a write is gone.
    private mutating func settleRead(_ id: UInt64) -> ReplicaAction? {
        guard let barrier = reads[id] else { return nil }
        func settle(_ result: Result<Void, DatabaseError>) -> ReplicaAction {
            reads[id] = nil
            return .readable(operation: id, result)
        }
        if barrier.asked.subtracting(barrier.failed).count < barrier.neededPeers {
            return settle(.failure(DatabaseError(.unavailable, "could not reach the replicas the read needs")))
        }
        guard barrier.answered.count >= barrier.neededPeers else { return nil }
        let missing = uncovered(barrier.session)
        if missing.isEmpty { return settle(.success(())) }
        guard barrier.answered.union(barrier.failed).isSuperset(of: barrier.asked) else { return nil }
        if barrier.failed.isEmpty { return settle(.success(())) }
        let error = DatabaseError(
            .unavailable,
            "this session's writes on \(missing) are not here and \(barrier.failed.sorted()) did not answer")
        return settle(.failure(error))
    }

    // MARK: Anti-entropy

    /// A pull request to `peer`, for `reads` waiting on it (none for the periodic anti-entropy).
    mutating func pull(from peer: String, reads: [UInt64]) -> ReplicaAction {
        let request = nextRequest
        nextRequest += 1
        let since = pulled[peer]
        outstanding[request] = .pull(peer: peer, reads: reads, digests: since == nil)
        let pull = PullRequest(
            since: since, digests: since == nil ? AntiEntropy.digest(store) : nil, coverage: currentCoverage,
            incarnation: clock.node)
        return .send(to: peer, request: request, .pull(pull))
    }

    /// Coverage including this replica's own writes.
    var currentCoverage: [String: HLCTimestamp] {
        var all = coverage
        all[clock.node] = clock.last
        return all
    }

    /// What `peer` lacks: changes since its watermark (or in the id ranges whose digests differ),
    /// leaving out states this incarnation of it sent itself and states made only of writes it covers.
    func answer(_ request: PullRequest) -> PullReply {
        let here = Watermark(epoch: epoch, sequence: log.sequence)
        // Most of a document's stamps name one origin: remember its coverage instead of hashing the
        // node name again for every stamp.
        var lastOrigin = ""
        var lastCoverage = HLCTimestamp.zero
        func uncovered(_ stamp: HLCTimestamp) -> Bool {
            if stamp.node != lastOrigin {
                lastOrigin = stamp.node
                lastCoverage = request.coverage[stamp.node] ?? .zero
            }
            return stamp > lastCoverage
        }
        func needed(_ change: DocumentChange) -> Bool {
            switch change {
            case .collection(_, let created, let dropped):
                return uncovered(created) || dropped.map(uncovered) == true
            case .document(_, let document):
                if document.fields.isEmpty && document.deleted == nil && document.cleared == nil { return true }
                return document.fields.values.contains { field in
                    uncovered(field.stamp) || field.counts.values.contains { uncovered($0.stamp) }
                }
                    || document.deleted.map(uncovered) == true || document.cleared.map(uncovered) == true
            }
        }
        if let since = request.since, since.epoch == epoch {
            var changes: [DocumentChange] = []
            var upTo = here
            for (key, entry) in log.changes(after: since.sequence, skipping: { !uncovered($0) })
            where request.incarnation == nil || entry.source != request.incarnation {
                guard let change = store.change(at: key), needed(change) else { continue }
                if changes.count == settings.maxChangesPerMessage {
                    upTo.sequence = entry.sequence - 1
                    return PullReply(upTo: upTo, complete: false, understood: true, coverage: [:], changes: changes)
                }
                changes.append(change)
            }
            return PullReply(upTo: upTo, complete: true, understood: true, coverage: currentCoverage, changes: changes)
        }
        guard let digests = request.digests else {
            return PullReply(upTo: here, complete: false, understood: false, coverage: [:], changes: [])
        }
        let delta = AntiEntropy.missing(from: store, comparedTo: digests)
        var changes: [DocumentChange] = []
        for (name, collection) in delta.collections.sorted(by: { $0.key < $1.key }) {
            let meta = DocumentChange.collection(name: name, created: collection.created, dropped: collection.dropped)
            if digests[name]?.created != collection.created || digests[name]?.dropped != collection.dropped {
                changes.append(meta)
            }
            for document in collection.documents.values {
                let change = DocumentChange.document(collection: name, document)
                if needed(change) { changes.append(change) }
            }
        }
        // A digest answer is all or nothing: cut short, the requester pulls again with fresh digests.
        let complete = changes.count <= settings.maxChangesPerMessage * 8
        return PullReply(
            upTo: here, complete: complete, understood: true, coverage: complete ? currentCoverage : [:],
            changes: complete ? changes : Array(changes.prefix(settings.maxChangesPerMessage * 8)))
    }

    /// Notes what a pull request says the peer holds of this replica (for purging tombstones).
    mutating func notePull(_ request: PullRequest, from peer: String) {
        if let since = request.since, since.epoch == epoch {
            confirmed[peer] = max(confirmed[peer] ?? 0, since.sequence)
        }
    }

    mutating func absorb(
        _ reply: PullReply, from peer: String, reads: [UInt64], sentDigests: Bool, now: UInt64
    ) -> [ReplicaAction] {
        guard reply.understood else {
            // The peer restarted since the last pull: ask again with digests, for the same reads.
            pulled[peer] = nil
            return [pull(from: peer, reads: reads)]
        }
        antiEntropyChanges += UInt64(reply.changes.count)
        var actions: [ReplicaAction] = []
        let entries = merge(reply.changes, from: Self.incarnation(of: peer, epoch: reply.upTo.epoch), now: now)
        if !entries.isEmpty { actions.append(.persist(entries)) }
        if reply.complete {
            for (origin, stamp) in reply.coverage where origin != clock.node {
                coverage[origin] = max(coverage[origin] ?? .zero, stamp)
                followChainsAhead(of: origin)
            }
        }
        if sentDigests && !reply.complete {
            // A digest answer cut short says nothing about the ranges it left out: digests again.
            pulled[peer] = nil
        } else if pulled[peer].map({ $0.epoch != reply.upTo.epoch || $0 < reply.upTo }) ?? true {
            pulled[peer] = reply.upTo
        }
        if reply.complete {
            hasSynced = true
            notePulledCompletely(from: peer)
            actions.append(.persist([.syncState(syncState)]))
            actions += reads.compactMap { readAnswered($0, by: peer) }
        } else {
            // More to come: pull again at once, carrying the reads along.
            actions.append(pull(from: peer, reads: reads))
        }
        return actions
    }

    /// The sync state to persist.
    public var syncState: ReplicaSyncState {
        ReplicaSyncState(epoch: epoch, pulled: pulled, coverage: coverage, clock: clock.last)
    }

    // MARK: Time

    /// Runs timers: write and read deadlines, compare-and-set retries, the periodic pull, tombstone
    /// purging.
    public mutating func tick(now: UInt64) -> [ReplicaAction] {
        // Storage the shell did not take is freed here.
        released = ReleasedMemory()
        var actions: [ReplicaAction] = []
        for (id, write) in writes where write.deadline <= now {
            writes[id] = nil
            let error = DatabaseError(
                .unavailable,
                "only \(write.holders.count) of the \(write.needed) replicas needed confirmed the write in time")
            actions.append(.completed(operation: id, .failure(error)))
        }
        for (id, read) in reads where read.deadline <= now {
            reads[id] = nil
            actions.append(
                .readable(
                    operation: id,
                    .failure(
                        DatabaseError(
                            .unavailable,
                            "replicas did not answer the read in time (asked \(read.asked.sorted()), answered "
                                + "\(read.answered.sorted()), session stamps not here: \(uncovered(read.session)))"))))
        }
        actions += casTimers(now: now)
        if now >= nextSync {
            nextSync = now + settings.syncInterval
            let peers = alive.sorted()
            // While catching up, pulls go one peer at a time; a periodic pull beside them would fetch
            // the same changes twice.
            if !peers.isEmpty && !catchUpInFlight && catchUpQueue.isEmpty {
                syncCursor = (syncCursor + 1) % peers.count
                let peer = peers[syncCursor]
                let inFlight = outstanding.values.contains {
                    if case .pull(peer, _, _) = $0 { true } else { false }
                }
                if !inFlight { actions.append(pull(from: peer, reads: [])) }
            }
        }
        if now >= nextPurge {
            nextPurge = now + 1_000
            purgeTombstones(now: now)
        }
        return actions
    }

    /// Forgets tombstones that every known replica has pulled past and that are older than the grace.
    mutating func purgeTombstones(now: UInt64) {
        guard !tombstonedAt.isEmpty else { return }
        let floor = known.map { confirmed[$0] ?? 0 }.min() ?? log.sequence
        for (key, since) in tombstonedAt where since + settings.tombstoneGrace <= now {
            guard let entry = log.entry(key), entry.sequence <= floor else { continue }
            guard key.id.flatMap({ store.collections[key.collection]?.documents[$0]?.isDeleted }) == true else {
                tombstonedAt[key] = nil
                continue
            }
            if let id = key.id, let deleted = store.collections[key.collection]?.documents[id]?.deleted {
                purged[key] = deleted
            }
            store.purge(key)
            log.remove(key)
            tombstonedAt[key] = nil
        }
    }

    /// Tombstones kept for replication.
    public var tombstoneCount: Int { tombstonedAt.count }

    /// How many changes this replica has made or merged (its change sequence).
    public var changeSequence: UInt64 { log.sequence }

    /// Per peer, how many of this replica's changes the peer has not confirmed yet (replication lag).
    public var lag: [String: UInt64] {
        Dictionary(uniqueKeysWithValues: known.map { ($0, log.sequence - min(log.sequence, confirmed[$0] ?? 0)) })
    }
}
