import DistriCore
import NIOCore

/// The DB services by the seed's names. Each runs on the node asked (every node holds a replica):
/// writes apply locally and replicate with the consistency the caller asks for (default `majority`);
/// reads run on the local replica (`read=majority` first pulls from a majority; `session=` waits for
/// the caller's own writes). Replies are JSON.
enum DatabaseServices {
    static let names = [
        "CreateCollection", "DropCollection", "ListCollections", "AddDocument", "UpdateDocument", "DeleteDocument",
        "ReadCollection", "Count",
    ]

    /// Registers the services, except where the node's owner already registered one by that name.
    static func register(on registry: ServiceRegistry, replica: DatabaseReplica) {
        /// Registers `name`, whose body hands its reply to a completion; a service that `writes` is
        /// refused on the collections reserved for signed changes, one that `reads` a collection on the
        /// private ones (its first argument is the collection).
        typealias Completing = @Sendable (DatabaseRequest, EventLoop, @escaping ServiceCompletion) throws -> Void
        func service(
            _ name: String, writes: Bool = false, reads: Bool = false, completing body: @escaping Completing
        ) {
            guard registry.lookup(name) == nil else { return }
            registry.register(
                RegisteredService(
                    name: name,
                    execution: .callback { request, loop, done in
                        do {
                            let parsed = try DatabaseRequest(request)
                            if writes {
                                try SignedRecordServices.checkWritable(try parsed.argument(0, "collection"), by: name)
                            }
                            if reads {
                                try SignedRecordServices.checkReadable(try parsed.argument(0, "collection"), by: name)
                            }
                            try body(parsed, loop, done)
                        } catch {
                            done(.failure(error))
                        }
                    },
                    runsWhereAsked: true))
        }
        /// Registers `name`, whose body returns its reply as a future.
        func service(
            _ name: String, writes: Bool = false, reads: Bool = false,
            _ body: @escaping @Sendable (DatabaseRequest, EventLoop) throws -> EventLoopFuture<ByteBuffer>
        ) {
            service(name, writes: writes, reads: reads) { request, loop, done in
                try body(request, loop).whenComplete(done)
            }
        }
        let limit = replica.limits.maxDocumentBytes

        service("CreateCollection", writes: true) { request, loop in
            let name = try request.argument(0, "collection")
            return replica.write(
                .createCollection(name), consistency: try request.writeConsistency,
                deadline: request.request.deadline, context: request.request.serviceContext, on: loop
            ).map { DatabaseReply.write($0, extra: ["collection": .string(name)]) }
        }
        service("DropCollection", writes: true) { request, loop in
            let name = try request.argument(0, "collection")
            return writeCatchingUp(.dropCollection(name), request, replica, loop).map {
                DatabaseReply.write($0, extra: ["collection": .string(name)])
            }
        }
        service("ListCollections") { request, loop in
            read(request, replica, loop) { store in
                DatabaseReply.json(.object(["collections": .array(store.collectionNames.map(JSONValue.string))]))
            }
        }
        service("AddDocument", writes: true) { request, loop, done in
            let collection = try request.argument(0, "collection")
            var body = try request.object(limit: limit)
            let id: String
            let derived: Bool
            switch body.removeValue(forKey: "_id") {
            case .string(let given)? where !given.isEmpty && given.utf8.count <= 256: (id, derived) = (given, false)
            // Named after the task id, which every retry of the call carries: a retry that lands on
            // another node after the first attempt's node died finds the document instead of adding a twin.
            case nil:
                (id, derived) = (
                    request.request.taskID == 0 ? DocumentID.random() : DocumentID.id(request.request.taskID), true
                )
            default: throw ServiceError.badParams("_id must be a string of 1 to 256 bytes")
            }
            // No future at all, only completions: this is the hottest write.
            writeCatchingUp(.add(collection: collection, id: id, body: body), request, replica, loop) {
                switch $0 {
                case .success(let receipt): done(.success(DatabaseReply.write(receipt)))
                case .failure(let error as ServiceError) where derived && error.code == .conflict:
                    done(.success(DatabaseReply.json(.object(["id": .string(id), "retried": true]))))
                case .failure(let error): done(.failure(error))
                }
            }
        }
        service("UpdateDocument", writes: true) { request, loop in
            let collection = try request.argument(0, "collection")
            let id = try request.argument(1, "document id")
            let update = try documentUpdate(request, limit: limit)
            let operation: DatabaseOperation
            if let condition = request.options["if"] {
                let filter = try DatabaseRequest.filter(try DatabaseRequest.parse(condition))
                operation = .conditional(collection: collection, id: id, condition: filter, update: update)
            } else {
                operation = .update(collection: collection, id: id, update)
            }
            return writeCatchingUp(operation, request, replica, loop).map { DatabaseReply.write($0) }
        }
        service("DeleteDocument", writes: true) { request, loop in
            let collection = try request.argument(0, "collection")
            if request.positional.count > 1 {
                let id = try request.argument(1, "document id")
                return writeCatchingUp(.delete(collection: collection, ids: [id]), request, replica, loop).map {
                    DatabaseReply.write($0, extra: ["deleted": .number(1)])
                }
            }
            guard let filterJSON = try request.body(limit: limit) else {
                throw ServiceError.badParams("DeleteDocument needs a document id or a JSON filter")
            }
            let filter = try DatabaseRequest.filter(filterJSON)
            let consistency = try request.writeConsistency
            return read(request, replica, loop) { store -> [String] in
                guard let documents = store.documents(in: collection, matching: filter) else {
                    throw ServiceError.notFound("no collection '\(collection)'")
                }
                return documents.map(\.id)
            }.flatMap { ids in
                guard !ids.isEmpty else {
                    return loop.makeSucceededFuture(DatabaseReply.json(.object(["deleted": .number(0)])))
                }
                return replica.write(
                    .delete(collection: collection, ids: ids), consistency: consistency,
                    idempotencyKey: request.request.taskID, deadline: request.request.deadline,
                    context: request.request.serviceContext, on: loop
                ).map { DatabaseReply.write($0, extra: ["deleted": .number(Double(ids.count))]) }
            }
        }
        service("ReadCollection", reads: true) { request, loop in
            let collection = try request.argument(0, "collection")
            let query = try documentQuery(try request.body(limit: limit))
            return read(request, replica, loop) { store in
                guard let documents = store.documents(in: collection, matching: query.filter) else {
                    throw ServiceError.notFound("no collection '\(collection)'")
                }
                var ordering = query
                ordering.filter = .all  // already applied
                let page = ordering.run(over: documents)
                var reply: [String: JSONValue] = [
                    "documents": .array(page.documents.map { .object($0.body) })
                ]
                reply["next"] = page.next.map { .string(DatabaseReply.cursor($0)) } ?? .null
                return DatabaseReply.json(.object(reply))
            }
        }
        service("Count", reads: true) { request, loop in
            let collection = try request.argument(0, "collection")
            let filter = try DatabaseRequest.filter(try request.body(limit: limit))
            return read(request, replica, loop) { store in
                guard let stored = store.collections[collection], stored.exists else {
                    throw ServiceError.notFound("no collection '\(collection)'")
                }
                let count =
                    filter == .all ? stored.liveCount : store.documents(in: collection, matching: filter)?.count ?? 0
                return DatabaseReply.json(.object(["count": .number(Double(count))]))
            }
        }
        registry.register(
            RegisteredService(
                name: DatabaseReplica.replicateService,
                execution: .future { request, loop in
                    guard let peer = request.params.first else {
                        return loop.makeFailedFuture(ServiceError.badParams("Replicate needs the sender's id"))
                    }
                    // With TLS, a node replicates only in the name its certificate gives it.
                    do {
                        try request.caller.check(actingAs: peer, "Replicate as")
                    } catch {
                        return loop.makeFailedFuture(error)
                    }
                    return replica.handle(request.data, from: peer, on: loop)
                },
                bypassesAdmission: true, nodesOnly: true))
    }

