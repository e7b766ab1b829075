/// A Lifeguard suspicion timer for one member: its timeout starts at a maximum and shrinks
/// logarithmically toward a minimum as independent confirmations arrive (Dadgar et al. 2017, §4.2).
struct Suspicion: Sendable {
    /// The incarnation suspected.
    let incarnation: UInt64
    /// When the suspicion started, ms.
    let start: UInt64
    /// Confirmations after which the timeout is the minimum.
    let expectedConfirmations: Int
    let minimumTimeout: UInt64
    let maximumTimeout: UInt64
    /// The member that raised the suspicion first, then each member that confirmed it.
    private(set) var confirmers: Set<String>

    /// A suspicion in a cluster of `clusterSize` members, raised by `origin`.
    /// `probeInterval` is the one in force (it follows the measured round trip on a WAN).
    init(
        incarnation: UInt64, origin: String, clusterSize: Int, now: UInt64, settings: SWIMSettings,
        probeInterval: UInt64
    ) {
        let n = max(clusterSize, 1)
        let multiplier = max(settings.suspicionMultiplier, 1)
        let scale = max(1, Self.naturalLog(Double(n)) / Self.naturalLog(10))
        let minimum = UInt64(Double(multiplier) * scale * Double(probeInterval))
        self.incarnation = incarnation
        self.start = now
        self.expectedConfirmations = max(0, min(multiplier - 2, n - 2))
        self.minimumTimeout = minimum
        self.maximumTimeout = UInt64(max(settings.suspicionMaxMultiplier, 1)) * minimum
        self.confirmers = [origin]
    }

    /// Independent confirmations so far.
    var confirmations: Int { confirmers.count - 1 }

    /// Records a confirmation; true if it is new (and so worth gossiping on).
    mutating func confirm(by member: String) -> Bool {
        guard confirmations < expectedConfirmations else { return false }
        return confirmers.insert(member).inserted
    }

    /// The timeout with the confirmations so far: `max - log(c + 1) / log(k + 1) × (max - min)`.
    var timeout: UInt64 {
        guard expectedConfirmations > 0 else { return minimumTimeout }
        let fraction =
            Self.naturalLog(Double(confirmations) + 1) / Self.naturalLog(Double(expectedConfirmations) + 1)
        let raw = Double(maximumTimeout) - fraction * Double(maximumTimeout - minimumTimeout)
        return max(minimumTimeout, UInt64(max(0, raw.rounded(.down))))
    }

    /// When the member is declared dead unless it refutes first.
    var deadline: UInt64 { start + timeout }

    /// Natural logarithm without Foundation, for positive finite `x`: `x = m × 2^e` with `m` in [1, 2),
    /// `ln m = 2 atanh((m - 1) / (m + 1))` by its series, which converges fast for `m` in [1, 2).
    static func naturalLog(_ x: Double) -> Double {
        guard x > 0, x.isFinite else { return x == 0 ? -.infinity : .nan }
        let exponent = Double(x.exponent)
        let mantissa = x.significand
        let s = (mantissa - 1) / (mantissa + 1)
        let s2 = s * s
        var term = s
        var sum = 0.0
        var k = 1.0
        while k < 60 {
            sum += term / k
            term *= s2
            k += 2
        }
        let ln2 = 0.693_147_180_559_945_3
        return exponent * ln2 + 2 * sum
    }
}
