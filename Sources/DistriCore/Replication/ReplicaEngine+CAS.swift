/// One replica's compare-and-set acceptor state for one document. With a data dir it is logged before
/// the answer that depends on it leaves: a replica that restarts keeps its promises and accepted value.
public struct DocumentAcceptor: Hashable, Sendable {
    /// The highest ballot this acceptor promised.
    public var promised: Ballot = .zero
    /// The value it accepted last, with its ballot, until a commit.
    public var accepted: (ballot: Ballot, document: ReplicatedDocument)?
    /// The ballot of the last commit it merged.
    public var committed: Ballot = .zero

    /// An acceptor state with the given fields.
    public init(
        promised: Ballot = .zero, accepted: (ballot: Ballot, document: ReplicatedDocument)? = nil,
        committed: Ballot = .zero
    ) {
        self.promised = promised
        self.accepted = accepted
        self.committed = committed
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.promised == b.promised && a.committed == b.committed && a.accepted?.ballot == b.accepted?.ballot
            && a.accepted?.document == b.accepted?.document
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(promised)
        hasher.combine(committed)
    }
}

extension ReplicaEngine {
    /// Appended to the clock's node in the stamps of compare-and-set proposals.
    static let proposalOriginSuffix = "!cas"

    /// A conditional update in progress: Paxos over one document, with the document's merged state
    /// as the value.
    struct CASRound: Sendable {
        enum Phase: Sendable {
            case waiting(until: UInt64)
            case preparing(promises: [String: CASPromise])
            case proposing(ReplicatedDocument, recovering: Bool, accepts: Set<String>, refusals: Set<String>)
            case committing(ReplicatedDocument, recovering: Bool, acks: Set<String>)
        }

        var key: DocumentKey
        var condition: DocumentFilter
        var update: DocumentUpdate
        /// The call's task id, or a random one when it has none: a document that holds it had this
        /// update applied already (by this round, another coordinator that recovered its proposal,
        /// or the call's first attempt elsewhere).
        var idempotencyKey: UInt64
        var ballot: Ballot
        var phase: Phase
        var deadline: UInt64
        var attempts = 0
        /// The document as this round's latest proposal wrote it: what the call answers if it finds
        /// that proposal committed by another coordinator. (An earlier proposal of the round was not
        /// chosen: had a majority accepted it, the later prepare would have recovered it instead.)
        var proposedBody: [String: JSONValue]?
    }

    mutating func startConditional(
        id: UInt64, key: DocumentKey, condition: DocumentFilter, update: DocumentUpdate, idempotencyKey: UInt64,
        now: UInt64, deadline: UInt64
    ) -> [ReplicaAction] {
        guard store.collections[key.collection]?.exists == true else {
            return [.completed(operation: id, .failure(DatabaseError(.notFound, "no collection '\(key.collection)'")))]
        }
        let needed = replicaCount / 2 + 1
        guard alive.count + 1 >= needed else {
            let error = DatabaseError(
                .unavailable,
                "a conditional update needs \(needed) of \(replicaCount) replicas; \(alive.count + 1) reachable")
            return [.completed(operation: id, .failure(error))]
        }
        rounds[id] = CASRound(
            key: key, condition: condition, update: update,
            idempotencyKey: idempotencyKey != 0 ? idempotencyKey : max(1, random.next()), ballot: .zero,
            phase: .waiting(until: now),
            deadline: deadline)
        return beginRound(id, after: .zero, now: now)
    }

    /// Starts phase 1 with a ballot above `after` and above every ballot this replica has promised.
    private mutating func beginRound(_ id: UInt64, after: Ballot, now: UInt64) -> [ReplicaAction] {
        guard var round = rounds[id] else { return [] }
        let highest = max(after, acceptors[round.key]?.promised ?? .zero, round.ballot)
        round.ballot = Ballot(round: highest.round + 1, node: node)
        round.attempts += 1
        casRounds += 1
        let (own, logged) = prepare(round.key, round.ballot)
        guard case .promise(let promise?, _) = own else {
            rounds[id] = round
            return backOff(id, after: round.ballot, now: now)
        }
        round.phase = .preparing(promises: [node: promise])
        rounds[id] = round
        let persist: [ReplicaAction] = [.persist(logged)]
        // A lone replica is its own majority: no answer will come to move the round on.
        if replicaCount / 2 + 1 <= 1 { return persist + decide(id, promises: [node: promise], now: now) }
        return persist
            + alive.sorted().map { peer in
                casSend(.prepare(round.key, round.ballot), to: peer, id: id, ballot: round.ballot)
            }
    }

