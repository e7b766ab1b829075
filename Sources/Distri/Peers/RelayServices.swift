import DistriCore
import DistriIdentity
import DistriWire
import NIOCore

/// The cloud's services for peers that cannot dial each other:
///
/// - `CheckReachable` (body `{"name": N, "addresses": [host:port, ...]}`, at most
///   ``maxCheckedAddresses``): the node dials each address from outside, as a STUN-like check, and
///   calls the peer's `Ping`, which must answer the peer's name. Answers
///   `{"reachable": [...], "unreachable": {address: reason}}`. At most `maxChecksInFlight` checks
///   run at once on a node; each dial gives up after 2 s and each answer after 3 s.
/// - `RelayAttach` (body `{"proof": PeerProof}`, purpose `relay`): turns the caller's connection into
///   the peer's relay link (handled by the connection itself, see `RelayHub`).
/// - `RelayLocate` (parameter `to=NAME`): the address of the node holding NAME's link (this one,
///   else the first alive node that says it holds it); `notFound` when no node does.
/// - `RelayDeliver` (parameters `to=NAME`, `offset=O`, `total=T`; body a `Deliver` payload): forwards
///   one chunk to NAME's daemon as its `Deliver` call and answers what the daemon answers. The node
///   checks the delivery's ticket is addressed to NAME and names the grant in force (signed by its
///   owner's registered key, views left, the same image digest), and counts the chunk against the
///   owner's and NAME's quotas (`RelayQuotas`). What it forwards is the sealed image and
///   the ticket, which holds no key; it keeps nothing. `notFound` when NAME holds no link here.
/// - `RelayHolds` (node-only, body NAME): `yes` or `no`.
public enum RelayServices {
    /// Dials a peer's advertised addresses and says which answered.
    public static let checkReachable = "CheckReachable"
    /// Attaches a peer's relay link to this node.
    public static let relayAttach = RelayHub.attachService
    /// Names the node that holds a peer's relay link.
    public static let relayLocate = "RelayLocate"
    /// Forwards a delivery chunk over a peer's relay link.
    public static let relayDeliver = "RelayDeliver"
    static let relayHolds = "RelayHolds"
    /// The service a peer's daemon answers with its name.
    public static let pingService = "Ping"
    /// The service a peer's daemon takes delivery chunks with.
    public static let deliverService = "Deliver"
    /// Addresses one reachability check dials.
    public static let maxCheckedAddresses = 4
    /// Reachability checks one node runs at once.
    static let maxChecksInFlight = 16
    /// The longest a relayed chunk waits for the recipient's answer.
    static let maxForwardTimeout = TimeAmount.seconds(30)

    /// What the relay needs of its node's cluster: the client to other nodes and their addresses
    /// (alive, not this node), and this node's address; nil before the node joined.
    typealias Cluster = @Sendable () -> (peers: Client, others: [NodeAddress], myself: NodeAddress)?

    static func register(on registry: ServiceRegistry, hub: RelayHub, cluster: @escaping Cluster) {
        registry.register(
            RegisteredService(
                name: checkReachable,
                execution: .async { request in
                    guard hub.beginCheck(limit: maxChecksInFlight) else {
                        throw ServiceError(.busy, "\(maxChecksInFlight) reachability checks are running; try again")
                    }
                    defer { hub.endCheck() }
                    return ByteBuffer(bytes: try await ReachabilityCheck(request: request).run())
                },
                runsWhereAsked: true))
        registry.register(
            RegisteredService(
                name: relayHolds,
                execution: .inline { request in
                    ByteBuffer(string: hub.holds(String(buffer: request.data)) ? "yes" : "no")
                },
                bypassesAdmission: true, nodesOnly: true))
        registry.register(
            RegisteredService(
                name: relayLocate,
                execution: .future { request, loop in
                    do {
                        let peer = try recipient(of: request)
                        return locate(peer, hub: hub, cluster: cluster, on: loop)
                    } catch {
                        return loop.makeFailedFuture(error)
                    }
                },
                bypassesAdmission: true, runsWhereAsked: true))
        registry.register(
            RegisteredService(
                name: relayDeliver,
                execution: .future { request, loop in
                    forward(request, hub: hub, on: loop)
                },
                runsWhereAsked: true, remembersResult: false))
    }

    /// The `to=NAME` parameter.
    static func recipient(of request: ServiceRequest) throws -> String {
        guard let to = request.params.first(where: { $0.hasPrefix("to=") })?.dropFirst(3) else {
            throw ServiceError.badParams("\(request.service) needs to=PEER")
        }
        do {
            try PeerName.validate(String(to), what: "recipient")
        } catch {
            throw ServiceError.badParams("\(error)")
        }
        return String(to)
    }

