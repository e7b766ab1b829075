import Distri
import DistriTestSupport
import NIOCore
import NIOPosix
import Testing

/// A plain TCP connection from `source` (a loopback address of its own) that sends nothing.
private func silentConnection(to address: NodeAddress, from source: String) async throws -> Channel {
    try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .bind(to: try SocketAddress(ipAddress: source, port: 0))
        .connect(host: address.host, port: address.port).get()
}

/// A peer's endpoint keeps the node's connection limits: other peers reach it directly, so a flood
/// from one source or connections left open must not exhaust it.
@Suite struct PeerEndpointLimitTests {
    @Test("a peer endpoint refuses connections beyond its per-source limit and closes idle ones")
    func perSourceAndIdle() async throws {
        let services = ServiceRegistry()
        services.register(
            RegisteredService(name: "Echo", execution: .inline { request in request.data }))
        let endpoint = PeerEndpoint(
            services: services, connections: ConnectionLimits(maxPerSource: 2, idleTimeout: .milliseconds(400)))
        let address = try await endpoint.start(host: "127.0.0.1", port: 0)
        var channels: [Channel] = []
        for _ in 0..<3 { channels.append(try await silentConnection(to: address, from: "127.0.0.78")) }
        let oneRefused = await eventually {
            endpoint.droppedConnections >= 1 && channels.filter { !$0.isActive }.count >= 1
        }
        #expect(oneRefused, "the endpoint did not refuse the third connection from one source")
        let idleClosed = await eventually { channels.allSatisfy { !$0.isActive } }
        #expect(idleClosed, "idle connections stayed open")
        #expect(endpoint.droppedConnections == 3, "one refused and two idle")
        // Another source is served.
        let client = Client(nodes: [address])
        #expect(try await client.send([5, 6], service: "Echo") == [5, 6])
        await client.shutdown()
        await endpoint.shutdown()
    }
}
