/// Per-peer quotas on the traffic a node relays between peers, as a pure value: the shell asks before
/// forwarding a chunk and reports when the chunk is done; the clock comes in as a parameter.
///
/// - a sender (the grant's owner) may relay at most ``Limits/bytesPerWindow`` in any window of
///   ``Limits/windowMillis`` (a fixed window per sender, restarted when it ends);
/// - at most ``Limits/chunksInFlightPerPeer`` chunks of one sender, and of one recipient, are in
///   flight at once, so one pair cannot hold the node's relay capacity;
/// - the table of senders is bounded (``Limits/maxTrackedPeers``): ended windows are dropped first,
///   and when every tracked sender is still in its window a new sender is refused until one ends.
public struct RelayQuotas: Sendable {
    /// The quotas, with defaults for two people sharing photos.
    public struct Limits: Sendable, Equatable {
        /// Bytes one sender may relay per window. Default 4 GiB.
        public var bytesPerWindow: UInt64
        /// The window. Default one hour.
        public var windowMillis: UInt64
        /// Chunks of one sender, or to one recipient, in flight at once. Default 16.
        public var chunksInFlightPerPeer: Int
        /// Senders tracked at once. Default 100,000.
        public var maxTrackedPeers: Int

        /// Limits with the given values; every argument has a default.
        public init(
            bytesPerWindow: UInt64 = 4 << 30, windowMillis: UInt64 = 3_600_000, chunksInFlightPerPeer: Int = 16,
            maxTrackedPeers: Int = 100_000
        ) {
            self.bytesPerWindow = bytesPerWindow
            self.windowMillis = windowMillis
            self.chunksInFlightPerPeer = chunksInFlightPerPeer
            self.maxTrackedPeers = maxTrackedPeers
        }
    }

    /// Why a chunk was refused, in words a sender can act on.
    public enum Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        /// `sender` used `used` bytes of its `limit` in this window; it resets in `resetsInMillis`.
        case overWindow(sender: String, used: UInt64, limit: UInt64, resetsInMillis: UInt64)
        /// `peer` already has `limit` chunks in flight.
        case tooManyInFlight(peer: String, limit: Int)
        /// `limit` senders are tracked already.
        case tooManyPeers(limit: Int)

        public var description: String {
            switch self {
            case .overWindow(let sender, let used, let limit, let resets):
                "'\(sender)' relayed \(used) of \(limit) bytes allowed per window; the window restarts in \(resets / 1000) s"
            case .tooManyInFlight(let peer, let limit):
                "'\(peer)' has \(limit) relayed chunks in flight already; wait for them"
            case .tooManyPeers(let limit):
                "the node relays for \(limit) senders already; try again later"
            }
        }
    }

    /// The limits applied.
    public let limits: Limits
    private var windows: [String: (start: UInt64, bytes: UInt64)] = [:]
    private var inFlight: [String: Int] = [:]

    /// Quotas with `limits` and nothing used yet.
    public init(limits: Limits = .init()) {
        self.limits = limits
    }

    /// Senders tracked now.
    public var trackedPeers: Int { windows.count }

    /// Admits a chunk of `bytes` from `sender` to `recipient` at `now`, counting it; the caller must
    /// call ``finish(sender:recipient:)`` once for every admitted chunk.
    public mutating func admit(sender: String, recipient: String, bytes: Int, now: UInt64) throws(Refusal) {
        let limit = limits.chunksInFlightPerPeer
        if inFlight[sender, default: 0] >= limit { throw .tooManyInFlight(peer: sender, limit: limit) }
        if inFlight[recipient, default: 0] >= limit { throw .tooManyInFlight(peer: recipient, limit: limit) }
        var window = windows[sender] ?? (now, 0)
        if now >= window.start + limits.windowMillis || now < window.start { window = (now, 0) }
        let size = UInt64(max(0, bytes))
        guard window.bytes + size <= limits.bytesPerWindow else {
            throw .overWindow(
                sender: sender, used: window.bytes, limit: limits.bytesPerWindow,
                resetsInMillis: window.start + limits.windowMillis - now)
        }
        if windows[sender] == nil, windows.count >= limits.maxTrackedPeers {
            prune(now: now)
            guard windows.count < limits.maxTrackedPeers else { throw .tooManyPeers(limit: limits.maxTrackedPeers) }
        }
        window.bytes += size
        windows[sender] = window
        inFlight[sender, default: 0] += 1
        if recipient != sender { inFlight[recipient, default: 0] += 1 }
    }

    /// Ends an admitted chunk.
    public mutating func finish(sender: String, recipient: String) {
        for peer in Set([sender, recipient]) {
            let left = inFlight[peer, default: 0] - 1
            inFlight[peer] = left > 0 ? left : nil
        }
    }

    /// Drops the windows that ended by `now`.
    private mutating func prune(now: UInt64) {
        windows = windows.filter { now < $0.value.start + limits.windowMillis && now >= $0.value.start }
    }
}
