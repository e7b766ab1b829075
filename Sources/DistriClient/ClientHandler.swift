import DistriWire
import NIOCore

/// The client's end of one connection: numbers outgoing requests, matches replies to them by id, and
/// fails every waiting call if the connection breaks. Requests issued while a read burst is being
/// processed are flushed once at its end. One timer per connection, armed at the earliest deadline
/// of a waiting call, times calls out: a timer per call cost more than the rest of the call's
/// bookkeeping (scheduling it and cancelling it out of the loop's heap).
///
/// The same timer checks attempt timeouts: a call sent with one is failed with
/// ``ClientError/Kind/unresponsive`` (so the client can move it) only when the connection received
/// nothing at all since the call was sent *and* a liveness probe
/// (`Members`, answered at once outside the node's capacity limit) sent after that is not answered
/// within the probe timeout. A reply to any other call, pipelined on
/// the same connection, or the probe's answer, proves the node alive, and the call waits on: a slow
/// service is not taken for a silent node.
package final class ClientHandler: ChannelInboundHandler, CoalescingFlushes {
    package typealias InboundIn = WireMessage
    package typealias OutboundOut = WireMessage

    private struct Pending {
        var promise: EventLoopPromise<ByteBuffer>
        /// When the call times out, and the timeout it was given (for the error); nil: never.
        var timeout: (deadline: NIODeadline, after: TimeAmount)?
        /// For a call that may be moved: when it was sent, when to check its node is alive next, and
        /// the attempt timeout to wait again after a check found the node alive.
        var attempt: (sentAt: NIODeadline, checkAt: NIODeadline, after: TimeAmount, probeAfter: TimeAmount)?
    }

    package let node: NodeAddress
    package private(set) var context: ChannelHandlerContext?
    private var pending: [UInt64: Pending] = [:]
    private var nextID: UInt64 = 1
    package var flushes = FlushCoalescer()
    private var closedError: ClientError?
    /// The timer, armed at the earliest deadline of a waiting call.
    private var sweep: (at: NIODeadline, task: Scheduled<Void>)?
    /// When the last message arrived on this connection (set once per read burst).
    private var lastReadAt: NIODeadline = .distantPast
    /// The liveness probe in flight: when it was sent and by when it must be answered.
    private var probe: (sentAt: NIODeadline, answerBy: NIODeadline)?
    /// Calls given up on (timed out, moved) whose late replies are dropped without alarm. Bounded.
    private var abandoned: Set<UInt64> = []
    /// Takes the round trip of each answered liveness probe, in nanoseconds.
    private let probeObserved: (UInt64) -> Void

    package init(node: NodeAddress, probeObserved: @escaping (UInt64) -> Void = { _ in }) {
        self.node = node
        self.probeObserved = probeObserved
    }

    /// False once the connection failed or closed.
    package var isUsable: Bool { context != nil && closedError == nil }

    package func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// Sends a request; must be called on the event loop.
    /// With `attempt` (the attempt timeout and the probe timeout) the call fails with
    /// ``ClientError/Kind/unresponsive`` when its node goes silent, as the type's comment says.
    package func send(
        _ request: WireRequest, timeout: TimeAmount?, attempt: (after: TimeAmount, probe: TimeAmount)? = nil,
        promise: EventLoopPromise<ByteBuffer>
    ) {
        guard let context, closedError == nil else {
            promise.fail(
                closedError ?? ClientError(.connectionLost, node: node, message: "connection is closed"))
            return
        }
        let id = nextID
        nextID &+= 1
        var entry = Pending(promise: promise, timeout: nil, attempt: nil)
        if timeout != nil || attempt != nil {
            let now = NIODeadline.now()
            if let timeout {
                entry.timeout = (now + timeout, timeout)
                armSweep(at: now + timeout, context: context)
            }
            if let attempt {
                entry.attempt = (now, now + attempt.after, attempt.after, attempt.probe)
                armSweep(at: now + attempt.after, context: context)
            }
        }
        pending[id] = entry
        let payload = request.encode(allocator: context.channel.allocator)
        context.write(
            wrapOutboundOut(WireMessage(kind: .request, requestID: id, payload: payload)), promise: nil)
        flushSoon(context)
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
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
            if pending[message.requestID] == nil, abandoned.remove(message.requestID) == nil {
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

    package func channelReadComplete(context: ChannelHandlerContext) {
        // Once per read burst: proof of life for the attempt timeouts.
        lastReadAt = .now()
        if flushes.readCompleted() { context.flush() }
        context.fireChannelReadComplete()
    }

    package func channelInactive(context: ChannelHandlerContext) {
        failAll(ClientError(.connectionLost, node: node, message: "connection closed"), context: nil)
        self.context = nil
        context.fireChannelInactive()
    }

    package func errorCaught(context: ChannelHandlerContext, error: Error) {
        let clientError =
            (error as? WireError).map {
                ClientError(.protocolViolation, node: node, message: $0.description)
            }
            ?? ClientError(.connectionLost, node: node, message: "\(error)")
        failAll(clientError, context: context)
    }

    private func complete(_ id: UInt64, _ result: Result<ByteBuffer, Error>) {
        if let entry = pending.removeValue(forKey: id) {
            entry.promise.completeWith(result)
        } else {
            abandoned.remove(id)
        }
    }

    /// Fails a call the client gives up on, remembering its id so a late reply is dropped quietly.
    private func abandon(_ id: UInt64, _ error: ClientError) {
        guard let entry = pending.removeValue(forKey: id) else { return }
        if abandoned.count >= 4096 { abandoned.removeAll(keepingCapacity: true) }
        abandoned.insert(id)
        entry.promise.fail(error)
    }

    /// Sends the liveness probe: `Members`, answered at once by the node itself outside its capacity
    /// limit (a probe queued behind busy work would take a loaded node for a silent one).
    private func sendProbe(now: NIODeadline, timeout: TimeAmount, context: ChannelHandlerContext) {
        probe = (now, now + timeout)
        let promise = context.eventLoop.makePromise(of: ByteBuffer.self)
        // The future completes on this channel's loop, where the callback belongs.
        let observed = NIOLoopBound(probeObserved, eventLoop: context.eventLoop)
        promise.futureResult.whenComplete { result in
            // Any answer, an error reply too, is a sign of life; a timeout is not a sample.
            if case .failure(let error as ClientError) = result, error.kind != .remote { return }
            observed.value(UInt64(max(0, (NIODeadline.now() - now).nanoseconds)))
        }
        let request = WireRequest(
            service: BuiltinServices.members,
            deadlineMillis: UInt32(clamping: max(1, timeout.nanoseconds / 1_000_000) * 4),
            routing: .local, data: ByteBuffer())
        // The probe itself waits a few probe timeouts, so a late answer still counts as a sample.
        send(request, timeout: timeout * 4, promise: promise)
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
        var silent: [(id: UInt64, after: TimeAmount)] = []
        var next: NIODeadline?
        func wake(at deadline: NIODeadline) {
            if next.map({ deadline < $0 }) ?? true { next = deadline }
        }
        var probeNeeded: TimeAmount?
        for (id, entry) in pending {
            if let (deadline, after) = entry.timeout {
                if deadline <= now {
                    expired.append((id, after))
                    continue
                }
                wake(at: deadline)
            }
            guard var attempt = entry.attempt else { continue }
            if attempt.checkAt > now {
                wake(at: attempt.checkAt)
                continue
            }
            if lastReadAt >= attempt.sentAt {
                // Something arrived since the call was sent: the node is alive; wait another round.
                attempt.checkAt = now + attempt.after
            } else if let probe, probe.sentAt >= attempt.sentAt {
                if probe.answerBy <= now {
                    silent.append((id, attempt.after + attempt.probeAfter))
                    continue
                }
                attempt.checkAt = probe.answerBy
            } else {
                // Nothing since the call was sent: ask the node whether it is there.
                probeNeeded = max(probeNeeded ?? attempt.probeAfter, attempt.probeAfter)
                attempt.checkAt = now + attempt.probeAfter
            }
            pending[id]?.attempt = attempt
            wake(at: attempt.checkAt)
        }
        for (id, timeout) in expired {
            let message = "no reply within \(timeout.nanoseconds / 1_000_000) ms"
            abandon(id, ClientError(.deadlineExceeded, node: node, message: message))
        }
        for (id, after) in silent {
            let message =
                "node silent: nothing received for \(after.nanoseconds / 1_000_000) ms, liveness probe unanswered"
            abandon(id, ClientError(.unresponsive, node: node, message: message))
        }
        if let context {
            if let probeNeeded { sendProbe(now: now, timeout: probeNeeded, context: context) }
            if let next { armSweep(at: next, context: context) }
        }
    }

    private func failAll(_ error: ClientError, context: ChannelHandlerContext?) {
        if closedError == nil { closedError = error }
        let entries = pending
        pending = [:]
        abandoned = []
        sweep?.task.cancel()
        sweep = nil
        for entry in entries.values { entry.promise.fail(error) }
        context?.close(promise: nil)
    }
}
