import Distri
import DistriImaging
import DistriTestSupport
import DistriWire
import Foundation
import Testing

/// The PNGs in sample-images/, by file name.
private func sampleImages() throws -> [(name: String, bytes: [UInt8])] {
    let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "../../sample-images")
    let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".png") }
        .sorted()
    return try names.map { ($0, Array(try Data(contentsOf: folder.appendingPathComponent($0)))) }
}

private func remoteError(_ body: () async throws -> Void) async -> ClientError? {
    do {
        try await body()
        return nil
    } catch let error as ClientError {
        return error
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}

@Suite(.serialized) struct EncryptServiceTests {
    @Test("3 nodes, 32 concurrent clients, 10 encryptions each of the sample images: 0 failures, every result verified")
    func concurrentClients() async throws {
        let images = try sampleImages()
        #expect(images.count >= 6)
        // No warm-up penalty: the nodes have just joined, and this test is about spreading by load.
        try await withCloud(nodes: 3, clustered: true, configure: { $0.cluster.warmUpMillis = 0 }) {
            nodes, addresses in
            let failures = try await withThrowingTaskGroup(of: Int.self) { group in
                for clientIndex in 0..<32 {
                    group.addTask {
                        let client = Client(
                            nodes: [addresses[0]],
                            configuration: ClientConfiguration(
                                connectTimeout: .seconds(10), tls: TestTLS.authority.clientTLS))
                        let encryption = ImageEncryptionClient(client: client)
                        var failed = 0
                        for round in 0..<10 {
                            let image = images[(clientIndex + round) % images.count]
                            do {
                                let sealed = try await encryption.encrypt(image.bytes)
                                // Verified inside encrypt; open it once more as a recipient would.
                                if try ImageSealer.decrypt(png: sealed.png, key: sealed.key) != image.bytes {
                                    failed += 1
                                }
                            } catch {
                                Issue.record("client \(clientIndex) round \(round) \(image.name): \(error)")
                                failed += 1
                            }
                        }
                        await client.shutdown()
                        return failed
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(failures == 0)
            // Every client asks the first node; elected by load, some tasks ran on the others.
            #expect(nodes[0].stats().cluster.tasksForwarded > 0, "the asked node ran every Encrypt itself")
        }
    }

    @Test("a given cover is used; a cover too small, a non-PNG image and a bad cover length each get a clear error")
    func coversAndBadInput() async throws {
        let images = try sampleImages()
        let small = try #require(images.first { $0.name == "gray1.png" })
        let large = try #require(images.max { $0.bytes.count < $1.bytes.count })
        try await withCloud(nodes: 1) { _, addresses in
            let client = Client(nodes: addresses, configuration: .tls)
            let encryption = ImageEncryptionClient(client: client)
            let cover = CoverGenerator.cover(width: 320, height: 240, seed: 7)
            let coverPNG = try PNGCodec.encode(cover, settings: .default)
            let sealed = try await encryption.encrypt(small.bytes, cover: coverPNG)
            #expect(!sealed.coverWasGenerated)
            #expect(sealed.width == 320 && sealed.height == 240)

            let tiny = try PNGCodec.encode(CoverGenerator.cover(width: 8, height: 8, seed: 1), settings: .default)
            let tooSmall = await remoteError { _ = try await encryption.encrypt(large.bytes, cover: tiny) }
            #expect(tooSmall?.remoteCode == .badParams)
            #expect(tooSmall?.message.contains("cover image is too small") == true)

            let notPNG = await remoteError { _ = try await encryption.encrypt(Array("GIF89a not a png".utf8)) }
            #expect(notPNG?.remoteCode == .badParams)
            #expect(notPNG?.message.contains("not a PNG") == true)

            let truncated = await remoteError { _ = try await encryption.encrypt(Array(large.bytes.prefix(100))) }
            #expect(truncated?.remoteCode == .badParams)

            let badLength = await remoteError {
                _ = try await client.send(small.bytes, service: EncryptService.name, params: ["cover=999999999"])
            }
            #expect(badLength?.remoteCode == .badParams)

            // The node is still fine after the bad input.
            let again = try await encryption.encrypt(small.bytes)
            #expect(again.coverWasGenerated)
            await client.shutdown()
        }
    }

    @Test("an answer that does not open to the image sent is refused by the front end, saying why")
    func verificationFailures() throws {
        let images = try sampleImages()
        let image = images[0].bytes
        let sealed = try ImageSealer.encrypt(image: image, cover: nil)
        let other = try ImageSealer.encrypt(image: images[1].bytes, cover: nil)
        #expect(throws: ImageEncryptionClient.VerificationFailed.self) {
            try ImageEncryptionClient.verify(other, opensTo: image)
        }
        var wrongKey = sealed
        wrongKey.key = other.key
        let error = #expect(throws: ImageEncryptionClient.VerificationFailed.self) {
            try ImageEncryptionClient.verify(wrongKey, opensTo: image)
        }
        #expect(error?.reason.isEmpty == false)
        // The reply format round-trips.
        #expect(try EncryptReply.decode(EncryptReply.encode(sealed)) == sealed)
        #expect(throws: ImagingError.self) { _ = try EncryptReply.decode(Array("DENC".utf8)) }
    }
}
