import DistriCore
import NIOConcurrencyHelpers
import Prometheus

/// A node's metrics in the Prometheus text format, from the numbers its `Stats` service reports (one
/// source): counters advance by what the stats gained since the last scrape, gauges take the stats'
/// values, and each service's run times go into a histogram as they happen. Names follow Prometheus
/// conventions: a `distri_` prefix, base units (`_seconds`, `_bytes`), `_total` on counters.
public final class NodeMetrics: Sendable {
    /// Upper bounds of the service-time histogram's buckets: 100 µs to 30 s.
    static let serviceTimeBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30),
    ]

    let registry = PrometheusCollectorRegistry()
    /// What each counter (by name and labels) showed at the last scrape.
    private let reported = NIOLockedValueBox<[String: UInt64]>([:])
    /// The gauges of the last scrape, by name and labels: one the stats no longer list (a dropped
    /// collection, a departed peer) leaves the exposition instead of keeping its last value.
    private let gauges = NIOLockedValueBox<[String: Gauge]>([:])

    public init() {}

    /// The run-time histogram of `service`.
    func serviceTimes(for service: String) -> any ServiceTimeRecorder {
        registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(
                namespace: "distri", metricName: "service_time", unitName: "seconds",
                helpText: "How long calls ran on this node, from arrival to reply, by service."),
            labels: [("service", service)], buckets: Self.serviceTimeBuckets)
    }

    /// The metrics now, as Prometheus text (version 0.0.4).
    public func render(_ stats: NodeStats) -> [UInt8] {
        reported.withLockedValue { reported in
            for sample in Self.counters(stats) { advance(sample, reported: &reported) }
        }
        gauges.withLockedValue { gauges in
            var current: [String: Gauge] = [:]
            for sample in Self.gauges(stats) {
                let gauge = registry.makeGauge(descriptor: sample.descriptor, labels: sample.labels)
                gauge.set(sample.value)
                current[sample.key] = gauge
            }
            for (key, gauge) in gauges where current[key] == nil { registry.unregisterGauge(gauge) }
            gauges = current
        }
        return registry.emitToBuffer()
    }

    private func advance(_ sample: MetricSample, reported: inout [String: UInt64]) {
        let key = sample.key
        let now = UInt64(max(0, sample.value))
        let before = reported[key] ?? 0
        let counter = registry.makeCounter(descriptor: sample.descriptor, labels: sample.labels)
        // A counter that went down (a node's replica reset) is reported from its new value on.
        if now > before { counter.increment(by: Int64(clamping: now - before)) }
        reported[key] = max(now, before)
    }
}

/// One value of one metric; `name` without the `distri_` namespace.
struct MetricSample {
    var name: String
    var labels: [(String, String)] = []
    var value: Double
    var help: String

    /// The metric's name with its labels: one time series.
    var key: String { name + labels.map { "\u{1}\($0.0)=\($0.1)" }.joined() }

    var descriptor: MetricNameDescriptor {
        MetricNameDescriptor(namespace: "distri", metricName: name, unitName: "", helpText: help)
    }
}

extension DurationHistogram: ServiceTimeRecorder {
    public func record(nanoseconds: Int64) {
        recordNanoseconds(nanoseconds)
    }
}
