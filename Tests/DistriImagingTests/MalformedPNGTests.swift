import CPNG
import DistriImaging
import Testing

/// Broken, hostile or non-PNG input gives a clear `ImagingError`, never a crash.
@Suite struct MalformedPNGTests {
    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        let crc = body.withUnsafeBufferPointer { UInt32(crc32_z(0, $0.baseAddress, $0.count)) }
        return bigEndian(UInt32(data.count)) + body + bigEndian(crc)
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 255), UInt8(value >> 8 & 255), UInt8(value & 255)]
    }

    @Test func notPNG() {
        for bytes in [[], [1, 2, 3], Array("GIF89a and then some more bytes".utf8), [UInt8](repeating: 0, count: 100)] {
            #expect(throws: ImagingError.notPNG) { try PNGCodec.decode(bytes) }
            #expect(throws: ImagingError.notPNG) { try ImageSealer.encrypt(image: bytes) }
        }
        #expect(ImagingError.notPNG.description == "not a PNG file")
    }

    @Test func truncated() throws {
        let png = try TestSupport.sample("rgb8.png")
        for length in [8, 12, 20, 33, 60, png.count / 2, png.count - 13] {
            #expect(throws: ImagingError.self) { try PNGCodec.decode(Array(png.prefix(length))) }
        }
        #expect(throws: ImagingError.truncatedPNG) { try PNGCodec.decode(Array(png.prefix(png.count / 2))) }
    }

    @Test("a hand-made 100000x100000 IHDR with a valid CRC is refused before decoding")
    func decompressionBomb() throws {
        var ihdr = Self.bigEndian(100_000) + Self.bigEndian(100_000)
        ihdr += [8, 6, 0, 0, 0]
        let png =
            PNGCodec.signature + Self.chunk("IHDR", ihdr) + Self.chunk("IDAT", [0x78, 0x01, 0x03, 0x00])
            + Self.chunk("IEND", [])
        #expect(throws: ImagingError.imageTooLarge(width: 100_000, height: 100_000)) { try PNGCodec.decode(png) }
        #expect(throws: ImagingError.imageTooLarge(width: 100_000, height: 100_000)) {
            try ImageSealer.encrypt(image: png)
        }
        // Small limits refuse ordinary images too.
        let limits = PNGLimits(maxWidth: 100, maxHeight: 100, maxPixels: 1000)
        #expect(throws: ImagingError.imageTooLarge(width: 64, height: 48)) {
            try PNGCodec.decode(TestSupport.sample("gray8.png"), limits: limits)
        }
    }

    @Test func badCRC() throws {
        var png = try TestSupport.sample("gray8.png")
        png[29] ^= 0xFF  // the IHDR CRC (bytes 29...32)
        #expect {
            try PNGCodec.decode(png)
        } throws: { error in
            guard case ImagingError.invalidPNG(let message) = error else { return false }
            return message.contains("CRC")
        }
    }

    @Test func garbageAfterSignature() {
        var generator = TestRNG(seed: 1)
        for _ in 0..<200 {
            let count = Int(generator.next() % 200)
            let garbage = (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            #expect(throws: ImagingError.self) { try PNGCodec.decode(PNGCodec.signature + garbage) }
        }
    }

    @Test("seeded mutations of every sample either decode or give an ImagingError")
    func fuzz() throws {
        var generator = TestRNG(seed: 31337)
        var failures = 0
        var successes = 0
        let samples = try TestSupport.sampleNames.map { try TestSupport.sample($0) }
        for round in 0..<3000 {
            var png = samples[round % samples.count]
            let edits = 1 + Int(generator.next() % 4)
            for _ in 0..<edits {
                let position = Int(generator.next() % UInt64(png.count))
                switch generator.next() % 4 {
                case 0: png[position] ^= UInt8(1 << (generator.next() % 8))
                case 1: png[position] = UInt8(truncatingIfNeeded: generator.next())
                case 2: png.removeSubrange(position...)
                default: png.insert(UInt8(truncatingIfNeeded: generator.next()), at: position)
                }
                if png.isEmpty { break }
            }
            do {
                let decoded = try PNGCodec.decode(
                    png, limits: PNGLimits(maxWidth: 4096, maxHeight: 4096, maxPixels: 1 << 22))
                #expect(decoded.image.pixels.count == decoded.image.width * decoded.image.height * 4)
                successes += 1
            } catch is ImagingError {
                failures += 1
            }
        }
        #expect(successes + failures == 3000)
        #expect(failures > 1000)
    }
}
