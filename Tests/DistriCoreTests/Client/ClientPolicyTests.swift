import DistriCore
import Testing

@Suite struct AttemptTimeoutTests {
    private let ms: UInt64 = 1_000_000

    @Test("before any sample the timeout is the initial value; the floor holds for fast links")
    func initialAndFloor() {
        var estimator = AttemptTimeoutEstimator()
        #expect(estimator.timeout == 1000 * ms)
        for _ in 0..<50 { estimator.observe(ms / 10) }  // 0.1 ms loopback calls
        #expect(estimator.timeout == 250 * ms)
    }

    @Test("first sample: srtt = r, rttvar = r/2, timeout = 3r (RFC 6298 2.2)")
    func firstSample() {
        var estimator = AttemptTimeoutEstimator(policy: AttemptTimeoutPolicy(floor: 0, cap: .max))
        estimator.observe(100 * ms)
        #expect(estimator.smoothed == 100 * ms)
        #expect(estimator.variation == 50 * ms)
        #expect(estimator.timeout == 300 * ms)
    }

    @Test("steady 40 ms round trips with jitter converge near srtt + 4 rttvar, above the floor when high")
    func convergesOnWAN() {
        var estimator = AttemptTimeoutEstimator(policy: AttemptTimeoutPolicy(floor: 0, cap: .max))
        for index in 0..<200 { estimator.observe((index % 2 == 0 ? 30 : 50) * ms) }
        let srtt = estimator.smoothed!
        #expect(srtt > 38 * ms && srtt < 42 * ms)
        #expect(estimator.variation > 8 * ms && estimator.variation < 12 * ms)
        #expect(estimator.timeout == srtt + 4 * estimator.variation)
    }

    @Test("the cap bounds a slow service's timeout")
    func cap() {
        var estimator = AttemptTimeoutEstimator()
        for _ in 0..<20 { estimator.observe(3000 * ms) }
        #expect(estimator.timeout == 2000 * ms)
    }

    @Test("per service: a slow service does not stretch a fast one; the deadline wins when shorter")
    func perService() {
        var timeouts = AttemptTimeouts()
        for _ in 0..<20 {
            timeouts.observe(service: "Encrypt", 1500 * ms)
            timeouts.observe(service: "Echo", ms)
        }
        #expect(timeouts.attemptTimeout(service: "Echo", remaining: 30_000 * ms) == 250 * ms)
        // Steady 1.5 s calls: srtt 1.5 s, the deviation decayed: just above 1.5 s, under the cap.
        let encrypt = timeouts.attemptTimeout(service: "Encrypt", remaining: 30_000 * ms) ?? 0
        #expect(encrypt > 1500 * ms && encrypt <= 2000 * ms)
        #expect(timeouts.attemptTimeout(service: "Encrypt", remaining: 1000 * ms) == nil)
        #expect(timeouts.attemptTimeout(service: "Unknown", remaining: 30_000 * ms) == 1000 * ms)
        // No probe answered yet: the fastest service's timeout.
        #expect(timeouts.probeTimeout == 250 * ms)
        #expect(AttemptTimeouts().probeTimeout == 1000 * ms)
        timeouts.observeProbe(ms)
        #expect(timeouts.probeTimeout == 250 * ms)
    }

    @Test("beyond the tracked services the rest share one estimator")
    func boundedServices() {
        var timeouts = AttemptTimeouts()
        for index in 0..<AttemptTimeouts.maxServices { timeouts.observe(service: "s\(index)", ms) }
        timeouts.observe(service: "extra", 5 * ms)
        #expect(timeouts.shared.samples == 1)
        #expect(timeouts.estimator(for: "another").samples == 1)
    }
}

@Suite struct ClientMembershipViewTests {
    private func member(_ id: String, _ address: String, _ status: String) -> MemberSummary {
        MemberSummary(
            id: id, address: address, status: status, incarnation: 1, load: 0, services: [], detectionMillis: nil)
    }

    private func parse(_ text: String) -> String? { text.hasPrefix("0.0.0.0") ? nil : text }

    @Test("one seed learns every alive member; the seed stays known")
    func learns() {
        var view = ClientMembershipView(seeds: ["a:1"])
        let changed = view.merge(
            [member("n1", "a:1", "alive"), member("n2", "b:1", "alive"), member("n3", "c:1", "alive")], parse: parse)
        #expect(changed)
        #expect(view.active == ["a:1", "b:1", "c:1"])
        #expect(view.fallback.isEmpty)
    }

    @Test("dead and left members are dropped, suspect ones tried last, a dropped seed stays a fallback")
    func drops() {
        var view = ClientMembershipView(seeds: ["a:1"])
        view.merge(
            [
                member("n1", "a:1", "left"), member("n2", "b:1", "alive"), member("n3", "c:1", "suspect"),
                member("n4", "d:1", "dead"),
            ], parse: parse)
        #expect(view.active == ["b:1"])
        #expect(view.fallback == ["c:1", "a:1"])
        #expect(view.all == ["b:1", "c:1", "a:1"])
    }

    @Test("a report with no usable alive member changes nothing")
    func keepsLastGood() {
        var view = ClientMembershipView(seeds: ["a:1", "b:1"])
        let empty = view.merge([], parse: parse)
        #expect(!empty)
        let unusable = view.merge(
            [member("n1", "0.0.0.0:1", "alive"), member("n2", "b:1", "dead")], parse: parse)
        #expect(!unusable)
        #expect(view.active == ["a:1", "b:1"])
        view.merge([member("n2", "b:1", "alive")], parse: parse)
        let again = view.merge([member("n2", "b:1", "alive")], parse: parse)
        #expect(!again)
        #expect(view.changes == 1)
    }

    @Test("the order follows member ids, whichever node reported")
    func stableOrder() {
        var view = ClientMembershipView(seeds: ["x:1"])
        view.merge([member("n2", "b:1", "alive"), member("n1", "a:1", "alive")], parse: parse)
        #expect(view.active == ["a:1", "b:1"])
        #expect(view.fallback == ["x:1"])
    }
}
