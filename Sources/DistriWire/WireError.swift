/// A violation of the wire protocol found while decoding. Every case names what was wrong so that a
/// node can answer with a clear error before closing the connection.
public enum WireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The frame did not start with the protocol's magic number.
    case badMagic(found: UInt16)
    /// The frame is of a protocol version this build does not speak.
    case unsupportedVersion(UInt8)
    /// The frame's kind is not one this version knows.
    case unknownKind(UInt8, requestID: UInt64)
    /// The frame sets flag bits that are reserved.
    case reservedBitsSet(requestID: UInt64)
    /// A frame's payload exceeds the frame limit.
    case frameTooLarge(length: Int, limit: Int, requestID: UInt64)
    /// A message exceeds the message size limit.
    case messageTooLarge(size: Int, limit: Int, requestID: UInt64)
    /// The connection holds more incomplete messages than allowed.
    case tooManyPartialMessages(limit: Int)
    /// The connection's incomplete messages hold more bytes than allowed.
    case partialBytesExceeded(limit: Int)
    /// The node's buffer for incomplete messages and queued replies, shared by all its connections,
    /// is full: the connection asking for more is refused (`busy`) and closed.
    case nodeBufferFull(limit: Int)
    /// A later frame of a message changed its kind.
    case kindChangedMidMessage(requestID: UInt64)
    /// The connection closed in the middle of a frame.
    case truncatedFrame(bufferedBytes: Int)
    /// A message's payload does not decode.
    case malformedMessage(String)

    /// The request the error belongs to, when the header got that far.
    public var requestID: UInt64? {
        switch self {
        case .unknownKind(_, let id), .reservedBitsSet(let id), .frameTooLarge(_, _, let id),
            .messageTooLarge(_, _, let id), .kindChangedMidMessage(let id):
            id
        default: nil
        }
    }

    /// The error code a peer is told.
    public var code: ErrorCode {
        switch self {
        case .frameTooLarge, .messageTooLarge, .partialBytesExceeded, .tooManyPartialMessages: .tooLarge
        case .nodeBufferFull: .busy
        default: .malformed
        }
    }

    public var description: String {
        switch self {
        case .badMagic(let found):
            "bad magic 0x\(String(found, radix: 16)) (expected 0xd157): not a Distri peer"
        case .unsupportedVersion(let v): "unsupported protocol version \(v) (this node speaks 1)"
        case .unknownKind(let k, _): "unknown frame kind \(k)"
        case .reservedBitsSet: "reserved header bits are set"
        case .frameTooLarge(let length, let limit, _):
            "frame payload of \(length) bytes exceeds the limit of \(limit)"
        case .messageTooLarge(let size, let limit, _):
            "message of \(size) bytes exceeds the limit of \(limit)"
        case .tooManyPartialMessages(let limit): "more than \(limit) partially received messages"
        case .partialBytesExceeded(let limit): "partially received messages exceed \(limit) bytes"
        case .nodeBufferFull(let limit):
            "the node is busy: its buffer for incomplete messages and queued replies (\(limit) bytes across all connections) is full; this connection is closed, retry later"
        case .kindChangedMidMessage: "frame kind changed in the middle of a message"
        case .truncatedFrame(let n): "connection closed in the middle of a frame (\(n) bytes pending)"
        case .malformedMessage(let why): "malformed message: \(why)"
        }
    }
}
