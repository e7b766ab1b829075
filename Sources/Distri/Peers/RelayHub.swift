import DistriCore
import DistriIdentity
import DistriWire
import NIOConcurrencyHelpers
import NIOCore

/// A node's relay links: peer daemons that cannot be dialled (behind NAT) keep one outbound
/// connection to a node, attached with `RelayAttach` and a ``DistriIdentity/PeerProof`` of purpose
/// `relay`; over it the node sends the daemon requests (`Deliver` chunks other peers relay through
/// `RelayDeliver`), and the daemon answers. One link per peer: a newer attachment replaces an older
/// one (its connection is closed). Links end when their connection closes.
///
/// The hub holds the links, the per-peer quotas (``DistriCore/RelayQuotas``) and the counters; the
/// services that use it are in ``RelayServices``.
final class RelayHub: RelayAttaching {
    static let attachService = RelayAttachService.name
    /// Most links one node holds.
    static let maxLinks = 10_000

    struct Link: Sendable {
        var id: UInt64
        var channel: Channel
        var handler: NIOLoopBound<ClientHandler>
    }

    private struct State {
        var links: [String: Link] = [:]
        var nextLinkID: UInt64 = 1
        var quotas: RelayQuotas
        var counters = RelayCounters()
        var checksInFlight = 0
    }

    let nodeID: String
    /// The signing key of a registered peer, from the node's replica (nil: not registered).
    private let lookupKey: @Sendable (String, EventLoop) -> EventLoopFuture<SigningPublicKey?>
    private let checkTicket: @Sendable (DeliveryTicket, EventLoop) -> EventLoopFuture<Void>
    private let state: NIOLockedValueBox<State>

    /// `signingKey`: a registered peer's key (nil: none); `inForce`: fails with `unauthorized` unless a
    /// ticket's grant is in force (both read the node's replica).
    init(
        nodeID: String, quotas: RelayQuotas.Limits,
        signingKey: @escaping @Sendable (String, EventLoop) -> EventLoopFuture<SigningPublicKey?>,
        inForce: @escaping @Sendable (DeliveryTicket, EventLoop) -> EventLoopFuture<Void>
    ) {
        self.nodeID = nodeID
        self.checkTicket = inForce
        self.lookupKey = signingKey
        self.state = NIOLockedValueBox(State(quotas: RelayQuotas(limits: quotas)))
    }

    /// The counters, for the node's stats.
    var counters: RelayCounters {
        state.withLockedValue { state in
            var counters = state.counters
            counters.attachedPeers = state.links.count
            return counters
        }
    }

    /// Fails with `unauthorized` unless `ticket`'s grant is in force (signed by its owner, views left,
    /// the same image).
    func checkInForce(_ ticket: DeliveryTicket, on loop: EventLoop) -> EventLoopFuture<Void> {
        checkTicket(ticket, loop)
    }

    /// Whether `peer` holds a link to this node.
    func holds(_ peer: String) -> Bool { state.withLockedValue { $0.links[peer] != nil } }

    // MARK: Attaching

    /// Checks an attach request's proof; succeeds with the peer's name.
    func verifyAttach(_ request: WireRequest, on loop: EventLoop) -> EventLoopFuture<String> {
        let proof: PeerProof
        do {
            guard request.data.readableBytes <= 16 << 10,
                let object = (try? JSONParser.parse(Array(buffer: request.data)))?.objectValue,
                let document = object["proof"]?.objectValue
            else { throw ServiceError.badParams("RelayAttach needs {\"proof\": a signed peer proof}") }
            do {
                proof = try PeerProof(document: document)
            } catch {
                throw ServiceError.badParams("\(error)")
            }
        } catch {
            return loop.makeFailedFuture(error)
        }
        return lookupKey(proof.name, loop).flatMapThrowing { key in
            guard let key else { throw ServiceError(.unauthorized, "'\(proof.name)' is not a registered peer") }
            do {
                try proof.verify(purpose: .relay, signedBy: key, now: DatabaseReplica.wallMillis())
            } catch {
                throw ServiceError(.unauthorized, "\(error)")
            }
            return proof.name
        }
    }

    /// Records `peer`'s link (its connection and the handler that sends it requests), replacing and
    /// closing an older one; the link is dropped when the connection closes. Throws when the node
    /// holds ``maxLinks`` already.
    func attach(_ peer: String, channel: Channel, handler: NIOLoopBound<ClientHandler>) throws(ServiceError) {
        let added = state.withLockedValue { state -> (id: UInt64, replaced: Channel?)? in
            guard state.links[peer] != nil || state.links.count < Self.maxLinks else { return nil }
            let id = state.nextLinkID
            state.nextLinkID += 1
            let replaced = state.links[peer]?.channel
            state.links[peer] = Link(id: id, channel: channel, handler: handler)
            state.counters.attachments += 1
            return (id, replaced)
        }
        guard let (id, replaced) = added else {
            throw ServiceError(.busy, "the node holds \(Self.maxLinks) relay links already")
        }
        if let replaced, replaced !== channel { replaced.close(promise: nil) }
        channel.closeFuture.whenComplete { [weak self] _ in
            self?.state.withLockedValue { state in
                if state.links[peer]?.id == id { state.links[peer] = nil }
            }
        }
    }

    // MARK: Relaying

    /// Sends `request` to `peer` over its link; nil when it holds none here.
    func call(_ peer: String, _ request: WireRequest, timeout: TimeAmount) -> EventLoopFuture<ByteBuffer>? {
        guard let link = state.withLockedValue({ $0.links[peer] }) else { return nil }
        let loop = link.channel.eventLoop
        return loop.flatSubmit {
            let promise = loop.makePromise(of: ByteBuffer.self)
            link.handler.value.send(request, timeout: timeout, promise: promise)
            return promise.futureResult
        }
    }

    /// Admits a chunk under the per-peer quotas (counting a refusal).
    func admit(sender: String, recipient: String, bytes: Int) throws(ServiceError) {
        let now = DatabaseReplica.wallMillis()
        let refusal = state.withLockedValue { state -> RelayQuotas.Refusal? in
            do throws(RelayQuotas.Refusal) {
                try state.quotas.admit(sender: sender, recipient: recipient, bytes: bytes, now: now)
                return nil
            } catch {
                state.counters.refusedOverQuota += 1
                return error
            }
        }
        if let refusal { throw ServiceError(.busy, "relay quota: \(refusal)") }
    }

    /// Ends an admitted chunk; `forwarded` counts it as relayed.
    func finish(sender: String, recipient: String, forwarded bytes: Int?) {
        state.withLockedValue { state in
            state.quotas.finish(sender: sender, recipient: recipient)
            if let bytes {
                state.counters.relayedChunks += 1
                state.counters.relayedBytes += UInt64(bytes)
            }
        }
    }

    // MARK: Reachability checks

    /// Takes one of `limit` slots for a reachability check (false: all busy); counts the check.
    func beginCheck(limit: Int) -> Bool {
        state.withLockedValue { state in
            guard state.checksInFlight < limit else { return false }
            state.checksInFlight += 1
            state.counters.reachabilityChecks += 1
            return true
        }
    }

    func endCheck() {
        state.withLockedValue { $0.checksInFlight -= 1 }
    }
}
