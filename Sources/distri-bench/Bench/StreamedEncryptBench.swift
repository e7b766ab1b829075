import ArgumentParser
import Distri
import DistriCommandLine
import DistriImaging
import Foundation
import NIOCore

/// `distri-bench encrypt` for a file above what one call seals: the streamed pipeline in this
/// process (the file read in 4 MiB pieces, sealed, embedded in cover rows, encoded row by row) against a
/// cloud's streamed Encrypt (`EncryptOpen`, then 4 MiB `EncryptChunk`s to the node that opened it),
/// alternated in pairs; with the local child cloud, that process's peak resident memory.
enum StreamedEncryptBench {
    struct Report: Codable {
        var fileBytes: Int
        var bitsPerChannel: Int
        var inProcessMBps: [Double]
        var cloudMBps: [Double]
        var cloudToInProcess: Double
        var cloudPeakResidentBytes: Int?
    }

    static let piece = 4 << 20

    static func run(path: String, bits: Int, pairs: Int, client: Client, child: LocalCloudProcess?) async throws
        -> Report
    {
        guard let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int else {
            throw ValidationError("cannot read \(path)")
        }
        let header = SealedContent(
            kind: .file, name: (path as NSString).lastPathComponent, mediaType: "application/octet-stream", bytes: []
        ).header
        var local: [Double] = []
        var remote: [Double] = []
        for _ in 0..<pairs {
            local.append(
                Double(size) / (try timed { try inProcess(path: path, header: header, size: size, bits: bits) }) / 1e6)
            remote.append(
                Double(size)
                    / (try await timedAsync {
                        try await cloud(path: path, header: header, size: size, bits: bits, client: client)
                    })
                    / 1e6)
        }
        // Each pair's ratio (the machine's speed drifts between pairs), and their median.
        let ratios = zip(remote, local).map { $0 / $1 }.sorted()
        return Report(
            fileBytes: size, bitsPerChannel: bits, inProcessMBps: local, cloudMBps: remote,
            cloudToInProcess: ratios[ratios.count / 2],
            cloudPeakResidentBytes: child.flatMap { peakResident(of: $0.process.processIdentifier) })
    }

    /// Seconds `body` took.
    static func timed(_ body: () throws -> Void) throws -> Double {
        let start = ContinuousClock.now
        try body()
        return (ContinuousClock.now - start) / .seconds(1)
    }

    static func timedAsync(_ body: () async throws -> Void) async throws -> Double {
        let start = ContinuousClock.now
        try await body()
        return (ContinuousClock.now - start) / .seconds(1)
    }

    /// The envelope of the file at `path`, a piece at a time.
    static func pieces(path: String, header: [UInt8], _ body: ([UInt8]) throws -> Void) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ValidationError("cannot read \(path)") }
        defer { try? handle.close() }
        var pending = header
        // Bounded by the file's length: each pass reads at least one byte or ends.
        while true {
            let more = try handle.read(upToCount: piece - pending.count).map { [UInt8]($0) } ?? []
            pending += more
            if !pending.isEmpty { try body(pending) }
            pending = []
            if more.isEmpty { break }
        }
    }

    static func inProcess(path: String, header: [UInt8], size: Int, bits: Int) throws {
        let key = try ImageKey.generate()
        var random = SystemImagingRandom()
        var sealer = try SealedStreamWriter(fileKey: key.fileKey, length: header.count + size, random: &random)
        let embedder = try StreamEmbedder(
            length: SealedStream.sealedSize(plaintextCount: header.count + size), key: key, seed: 1,
            bitsPerChannel: bits)
        try pieces(path: path, header: header) { piece in _ = try embedder.append(try sealer.append(piece)) }
        _ = try embedder.finish()
    }

    static func cloud(path: String, header: [UInt8], size: Int, bits: Int, client: Client) async throws {
        let opened = try await client.send(
            [], service: EncryptStreamService.open, params: ["size=\(header.count + size)", "density=\(bits)"])
        guard let reply = (try? JSONParser.parse(opened))?.objectValue, let session = reply["session"]?.stringValue,
            let address = reply["node"]?.stringValue, let node = NodeAddress(address)
        else { throw ValidationError("the EncryptOpen answer is malformed") }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ValidationError("cannot read \(path)") }
        defer { try? handle.close() }
        // Read and sent one after another, as a peer does.
        var offset = 0
        var chunk = header
        // Bounded by the file's length: each pass sends at least one byte or ends.
        while offset < header.count + size {
            chunk += try handle.read(upToCount: piece - chunk.count).map { [UInt8]($0) } ?? []
            guard !chunk.isEmpty else { throw ValidationError("\(path) ended early") }
            _ = try await client.call(
                ByteBuffer(bytes: chunk), service: EncryptStreamService.chunk,
                params: ["session=\(session)", "offset=\(offset)"], node: node, timeout: .seconds(60), routing: .local
            ).get()
            offset += chunk.count
            chunk = []
        }
    }

    /// The peak resident memory (VmHWM) of process `pid`, in bytes.
    static func peakResident(of pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return nil }
        return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }.map { $0 * 1024 }
    }
}
