import DistriImaging
import Foundation
import Testing

@Suite struct StreamingTests {
    @Test("the sealed stream written a piece at a time is byte for byte the one sealed at once, for pieces of any size")
    func sealedStreamInPieces() throws {
        var generator = TestRNG(seed: 3)
        let key = try ImageKey.generate()
        for length in [0, 1, 65_535, 65_536, 65_537, 200_000] {
            let plaintext = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            var whole = SeededImagingRandom(seed: 9)
            let expected = try SealedStream.seal(plaintext, fileKey: key.fileKey, random: &whole)
            for piece in [1_000, 65_536, 70_001, 1 << 20] {
                var pieces = SeededImagingRandom(seed: 9)
                var writer = try SealedStreamWriter(fileKey: key.fileKey, length: length, random: &pieces)
                var sealed: [UInt8] = try writer.append([UInt8]())
                var offset = 0
                while offset < length {
                    let end = min(length, offset + piece)
                    sealed += try writer.append(plaintext[offset..<end])
                    offset = end
                }
                #expect(sealed == expected, "length \(length), pieces of \(piece)")
                #expect(writer.isComplete)
                #expect(throws: ImagingError.self) { _ = try writer.append([1]) }
            }
        }
    }

    @Test("cover rows one at a time are the cover made at once")
    func coverRows() {
        let cover = CoverGenerator.cover(width: 67, height: 41, seed: 5)
        var rows = CoverRows(width: 67, height: 41, seed: 5)
        var pixels: [UInt8] = []
        var row = [UInt8](repeating: 0, count: 67 * 4)
        for _ in 0..<41 {
            row.withUnsafeMutableBytes { rows.next(into: $0) }
            pixels += row
        }
        #expect(pixels == cover.pixels)
    }

    @Test("a cover written row by row opens with its key to the payload, at every density and for pieces of any size")
    func streamEmbedding() throws {
        var generator = TestRNG(seed: 11)
        let key = try ImageKey.generate()
        for bits in PayloadEmbedding.densities {
            for length in [0, 5, 40_000, 300_001] {
                let payload = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
                let embedder = try StreamEmbedder(length: length, key: key, seed: 4, bitsPerChannel: bits)
                var png: [UInt8] = []
                var offset = 0
                while offset < length {
                    let end = min(length, offset + 77_777)
                    png += try embedder.append(Array(payload[offset..<end]))
                    offset = end
                }
                png += try embedder.finish()
                let carrier = try PNGCodec.decode(png).image
                #expect((carrier.width, carrier.height) == (embedder.width, embedder.height))
                let extracted = try PayloadEmbedding.extract(from: carrier, key: key)
                #expect(extracted == payload, "\(bits) bits, \(length) bytes")
                let other = try ImageKey.generate()
                #expect(throws: ImagingError.wrongKey) { try PayloadEmbedding.extract(from: carrier, key: other) }
            }
        }
    }

    @Test("sealer and embedder together: the streamed cover opens like one sealed at once")
    func streamedSealOpens() throws {
        let key = try ImageKey.generate()
        let content = SealedContent(file: Array(repeating: 7, count: 150_000), name: "sevens.bin")
        let plaintext = content.encoded()
        var random = SystemImagingRandom()
        var sealer = try SealedStreamWriter(fileKey: key.fileKey, length: plaintext.count, random: &random)
        let embedder = try StreamEmbedder(
            length: SealedStream.sealedSize(plaintextCount: plaintext.count), key: key, seed: 1, bitsPerChannel: 4)
        var png: [UInt8] = []
        for start in stride(from: 0, to: plaintext.count, by: 4096) {
            png += try embedder.append(try sealer.append(plaintext[start..<min(plaintext.count, start + 4096)]))
        }
        png += try embedder.finish()
        #expect(try ImageSealer.open(png: png, key: key) == content)
    }
}

@Suite struct StreamedOpeningTests {
    @Test(
        "a cover written row by row opens from its file a row at a time to the same bytes; a wrong key, a truncated file and changed pixels are refused"
    )
    func opensRowByRow() throws {
        let key = try ImageKey.generate()
        var generator = TestRNG(seed: 21)
        let plaintext = (0..<250_000).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        for bits in PayloadEmbedding.densities {
            var random = SystemImagingRandom()
            var sealer = try SealedStreamWriter(fileKey: key.fileKey, length: plaintext.count, random: &random)
            let embedder = try StreamEmbedder(
                length: SealedStream.sealedSize(plaintextCount: plaintext.count), key: key, seed: 2,
                bitsPerChannel: bits)
            var png = try embedder.append(try sealer.append(plaintext))
            png += try embedder.finish()
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("stream-\(UUID().uuidString).png")
                .path
            defer { try? FileManager.default.removeItem(atPath: path) }
            try Data(png).write(to: URL(fileURLWithPath: path))
            var opened: [UInt8] = []
            try StreamExtractor.open(path: path, key: key) { opened += $0 }
            #expect(opened == plaintext, "\(bits) bits")
            #expect(throws: ImagingError.wrongKey) {
                try StreamExtractor.open(path: path, key: try ImageKey.generate()) { _ in }
            }
            try Data(png.prefix(png.count / 2)).write(to: URL(fileURLWithPath: path))
            #expect(throws: ImagingError.self) { try StreamExtractor.open(path: path, key: key) { _ in } }
        }
        // Changed pixels: a cover whose payload bits were altered fails a chunk's tag.
        var carrierRandom = SystemImagingRandom()
        var sealer = try SealedStreamWriter(fileKey: key.fileKey, length: plaintext.count, random: &carrierRandom)
        let embedder = try StreamEmbedder(
            length: SealedStream.sealedSize(plaintextCount: plaintext.count), key: key, seed: 3, bitsPerChannel: 8)
        var png = try embedder.append(try sealer.append(plaintext))
        png += try embedder.finish()
        var carrier = try PNGCodec.decode(png).image
        carrier.pixels[carrier.width * 4 * 2 + 1] ^= 0xFF
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("stream-\(UUID().uuidString).png").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(try PNGCodec.encode(carrier)).write(to: URL(fileURLWithPath: path))
        #expect(throws: ImagingError.tampered(chunk: 0)) { try StreamExtractor.open(path: path, key: key) { _ in } }
    }
}
