import DistriImaging
import DistriTestSupport
import DistriWire
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import Distri

/// Swallows the channel's reads once paused: a client that stops reading its replies.
private final class ReadGate: ChannelOutboundHandler, Sendable {
    typealias OutboundIn = Any
    let paused = NIOLockedValueBox(false)

    func read(context: ChannelHandlerContext) {
        if !paused.withLockedValue({ $0 }) { context.read() }
    }
}

/// A raw connection to a node over TLS (or plain TCP when `plain`, for a handshake that never
/// starts), collecting what the node sends.
private func connect(
    to address: NodeAddress, plain: Bool = false, gate: ReadGate? = nil
) async throws -> (Channel, RawCollector) {
    let collector = RawCollector()
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                if let gate { try channel.pipeline.syncOperations.addHandler(gate) }
                if !plain {
                    try channel.pipeline.syncOperations.addHandler(try TestTLS.authority.clientTLS.makeClientHandler())
                }
                try channel.pipeline.syncOperations.addHandler(collector)
            }
        }
        .connect(host: address.host, port: address.port).get()
    return (channel, collector)
}

/// Sends `bytes` of a request that never ends (frames without the end-of-message flag), 256 KiB a
/// frame; stops early when the node closes the connection.
private func sendUnfinished(_ bytes: Int, on channel: Channel, requestID: UInt64 = 1) async {
    let chunk = 256 << 10
    let payload = ByteBuffer(repeating: 0x5A, count: chunk)
    for _ in 0..<(bytes / chunk) where channel.isActive {
        var frame = ByteBuffer()
        FrameHeader(kind: .request, flags: [], requestID: requestID, payloadLength: UInt32(chunk)).write(to: &frame)
        frame.writeImmutableBuffer(payload)
        do { try await channel.writeAndFlush(frame) } catch { return }
    }
}

/// The error replies in what a node sent.
private func errorReplies(in bytes: ByteBuffer) -> [WireErrorReply] {
    var buffer = bytes
    var decoder = MessageDecoder()
    var replies: [WireErrorReply] = []
    // Bounded: each pass consumes a whole message from the finite buffer, or the loop ends.
    while let message = try? decoder.next(from: &buffer) {
        if message.kind == .error, let reply = try? WireErrorReply.decode(message.payload) { replies.append(reply) }
    }
    return replies
}

