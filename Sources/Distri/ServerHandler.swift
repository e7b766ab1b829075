import DistriWire
import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// The node's end of a client connection: decodes requests, hands them to the node's dispatcher, and
/// writes replies. Replies are flushed once per read burst or event-loop turn (``FlushCoalescer``).
final class ServerHandler: ChannelInboundHandler, CoalescingFlushes {
    typealias InboundIn = WireMessage
    typealias OutboundOut = WireMessage

    private let dispatcher: RequestDispatcher
    private let logger: Logger
    private(set) var context: ChannelHandlerContext?
    var flushes = FlushCoalescer()
    /// Who is calling: unchecked on plain TCP; over TLS anonymous until the handshake shows a node
    /// certificate.
    private var caller: Caller
    /// True once the TLS handshake completed: a TLS error after it is not a failed handshake.
    private var handshakeCompleted = false

    /// The node's limits; here, the sizes of a request's parameters.
    private let resources: ResourceLimits

    init(dispatcher: RequestDispatcher, logger: Logger, tls: Bool = false, resources: ResourceLimits = .init()) {
        self.dispatcher = dispatcher
        self.logger = logger
        self.resources = resources
        self.caller = tls ? .anonymous : .unchecked
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            handshakeCompleted = true
            let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate()
            caller = Caller(tlsPeerCertificate: certificate.flatMap { try? $0.toDERBytes() })
        }
        context.fireUserInboundEventTriggered(event)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        flushes.readStarted()
        let message = unwrapInboundIn(data)
        guard message.kind == .request else {
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
        dispatcher.dispatch(request, responder: responder, caller: caller)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if flushes.readCompleted() { context.flush() }
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
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
    func send(_ result: Result<ByteBuffer, WireErrorReply>, requestID: UInt64) {
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
