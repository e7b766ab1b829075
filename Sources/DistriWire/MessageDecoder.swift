import NIOCore

/// Turns a byte stream into whole ``WireMessage``s: parses frame headers, enforces the limits, and
/// joins the frames of each message by request id (frames of different messages may interleave).
///
/// Pure and incremental: feed it whatever bytes arrived, in any chunking, and call ``next(from:)``
/// until it returns nil. Any thrown error is final for the stream.
public struct MessageDecoder: Sendable {
    /// The limits enforced while decoding.
    public let limits: WireLimits
    private var partial: [UInt64: WireMessage] = [:]
    private var partialBytes = 0

    /// A decoder enforcing `limits`.
    public init(limits: WireLimits = .standard) {
        self.limits = limits
    }

    /// Messages begun but not yet complete.
    public var partialMessageCount: Int { partial.count }

    /// Payload bytes held for messages begun but not yet complete.
    public var partialByteCount: Int { partialBytes }

    /// Consumes frames from `buffer` until one completes a message, which it returns. Returns nil
    /// when `buffer` holds no complete frame; the unread bytes stay in `buffer`.
    public mutating func next(from buffer: inout ByteBuffer) throws(WireError) -> WireMessage? {
        while let frame = try Self.readFrame(from: &buffer, limits: limits) {
            if let message = try absorb(frame) { return message }
        }
        return nil
    }

    /// Call when the stream ends: any frame or message still in progress is an error.
    public func finish(leftover buffer: ByteBuffer) throws(WireError) {
        if buffer.readableBytes > 0 { throw .truncatedFrame(bufferedBytes: buffer.readableBytes) }
        if let first = partial.values.first {
            throw .malformedMessage("stream ended inside message \(first.requestID)")
        }
    }

    /// Reads one frame if `buffer` holds all of it.
    public static func readFrame(from buffer: inout ByteBuffer, limits: WireLimits) throws(WireError)
        -> Frame?
    {
        guard let header = try FrameHeader.peek(in: buffer, limits: limits) else { return nil }
        let total = FrameHeader.size + Int(header.payloadLength)
        guard buffer.readableBytes >= total else { return nil }
        buffer.moveReaderIndex(forwardBy: FrameHeader.size)
        // Cannot fail: the length was checked just above.
        let payload = buffer.readSlice(length: Int(header.payloadLength)) ?? ByteBuffer()
        return Frame(header: header, payload: payload)
    }

    private mutating func absorb(_ frame: Frame) throws(WireError) -> WireMessage? {
        let id = frame.header.requestID
        let isLast = frame.header.flags.contains(.endOfMessage)
        guard var message = partial.removeValue(forKey: id) else {
            if isLast {
                guard frame.payload.readableBytes <= limits.maxMessageSize else {
                    throw .messageTooLarge(
                        size: frame.payload.readableBytes, limit: limits.maxMessageSize, requestID: id)
                }
                return WireMessage(kind: frame.header.kind, requestID: id, payload: frame.payload)
            }
            guard partial.count < limits.maxPartialMessages else {
                throw .tooManyPartialMessages(limit: limits.maxPartialMessages)
            }
            try account(frame.payload.readableBytes, total: frame.payload.readableBytes, id: id)
            partial[id] = WireMessage(kind: frame.header.kind, requestID: id, payload: frame.payload)
            return nil
        }
        guard message.kind == frame.header.kind else { throw .kindChangedMidMessage(requestID: id) }
        let size = message.payload.readableBytes + frame.payload.readableBytes
        try account(frame.payload.readableBytes, total: size, id: id)
        var chunk = frame.payload
        message.payload.writeBuffer(&chunk)
        if isLast {
            partialBytes -= message.payload.readableBytes
            return message
        }
        partial[id] = message
        return nil
    }

    private mutating func account(_ added: Int, total: Int, id: UInt64) throws(WireError) {
        guard total <= limits.maxMessageSize else {
            throw .messageTooLarge(size: total, limit: limits.maxMessageSize, requestID: id)
        }
        partialBytes += added
        guard partialBytes <= limits.maxPartialBytes else {
            throw .partialBytesExceeded(limit: limits.maxPartialBytes)
        }
    }
}
