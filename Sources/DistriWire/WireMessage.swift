import NIOCore

/// A whole message: the payloads of all its frames joined, tagged with its kind and request id.
public struct WireMessage: Sendable {
    public var kind: FrameKind
    public var requestID: UInt64
    public var payload: ByteBuffer

    public init(kind: FrameKind, requestID: UInt64, payload: ByteBuffer) {
        self.kind = kind
        self.requestID = requestID
        self.payload = payload
    }
}
