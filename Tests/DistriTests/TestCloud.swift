import Distri
import DistriTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Starts `count` real nodes on OS-chosen loopback ports, runs `body`, and shuts them down. With
/// `clustered`, every node joins through the first one (probing patiently, so a machine busy with
/// parallel tests does not suspect healthy nodes) and `body` runs once all see each other alive.
func withCloud<T>(
    nodes count: Int,
    clustered: Bool = false,
    insecure: Bool = false,
    configure: (inout CloudNodeConfiguration) -> Void = { _ in },
    setUp: (CloudNode) -> Void = { _ in },
    _ body: ([CloudNode], [NodeAddress]) async throws -> T
) async throws -> T {
    var nodes: [CloudNode] = []
    var addresses: [NodeAddress] = []
    for _ in 0..<count {
        var configuration = CloudNodeConfiguration()
        if clustered {
            configuration.seeds = Array(addresses.prefix(1))
            configuration.cluster = .patient
        }
        configure(&configuration)
        if !insecure, configuration.tls == nil {
            configuration.tls = try TestTLS.authority.nodeTLS(name: configuration.nodeID)
        }
        let node = CloudNode(configuration: configuration)
        setUp(node)
        addresses.append(try await node.start())
        nodes.append(node)
    }
    if clustered {
        let ids = Set(nodes.map(\.id))
        // Generous: the whole suite runs in parallel on two cores, and the wait ends at convergence.
        let converged = await eventually(timeout: .seconds(30)) {
            nodes.allSatisfy { node in Set(node.stats().members.filter { $0.status == "alive" }.map(\.id)) == ids }
        }
        #expect(converged, "the test cluster did not converge")
    }
    do {
        let result = try await body(nodes, addresses)
        for node in nodes { await node.shutdown() }
        return result
    } catch {
        for node in nodes { await node.shutdown() }
        throw error
    }
}

/// A port on loopback that nothing listens on: bound, then closed again.
func unusedLoopbackAddress() async throws -> NodeAddress {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .bind(host: "127.0.0.1", port: 0).get()
    let port = channel.localAddress!.port!
    try await channel.close()
    return NodeAddress(host: "127.0.0.1", port: port)
}

/// Sends raw bytes to `address` and collects everything the other side sends until it closes the
/// connection, a whole frame has arrived when `untilFrame` is set, or `timeout` passes. Over TLS
/// trusting ``TestTLS/authority`` unless `plain`.
func rawExchange(
    _ bytes: ByteBuffer, with address: NodeAddress, closeAfterWrite: Bool = false, untilFrame: Bool = false,
    timeout: TimeAmount = .seconds(10), plain: Bool = false
)
    async throws -> (received: ByteBuffer, closedByPeer: Bool)
{
    let collector = RawCollector(closeOnFrame: untilFrame)
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                if !plain {
                    try channel.pipeline.syncOperations.addHandler(try TestTLS.authority.clientTLS.makeClientHandler())
                }
                try channel.pipeline.syncOperations.addHandler(collector)
            }
        }
        .connect(host: address.host, port: address.port).get()
    try await channel.writeAndFlush(bytes)
    if closeAfterWrite { try? await channel.close() }
    let timer = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    try? await channel.closeFuture.get()
    timer.cancel()
    return (
        collector.received.withLockedValue { $0 },
        collector.closedByPeer.withLockedValue { $0 } && !closeAfterWrite
    )
}

final class RawCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let received = NIOLockedValueBox(ByteBuffer())
    let closedByPeer = NIOLockedValueBox(false)
    let closeOnFrame: Bool

    init(closeOnFrame: Bool = false) {
        self.closeOnFrame = closeOnFrame
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        let all = received.withLockedValue { buffer -> ByteBuffer in
            buffer.writeBuffer(&chunk)
            return buffer
        }
        // A whole frame: the 18-byte header and the payload length it announces.
        if closeOnFrame, let length = all.getInteger(at: all.readerIndex + 14, as: UInt32.self),
            all.readableBytes >= 18 + Int(length)
        {
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closedByPeer.withLockedValue { $0 = true } as Void
        context.fireChannelInactive()
    }
}

/// An async gate tests open when they choose: services wait on it.
final class Gate: Sendable {
    private let state = NIOLockedValueBox<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>(
        (false, []))

    func wait() async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLockedValue { state -> Bool in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    var waiting: Int { state.withLockedValue { $0.waiters.count } }

    func open() {
        let waiters = state.withLockedValue { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
