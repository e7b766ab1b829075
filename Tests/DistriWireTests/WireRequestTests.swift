import DistriWire
import NIOCore
import Testing

@Suite struct WireRequestTests {
    @Test("a request round-trips with its params, deadline and data")
    func roundTrip() throws {
        let request = WireRequest(
            service: "AddDocument", params: ["catalog", "ünïcode", ""], deadlineMillis: 1500,
            routing: .local, taskID: 0xDEAD_BEEF,
            data: ByteBuffer(string: #"{"a":1}"#))
        let decoded = try WireRequest.decode(request.encode(allocator: ByteBufferAllocator()))
        #expect(decoded == request)
        #expect(request.encodedSize == request.encode(allocator: ByteBufferAllocator()).readableBytes)
    }

    @Test("every truncation of a request gives a clear error or a shorter data field, never a crash")
    func truncations() throws {
        let request = WireRequest(
            service: "Svc", params: ["p1", "p2"], deadlineMillis: 10, data: ByteBuffer(string: "data"))
        let bytes = request.encode(allocator: ByteBufferAllocator())
        let fixedPart = bytes.readableBytes - 4
        for length in 0..<bytes.readableBytes {
            let prefix = bytes.getSlice(at: 0, length: length)!
            if length < fixedPart {
                #expect(throws: WireError.self) { try WireRequest.decode(prefix) }
            } else {
                #expect(try WireRequest.decode(prefix).data.readableBytes == length - fixedPart)
            }
        }
    }

    @Test("an empty service name and invalid UTF-8 are refused")
    func invalidNames() throws {
        var empty = ByteBuffer()
        empty.writeInteger(UInt32(0))
        empty.writeInteger(UInt8(0))
        empty.writeInteger(UInt64(0))
        empty.writeInteger(UInt16(0))
        #expect(throws: WireError.self) { try WireRequest.decode(empty) }
        var badUTF8 = ByteBuffer()
        badUTF8.writeInteger(UInt32(0))
        badUTF8.writeInteger(UInt8(0))
        badUTF8.writeInteger(UInt64(0))
        badUTF8.writeInteger(UInt16(2))
        badUTF8.writeBytes([0xFF, 0xFE])
        badUTF8.writeInteger(UInt16(0))
        #expect(throws: WireError.self) { try WireRequest.decode(badUTF8) }
    }

    @Test("error replies round-trip, and unknown codes survive")
    func errorReplies() throws {
        for code in [ErrorCode.busy, .unknownService, .quotaExceeded, ErrorCode(rawValue: 999)] {
            let reply = WireErrorReply(code: code, message: "why")
            #expect(try WireErrorReply.decode(reply.encode(allocator: ByteBufferAllocator())) == reply)
        }
        #expect(ErrorCode(rawValue: 999).description == "code999")
        #expect(ErrorCode.quotaExceeded.description == "quotaExceeded")
    }
}
