import Testing

@testable import DistriCore

/// Failure-detection time and gossip bandwidth with the default settings, measured in the simulation.
@Suite struct DetectionTimeTests {
    /// Starts `nodeCount` nodes, lets them settle, crashes one and returns, for each other node, the
    /// simulated ms until it marked the crashed node dead (nil if it never did within 10 s).
    static func detectionTimes(nodeCount: Int, seed: UInt64) -> [UInt64?] {
        var random = SimulationRandom(seed: seed)
        var cluster = SimulatedCluster(nodeCount: nodeCount, seed: random.next())
        for index in 0..<nodeCount {
            cluster.run(until: UInt64(index) * 10)
            cluster.start(index, incarnation: 1)
        }
        let crashAt = 3_000 + UInt64.random(in: 0..<1_000, using: &random)
        cluster.run(until: crashAt)
        let victim = Int.random(in: 0..<nodeCount, using: &random)
        let victimID = cluster.nodes[victim].id
        cluster.crash(victim)
        cluster.run(until: crashAt + 10_000)
        return cluster.nodes.indices.filter { $0 != victim }.map { observer in
            cluster.statusChanges.first {
                $0.observer == observer && $0.member.id == victimID && $0.member.status == .dead && $0.time >= crashAt
            }.map { $0.time - crashAt }
        }
    }

    @Test("a crashed node is marked dead at every alive node within 2 s", arguments: [3, 9])
    func detection(nodeCount: Int) {
        var worst: [UInt64] = []
        var all: [UInt64] = []
        for seed in UInt64(0)..<50 {
            let times = Self.detectionTimes(nodeCount: nodeCount, seed: seed * 7919 + UInt64(nodeCount))
            #expect(times.allSatisfy { $0 != nil }, "seed \(seed): some node never marked the crashed node dead")
            let known = times.compactMap { $0 }
            all += known
            worst.append(known.max() ?? .max)
        }
        let mean = all.reduce(0, +) / UInt64(max(all.count, 1))
        print(
            "detection, \(nodeCount) nodes, 50 crashes: at every alive node within \(worst.min()!)-\(worst.max()!) ms"
                + " (mean over all observers \(mean) ms, first observer min \(all.min()!) ms)")
        #expect(worst.max()! <= 2_000)
    }

    @Test("gossip at rest in a 9-node cluster stays under 10 KB/s per node")
    func bandwidthAtRest() {
        var cluster = SimulatedCluster(nodeCount: 9, seed: 42)
        for index in 0..<9 {
            cluster.start(index, incarnation: 1)
        }
        cluster.run(until: 5_000)
        #expect(cluster.disagreement() == nil)
        let bytesBefore = cluster.bytesSent
        let messagesBefore = cluster.messagesSent
        let seconds = 20.0
        cluster.run(until: 5_000 + UInt64(seconds * 1000))
        let bytes = zip(cluster.bytesSent, bytesBefore).map { Double($0 - $1) / seconds }
        let messages = zip(cluster.messagesSent, messagesBefore).map { Double($0 - $1) / seconds }
        let withOverhead = zip(bytes, messages).map { $0 + 60 * $1 }
        print(
            "bandwidth at rest, 9 nodes: encoded \(Int(bytes.min()!))-\(Int(bytes.max()!)) B/s per node, "
                + "\(Int(messages.max()!)) messages/s, with 60 B/message transport overhead "
                + "\(Int(withOverhead.min()!))-\(Int(withOverhead.max()!)) B/s per node")
        #expect(withOverhead.max()! < 10_000)
        #expect(cluster.statusChanges.allSatisfy { $0.member.status == .alive })
    }
}
