import DistriCore
import DistriIdentity

/// One image this peer sent (a grant it made), and what the other side holds of it as far as this
/// peer can know: the grant in force in the cloud, the views the cloud says are left, the outbox and
/// the record of the delivery.
public struct SentImage: Sendable, Equatable {
    /// What became of a send, the most telling first.
    public enum State: String, Sendable {
        /// The owner revoked the grant: the recipient cannot view it again.
        case revoked
        /// Every view was used.
        case noViewsLeft
        /// The recipient viewed it, and views are left.
        case viewed
        /// Waiting in this peer's outbox (neither the recipient nor the cloud's mailbox took it).
        case queued
        /// Left in the cloud's mailbox for the recipient's daemon to collect.
        case mailbox
        /// Delivered to the recipient (directly or through the relay), not viewed yet.
        case delivered
        /// Granted, with no record of a delivery here (sent from another home or an older version).
        case granted

        /// The state of a send: `views` granted, `remaining` as the cloud holds them (nil when the
        /// cloud was not asked), whether the outbox holds it, and the recorded outcome of its delivery.
        public static func of(views: UInt64, remaining: UInt64?, queued: Bool, outcome: String?) -> State {
            if views == 0 { return .revoked }
            if let remaining, remaining == 0 { return .noViewsLeft }
            if let remaining, remaining < views { return .viewed }
            if queued { return .queued }
            switch outcome {
            case "delivered": return .delivered
            case "mailbox": return .mailbox
            default: return .granted
            }
        }

        /// The state in words, for the text table.
        public var words: String {
            switch self {
            case .revoked: "revoked"
            case .noViewsLeft: "no views left"
            case .viewed: "viewed"
            case .queued: "queued here"
            case .mailbox: "in the cloud's mailbox"
            case .delivered: "delivered"
            case .granted: "granted"
            }
        }
    }

    /// The image sent.
    public var image: String
    /// The peer it was sent to.
    public var recipient: String
    /// Views granted (0 after a revoke).
    public var views: UInt64
    /// Views left as the cloud holds them; nil when the cloud could not be asked.
    public var remaining: UInt64?
    /// What became of it.
    public var state: State
    /// How it travelled, or why it waits in the outbox.
    public var detail: String?
    /// When it was delivered, left in the mailbox or queued (milliseconds since 1970).
    public var at: UInt64?

    /// The row as JSON, for `--json`.
    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "image": .string(image), "to": .string(recipient), "views": .number(Double(views)),
            "remaining": remaining.map { .number(Double($0)) } ?? .null, "state": .string(state.rawValue),
        ]
        if let detail { fields["detail"] = .string(detail) }
        if let at { fields["atMillis"] = .number(Double(at)) }
        return .object(fields)
    }
}

extension PeerSharing {
    /// Every image this peer sent, with its state: the grants this peer made as the cloud holds them
    /// (checked against this peer's own key), joined with the outbox and the record of deliveries.
    public func sends() async throws -> [SentImage] {
        let me = identity.name
        var grants: [(ViewGrant, UInt64)] = []
        for document in try await cloud.documents(in: ViewGrant.collection, filter: .object(["owner": .string(me)])) {
            guard let grant = try? ViewGrant(document: document.body),
                (try? grant.verify(signedBy: identity.signing.publicKey)) != nil
            else { continue }
            grants.append((grant, document.body["remaining"]?.wholeNumberValue ?? grant.views))
        }
        return try Self.sends(in: identity.home, grants: grants)
    }

    /// The sends `home` knows of without the cloud: the outbox and the record of deliveries (views
    /// left unknown).
    public static func sends(in home: PeerHome) throws -> [SentImage] {
        try sends(in: home, grants: nil)
    }

    /// Joins `grants` (with the views left; nil: the cloud was not asked) with `home`'s outbox and
    /// record of deliveries.
    private static func sends(in home: PeerHome, grants: [(ViewGrant, UInt64)]?) throws -> [SentImage] {
        let queued = try Outbox(file: home.outboxFile).entries()
        let records = try SentLedger(file: home.sentFile).records()
        var sends: [SentImage] = []
        var seen: Set<String> = []
        func add(_ grant: ViewGrant, remaining: UInt64?) {
            guard seen.insert(grant.id).inserted else { return }
            let waiting = queued.first { $0.grant.id == grant.id && $0.grant.sequence == grant.sequence }
            let record = records[grant.id].flatMap { $0.sequence == grant.sequence ? $0 : nil }
            let state = SentImage.State.of(
                views: grant.views, remaining: remaining, queued: waiting != nil, outcome: record?.outcome)
            sends.append(
                SentImage(
                    image: grant.image, recipient: grant.recipient, views: grant.views, remaining: remaining,
                    state: state,
                    detail: waiting?.lastError ?? record?.path,
                    at: waiting?.queuedAt ?? record?.at))
        }
        for (grant, remaining) in grants ?? [] { add(grant, remaining: remaining) }
        // Queued sends the cloud does not hold (it was not asked, or the grant did not reach it).
        for entry in queued { add(entry.grant, remaining: nil) }
        return sends.sorted { ($0.recipient, $0.image) < ($1.recipient, $1.image) }
    }
}
