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

    private var decoder: MessageDecoder
    private var encoder: MessageEncoder
    private var cumulation: ByteBuffer?
    private var failed = false

    init(limits: WireLimits) {
        decoder = MessageDecoder(limits: limits)
        encoder = MessageEncoder(limits: limits)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        var incoming = unwrapInboundIn(data)
        var buffer: ByteBuffer
        if var pending = cumulation {
            cumulation = nil
            pending.writeBuffer(&incoming)
            buffer = pending
        } else {
            buffer = incoming
        }
        do {
            while let message = try decoder.next(from: &buffer) {
                context.fireChannelRead(wrapInboundOut(message))
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
            wrote = true
        }
        if wrote { context.flush() }
    }
}
