import DistriClient
import DistriCore
import DistriWire
import NIOConcurrencyHelpers
import NIOCore

/// The open connections of a server, counted per source address: a connection beyond
/// ``ConnectionLimits/maxPerSource`` from one source is refused at accept. Shared by ``CloudNode``
/// and ``PeerEndpoint``.
package final class ConnectionTracker: Sendable {
    private let maxPerSource: Int
    private let state = NodeLock<(open: [ObjectIdentifier: Channel], perSource: [String: Int])>(([:], [:]))

    package init(maxPerSource: Int) {
        self.maxPerSource = maxPerSource
    }

    /// Tracks a newly accepted connection until it closes; false (and not tracked) when its source
    /// already holds the most connections allowed.
    package func admit(_ channel: Channel) -> Bool {
        let key = ObjectIdentifier(channel)
        let source = Self.source(of: channel)
        let admitted = state.withLockedValue { state -> Bool in
            guard state.perSource[source, default: 0] < maxPerSource else { return false }
            state.perSource[source, default: 0] += 1
            state.open[key] = channel
            return true
        }
        guard admitted else { return false }
        channel.closeFuture.whenComplete { [weak self] _ in
            self?.state.withLockedValue { state in
                _ = state.open.removeValue(forKey: key)
                state.perSource[source, default: 1] -= 1
                if state.perSource[source] == 0 { state.perSource[source] = nil }
            }
        }
        return true
    }

    /// The connections open now.
    package var open: [Channel] { state.withLockedValue { Array($0.open.values) } }

    /// The address a connection comes from, as counted.
    package static func source(of channel: Channel) -> String {
        channel.remoteAddress?.ipAddress ?? "unknown"
    }
}
