import NIOCore
import NIOPosix

/// `GET /metrics` of a process, in the Prometheus text format: a node's (``CloudNode`` serves one
/// when ``CloudNodeConfiguration/metricsListen`` is set) or a peer daemon's (`distri-peer serve
/// --metrics-listen`), from the stats it is given at each scrape.
public final class MetricsEndpoint: Sendable {
    /// Where it listens (the port the OS chose for port 0).
    public let address: NodeAddress
    let metrics: NodeMetrics
    private let channel: Channel

    private init(address: NodeAddress, metrics: NodeMetrics, channel: Channel) {
        self.address = address
        self.metrics = metrics
        self.channel = channel
    }

    /// Binds `address` and serves the metrics of `stats()`, read at each scrape.
    public static func serve(
        _ address: NodeAddress, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        metrics: NodeMetrics = NodeMetrics(), stats: @escaping @Sendable () -> NodeStats
    ) async throws -> MetricsEndpoint {
        let channel = try await MetricsServer.start(address, group: group) { metrics.render(stats()) }
        let bound = NodeAddress(host: address.host, port: channel.localAddress?.port ?? address.port)
        return MetricsEndpoint(address: bound, metrics: metrics, channel: channel)
    }

    /// `http://host:port/metrics`.
    public var url: String { "http://\(address)/metrics" }

    /// Stops listening (without waiting).
    public func close() {
        channel.close(promise: nil)
    }
}
