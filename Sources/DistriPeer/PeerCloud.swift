import Distri
import DistriCore
import DistriIdentity

/// A peer's calls to the cloud: registering its signed record, publishing signed catalog entries,
/// and reading the `users` and `catalog` collections (reads verify signatures here, in the front end).
public struct PeerCloud: Sendable {
    /// The client the cloud is called through.
    public let client: Client
    /// The cloud's document DB, over ``client``.
    public let database: DocumentDatabase

    /// The cloud `client` reaches.
    public init(client: Client) {
        self.client = client
        self.database = DocumentDatabase(client: client)
    }

    /// Sends `record` to `RegisterPeer`.
    public func register(_ record: PeerRecord) async throws {
        _ = try await client.send(
            Array(JSONValue.object(record.document).jsonText.utf8), service: SignedRecordServices.registerPeer,
            params: [])
    }

    /// Sends `request` (a request or its answer) to `PostRequest`.
    public func post(_ request: AccessRequest) async throws {
        _ = try await client.send(
            Array(JSONValue.object(request.document).jsonText.utf8), service: SignedRecordServices.postRequest,
            params: [])
    }

    /// Sends `entry` to `PublishImage`.
    public func publish(_ entry: CatalogEntry) async throws {
        _ = try await client.send(
            Array(JSONValue.object(entry.document).jsonText.utf8), service: SignedRecordServices.publishImage,
            params: [])
    }

    /// Every document of `collection` matching `filter` (none when the collection does not exist
    /// yet), a page of 500 at a time, at most `maxDocuments`.
    public func documents(in collection: String, filter: JSONValue? = nil, maxDocuments: Int = 100_000) async throws
        -> [DocumentDatabase.Document]
    {
        var all: [DocumentDatabase.Document] = []
        var cursor: String?
        // Bounded: every page adds at least one document or ends the loop, and the total is capped.
        repeat {
            let page: DocumentDatabase.Page
            do {
                page = try await database.read(collection, filter: filter, limit: 500, after: cursor)
            } catch let error as ClientError where error.remoteCode == .notFound && all.isEmpty {
                return []
            }
            all += page.documents
            cursor = page.documents.isEmpty ? nil : page.next
        } while cursor != nil && all.count < maxDocuments
        return all
    }

    /// The peers in `users`, each marked online, offline or unverified.
    public func peers(now: UInt64 = wallClockMillis(), refreshMillis: UInt64 = PeerDaemon.defaultRefreshMillis)
        async throws -> [PeerListing]
    {
        try await documents(in: PeerRecord.collection).map {
            PeerListing(id: $0.id, document: $0.body, now: now, refreshMillis: refreshMillis)
        }.sorted { $0.name < $1.name }
    }
}

extension PeerCloud {
    /// The catalog's entries, each checked here against its owner's `users` record: ``CatalogListing``
    /// says whether the owner signed it. (The cloud refuses plain DB writes to `catalog`; this check
    /// keeps a node that was tampered with from making a client trust a forged entry.)
    public func catalog() async throws -> [CatalogListing] {
        var keys: [String: SigningPublicKey] = [:]
        for document in try await documents(in: PeerRecord.collection) {
            guard let record = try? PeerRecord(document: document.body), (try? record.verify()) != nil else { continue }
            keys[record.name] = record.signingKey
        }
        return try await documents(in: CatalogEntry.collection).map { document in
            do {
                let entry = try CatalogEntry(
                    document: document.body.merging(["_id": .string(document.id)]) { a, _ in a })
                guard let key = keys[entry.owner] else {
                    return CatalogListing(
                        id: document.id, entry: nil, problem: "owner '\(entry.owner)' is not registered")
                }
                try entry.verify(signedBy: key)
                return CatalogListing(id: document.id, entry: entry, problem: nil)
            } catch {
                return CatalogListing(id: document.id, entry: nil, problem: "\(error)")
            }
        }.sorted { $0.id < $1.id }
    }
}

/// A catalog document as read: the verified entry, or why it is not one.
public struct CatalogListing: Sendable, Equatable {
    /// The document's id, `owner/name`.
    public var id: String
    /// The entry, when its owner signed it.
    public var entry: CatalogEntry?
    /// Why the document is not a verified entry, when it is not.
    public var problem: String?
}

/// One line of `distri-peer list peers`.
public struct PeerListing: Sendable, Equatable {
    /// Whether a peer is online.
    public enum Status: String, Sendable {
        /// Signed within three refresh intervals (online), or not since (offline).
        case online, offline
        /// The record does not verify: its signature or shape is bad.
        case unverified
    }

    /// The peer's name.
    public var name: String
    /// The addresses its record publishes.
    public var addresses: [String]
    /// When it last signed its record, in milliseconds since 1970.
    public var lastSeen: UInt64?
    /// What the cloud's reachability check said when the peer registered (nil: not checked).
    public var reachable: Bool?
    /// Online, offline or unverified.
    public var status: Status
    /// Why the record did not verify.
    public var problem: String?

    /// Online when the record verifies and was signed within three refresh intervals of `now`.
    public init(id: String, document: [String: JSONValue], now: UInt64, refreshMillis: UInt64) {
        do {
            let record = try PeerRecord(document: document.merging(["_id": .string(id)]) { a, _ in a })
            try record.verify()
            self.name = record.name
            self.addresses = record.addresses
            self.lastSeen = record.lastSeen
            self.reachable = record.reachable
            let fresh = record.lastSeen + 3 * refreshMillis >= now
            self.status = fresh ? .online : .offline
            self.problem = nil
        } catch {
            self.name = id
            self.addresses = []
            self.lastSeen = nil
            self.reachable = nil
            self.status = .unverified
            self.problem = "\(error)"
        }
    }

    /// The listing as JSON, for `--json`.
    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "name": .string(name), "addresses": .array(addresses.map(JSONValue.string)),
            "status": .string(status.rawValue),
        ]
        fields["lastSeen"] = lastSeen.map { .number(Double($0)) } ?? .null
        fields["reachable"] = reachable.map { .bool($0) } ?? .null
        if let problem { fields["problem"] = .string(problem) }
        return .object(fields)
    }
}
