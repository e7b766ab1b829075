import ArgumentParser
import Distri
import DistriCommandLine
import DistriImaging
import Foundation
import NIOCore
import NIOPosix

/// `distri-bench encrypt`: the imaging pipeline's parts and a local cloud's Encrypt throughput,
/// beside raw AES-256-GCM and raw libpng measured in the same run.
struct BenchEncryptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encrypt",
        abstract: "Measure image encryption in process and through a local cloud's Encrypt service.",
        discussion: """
            A file above 48 MiB is measured streamed instead: the row-by-row pipeline in process against the \
            cloud's streamed Encrypt, alternated in 3 pairs, with the local cloud's peak memory. \
            In process, on one thread: raw AES-256-GCM, raw libpng encode and decode of the cover, encrypt+embed \
            (ImageSealer.encrypt) and extract+decrypt, as MB/s. Then the whole pipeline on every core at once \
            (images/s), and the Encrypt service of a cloud (without --cloud, `distri-node local --nodes N` as a \
            child process on the same cores) with --clients calls in flight (images/s, p50, p99).
            """)

    @Option(
        name: .long,
        help:
            "The file to encrypt (a PNG, a JPEG, any file), sealed with its name as distri-peer does; default: a generated 640x480 noisy PNG."
    )
    var image: String?

    @Option(name: .long, help: "Bits per RGB channel of the cover: 2, 4 or 8.")
    var density = PayloadEmbedding.bitsPerChannel

    @OptionGroup var target: BenchCloud

    @Option(name: .long, help: "Encrypt calls in flight against the cloud.")
    var clients = 8

    @Option(name: .long, help: "Seconds per measurement.")
    var seconds: Double = 3

    @OptionGroup var jsonOutput: JSONOutputOptions
    var json: Bool { jsonOutput.enabled }

    struct Report: Codable {
        var imageBytes: Int
        var cores: Int
        /// The pipeline's parts on one thread (``ImagingBenchmarkReport``'s figures).
        var partsMBps: PartsMBps
        var inProcessImagesPerSecond: Double
        var cloud: LoadResult
        var cloudToInProcess: Double
        var parts: String
    }

    /// MB/s of each part of the pipeline on one thread, and how sealing compares with encoding alone.
    struct PartsMBps: Codable {
        var aesGCM: Double
        var pngEncode: Double
        var pngDecode: Double
        var encryptEmbed: Double
        var extractDecrypt: Double
        var encryptEmbedToEncode: Double

        init(_ report: ImagingBenchmarkReport) {
            aesGCM = report.aesGCMMBps
            pngEncode = report.pngEncodeMBps
            pngDecode = report.pngDecodeMBps
            encryptEmbed = report.encryptEmbedMBps
            extractDecrypt = report.extractDecryptMBps
            encryptEmbedToEncode = report.encryptEmbedToEncodeRatio
        }
    }

    func validate() throws {
        if clients < 1 || target.nodes < 1 { throw ValidationError("--clients and --nodes must be positive") }
        if !(seconds > 0) { throw ValidationError("--seconds must be positive") }
        if !PayloadEmbedding.densities.contains(density) { throw ValidationError("--density must be 2, 4 or 8") }
    }

    func run() async throws {
        if let image, let size = try? FileManager.default.attributesOfItem(atPath: image)[.size] as? Int,
            size > EncryptService.Limits().maxImageBytes
        {
            try await runStreamed(path: image)
            return
        }
        let file =
            try image.map { path in
                guard let data = FileManager.default.contents(atPath: path) else {
                    throw ValidationError("cannot read \(path)")
                }
                return Array(data)
            } ?? PNGCodec.encode(CoverGenerator.cover(width: 640, height: 480, seed: 42))
        // What distri-peer sends: the file in its envelope, with its name and media type.
        let bytes = SealedContent(file: file, name: image.map { ($0 as NSString).lastPathComponent } ?? "noise.png")
            .encoded()
        let density = self.density
        let parts = try ImagingBenchmark.run(image: bytes, seconds: seconds, bitsPerChannel: density)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let inProcess = try Self.pipelineThroughput(
            image: bytes, threads: cores, seconds: seconds, bitsPerChannel: density)

        let cloud = try target.open()
        let (addresses, child) = (cloud.addresses, cloud.child)
        defer { child?.stop() }
        let client = Client(
            nodes: addresses, configuration: cloud.configuration, group: MultiThreadedEventLoopGroup.singleton)
        let cloudResult: LoadResult
        do {
            try await BenchDBCommand.waitForMembership(client: client, nodes: addresses.count)
            // One verified answer first: the service must give back what the front end accepts.
            _ = try await ImageEncryptionClient(client: client).encrypt(bytes, bitsPerChannel: density)
            let body = ByteBuffer(bytes: bytes)
            let params = density == PayloadEmbedding.bitsPerChannel ? [] : ["density=\(density)"]
            cloudResult = try await TimedLoadDriver.run(
                name: "Encrypt", loop: client.eventLoop, concurrency: clients, warmup: .seconds(1),
                duration: .nanoseconds(Int64(seconds * 1e9))
            ) { done in
                client.call(body, service: EncryptService.name, params: params, timeout: .seconds(60))
                    .assumeIsolated()
                    .whenComplete { result in
                        if case .success = result { done(true) } else { done(false) }
                    }
            }
            await client.shutdown()
        } catch {
            await client.shutdown()
            throw error
        }
        let report = Report(
            imageBytes: bytes.count, cores: cores, partsMBps: PartsMBps(parts), inProcessImagesPerSecond: inProcess,
            cloud: cloudResult,
            cloudToInProcess: inProcess > 0 ? cloudResult.callsPerSecond / inProcess : 0, parts: parts.description)
        print(json ? try JSONStyle.text(report) : Self.text(report))
        if cloudResult.failures > 0 { throw ExitCode(2) }
    }

    /// A file above what one call seals: the streamed pipeline in process against the cloud's
    /// streamed Encrypt, 3 pairs.
    private func runStreamed(path: String) async throws {
        let cloud = try target.open()
        defer { cloud.child?.stop() }
        let client = Client(
            nodes: cloud.addresses, configuration: cloud.configuration, group: MultiThreadedEventLoopGroup.singleton)
        let report: StreamedEncryptBench.Report
        do {
            try await BenchDBCommand.waitForMembership(client: client, nodes: cloud.addresses.count)
            report = try await StreamedEncryptBench.run(
                path: path, bits: density, pairs: 3, client: client, child: cloud.child)
            await client.shutdown()
        } catch {
            await client.shutdown()
            throw error
        }
        if json {
            print(try JSONStyle.text(report))
            return
        }
        func f(_ values: [Double]) -> String { values.map { String(format: "%.1f", $0) }.joined(separator: ", ") }
        print(
            """
            streamed: \(report.fileBytes) bytes at \(report.bitsPerChannel) bits per channel, 3 pairs (in process, then the cloud)
            in process (seal, embed, encode row by row): \(f(report.inProcessMBps)) MB/s
            cloud streamed Encrypt (4 MiB chunks to one node): \(f(report.cloudMBps)) MB/s
            cloud / in process = \(String(format: "%.0f", report.cloudToInProcess * 100))% (the median of the pairs' ratios)
            """
                + (report.cloudPeakResidentBytes.map { "\nlocal cloud process peak resident memory: \($0 >> 20) MiB" }
                    ?? ""))
    }

    /// Images per second of `ImageSealer.encrypt` on `threads` threads at once for `seconds`.
    static func pipelineThroughput(
        image: [UInt8], threads: Int, seconds: Double, bitsPerChannel: Int = PayloadEmbedding.bitsPerChannel
    ) throws -> Double {
        let clock = ContinuousClock()
        let start = clock.now
        let end = start + .nanoseconds(Int64(seconds * 1e9))
        let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: threads)
        defer { counts.deallocate() }
        counts.initialize(repeating: 0)
        // Each iteration writes only its own slot of `counts`.
        nonisolated(unsafe) let slots = counts
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            var done = 0
            while clock.now < end && done < 1_000_000 {
                if (try? ImageSealer.encrypt(image: image, bitsPerChannel: bitsPerChannel)) != nil { done += 1 }
            }
            slots[thread] = done
        }
        let elapsed = clock.now - start
        return Double(counts.reduce(0, +)) / (elapsed / .seconds(1))
    }

    static func text(_ report: Report) -> String {
        func f(_ value: Double) -> String { String(format: "%.1f", value) }
        return """
            \(report.parts)
            pipeline on \(report.cores) cores in process: \(f(report.inProcessImagesPerSecond)) images/s
            local cloud Encrypt, \(report.cloud.concurrency) in flight: \(f(report.cloud.callsPerSecond)) images/s, \
            p50 \(f(Double(report.cloud.p50Micros) / 1000)) ms, p99 \(f(Double(report.cloud.p99Micros) / 1000)) ms, \
            \(report.cloud.failures) failures
            cloud / in process = \(f(report.cloudToInProcess * 100))%
            """
    }
}