    private static func read<T: Sendable>(
        _ request: DatabaseRequest, _ replica: DatabaseReplica, _ loop: EventLoop,
        _ body: @escaping @Sendable (DocumentStore) throws -> T
    ) -> EventLoopFuture<T> {
        do {
            return replica.read(
                consistency: try request.readConsistency, session: try request.session,
                deadline: request.request.deadline, on: loop, body)
        } catch {
            return loop.makeFailedFuture(error)
        }
    }

    /// Writes; when the document or collection is not found here, pulls from the other replicas
    /// once (it may have been written elsewhere a moment ago) and tries again.
    private static func writeCatchingUp(
        _ operation: DatabaseOperation, _ request: DatabaseRequest, _ replica: DatabaseReplica, _ loop: EventLoop
    ) -> EventLoopFuture<WriteReceipt> {
        let promise = loop.makePromise(of: WriteReceipt.self)
        writeCatchingUp(operation, request, replica, loop) { promise.completeWith($0) }
        return promise.futureResult
    }

    /// As the other form, calling `completion` on `loop`.
    private static func writeCatchingUp(
        _ operation: DatabaseOperation, _ request: DatabaseRequest, _ replica: DatabaseReplica, _ loop: EventLoop,
        completion: @escaping WriteWaiter.Completion
    ) {
        let consistency: WriteConsistency
        let session: SessionToken?
        do {
            consistency = try request.writeConsistency
            session = try request.session
        } catch {
            return completion(.failure(error))
        }
        let deadline = request.request.deadline
        let key = request.request.taskID
        let context = request.request.serviceContext
        let attempt: @Sendable (@escaping WriteWaiter.Completion) -> Void = { done in
            replica.write(
                operation, consistency: consistency, idempotencyKey: key, deadline: deadline, context: context,
                on: loop, completion: done)
        }
        let retryingOnceCaughtUp: WriteWaiter.Completion = { result in
            guard case .failure(let error as ServiceError) = result, error.code == .notFound else {
                return completion(result)
            }
            replica.read(consistency: .all, session: nil, deadline: deadline, on: loop) { _ in }
                .whenComplete { _ in attempt(completion) }
        }
        // A retry's first attempt may have been applied by a node that then died: pull from a majority
        // first, so that the write's idempotency key is found wherever a majority can see it.
        let retried = request.request.isRetry && key != 0
        guard session != nil || retried else { return attempt(retryingOnceCaughtUp) }
        // A session names writes made elsewhere: wait for them first, so an update sees its own add.
        replica.read(consistency: retried ? .majority : .local, session: session, deadline: deadline, on: loop) { _ in
        }.whenComplete {
            switch $0 {
            case .success: attempt(retryingOnceCaughtUp)
            case .failure(let error): retryingOnceCaughtUp(.failure(error))
            }
        }
    }

