import Distri
import DistriTestSupport
import Foundation
import Testing

/// The write-ahead log is compacted by bytes as well as by entries: few but large writes (the
/// mailbox's chunks) would otherwise keep every byte ever written until 200,000 entries.
@Suite struct LogCompactionTests {
    @Test("a log of few large writes is compacted once it outgrows compactionBytes and its last snapshot")
    func compactsByBytes() async throws {
        let directory = TemporaryDirectory("log-compaction")
        defer { directory.remove() }
        try await withCloud(
            nodes: 1,
            configure: {
                $0.dataDirectory = directory.path
                $0.database.compactionBytes = 256 << 10
            }
        ) { _, addresses in
            let client = Client(nodes: addresses, configuration: .tls)
            let database = DocumentDatabase(client: client)
            try await database.createCollection("big")
            let text = String(repeating: "x", count: 50_000)
            _ = try await database.add(["_id": "d", "text": .string(text)], to: "big")
            // 40 more writes of one 50 KB document: 2 MB written, one document held.
            for round in 0..<40 {
                _ = try await database.update(
                    "d", in: "big", set: ["text": .string(text), "round": .number(Double(round))])
            }
            let log = directory.path + "/replica.wal"
            func size() -> Int {
                ((try? FileManager.default.attributesOfItem(atPath: log))?[.size] as? Int) ?? 0
            }
            #expect(await eventually { (1..<(1 << 20)).contains(size()) }, "the log holds \(size()) bytes")
            await client.shutdown()
        }
    }
}
