/// How long a client waits on one node before it suspects the node went silent, drawn from the
/// latencies it observes. Times are in nanoseconds; nothing here reads a clock.
///
/// The rule follows TCP's retransmission timeout (RFC 6298): a smoothed round trip `srtt` and its
/// mean deviation `rttvar` (gains 1/8 and 1/4), the timeout `srtt + 4 × rttvar`, held between
/// ``floor`` and ``cap``; before the first sample it is ``initial``. It is a *suspicion* timeout:
/// the client then checks that the connection still answers (see `ClientConfiguration`) before it
/// moves the call, so a slow service is never taken for a silent node.
public struct AttemptTimeoutPolicy: Sendable, Equatable {
    /// The shortest attempt timeout, whatever the samples say. Default 250 ms: well above a LAN's or a
    /// loaded loopback's round trip, so a scheduling hiccup is not taken for a silent node.
    public var floor: UInt64
    /// The longest attempt timeout. Default 2 s: a node silent that long is moved away from, and a
    /// service slower than that is told apart by the liveness check, not by the timeout.
    public var cap: UInt64
    /// The timeout before any sample. Default 1 s (RFC 6298's initial RTO).
    public var initial: UInt64

    /// A policy; see the properties for the defaults.
    public init(
        floor: UInt64 = 250_000_000, cap: UInt64 = 2_000_000_000, initial: UInt64 = 1_000_000_000
    ) {
        self.floor = floor
        self.cap = max(floor, cap)
        self.initial = initial
    }

    /// 250 ms floor, 2 s cap, 1 s before the first sample.
    public static let standard = AttemptTimeoutPolicy()
}

/// The round-trip estimator of one kind of call (RFC 6298 §2): ``observe(_:)`` a sample, read
/// ``timeout``. A value type; the caller measures the samples.
public struct AttemptTimeoutEstimator: Sendable, Equatable {
    /// The bounds and multipliers this estimator applies.
    public let policy: AttemptTimeoutPolicy
    /// The smoothed round trip, nil before the first sample.
    public private(set) var smoothed: UInt64?
    /// The round trip's mean deviation.
    public private(set) var variation: UInt64 = 0
    /// Samples taken.
    public private(set) var samples: UInt64 = 0

    /// An estimator with no samples yet.
    public init(policy: AttemptTimeoutPolicy = .standard) {
        self.policy = policy
    }

    /// Takes one measured round trip, in nanoseconds.
    public mutating func observe(_ sample: UInt64) {
        samples &+= 1
        guard let srtt = smoothed else {
            smoothed = sample
            variation = sample / 2
            return
        }
        let deviation = sample > srtt ? sample - srtt : srtt - sample
        // rttvar = 3/4 rttvar + 1/4 |srtt - r|; srtt = 7/8 srtt + 1/8 r (rttvar first, as RFC 6298 says).
        variation = variation - variation / 4 + deviation / 4
        smoothed = srtt - srtt / 8 + sample / 8
    }

    /// `srtt + 4 × rttvar` held between the policy's floor and cap, or the initial value before any
    /// sample (also held between floor and cap).
    public var timeout: UInt64 {
        let raw: UInt64
        if let smoothed {
            let (scaled, overflow) = variation.multipliedReportingOverflow(by: 4)
            let (sum, overflow2) = smoothed.addingReportingOverflow(scaled)
            raw = overflow || overflow2 ? .max : sum
        } else {
            raw = policy.initial
        }
        return min(policy.cap, max(policy.floor, raw))
    }
}

/// One estimator per service (a slow service such as `Encrypt` has a round trip of its own), so the
/// attempt timeout of a small call is not stretched by large ones. At most ``maxServices`` services
/// are tracked; the rest share one estimator.
public struct AttemptTimeouts: Sendable {
    /// The policy every estimator here applies.
    public let policy: AttemptTimeoutPolicy
    /// Services tracked apart before they share the ``shared`` estimator.
    public static let maxServices = 64
    private var byService: [String: AttemptTimeoutEstimator] = [:]
    /// The estimator of services beyond ``maxServices``.
    public private(set) var shared: AttemptTimeoutEstimator
    /// The estimator of the liveness probe (`Members`, answered at once by the node itself): how long a node that
    /// is alive takes to answer anything.
    public private(set) var probe: AttemptTimeoutEstimator

    /// Estimators with no samples yet.
    public init(policy: AttemptTimeoutPolicy = .standard) {
        self.policy = policy
        self.shared = AttemptTimeoutEstimator(policy: policy)
        self.probe = AttemptTimeoutEstimator(policy: policy)
    }

    /// Takes a measured round trip of a call of `service`, in nanoseconds.
    public mutating func observe(service: String, _ sample: UInt64) {
        if byService[service] != nil || byService.count < Self.maxServices {
            byService[service, default: AttemptTimeoutEstimator(policy: policy)].observe(sample)
        } else {
            shared.observe(sample)
        }
    }

    /// Takes a measured round trip of a liveness probe, in nanoseconds.
    public mutating func observeProbe(_ sample: UInt64) {
        probe.observe(sample)
    }

    /// The estimator a call of `service` uses.
    public func estimator(for service: String) -> AttemptTimeoutEstimator {
        byService[service] ?? shared
    }

    /// When a call of `service` with `remaining` nanoseconds left of its deadline should suspect its
    /// node: the service's timeout, or nil when that would not come before the deadline (then the
    /// deadline alone decides, as the call has no time to be moved anyway).
    public func attemptTimeout(service: String, remaining: UInt64) -> UInt64? {
        let timeout = estimator(for: service).timeout
        return timeout < remaining ? timeout : nil
    }

    /// How long a liveness probe may take before the node is taken for silent: the probes' own
    /// estimate once one was answered; before that the fastest tracked service's (a probe is answered
    /// at once by a live node, no slower than any service), else the initial value.
    public var probeTimeout: UInt64 {
        if probe.samples > 0 { return probe.timeout }
        return byService.values.lazy.filter { $0.samples > 0 }.map(\.timeout).min() ?? probe.timeout
    }
}
