import NIOCore

/// Limits on the connections a `CloudNode` accepts, against floods and slow clients. Every field
/// has a safe default.
public struct ConnectionLimits: Sendable {
    /// Connections one source address may hold open at once; more are closed at accept. Default 4096
    /// (load tests run thousands of clients from one loopback address).
    public var maxPerSource: Int
    /// A connection in the middle of a message must deliver at least `minBytesPerSecond` over any
    /// `slowRequestTimeout`, or it is dropped (slow-drip clients). Default 10 s.
    public var slowRequestTimeout: TimeAmount
    /// Default 1 KiB/s.
    public var minBytesPerSecond: Int
    /// A connection with no bytes in either direction for this long is closed. Default 5 minutes.
    public var idleTimeout: TimeAmount

    /// Limits with the given values; every argument has a default.
    public init(
        maxPerSource: Int = 4096, slowRequestTimeout: TimeAmount = .seconds(10), minBytesPerSecond: Int = 1024,
        idleTimeout: TimeAmount = .minutes(5)
    ) {
        self.maxPerSource = maxPerSource
        self.slowRequestTimeout = slowRequestTimeout
        self.minBytesPerSecond = minBytesPerSecond
        self.idleTimeout = idleTimeout
    }
}

/// Why the node closed a connection on its own.
package enum ConnectionDrop: Sendable {
    case tooManyFromSource
    case slowRequest
    case idle
    /// The TLS handshake did not complete within ``ResourceLimits/handshakeTimeout``.
    case slowHandshake
}