    private mutating func casSend(_ request: ReplicaRequest, to peer: String, id: UInt64, ballot: Ballot)
        -> ReplicaAction
    {
        let number = nextRequest
        nextRequest += 1
        outstanding[number] = .cas(peer: peer, operation: id, ballot: ballot)
        return .send(to: peer, request: number, request)
    }

    /// Waits a random while, then tries again with a higher ballot.
    private mutating func backOff(_ id: UInt64, after ballot: Ballot, now: UInt64) -> [ReplicaAction] {
        guard var round = rounds[id] else { return [] }
        let pause = 1 + random.next() % max(1, settings.casBackoff * UInt64(min(round.attempts, 8)))
        casContentions += 1
        round.ballot = max(round.ballot, ballot)
        round.phase = .waiting(until: now + pause)
        rounds[id] = round
        return []
    }

    // MARK: Acceptor side

    /// True when this replica may promise: it was restored from its log, or it is alone, or it has
    /// pulled completely from every other known replica. An update its former self committed is held
    /// by the rest of a majority, and while no more than a minority lost its data, one of them still
    /// holds it: pulling from all reaches that one, even when another replica restarted empty too.
    /// (Refused promises make the coordinator back off and retry; a proposal it never promised it
    /// refuses anyway.)
    var votesInRounds: Bool {
        relearnedCommits || known.isEmpty || known.isSubset(of: pulledCompletely)
    }

    /// Notes a complete pull from `peer`; once enough are in, this replica votes for good.
    mutating func notePulledCompletely(from peer: String) {
        guard !relearnedCommits else { return }
        pulledCompletely.insert(peer)
        if !known.isEmpty, votesInRounds {
            relearnedCommits = true
            pulledCompletely = []
        }
    }

    /// Phase 1: promises `ballot` if it is above every ballot promised so far; returns the answer and
    /// the log entry of the new promise (none when refused).
    mutating func prepare(_ key: DocumentKey, _ ballot: Ballot) -> (ReplicaResponse, [PersistedEntry]) {
        var acceptor = acceptors[key] ?? DocumentAcceptor()
        guard ballot > acceptor.promised, votesInRounds else {
            return (.promise(nil, promised: acceptor.promised), [])
        }
        acceptor.promised = ballot
        let current = key.id.flatMap { store.collections[key.collection]?.documents[$0] }
        let promise = CASPromise(
            accepted: acceptor.accepted?.ballot, acceptedDocument: acceptor.accepted?.document,
            committed: acceptor.committed, current: current)
        return (.promise(promise, promised: ballot), [setAcceptor(key, acceptor)])
    }

    /// Phase 2: accepts the proposal only under the very ballot this replica promised last. Paxos would
    /// also accept a higher one; refusing it costs nothing (the proposer holds a majority of promises
    /// for its ballot) and keeps a replica that restarted without its log, and so forgot a higher
    /// promise made before the restart, from accepting an older round's proposal.
    mutating func propose(_ key: DocumentKey, _ ballot: Ballot, _ document: ReplicatedDocument) -> (
        ReplicaResponse, [PersistedEntry]
    ) {
        var acceptor = acceptors[key] ?? DocumentAcceptor()
        guard ballot == acceptor.promised else { return (.accepted(false, promised: acceptor.promised), []) }
        acceptor.accepted = (ballot, document)
        return (.accepted(true, promised: ballot), [setAcceptor(key, acceptor)])
    }

    mutating func commit(
        _ key: DocumentKey, _ ballot: Ballot, _ document: ReplicatedDocument, now: UInt64
    ) -> [PersistedEntry] {
        var acceptor = acceptors[key] ?? DocumentAcceptor()
        acceptor.committed = max(acceptor.committed, ballot)
        if let accepted = acceptor.accepted, accepted.ballot <= ballot { acceptor.accepted = nil }
        return [setAcceptor(key, acceptor)]
            + merge([.document(collection: key.collection, document)], from: nil, now: now)
    }

