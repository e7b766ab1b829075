import Testing

@testable import DistriCore

/// Membership over WAN links: probe timeouts follow the measured round trip.
@Suite struct WANDetectionTests {
    /// Five nodes on links of `roundTrip` ms ± `jitter` and `loss`; runs `minutes` of simulated time,
    /// then crashes one. Returns the false deaths before the crash, the ms until every other node
    /// marked the crashed one dead (nil: not within 60 s), and node 0's probe timeout and interval.
    static func run(
        seed: UInt64, minutes: UInt64, settings: SWIMSettings = .init(), roundTrip: UInt64 = 100, jitter: UInt64 = 20,
        loss: Double = 0.02
    ) -> (falseDeaths: Int, falseSuspicions: Int, detection: UInt64?, timeout: UInt64, interval: UInt64) {
        var cluster = SimulatedCluster(nodeCount: 5, seed: seed, settings: settings)
        cluster.minDelay = (roundTrip - jitter) / 2
        cluster.maxDelay = jitter
        cluster.lossRate = loss
        for index in 0..<5 { cluster.start(index, incarnation: 1) }
        let crashAt = 10_000 + minutes * 60_000
        cluster.run(until: crashAt)
        let falseDeaths = cluster.statusChanges.filter { $0.member.status == .dead }.count
        let falseSuspicions = cluster.statusChanges.filter { $0.member.status == .suspect }.count
        let (timeout, interval) = (
            cluster.nodes[0].membership!.probeTimeout, cluster.nodes[0].membership!.probeInterval
        )
        let victimID = cluster.nodes[4].id
        cluster.crash(4)
        cluster.run(until: crashAt + 60_000)
        let times = (0..<4).map { observer in
            cluster.statusChanges.first {
                $0.observer == observer && $0.member.id == victimID && $0.member.status == .dead && $0.time >= crashAt
            }.map { $0.time - crashAt }
        }
        let detection = times.contains(where: { $0 == nil }) ? nil : times.compactMap { $0 }.max()
        return (falseDeaths, falseSuspicions, detection, timeout, interval)
    }

    @Test("100 ms RTT, 20 ms jitter, 2% loss, 10 minutes: nobody is declared dead; a crash is, by all, within 8 s")
    func wanProfile() {
        var worst: UInt64 = 0
        for seed in UInt64(1)...3 {
            let outcome = Self.run(seed: seed, minutes: 10)
            #expect(outcome.falseDeaths == 0, "seed \(seed): \(outcome.falseDeaths) false deaths")
            let detection = outcome.detection ?? .max
            #expect(detection <= 8_000, "seed \(seed): detected after \(detection) ms")
            worst = max(worst, detection)
            print(
                "WAN seed \(seed): probe timeout \(outcome.timeout) ms, interval \(outcome.interval) ms, "
                    + "\(outcome.falseSuspicions) false suspicions, crash detected by all after \(detection) ms")
        }
        print("WAN profile: worst detection \(worst) ms over 3 runs of 10 simulated minutes")
    }

    @Test("the same links with the LAN timeouts held fixed suspect live nodes far more often")
    func fixedTimeoutsSuspect() {
        let fixed = Self.run(seed: 1, minutes: 2, settings: .fixedProbeTimeout)
        let adaptive = Self.run(seed: 1, minutes: 2)
        print(
            "WAN, 2 minutes: \(fixed.falseSuspicions) false suspicions with fixed LAN timeouts, \(adaptive.falseSuspicions) adaptive"
        )
        #expect(fixed.falseSuspicions > 4 * max(1, adaptive.falseSuspicions))
    }

    @Test("on a LAN the configured timeouts stay in force")
    func lanUnchanged() {
        let outcome = Self.run(seed: 1, minutes: 1, roundTrip: 2, jitter: 2, loss: 0)
        #expect(outcome.timeout == SWIMSettings().probeTimeout)
        #expect(outcome.interval == SWIMSettings().probeInterval)
    }

    @Test("the estimator follows RFC 6298: mean moves by 1/8 of the error, variation by 1/4")
    func estimator() {
        var estimator = RoundTripEstimator()
        #expect(estimator.timeout == nil)
        estimator.add(100)
        #expect(estimator.timeout == 300)
        estimator.add(100)
        #expect(estimator.smoothed == 100)
        #expect(estimator.variation == 37.5)
        for _ in 0..<50 { estimator.add(100) }
        #expect(estimator.timeout! < 110)
    }
}
