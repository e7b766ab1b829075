import Distri
import DistriCore
import DistriImaging
import DistriTestSupport
import DistriWire
import Foundation
import NIOCore
import Testing

@Suite(.serialized) struct EncryptStreamServiceTests {
    /// `EncryptOpen` for `size` bytes: the session, the node and the key.
    private func open(_ client: Client, size: Int, density: Int = 4) async throws -> (String, NodeAddress, ImageKey) {
        let reply = try await client.send(
            [], service: EncryptStreamService.open, params: ["size=\(size)", "density=\(density)"])
        let object = try #require(try JSONParser.parse(reply).objectValue)
        return (
            try #require(object["session"]?.stringValue),
            try #require(object["node"]?.stringValue.flatMap { NodeAddress($0) }),
            try ImageKey(text: try #require(object["key"]?.stringValue))
        )
    }

    private func chunk(_ client: Client, _ session: String, _ node: NodeAddress, offset: Int, _ bytes: [UInt8])
        async throws
        -> [UInt8]
    {
        Array(
            buffer: try await client.call(
                ByteBuffer(bytes: bytes), service: EncryptStreamService.chunk,
                params: ["session=\(session)", "offset=\(offset)"], node: node, routing: .local
            ).get())
    }

    @Test(
        "a file streamed in chunks to the node that opened the session comes back as a cover that opens to it; offsets in order only; bad sessions, a chunk too large, a first chunk without the envelope and a fifth session are refused"
    )
    func streamsAndRefuses() async throws {
        try await withCloud(nodes: 1) { _, addresses in
            let client = Client(nodes: addresses, configuration: .tls)
            defer { Task { await client.shutdown() } }
            let content = SealedContent(
                kind: .file, name: "notes.txt", mediaType: "text/plain", bytes: Array(repeating: 42, count: 300_000))
            let envelope = content.encoded()
            let (session, node, key) = try await open(client, size: envelope.count)
            var png: [UInt8] = []
            var offset = 0
            for piece in stride(from: 0, to: envelope.count, by: 100_000) {
                let bytes = Array(envelope[piece..<min(envelope.count, piece + 100_000)])
                if offset > 0 {
                    #expect(
                        await remoteCode { _ = try await chunk(client, session, node, offset: offset + 1, bytes) }
                            == .conflict)
                }
                png += try await chunk(client, session, node, offset: offset, bytes)
                offset += bytes.count
            }
            #expect(try ImageSealer.open(png: png, key: key) == content)
            // The session ended with its last chunk.
            #expect(await remoteCode { _ = try await chunk(client, session, node, offset: offset, [1]) } == .notFound)

            let (other, _, _) = try await open(client, size: 10)
            #expect(
                await remoteCode {
                    _ = try await chunk(client, other, node, offset: 0, Array("not an envelope".prefix(10).utf8))
                } == .badParams)
            let (big, _, _) = try await open(client, size: 8 << 20)
            #expect(
                await remoteCode {
                    _ = try await chunk(client, big, node, offset: 0, [UInt8](repeating: 0, count: (4 << 20) + 1))
                } == .tooLarge)
            #expect(await remoteCode { _ = try await self.open(client, size: 2 << 30) } == .tooLarge)
            #expect(await remoteCode { _ = try await self.open(client, size: 10, density: 3) } == .badParams)
            // Sessions: `other` ended with its refused first chunk; `big` and three more make four, and a
            // fifth is refused while they are open.
            for _ in 0..<3 { _ = try await open(client, size: 10) }
            #expect(await remoteCode { _ = try await self.open(client, size: 10) } == .busy)
        }
    }
}
