/// A smoothed round-trip time and its variation, as TCP keeps them (RFC 6298): each sample moves the
/// mean by 1/8 of the error and the variation by 1/4, so one slow answer widens the timeout without
/// taking it over. Pure; samples come in as milliseconds.
public struct RoundTripEstimator: Sendable, Hashable {
    /// The smoothed round trip, ms (nil before the first sample).
    public private(set) var smoothed: Double?
    /// The mean deviation of the round trip, ms.
    public private(set) var variation: Double = 0

    /// An estimator with no samples yet.
    public init() {}

    /// Adds one measured round trip.
    public mutating func add(_ sample: UInt64) {
        let sample = Double(sample)
        guard let smoothed else {
            self.smoothed = sample
            variation = sample / 2
            return
        }
        variation = 0.75 * variation + 0.25 * abs(smoothed - sample)
        self.smoothed = 0.875 * smoothed + 0.125 * sample
    }

    /// How long an answer may take before it is late: mean + 4 × variation (nil before any sample).
    public var timeout: UInt64? {
        smoothed.map { UInt64(($0 + 4 * variation).rounded(.up)) }
    }
}
