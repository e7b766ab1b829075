import DistriClient
import DistriCore
import DistriWire
import NIOCore
import NIOTLS

/// Closes a TLS connection whose handshake has not completed within a deadline of its start: a
/// client dripping its ClientHello (or sending nothing after connecting) holds no socket for longer.
/// Sits after the TLS handler, which signals the end of the handshake with
/// `TLSUserEvent.handshakeCompleted`; then it cancels its timer and leaves the pipeline.
package final class HandshakeDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer

    private let timeout: TimeAmount
    private let onTimeout: @Sendable () -> Void
    private var timer: Scheduled<Void>?
    private var completed = false

    /// `onTimeout` runs (on the event loop) when the deadline closes the connection.
    package init(timeout: TimeAmount, onTimeout: @escaping @Sendable () -> Void) {
        self.timeout = timeout
        self.onTimeout = onTimeout
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context: context) }
    }

    package func channelActive(context: ChannelHandlerContext) {
        arm(context: context)
        context.fireChannelActive()
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        let done: Bool
        if case TLSUserEvent.handshakeCompleted = event { done = true } else { done = false }
        if done {
            completed = true
            timer?.cancel()
            timer = nil
        }
        context.fireUserInboundEventTriggered(event)
        if done { context.pipeline.syncOperations.removeHandler(context: context, promise: nil) }
    }

    private func arm(context: ChannelHandlerContext) {
        guard timer == nil, !completed else { return }
        let channel = context.channel
        let onTimeout = self.onTimeout
        timer = context.eventLoop.scheduleTask(in: timeout) {
            guard channel.isActive else { return }
            onTimeout()
            channel.close(promise: nil)
        }
    }
}
