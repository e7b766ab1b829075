import NIOCore

/// What a frame carries. A struct with static members rather than a closed enum, so that later
/// protocol versions can add kinds without breaking API.
public struct FrameKind: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// A call of a named service (``WireRequest``).
    public static let request = FrameKind(rawValue: 1)
    /// A successful reply: the service's output bytes.
    public static let response = FrameKind(rawValue: 2)
    /// A failed reply (``WireErrorReply``).
    public static let error = FrameKind(rawValue: 3)

    /// Kinds that version 1 of the protocol understands.
    public static let known: Set<FrameKind> = [.request, .response, .error]

    public var description: String {
        switch self {
        case .request: "request"
        case .response: "response"
        case .error: "error"
        default: "kind(\(rawValue))"
        }
    }
}

/// Per-frame flag bits.
public struct FrameFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The last frame of a message; a message is the concatenation of its frames' payloads.
    public static let endOfMessage = FrameFlags(rawValue: 1 << 0)

    /// Bits that version 1 defines; any other bit set is a protocol error.
    public static let defined: FrameFlags = [.endOfMessage]
}

/// The fixed 18-byte header that starts every frame (see docs/wire-format.md).
public struct FrameHeader: Hashable, Sendable {
    /// `0xD1 0x57`, the first two bytes of every frame.
    public static let magic: UInt16 = 0xD157
    /// The protocol version this build speaks.
    public static let currentVersion: UInt8 = 1
    /// Size of the encoded header in bytes.
    public static let size = 18

    /// The protocol version the frame is written in.
    public var version: UInt8
    /// What the frame carries.
    public var kind: FrameKind
    /// The frame's flag bits.
    public var flags: FrameFlags
    /// The request the frame belongs to, on its connection.
    public var requestID: UInt64
    /// Bytes of payload after the header.
    public var payloadLength: UInt32

    /// A header with the given fields.
    public init(
        kind: FrameKind,
        flags: FrameFlags,
        requestID: UInt64,
        payloadLength: UInt32,
        version: UInt8 = FrameHeader.currentVersion
    ) {
        self.version = version
        self.kind = kind
        self.flags = flags
        self.requestID = requestID
        self.payloadLength = payloadLength
    }

    /// Appends the encoded header to `buffer`.
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(Self.magic)
        buffer.writeInteger(version)
        buffer.writeInteger(kind.rawValue)
        buffer.writeInteger(flags.rawValue)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(requestID)
        buffer.writeInteger(payloadLength)
    }

    /// Reads and validates a header at the reader index without consuming it.
    /// Returns nil when fewer than ``size`` bytes are readable.
    public static func peek(in buffer: ByteBuffer, limits: WireLimits) throws(WireError)
        -> FrameHeader?
    {
        guard buffer.readableBytes >= size else { return nil }
        let start = buffer.readerIndex
        guard let magic = buffer.getInteger(at: start, as: UInt16.self),
            let version = buffer.getInteger(at: start + 2, as: UInt8.self),
            let kind = buffer.getInteger(at: start + 3, as: UInt8.self),
            let flags = buffer.getInteger(at: start + 4, as: UInt8.self),
            let reserved = buffer.getInteger(at: start + 5, as: UInt8.self),
            let requestID = buffer.getInteger(at: start + 6, as: UInt64.self),
            let length = buffer.getInteger(at: start + 14, as: UInt32.self)
        else { return nil }
        guard magic == Self.magic else { throw .badMagic(found: magic) }
        guard version == currentVersion else { throw .unsupportedVersion(version) }
        let frameKind = FrameKind(rawValue: kind)
        guard FrameKind.known.contains(frameKind) else {
            throw .unknownKind(kind, requestID: requestID)
        }
        let frameFlags = FrameFlags(rawValue: flags)
        guard reserved == 0, frameFlags.subtracting(.defined).isEmpty else {
            throw .reservedBitsSet(requestID: requestID)
        }
        guard Int(length) <= limits.maxFramePayload else {
            throw .frameTooLarge(length: Int(length), limit: limits.maxFramePayload, requestID: requestID)
        }
        return FrameHeader(
            kind: frameKind, flags: frameFlags, requestID: requestID, payloadLength: length,
            version: version)
    }
}

/// One decoded frame: its header and a slice of its payload.
public struct Frame: Sendable {
    /// The frame's header.
    public var header: FrameHeader
    /// Its payload.
    public var payload: ByteBuffer

    /// A frame of `header` and `payload`.
    public init(header: FrameHeader, payload: ByteBuffer) {
        self.header = header
        self.payload = payload
    }
}
