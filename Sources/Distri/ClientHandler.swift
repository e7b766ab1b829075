import DistriWire
import NIOCore

/// The client's end of one connection: numbers outgoing requests, matches replies to them by id, and
/// fails every waiting call if the connection breaks. Requests issued while a read burst is being
/// processed are flushed once at its end. One timer per connection, armed at the earliest deadline
/// of a waiting call, times calls out: a timer per call cost more than the rest of the call's
/// bookkeeping (scheduling it and cancelling it out of the loop's heap).
final class ClientHandler: ChannelInboundHandler, CoalescingFlushes {
    typealias InboundIn = WireMessage
    typealias OutboundOut = WireMessage

    private struct Pending {
        var promise: EventLoopPromise<ByteBuffer>
        /// When the call times out, and the timeout it was given (for the error); nil: never.
        var timeout: (deadline: NIODeadline, after: TimeAmount)?
    }

    let node: NodeAddress
    private(set) var context: ChannelHandlerContext?
    private var pending: [UInt64: Pending] = [:]
    private var nextID: UInt64 = 1
    var flushes = FlushCoalescer()
    private var closedError: ClientError?
    /// The timer, armed at the earliest deadline of a waiting call.
    private var sweep: (at: NIODeadline, task: Scheduled<Void>)?

    init(node: NodeAddress) {
        self.node = node
    }

    /// False once the connection failed or closed.
    var isUsable: Bool { context != nil && closedError == nil }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// Sends a request; must be called on the event loop.
    func send(_ request: WireRequest, timeout: TimeAmount?, promise: EventLoopPromise<ByteBuffer>) {
        guard let context, closedError == nil else {
            promise.fail(
                closedError ?? ClientError(.connectionLost, node: node, message: "connection is closed"))
            return
        }
        let id = nextID
        nextID &+= 1
        var entry = Pending(promise: promise, timeout: nil)
        if let timeout {
            let deadline = NIODeadline.now() + timeout
            entry.timeout = (deadline, timeout)
            armSweep(at: deadline, context: context)
        }
        pending[id] = entry
        let payload = request.encode(allocator: context.channel.allocator)
        context.write(
            wrapOutboundOut(WireMessage(kind: .request, requestID: id, payload: payload)), promise: nil)
        flushSoon(context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        flushes.readStarted()
        let message = unwrapInboundIn(data)
        switch message.kind {
        case .response:
            complete(message.requestID, .success(message.payload))
        case .error:
            let error: ClientError
            do {
                let reply = try WireErrorReply.decode(message.payload)
                error = ClientError(.remote, node: node, remoteCode: reply.code, message: reply.message)
            } catch {
                failAll(ClientError(.protocolViolation, node: node, message: "\(error)"), context: context)
                return
            }
            if pending[message.requestID] == nil {
                // An error for no call of ours (a protocol error): it concerns the whole connection.
                failAll(error, context: context)
            } else {
                complete(message.requestID, .failure(error))
            }
        default:
            failAll(
                ClientError(.protocolViolation, node: node, message: "unexpected \(message.kind) frame"),
                context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if flushes.readCompleted() { context.flush() }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(ClientError(.connectionLost, node: node, message: "connection closed"), context: nil)
        self.context = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        let clientError =
            (error as? WireError).map {
                ClientError(.protocolViolation, node: node, message: $0.description)
            }
            ?? ClientError(.connectionLost, node: node, message: "\(error)")
        failAll(clientError, context: context)
    }

    private func complete(_ id: UInt64, _ result: Result<ByteBuffer, Error>) {
        pending.removeValue(forKey: id)?.promise.completeWith(result)
    }

    /// Arms the timer at `deadline` unless it is armed as early already.
    private func armSweep(at deadline: NIODeadline, context: ChannelHandlerContext) {
        if let sweep, sweep.at <= deadline { return }
        sweep?.task.cancel()
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        sweep = (deadline, context.eventLoop.scheduleTask(deadline: deadline) { loopBound.value.timeOut() })
    }

    /// Fails the calls whose deadline passed and arms the timer at the next deadline.
    private func timeOut() {
        sweep = nil
        let now = NIODeadline.now()
        var expired: [(id: UInt64, timeout: TimeAmount)] = []
        var next: NIODeadline?
        for (id, entry) in pending {
            guard let (deadline, after) = entry.timeout else { continue }
            if deadline <= now {
                expired.append((id, after))
            } else if next.map({ deadline < $0 }) ?? true {
                next = deadline
            }
        }
        for (id, timeout) in expired {
            let message = "no reply within \(timeout.nanoseconds / 1_000_000) ms"
            complete(id, .failure(ClientError(.deadlineExceeded, node: node, message: message)))
        }
        if let next, let context { armSweep(at: next, context: context) }
    }

    private func failAll(_ error: ClientError, context: ChannelHandlerContext?) {
        if closedError == nil { closedError = error }
        let entries = pending
        pending = [:]
        sweep?.task.cancel()
        sweep = nil
        for entry in entries.values { entry.promise.fail(error) }
        context?.close(promise: nil)
    }
}
