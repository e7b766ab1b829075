import Testing

@testable import DistriCore

/// ``UTF8Text`` refuses exactly what the standard library's validation refuses.
@Suite struct UTF8TextTests {
    static let samples: [[UInt8]] = [
        [], Array("plain ascii".utf8), Array("ünïcödé and 漢字 and 🙂".utf8), Array("\u{FFFD} itself".utf8),
        [0xFF], [0x80], [0xC3], [0xC0, 0xAF],  // invalid byte, lone continuation, truncated, overlong
        [0xED, 0xA0, 0x80],  // an encoded surrogate
        [0xF4, 0x90, 0x80, 0x80],  // above U+10FFFF
        Array("ok".utf8) + [0xE2, 0x82] + Array("then more".utf8),
    ]

    @Test("agrees with String(validating:) on valid, invalid and repaired-looking bytes", arguments: samples)
    func agreesWithTheStandardLibrary(bytes: [UInt8]) {
        let ours = bytes.withUnsafeBufferPointer { UTF8Text.string($0) }
        #expect(ours == String(validating: bytes, as: UTF8.self))
        #expect(UTF8Text.string(bytes[...]) == ours)
    }

    @Test("agrees on random byte strings")
    func agreesOnRandomBytes() {
        var random = SplitMix64(seed: 7)
        for _ in 0..<5_000 {
            let bytes = (0..<Int(random.next() % 12)).map { _ in
                // Mostly bytes that start or continue multi-byte sequences.
                UInt8(truncatingIfNeeded: random.next() % 3 == 0 ? random.next() % 0x80 : 0x80 + random.next() % 0x80)
            }
            let ours = bytes.withUnsafeBufferPointer { UTF8Text.string($0) }
            #expect(ours == String(validating: bytes, as: UTF8.self), "\(bytes)")
        }
    }
}