@Suite(.serialized) struct ResourceLimitTests {
    @Test("a budget reserves up to its capacity, across threads, and never beyond")
    func budget() async {
        let budget = ResourceBudget(capacity: 1000)
        #expect(budget.reserve(600))
        #expect(!budget.reserve(401))
        #expect(budget.reserve(400))
        #expect(budget.reserved == 1000 && budget.refusals == 1)
        budget.release(1000)
        // 8 tasks racing for 100 slots of 10: exactly as many granted as fit.
        let granted = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask { (0..<100).reduce(0) { count, _ in count + (budget.reserve(10) ? 1 : 0) } }
            }
            return await group.reduce(0, +)
        }
        #expect(granted <= 100 && budget.reserved == granted * 10)
    }

    @Test("incomplete messages share one node-wide budget: the connection that would pass it gets busy and is closed")
    func bufferedBytesAcrossConnections() async throws {
        try await withCloud(nodes: 1, configure: { $0.resources.bufferedBytes = 3 << 20 }) { nodes, addresses in
            let node = nodes[0]
            let client = Client(nodes: addresses, configuration: .tls)
            #expect(try await client.send([1], service: BuiltinServices.echo) == [1])

            // The first connection holds 2 MiB of a message it does not finish: within the budget.
            let (first, _) = try await connect(to: addresses[0])
            await sendUnfinished(2 << 20, on: first)
            #expect(await eventually { node.bufferedBytes >= 2 << 20 }, "held: \(node.bufferedBytes)")
            // A second connection's 2 MiB would take the node past 3 MiB: busy, and closed.
            let (second, secondReplies) = try await connect(to: addresses[0])
            await sendUnfinished(2 << 20, on: second)
            try? await second.closeFuture.get()
            let replies = errorReplies(in: secondReplies.received.withLockedValue { $0 })
            #expect(replies.map(\.code) == [.busy], "\(replies)")
            #expect(replies.first?.message.contains("buffer for incomplete messages") == true)
            #expect(node.bufferFullRefusals == 1)
            #expect(first.isActive, "the connection within the budget stays open")
            // Small calls still go through.
            #expect(try await client.send([2], service: BuiltinServices.echo) == [2])
            // Closing the first gives its bytes back; another connection may hold them again.
            try await first.close()
            #expect(await eventually { node.bufferedBytes < 1 << 20 }, "still held: \(node.bufferedBytes)")
            let (third, _) = try await connect(to: addresses[0])
            await sendUnfinished(2 << 20, on: third)
            #expect(await eventually { node.bufferedBytes >= 2 << 20 })
            #expect(third.isActive && node.bufferFullRefusals == 1)
            try await third.close()
            #expect(await eventually { node.bufferedBytes < 1 << 20 })
            await client.shutdown()
        }
    }

    @Test("replies queued for a reader that stops reading count against the budget; past it the connection is closed")
    func replyBacklog() async throws {
        try await withCloud(nodes: 1, configure: { $0.resources.bufferedBytes = 2 << 20 }) { nodes, addresses in
            let node = nodes[0]
            let gate = ReadGate()
            let (channel, _) = try await connect(to: addresses[0], gate: gate)
            // One call read normally (the handshake and a reply), then the reader stops reading.
            let request = WireRequest(service: BuiltinServices.echo, data: ByteBuffer(bytes: [1]))
            let ping = MessageEncoder.frame(
                kind: .request, requestID: 1, payload: request.encode(allocator: ByteBufferAllocator()), isLast: true,
                allocator: ByteBufferAllocator())
            try await channel.writeAndFlush(ping)
            gate.paused.withLockedValue { $0 = true }
            // 64 echoes of 512 KiB: 32 MiB of replies, far more than the sockets' buffers hold.
            var encoder = MessageEncoder()
            let big = WireRequest(service: BuiltinServices.echo, data: ByteBuffer(repeating: 7, count: 512 << 10))
            for id in 2..<66 {
                encoder.enqueue(
                    WireMessage(
                        kind: .request, requestID: UInt64(id), payload: big.encode(allocator: ByteBufferAllocator())))
            }
            // Bounded: the encoder holds a finite number of frames.
            while let frame = encoder.nextFrame(allocator: ByteBufferAllocator()), channel.isActive {
                do { try await channel.writeAndFlush(frame) } catch { break }
            }
            #expect(await eventually(timeout: .seconds(20)) { node.bufferFullRefusals == 1 }, "never refused")
            #expect(await eventually { node.bufferedBytes == 0 }, "still held: \(node.bufferedBytes)")
            try? await channel.close()
            // Others are served.
            let client = Client(nodes: addresses, configuration: .tls)
            #expect(try await client.send([3], service: BuiltinServices.echo) == [3])
            await client.shutdown()
        }
    }

    @Test("every parameter has a size limit, the `if` condition included, and so have all together")
    func parameterSizes() async throws {
        try await withCloud(nodes: 1) { _, addresses in
            let client = Client(nodes: addresses, configuration: .tls)
            let db = DocumentDatabase(client: client)
            try await db.createCollection("limits")
            let id = try await db.add(["n": 1], to: "limits")
            // A 25 MB `$in` list in the condition.
            let list = String(repeating: "1,", count: 12_500_000) + "1"
            var code: ErrorCode?
            var message = ""
            do {
                _ = try await client.send(
                    Array(#"{"n":2}"#.utf8), service: "UpdateDocument",
                    params: ["limits", id, #"if={"n":{"$in":["# + list + "]}}"])
            } catch let error as ClientError {
                (code, message) = (error.remoteCode, error.message)
            }
            #expect(code == .badParams)
            #expect(
                message.contains("parameter 3 (if) has 250000") && message.contains("the limit is 65536"), "\(message)")
            // Five parameters of 60 KiB: each within its limit, 300 KiB together.
            let params = (0..<5).map { _ in String(repeating: "x", count: 60 << 10) }
            #expect(
                await remoteCode { _ = try await client.send([1], service: BuiltinServices.echo, params: params) }
                    == .badParams)
            // Nothing was written, and the node serves on.
            #expect(try await db.read("limits").documents.first?.body["n"] == .number(1))
            #expect(try await client.send([4], service: BuiltinServices.echo, params: ["ok"]) == [4])
            await client.shutdown()
        }
    }

    @Test("a connection that does not complete its TLS handshake in time is closed; one that did is not")
    func handshakeDeadline() async throws {
        try await withCloud(nodes: 1, configure: { $0.resources.handshakeTimeout = .milliseconds(500) }) {
            nodes, addresses in
            let client = Client(nodes: addresses, configuration: .tls)
            #expect(try await client.send([1], service: BuiltinServices.echo) == [1])
            // The first byte of a ClientHello, and nothing more.
            let (drip, _) = try await connect(to: addresses[0], plain: true)
            try await drip.writeAndFlush(ByteBuffer(bytes: [0x16]))
            let timer = drip.eventLoop.scheduleTask(in: .seconds(10)) { drip.close(promise: nil) }
            try? await drip.closeFuture.get()
            timer.cancel()
            #expect(nodes[0].stats().slowConnectionsDropped == 1, "the drip was not closed by the node")
            // The client's connection is older than the drip's deadline and still serves.
            #expect(try await client.send([2], service: BuiltinServices.echo) == [2])
            #expect(nodes[0].stats().slowConnectionsDropped == 1)
            await client.shutdown()
        }
    }

    @Test("Encrypt checks a cover's pixels from its header, and covers in flight share a node-wide pixel budget")
    func imagePixels() async throws {
        let image = try PNGCodec.encode(CoverGenerator.cover(width: 16, height: 16, seed: 1), settings: .default)
        let cover = try PNGCodec.encode(CoverGenerator.cover(width: 320, height: 240, seed: 2), settings: .default)
        func request(_ cover: [UInt8]) -> ServiceRequest {
            ServiceRequest(
                service: EncryptService.name, params: ["cover=\(cover.count)"], data: ByteBuffer(bytes: image + cover))
        }
        let limits = EncryptService.Limits(resources: ResourceLimits(maxImagePixels: 100_000))
        let budget = ResourceBudget(capacity: 200_000)
        _ = try EncryptService.encrypt(request(cover), limits: limits, pixels: budget)
        #expect(budget.reserved == 0, "the call gave its pixels back")
        // Held by other calls: this one would pass the budget, and is refused before decoding.
        #expect(budget.reserve(150_000))
        #expect(throws: ServiceError(.busy, "")) {
            do {
                _ = try EncryptService.encrypt(request(cover), limits: limits, pixels: budget)
            } catch let error as ServiceError {
                throw ServiceError(error.code, "")
            }
        }
        budget.release(150_000)
        #expect(budget.reserved == 0)

        // Over the per-image limit: tooLarge, from the header alone, on a real node.
        let wide = try PNGCodec.encode(CoverGenerator.cover(width: 400, height: 300, seed: 3), settings: .default)
        try await withCloud(nodes: 1, configure: { $0.resources.maxImagePixels = 100_000 }) { _, addresses in
            let client = Client(nodes: addresses, configuration: .tls)
            do {
                _ = try await ImageEncryptionClient(client: client).encrypt(image, cover: wide)
                Issue.record("a cover of 120,000 pixels was accepted")
            } catch let error as ClientError {
                #expect(error.remoteCode == .tooLarge)
                #expect(error.message.contains("the cover is 400x300 pixels"), "\(error.message)")
            }
            _ = try await ImageEncryptionClient(client: client).encrypt(image, cover: cover)
            await client.shutdown()
        }
    }
}
