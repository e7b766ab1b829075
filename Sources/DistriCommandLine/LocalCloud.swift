import Distri
import Foundation
import Logging
import NIOPosix
import ServiceLifecycle

/// Several nodes started together in this process; a `Service` that stops them all on shutdown.
///
/// Each node runs on event loops of its own, as it would on a machine of its own: nodes sharing loops
/// would take turns on each other's threads, and every request of one node would contend with the
/// other nodes' for its replica's lock (measured: 1 loop per node gives 1.05-1.48x the `majority`
/// writes of 3 nodes sharing the 2 loops of this process, in alternated pairs).
public final class LocalCloud: Service, Sendable {
    /// One loop per node: the nodes of a local cloud already outnumber the cores they share.
    public static let defaultLoopsPerNode = 1

    public let nodes: [CloudNode]
    public let addresses: [NodeAddress]
    private let groups: [MultiThreadedEventLoopGroup]

    private init(nodes: [CloudNode], addresses: [NodeAddress], groups: [MultiThreadedEventLoopGroup]) {
        self.nodes = nodes
        self.addresses = addresses
        self.groups = groups
    }

    /// Starts `count` nodes, each joining through the first. With `dataDirectory`, node i (from 1)
    /// keeps its DB log and its id in `dataDirectory/node-i`. With `authority`, every node gets a
    /// certificate from it and the cloud speaks TLS. With `metrics`, every node serves Prometheus metrics
    /// on a free port of `host`; with `tracePropagation`, every node carries trace context
    /// (``PropagatingTracer``).
    public static func start(
        nodes count: Int, host: String, capacity: Int = 64, loopsPerNode: Int = defaultLoopsPerNode,
        dataDirectory: String? = nil, authority: ThrowawayAuthority?, metrics: Bool = false,
        tracePropagation: Bool = false, logger: Logger
    ) async throws -> LocalCloud {
        var nodes: [CloudNode] = []
        var addresses: [NodeAddress] = []
        var groups: [MultiThreadedEventLoopGroup] = []
        // One deposit key for the run, shared by every node (view grants open on any of them).
        var generator = SystemRandomNumberGenerator()
        let depositKey = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for index in 1...count {
            do {
                let directory = dataDirectory.map { ($0 as NSString).appendingPathComponent("node-\(index)") }
                let nodeID = try directory.map { try DataDirectory.nodeID(in: $0, requested: nil) } ?? NodeID.random()
                let tls = try authority?.nodeTLS(name: nodeID)
                let group = MultiThreadedEventLoopGroup(numberOfThreads: loopsPerNode)
                groups.append(group)
                var configuration = CloudNodeConfiguration(
                    listen: NodeAddress(host: host, port: 0), seeds: addresses.prefix(1).map { $0 }, nodeID: nodeID,
                    tls: tls)
                configuration.capacity = capacity
                configuration.dataDirectory = directory
                if metrics { configuration.metricsListen = NodeAddress(host: host, port: 0) }
                if tracePropagation { configuration.tracer = PropagatingTracer() }
                configuration.depositKey = depositKey
                let node = CloudNode(configuration: configuration, group: group, logger: logger)
                addresses.append(try await node.start())
                nodes.append(node)
            } catch {
                // A failed start leaves no node, listener or thread of the earlier ones behind.
                await LocalCloud(nodes: nodes, addresses: addresses, groups: groups).stop()
                throw error
            }
        }
        return LocalCloud(nodes: nodes, addresses: addresses, groups: groups)
    }

    public func run() async throws {
        try? await gracefulShutdown()
        await stop()
    }

    /// Stops every node and its event loops.
    public func stop() async {
        for node in nodes { await node.shutdown() }
        for group in groups { try? await group.shutdownGracefully() }
    }
}
