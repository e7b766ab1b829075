import NIOCore
import NIOPosix

/// A plain TCP echo server and client on loopback: the floor any request/response protocol on this
/// machine is measured against.
enum LoopbackEcho {
    /// Echoes every byte back, flushing once per read burst.
    final class EchoHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.write(data, promise: nil)
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            context.flush()
        }
    }

    /// One client connection that sends `size` bytes per call and completes the call when `size`
    /// bytes came back.
    final class Caller: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        let payload: ByteBuffer
        private var context: ChannelHandlerContext?
        private var remaining = 0
        private var done: ((Bool) -> Void)?

        init(size: Int) { payload = ByteBuffer(repeating: 0x61, count: size) }

        func handlerAdded(context: ChannelHandlerContext) { self.context = context }

        func call(_ done: @escaping (Bool) -> Void) {
            guard let context else { return done(false) }
            self.done = done
            remaining = payload.readableBytes
            context.writeAndFlush(wrapOutboundOut(payload), promise: nil)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            remaining -= unwrapInboundIn(data).readableBytes
            if remaining <= 0, let done {
                self.done = nil
                done(true)
            }
        }
    }

    /// Measures `calls` echo round trips of `size` bytes over `concurrency` connections.
    static func measure(calls: Int, concurrency: Int, size: Int, group: EventLoopGroup) async throws -> LoadResult {
        let server = try await ServerBootstrap(group: group)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EchoHandler()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = server.localAddress?.port ?? 0
        let loop = group.next()
        var channels: [Channel] = []
        for _ in 0..<concurrency {
            channels.append(
                try await ClientBootstrap(group: loop)
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(Caller(size: size))
                        }
                    }
                    .connect(host: "127.0.0.1", port: port).get())
        }
        let allChannels = channels
        let callers = try await loop.submit {
            NIOLoopBound(
                try allChannels.map { try $0.pipeline.syncOperations.handler(type: Caller.self) }, eventLoop: loop)
        }.get()
        let idle = try await loop.submit { NIOLoopBoundBox(Array(0..<concurrency), eventLoop: loop) }.get()
        let result = try await LoadDriver.run(
            name: "loopback echo", loop: loop, total: calls, concurrency: concurrency
        ) { done in
            let index = idle.value.removeLast()
            callers.value[index].call { ok in
                idle.value.append(index)
                done(ok)
            }
        }
        for channel in channels { try? await channel.close() }
        try? await server.close()
        return result
    }
}
