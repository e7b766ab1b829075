import NIOCore

/// A whole message: the payloads of all its frames joined, tagged with its kind and request id.
public struct WireMessage: Sendable {
    /// What the message is: a request, a reply, an error.
    public var kind: FrameKind
    /// The request it belongs to, on its connection.
    public var requestID: UInt64
    /// The payloads of all its frames, joined.
    public var payload: ByteBuffer

    /// A message with the given fields.
    public init(kind: FrameKind, requestID: UInt64, payload: ByteBuffer) {
        self.kind = kind
        self.requestID = requestID
        self.payload = payload
    }
}
