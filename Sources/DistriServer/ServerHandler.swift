import DistriClient
import DistriCore
import DistriWire
import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// The node's end of a client connection: decodes requests, hands them to the node's dispatcher, and
/// writes replies. Replies are flushed once per read burst or event-loop turn (``FlushCoalescer``).
package final class ServerHandler: ChannelInboundHandler, CoalescingFlushes {
    package typealias InboundIn = WireMessage
    package typealias OutboundOut = WireMessage

    private let dispatcher: RequestDispatcher
    private let logger: Logger
    package private(set) var context: ChannelHandlerContext?
    package var flushes = FlushCoalescer()
    /// Who is calling: unchecked on plain TCP; over TLS anonymous until the handshake shows a node
    /// certificate.
    private var caller: Caller
    /// True once the TLS handshake completed: a TLS error after it is not a failed handshake.
    private var handshakeCompleted = false

    /// The node's limits; here, the sizes of a request's parameters.
    private let resources: ResourceLimits
    /// The node's relay links, which `RelayAttach` adds this connection to.
    private let relay: (any RelayAttaching)?
    /// True once this connection is a peer's relay link: the node sends requests over it too, and the
    /// peer's replies go on to the link's ``ClientHandler``, next in the pipeline. On the peer's end
    /// of a relay link (`passesReplies`), the node's replies to the peer's calls pass on the same way.
    private var relayLinked = false

    package init(
        dispatcher: RequestDispatcher, logger: Logger, tls: Bool = false, resources: ResourceLimits = .init(),
        relay: (any RelayAttaching)? = nil, passesReplies: Bool = false
    ) {
        self.relayLinked = passesReplies
        self.dispatcher = dispatcher
        self.logger = logger
        self.resources = resources
        self.relay = relay
        self.caller = tls ? .anonymous : .unchecked
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            handshakeCompleted = true
            let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate()
            caller = Caller(tlsPeerCertificate: certificate.flatMap { try? $0.toDERBytes() })
        }
        context.fireUserInboundEventTriggered(event)
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        flushes.readStarted()
        let message = unwrapInboundIn(data)
        guard message.kind == .request else {
            if relayLinked {
                context.fireChannelRead(data)
                return
            }
            send(
                .failure(
                    WireErrorReply(
                        code: .malformed, message: "a node accepts only requests, got \(message.kind)")),
                requestID: message.requestID)
            return
        }
        let responder = Responder(
            handler: self, eventLoop: context.eventLoop, requestID: message.requestID)
        let request: WireRequest
        do {
            request = try WireRequest.decode(message.payload)
        } catch {
            dispatcher.recordMalformed()
            responder.reply(.failure(WireErrorReply(code: .malformed, message: error.description)))
            return
        }
        do throws(ServiceError) {
            try resources.checkParams(request.params, service: request.service)
        } catch {
            responder.reply(.failure(WireErrorReply(code: error.code, message: error.message)))
            return
        }
        if request.service == RelayAttachService.name, let relay {
            attachRelay(request, relay: relay, context: context, responder: responder)
            return
        }
        dispatcher.dispatch(request, responder: responder, caller: caller)
    }

    /// `RelayAttach`: once the peer's proof checks, adds a ``ClientHandler`` after this handler (the
    /// node's calls to the peer go out through it, the peer's replies come back to it) and records
    /// the link.
    private func attachRelay(
        _ request: WireRequest, relay: any RelayAttaching, context: ChannelHandlerContext, responder: Responder
    ) {
        let loop = context.eventLoop
        let channel = context.channel
        let bound = NIOLoopBound(self, eventLoop: loop)
        relay.verifyAttach(request, on: loop).hop(to: loop).flatMapThrowing { peer in
            let handler = bound.value
            guard !handler.relayLinked else {
                throw ServiceError(.conflict, "this connection is a relay link already")
            }
            let client = ClientHandler(node: NodeAddress(host: peer, port: 0))
            try channel.pipeline.syncOperations.addHandler(client)
            handler.relayLinked = true
            try relay.attach(peer, channel: channel, handler: NIOLoopBound(client, eventLoop: loop))
            return peer
        }.whenComplete { result in
            switch result {
            case .success:
                responder.reply(.success(ByteBuffer(string: "{\"attached\":\"\(relay.nodeID)\"}")))
            case .failure(let error as ServiceError):
                responder.reply(.failure(WireErrorReply(code: error.code, message: error.message)))
            case .failure(let error):
                responder.reply(.failure(WireErrorReply(code: .internal, message: "\(error)")))
            }
        }
    }

    package func channelReadComplete(context: ChannelHandlerContext) {
        if flushes.readCompleted() { context.flush() }
        context.fireChannelReadComplete()
    }

    package func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let wire = error as? WireError {
            if case .nodeBufferFull = wire {
                logger.notice(
                    "closing connection: the node's buffer for incomplete messages and queued replies is full",
                    metadata: ["remote": "\(context.remoteAddress?.description ?? "?")"])
            } else {
                dispatcher.recordMalformed()
                logger.info(
                    "closing connection after protocol error",
                    metadata: ["remote": "\(context.remoteAddress?.description ?? "?")", "error": "\(wire)"])
            }
            let reply = WireErrorReply(code: wire.code, message: wire.description)
            let message = WireMessage(
                kind: .error, requestID: wire.requestID ?? 0,
                payload: reply.encode(allocator: context.channel.allocator))
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(message)).whenComplete { _ in
                channel.close(promise: nil)
            }
        } else if error is NIOSSLError || error is BoringSSLError {
            if !handshakeCompleted { dispatcher.recordFailedHandshake() }
            logger.notice(
                "closing connection: TLS failed",
                metadata: ["remote": "\(context.remoteAddress?.description ?? "?")", "error": "\(error)"])
            context.close(promise: nil)
        } else {
            logger.debug("connection error", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    /// Writes a reply; called on the event loop.
    package func send(_ result: Result<ByteBuffer, WireErrorReply>, requestID: UInt64) {
        guard let context else { return }  // the connection is gone; nobody is waiting
        let message: WireMessage
        switch result {
        case .success(let payload):
            message = WireMessage(kind: .response, requestID: requestID, payload: payload)
        case .failure(let reply):
            message = WireMessage(
                kind: .error, requestID: requestID,
                payload: reply.encode(allocator: context.channel.allocator))
        }
        context.write(wrapOutboundOut(message), promise: nil)
        flushSoon(context)
    }
}
