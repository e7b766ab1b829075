import DistriImaging
import Testing

/// The benchmark helper runs every part and reports positive figures.
@Suite struct BenchmarkHelperTests {
    @Test func shortRun() throws {
        let report = try ImagingBenchmark.run(image: TestSupport.sample("rgb8.png"), seconds: 0.25)
        #expect(report.aesGCMMBps > 0)
        #expect(report.pngEncodeMBps > 0)
        #expect(report.pngDecodeMBps > 0)
        #expect(report.encryptEmbedMBps > 0)
        #expect(report.extractDecryptMBps > 0)
        #expect(report.coverRawBytes == report.coverWidth * report.coverHeight * 4)
        #expect(report.description.contains("encrypt+embed"))
    }
}
