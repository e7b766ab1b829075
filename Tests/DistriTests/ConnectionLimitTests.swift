import Distri
import DistriTestSupport
import DistriWire
import NIOCore
import NIOPosix
import Testing

/// A raw TCP connection to a node that the test drives byte by byte.
/// From `source` (another loopback address) when given, so the node's own connections do not count.
private func rawConnection(to address: NodeAddress, from source: String? = nil) async throws -> (Channel, RawCollector)
{
    let collector = RawCollector()
    var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
    if let source { bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: source, port: 0)) }
    let channel =
        try await bootstrap
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(try TestTLS.authority.clientTLS.makeClientHandler())
                try channel.pipeline.syncOperations.addHandler(collector)
            }
        }
        .connect(host: address.host, port: address.port).get()
    return (channel, collector)
}

/// Waits until the node closes `channel` (true), or `timeout` passes (false).
private func closedByNode(_ channel: Channel, within timeout: TimeAmount) async -> Bool {
    let timer = channel.eventLoop.scheduleTask(in: timeout) {}
    let closed = channel.eventLoop.makePromise(of: Bool.self)
    channel.closeFuture.whenComplete { _ in closed.succeed(true) }
    timer.futureResult.whenComplete { _ in closed.succeed(false) }
    return (try? await closed.futureResult.get()) ?? false
}

@Suite struct ConnectionLimitTests {
    @Test("a slow-drip client is dropped while others are served, and the drop is counted")
    func slowDrip() async throws {
        try await withCloud(
            nodes: 1,
            configure: {
                $0.connections = ConnectionLimits(slowRequestTimeout: .seconds(1), minBytesPerSecond: 1024)
            }
        ) { nodes, addresses in
            // The normal client is connected first, so the drip's window is spent serving it.
            let client = Client(nodes: addresses, configuration: .tls)
            #expect(try await client.send([0], service: BuiltinServices.echo) == [0])
            let (channel, _) = try await rawConnection(to: addresses[0])
            var header = ByteBuffer()
            FrameHeader(kind: .request, flags: .endOfMessage, requestID: 1, payloadLength: 4_000).write(to: &header)
            try await channel.writeAndFlush(header)
            // One byte every 50 ms (20 B/s) while the normal client keeps calling.
            var served = 0
            var rounds = 0
            for round in 0..<100 where channel.isActive {
                rounds += 1
                try? await channel.writeAndFlush(ByteBuffer(bytes: [UInt8(round & 0xFF)]))
                if try await client.send([1, 2, 3], service: BuiltinServices.echo) == [1, 2, 3] { served += 1 }
                try await Task.sleep(for: .milliseconds(50))  // the drip's pace, not synchronisation
            }
            #expect(await closedByNode(channel, within: .seconds(5)), "the slow client was not dropped")
            #expect(served > 0 && served == rounds, "every call during the drip is served: \(served) of \(rounds)")
            #expect(try await client.send([4], service: BuiltinServices.echo) == [4])
            #expect(nodes[0].stats().slowConnectionsDropped == 1)
            await client.shutdown()
        }
    }

    @Test("a source may hold only so many connections; more are closed at accept and counted")
    func perSourceLimit() async throws {
        try await withCloud(nodes: 1, configure: { $0.connections.maxPerSource = 3 }) { nodes, addresses in
            // Four connections from one source; the node accepts three (accepts race across event
            // loops, so which one is refused is not fixed) and closes the fourth.
            var channels: [Channel] = []
            for _ in 0..<4 { channels.append(try await rawConnection(to: addresses[0], from: "127.0.0.77").0) }
            let oneRefused = await eventually {
                nodes[0].stats().rejectedConnections == 1 && channels.filter { !$0.isActive }.count == 1
            }
            #expect(oneRefused, "the node did not refuse exactly one of the four connections")
            #expect(channels.filter { $0.isActive }.count == 3)
            for channel in channels where channel.isActive { try? await channel.close() }
            // Other sources are not affected.
            let client = Client(nodes: addresses, configuration: .tls)
            #expect(try await client.send([7], service: BuiltinServices.echo) == [7])
            #expect(nodes[0].stats().rejectedConnections == 1, "another source was refused too")
            await client.shutdown()
        }
    }

    @Test("a connection with no traffic is closed after the idle timeout, and counted")
    func idle() async throws {
        try await withCloud(nodes: 1, configure: { $0.connections.idleTimeout = .milliseconds(300) }) {
            nodes, addresses in
            let (channel, _) = try await rawConnection(to: addresses[0])
            #expect(await closedByNode(channel, within: .seconds(5)), "the idle connection stayed open")
            #expect(nodes[0].stats().idleConnectionsClosed >= 1)
        }
    }
}
