import DistriWire
import NIOCore

/// Turns the byte stream of a connection into whole ``WireMessage``s and back. Decoding and
/// chunking are the pure ``MessageDecoder`` and ``MessageEncoder``; this handler only feeds them and
/// writes frames while the channel is writable (backpressure for large payloads).
///
/// A protocol error is passed on with `fireErrorCaught` as a ``WireError``; the stream is not read
/// any further after it.
final class FramingHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = WireMessage
    typealias OutboundIn = WireMessage
    typealias OutboundOut = ByteBuffer

    /// On a node's side of a connection: closes slow and idle connections and reports each drop.
    struct Watch: Sendable {
        var limits: ConnectionLimits
        var onDrop: @Sendable (ConnectionDrop) -> Void
    }

    private var decoder: MessageDecoder
    private var encoder: MessageEncoder
    private var cumulation: ByteBuffer?
    private var failed = false
    private let watch: Watch?
    private var timer: RepeatedTask?
    /// Bytes received and frames written: the timer compares them between ticks, so reads and writes
    /// never read the clock.
    private var received = 0
    private var written = 0
    /// The `received` count at which the message now incomplete began; nil when none is.
    private var pendingFrom: Int?
    /// Stamped by the timer: since when nothing moved, and since when the current incomplete message
    /// (by its `pendingFrom`) has been watched, with the bytes received then.
    private var quiet = (activity: 0, since: NIODeadline.now())
    private var pendingWatch: (from: Int, since: NIODeadline, received: Int)?

    init(limits: WireLimits, watch: Watch? = nil) {
        decoder = MessageDecoder(limits: limits)
        encoder = MessageEncoder(limits: limits)
        self.watch = watch
    }

    func handlerAdded(context: ChannelHandlerContext) {
        guard let watch else { return }
        let interval = TimeAmount.nanoseconds(
            max(10_000_000, min(1_000_000_000, watch.limits.slowRequestTimeout.nanoseconds / 4)))
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            bound.value.handler.check(context: bound.value.context, watch: watch)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    /// Drops the connection when a message has been arriving too slowly, or nothing moved for the idle timeout.
    private func check(context: ChannelHandlerContext, watch: Watch) {
        let now = NIODeadline.now()
        if let from = pendingFrom {
            if let pending = pendingWatch, pending.from == from {
                if now - pending.since >= watch.limits.slowRequestTimeout {
                    let seconds = Double((now - pending.since).nanoseconds) / 1e9
                    if Double(received - pending.received) < Double(watch.limits.minBytesPerSecond) * seconds {
                        drop(context: context, watch: watch, reason: .slowRequest)
                        return
                    }
                    pendingWatch = (from, now, received)
                }
            } else {
                pendingWatch = (from, now, received)
            }
        } else {
            pendingWatch = nil
        }
        let activity = received + written
        if activity != quiet.activity {
            quiet = (activity, now)
        } else if now - quiet.since >= watch.limits.idleTimeout {
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

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        var incoming = unwrapInboundIn(data)
        let before = received
        received += incoming.readableBytes
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
            while let message = try decoder.next(from: &buffer) {
                completed = true
                context.fireChannelRead(wrapInboundOut(message))
            }
            if watch != nil {
                let incomplete = buffer.readableBytes > 0 || decoder.partialMessageCount > 0
                if !incomplete {
                    pendingFrom = nil
                } else if completed || pendingFrom == nil {
                    pendingFrom = completed ? received : before
                }
            }
        } catch {
            failed = true
            context.fireErrorCaught(error)
            return
        }
        if buffer.readableBytes > 0 {
            if buffer.readerIndex > 1 << 20 { buffer.discardReadBytes() }
            cumulation = buffer
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
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

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        encoder.enqueue(unwrapOutboundIn(data))
        promise?.succeed(())
    }

    func flush(context: ChannelHandlerContext) {
        pump(context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { pump(context: context) }
        context.fireChannelWritabilityChanged()
    }

    private func pump(context: ChannelHandlerContext) {
        var wrote = false

        while context.channel.isWritable,
            let frame = encoder.nextFrame(allocator: context.channel.allocator)
        {
            context.write(wrapOutboundOut(frame), promise: nil)
            written += 1
            wrote = true
        }
        if wrote { context.flush() }
    }
}
