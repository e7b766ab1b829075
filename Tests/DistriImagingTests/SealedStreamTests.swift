import DistriImaging
import Testing

/// The sealed stream tells a wrong key, tampering and truncation apart.
@Suite struct SealedStreamTests {
    let fileKey = [UInt8](repeating: 0x42, count: 32)
    let otherKey = [UInt8](repeating: 0x43, count: 32)

    func seal(_ count: Int) throws -> (plain: [UInt8], sealed: [UInt8]) {
        var generator = TestRNG(seed: UInt64(count))
        let plain = (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        var random = SeededImagingRandom(seed: 3)
        return (plain, try SealedStream.seal(plain, fileKey: fileKey, random: &random))
    }

    @Test("round trip for sizes around chunk boundaries", arguments: [0, 1, 65535, 65536, 65537, 200_000])
    func roundTrip(count: Int) throws {
        let (plain, sealed) = try seal(count)
        #expect(sealed.count == SealedStream.sealedSize(plaintextCount: count))
        #expect(try SealedStream.open(sealed, fileKey: fileKey) == plain)
    }

    @Test func wrongKey() throws {
        let (_, sealed) = try seal(1000)
        #expect(throws: ImagingError.wrongKey) { try SealedStream.open(sealed, fileKey: otherKey) }
    }

    @Test func tamperedChunk() throws {
        var (_, sealed) = try seal(140_000)
        sealed[SealedStream.headerSize + 65536 + 16 + 5] ^= 1
        #expect(throws: ImagingError.tampered(chunk: 1)) { try SealedStream.open(sealed, fileKey: fileKey) }
    }

    @Test func truncated() throws {
        let (_, sealed) = try seal(140_000)
        for cut in [1, 16, 17, 5000, 140_000 - 65536 * 2 + 16] {
            #expect(throws: ImagingError.truncatedPayload) {
                try SealedStream.open(Array(sealed.dropLast(cut)), fileKey: fileKey)
            }
        }
        #expect(throws: ImagingError.truncatedPayload) {
            try SealedStream.open(Array(sealed.prefix(40)), fileKey: fileKey)
        }
    }

    @Test("swapped chunks fail authentication")
    func reordered() throws {
        let (_, sealed) = try seal(65536 * 3)
        let size = 65536 + 16
        let header = SealedStream.headerSize
        let first = sealed[header..<header + size]
        let second = sealed[header + size..<header + 2 * size]
        let swapped = Array(sealed[..<header]) + second + first + sealed[(header + 2 * size)...]
        #expect(throws: ImagingError.tampered(chunk: 0)) { try SealedStream.open(swapped, fileKey: fileKey) }
    }

    @Test("every header bit is covered: magic, version or the MAC fails")
    func headerBits() throws {
        let (_, sealed) = try seal(300)
        for bit in 0..<(SealedStream.headerSize * 8) {
            var copy = sealed
            copy[bit / 8] ^= 1 << UInt8(bit % 8)
            #expect(throws: ImagingError.self) { try SealedStream.open(copy, fileKey: fileKey) }
            if bit >= 6 * 8 {
                #expect(throws: ImagingError.wrongKey) { try SealedStream.open(copy, fileKey: fileKey) }
            }
        }
    }

    @Test("every chunk bit of a small stream is detected as tampering")
    func chunkBits() throws {
        let (_, sealed) = try seal(100)
        for bit in (SealedStream.headerSize * 8)..<(sealed.count * 8) {
            var copy = sealed
            copy[bit / 8] ^= 1 << UInt8(bit % 8)
            #expect(throws: ImagingError.tampered(chunk: 0)) { try SealedStream.open(copy, fileKey: fileKey) }
        }
    }
}