    private static func documentUpdate(_ request: DatabaseRequest, limit: Int) throws(ServiceError) -> DocumentUpdate {
        var fields = try request.object(limit: limit)
        var increment: [String: Double] = [:]
        if let inc = fields.removeValue(forKey: "$inc") {
            guard case .object(let amounts) = inc else { throw .badParams("$inc needs an object of numbers") }
            for (field, amount) in amounts {
                guard case .number(let value) = amount else { throw .badParams("$inc on \(field) needs a number") }
                increment[field] = value
            }
        }
        if let reserved = fields.keys.first(where: { $0.hasPrefix("$") || $0 == "_id" }) {
            throw .badParams("unknown update operator or reserved field \(reserved)")
        }
        let mode = request.options["mode"] ?? "merge"
        guard mode == "merge" || mode == "replace" else { throw .badParams("mode is merge or replace, not \(mode)") }
        return DocumentUpdate(set: fields, increment: increment, replace: mode == "replace")
    }

    /// `{"filter": {...}, "sort": "field", "order": "asc|desc", "limit": n, "after": "cursor"}`.
    static func documentQuery(_ json: JSONValue?) throws(ServiceError) -> DocumentQuery {
        guard let json else { return DocumentQuery() }
        guard case .object(let fields) = json else { throw .badParams("a query must be a JSON object") }
        let known: Set<String> = ["filter", "sort", "order", "limit", "after"]
        if let unknown = fields.keys.first(where: { !known.contains($0) }) {
            throw .badParams("unknown query key '\(unknown)' (use filter, sort, order, limit, after)")
        }
        var query = DocumentQuery(filter: try DatabaseRequest.filter(fields["filter"]))
        switch fields["sort"] {
        case .string(let path)?: query.sortBy = path
        case nil, .null?: break
        default: throw .badParams("sort takes a field path")
        }
        switch fields["order"] {
        case .string("desc")?: query.descending = true
        case .string("asc")?, nil, .null?: break
        default: throw .badParams("order is asc or desc")
        }
        switch fields["limit"] {
        case .number(let limit)? where limit >= 1 && limit == limit.rounded(): query.limit = Int(min(limit, 1e9))
        case nil, .null?: break
        default: throw .badParams("limit takes a positive whole number")
        }
        switch fields["after"] {
        case .string(let cursor)?: query.after = try DatabaseReply.parseCursor(cursor)
        case nil, .null?: break
        default: throw .badParams("after takes the cursor of the previous page")
        }
        return query
    }
}

/// Document ids: 13 base-36 digits (a UInt64), short enough for Swift's inline small strings, so
/// the replica's tables hash and compare them without touching the heap.
enum DocumentID {
    static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        return id(generator.next())
    }

    static func id(_ value: UInt64) -> String {
        let digits = String(value, radix: 36)
        return String(repeating: "0", count: 13 - digits.count) + digits
    }
}
