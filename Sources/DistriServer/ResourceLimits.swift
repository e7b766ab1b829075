import DistriClient
import DistriCore
import DistriWire
import NIOCore
import Synchronization

/// The node-wide ceilings on memory and on what one request may carry: the limits that hold when
/// many connections misbehave at once, where `WireLimits` and `ConnectionLimits` each
/// see one connection. Every field has a safe default; with them a node's resident memory stays
/// under about 512 MB under hostile load (README, "Limits"):
///
/// - about 45 MB for the node itself,
/// - ``bufferedBytes`` (128 MiB, and 16 MiB more for connections holding at most 64 KiB) of
///   incomplete messages and queued replies, plus at most one read (64 KiB) per connection before it
///   is counted,
/// - ``imagePixelsInFlight`` (24 Mpixel) at up to 8 bytes each (libpng's rows and the RGBA copy of a
///   cover; 192 MiB) for the Encrypt calls running at once,
/// - complete requests being served (each at most `WireLimits.maxMessageSize`; only as
///   many as arrive complete, which the budget above paces).
public struct ResourceLimits: Sendable, Equatable {
    /// Bytes of messages that have begun to arrive but are not complete, on all connections together,
    /// plus replies queued for readers slower than the node writes. A connection whose buffered bytes
    /// would take the total past it is answered `busy` (request id 0: every call on the connection
    /// fails with it) and closed. A connection that holds at most 64 KiB may go an eighth beyond it
    /// (16 MiB by default), so that small requests still get through while large unfinished ones fill
    /// it. Default 128 MiB.
    public var bufferedBytes: Int
    /// Largest single request parameter, in bytes of UTF-8 (the `if=` condition of a DB update
    /// included). A request with a bigger one is answered `badParams`. Default 64 KiB.
    public var maxParamBytes: Int
    /// All the parameters of one request together, in bytes of UTF-8; more is answered `badParams`.
    /// Default 256 KiB.
    public var maxTotalParamBytes: Int
    /// Largest image, in pixels (width × height, read from the PNG header before anything is decoded),
    /// that the Encrypt service accepts as an image or a cover: 16 Mpixel (4096 × 4096, 64 MiB of
    /// RGBA) by default. A bigger one is answered `tooLarge`.
    public var maxImagePixels: Int
    /// Pixels of covers (given or generated) that the node's Encrypt calls decode, fill and encode at
    /// once. A call that would take the total past it is answered `busy` before it decodes anything.
    /// Default 24 Mpixel (at up to 8 bytes a pixel while a cover is decoded, 192 MiB).
    public var imagePixelsInFlight: Int
    /// A TLS connection that has not completed its handshake this long after it was accepted is
    /// closed (slow or stalled ClientHellos). Default 10 s.
    public var handshakeTimeout: TimeAmount

    /// Limits with the given values; every argument has a default.
    public init(
        bufferedBytes: Int = 128 << 20, maxParamBytes: Int = 64 << 10, maxTotalParamBytes: Int = 256 << 10,
        maxImagePixels: Int = 16 << 20, imagePixelsInFlight: Int = 24 << 20, handshakeTimeout: TimeAmount = .seconds(10)
    ) {
        self.bufferedBytes = bufferedBytes
        self.maxParamBytes = maxParamBytes
        self.maxTotalParamBytes = maxTotalParamBytes
        self.maxImagePixels = maxImagePixels
        self.imagePixelsInFlight = imagePixelsInFlight
        self.handshakeTimeout = handshakeTimeout
    }

    /// The parameters' sizes checked against ``maxParamBytes`` and ``maxTotalParamBytes``.
    package func checkParams(_ params: [String], service: String) throws(ServiceError) {
        var total = 0
        for (index, param) in params.enumerated() {
            let size = param.utf8.count
            guard size <= maxParamBytes else {
                let name = param.utf8.firstIndex(of: UInt8(ascii: "=")).map { " (\(param[..<$0]))" } ?? ""
                throw .badParams(
                    "\(service): parameter \(index + 1)\(name) has \(size) bytes; the limit is \(maxParamBytes)")
            }
            total += size
        }
        guard total <= maxTotalParamBytes else {
            throw .badParams(
                "\(service): the parameters have \(total) bytes together; the limit is \(maxTotalParamBytes)")
        }
    }
}
