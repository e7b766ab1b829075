import DistriWire
import NIOCore

/// Sends the one reply to one request, from any thread, on the connection's event loop.
struct Responder: Sendable {
    let eventLoop: EventLoop
    let requestID: UInt64
    private let handler: NIOLoopBound<ServerHandler>

    init(handler: ServerHandler, eventLoop: EventLoop, requestID: UInt64) {
        self.eventLoop = eventLoop
        self.requestID = requestID
        self.handler = NIOLoopBound(handler, eventLoop: eventLoop)
    }

    func reply(_ result: Result<ByteBuffer, WireErrorReply>) {
        if eventLoop.inEventLoop {
            handler.value.send(result, requestID: requestID)
        } else {
            let handler = self.handler
            let id = requestID
            eventLoop.execute { handler.value.send(result, requestID: id) }
        }
    }
}