    /// Stores an acceptor's new state and returns its log entry.
    private mutating func setAcceptor(_ key: DocumentKey, _ acceptor: DocumentAcceptor) -> PersistedEntry {
        acceptors[key] = acceptor
        return .acceptor(key, acceptor)
    }

    // MARK: Proposer side

    mutating func casAnswer(
        _ response: ReplicaResponse, from peer: String, operation id: UInt64, ballot: Ballot, now: UInt64
    ) -> [ReplicaAction] {
        guard var round = rounds[id], round.ballot == ballot else { return [] }
        let needed = replicaCount / 2 + 1
        switch (round.phase, response) {
        case (.preparing(var promises), .promise(let promise, let promised)):
            guard let promise else { return backOff(id, after: promised, now: now) }
            promises[peer] = promise
            round.phase = .preparing(promises: promises)
            rounds[id] = round
            guard promises.count >= needed else { return [] }
            return decide(id, promises: promises, now: now)
        case (
            .proposing(let document, let recovering, var accepts, var refusals), .accepted(let accepted, let promised)
        ):
            // One refusal does not end the round: the value is chosen if a majority accepts it anyway,
            // and backing off then would leave this caller unsure whether its update took effect.
            if accepted { accepts.insert(peer) } else { refusals.insert(peer) }
            round.phase = .proposing(document, recovering: recovering, accepts: accepts, refusals: refusals)
            rounds[id] = round
            if refusals.count > replicaCount - needed { return backOff(id, after: promised, now: now) }
            guard accepts.count >= needed else { return [] }
            return commitRound(id, document: document, recovering: recovering, now: now)
        case (.committing(let document, let recovering, var acks), .merged):
            acks.insert(peer)
            round.phase = .committing(document, recovering: recovering, acks: acks)
            rounds[id] = round
            guard acks.count >= needed else { return [] }
            return finishRound(id, document: document, recovering: recovering, now: now)
        default:
            return []
        }
    }

    mutating func casFailed(from peer: String, operation id: UInt64, ballot: Ballot, now: UInt64) -> [ReplicaAction] {
        // A silent replica just does not count; the deadline ends a round that cannot reach a majority.
        []
    }

