import DistriWire
import NIOCore

/// Turns the byte stream of a connection into whole ``WireMessage``s and back. Decoding and
/// chunking are the pure ``MessageDecoder`` and ``MessageEncoder``; this handler only feeds them and
/// writes frames while the channel is writable (backpressure for large payloads).
///
/// A protocol error is passed on with `fireErrorCaught` as a ``WireError``; the stream is not read
/// any further after it.
///
/// On a node, the bytes a connection holds (the unread part of the stream, messages begun but not
/// complete, replies queued while the reader is slow) are reserved from the node-wide
/// ``ResourceBudget`` as they grow and given back as they shrink or the connection closes. A
/// connection whose growth the budget cannot cover drops what it holds and fails with
/// ``DistriWire/WireError/nodeBufferFull(limit:)`` (`busy`): the bytes of one read may be held
/// before they are counted, never more.
package final class FramingHandler: ChannelDuplexHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = WireMessage
    package typealias OutboundIn = WireMessage
    package typealias OutboundOut = ByteBuffer

    /// On a node's side of a connection: closes slow and idle connections and reports each drop.
    package struct Watch: Sendable {
        package var limits: ConnectionLimits
        /// The node-wide budget for buffered bytes; nil: only the per-connection limits apply.
        package var budget: ResourceBudget?
        package var onDrop: @Sendable (ConnectionDrop) -> Void

        package init(
            limits: ConnectionLimits, budget: ResourceBudget? = nil,
            onDrop: @escaping @Sendable (ConnectionDrop) -> Void
        ) {
            self.limits = limits
            self.budget = budget
            self.onDrop = onDrop
        }
    }

    private var decoder: MessageDecoder
    private var encoder: MessageEncoder
    private var cumulation: ByteBuffer?
    private var failed = false
    private let watch: Watch?
    private var timer: RepeatedTask?
    private var received = 0
    private var lastActivity = NIODeadline.now()
    /// When a message began to be incomplete, and how many bytes had been received then.
    private var pendingSince: (time: NIODeadline, received: Int)?
    /// Bytes reserved from the watch's budget for what this connection holds.
    private var reserved = 0

    package init(limits: WireLimits, watch: Watch? = nil) {
        decoder = MessageDecoder(limits: limits)
        encoder = MessageEncoder(limits: limits)
        self.watch = watch
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        guard let watch else { return }
        let interval = TimeAmount.nanoseconds(
            max(10_000_000, min(1_000_000_000, watch.limits.slowRequestTimeout.nanoseconds / 4)))
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            bound.value.handler.check(context: bound.value.context, watch: watch)
        }
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        cumulation = nil
        watch?.budget?.release(reserved)
        reserved = 0
    }

    /// Brings the reservation in line with the bytes held now; on a budget that cannot cover the
    /// growth, drops everything held and fails the connection with `nodeBufferFull`.
    private func settleBudget(context: ChannelHandlerContext) {
        guard let budget = watch?.budget else { return }
        let holding = failed ? 0 : (cumulation?.readableBytes ?? 0) + decoder.partialByteCount + encoder.pendingBytes
        if holding < reserved {
            budget.release(reserved - holding)
            reserved = holding
        } else if holding > reserved {
            if budget.reserve(holding - reserved, holdingAfter: holding) {
                reserved = holding
            } else {
                failed = true
                cumulation = nil
                decoder = MessageDecoder(limits: decoder.limits)
                encoder = MessageEncoder(limits: encoder.limits)
                budget.release(reserved)
                reserved = 0
                context.fireErrorCaught(WireError.nodeBufferFull(limit: budget.capacity))
            }
        }
    }

    /// Drops the connection when a message has been arriving too slowly, or nothing moved for the idle timeout.
    private func check(context: ChannelHandlerContext, watch: Watch) {
        // Failed already and closing (a TLS close may wait for the peer): not dropped a second time.
        guard !failed else { return }
        let now = NIODeadline.now()
        if let pending = pendingSince, now - pending.time >= watch.limits.slowRequestTimeout {
            let seconds = Double((now - pending.time).nanoseconds) / 1e9
            if Double(received - pending.received) < Double(watch.limits.minBytesPerSecond) * seconds {
                drop(context: context, watch: watch, reason: .slowRequest)
                return
            }
            pendingSince = (now, received)
        }
        if now - lastActivity >= watch.limits.idleTimeout {
            drop(context: context, watch: watch, reason: .idle)
        }
    }

    private func drop(context: ChannelHandlerContext, watch: Watch, reason: ConnectionDrop) {
        timer?.cancel()
        timer = nil
        failed = true
        watch.onDrop(reason)
        context.close(promise: nil)
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        var incoming = unwrapInboundIn(data)
        received += incoming.readableBytes
        if watch != nil { lastActivity = .now() }
        var buffer: ByteBuffer
        if var pending = cumulation {
            cumulation = nil
            pending.writeBuffer(&incoming)
            buffer = pending
        } else {
            buffer = incoming
        }
        do {
            var completed = false
            while !failed, let message = try decoder.next(from: &buffer) {
                completed = true
                context.fireChannelRead(wrapInboundOut(message))
            }
            if watch != nil {
                let incomplete = buffer.readableBytes > 0 || decoder.partialMessageCount > 0
                if !incomplete {
                    pendingSince = nil
                } else if completed || pendingSince == nil {
                    pendingSince = (lastActivity, received)
                }
            }
        } catch {
            failed = true
            context.fireErrorCaught(error)
            return
        }
        // A reply written while reading may have found the node's budget full.
        if failed { return }
        if buffer.readableBytes > 0 {
            if buffer.readerIndex > 1 << 20 { buffer.discardReadBytes() }
            cumulation = buffer
        }
        settleBudget(context: context)
    }

    package func channelInactive(context: ChannelHandlerContext) {
        if !failed {
            do {
                try decoder.finish(leftover: cumulation ?? ByteBuffer())
            } catch {
                failed = true
                context.fireErrorCaught(error)
            }
        }
        cumulation = nil
        context.fireChannelInactive()
    }

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        encoder.enqueue(unwrapOutboundIn(data))
        promise?.succeed(())
    }

    package func flush(context: ChannelHandlerContext) {
        pump(context: context)
    }

    package func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { pump(context: context) }
        context.fireChannelWritabilityChanged()
    }

    private func pump(context: ChannelHandlerContext) {
        var wrote = false
        if watch != nil { lastActivity = .now() }
        while context.channel.isWritable,
            let frame = encoder.nextFrame(allocator: context.channel.allocator)
        {
            context.write(wrapOutboundOut(frame), promise: nil)
            wrote = true
        }
        if wrote { context.flush() }
        settleBudget(context: context)
    }
}