    private static func locate(_ peer: String, hub: RelayHub, cluster: Cluster, on loop: EventLoop)
        -> EventLoopFuture<ByteBuffer>
    {
        guard let cluster = cluster() else {
            return loop.makeFailedFuture(ServiceError(.unavailable, "the node has not joined its cloud yet"))
        }
        if hub.holds(peer) { return loop.makeSucceededFuture(ByteBuffer(string: cluster.myself.description)) }
        let asks = cluster.others.map { node in
            cluster.peers.call(
                ByteBuffer(string: peer), service: relayHolds, node: node, timeout: .seconds(2), routing: .local
            ).map { String(buffer: $0) == "yes" ? node : nil }.recover { _ in nil }
        }
        return EventLoopFuture.whenAllComplete(asks, on: loop).flatMapThrowing { results in
            for case .success(let node?) in results { return ByteBuffer(string: node.description) }
            throw ServiceError.notFound("'\(peer)' is not connected to the cloud (no relay link on any node)")
        }
    }

    private static func forward(_ request: ServiceRequest, hub: RelayHub, on loop: EventLoop)
        -> EventLoopFuture<ByteBuffer>
    {
        let grant: DeliveryTicket
        let bytes: Int
        let peer: String
        do {
            peer = try recipient(of: request)
            do {
                // The ticket only: the chunk travels on as the slice of the request it arrived in.
                let split = try DeliverPayload.split(request.data)
                (grant, bytes) = (split.ticket, split.chunk.readableBytes)
            } catch {
                throw ServiceError.badParams("\(error)")
            }
            guard grant.recipient == peer else {
                throw ServiceError.badParams("the grant is for '\(grant.recipient)', not '\(peer)'")
            }
        } catch {
            return loop.makeFailedFuture(error)
        }
        return hub.checkInForce(grant, on: loop).flatMap { () -> EventLoopFuture<ByteBuffer> in
            do {
                try hub.admit(sender: grant.owner, recipient: peer, bytes: bytes)
            } catch {
                return loop.makeFailedFuture(error)
            }
            let remaining = request.deadline.map { $0 - .now() } ?? maxForwardTimeout
            let timeout = max(.milliseconds(1), min(remaining, maxForwardTimeout))
            let deliver = WireRequest(
                service: deliverService, params: request.params.filter { !$0.hasPrefix("to=") },
                deadlineMillis: UInt32(clamping: timeout.nanoseconds / 1_000_000), routing: .local,
                taskID: request.taskID, data: request.data)
            guard let call = hub.call(peer, deliver, timeout: timeout) else {
                hub.finish(sender: grant.owner, recipient: peer, forwarded: nil)
                return loop.makeFailedFuture(
                    ServiceError.notFound("'\(peer)' holds no relay link to this node; locate it again"))
            }
            return call.hop(to: loop).map { reply in
                hub.finish(sender: grant.owner, recipient: peer, forwarded: bytes)
                return reply
            }.flatMapErrorThrowing { error in
                hub.finish(sender: grant.owner, recipient: peer, forwarded: nil)
                // The recipient's own refusal passes through as it is; a lost link says so.
                if let error = error as? ClientError, let code = error.remoteCode {
                    throw ServiceError(code, error.message)
                }
                throw ServiceError(.unavailable, "the relay link to '\(peer)' failed: \(error)")
            }
        }
    }
}

extension DeliverPayload {
    /// The ticket and the chunk of a `Deliver` body, without copying the chunk (a slice of `body`),
    /// with the checks of `DeliverPayload(decoding:)`: a 4-byte length, a ticket of at most
    /// `maxGrantBytes` that is a valid ticket's JSON.
    public static func split(_ body: ByteBuffer) throws(IdentityError) -> (ticket: DeliveryTicket, chunk: ByteBuffer) {
        var body = body
        guard let count = body.readInteger(as: UInt32.self) else {
            throw .malformed("a delivery starts with a 4-byte length")
        }
        guard count <= maxGrantBytes, let text = body.readBytes(length: Int(count)) else {
            throw .malformed("a delivery's ticket is longer than the delivery or than \(maxGrantBytes) bytes")
        }
        guard let object = (try? JSONParser.parse(text))?.objectValue else {
            throw .malformed("a delivery's ticket is not a JSON object")
        }
        return (try DeliveryTicket(document: object), body)
    }
}
