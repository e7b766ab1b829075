import Distri
import DistriTestSupport
import DistriWire
import NIOCore
import Testing

@Suite struct BadInputTests {
    /// Decodes the error reply a node sends before closing a connection.
    private func errorReply(in bytes: ByteBuffer) throws -> WireErrorReply {
        var buffer = bytes
        var decoder = MessageDecoder()
        let message = try #require(try decoder.next(from: &buffer))
        #expect(message.kind == .error)
        return try WireErrorReply.decode(message.payload)
    }

    @Test("bad input gets a clear error and the node keeps serving other clients")
    func badInputs() async throws {
        try await withCloud(nodes: 1) { nodes, addresses in
            let address = addresses[0]
            let client = Client(nodes: addresses, configuration: .tls)
            let echoed = try await client.send([1], service: BuiltinServices.echo)
            #expect(echoed == [1])

            // Oversized frame: refused from the header alone.
            var oversized = ByteBuffer()
            FrameHeader(kind: .request, flags: .endOfMessage, requestID: 3, payloadLength: 200 << 20)
                .write(to: &oversized)
            let tooLarge = try await rawExchange(oversized, with: address)
            #expect(tooLarge.closedByPeer)
            let tooLargeReply = try errorReply(in: tooLarge.received)
            #expect(tooLargeReply.code == .tooLarge)
            #expect(tooLargeReply.message.contains("exceeds the limit"))

            // Wrong magic: an HTTP request sent to the node port.
            let http = try await rawExchange(
                ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\n\r\n"), with: address)
            #expect(http.closedByPeer)
            #expect(try errorReply(in: http.received).message.contains("bad magic"))

            // Random bytes.
            var generator = SystemRandomNumberGenerator()
            let noise = ByteBuffer(
                bytes: (0..<512).map { _ in UInt8.random(in: 0...255, using: &generator) })
            let random = try await rawExchange(noise, with: address)
            #expect(random.closedByPeer)

            // A valid header with a malformed request inside.
            var malformed = ByteBuffer()
            FrameHeader(kind: .request, flags: .endOfMessage, requestID: 8, payloadLength: 3).write(
                to: &malformed)
            malformed.writeBytes([0, 0, 0])
            let bad = try await rawExchange(malformed, with: address, untilFrame: true)
            let badReply = try errorReply(in: bad.received)
            #expect(badReply.code == .malformed)

            // A truncated frame: the client goes away mid-frame.
            var truncated = ByteBuffer()
            FrameHeader(kind: .request, flags: .endOfMessage, requestID: 9, payloadLength: 100).write(
                to: &truncated)
            truncated.writeBytes([1, 2, 3])
            _ = try await rawExchange(truncated, with: address, closeAfterWrite: true)

            // The node still serves its well-behaved client, on the same connection as before.
            for i in 0..<100 {
                let echoed = try await client.send([UInt8(i)], service: BuiltinServices.echo)
                #expect(echoed == [UInt8(i)])
            }
            #expect(nodes[0].stats().failed >= 4)
            await client.shutdown()
        }
    }

    @Test("a request larger than the client's limit fails before it is sent")
    func clientSideLimit() async throws {
        try await withCloud(nodes: 1) { _, addresses in
            let client = Client(
                nodes: addresses,
                configuration: ClientConfiguration(
                    limits: WireLimits(maxMessageSize: 1000), tls: TestTLS.authority.clientTLS))
            await #expect {
                _ = try await client.send([UInt8](repeating: 0, count: 2000), service: BuiltinServices.echo)
            } throws: { ($0 as? ClientError)?.kind == .tooLarge }
            await client.shutdown()
        }
    }

    @Test("a payload over the node's limit is refused with tooLarge and the node keeps serving")
    func nodeSideLimit() async throws {
        try await withCloud(
            nodes: 1,
            configure: {
                $0.limits = WireLimits(maxFramePayload: 4096, chunkSize: 4096, maxMessageSize: 10_000)
            }
        ) { _, addresses in
            let big = Client(nodes: addresses, configuration: .tls)
            await #expect {
                _ = try await big.send([UInt8](repeating: 0, count: 50_000), service: BuiltinServices.echo)
            } throws: { error in
                let error = error as? ClientError
                return error?.remoteCode == .tooLarge || error?.kind == .connectionLost
            }
            await big.shutdown()
            let small = Client(nodes: addresses, configuration: .tls)
            let echoed = try await small.send([1, 2, 3], service: BuiltinServices.echo)
            #expect(echoed == [1, 2, 3])
            await small.shutdown()
        }
    }
}
