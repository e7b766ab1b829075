/// Size limits that protect a connection's memory. Defaults suit a cloud node on a small machine.
public struct WireLimits: Hashable, Sendable {
    /// Largest payload one frame may carry; a bigger length in a header is refused before any byte of
    /// it is buffered. Default 1 MiB.
    public var maxFramePayload: Int
    /// Payload size at which a sender cuts a message into frames. Default 256 KiB.
    public var chunkSize: Int
    /// Largest whole message (request or reply). Default 64 MiB.
    public var maxMessageSize: Int
    /// Messages that may be half-received at once on one connection. Default 256.
    public var maxPartialMessages: Int
    /// Bytes of half-received messages one connection may hold. Default 128 MiB.
    public var maxPartialBytes: Int

    /// Limits with the given values; every argument has a default.
    public init(
        maxFramePayload: Int = 1 << 20,
        chunkSize: Int = 256 << 10,
        maxMessageSize: Int = 64 << 20,
        maxPartialMessages: Int = 256,
        maxPartialBytes: Int = 128 << 20
    ) {
        precondition(
            chunkSize > 0 && chunkSize <= maxFramePayload, "chunkSize must be in 1...maxFramePayload")
        self.maxFramePayload = maxFramePayload
        self.chunkSize = chunkSize
        self.maxMessageSize = maxMessageSize
        self.maxPartialMessages = maxPartialMessages
        self.maxPartialBytes = maxPartialBytes
    }

    /// The defaults.
    public static let standard = WireLimits()
}
