import DistriImaging
import Testing

/// Image keys serialize to bytes and text and back; bad forms are refused.
@Suite struct ImageKeyTests {
    @Test func roundTrips() throws {
        var random = SeededImagingRandom(seed: 4)
        let key = try ImageKey.generate(random: &random)
        #expect(key.serialized().count == 49)
        #expect(try ImageKey(serialized: key.serialized()) == key)
        #expect(key.text.hasPrefix("distri-image-key-v1:"))
        #expect(try ImageKey(text: key.text) == key)
        #expect(
            try ImageKey(
                text: "  "
                    + key.text.uppercased().replacingOccurrences(
                        of: "DISTRI-IMAGE-KEY-V1:", with: "distri-image-key-v1:") + "\n") == key)
        #expect(key.description == "ImageKey(redacted)")
    }

    @Test func systemKeysDiffer() throws {
        #expect(try ImageKey.generate() != ImageKey.generate())
    }

    @Test func badForms() throws {
        let good = try ImageKey.generate().serialized()
        #expect(throws: ImagingError.self) { try ImageKey(serialized: Array(good.dropLast())) }
        #expect(throws: ImagingError.self) { try ImageKey(serialized: [2] + good.dropFirst()) }
        #expect(throws: ImagingError.self) { try ImageKey(text: "distri-image-key-v1:zz") }
        #expect(throws: ImagingError.self) { try ImageKey(text: "nope") }
        #expect(throws: ImagingError.self) { try ImageKey(fileKey: [1, 2], embeddingKey: []) }
    }
}
