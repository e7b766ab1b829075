import DistriClient
import DistriCore
import DistriWire
import NIOCore

/// Sends the one reply to one request, from any thread, on the connection's event loop.
package struct Responder: Sendable {
    package let eventLoop: EventLoop
    package let requestID: UInt64
    private let handler: NIOLoopBound<ServerHandler>

    package init(handler: ServerHandler, eventLoop: EventLoop, requestID: UInt64) {
        self.eventLoop = eventLoop
        self.requestID = requestID
        self.handler = NIOLoopBound(handler, eventLoop: eventLoop)
    }

    package func reply(_ result: Result<ByteBuffer, WireErrorReply>) {
        if eventLoop.inEventLoop {
            handler.value.send(result, requestID: requestID)
        } else {
            let handler = self.handler
            let id = requestID
            eventLoop.execute { handler.value.send(result, requestID: id) }
        }
    }
}
