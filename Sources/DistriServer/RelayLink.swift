import DistriClient
import DistriCore
import DistriWire
import Logging
import NIOCore
import NIOPosix

/// A peer daemon's relay link: one outbound connection to a cloud node, attached with `RelayAttach`,
/// over which the node calls the daemon's services (its ``PeerEndpoint``'s registry: `Deliver` chunks
/// that other peers relay) and the daemon can call the node (a heartbeat, so a node that vanished
/// without closing the connection is noticed). See `RelayServices`.
public final class RelayLink: Sendable {
    /// The node the link is attached to.
    public let node: NodeAddress
    private let channel: Channel
    private let handler: NIOLoopBound<ClientHandler>

    private init(node: NodeAddress, channel: Channel, handler: NIOLoopBound<ClientHandler>) {
        self.node = node
        self.channel = channel
        self.handler = handler
    }

    /// Completes when the connection closes.
    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    /// Calls `service` on the node over the link.
    public func call(_ service: String, data: [UInt8] = [], params: [String] = [], timeout: TimeAmount) async throws
        -> [UInt8]
    {
        let handler = self.handler
        let loop = channel.eventLoop
        let request = WireRequest(
            service: service, params: params, deadlineMillis: UInt32(clamping: timeout.nanoseconds / 1_000_000),
            routing: .local, taskID: 0, data: ByteBuffer(bytes: data))
        let reply = try await loop.flatSubmit {
            let promise = loop.makePromise(of: ByteBuffer.self)
            handler.value.send(request, timeout: timeout, promise: promise)
            return promise.futureResult
        }.get()
        return Array(buffer: reply)
    }

    /// Starts closing the connection, without waiting.
    public func closeNow() {
        channel.close(promise: nil)
    }

    /// Closes the connection.
    public func close() async {
        try? await channel.close()
    }

    /// Connects to `node` and attaches with `body` (`{"proof": ...}`); returns once the node accepted.
    package static func attach(
        to node: NodeAddress, dispatcher: RequestDispatcher, tls: ClusterTLS?, body: [UInt8], timeout: TimeAmount,
        group: EventLoopGroup, logger: Logger
    ) async throws -> RelayLink {
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(min(timeout, .seconds(2)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: .init(low: 256 << 10, high: 1 << 20))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(try tls.makeClientHandler()) }
                    try channel.pipeline.syncOperations.addHandlers(
                        FramingHandler(limits: .standard),
                        ServerHandler(dispatcher: dispatcher, logger: logger, passesReplies: true),
                        ClientHandler(node: node))
                }
            }
            .connect(host: node.host, port: node.port)
            .flatMapErrorThrowing { error in throw ClientError(.connectFailed, node: node, message: "\(error)") }
            .get()
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(
                try channel.pipeline.syncOperations.handler(type: ClientHandler.self), eventLoop: channel.eventLoop)
        }.get()
        let link = RelayLink(node: node, channel: channel, handler: handler)
        do {
            _ = try await link.call(RelayAttachService.name, data: body, timeout: timeout)
        } catch {
            await link.close()
            throw error
        }
        return link
    }
}

extension PeerEndpoint {
    /// Opens a relay link to `node` serving this endpoint's services, attached with `body`
    /// (`{"proof": PeerProof}` of purpose `relay`).
    public func attachRelay(to node: NodeAddress, tls: ClusterTLS?, body: [UInt8], timeout: TimeAmount = .seconds(5))
        async throws -> RelayLink
    {
        try await RelayLink.attach(
            to: node, dispatcher: dispatcher, tls: tls, body: body, timeout: timeout, group: group, logger: logger)
    }
}
