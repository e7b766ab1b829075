import DistriCore
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOFoundationCompat

/// A typed view of the cloud's document DB over a ``Client``: the DB services by name, JSON in and
/// out, with a session so the caller reads its own writes on whichever node answers.
public struct DocumentDatabase: Sendable {
    /// A document: its id and its fields.
    public struct Document: Sendable, Equatable {
        /// The document's id (`_id`).
        public var id: String
        /// The document's fields, without `_id`.
        public var body: [String: JSONValue]
    }

    /// One page of a read, and the cursor of the next one (nil on the last page).
    public struct Page: Sendable, Equatable {
        /// The documents of this page, in the read's order.
        public var documents: [Document]
        /// The cursor to pass as `after` for the next page; nil on the last page.
        public var next: String?
    }

    /// The client the DB services are called through.
    public let client: Client
    /// Consistency of writes. Default `majority`.
    public var consistency: WriteConsistency
    /// Consistency of reads. Default `local`.
    public var readConsistency: ReadConsistency
    /// When true (default), reads wait until the answering node has this session's writes.
    public var readYourWrites: Bool
    private let token = NodeLock(SessionToken())

    /// A DB over `client`, writing at `consistency` and reading at `readConsistency`.
    public init(
        client: Client, consistency: WriteConsistency = .majority, readConsistency: ReadConsistency = .local,
        readYourWrites: Bool = true
    ) {
        self.client = client
        self.consistency = consistency
        self.readConsistency = readConsistency
        self.readYourWrites = readYourWrites
    }

    /// The session token: every write this value has made, as stamps per origin node.
    public var session: SessionToken { token.withLockedValue { $0 } }

    /// Creates the collection `name`.
    public func createCollection(_ name: String) async throws {
        _ = try await write("CreateCollection", [name])
    }

    /// Drops the collection `name` and every document in it.
    public func dropCollection(_ name: String) async throws {
        _ = try await write("DropCollection", [name])
    }

    /// The names of the collections.
    public func listCollections() async throws -> [String] {
        let reply = try await call("ListCollections", [], body: nil, read: true)
        return reply["collections"]?.arrayValue?.compactMap(\.stringValue) ?? []
    }

    /// Adds a document and returns its id (the body's `_id` when it has one, else a new random id).
    @discardableResult
    public func add(_ body: [String: JSONValue], to collection: String) async throws -> String {
        let reply = try await write("AddDocument", [collection], body: .object(body))
        return reply["id"]?.stringValue ?? ""
    }

    /// Sets fields (or replaces the document) and adds to numeric fields. With `condition`, applies
    /// only if the document, as a majority holds it, matches the filter (a compare-and-set round;
    /// ``ClientError`` with remote code `conflict` when it does not). Returns the document as written
    /// for conditional updates.
    @discardableResult
    public func update(
        _ id: String, in collection: String, set fields: [String: JSONValue] = [:],
        increment: [String: Double] = [:], replace: Bool = false, if condition: JSONValue? = nil
    ) async throws -> [String: JSONValue]? {
        var body = fields
        if !increment.isEmpty { body["$inc"] = .object(increment.mapValues(JSONValue.number)) }
        var params = [collection, id, "mode=\(replace ? "replace" : "merge")"]
        if let condition { params.append("if=\(condition.jsonText)") }
        return try await write("UpdateDocument", params, body: .object(body))["document"]?.objectValue
    }

    /// Deletes the document `id` from `collection`.
    public func delete(_ id: String, from collection: String) async throws {
        _ = try await write("DeleteDocument", [collection, id])
    }

    /// Deletes every document matching `filter`; returns how many.
    @discardableResult
    public func delete(matching filter: JSONValue, from collection: String) async throws -> Int {
        let reply = try await write("DeleteDocument", [collection], body: filter)
        return Int(reply["deleted"]?.wholeNumberValue ?? 0)
    }

    /// One page of documents matching `filter`, sorted by `sort` (a dotted path; default the id).
    public func read(
        _ collection: String, filter: JSONValue? = nil, sort: String? = nil, descending: Bool = false,
        limit: Int? = nil, after cursor: String? = nil
    ) async throws -> Page {
        var query: [String: JSONValue] = [:]
        if let filter { query["filter"] = filter }
        if let sort { query["sort"] = .string(sort) }
        if descending { query["order"] = .string("desc") }
        if let limit { query["limit"] = .number(Double(limit)) }
        if let cursor { query["after"] = .string(cursor) }
        let reply = try await call("ReadCollection", [collection], body: .object(query), read: true)
        let documents = (reply["documents"]?.arrayValue ?? []).compactMap { value -> Document? in
            guard var body = value.objectValue, case .string(let id)? = body.removeValue(forKey: "_id") else {
                return nil
            }
            return Document(id: id, body: body)
        }
        return Page(documents: documents, next: reply["next"]?.stringValue)
    }

    /// Documents matching `filter`.
    public func count(_ collection: String, filter: JSONValue? = nil) async throws -> Int {
        let reply = try await call("Count", [collection], body: filter, read: true)
        return Int(reply["count"]?.wholeNumberValue ?? 0)
    }

    // MARK: Calls

    private func write(_ service: String, _ params: [String], body: JSONValue? = nil) async throws -> [String:
        JSONValue]
    {
        let reply = try await call(service, params + ["consistency=\(consistency.rawValue)"], body: body, read: false)
        if let text = reply["session"]?.stringValue, let stamps = SessionToken(text) {
            token.withLockedValue { $0.merge(stamps) }
        }
        return reply
    }

    private func call(_ service: String, _ params: [String], body: JSONValue?, read: Bool) async throws -> [String:
        JSONValue]
    {
        var params = params
        if read { params.append("read=\(readConsistency.rawValue)") }
        let session = self.session
        if readYourWrites, !session.stamps.isEmpty { params.append("session=\(session)") }
        let bytes = try await client.send(Array((body?.jsonText ?? "").utf8), service: service, params: params)
        guard let value = try? JSONParser.parse(bytes), let object = value.objectValue
        else {
            throw ClientError(.protocolViolation, node: nil, message: "\(service) did not answer with a JSON object")
        }
        return object
    }
}
