import Distri
import DistriCore
import DistriIdentity

/// What waits for a peer: requests to it, grants to it, and the state of its own requests. Every
/// record is checked here against its signer's registered key; one that does not verify is left out.
public struct Inbox: Sendable {
    /// Requests for this peer's images that it has not answered.
    public var requestsToMe: [AccessRequest]
    /// This peer's own requests, in every state.
    public var myRequests: [AccessRequest]
    /// Grants in force to this peer, revoked ones too.
    public var grantsToMe: [ReceivedGrant]
}

/// A grant to this peer, what the cloud says is left, and whether the image has arrived.
public struct ReceivedGrant: Sendable {
    /// What this peer holds of an image granted to it.
    public enum State: String, Sendable {
        /// The owner revoked the grant (a copy here is removed at the next try to view it).
        case revoked
        /// Every view was used.
        case noViewsLeft
        /// Not here yet: on its way, in the cloud's mailbox, or in the owner's outbox.
        case waiting
        /// Here and not viewed yet.
        case received
        /// Here, viewed, and views are left.
        case viewed

        /// The state in words, for the text listing.
        public var words: String {
            switch self {
            case .revoked: "revoked by the owner"
            case .noViewsLeft: "no views left"
            case .waiting: "waiting (not here yet)"
            case .received: "received, not viewed yet"
            case .viewed: "viewed"
            }
        }
    }

    /// The grant, as its owner signed it.
    public var grant: ViewGrant
    /// Views left, as the cloud holds them.
    public var remaining: UInt64
    /// Whether the sealed image is in this peer's `received/`.
    public var received: Bool

    /// What this peer holds, as the grant in force, the views left and `received/` say.
    public var state: State {
        if grant.views == 0 { return .revoked }
        if remaining == 0 { return .noViewsLeft }
        if !received { return .waiting }
        return remaining < grant.views ? .viewed : .received
    }
}

extension PeerSharing {
    /// Asks `owner` for `views` views of its published image `image`.
    @discardableResult
    public func request(image: String, from owner: String, views: UInt64) async throws -> AccessRequest {
        try PeerName.validate(image, what: "image name")
        try PeerName.validate(owner, what: "owner")
        _ = try await cloud.verifiedPeer(owner)
        guard try await cloud.document("\(owner)/\(image)", in: CatalogEntry.collection) != nil else {
            throw PeerError("'\(owner)' has published no image named '\(image)' (see the catalog)", kind: .notFound)
        }
        return try await post(owner: owner, image: image, requester: identity.name, views: views, state: .pending)
    }

    /// Answers `requester`'s request for `image` with a grant of `views` views (by default what it
    /// asked for), then sends the image as ``PeerSharing/send(image:to:views:progress:)`` does.
    public func grantRequest(
        image: String, to requester: String, views: UInt64? = nil, progress: DeliveryProgress? = nil
    ) async throws -> (outcome: SendOutcome, views: UInt64) {
        let asked = try await storedRequest(owner: identity.name, image: image, requester: requester)
        guard let views = views ?? asked?.views else {
            throw PeerError(
                "'\(requester)' has not asked for '\(image)'; say how many views with --views", kind: .notFound)
        }
        let outcome = try await send(image: image, to: requester, views: views, progress: progress)
        try await post(owner: identity.name, image: image, requester: requester, views: views, state: .granted)
        return (outcome, views)
    }

    /// Rejects `requester`'s request for `image`.
    public func reject(image: String, from requester: String) async throws {
        guard try await storedRequest(owner: identity.name, image: image, requester: requester) != nil else {
            throw PeerError("'\(requester)' has not asked for '\(image)'", kind: .notFound)
        }
        try await post(owner: identity.name, image: image, requester: requester, views: 0, state: .rejected)
    }

    /// Requests to and from this peer, and grants to it.
    public func inbox() async throws -> Inbox {
        var keys = SignerKeys(cloud: cloud)
        let me = JSONValue.string(identity.name)
        var toMe: [AccessRequest] = []
        for document in try await cloud.documents(in: AccessRequest.collection, filter: .object(["owner": me])) {
            guard let request = try? AccessRequest(document: document.body), request.state == .pending,
                await keys.verifies(request)
            else { continue }
            toMe.append(request)
        }
        var mine: [AccessRequest] = []
        for document in try await cloud.documents(in: AccessRequest.collection, filter: .object(["requester": me])) {
            guard let request = try? AccessRequest(document: document.body), await keys.verifies(request) else {
                continue
            }
            mine.append(request)
        }
        var grants: [ReceivedGrant] = []
        for document in try await cloud.documents(in: ViewGrant.collection, filter: .object(["recipient": me])) {
            guard let grant = try? ViewGrant(document: document.body),
                let key = await keys.key(of: grant.owner), (try? grant.verify(signedBy: key)) != nil
            else { continue }
            let remaining = document.body["remaining"]?.wholeNumberValue ?? grant.views
            let file = identity.home.receivedFile(owner: grant.owner, image: grant.image)
            grants.append(ReceivedGrant(grant: grant, remaining: remaining, received: SecureFiles.exists(file)))
        }
        return Inbox(
            requestsToMe: toMe.sorted { $0.sequence < $1.sequence },
            myRequests: mine.sorted { $0.sequence < $1.sequence },
            grantsToMe: grants.sorted { ($0.grant.owner, $0.grant.image) < ($1.grant.owner, $1.grant.image) })
    }

    // MARK: Records

    private func storedRequest(owner: String, image: String, requester: String) async throws -> AccessRequest? {
        try PeerName.validate(image, what: "image name")
        try PeerName.validate(requester, what: "requester")
        let id = ViewGrant.id(owner: owner, image: image, recipient: requester)
        return try await cloud.document(id, in: AccessRequest.collection).flatMap {
            try? AccessRequest(document: $0.merging(["_id": .string(id)]) { a, _ in a })
        }
    }

    /// Signs and posts a version of the request with a sequence above the stored one.
    @discardableResult
    private func post(owner: String, image: String, requester: String, views: UInt64, state: AccessRequest.State)
        async throws -> AccessRequest
    {
        let previous = try await storedRequest(owner: owner, image: image, requester: requester)?.sequence ?? 0
        let request = try AccessRequest(
            owner: owner, image: image, requester: requester, views: views, state: state,
            sequence: max(wallClockMillis(), previous + 1)
        ).signed(by: identity.signing)
        try await cloud.post(request)
        return request
    }
}

/// Signing keys of registered peers, each looked up (and its record verified) once.
private struct SignerKeys {
    let cloud: PeerCloud
    var known: [String: SigningPublicKey?] = [:]

    init(cloud: PeerCloud) { self.cloud = cloud }

    mutating func key(of name: String) async -> SigningPublicKey? {
        if let cached = known[name] { return cached }
        let key = try? await cloud.verifiedPeer(name).signingKey
        known[name] = key
        return key
    }

    mutating func verifies(_ request: AccessRequest) async -> Bool {
        guard let key = await key(of: request.signer) else { return false }
        return (try? request.verify(signedBy: key)) != nil
    }
}