    /// Phase 1 reached a majority: finish a value a previous round left accepted, or test the
    /// condition on the newest state and propose the update.
    private mutating func decide(_ id: UInt64, promises: [String: CASPromise], now: UInt64) -> [ReplicaAction] {
        guard var round = rounds[id] else { return [] }
        let highestCommit = promises.values.map(\.committed).max() ?? .zero
        let pending = promises.values.compactMap { promise in
            promise.accepted.flatMap { ballot in promise.acceptedDocument.map { (ballot, $0) } }
        }.filter { $0.0 > highestCommit }.max { $0.0 < $1.0 }
        var merged =
            store.collections[round.key.collection]?.documents[round.key.id ?? ""]
            ?? ReplicatedDocument(id: round.key.id ?? "")
        for promise in promises.values { if let current = promise.current { merged.merge(current) } }
        // A replica that missed the collection's last drop still answers with what the drop forgot.
        if let dropped = store.collections[round.key.collection]?.dropped { merged.forget(upTo: dropped) }
        let proposal: ReplicatedDocument
        let recovering: Bool
        if merged.applied[round.idempotencyKey] != nil {
            // An earlier proposal of ours was committed by a coordinator that recovered it, or the
            // call's first attempt (elsewhere) applied it.
            rounds[id] = nil
            let receipt = WriteReceipt(
                id: round.key.id, stamp: merged.version, replicas: replicaCount / 2 + 1,
                document: round.proposedBody
                    ?? store.collections[round.key.collection]?.visibleBody(merged) ?? merged.body,
                replayed: round.proposedBody == nil)
            return [.completed(operation: id, .success(receipt))]
        }
        if let pending {
            proposal = pending.1
            recovering = true
        } else {
            let visible = store.collections[round.key.collection].flatMap { $0.visibleBody(merged) }
            guard let body = visible else {
                rounds[id] = nil
                return [
                    .completed(
                        operation: id,
                        .failure(
                            DatabaseError(.notFound, "no document \(round.key.id ?? "") in '\(round.key.collection)'")))
                ]
            }
            guard round.condition.matches(body) else {
                rounds[id] = nil
                casConditionFailures += 1
                return [
                    .completed(
                        operation: id,
                        .failure(DatabaseError(.conditionFailed, "the condition does not hold for \(round.key)")))
                ]
            }
            do {
                try round.update.validate(against: body)
            } catch {
                rounds[id] = nil
                return [.completed(operation: id, .failure(error))]
            }
            clock.observe(merged.version, wallMillis: now)
            var next = merged
            // Stamped under an origin no replica claims coverage of: the value is decided later (or by
            // another coordinator), and peers that pulled this clock meanwhile must still receive it.
            var stamp = clock.now(wallMillis: now)
            stamp.node += Self.proposalOriginSuffix
            // Increments become values: a proposal that a later round recovers after newer values
            // were decided must lose to them by its stamp, which a counted increment would not.
            round.update.settingIncrements(from: body).apply(to: &next, current: body, stamp: stamp, origin: stamp.node)
            next.noteApplied(round.idempotencyKey, millis: stamp.millis)
            round.proposedBody = store.collections[round.key.collection]?.visibleBody(next) ?? next.body
            proposal = next
            recovering = false
        }
        let (own, logged) = propose(round.key, round.ballot, proposal)
        guard case .accepted(true, _) = own else {
            return backOff(id, after: acceptors[round.key]?.promised ?? round.ballot, now: now)
        }
        round.phase = .proposing(proposal, recovering: recovering, accepts: [node], refusals: [])
        rounds[id] = round
        let persist: [ReplicaAction] = [.persist(logged)]
        if replicaCount / 2 + 1 <= 1 {
            return persist + commitRound(id, document: proposal, recovering: recovering, now: now)
        }
        return persist
            + alive.sorted().map {
                casSend(.propose(round.key, round.ballot, proposal), to: $0, id: id, ballot: round.ballot)
            }
    }

    private mutating func commitRound(
        _ id: UInt64, document: ReplicatedDocument, recovering: Bool, now: UInt64
    ) -> [ReplicaAction] {
        guard var round = rounds[id] else { return [] }
        let entries = commit(round.key, round.ballot, document, now: now)
        round.phase = .committing(document, recovering: recovering, acks: [node])
        rounds[id] = round
        var actions: [ReplicaAction] = [.persist(entries)]
        actions += alive.sorted().map {
            casSend(.commit(round.key, round.ballot, document), to: $0, id: id, ballot: round.ballot)
        }
        if replicaCount / 2 + 1 <= 1 {
            actions += finishRound(id, document: document, recovering: recovering, now: now)
        }
        return actions
    }

    private mutating func finishRound(
        _ id: UInt64, document: ReplicatedDocument, recovering: Bool, now: UInt64
    ) -> [ReplicaAction] {
        guard let round = rounds[id] else { return [] }
        if recovering {
            // A previous round's value is now committed; run this caller's own change after it.
            return beginRound(id, after: round.ballot, now: now)
        }
        rounds[id] = nil
        let receipt = WriteReceipt(
            id: round.key.id, stamp: document.version, replicas: replicaCount / 2 + 1,
            document: store.collections[round.key.collection]?.visibleBody(document) ?? document.body)
        return [.completed(operation: id, .success(receipt))]
    }

    /// Deadlines and retries of conditional updates.
    mutating func casTimers(now: UInt64) -> [ReplicaAction] {
        var actions: [ReplicaAction] = []
        for (id, round) in rounds {
            if round.deadline <= now {
                rounds[id] = nil
                actions.append(
                    .completed(
                        operation: id,
                        .failure(DatabaseError(.unavailable, "no majority decided the conditional update in time"))))
            } else if case .waiting(let until) = round.phase, until <= now {
                actions += beginRound(id, after: round.ballot, now: now)
            }
        }
        return actions
    }
}
