import DistriCore
import DistriIdentity
import NIOCore

/// The one add-or-conditional-update loop of the signed services: read what the ``GrantLedger``
/// needs at `majority`, let it decide, write its decision at `majority`, and on a conflict read and
/// decide again, a bounded number of times.
enum LedgerWriter {
    /// Passes of one call against concurrent changes to the same document.
    static let maxAttempts = 8

    /// What a run wrote and decided.
    struct Written<Outcome> {
        /// The write's receipt; nil when the ledger decided there was nothing to write.
        var receipt: WriteReceipt?
        /// The write made (its `condition` is nil for an add).
        var write: LedgerWrite?
        /// What the ledger decided besides the write.
        var outcome: Outcome
    }

    /// Reads `State` with `read` (at `majority`), lets `decide` choose a write (nil: nothing to write)
    /// and an outcome, and performs the write at `majority`: an add when the ledger found the document
    /// absent (creating the collection first), else the conditional update. A conflict (added
    /// meanwhile, or the condition no longer holds) reads and decides again, at most ``maxAttempts``
    /// times; a refusal becomes an `unauthorized` or `conflict` ``ServiceError``.
    ///
    /// `idempotencyKey` goes with every attempt's write: a document that holds it had an earlier
    /// attempt's update applied (see ``ReplicaEngine/perform``), and the replica answers success.
    static func run<State: Sendable, Outcome>(
        _ target: String, replica: DatabaseReplica, idempotencyKey: UInt64 = 0, deadline: NIODeadline?,
        on loop: EventLoop, read: @escaping @Sendable (DocumentStore) -> State,
        decide: (State) throws(LedgerRefusal) -> (write: LedgerWrite?, outcome: Outcome)
    ) async throws -> Written<Outcome> {
        // Bounded: each pass either returns, throws, or lost a race to a concurrent change.
        for _ in 0..<maxAttempts {
            let state = try await replica.read(
                consistency: .majority, session: nil, deadline: deadline, on: loop, read
            ).get()
            let decision: (write: LedgerWrite?, outcome: Outcome)
            do {
                decision = try decide(state)
            } catch {
                throw ServiceError(error)
            }
            guard let write = decision.write else {
                return Written(receipt: nil, write: nil, outcome: decision.outcome)
            }
            do {
                let receipt = try await perform(
                    write, replica: replica, idempotencyKey: idempotencyKey, deadline: deadline, on: loop)
                return Written(receipt: receipt, write: write, outcome: decision.outcome)
            } catch let error as ServiceError where error.code == .conflict {
                continue
            }
        }
        throw ServiceError(.unavailable, "\(target) kept changing; try again")
    }

    /// Writes `write` at `majority`: an add, or a conditional update.
    private static func perform(
        _ write: LedgerWrite, replica: DatabaseReplica, idempotencyKey: UInt64, deadline: NIODeadline?,
        on loop: EventLoop
    ) async throws -> WriteReceipt {
        let operation: DatabaseOperation
        if let condition = write.condition {
            let filter: DocumentFilter
            do {
                filter = try DocumentFilter(condition)
            } catch {
                throw ServiceError(.internal, "condition: \(error)")
            }
            operation = .conditional(
                collection: write.collection, id: write.id, condition: filter, update: write.update)
        } else {
            try await SignedRecordServices.ensureCollection(
                write.collection, replica: replica, deadline: deadline, on: loop
            ).get()
            operation = .add(collection: write.collection, id: write.id, body: write.update.set)
        }
        return try await replica.write(
            operation, consistency: .majority, idempotencyKey: idempotencyKey, deadline: deadline, on: loop
        ).get()
    }

    /// The ledger's view of `store` for a request naming `peers` and changing `id` of `collection`.
    static func ledger(_ store: DocumentStore, peers: [String], _ collection: String, _ id: String) -> GrantLedger {
        var documents: [String: [String: JSONValue]] = [:]
        for name in peers { documents[name] = store.document(name, in: PeerRecord.collection) }
        return GrantLedger(peers: documents, stored: store.document(id, in: collection))
    }

    /// ``run(_:replica:idempotencyKey:deadline:on:read:decide:)`` for one signed record: the ledger holds
    /// document `id` of `collection` and the `users` records of `peers`, and `check` decides the write.
    static func write(
        _ target: String, _ collection: String, _ id: String, peers: [String], replica: DatabaseReplica,
        deadline: NIODeadline?, on loop: EventLoop, check: (GrantLedger) throws(LedgerRefusal) -> LedgerWrite
    ) async throws -> Written<Void> {
        try await run(
            target, replica: replica, deadline: deadline, on: loop, read: { ledger($0, peers: peers, collection, id) },
            decide: { ledger throws(LedgerRefusal) in (try check(ledger), ()) })
    }

    /// A service run as a Swift task started from the connection's event loop.
    static func execution(
        _ body: @escaping @Sendable (ServiceRequest, EventLoop) async throws -> ByteBuffer
    ) -> ServiceExecution {
        .future { request, loop in
            let promise = loop.makePromise(of: ByteBuffer.self)
            promise.completeWithTask { try await body(request, loop) }
            return promise.futureResult
        }
    }
}

extension ServiceError {
    /// The service error a ledger refusal answers: `unauthorized`, or `conflict` for a stale record.
    init(_ refusal: LedgerRefusal) {
        self.init(refusal.reason == .stale ? .conflict : .unauthorized, refusal.message)
    }
}
