import DequeModule
import NIOCore

/// Cuts outgoing messages into frames and interleaves them fairly, so that a large reply never holds
/// small ones back. The shell asks for the next frame only while its channel is writable, which is
/// how backpressure reaches a sender of large payloads.
public struct MessageEncoder: Sendable {
    /// The limits the frames are cut to.
    public let limits: WireLimits
    private var queue: Deque<WireMessage> = []
    /// Payload bytes queued and not yet cut into frames.
    public private(set) var pendingBytes = 0

    /// An encoder cutting frames to `limits`.
    public init(limits: WireLimits = .standard) {
        self.limits = limits
    }

    /// True when no frame is waiting.
    public var isEmpty: Bool { queue.isEmpty }

    /// Messages waiting to be framed, in full or in part.
    public var pendingCount: Int { queue.count }

    /// Queues a message for sending.
    public mutating func enqueue(_ message: WireMessage) {
        queue.append(message)
        pendingBytes += message.payload.readableBytes
    }

    /// The next frame to write, header and payload in one buffer for small frames.
    public mutating func nextFrame(allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard var message = queue.popFirst() else { return nil }
        let length = min(message.payload.readableBytes, limits.chunkSize)
        // Cannot fail: length is at most the readable bytes.
        let chunk = message.payload.readSlice(length: length) ?? ByteBuffer()
        pendingBytes -= length
        let isLast = message.payload.readableBytes == 0
        if !isLast { queue.append(message) }
        return Self.frame(
            kind: message.kind, requestID: message.requestID, payload: chunk, isLast: isLast,
            allocator: allocator)
    }

    /// Encodes one frame.
    public static func frame(
        kind: FrameKind, requestID: UInt64, payload: ByteBuffer, isLast: Bool,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        let header = FrameHeader(
            kind: kind, flags: isLast ? .endOfMessage : [], requestID: requestID,
            payloadLength: UInt32(payload.readableBytes))
        var out = allocator.buffer(capacity: FrameHeader.size + payload.readableBytes)
        header.write(to: &out)
        out.writeImmutableBuffer(payload)
        return out
    }
}
