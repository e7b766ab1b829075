import Testing

@testable import DistriCore

/// A node that rejoins mostly in sync catches up by exchanging about what differs, not a full dump
/// (the bound: at most twice the bytes of what differs, with 100,000 documents of which 1% missed).
/// Serialized: each test computes for a while on a thread of the shared pool, and two at once would
/// starve the suite's timing-sensitive network tests.
@Suite(.serialized) struct CatchUpTrafficTests {
    private static let total = 100_000
    private static let missed = 1_000

    private static func body(_ index: Int) -> [String: JSONValue] {
        [
            "owner": .string("user-\(index % 97)"), "views": .number(Double(index % 7)),
            "title": .string("photo \(index)"),
        ]
    }

    /// Three nodes holding `total - missed` documents, then `n3` cut off while `missed` more are
    /// written on `n1`; returns the network and the encoded size of the changes `n3` lacks.
    private static func clusterWithMissedWrites() -> (ReplicaTestNetwork, differing: Int) {
        var net = ReplicaTestNetwork(nodes: ["n1", "n2", "n3"])
        net.connectAll()
        net.deliverAll()
        net.perform(.createCollection("photos"), .one, id: 1, at: "n1")
        net.deliverAll()
        let batch = 2_000
        var nextID: UInt64 = 10
        for start in stride(from: 0, to: total - missed, by: batch) {
            let operations = (start..<min(start + batch, total - missed)).map {
                DatabaseOperation.add(collection: "photos", id: "doc-\($0)", body: body($0))
            }
            net.performBatch(operations, firstID: nextID, at: "n\(start / batch % 3 + 1)")
            nextID += UInt64(operations.count)
            net.deliverAll()
        }
        #expect(net.engines["n3"]!.store.collections["photos"]?.liveCount == total - missed)
        // The periodic pulls run as they do every 500 ms: each node records how far it holds each peer.
        for _ in 0..<3 {
            net.now += 600
            for node in net.nodes { net.tick(node) }
            net.deliverAll()
        }

        net.setAlive(["n2"], at: "n1")
        net.setAlive(["n1"], at: "n2")
        net.setAlive([], at: "n3")
        net.deliverAll()
        let missedOperations = (total - missed..<total).map {
            DatabaseOperation.add(collection: "photos", id: "doc-\($0)", body: body($0))
        }
        net.performBatch(missedOperations, firstID: nextID, at: "n1")
        net.deliverAll()
        #expect(net.engines["n2"]!.store.collections["photos"]?.liveCount == total)
        #expect(net.engines["n3"]!.store.collections["photos"]?.liveCount == total - missed)
        let differing = missedOperations.indices.reduce(0) { sum, offset in
            let id = "doc-\(total - missed + offset)"
            let document = net.engines["n1"]!.store.collections["photos"]!.documents[id]!
            return sum + ReplicaCodec.encode(.push([.document(collection: "photos", document)])).count
        }
        return (net, differing)
    }

    /// Lets the cloud sync until every replica holds `total` documents, counting the bytes exchanged.
    private static func catchUp(_ net: inout ReplicaTestNetwork) {
        net.countsBytes = true
        net.bytesDelivered = 0
        for _ in 0..<20 {
            net.now += 600
            for node in net.nodes { net.tick(node) }
            net.deliverAll()
            if net.nodes.allSatisfy({ net.engines[$0]!.store.collections["photos"]?.liveCount == total }) { break }
        }
        for node in net.nodes {
            #expect(net.engines[node]!.store.collections["photos"]?.liveCount == total, "\(node) caught up")
        }
    }

    @Test("a node cut off while 1% of 100,000 documents were written catches up sending at most twice what differs")
    func rejoinAfterPartition() {
        var (net, differing) = Self.clusterWithMissedWrites()
        net.connectAll()
        Self.catchUp(&net)
        print("rejoin after a partition: \(net.bytesDelivered) bytes exchanged for \(differing) bytes that differ")
        #expect(net.bytesDelivered <= 2 * differing)
    }

    @Test(
        "a node restarted from its log after missing 1% of 100,000 documents catches up sending at most twice what differs"
    )
    func rejoinAfterRestart() {
        var (net, differing) = Self.clusterWithMissedWrites()
        net.start("n3", fromLog: true)
        #expect(net.engines["n3"]!.store.collections["photos"]?.liveCount == Self.total - Self.missed)
        net.connectAll()
        Self.catchUp(&net)
        print("rejoin after a restart: \(net.bytesDelivered) bytes exchanged for \(differing) bytes that differ")
        #expect(net.bytesDelivered <= 2 * differing)
    }
}
