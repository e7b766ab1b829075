import DistriCore
import DistriWire
import NIOCore
import Testing

/// Builds the wire bytes of a sequence of messages, chunked by an encoder.
private func encode(_ messages: [WireMessage], limits: WireLimits) -> ByteBuffer {
    var encoder = MessageEncoder(limits: limits)
    for message in messages { encoder.enqueue(message) }
    var out = ByteBuffer()
    while var frame = encoder.nextFrame(allocator: ByteBufferAllocator()) { out.writeBuffer(&frame) }
    return out
}

/// Feeds `bytes` to a fresh decoder in the given chunk sizes and collects the messages.
private func decode(_ bytes: ByteBuffer, chunks: [Int], limits: WireLimits) throws -> [WireMessage] {
    var decoder = MessageDecoder(limits: limits)
    var pending = ByteBuffer()
    var source = bytes
    var messages: [WireMessage] = []
    var index = 0
    while source.readableBytes > 0 {
        let size = min(chunks[index % chunks.count], source.readableBytes)
        index += 1
        var chunk = source.readSlice(length: size)!
        pending.writeBuffer(&chunk)
        while let message = try decoder.next(from: &pending) { messages.append(message) }
    }
    try decoder.finish(leftover: pending)
    return messages
}

private func sampleMessages() -> [WireMessage] {
    var big = ByteBuffer()
    for i in 0..<10_000 { big.writeInteger(UInt8(truncatingIfNeeded: i * 7)) }
    return [
        WireMessage(kind: .request, requestID: 1, payload: ByteBuffer(string: "hello")),
        WireMessage(kind: .response, requestID: 2, payload: big),
        WireMessage(kind: .error, requestID: 3, payload: ByteBuffer()),
        WireMessage(
            kind: .request, requestID: UInt64.max,
            payload: ByteBuffer(string: String(repeating: "x", count: 3000))),
    ]
}

@Suite struct MessageDecoderTests {
    let limits = WireLimits(maxFramePayload: 4096, chunkSize: 1000, maxMessageSize: 1 << 20)

    @Test("the same bytes decode alike whole, in halves, byte by byte and in random chunks")
    func rechunking() throws {
        let messages = sampleMessages()
        let bytes = encode(messages, limits: limits)
        var generator = SplitMix64(seed: 42)
        let chunkings: [[Int]] = [
            [bytes.readableBytes], [bytes.readableBytes / 2 + 1], [1], [2, 3, 5, 7, 11],
            (0..<50).map { _ in Int.random(in: 1...300, using: &generator) },
        ]
        for chunks in chunkings {
            let decoded = try decode(bytes, chunks: chunks, limits: limits)
            // Frames interleave, so messages complete in order of their last frame; compare by id.
            let byID = Dictionary(uniqueKeysWithValues: decoded.map { ($0.requestID, $0) })
            #expect(decoded.count == messages.count)
            for message in messages {
                let got = try #require(byID[message.requestID])
                #expect(got.kind == message.kind)
                #expect(got.payload == message.payload)
            }
        }
    }

    @Test("a large message is cut into frames that interleave with small ones")
    func interleaving() throws {
        var encoder = MessageEncoder(limits: limits)
        encoder.enqueue(
            WireMessage(kind: .response, requestID: 1, payload: ByteBuffer(repeating: 1, count: 5000)))
        encoder.enqueue(
            WireMessage(kind: .response, requestID: 2, payload: ByteBuffer(string: "small")))
        var decoder = MessageDecoder(limits: limits)
        var completed: [UInt64] = []
        while var frame = encoder.nextFrame(allocator: ByteBufferAllocator()) {
            var buffer = ByteBuffer()
            buffer.writeBuffer(&frame)
            while let message = try decoder.next(from: &buffer) { completed.append(message.requestID) }
        }
        #expect(completed == [2, 1])
    }

    @Test("a wrong magic is refused")
    func badMagic() throws {
        var bytes = encode(sampleMessages(), limits: limits)
        bytes.setInteger(UInt16(0x4745), at: 0)  // "GE", as in an HTTP GET
        #expect(throws: WireError.badMagic(found: 0x4745)) {
            try decode(bytes, chunks: [7], limits: limits)
        }
    }

    @Test("an unsupported version, unknown kind or reserved bit is refused")
    func badHeaderFields() throws {
        let bytes = encode(
            [WireMessage(kind: .request, requestID: 9, payload: ByteBuffer(string: "x"))], limits: limits)
        var version = bytes
        version.setInteger(UInt8(2), at: 2)
        #expect(throws: WireError.unsupportedVersion(2)) {
            try decode(version, chunks: [100], limits: limits)
        }
        var kind = bytes
        kind.setInteger(UInt8(77), at: 3)
        #expect(throws: WireError.unknownKind(77, requestID: 9)) {
            try decode(kind, chunks: [100], limits: limits)
        }
        var flags = bytes
        flags.setInteger(UInt8(0x81), at: 4)
        #expect(throws: WireError.reservedBitsSet(requestID: 9)) {
            try decode(flags, chunks: [100], limits: limits)
        }
    }

    @Test("an oversized frame is refused from its header alone")
    func oversizedFrame() throws {
        var bytes = ByteBuffer()
        FrameHeader(kind: .request, flags: .endOfMessage, requestID: 5, payloadLength: 1 << 30).write(
            to: &bytes)
        #expect(throws: WireError.frameTooLarge(length: 1 << 30, limit: 4096, requestID: 5)) {
            try decode(bytes, chunks: [100], limits: limits)
        }
    }

    @Test("a message over the size limit is refused while it arrives")
    func oversizedMessage() throws {
        let small = WireLimits(maxFramePayload: 1000, chunkSize: 1000, maxMessageSize: 2500)
        let bytes = encode(
            [WireMessage(kind: .request, requestID: 4, payload: ByteBuffer(repeating: 0, count: 4000))],
            limits: small)
        #expect(throws: WireError.messageTooLarge(size: 3000, limit: 2500, requestID: 4)) {
            try decode(bytes, chunks: [333], limits: small)
        }
    }

    @Test("a stream that ends inside a frame is reported as truncated")
    func truncated() throws {
        let bytes = encode(sampleMessages(), limits: limits)
        let cut = bytes.getSlice(at: 0, length: bytes.readableBytes - 3)!
        #expect(throws: WireError.self) { try decode(cut, chunks: [64], limits: limits) }
        let headerOnly = bytes.getSlice(at: 0, length: 10)!
        #expect(throws: WireError.truncatedFrame(bufferedBytes: 10)) {
            try decode(headerOnly, chunks: [3], limits: limits)
        }
    }

    @Test("random and mutated bytes never crash the decoder")
    func fuzz() throws {
        var generator = SplitMix64(seed: 7)
        let valid = encode(sampleMessages(), limits: limits)
        for round in 0..<2000 {
            var bytes: ByteBuffer
            if round % 2 == 0 {
                let count = Int.random(in: 0...200, using: &generator)
                bytes = ByteBuffer(
                    bytes: (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) })
            } else {
                bytes = valid
                for _ in 0..<Int.random(in: 1...4, using: &generator) {
                    let at = Int.random(in: 0..<bytes.readableBytes, using: &generator)
                    bytes.setInteger(UInt8.random(in: 0...255, using: &generator), at: at)
                }
            }
            let chunk = Int.random(in: 1...64, using: &generator)
            do {
                let messages = try decode(bytes, chunks: [chunk], limits: limits)
                for message in messages where message.kind == .request {
                    _ = try? WireRequest.decode(message.payload)
                }
            } catch is WireError {
                // A clear error is the expected outcome for most inputs.
            }
        }
    }
}
